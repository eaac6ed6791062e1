"""U-statistic MRMC analysis of any reader study design: :func:`analyze_ustat` (as the FDA's iMRMC).

Per modality, the reader-averaged figure of merit (empirical AUC, or sensitivity / specificity
at a threshold) with two variance estimates -- unbiased (U-statistics) and MLE (V-statistics,
the ideal bootstrap) -- and, for every pair of modalities, their difference. Works on fully
crossed, split-plot, partially crossed and unpaired-in-case data: every reading enters.

Reader weighting (as iMRMC): the AUC of a modality averages the readers' AUCs weighted by the
number of (non-diseased, diseased) case pairs each reader read, ``N0_r * N1_r`` -- equal weights
when the design is fully crossed; sensitivity and specificity weigh every reading the same
(a reader by the number of diseased, resp. non-diseased, cases read).

Modules: :mod:`~study.metrics.mrmc.ustat_auc` (AUC moments), :mod:`~study.metrics.mrmc.ustat_binary`
(binary endpoints, non-negative variances), :mod:`~study.metrics.mrmc.ustat_inference` (BDG and
Hillis degrees of freedom, tests), :mod:`~study.metrics.mrmc.ustat_design` (the design).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd

from study.errors import Problem, StudyError
from study.metrics.mrmc.ustat_auc import (
    BCK_NAMES,
    AUCKernel,
    AUCMoments,
    auc_kernel,
    kernel_moments,
)
from study.metrics.mrmc.ustat_binary import (
    BINARY_COMPONENTS,
    MOMENT_NAMES,
    BinaryMoments,
    binary_moments,
    nonnegative_variance,
)
from study.metrics.mrmc.ustat_design import (
    UStatDesignArrays,
    build_ustat_design,
    design_summary,
    patient_index,
)
from study.metrics.mrmc.ustat_inference import (
    bdg_df,
    bdg_df_difference,
    hillis_df,
    hillis_df_difference,
    t_inference,
)
from study.metrics.mrmc.ustat_patients import (
    PATIENT_TERMS,
    PatientCovariance,
    binary_patient_covariance,
    kernel_patient_covariance,
    patient_df,
)
from study.results.mrmc import (
    UStatAnalysis,
    UStatComponents,
    UStatDifference,
    UStatEstimate,
    UStatModality,
)

__all__ = ["USTAT_FOMS", "analyze_ustat"]

USTAT_FOMS = ("auc", "sensitivity", "specificity")
FomName = Literal["auc", "sensitivity", "specificity"]
AUCMethod = Literal["auto", "dense", "sums"]

REFERENCES = [
    ("Gallas BD (2006). One-shot estimate of MRMC variance: AUC. Acad Radiol 13:353-362."),
    ("Gallas BD, Bandos A, Samuelson FW, Wagner RF (2009). A framework for random-effects ROC analysis: biases "
     "with the bootstrap and other variance estimators. Commun Stat Theory Methods 38:2586-2603."),
    ("Gallas BD, Brown DG (2008). Reader studies for validation of CAD systems. Neural Networks 21:387-397."),
    ("Chen W, Wunderlich A, Petrick N, Gallas BD (2014). Multireader multicase reader studies with binary "
     "agreement data: simulation, analysis, validation, and sizing. J Med Imaging 1:031011."),
    ("Obuchowski NA, Gallas BD, Hillis SL (2012). Multi-reader ROC studies with split-plot designs: a comparison "
     "of statistical methods. Acad Radiol 19:1508-1517."),
    ("Hillis SL (2014). A marginal-mean ANOVA approach for analyzing multireader multicase radiological imaging "
     "data. Stat Med 33:330-360."),
    ("US FDA iMRMC 4.0.3 (https://github.com/DIDSR/iMRMC), the software these numbers reproduce."),
]

_DESCRIPTIONS = {
    "auc": "empirical AUC (Wilcoxon-Mann-Whitney; ties count one half), reader-averaged",
    "sensitivity": "sensitivity: fraction of diseased cases rated at or above the threshold, reader-averaged",
    "specificity": "specificity: fraction of non-diseased cases rated below the threshold, reader-averaged",
}


def _estimate(value: float, var: float | None, df: float | None, null: float | None, alpha: float, kind: str,
              label: str, hillis: float | None = None, untruncated: float | None = None) -> UStatEstimate:
    stat, p, (lo, hi) = t_inference(value, var, df, null, alpha)
    _, p_n, (lo_n, hi_n) = t_inference(value, var, None, null, alpha)
    df_h = p_h = None
    ci_h: list[float | None] | None = None
    if hillis is not None:
        _, p_h, (lo_h, hi_h) = t_inference(value, var, hillis, null, alpha)
        df_h, ci_h = hillis, [lo_h, hi_h]
    conf = f"{100 * (1 - alpha):g}%"
    method = (f"{label}; unbiased U-statistic variance; t on BDG df (iMRMC), {conf}" if kind == "unbiased"
              else f"{label}; MLE (V-statistic) variance; t on BDG df (iMRMC), {conf}")
    se = float(np.sqrt(var)) if var is not None and var >= 0 else None
    return UStatEstimate(estimate=value, ci_low=lo, ci_high=hi, method=method, se=se, df=df, variance=var,
                         variance_kind="unbiased" if kind == "unbiased" else "mle", null_value=null,
                         statistic=stat, p_value=p, p_value_normal=p_n, ci_normal=[lo_n, hi_n],
                         variance_untruncated=untruncated, df_hillis=df_h, p_value_hillis=p_h, ci_hillis=ci_h)


def _auc_components(m: AUCMoments) -> UStatComponents:
    names = [f"M{k}" for k in range(1, 9)]
    return UStatComponents(kind="auc", moments=dict(zip(names, m.moments.tolist())),
                           moments_mle=dict(zip(names, m.moments_biased.tolist())),
                           moment_coefficients=dict(zip(names, m.coefficients.tolist())),
                           components=dict(zip(BCK_NAMES, m.bck.tolist())),
                           components_mle=dict(zip(BCK_NAMES, m.bck_biased.tolist())),
                           component_coefficients=dict(zip(BCK_NAMES, m.bck_coefficients.tolist())))


def _binary_components(m: BinaryMoments, truncated: list[int]) -> UStatComponents:
    return UStatComponents(kind="binary", moments=dict(zip(MOMENT_NAMES, m.moments.tolist())),
                           moments_mle=dict(zip(MOMENT_NAMES, m.moments_biased.tolist())),
                           moment_coefficients=dict(zip(MOMENT_NAMES, m.coefficients.tolist())),
                           components=dict(zip(BINARY_COMPONENTS, m.components.tolist())),
                           components_mle=dict(zip(BINARY_COMPONENTS, m.components_biased.tolist())),
                           component_coefficients=dict(zip(BINARY_COMPONENTS, m.weights.tolist())),
                           truncated=[BINARY_COMPONENTS[t] for t in truncated])


def _fully_crossed(a: UStatDesignArrays, ks: list[int]) -> bool:
    return bool(all(a.read[k].all() for k in ks))


def _binary_df(var: float, terms: np.ndarray, m: BinaryMoments) -> float | None:
    """Satterthwaite df over the case, reader and reader x case terms (bounded below as BDG).

    With one (fixed) reader the reader and reader x case terms have no degrees of freedom of their
    own: the reader x case term then goes with the cases.
    """
    if not var > 0:
        return None
    if m.n_readers < 2:
        return max(float(m.n_cases - 1), 2.0)
    dfs = np.array([m.n_cases - 1.0, m.n_readers - 1.0, (m.n_cases - 1.0) * (m.n_readers - 1.0)])
    denom = float(np.sum(terms ** 2 / dfs))
    df = var ** 2 / denom if denom > 0 else np.inf
    return max(df, float(dfs[:2].min()), 2.0)


def analyze_ustat(ratings: pd.DataFrame, *, fom: str = "auc", threshold: float | None = None,
                  confidence: float = 0.95, patient_column: str | None = "patient_id",
                  fixed_modalities: Sequence[str] = (), source: str = "ratings",
                  auc_method: AUCMethod = "auto") -> UStatAnalysis:
    """U-statistic MRMC analysis of a ratings table of any design (iMRMC).

    Parameters
    ----------
    ratings : DataFrame
        ``modality, reader_id, case_id, truth, rating`` (one row per reading; readers need not
        read every case, nor every modality).
    fom : {"auc", "sensitivity", "specificity"}
        Figure of merit; the binary ones call ``rating >= threshold`` positive.
    threshold : float, optional
        Required for sensitivity and specificity.
    confidence : float
        Confidence level of every interval (iMRMC: 0.95).
    patient_column : str or None
        When the ratings have this column (the patient of each case), patients, not cases, are
        the random case unit of the variance (:mod:`~study.metrics.mrmc.ustat_patients`); the
        ``mle`` estimates and Hillis df are then not given. ``None``: always resample cases.
    fixed_modalities : sequence of str
        Modalities read by one fixed reader -- an algorithm standing alone: allowed one reader,
        with no reader variance (its AUC varies with the cases only).
    source : str
        The name of the ratings in error messages.
    auc_method : {"auto", "dense", "sums"}
        How the AUC sums are computed (:class:`~study.metrics.mrmc.ustat_auc.AUCKernel`): the
        dense reader x case x case matrices, or placement values and dominance counts in
        ``O(N log N)`` memory (:mod:`~study.metrics.mrmc.ustat_sums`); the same numbers.
        ``auto``: dense up to :data:`~study.metrics.mrmc.ustat_auc.DENSE_MAX_PAIRS` pairs.

    Returns
    -------
    study.results.mrmc.UStatAnalysis
        ``design`` (reader x case matrix per modality), ``modalities[m]`` (``unbiased`` and ``mle``
        estimates with BDG df, p against AUC 0.5, normal-approximation p and interval, Hillis df
        when fully crossed; per-reader values and weights; variance components), ``differences``
        (every pair of modalities, first minus second in order of appearance; per-reader
        differences for a forest plot).

    Raises
    ------
    StudyError
        A modality with fewer than two readers, or fewer than two cases of a needed truth;
        duplicate readings; a binary figure of merit without a threshold; bad options.
    """
    problems = []
    if fom not in USTAT_FOMS:
        problems.append(Problem("--fom", "", f"{fom!r}; expected one of {list(USTAT_FOMS)} with --method ustat"))
    if fom != "auc" and threshold is None:
        problems.append(Problem("--threshold", "", f"missing; fom {fom!r} needs a cut point (rating >= threshold is positive)"))
    if not 0 < confidence < 1:
        problems.append(Problem("--confidence", "", f"{confidence!r}; expected a number strictly between 0 and 1"))
    if auc_method not in ("auto", "dense", "sums"):
        problems.append(Problem("auc_method", "", f"{auc_method!r}; expected 'auto', 'dense' or 'sums'"))
    if problems:
        raise StudyError(problems)
    a = build_ustat_design(ratings, source=source, endpoint=fom, fixed_modalities=fixed_modalities)
    patients = None if patient_column is None else patient_index(ratings, a.cases, column=patient_column,
                                                                   source=source)
    alpha = 1 - confidence
    if fom == "auc":
        modalities, differences, warnings = _auc(a, alpha, patients, set(fixed_modalities), auc_method)
        weighting = ("readers weighted by the number of (non-diseased, diseased) case pairs they read, N0_r x N1_r "
                     "(iMRMC); equal weights on fully crossed data")
        variance_note = ("unbiased: U-statistic estimate from the moments M1..M8 (Gallas 2006, 2009); can be negative "
                         "on small or sparse designs (then no interval); mle: V-statistic (ideal bootstrap) estimate")
        df_note = ("BDG: Satterthwaite over the non-diseased, diseased and reader BCK terms (iMRMC calcDF_BDGms), at "
                   "least the smallest term df and 2; t quantile on int(df), normal from df 50; Hillis df where the "
                   "comparison is fully crossed")
    else:
        modalities, differences, warnings = _binary(a, alpha, fom, float(threshold),  # type: ignore[arg-type]
                                                    patients, set(fixed_modalities))
        weighting = ("every reading weighs the same: a reader is weighted by the number of "
                     f"{'diseased' if fom == 'sensitivity' else 'non-diseased'} cases read (iMRMC uStat11.jointD)")
        variance_note = ("U-statistic moments turned into case, reader and reader x case components; each 2 x 2 "
                         "(across modalities) component matrix is replaced by its nearest positive semi-definite "
                         "matrix, so the variance (a sum of traces of products with the design's Gram weight "
                         "matrices) is never negative on any design; equal to the unbiased estimate when no "
                         "component needed changing ('truncated' lists those that did; 'variance_untruncated' "
                         "the raw value)")
        df_note = ("Satterthwaite over the case (cases - 1), reader (readers - 1) and reader x case terms, at least "
                   "min(cases, readers) - 1 and 2; t quantile on int(df), normal from df 50")
    if patients is not None:
        variance_note = (f"patients ({patients[1]}), not images, are the random case unit: the U-statistic variance "
                         "over the pairs of terms sharing a reader or a patient (reader, patient and reader x patient "
                         "parts in patient_terms); image-level components for reference; " + variance_note)
        df_note = ("Satterthwaite over the reader (readers - 1), patient (patients - 1) and reader x patient terms, at "
                   "least min(readers, patients) - 1 and 2; t quantile on int(df), normal from df 50")
    return UStatAnalysis(fom=fom, fom_description=_DESCRIPTIONS[fom], threshold=threshold,  # type: ignore[arg-type]
                         confidence_level=confidence,
                         design=design_summary(a, n_patients=None if patients is None else patients[1]),
                         weighting=weighting, variance_note=variance_note, df_note=df_note,
                         resampling_unit="case" if patients is None else "patient",
                         modalities=modalities, differences=differences, references=REFERENCES, warnings=warnings)


def _auc_kernels(a: UStatDesignArrays, method: AUCMethod) -> list[AUCKernel]:
    neg, pos = a.truth == 0, a.truth == 1
    return [auc_kernel(a.rating[k][:, neg], a.rating[k][:, pos], a.read[k][:, neg], a.read[k][:, pos], method=method)
            for k in range(len(a.modalities))]


def _per_reader(d: np.ndarray, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    n = d.sum(axis=axes)
    return np.where(n > 0, x.sum(axis=axes) / np.where(n > 0, n, 1), np.nan)


def _reader_means(n: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x / n`` per reader, NaN where ``n = 0`` (as :func:`_per_reader` on the summed arrays)."""
    return np.where(n > 0, x / np.where(n > 0, n, 1), np.nan)


