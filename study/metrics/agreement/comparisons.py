"""Model against readers: paired differences on shared cases, McNemar's test, reader groups.

Against one reader, on the cases both graded: each one's accuracy (Wilson score or
Clopper-Pearson) and quadratic kappa (Wald-ASE), the differences model minus reader with the
patient-bootstrap interval (the same replicates for both raters, so the difference is
paired), and McNemar's exact test. Against a reader group: the means over the group's
readers of the same statistics and differences (patient bootstrap); no McNemar test, since
several readers' readings of one case are not independent pairs.

References
----------
McNemar Q (1947), Psychometrika 12:153-157 (exact binomial form: statsmodels ``mcnemar``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from study.estimate import Estimate
from study.metrics.agreement.data import RatingData
from study.metrics.agreement.design import BootstrapDesign, BootstrapPass, Intervals
from study.metrics.clustered import MCNEMAR_METHOD as CLUSTERED_MCNEMAR_METHOD
from study.metrics.clustered import (
    clustered_kappa,
    clustered_mcnemar,
    clustered_proportion,
)
from study.metrics.intervals import BinomialMethod, binomial_ci, cohen_kappa
from study.results.agreement import (
    Comparison,
    GroupComparison,
    McNemarNotDone,
    McNemarTest,
    NoSharedCases,
    ReaderComparison,
)

MCNEMAR_METHOD = "McNemar exact (binomial) test, two-sided"
_PAIRED = "model minus reader, same cases"
_GROUP_MEAN = "mean over the group's readers of (model minus reader) on each reader's cases graded by both"


class ModelReaderBlocks(NamedTuple):
    """A model and a reader on the cases both graded: their codes and their tables in the design."""

    model: str
    reader: str
    shared: np.ndarray
    model_codes: np.ndarray
    reader_codes: np.ndarray
    model_block: int
    reader_block: int


def register_model_reader(design: BootstrapDesign, models: list[str], readers: list[str]) -> list[ModelReaderBlocks]:
    """Add each model's and each reader's table on the cases both graded to ``design``.

    A rater's own table is reused when the shared cases are all the cases it graded.
    """
    data = design.data
    ref = data.ref
    out = []
    for m in models:
        for r in readers:
            cm, cr = data.raters[m], data.raters[r]
            shared, im, ir = np.intersect1d(cm.cases, cr.cases, assume_unique=True, return_indices=True)
            km = ("rater", m) if len(shared) == len(cm.cases) else ("on", m, r)
            kr = ("rater", r) if len(shared) == len(cr.cases) else ("on", r, m)
            jm = design.block(km, shared, ref[shared], cm.codes[im])
            jr = design.block(kr, shared, ref[shared], cr.codes[ir])
            out.append(ModelReaderBlocks(m, r, shared, cm.codes[im], cr.codes[ir], jm, jr))
    return out


def mcnemar_test(model_ok: np.ndarray, reader_ok: np.ndarray, patient: np.ndarray | None = None) -> McNemarTest:
    """McNemar's exact test of paired correct / wrong gradings (cases as independent pairs), or,
    with the ``patient`` of each case, the clustered test of Durkalski et al. (2003)."""
    from statsmodels.stats.contingency_tables import mcnemar

    both = int((model_ok & reader_ok).sum())
    m_only = int((model_ok & ~reader_ok).sum())
    r_only = int((~model_ok & reader_ok).sum())
    neither = int((~model_ok & ~reader_ok).sum())
    if patient is not None:
        codes = np.unique(patient, return_inverse=True)[1]
        stat, p_cl = clustered_mcnemar(np.bincount(codes, weights=model_ok & ~reader_ok),
                                       np.bincount(codes, weights=~model_ok & reader_ok))
        return McNemarTest(p_value=p_cl, statistic=stat, method=CLUSTERED_MCNEMAR_METHOD, both_correct=both,
                           model_only_correct=m_only, reader_only_correct=r_only, both_wrong=neither,
                           n_patients=int(codes.max()) + 1 if len(codes) else 0,
                           reason=None if p_cl is not None else
                           "every patient's discordant images cancel: the clustered test is undefined")
    p = 1.0 if m_only + r_only == 0 else float(mcnemar([[both, m_only], [r_only, neither]], exact=True).pvalue)
    return McNemarTest(p_value=p, method=MCNEMAR_METHOD, both_correct=both, model_only_correct=m_only,
                   reader_only_correct=r_only, both_wrong=neither, note="treats cases as independent pairs")


def _versus_reader(iv: Intervals, data: RatingData, boot: BootstrapPass,
                   p: ModelReaderBlocks) -> ReaderComparison | NoSharedCases:
    n = len(p.shared)
    if n == 0:
        return NoSharedCases(model=p.model, versus=p.reader, versus_kind="reader", n_cases=0,
                             reason="no case graded by both")
    ref = data.ref[p.shared]
    binomial: BinomialMethod = "clopper_pearson" if iv.binomial == "clopper_pearson" else "wilson"
    obs, bs = boot.obs_stats, boot.boot_stats
    jm, jr = p.model_block, p.reader_block

    def diff(stat: str) -> Estimate:
        return iv.boot(obs[stat][jm] - obs[stat][jr], bs[stat][:, jm] - bs[stat][:, jr]).with_fields(
            definition=_PAIRED)

    if iv.clustered:
        pm, pr = boot.patient_tables(jm), boot.patient_tables(jr)
        return ReaderComparison(
            model=p.model, versus=p.reader, versus_kind="reader", n_cases=n,
            n_patients=len(np.unique(data.patient[p.shared])),
            model_accuracy=clustered_proportion(np.trace(pm, axis1=1, axis2=2), pm.sum(axis=(1, 2)),
                                                confidence=iv.confidence),
            versus_accuracy=clustered_proportion(np.trace(pr, axis1=1, axis2=2), pr.sum(axis=(1, 2)),
                                                 confidence=iv.confidence),
            model_kappa_quadratic=clustered_kappa(pm, weights="quadratic", confidence=iv.confidence),
            versus_kappa_quadratic=clustered_kappa(pr, weights="quadratic", confidence=iv.confidence),
            accuracy_difference=diff("accuracy"), kappa_quadratic_difference=diff("kappa_quadratic"),
            mcnemar=mcnemar_test(p.model_codes == ref, p.reader_codes == ref, data.patient[p.shared]))
    return ReaderComparison(
        model=p.model, versus=p.reader, versus_kind="reader", n_cases=n,
        model_accuracy=binomial_ci(int((p.model_codes == ref).sum()), n, confidence=iv.confidence, method=binomial),
        versus_accuracy=binomial_ci(int((p.reader_codes == ref).sum()), n, confidence=iv.confidence, method=binomial),
        model_kappa_quadratic=cohen_kappa(boot.tables[jm], weights="quadratic", confidence=iv.confidence),
        versus_kappa_quadratic=cohen_kappa(boot.tables[jr], weights="quadratic", confidence=iv.confidence),
        accuracy_difference=diff("accuracy"), kappa_quadratic_difference=diff("kappa_quadratic"),
        mcnemar=mcnemar_test(p.model_codes == ref, p.reader_codes == ref))


def _versus_group(iv: Intervals, boot: BootstrapPass, model: str, group: str, members: list[str],
                  per_reader: dict[str, ModelReaderBlocks]) -> GroupComparison | NoSharedCases:
    use = [r for r in members if len(per_reader[r].shared) > 0]
    n = int(sum(len(per_reader[r].shared) for r in use))
    if not use:
        return NoSharedCases(model=model, versus=group, versus_kind="group", readers=[], n_cases=n,
                             reason="no case graded by the model and a reader of the group")
    jm = [per_reader[r].model_block for r in use]
    jr = [per_reader[r].reader_block for r in use]
    obs, bs = boot.obs_stats, boot.boot_stats

    def means(stat: str) -> tuple[Estimate, Estimate, Estimate]:
        """Model, readers and model minus readers: means over the group's readers."""
        mo, ro = obs[stat][jm].mean(), obs[stat][jr].mean()
        mb, rb = bs[stat][:, jm].mean(axis=1), bs[stat][:, jr].mean(axis=1)
        return iv.boot(mo, mb), iv.boot(ro, rb), iv.boot(mo - ro, mb - rb).with_fields(definition=_GROUP_MEAN)

    acc, kq = means("accuracy"), means("kappa_quadratic")
    return GroupComparison(
        model=model, versus=group, versus_kind="group", readers=sorted(use), n_cases=n,
        model_accuracy=acc[0], versus_accuracy=acc[1], accuracy_difference=acc[2],
        model_kappa_quadratic=kq[0], versus_kappa_quadratic=kq[1], kappa_quadratic_difference=kq[2],
        mcnemar=McNemarNotDone(p_value=None, method=MCNEMAR_METHOD,
                               reason="several readers' readings of one case are not independent pairs; "
                                      "use the bootstrap interval of the difference"))


def comparisons(iv: Intervals, data: RatingData, boot: BootstrapPass, pairs: list[ModelReaderBlocks],
                groups: dict[str, list[str]]) -> list[Comparison]:
    """Each model against each reader, then each model against each reader group (sorted by name)."""
    out: list[Comparison] = []
    by_model: dict[str, dict[str, ModelReaderBlocks]] = {}
    for p in pairs:
        by_model.setdefault(p.model, {})[p.reader] = p
        out.append(_versus_reader(iv, data, boot, p))
    for m, per_reader in by_model.items():
        for g, members in sorted(groups.items()):
            out.append(_versus_group(iv, boot, m, g, members, per_reader))
    return out
