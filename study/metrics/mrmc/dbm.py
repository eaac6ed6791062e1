"""Dorfman-Berbaum-Metz (DBM) analysis: the modality x reader x case ANOVA of jackknife pseudovalues.

``Y_ijk = c theta_ij - (c-1) theta_ij(k)``, normalised so that their mean over cases equals
``theta_ij``, with Hillis' ddf (Dorfman et al. 1992; Hillis et al. 2008; see
:mod:`study.metrics.mrmc`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from study.metrics.mrmc.design import Design
from study.metrics.mrmc.inference import (
    ANALYSIS_NAMES,
    bounded_estimate,
    confidence_label,
    difference,
    f_test,
    safe_div,
    satterthwaite,
)
from study.results.mrmc import (
    Analysis,
    AnalysisName,
    DBMMeanSquares,
    DBMVarianceComponents,
    Difference,
    FTest,
    ModalityFom,
    PseudovalueMeanSquares,
)

__all__ = ["dbm_analysis", "pseudovalues", "three_way_mean_squares"]


def pseudovalues(theta: np.ndarray, jk: np.ndarray) -> np.ndarray:
    """Jackknife pseudovalues, normalised so their mean over cases is theta (shape t, r, c)."""
    c = jk.shape[-1]
    y = c * theta[..., None] - (c - 1) * jk
    out: np.ndarray = y + (theta - y.mean(axis=-1))[..., None]
    return out


def three_way_mean_squares(y: np.ndarray) -> dict[str, float]:
    """Mean squares of the pseudovalue ANOVA ``y[t, r, c]`` (the ``ms_t*`` terms when ``t > 1``)."""
    t, r, c = y.shape
    g = y.mean()
    m_i, m_j, m_k = y.mean(axis=(1, 2)), y.mean(axis=(0, 2)), y.mean(axis=(0, 1))
    m_ij, m_ik, m_jk = y.mean(axis=2), y.mean(axis=1), y.mean(axis=0)
    ms = {
        "ms_r": t * c * ((m_j - g) ** 2).sum() / (r - 1),
        "ms_c": t * r * ((m_k - g) ** 2).sum() / (c - 1),
        "ms_rc": t * ((m_jk - m_j[:, None] - m_k[None, :] + g) ** 2).sum() / ((r - 1) * (c - 1)),
    }
    if t > 1:
        ms["ms_t"] = r * c * ((m_i - g) ** 2).sum() / (t - 1)
        ms["ms_tr"] = c * ((m_ij - m_i[:, None] - m_j[None, :] + g) ** 2).sum() / ((t - 1) * (r - 1))
        ms["ms_tc"] = r * ((m_ik - m_i[:, None] - m_k[None, :] + g) ** 2).sum() / ((t - 1) * (c - 1))
        resid = (y - m_ij[:, :, None] - m_ik[:, None, :] - m_jk[None, :, :] + m_i[:, None, None]
                 + m_j[None, :, None] + m_k[None, None, :] - g)
        ms["ms_trc"] = (resid ** 2).sum() / ((t - 1) * (r - 1) * (c - 1))
    return {k: float(v) for k, v in ms.items()}


def _variance_components(t: int, r: int, c: int, ms: dict[str, float], warnings: list[str]) -> DBMVarianceComponents:
    note = "ANOVA estimates from the pseudovalue mean squares (can be negative)"
    if t == 1:
        return DBMVarianceComponents(var_r=(ms["ms_r"] - ms["ms_rc"]) / c, var_c=(ms["ms_c"] - ms["ms_rc"]) / r,
                                     var_tr=None, var_tc=None, var_rc=None, var_rc_error=ms["ms_rc"],
                                     var_trc_error=None, note=note)
    tc_excess = ms["ms_tc"] - ms["ms_trc"]
    if tc_excess < 0:
        warnings.append(f"DBM: MS(T*C) - MS(T*R*C) = {tc_excess:.3g} < 0, set to 0 in the error term (Hillis 2008)")
    return DBMVarianceComponents(
        var_r=(ms["ms_r"] - ms["ms_tr"] - ms["ms_rc"] + ms["ms_trc"]) / (t * c),
        var_c=(ms["ms_c"] - ms["ms_tc"] - ms["ms_rc"] + ms["ms_trc"]) / (t * r),
        var_tr=(ms["ms_tr"] - ms["ms_trc"]) / c, var_tc=(ms["ms_tc"] - ms["ms_trc"]) / r,
        var_rc=(ms["ms_rc"] - ms["ms_trc"]) / t, var_trc_error=ms["ms_trc"], note=note)


def _modality_fom(a: str, value: float, s: dict[str, float], r: int, c: int, alpha: float) -> ModalityFom:
    conf = confidence_label(alpha)
    parts = {"ms_r": s["ms_r"], "ms_c": s["ms_c"], "ms_rc": s["ms_rc"]}
    if a == "rrrc":
        den_i = s["ms_r"] + max(s["ms_c"] - s["ms_rc"], 0.0)
        return bounded_estimate(ModalityFom, value, np.sqrt(den_i / (r * c)), satterthwaite(den_i, s["ms_r"], r - 1), alpha,
                          f"DBM single-modality t interval, ddf_H_single (Hillis 2007), {conf}", **parts)
    if a == "frrc":
        return bounded_estimate(ModalityFom, value, np.sqrt(s["ms_c"] / (r * c)), c - 1, alpha,
                          f"DBM FRRC t interval, df = c-1, {conf}", **parts)
    return bounded_estimate(ModalityFom, value, np.sqrt(s["ms_r"] / (r * c)), r - 1, alpha,
                      f"DBM RRFC t interval, df = r-1, {conf}", **parts)


def _single_reader_differences(d: Design, theta: np.ndarray, y: np.ndarray, alpha: float) -> list[Difference]:
    """FRRC, one reader at a time: the T x C ANOVA of its pseudovalues; MS(T*C) is the error term."""
    t, c = y.shape[0], y.shape[2]
    conf = confidence_label(alpha)
    pairs = list(itertools.combinations(range(t), 2))
    out = []
    for j, rd in enumerate(d.readers):
        yj = y[:, j, :]
        res_j = yj - yj.mean(axis=1, keepdims=True) - yj.mean(axis=0, keepdims=True) + yj.mean()
        ms_tc_j = float((res_j ** 2).sum() / ((t - 1) * (c - 1)))
        se_j = np.sqrt(2 * ms_tc_j / c)
        for p, q in pairs:
            out.append(difference(d.modalities[p], d.modalities[q], theta[p, j] - theta[q, j], se_j, (t - 1) * (c - 1),
                                  alpha, f"DBM single-reader t interval, df = (t-1)(c-1), {conf}",
                                  kind="single_reader", reader=rd, ms_tc=ms_tc_j))
    return out


def dbm_analysis(d: Design, theta: np.ndarray, jk: np.ndarray, alpha: float, analyses: Sequence[AnalysisName],
                 warnings: list[str]) -> tuple[dict[AnalysisName, Analysis], DBMVarianceComponents, DBMMeanSquares]:
    """The DBM analyses (``analyses``: some of rrrc, frrc, rrfc), variance components and mean squares."""
    t, r = theta.shape
    c = d.c
    y = pseudovalues(theta, jk.reshape(t, r, c))
    ms = three_way_mean_squares(y)
    single = [three_way_mean_squares(y[i:i + 1]) for i in range(t)]
    conf = confidence_label(alpha)
    mod_names = d.modalities
    fom_i = theta.mean(axis=1)
    pairs = list(itertools.combinations(range(t), 2))
    comps = _variance_components(t, r, c, ms, warnings)
    res: dict[AnalysisName, Analysis] = {}
    for a in analyses:
        mods = {mod_names[i]: _modality_fom(a, fom_i[i], single[i], r, c, alpha) for i in range(t)}
        test: FTest | None = None
        diffs: list[Difference] = []
        per_reader: list[Difference] | None = None
        if t > 1:
            if a == "rrrc":
                den = ms["ms_tr"] + max(ms["ms_tc"] - ms["ms_trc"], 0.0)
                ddf = satterthwaite(den, ms["ms_tr"], (t - 1) * (r - 1))
                formula = "MS(T*R) + max(MS(T*C) - MS(T*R*C), 0)"
                meth = f"DBM RRRC t interval, ddf_H (Hillis 2007), {conf}"
            elif a == "frrc":
                den, ddf, formula = ms["ms_tc"], (t - 1) * (c - 1), "MS(T*C)"
                meth = f"DBM FRRC t interval, df = (t-1)(c-1), {conf}"
            else:
                den, ddf, formula = ms["ms_tr"], (t - 1) * (r - 1), "MS(T*R)"
                meth = f"DBM RRFC t interval, df = (t-1)(r-1), {conf}"
            test = f_test(safe_div(ms["ms_t"], den), t - 1, ddf, den, formula)
            se = np.sqrt(2 * den / (r * c))
            diffs = [difference(mod_names[p], mod_names[q], fom_i[p] - fom_i[q], se, ddf, alpha, meth)
                     for p, q in pairs]
            if a == "frrc":
                per_reader = _single_reader_differences(d, theta, y, alpha)
        res[a] = Analysis(name=ANALYSIS_NAMES[a], modalities=mods, test=test, differences=diffs,
                          single_reader_differences=per_reader)
    mean_squares = DBMMeanSquares(**ms, df_t=t - 1, df_r=r - 1, df_c=c - 1, df_tr=(t - 1) * (r - 1),
                                  df_tc=(t - 1) * (c - 1), df_rc=(r - 1) * (c - 1),
                                  df_trc=(t - 1) * (r - 1) * (c - 1),
                                  by_modality={mod_names[i]: PseudovalueMeanSquares(**single[i]) for i in range(t)})
    return res, comps, mean_squares