def _reader_dict(a: UStatDesignArrays, values: np.ndarray, present: np.ndarray) -> dict[str, float | None]:
    return {rd: (float(values[j]) if present[j] else None) for j, rd in enumerate(a.readers) if present[j]}


Patients = tuple[np.ndarray, int] | None


def _patient_estimate(value: float, cov: PatientCovariance, n_readers: int, n_patients: int, null: float | None,
                      alpha: float, label: str) -> UStatEstimate:
    return _estimate(value, cov.covariance, patient_df(cov, n_readers, n_patients), null, alpha, "unbiased",
                     f"{label}; patients resampled")


def _terms(cov: PatientCovariance | None) -> dict[str, float | None] | None:
    return None if cov is None else dict(zip(PATIENT_TERMS, cov.terms.tolist()))


def _auc(a: UStatDesignArrays, alpha: float, patients: Patients, fixed: set[str],
         method: AUCMethod = "auto") -> tuple[dict[str, UStatModality], list[UStatDifference], list[str]]:
    kernels = _auc_kernels(a, method)
    n0, n1 = int((a.truth == 0).sum()), int((a.truth == 1).sum())
    warnings: list[str] = []
    own: dict[int, AUCMoments] = {}
    own_p: dict[int, PatientCovariance] = {}
    out: dict[str, UStatModality] = {}
    per_reader: dict[int, np.ndarray] = {}

    def pcov(ka: int, kb: int) -> PatientCovariance:
        assert patients is not None
        pidx, n_p = patients
        return kernel_patient_covariance(kernels[ka], kernels[kb], pidx[a.truth == 0], pidx[a.truth == 1], n_p,
                                         fixed_reader=ka == kb and a.modalities[ka] in fixed)

    for k, m in enumerate(a.modalities):
        kern = kernels[k]
        mom = own[k] = kernel_moments(kern, kern, fixed_reader=m in fixed)
        pairs = kern.pairs()
        per_reader[k] = _reader_means(pairs, kern.successes())
        lost = [a.readers[j] for j in range(len(a.readers)) if a.read[k][j].any() and pairs[j] == 0]
        if lost:
            warnings.append(f"modality {m!r}: reader(s) {lost} read cases of one truth only and carry no weight in the AUC")
        label = f"reader-averaged AUC of {m!r}"
        present = pairs > 0
        if patients is not None:
            own_p[k] = pcov(k, k)
            unbiased = _patient_estimate(mom.auc_a, own_p[k], int(present.sum()), patients[1], 0.5, alpha, label)
            mle = None
        else:
            hillis = hillis_df(per_reader[k], mom, n0, n1) if _fully_crossed(a, [k]) else None
            unbiased = _estimate(mom.auc_a, mom.covariance, bdg_df(mom.covariance, mom), 0.5, alpha, "unbiased",
                                 label, hillis=hillis)
            mle = _estimate(mom.auc_a, mom.covariance_mle, bdg_df(mom.covariance_mle, mom), 0.5, alpha, "mle", label)
        for e in (unbiased, mle):
            if e is not None and e.variance is not None and e.variance < 0:
                warnings.append(f"modality {m!r}: the {e.variance_kind} variance estimate is negative "
                                f"({e.variance:.3g}); no interval")
        out[m] = UStatModality(unbiased=unbiased, mle=mle, readers=_reader_dict(a, per_reader[k], present),
                               reader_weights={rd: float(pairs[j] / pairs.sum()) for j, rd in enumerate(a.readers)
                                               if present[j]},
                               components=_auc_components(mom), patient_terms=_terms(own_p.get(k)))
    diffs: list[UStatDifference] = []
    for ka, kb in combinations(range(len(a.modalities)), 2):
        ma, mb = a.modalities[ka], a.modalities[kb]
        ab = kernel_moments(kernels[ka], kernels[kb])
        aa, bb = own[ka], own[kb]
        value = aa.auc_a - bb.auc_a
        both = ~np.isnan(per_reader[ka]) & ~np.isnan(per_reader[kb])
        label = f"difference of reader-averaged AUCs {ma!r} - {mb!r}"
        diff_p = None
        if patients is not None:
            diff_p = own_p[ka] + own_p[kb] - pcov(ka, kb).scaled(2.0)
            n_r = int((~np.isnan(per_reader[ka]) | ~np.isnan(per_reader[kb])).sum())
            unbiased = _patient_estimate(value, diff_p, n_r, patients[1], 0.0, alpha, label)
            mle = None
        else:
            hillis = (hillis_df_difference(per_reader[ka], per_reader[kb], aa, bb, ab, n0, n1)
                      if _fully_crossed(a, [ka, kb]) else None)
            var = aa.covariance + bb.covariance - 2 * ab.covariance
            var_b = aa.covariance_mle + bb.covariance_mle - 2 * ab.covariance_mle
            unbiased = _estimate(value, var, bdg_df_difference(var, aa, bb, ab), 0.0, alpha, "unbiased", label,
                                 hillis=hillis)
            mle = _estimate(value, var_b, bdg_df_difference(var_b, aa, bb, ab), 0.0, alpha, "mle", label)
        for e in (unbiased, mle):
            if e is not None and e.variance is not None and e.variance < 0:
                warnings.append(f"{ma!r} - {mb!r}: the {e.variance_kind} variance estimate is negative "
                                f"({e.variance:.3g}); no interval")
        diffs.append(UStatDifference(modalities=[ma, mb], comparison=f"{ma} - {mb}", unbiased=unbiased, mle=mle,
                                     readers=_reader_dict(a, per_reader[ka] - per_reader[kb], both),
                                     components=_difference_auc_components(aa, bb, ab),
                                     covariance_components=_auc_components(ab), patient_terms=_terms(diff_p)))
    return out, diffs, warnings


