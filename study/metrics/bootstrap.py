"""Vectorised patient-level (cluster) bootstrap.

A replicate draws ``P`` patients with replacement from the ``P`` patients of the study; a
patient drawn ``m`` times contributes all of its cases ``m`` times. Every statistic of this
project that is bootstrapped is a function of *sums over cases* of a few per-case features
(one-hot cells of confusion matrices, rating counts per level, ...), so a replicate's sums
are ``weights @ patient_features``, where ``weights`` is the replicate's ``(P,)`` vector of
draw counts and ``patient_features`` the per-patient sums of the features. All replicates
at once are one matrix product ``(B x P) @ (P x F)``. Using the same weight matrix for every
rater makes differences between raters properly paired.

References
----------
Davison AC, Hinkley DV (1997). Bootstrap Methods and their Application, section 3.8
(resampling clustered data: resample the clusters). Efron B, Tibshirani RJ (1993), An
Introduction to the Bootstrap, ch. 13 (percentile intervals).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from study.estimate import Estimate
from study.metrics.intervals import level_pct


def bootstrap_method_name(n_replicates: int, confidence: float, *, unit: str = "patients") -> str:
    return f"percentile bootstrap resampling {unit}, {n_replicates} replicates, {level_pct(confidence)}"


_CONTROLLER = None


def _blas_controller():
    """A cached threadpoolctl controller (creating one inspects every loaded library: ~0.5 ms)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def resampling_weights(n_units: int, *, n_replicates: int, rng: np.random.Generator,
                       chunk: int = 256):
    """Yield ``(b, P)`` float32 blocks of draw counts, ``n_replicates`` rows in total.

    Each row is the multinomial(P, 1/P) vector of how often each unit was drawn.
    """
    done = 0
    while done < n_replicates:
        b = min(chunk, n_replicates - done)
        idx = rng.integers(0, n_units, size=(b, n_units))
        idx += (np.arange(b) * n_units)[:, None]
        yield np.bincount(idx.ravel(), minlength=b * n_units).reshape(b, n_units).astype(np.float32)
        done += b


