"""Obuchowski-Rockette (OR) analysis of the reader x modality figures of merit, with Hillis' ddf.

``theta_ij = mu + tau_i + R_j + (tau R)_ij + e_ij``; the error covariance (jackknife, bootstrap
or DeLong) is summarised as ``Var``, ``Cov1`` (same reader, different modalities), ``Cov2``
(different readers, same modality) and ``Cov3`` (different readers and modalities). The
formulas are those of Obuchowski & Rockette (1995), Hillis et al. (2005, Table I) and Hillis
(2007); see :mod:`study.metrics.mrmc`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from study.metrics.mrmc.design import Design
from study.metrics.mrmc.inference import (
    ANALYSIS_NAMES,
    bounded_estimate,
    confidence_label,
    difference,
    f_test,
    mean_masked,
    safe_div,
    satterthwaite,
)
from study.results.mrmc import (
    Analysis,
    AnalysisName,
    Difference,
    FTest,
    ModalityFom,
    ORAnova,
    ORVarianceComponents,
)

__all__ = ["or_analysis", "or_covariances", "two_way_mean_squares"]


def or_covariances(theta: np.ndarray, cov: np.ndarray) -> dict[str, Any]:
    """Var, Cov1, Cov2, Cov3 (overall, per modality, per reader) from the ``(t*r)^2`` covariance matrix."""
    t, r = theta.shape
    S = cov.reshape(t, r, t, r)
    same_i = np.broadcast_to(np.eye(t, dtype=bool)[:, None, :, None], S.shape)
    same_j = np.broadcast_to(np.eye(r, dtype=bool)[None, :, None, :], S.shape)
    out: dict[str, Any] = {
        "var": mean_masked(S, same_i & same_j),
        "cov1": mean_masked(S, ~same_i & same_j),
        "cov2": mean_masked(S, same_i & ~same_j),
        "cov3": mean_masked(S, ~same_i & ~same_j),
    }
    offr = ~np.eye(r, dtype=bool)
    offt = ~np.eye(t, dtype=bool)
    out["var_by_modality"] = [float(np.mean([S[i, j, i, j] for j in range(r)])) for i in range(t)]
    out["cov2_by_modality"] = [mean_masked(S[i, :, i, :], offr) for i in range(t)]
    out["var_by_reader"] = [float(np.mean([S[i, j, i, j] for i in range(t)])) for j in range(r)]
    out["cov1_by_reader"] = [mean_masked(S[:, j, :, j], offt) for j in range(r)]
    return out


def two_way_mean_squares(theta: np.ndarray) -> dict[str, Any]:
    """Mean squares of the modality x reader ANOVA of ``theta[t, r]`` (``ms_t``, ``ms_tr`` when ``t > 1``)."""
    t, r = theta.shape
    g = theta.mean()
    mi, mj = theta.mean(axis=1), theta.mean(axis=0)
    out: dict[str, Any] = {"ms_r_by_modality": [float(np.var(theta[i], ddof=1)) for i in range(t)]}
    if t > 1:
        out["ms_t"] = float(r * ((mi - g) ** 2).sum() / (t - 1))
        out["ms_tr"] = float(((theta - mi[:, None] - mj[None, :] + g) ** 2).sum() / ((t - 1) * (r - 1)))
        out["ms_t_by_reader"] = [float(np.var(theta[:, j], ddof=1)) for j in range(r)]
    out["ms_r"] = float(t * ((mj - g) ** 2).sum() / (r - 1))
    return out


def _variance_components(t: int, ms: dict[str, Any], cv: dict[str, Any], cov_name: str) -> ORVarianceComponents:
    # ANOVA estimates (can be negative); as the Iowa software, Var(T*R) uses Cov2 - Cov3
    # without truncation (Hillis et al. 2005, Table I).
    var, cov1, cov2, cov3 = cv["var"], cv["cov1"], cv["cov2"], cv["cov3"]
    if t > 1:
        var_tr = ms["ms_tr"] - var + cov1 + (cov2 - cov3)
        var_r = (ms["ms_r"] - var - (t - 1) * cov1 + cov2 + (t - 1) * cov3 - var_tr) / t
    else:
        var_tr = np.nan
        var_r = ms["ms_r"] - var + cov2
    return ORVarianceComponents(
        var_r=var_r, var_tr=var_tr, cov1=cov1, cov2=cov2, cov3=cov3, var_error=var,
        corr1=safe_div(cov1, var) if t > 1 else None, corr2=safe_div(cov2, var),
        corr3=safe_div(cov3, var) if t > 1 else None, covariance_method=cov_name,
        note="ANOVA estimates (can be negative); corr_k = Cov_k / Var(error)")


def _anova(d: Design, t: int, r: int, ms: dict[str, Any], cv: dict[str, Any]) -> ORAnova:
    mod_names = d.modalities
    return ORAnova(
        ms_t=ms.get("ms_t"), ms_r=ms["ms_r"], ms_tr=ms.get("ms_tr"), df_t=t - 1, df_r=r - 1, df_tr=(t - 1) * (r - 1),
        ss_t=ms["ms_t"] * (t - 1) if t > 1 else None, ss_r=ms["ms_r"] * (r - 1),
        ss_tr=ms["ms_tr"] * (t - 1) * (r - 1) if t > 1 else None,
        ms_r_by_modality=dict(zip(mod_names, ms["ms_r_by_modality"])),
        var_error_by_modality=dict(zip(mod_names, cv["var_by_modality"])),
        cov2_by_modality=dict(zip(mod_names, cv["cov2_by_modality"])),
        var_error_by_reader=dict(zip(d.readers, cv["var_by_reader"])),
        cov1_by_reader=dict(zip(d.readers, cv["cov1_by_reader"])) if t > 1 else None)


def or_analysis(d: Design, theta: np.ndarray, cov: np.ndarray, alpha: float, cov_name: str,
                analyses: Sequence[AnalysisName],
                warnings: list[str]) -> tuple[dict[AnalysisName, Analysis], ORVarianceComponents, ORAnova]:
    """The OR analyses (``analyses``: some of rrrc, frrc, rrfc), the variance components and the ANOVA.

    Appends to ``warnings`` when ``Cov2 - Cov3 < 0`` is set to 0 in the error terms (Hillis 2007).
    """
    t, r = theta.shape
    ms = two_way_mean_squares(theta)
    cv = or_covariances(theta, cov)
    var, cov1, cov2, cov3 = cv["var"], cv["cov1"], cv["cov2"], cv["cov3"]
    conf = confidence_label(alpha)
    mod_names = d.modalities
    fom_i = theta.mean(axis=1)
    res: dict[AnalysisName, Analysis] = {}
    c23 = max(cov2 - cov3, 0.0) if t > 1 else 0.0
    if t > 1 and cov2 - cov3 < 0:
        warnings.append(f"OR: Cov2 - Cov3 = {cov2 - cov3:.3g} < 0, set to 0 in the error terms (Hillis 2007)")
    pairs = list(itertools.combinations(range(t), 2))
    for a in analyses:
        mods: dict[str, ModalityFom] = {}
        test: FTest | None = None
        diffs: list[Difference] = []
        per_reader: list[Difference] | None = None
        if a == "rrrc":
            for i in range(t):
                den_i = ms["ms_r_by_modality"][i] + r * max(cv["cov2_by_modality"][i], 0.0)
                df_i = satterthwaite(den_i, ms["ms_r_by_modality"][i], r - 1)
                mods[mod_names[i]] = bounded_estimate(ModalityFom, fom_i[i], np.sqrt(den_i / r), df_i, alpha,
                                                f"OR single-modality t interval, ddf_H_single (Hillis 2007), {conf}",
                                                ms_r=ms["ms_r_by_modality"][i], cov2=cv["cov2_by_modality"][i])
            if t > 1:
                den = ms["ms_tr"] + r * c23
                ddf = satterthwaite(den, ms["ms_tr"], (t - 1) * (r - 1))
                test = f_test(ms["ms_t"] / den, t - 1, ddf, den, "MS(T*R) + r*max(Cov2 - Cov3, 0)")
                se = np.sqrt(2 / r * den)
                diffs = [difference(mod_names[p], mod_names[q], fom_i[p] - fom_i[q], se, ddf, alpha,
                                    f"OR RRRC t interval, ddf_H (Hillis 2007), {conf}") for p, q in pairs]
        elif a == "frrc":
            for i in range(t):
                se_i = np.sqrt((cv["var_by_modality"][i] + (r - 1) * max(cv["cov2_by_modality"][i], 0.0)) / r)
                mods[mod_names[i]] = bounded_estimate(ModalityFom, fom_i[i], se_i, None, alpha,
                                                f"OR FRRC normal interval, {conf}",
                                                var_error=cv["var_by_modality"][i], cov2=cv["cov2_by_modality"][i])
            if t > 1:
                den = var - cov1 + (r - 1) * c23
                test = f_test((t - 1) * ms["ms_t"] / den, t - 1, None, den,
                              "Var(error) - Cov1 + (r-1)*max(Cov2 - Cov3, 0)", name="chi-square")
                se = np.sqrt(2 / r * den)
                diffs = [difference(mod_names[p], mod_names[q], fom_i[p] - fom_i[q], se, None, alpha,
                                    f"OR FRRC normal interval, {conf}") for p, q in pairs]
                per_reader = []
                for j, rd in enumerate(d.readers):
                    den_j = cv["var_by_reader"][j] - cv["cov1_by_reader"][j]
                    se_j = np.sqrt(2 * den_j) if den_j > 0 else np.nan
                    for p, q in pairs:
                        per_reader.append(difference(mod_names[p], mod_names[q], theta[p, j] - theta[q, j], se_j,
                                                     None, alpha, f"OR single-reader normal interval, {conf}",
                                                     kind="single_reader", reader=rd,
                                                     var_error=cv["var_by_reader"][j], cov1=cv["cov1_by_reader"][j]))
        else:  # rrfc
            for i in range(t):
                mods[mod_names[i]] = bounded_estimate(ModalityFom, fom_i[i], np.sqrt(ms["ms_r_by_modality"][i] / r), r - 1,
                                                alpha, f"t interval over readers (cases fixed), {conf}",
                                                ms_r=ms["ms_r_by_modality"][i])
            if t > 1:
                ddf_fc = (t - 1) * (r - 1)
                test = f_test(safe_div(ms["ms_t"], ms["ms_tr"]), t - 1, ddf_fc, ms["ms_tr"], "MS(T*R)")
                se = np.sqrt(2 / r * ms["ms_tr"])
                diffs = [difference(mod_names[p], mod_names[q], fom_i[p] - fom_i[q], se, ddf_fc, alpha,
                                    f"RRFC t interval, df = (t-1)(r-1), {conf}") for p, q in pairs]
        res[a] = Analysis(name=ANALYSIS_NAMES[a], modalities=mods, test=test, differences=diffs,
                          single_reader_differences=per_reader)
    return res, _variance_components(t, ms, cv, cov_name), _anova(d, t, r, ms, cv)