def _difference_auc_components(aa: AUCMoments, bb: AUCMoments, ab: AUCMoments) -> UStatComponents:
    """Moments and BCK components of the difference (A + B - 2 AB, coefficient-weighted as iMRMC's BDG[3])."""
    names = [f"M{k}" for k in range(1, 9)]
    mom = aa.coefficients * aa.moments + bb.coefficients * bb.moments - 2 * ab.coefficients * ab.moments
    mom_b = (aa.coefficients * aa.moments_biased + bb.coefficients * bb.moments_biased
             - 2 * ab.coefficients * ab.moments_biased)
    bck = aa.bck_coefficients * aa.bck + bb.bck_coefficients * bb.bck - 2 * ab.bck_coefficients * ab.bck
    bck_b = (aa.bck_coefficients * aa.bck_biased + bb.bck_coefficients * bb.bck_biased
             - 2 * ab.bck_coefficients * ab.bck_biased)
    return UStatComponents(kind="auc", moments=dict(zip(names, mom.tolist())), moments_mle=dict(zip(names, mom_b.tolist())),
                           moment_coefficients=dict.fromkeys(names, 1.0), components=dict(zip(BCK_NAMES, bck.tolist())),
                           components_mle=dict(zip(BCK_NAMES, bck_b.tolist())),
                           component_coefficients=dict.fromkeys(BCK_NAMES, 1.0))