class ReplicateWeights:
    """The draw counts of ``n_replicates`` bootstrap replicates over ``n_units`` units, made block
    by block (:func:`resampling_weights`) each time they are iterated, from a saved copy of the
    generator's state.

    Every pass yields the same blocks as ``list(resampling_weights(n_units, n_replicates=...,
    rng=rng))`` would, but only one ``(chunk, n_units)`` block is held at a time, so the
    replicates are never stored whole (``n_replicates x n_units`` float32: 800 MB for 2,000
    replicates of 100,000 patients) and several statistics (F1, FROC, presence, segmentation)
    share one definition of the replicates without sharing a copy of them.

    Parameters
    ----------
    n_units : int
        Units (patients) resampled.
    n_replicates : int
        Replicates in total (0: none; the object is then falsy).
    rng : numpy Generator
        The generator the replicates are drawn from; its state is copied, not advanced.
    chunk : int
        Replicates per block.
    """

    def __init__(self, n_units: int, *, n_replicates: int, rng: np.random.Generator, chunk: int = 256) -> None:
        if n_units < 0 or n_replicates < 0 or chunk < 1:
            raise ValueError(f"need n_units >= 0, n_replicates >= 0 and chunk >= 1; got {n_units}, {n_replicates}, {chunk}")
        self.n_units = int(n_units)
        self.n_replicates = int(n_replicates)
        self.chunk = int(chunk)
        self._bit_generator = type(rng.bit_generator)
        self._state = copy.deepcopy(rng.bit_generator.state)

    def __iter__(self) -> Iterator[np.ndarray]:
        if not self:
            return iter(())
        bg = self._bit_generator()
        bg.state = copy.deepcopy(self._state)
        return resampling_weights(self.n_units, n_replicates=self.n_replicates, rng=np.random.Generator(bg),
                                  chunk=self.chunk)

    def __len__(self) -> int:
        """Number of blocks."""
        return -(-self.n_replicates // self.chunk) if self.n_units > 0 else 0

    def __repr__(self) -> str:
        return f"ReplicateWeights(n_units={self.n_units}, n_replicates={self.n_replicates}, chunk={self.chunk})"


def units_of(weight_blocks: ReplicateWeights | Sequence[np.ndarray] | Any) -> int:
    """The number of units (columns) of ``weight_blocks``: a :class:`ReplicateWeights` or a
    non-empty list of ``(b, P)`` blocks."""
    if isinstance(weight_blocks, ReplicateWeights):
        return weight_blocks.n_units
    return int(weight_blocks[0].shape[1])


def bootstrap_sums(patient_features: np.ndarray, *, n_replicates: int, seed: int | np.random.Generator,
                   chunk: int = 512) -> np.ndarray:
    """Replicate sums of per-patient features.

    Parameters
    ----------
    patient_features : ndarray, shape (P, F)
        Per-patient sums of per-case features (non-negative integers are exact in float32
        up to 2**24).
    n_replicates : int
    seed : int or numpy Generator
        The same seed gives the same replicates.

    Returns
    -------
    ndarray, shape (n_replicates, F), float64
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    x = np.ascontiguousarray(patient_features, dtype=np.float32)
    n_units = x.shape[0]
    out = np.empty((n_replicates, x.shape[1]), dtype=np.float64)
    if n_units == 0:
        out[:] = 0.0
        return out
    row = 0
    # one BLAS thread: on a shared 2-core machine, multi-threaded sgemm with a few hundred rows
    # was measured 5-10x slower than single-threaded (bench/bench_agreement_bootstrap.py)
    with _blas_controller().limit(limits=1, user_api="blas"):
        for w in resampling_weights(n_units, n_replicates=n_replicates, rng=rng, chunk=chunk):
            out[row:row + w.shape[0]] = w @ x
            row += w.shape[0]
    return out


def percentile_interval(samples: np.ndarray, *, confidence: float = 0.95) -> tuple[float | None, float | None, int]:
    """Percentile interval of bootstrap ``samples`` (NaN replicates are left out and counted).

    Returns ``(low, high, n_undefined)``; ``(None, None, n)`` when no replicate is defined.
    """
    s = np.asarray(samples, dtype=float)
    ok = np.isfinite(s)
    n_bad = int((~ok).sum())
    if not ok.any():
        return None, None, n_bad
    a = (1 - confidence) / 2
    lo, hi = np.quantile(s[ok], [a, 1 - a])
    return float(lo), float(hi), n_bad


def percentile_intervals(samples: np.ndarray, *, confidence: float = 0.95):
    """Column-wise percentile intervals of ``samples`` with shape ``(B, ...)``.

    Returns ``(low, high, n_undefined)`` arrays of shape ``samples.shape[1:]``.
    """
    s = np.asarray(samples, dtype=float)
    a = (1 - confidence) / 2
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            q = np.nanquantile(s, [a, 1 - a], axis=0)
    return q[0], q[1], (~np.isfinite(s)).sum(axis=0)


def bootstrap_estimate(point: float | None, samples: np.ndarray, *, n_replicates: int, confidence: float,
                       unit: str = "patients") -> Estimate:
    """An :class:`Estimate` from a point estimate and its bootstrap replicates.

    ``se`` is the standard deviation of the defined replicates; ``extra`` carries
    ``n_undefined`` (replicates where the statistic had a zero denominator) when non-zero.
    When every defined replicate equals the estimate, or the percentile interval has zero
    width (a statistic at its bound in nearly every resample), the interval is not given, with
    that reason, instead of a zero-width interval.
    """
    name = bootstrap_method_name(n_replicates, confidence, unit=unit)
    lo, hi, n_bad = percentile_interval(samples, confidence=confidence)
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    se = float(s.std(ddof=1)) if s.size > 1 else None
    extra = {"n_undefined": n_bad} if n_bad else None
    if point is None or not np.isfinite(point):
        return Estimate(None, None, None, name, extra={"reason": "undefined on the observed data"})  # type: ignore[arg-type]
    if s.size and lo is not None and hi is not None and hi - lo <= 1e-9 * max(1.0, abs(float(point))):
        # a statistic at its bound in (almost) every resample (e.g. AP 1, kappa 1): a zero-width
        # interval would claim certainty the data cannot give (issue 13 item 2)
        return Estimate(float(point), None, None, name, se=se,
                        extra={**(extra or {}), "reason": "the bootstrap replicates (nearly) all equal one value: "
                               "a percentile interval of zero width, so no interval is given"})
    return Estimate(float(point), lo, hi, name, se=se, extra=extra)
