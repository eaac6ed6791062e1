"""One algorithm against the average of the readers in one modality (Hillis 2007, section 5.3).

This is RJafroc's ``StCadVsRad`` (Chakraborty 2017, "Standalone CAD vs. radiologists"): the
single-modality OR model of the differences ``psi_j = theta_AI - theta_j``.
"""

from __future__ import annotations

import numpy as np

from study.metrics.mrmc.inference import (
    bounded_estimate,
    confidence_label,
    difference,
    satterthwaite,
)
from study.results.mrmc import (
    AIAnalyses,
    AIVarianceComponents,
    AIVersusReaders,
    Difference,
    TEstimate,
)

__all__ = ["ai_vs_readers"]


def _with_f(d: Difference) -> Difference:
    """The difference with ``f_statistic`` = its t (or z) statistic squared."""
    return d if d.statistic is None else d.model_copy(update={"f_statistic": d.statistic ** 2})


def ai_vs_readers(theta: np.ndarray, cov: np.ndarray, ai_index: int, names: list[str], modality: str,
                  alpha: float, warnings: list[str]) -> AIVersusReaders:
    """One algorithm against the average of the other readers in one modality.

    ``psi_j = theta_AI - theta_j`` for the J human readers; the covariance of the psi's
    follows from that of the FOMs (``A Sigma A^T``); ``Var`` and ``Cov2`` are its mean
    diagonal and off-diagonal. RRRC: ``t = mean(psi) / sqrt([MS(R) + J max(Cov2, 0)] / J)``
    on ``ddf_H = [MS(R) + J max(Cov2,0)]^2 / [MS(R)^2 / (J-1)]``; RRFC: one-sample t test
    of the psi's on J-1 df; FRRC: ``se = sqrt([Var + (J-1) max(Cov2, 0)] / J)``, normal
    (Hillis 2007, section 5.3). Signs: the difference is AI minus the readers' average
    (RJafroc's StCadVsRad reports readers minus CAD).
    """
    conf = confidence_label(alpha)
    others = [k for k in range(len(theta)) if k != ai_index]
    J = len(others)
    A = np.zeros((J, len(theta)))
    A[:, ai_index] = 1.0
    A[np.arange(J), others] = -1.0
    psi = A @ theta
    cpsi = A @ cov @ A.T
    var = float(np.mean(np.diag(cpsi)))
    cov2 = float(cpsi[~np.eye(J, dtype=bool)].mean())
    msr = float(np.var(psi, ddof=1))
    mean_psi = float(psi.mean())
    ai = names[ai_index]
    label_b = "readers (average)"
    den = msr + J * max(cov2, 0.0)
    ddf = satterthwaite(den, msr, J - 1)
    den_f = var + (J - 1) * max(cov2, 0.0)
    analyses = AIAnalyses(
        rrrc=_with_f(difference(ai, label_b, mean_psi, np.sqrt(den / J), ddf, alpha,
                                f"single-modality OR t interval, ddf_H (Hillis 2007, section 5.3), {conf}",
                                kind="ai_vs_readers", modality=modality)),
        rrfc=_with_f(difference(ai, label_b, mean_psi, np.sqrt(msr / J), J - 1, alpha,
                                f"one-sample t interval over readers (cases fixed), df = J-1, {conf}",
                                kind="ai_vs_readers", modality=modality)),
        frrc=_with_f(difference(ai, label_b, mean_psi, np.sqrt(den_f / J), None, alpha,
                                f"normal interval (readers fixed), {conf}", kind="ai_vs_readers",
                                modality=modality)))
    if cov2 < 0:
        warnings.append(f"AI vs readers ({modality}): Cov2 of the differences = {cov2:.3g} < 0, set to 0")
    reader_theta = theta[others]
    # readers' own average with a single-modality OR interval (Hillis 2007)
    Sr = cov[np.ix_(others, others)]
    cov2_r = float(Sr[~np.eye(J, dtype=bool)].mean())
    msr_r = float(np.var(reader_theta, ddof=1))
    den_r = msr_r + J * max(cov2_r, 0.0)
    readers_avg = bounded_estimate(TEstimate, float(reader_theta.mean()), np.sqrt(den_r / J),
                             satterthwaite(den_r, msr_r, J - 1), alpha,
                             f"OR single-modality t interval over the readers, ddf_H_single (Hillis 2007), {conf}")
    ai_fom = bounded_estimate(TEstimate, float(theta[ai_index]), float(np.sqrt(max(cov[ai_index, ai_index], 0.0))),
                              None, alpha, f"normal interval, case-sampling variance only, {conf}")
    return AIVersusReaders(
        ai_reader=ai, modality=modality, ai_fom=ai_fom, readers_fom=readers_avg,
        readers={names[k]: float(theta[k]) for k in others},
        difference_definition="AI FOM minus the average FOM of the other readers",
        analyses=analyses,
        variance_components=AIVarianceComponents(
            var_r=msr - var + cov2, var_error=var, cov2=cov2, ms_r=msr,
            note="single-modality OR model of the differences psi_j = AI - reader j"))