def _binary(a: UStatDesignArrays, alpha: float, fom: str, threshold: float, patients: Patients,
            fixed: set[str]) -> tuple[dict[str, UStatModality], list[UStatDifference], list[str]]:
    cases = a.truth == (1 if fom == "sensitivity" else 0)
    kernels = []
    for k in range(len(a.modalities)):
        d = a.read[k][:, cases].astype(float)
        called = a.rating[k][:, cases] >= threshold
        kernels.append((d, (called if fom == "sensitivity" else ~called).astype(float)))
    warnings: list[str] = []
    own: dict[int, BinaryMoments] = {}
    own_p: dict[int, PatientCovariance] = {}
    per_reader: dict[int, np.ndarray] = {}
    out: dict[str, UStatModality] = {}

    def pcov(ka: int, kb: int) -> PatientCovariance:
        assert patients is not None
        return binary_patient_covariance(kernels[ka][0], kernels[ka][1], kernels[kb][0], kernels[kb][1],
                                         patients[0][cases], patients[1],
                                         fixed_reader=ka == kb and a.modalities[ka] in fixed)

    def estimates(aa: BinaryMoments, bb: BinaryMoments | None, ab: BinaryMoments | None, value: float,
                  null: float | None, label: str, cov_p: PatientCovariance | None,
                  n_readers: int) -> tuple[UStatEstimate, UStatEstimate | None, list[int]]:
        if cov_p is not None and patients is not None:
            return _patient_estimate(value, cov_p, n_readers, patients[1], null, alpha, label), None, []
        ests: dict[str, UStatEstimate] = {}
        truncated: list[int] = []
        for kind, biased in (("unbiased", False), ("mle", True)):
            var, terms, trunc = nonnegative_variance(aa, bb, ab, biased=biased)
            if bb is None or ab is None:
                raw = aa.covariance_mle if biased else aa.covariance
            else:
                raw = ((aa.covariance_mle + bb.covariance_mle - 2 * ab.covariance_mle) if biased
                       else (aa.covariance + bb.covariance - 2 * ab.covariance))
            if not biased:
                truncated = trunc
            ests[kind] = _estimate(value, var, _binary_df(var, terms, ab or aa), null, alpha, kind, label,
                                   untruncated=raw if trunc else None)
        return ests["unbiased"], ests["mle"], truncated

    for k, m in enumerate(a.modalities):
        d, kern = kernels[k]
        mom = own[k] = binary_moments(d, kern, d, kern, fixed_reader=m in fixed)
        per_reader[k] = _per_reader(d, d * kern, (1,))
        n_read = d.sum(axis=1)
        present = n_read > 0
        if patients is not None:
            own_p[k] = pcov(k, k)
        unbiased, mle, truncated = estimates(mom, None, None, mom.mean_a, None, f"reader-averaged {fom} of {m!r}",
                                             own_p.get(k), int(present.sum()))
        if truncated:
            warnings.append(f"modality {m!r}: {fom} variance component(s) "
                            f"{[BINARY_COMPONENTS[t] for t in truncated]} estimated negative, set to zero")
        if unbiased.variance is not None and unbiased.variance < 0:
            warnings.append(f"modality {m!r}: the patient-level variance estimate is negative; no interval")
        out[m] = UStatModality(unbiased=unbiased, mle=mle, readers=_reader_dict(a, per_reader[k], present),
                               reader_weights={rd: float(n_read[j] / n_read.sum()) for j, rd in enumerate(a.readers)
                                               if present[j]},
                               components=_binary_components(mom, truncated), patient_terms=_terms(own_p.get(k)))
    diffs: list[UStatDifference] = []
    for ka, kb in combinations(range(len(a.modalities)), 2):
        ma, mb = a.modalities[ka], a.modalities[kb]
        aa, bb = own[ka], own[kb]
        ab = binary_moments(kernels[ka][0], kernels[ka][1], kernels[kb][0], kernels[kb][1])
        both = ~np.isnan(per_reader[ka]) & ~np.isnan(per_reader[kb])
        diff_p = None if patients is None else own_p[ka] + own_p[kb] - pcov(ka, kb).scaled(2.0)
        n_r = int((~np.isnan(per_reader[ka]) | ~np.isnan(per_reader[kb])).sum())
        unbiased, mle, truncated = estimates(aa, bb, ab, aa.mean_a - bb.mean_a, 0.0,
                                             f"difference of reader-averaged {fom} {ma!r} - {mb!r}", diff_p, n_r)
        if truncated:
            warnings.append(f"{ma!r} - {mb!r}: {fom} component matrices {[BINARY_COMPONENTS[t] for t in truncated]} "
                            "were not positive semi-definite; replaced by the nearest ones")
        if unbiased.variance is not None and unbiased.variance < 0:
            warnings.append(f"{ma!r} - {mb!r}: the patient-level variance estimate is negative; no interval")
        diffs.append(UStatDifference(modalities=[ma, mb], comparison=f"{ma} - {mb}", unbiased=unbiased, mle=mle,
                                     readers=_reader_dict(a, per_reader[ka] - per_reader[kb], both),
                                     components=_binary_components(ab, truncated),
                                     covariance_components=_binary_components(ab, truncated),
                                     patient_terms=_terms(diff_p)))
    return out, diffs, warnings
