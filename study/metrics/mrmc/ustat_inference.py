"""Degrees of freedom, tests and intervals of the U-statistic MRMC analysis, as iMRMC 4.0.3 computes them.

- BDG degrees of freedom (``StatTest.calcDF_BDGms``): a Satterthwaite approximation over the
  non-diseased-case, diseased-case and reader terms, each the MLE BCK component with
  ``df = round(1 / coefficient - 1)`` (Obuchowski 2012), ``df = var^2 / sum_t (MS_t / df_t)^2 / df_t``;
  bounded below by the smallest ``df_t`` (Gaylor and Hopper 1969) and by 2. For a difference,
  each term whose units are paired across modalities uses the difference of the components on
  the smaller ``df_t``, an unpaired term contributes both modalities' terms separately. A modality
  read by one fixed reader (an algorithm) has no reader term (``df_R = 0``): it is left out.
- Hillis degrees of freedom (``StatTest.calcDF_Hillis``, fully crossed only): single modality
  ``(r - 1) [MS(R) + r max(Cov2, 0)]^2 / MS(R)^2``; difference
  ``(r - 1) [MS(T*R) + r max(Cov2 - Cov3, 0)]^2 / MS(T*R)^2`` (Hillis 2007, 2014), with
  ``Cov2, Cov3`` from the U-statistic moments; at least 2, 50 when infinite.
- Tests and intervals: the t distribution on ``int(df)`` degrees of freedom, the normal one when
  ``df >= 50``; the normal approximation alongside.

References
----------
Obuchowski NA, Gallas BD, Hillis SL (2012). Multi-reader ROC studies with split-plot designs:
a comparison of statistical methods. Acad Radiol 19:1508-1517.
Gaylor DW, Hopper FN (1969). Estimating the degrees of freedom for linear combinations of mean
squares by Satterthwaite's formula. Technometrics 11:691-706.
Hillis SL (2007). Stat Med 26:596-619; Hillis SL (2014). Stat Med 33:330-360.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from study.metrics.mrmc.ustat_auc import AUCMoments

__all__ = ["NORMAL_FROM_DF", "bdg_df", "bdg_df_difference", "hillis_df", "hillis_df_difference", "t_inference"]

#: from this many degrees of freedom on, iMRMC uses the normal distribution
NORMAL_FROM_DF = 50.0

_N, _D, _R = 0, 1, 3  # BCK indices of the non-diseased, diseased and reader components


def _round(x: float) -> float:
    """Java's ``Math.round`` (half up)."""
    return float(math.floor(x + 0.5))


def _dfs(m: AUCMoments) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.array([_round(1.0 / m.bck_coefficients[k] - 1.0) if m.bck_coefficients[k] > 0 else np.inf
                         for k in (_N, _D, _R)])


def _bounded(df: float, df_min: float) -> float:
    return max(df, df_min, 2.0)


def _term(ms: float, df: float) -> float:
    """``(MS / df)^2 / df``; a term on 0 degrees of freedom (one fixed reader: the algorithm) adds nothing."""
    return ms ** 2 / df ** 3 if df > 0 else 0.0


def _min_df(dfs: np.ndarray) -> float:
    pos = dfs[dfs > 0]
    return float(pos.min()) if pos.size else 2.0


def bdg_df(var: float, aa: AUCMoments) -> float | None:
    """BDG degrees of freedom of one modality's AUC (``None`` when the variance is negative)."""
    if not var >= 0:
        return None
    dfs = _dfs(aa)
    ms = aa.bck_biased[[_N, _D, _R]]
    denom = float(sum(_term(m, d) for m, d in zip(ms, dfs)))
    df = var ** 2 / denom if denom > 0 else np.inf
    return _bounded(df, _min_df(dfs))


def bdg_df_difference(var: float, aa: AUCMoments, bb: AUCMoments, ab: AUCMoments) -> float | None:
    """BDG degrees of freedom of the difference of two modalities' AUCs."""
    if not var >= 0:
        return None
    dfa, dfb = _dfs(aa), _dfs(bb)
    dfm = np.minimum(dfa, dfb)
    denom = 0.0
    for n, k in enumerate((_N, _D, _R)):
        if ab.bck_coefficients[k] > 0:  # paired across modalities
            ms = aa.bck_biased[k] + bb.bck_biased[k] - 2 * ab.bck_biased[k]
            denom += _term(ms, dfm[n])
        else:
            denom += _term(aa.bck_biased[k], dfa[n]) + _term(bb.bck_biased[k], dfb[n])
    df = var ** 2 / denom if denom > 0 else np.inf
    # the bound: the smallest df of a term that varies (a fixed single reader has none)
    return _bounded(df, _min_df(np.where(dfm > 0, dfm, np.maximum(dfa, dfb))))


def _cov2(m: AUCMoments, n0: int, n1: int) -> float:
    """OR covariance of two readers' AUCs from the different-reader moments M5..M8 (iMRMC ``BDG2OR``)."""
    c = np.array([1.0, n0 - 1.0, n1 - 1.0, (n0 - 1.0) * (n1 - 1.0)]) / (n0 * n1)
    c[3] -= 1.0
    return float(c @ m.moments[4:])


def _hillis(ms: float, extra: float, r: int) -> float:
    if ms == 0:
        return NORMAL_FROM_DF
    denom = ms + max(r * extra, 0.0)
    return max((r - 1.0) * denom ** 2 / ms ** 2, 2.0)


def hillis_df(reader_aucs: np.ndarray, aa: AUCMoments, n0: int, n1: int) -> float:
    """Hillis (2007) degrees of freedom of one modality's AUC, fully crossed data."""
    r = len(reader_aucs)
    return _hillis(float(np.var(reader_aucs, ddof=1)), _cov2(aa, n0, n1), r)


def hillis_df_difference(auc_a: np.ndarray, auc_b: np.ndarray, aa: AUCMoments, bb: AUCMoments, ab: AUCMoments,
                         n0: int, n1: int) -> float:
    """Hillis (2014) degrees of freedom of the difference of two modalities' AUCs, fully crossed data."""
    r = len(auc_a)
    theta = np.column_stack([auc_a, auc_b])
    resid = theta - theta.mean(axis=0) - theta.mean(axis=1, keepdims=True) + theta.mean()
    ms_tr = float((resid ** 2).sum() / (r - 1))
    cov2 = (_cov2(aa, n0, n1) + _cov2(bb, n0, n1)) / 2
    cov3 = _cov2(ab, n0, n1)
    return _hillis(ms_tr, cov2 - cov3, r)


def t_inference(value: float, var: float | None, df: float | None, null: float | None,
                alpha: float) -> tuple[float | None, float | None, tuple[float | None, float | None]]:
    """Statistic ``(value - null) / se``, two-sided p and interval on ``int(df)`` (normal when ``df`` is
    ``None`` ... infinite or at least 50), as iMRMC."""
    if var is None or not var >= 0 or not math.isfinite(var):
        return None, None, (None, None)
    se = math.sqrt(var)
    if df is None or df >= NORMAL_FROM_DF:
        dist = stats.norm
        q = float(dist.ppf(1 - alpha / 2))
        sf = dist.sf
    else:
        tdist = stats.t(int(df))
        q = float(tdist.ppf(1 - alpha / 2))
        sf = tdist.sf
    ci = (value - q * se, value + q * se)
    if null is None or se == 0:
        return None, None, ci
    stat = (value - null) / se
    return stat, float(2 * sf(abs(stat))), ci
