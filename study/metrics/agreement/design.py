"""The one bootstrap pass of the agreement analysis, and the intervals drawn from it.

Every bootstrapped statistic is a function of sums over cases of a few per-case features:
the one-hot cells of a ``K x K`` confusion table (a *block*: a rater against the reference,
two raters on shared cases, ...) or extra feature rows (rating counts for Fleiss' kappa,
coincidences for Krippendorff's alpha). :class:`BootstrapDesign` registers the features;
:meth:`BootstrapDesign.run` sums them per patient and draws every replicate of every
feature with one matrix product (:func:`study.metrics.bootstrap.bootstrap_sums`), the same
replicates for all raters, so that differences are paired. The result is a frozen
:class:`BootstrapPass`.

References
----------
Davison AC, Hinkley DV (1997), Bootstrap Methods and their Application, section 3.8
(cluster bootstrap: resample patients).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

import numpy as np

from study.estimate import Estimate
from study.metrics.agreement.data import RatingData
from study.metrics.agreement.stats import table_stats
from study.metrics.bootstrap import (
    bootstrap_estimate,
    bootstrap_method_name,
    bootstrap_sums,
)
from study.options import StatisticsOptions
from study.results.agreement import BootstrapInterval


@dataclass(frozen=True)
class BootstrapPass:
    """Observed and replicated tables and features of one :class:`BootstrapDesign`.

    Attributes
    ----------
    blocks : mapping
        Block key -> block index ``j``.
    tables : ndarray, shape (n_blocks, K, K)
        Observed confusion tables.
    obs_stats, boot_stats : dict of ndarray
        :func:`~study.metrics.agreement.stats.table_stats` of the observed tables (shape
        ``(n_blocks[, K])``) and of every replicate (shape ``(B, n_blocks[, K])``).
    boot_tables : ndarray, shape (B, n_blocks, K, K)
    extras : mapping
        Extra feature name -> its ``(start, stop)`` columns in ``observed_extras`` /
        ``boot_extras``.
    observed_extras : ndarray, shape (F,)
    boot_extras : ndarray, shape (B, F)
    """

    blocks: Mapping[Hashable, int]
    tables: np.ndarray
    obs_stats: dict[str, np.ndarray]
    boot_tables: np.ndarray
    boot_stats: dict[str, np.ndarray]
    extras: Mapping[str, tuple[int, int]]
    observed_extras: np.ndarray
    boot_extras: np.ndarray

    def boot_of(self, j: int) -> dict[str, np.ndarray]:
        """The replicates of every statistic of block ``j`` (arrays over B)."""
        return {k: v[:, j] for k, v in self.boot_stats.items()}

    def extra(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Observed sums and replicate sums of the extra features ``name``."""
        a, b = self.extras[name]
        return self.observed_extras[a:b], self.boot_extras[:, a:b]


@dataclass
class BootstrapDesign:
    """Registry of feature columns; every block is a K x K confusion table over some cases."""

    data: RatingData
    blocks: dict[Hashable, int] = field(default_factory=dict)
    _tables: list[np.ndarray] = field(default_factory=list)
    _entries: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (case positions, cells)
    _extra_entries: list[tuple[str, np.ndarray, np.ndarray]] = field(default_factory=list)

    @property
    def k(self) -> int:
        return len(self.data.levels)

    def block(self, key: Hashable, cases: np.ndarray, a: np.ndarray, b: np.ndarray) -> int:
        """Register the table of codes ``a`` (rows) by ``b`` (columns) on ``cases``; its index."""
        if key in self.blocks:
            return self.blocks[key]
        j = len(self._tables)
        self.blocks[key] = j
        cells = a * self.k + b
        self._entries.append((cases, cells))
        self._tables.append(np.bincount(cells, minlength=self.k * self.k).reshape(self.k, self.k))
        return j

    def extra(self, name: str, case_rows: np.ndarray, values: np.ndarray) -> None:
        """Per-case feature rows ``values`` (n x F) for cases ``case_rows``."""
        self._extra_entries.append((name, case_rows, np.asarray(values, dtype=np.float64)))

    def run(self, *, n_replicates: int, seed: int) -> BootstrapPass:
        """Sum the features per patient and draw ``n_replicates`` patient-bootstrap replicates."""
        k, kk = self.k, self.k * self.k
        nb = len(self._tables)
        widths = [v.shape[1] for _, _, v in self._extra_entries]
        feats = np.zeros((self.data.n_patients, nb * kk + sum(widths)), dtype=np.float64)
        pat = self.data.patient
        for j, (cases, cells) in enumerate(self._entries):
            np.add.at(feats, (pat[cases], j * kk + cells), 1.0)
        off = nb * kk
        extras: dict[str, tuple[int, int]] = {}
        for (name, rows, vals), w in zip(self._extra_entries, widths):
            np.add.at(feats, (pat[rows][:, None], off + np.arange(w)[None, :]), vals)
            extras[name] = (off, off + w)
            off += w
        sums = bootstrap_sums(feats, n_replicates=n_replicates, seed=seed)
        boot_tables = sums[:, : nb * kk].reshape(n_replicates, nb, k, k)
        tables = np.stack(self._tables) if nb else np.zeros((0, k, k), dtype=np.int64)
        return BootstrapPass(blocks=dict(self.blocks), tables=tables, obs_stats=table_stats(tables),
                             boot_tables=boot_tables, boot_stats=table_stats(boot_tables), extras=extras,
                             observed_extras=feats.sum(axis=0), boot_extras=sums)


@dataclass(frozen=True)
class Intervals:
    """The interval settings of one analysis: confidence, replicates, binomial method, unit."""

    confidence: float
    n_bootstrap: int
    binomial: str
    unit: str

    @classmethod
    def of(cls, stats: StatisticsOptions, *, unit: str) -> Intervals:
        return cls(stats.confidence, stats.n_bootstrap, stats.binomial_interval, unit)

    @property
    def boot_method(self) -> str:
        """The method name of a patient-bootstrap interval."""
        return bootstrap_method_name(self.n_bootstrap, self.confidence, unit=self.unit)

    def boot(self, point: float | np.floating | None, samples: np.ndarray) -> Estimate:
        """Percentile patient-bootstrap interval around ``point``."""
        return bootstrap_estimate(None if point is None else float(point), samples, n_replicates=self.n_bootstrap,
                                  confidence=self.confidence, unit=self.unit)

    def boot_sub(self, point: float | np.floating | None, samples: np.ndarray) -> BootstrapInterval:
        """The bootstrap interval that accompanies an analytic estimate (no point value)."""
        e = self.boot(point, samples).model_dump()
        e.pop("estimate")
        return BootstrapInterval(**e)
