"""Every endpoint's decision from the step outputs of one run (the ``decide`` step).

For each endpoint of the plan: the estimate with its interval, the test statistic, the
one-sided p-value (:mod:`study.plan.hypothesis_tests`), the multiplicity-adjusted p-value
(:mod:`study.plan.multiplicity`), the criterion and the decision in words. Case-level
proportions (accuracy, sensitivity, specificity) and kappa are computed here from the
reference, model and reader grades (they need the pairing of cases); detection, counting
and MRMC estimates are read from their steps' results.

A paired difference against one comparator reading per case (another model, or a single
reader) on independent cases uses Tango's (1998) score test and interval; against the
average of several readers, or over cases clustered in patients, the paired difference of
the per-case correctness with the clustered ratio-estimator variance (Obuchowski 1998).
Patients as the unit: a proportion against a goal over cases of several images per patient
is tested exactly on the Rao-Scott effective counts (the counts divided by the design
effect from the clustered variance); kappa uses the
patient bootstrap of :mod:`study.metrics.bootstrap` (the clustered-inference module of
issue 13 was not on main when this was written).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from study.estimate import Estimate
from study.metrics.intervals import KappaWeights
from study.plan.hypothesis_tests import (
    TestOutcome,
    clustered_mean,
    exact_goal_test,
    kappa_goal_test,
    null_values,
    rao_scott_design_effect,
    tango_paired_test,
    wald_test,
)
from study.plan.metrics import METRICS
from study.plan.model import READING_MODALITIES, AnalysisPlan, Endpoint, Population
from study.plan.multiplicity import adjust_p_values
from study.results.decisions import AnalysisPlanResults, EndpointDecision, LockStatus

__all__ = ["StudyData", "decide_endpoints"]

_KAPPA_WEIGHTS: dict[str, KappaWeights] = {"kappa_unweighted": None, "kappa_linear": "linear",
                                           "kappa_quadratic": "quadratic"}
Decision = Literal["met", "not met", "not estimable", "exploratory"]


@dataclass
class StudyData:
    """What the decisions need from one run (included cases only).

    ``reference``: ``case_id, grade``; ``model_grades``: model id -> ``case_id, grade``;
    ``readings``: ``reader_id, reader_group, case_id, grade``; ``patient_of``: case -> patient;
    ``covariates``: ``case_id`` + subgroup columns; ``detection`` / ``counting``: model id ->
    that step's JSON; ``mrmc``: the MRMC step's JSON.
    """

    levels: list[str]
    reference: pd.DataFrame
    model_grades: dict[str, pd.DataFrame]
    readings: pd.DataFrame
    patient_of: dict[str, str]
    covariates: pd.DataFrame
    detection: dict[str, Any] = field(default_factory=dict)
    counting: dict[str, Any] = field(default_factory=dict)
    mrmc: dict[str, Any] | None = None
    operating_threshold: float = 0.5
    confidence: float = 0.95
    bootstrap_replicates: int = 2000
    seed: int = 0


# ----------------------------------------------------------------------------- words
def _other_modality(e: Endpoint) -> str:
    """The modality the readers read in as the rater of a ``modality`` comparison (the one not named)."""
    return next(m for m in READING_MODALITIES if m != e.comparator.modality)


def _rater_words(e: Endpoint) -> str:
    if e.comparator.kind == "modality":
        return f"the readers reading {_other_modality(e)}"  # the aid is the endpoint's rater (model)
    return e.rater or "the model"


def _desc(e: Endpoint) -> str:
    if e.comparator.kind == "modality" and METRICS[e.metric].kind == "mrmc":
        return "MRMC figure of merit (AUC) averaged over the readers"
    d = METRICS[e.metric].description
    return d.replace("<cut>", str(e.positive_from)).replace("<class>", "any lesion" if e.lesion_class == "any"
                                                            else e.lesion_class)


def _population(e: Endpoint) -> str:
    return "all included cases" if not isinstance(e.population, Population) else e.population.words()


def _criterion(e: Endpoint, alpha1: float) -> str:
    h, c = e.hypothesis, e.comparator
    lower_better = METRICS[e.metric].direction == "lower"
    bound = f"{'upper' if lower_better else 'lower'} one-sided {100 * (1 - alpha1):g}% confidence bound"
    what = _desc(e) if c.kind == "goal" else f"the difference in {_desc(e)}, {_rater_words(e)} minus {c.words()}"
    if h.kind == "performance_goal" and METRICS[e.metric].kind == "kappa":
        return (f"{what} exceeds the goal {c.value:g} in the one-sided test with the SE under the null "
                f"(Flack et al. 1988) at level {alpha1:g}")
    if h.kind == "performance_goal":
        return f"the {bound} of {what} is at or {'below' if lower_better else 'above'} the goal {c.value:g}"
    if h.kind == "superiority":
        return f"the {bound} of {what} is {'below' if lower_better else 'above'} 0"
    if h.kind == "non_inferiority":
        assert h.margin is not None
        return (f"the {bound} of {what} is {'below' if lower_better else 'above'} "
                f"{h.margin if lower_better else -h.margin:g} (non-inferiority margin {h.margin:g})")
    assert h.margins is not None
    centre = c.value if c.kind == "goal" and c.value is not None else 0.0
    return (f"the two-sided {100 * (1 - 2 * alpha1):g}% confidence interval of {what}"
            f"{' minus the goal' if c.kind == 'goal' else ''} lies within [{h.margins[0]:g}, {h.margins[1]:g}]"
            f"{f' around {centre:g}' if c.kind == 'goal' else ''}")


def _hypothesis_words(e: Endpoint) -> str:
    h = e.hypothesis
    extra = ""
    if h.kind == "non_inferiority" and h.margin is not None:
        extra = f" (margin {h.margin:g})"
    elif h.kind == "equivalence" and h.margins is not None:
        extra = f" (margins {h.margins[0]:g} to {h.margins[1]:g})"
    return f"{h.kind.replace('_', '-')}{extra} of {_rater_words(e)} against {e.comparator.words()}"


def _estimand(e: Endpoint) -> dict[str, str]:
    if e.estimand is not None:
        return e.estimand.model_dump()
    return {"population": f"{_population(e)} (eligible and passing the image-quality gate)",
            "variable": f"{_desc(e)} of {_rater_words(e)}" + ("" if e.comparator.kind == "goal" else
                                                     f" and of {e.comparator.words()}"),
            "intercurrent_events": "an image that fails the quality gate is excluded before analysis (counted in "
                                   "the flow of cases); a missing reading leaves that case out of that reader's "
                                   "comparison only; a model that returns no detection on an image counts zero "
                                   "lesions there",
            "summary_measure": (_desc(e) if e.comparator.kind == "goal" else f"difference in {_desc(e)}")
                               + f", with the {e.unit} as the unit of analysis"}


# ----------------------------------------------------------------------------- case-level data
def _population_ids(e: Endpoint, data: StudyData) -> set[str]:
    ids = set(data.reference["case_id"].astype(str))
    if isinstance(e.population, Population):
        cov = data.covariates
        col = e.population.column
        if col not in cov.columns:
            return set()
        wanted = {str(v) for v in e.population.values}
        ids &= set(cov.loc[cov[col].astype(str).isin(wanted), "case_id"].astype(str))
    return ids


def _correct(metric: str, cut: int | None, ref: np.ndarray, rated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(in the denominator, correct) per case for accuracy / sensitivity / specificity."""
    if metric == "grading_accuracy":
        return np.ones(len(ref), bool), rated == ref
    assert cut is not None
    if metric == "grade_sensitivity":
        return ref >= cut, rated >= cut
    return ref < cut, rated < cut


def _codes(df: pd.DataFrame, levels: list[str]) -> pd.Series:
    index = {lv: i for i, lv in enumerate(levels)}
    return pd.Series(df["grade"].astype(str).map(index).to_numpy(), index=df["case_id"].astype(str).to_numpy())


def _proportion(e: Endpoint, data: StudyData, alpha1: float) -> tuple[TestOutcome, Estimate | None, int, int]:
    rater = str(e.rater)  # resolved by decide_endpoints before any test runs
    m = METRICS[e.metric]
    ids = _population_ids(e, data)
    ref = _codes(data.reference, data.levels)
    ref = ref[ref.index.isin(ids)]
    cut = data.levels.index(e.positive_from) if e.positive_from else None
    nulls = null_values(e.hypothesis.kind, goal=e.comparator.value or 0.0, margin=e.hypothesis.margin,
                        margins=e.hypothesis.margins, direction=m.direction)
    grades = data.model_grades.get(rater)
    if grades is None:
        why = f"no grades of model {rater!r} in this run"
        return TestOutcome(Estimate(None, None, None, "", extra={"reason": why}), None, None, None, why), None, 0, 0
    rated = _codes(grades, data.levels).reindex(ref.index)
    keep = rated.notna().to_numpy()
    case_ids = ref.index.to_numpy()[keep]
    in_den, ok = _correct(e.metric, cut, ref.to_numpy()[keep], rated.to_numpy()[keep].astype(int))
    case_ids, ok = case_ids[in_den], ok[in_den].astype(float)
    if e.comparator.kind == "goal":
        patients = [data.patient_of.get(c, c) for c in case_ids]
        n_pat = len(set(patients))
        deff = 1.0 if e.unit == "image" or n_pat == len(case_ids) else rao_scott_design_effect(ok, patients)
        out = exact_goal_test(int(ok.sum()), len(ok), nulls=nulls, alpha1=alpha1, design_effect=deff)
        return out, None, len(ok), n_pat
    # paired: rater minus the comparator on the cases both graded
    if e.comparator.kind == "model":
        other = data.model_grades.get(str(e.comparator.model))
        if other is None:
            why = f"no grades of model {e.comparator.model!r} in this run"
            return TestOutcome(Estimate(None, None, None, "", extra={"reason": why}), None, None, None, why), None, 0, 0
        comp = _codes(other, data.levels).reindex(case_ids)
        comp_ok = pd.Series(_correct(e.metric, cut, ref.reindex(case_ids).to_numpy(), comp.fillna(-1).to_numpy()
                                     .astype(int))[1].astype(float), index=case_ids)[comp.notna().to_numpy()]
        label = f"model {e.comparator.model}"
    else:
        rd = data.readings
        if e.comparator.reader_group:
            rd = rd[rd["reader_group"].astype(str) == e.comparator.reader_group]
        rd = rd[rd["case_id"].astype(str).isin(set(case_ids))]
        if rd.empty:
            why = "no reader read a case of the endpoint's population"
            return TestOutcome(Estimate(None, None, None, "", extra={"reason": why}), None, None, None, why), None, 0, 0
        rc = rd["grade"].astype(str).map({lv: i for i, lv in enumerate(data.levels)}).to_numpy().astype(int)
        rref = ref.reindex(rd["case_id"].astype(str)).to_numpy().astype(int)
        r_ok = _correct(e.metric, cut, rref, rc)[1].astype(float)
        comp_ok = pd.Series(r_ok, index=rd["case_id"].astype(str).to_numpy()).groupby(level=0).mean()
        label = "readers' average"
    both = [c for c in case_ids if c in comp_ok.index]
    model_ok = pd.Series(ok, index=case_ids).reindex(both).to_numpy()
    c_ok = comp_ok.reindex(both).to_numpy()
    clusters = [data.patient_of.get(c, c) if e.unit == "patient" else c for c in both]
    cm, cse, n, _ = clustered_mean(c_ok, clusters)
    unit_words = "patients" if e.unit == "patient" else "cases"
    if len(set(clusters)) == len(both) and np.isin(c_ok, (0.0, 1.0)).all():
        # one comparator reading per case, cases independent: Tango's score test and interval
        b = int(((model_ok == 1) & (c_ok == 0)).sum())
        c = int(((model_ok == 0) & (c_ok == 1)).sum())
        out = tango_paired_test(b, c, len(both), nulls=nulls, alpha1=alpha1)
    else:
        mean, se, n, _ = clustered_mean(model_ok - c_ok, clusters)
        out = wald_test(mean, se, nulls=nulls, alpha1=alpha1, bounds=(-1, 1), extra={"n": n},
                        method=f"Wald, paired difference, variance clustered over {unit_words} (Obuchowski 1998)")
    comp_est = wald_test(cm, cse, nulls=[(0.0, "higher")], alpha1=alpha1, bounds=(0, 1), extra={"n": n},
                         method=f"{label}, Wald, clustered over {unit_words}").estimate
    return out, comp_est, n, len({data.patient_of.get(c, c) for c in both})


def _kappa(e: Endpoint, data: StudyData, alpha1: float) -> tuple[TestOutcome, int, int]:
    rater = str(e.rater)  # resolved by decide_endpoints before any test runs
    from study.metrics.bootstrap import bootstrap_sums
    from study.metrics.intervals import kappa_ase_stacked, kappa_stacked

    weights: KappaWeights = _KAPPA_WEIGHTS[e.metric]
    nulls = null_values(e.hypothesis.kind, goal=e.comparator.value or 0.0, margin=e.hypothesis.margin,
                        margins=e.hypothesis.margins, direction=METRICS[e.metric].direction)
    ids = _population_ids(e, data)
    ref = _codes(data.reference, data.levels)
    ref = ref[ref.index.isin(ids)]
    grades = data.model_grades.get(rater)
    rated = _codes(grades, data.levels).reindex(ref.index) if grades is not None else pd.Series(dtype=float)
    keep = rated.notna().to_numpy() if len(rated) else np.zeros(len(ref), bool)
    cases = ref.index.to_numpy()[keep]
    a, b = ref.to_numpy()[keep].astype(int), rated.to_numpy()[keep].astype(int) if keep.any() else np.array([], int)
    kk = len(data.levels)
    cells = a * kk + b
    table = np.bincount(cells, minlength=kk * kk).reshape(kk, kk).astype(float)
    kappa, ase = (float(x) for x in kappa_ase_stacked(table, weights=weights))
    patients = [data.patient_of.get(c, c) for c in cases]
    n_pat = len(set(patients))
    se_scale, interval_se, method = 1.0, None, "Wald, asymptotic SE (Fleiss, Cohen & Everitt 1969)"
    if e.unit == "patient" and n_pat < len(cases) and math.isfinite(kappa) and ase > 0:
        codes, inv = np.unique(np.asarray(patients), return_inverse=True)
        feats = np.zeros((len(codes), kk * kk))
        np.add.at(feats, (inv, cells), 1.0)
        sums = bootstrap_sums(feats, n_replicates=data.bootstrap_replicates, seed=data.seed)
        boot = kappa_stacked(sums.reshape(-1, kk, kk), weights=weights)
        interval_se = float(np.nanstd(boot, ddof=1))
        se_scale = max(1.0, interval_se / ase)
        method = (f"Wald, SE from {data.bootstrap_replicates} patient-bootstrap replicates; null SE times "
                  f"the patient design factor {se_scale:.3g}")
    out = kappa_goal_test(table, nulls=nulls, alpha1=alpha1, weights=weights, se_scale=se_scale,
                          interval_se=interval_se, interval_method=method)
    return out, len(cases), n_pat


def _dig(obj: Any, path: list[str | int]) -> Any:
    for key in path:
        if isinstance(key, int):
            obj = obj[key] if isinstance(obj, list) and len(obj) > key else None
        else:
            obj = obj.get(key) if isinstance(obj, dict) else None
        if obj is None:
            return None
    return obj


def _not_estimable(why: str) -> TestOutcome:
    return TestOutcome(Estimate(None, None, None, "", extra={"reason": why}), None, None, None, why)


def _modality(e: Endpoint, data: StudyData, alpha1: float) -> tuple[TestOutcome, str]:
    """The readers in one reading modality minus the other, from ``mrmc.ustat.aided_vs_unaided``.

    The reader-averaged AUC difference of the U-statistic analysis on every included case with
    readings (iMRMC; Gallas 2006, 2009), its unbiased variance and BDG degrees of freedom: a t
    test of the difference against the hypothesis' null value (Wald on ``df``).
    """
    source = "mrmc.ustat.aided_vs_unaided.differences[0].unbiased"
    if METRICS[e.metric].kind != "mrmc":
        return _not_estimable(f"metric {e.metric} cannot compare one reading modality with another (aided / "
                              "unaided); only mrmc_fom_difference can"), source
    ustat = (data.mrmc or {}).get("ustat")
    if not isinstance(ustat, dict):
        reason = (data.mrmc or {}).get("reason") or "the MRMC step wrote no U-statistic analysis"
        return _not_estimable(f"the readers aided versus unaided were not analysed: {reason}"), source
    a = ustat.get("aided_vs_unaided") or {}
    if a.get("assessed") is False or not a.get("differences"):
        return _not_estimable(f"the readers aided versus unaided were not analysed: "
                              f"{a.get('reason') or 'no difference of modalities'}"), source
    if e.unit == "patient" and a.get("resampling_unit") != "patient":
        return _not_estimable("the endpoint's unit is the patient but the cases have no patient ids "
                              "(the MRMC variance resampled images)"), source
    d = a["differences"][0]
    est = dict(d["unbiased"])
    rater_mod = _other_modality(e)
    if list(d["modalities"]) == [e.comparator.modality, rater_mod]:  # turn it round: rater minus comparator
        est.update(estimate=-est["estimate"] if est.get("estimate") is not None else None,
                   ci_low=-est["ci_high"] if est.get("ci_high") is not None else None,
                   ci_high=-est["ci_low"] if est.get("ci_low") is not None else None)
    elif list(d["modalities"]) != [rater_mod, e.comparator.modality]:
        return _not_estimable(f"the analysis compares {d['comparison']}, not {rater_mod} - "
                              f"{e.comparator.modality}"), source
    if est.get("estimate") is None or est.get("se") is None:
        var = est.get("variance")
        why = (f"the unbiased U-statistic variance of the difference is not positive ({var:.3g}): too few readers "
               "or cases for this design" if isinstance(var, (int, float)) else "the difference or its variance "
               "is undefined")
        return _not_estimable(f"{source}: {why}"), source
    m = METRICS[e.metric]
    nulls = null_values(e.hypothesis.kind, goal=0.0, margin=e.hypothesis.margin, margins=e.hypothesis.margins,
                        direction=m.direction)
    method = (f"t test of the reader-averaged AUC difference ({rater_mod} - {e.comparator.modality}) with the "
              "unbiased U-statistic variance and BDG degrees of freedom (Gallas 2006, 2009; iMRMC), "
              f"{a.get('resampling_unit', 'case')}s resampled")
    n_cases = (a.get("design") or {}).get("n_cases")
    return wald_test(float(est["estimate"]), float(est["se"]), nulls=nulls, alpha1=alpha1, method=method,
                     df=est.get("df"), bounds=(-1.0, 1.0),
                     extra={"n": n_cases} if n_cases is not None else None), source


def _reported(e: Endpoint, data: StudyData, alpha1: float) -> tuple[TestOutcome, str]:
    rater = str(e.rater)  # resolved by decide_endpoints before any test runs
    from scipy import stats

    m = METRICS[e.metric]
    nulls = null_values(e.hypothesis.kind, goal=e.comparator.value or 0.0, margin=e.hypothesis.margin,
                        margins=e.hypothesis.margins, direction=m.direction)
    df = None
    if m.kind == "mrmc":
        if not data.mrmc or not data.mrmc.get("assessed", True) or "models" not in data.mrmc:
            reason = (data.mrmc or {}).get("reason", "the MRMC analysis was not run")
            return TestOutcome(Estimate(None, None, None, "", extra={"reason": reason}), None, None, None, reason), ""
        analysis = _dig(data.mrmc, ["models", rater, "analysis"])
        name = (analysis or {}).get("analysis", "rrrc")
        path: list[str | int] = ["models", rater, "analysis", "ai_vs_readers", 0, "analyses", name]
        est = _dig(data.mrmc, path)
        source = f"mrmc.models.{rater}.analysis.ai_vs_readers[0].analyses.{name}"
        method = f"Hillis (2007) {name.upper()} t test of the model minus the readers' average"
        df = est.get("df") if est else None
        if est is None:
            reason = _dig(data.mrmc, ["models", rater, "reason"]) or f"no MRMC result for model {rater!r}"
            return TestOutcome(Estimate(None, None, None, "", extra={"reason": reason}), None, None, None, reason), source
    else:
        cls = "any_lesion" if e.lesion_class == "any" else e.lesion_class
        if e.metric.startswith("count_"):
            block = data.counting.get(rater) or {}
            th = next((k for k in (block.get("thresholds") or {}) if abs(float(k) - data.operating_threshold) < 1e-9), None)
            leaf = "mae" if e.metric == "count_mae" else "mean_bias"
            est = _dig(block, ["thresholds", th, "overall", leaf]) if th is not None else None
            source = f"counting.{rater}.thresholds.{th}.overall.{leaf}"
        else:
            block = data.detection.get(rater) or {}
            leaf = {"lesion_recall": "recall", "lesion_precision": "precision", "lesion_f1": "f1", "ap50": "ap_ci"}[e.metric]
            est = _dig(block, ["any_lesion", leaf] if cls == "any_lesion" else ["classes", cls, leaf])
            source = f"detection.{rater}.{'any_lesion' if cls == 'any_lesion' else 'classes.' + cls}.{leaf}"
        method = "Wald test with the SE of the step's interval"
        if est is None:
            why = f"{source} is not in this run's results"
            return TestOutcome(Estimate(None, None, None, "", extra={"reason": why}), None, None, None, why), source
    value, se = est.get("estimate"), est.get("se")
    if se is None and est.get("ci_low") is not None and est.get("ci_high") is not None:
        se = (est["ci_high"] - est["ci_low"]) / (2 * float(stats.norm.ppf(0.5 + data.confidence / 2)))
        method += f" ({est.get('method', '')}; SE = interval width / (2 z))"
    bounds = (0.0, 1.0) if m.bounded else None
    if m.kind == "mrmc":
        bounds = (-1.0, 1.0)
    return wald_test(value, se, nulls=nulls, alpha1=alpha1, method=method, df=df, bounds=bounds,
                     extra={"n": est["n"]} if est.get("n") is not None else None), source


# ----------------------------------------------------------------------------- decisions
def _one(e: Endpoint, data: StudyData, alpha1: float) -> dict[str, Any]:
    m = METRICS[e.metric]
    if e.rater is None:
        why = f"the endpoint names no rater and the run has {len(data.model_grades)} models"
        return {"outcome": TestOutcome(Estimate(None, None, None, "", extra={"reason": why}), None, None, None, why),
                "comparator_estimate": None, "source": m.source, "n_cases": None, "n_patients": None}
    comp_est, source = None, m.source.replace("<model>", str(e.rater))
    n_cases = n_pat = None
    if e.comparator.kind == "modality":
        out, source = _modality(e, data, alpha1)
        if out.p_value is not None:
            design = ((data.mrmc or {}).get("ustat") or {}).get("aided_vs_unaided", {}).get("design") or {}
            n_cases, n_pat = design.get("n_cases"), design.get("n_patients")
    elif m.kind == "proportion":
        out, comp_est, n_cases, n_pat = _proportion(e, data, alpha1)
    elif m.kind == "kappa":
        out, n_cases, n_pat = _kappa(e, data, alpha1)
    else:
        out, src = _reported(e, data, alpha1)
        source = src or source
    return {"outcome": out, "comparator_estimate": comp_est, "source": source, "n_cases": n_cases, "n_patients": n_pat}


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def decide_endpoints(plan: AnalysisPlan, data: StudyData, *, lock: LockStatus) -> AnalysisPlanResults:
    """Test every endpoint of ``plan`` on ``data`` and decide the confirmatory ones.

    Parameters
    ----------
    plan : the protocol's analysis plan.
    data : the run's grades, readings and metric results (:class:`StudyData`).
    lock : the lock status of this run (:func:`study.plan.lock.lock_status`).

    Returns
    -------
    AnalysisPlanResults
        One :class:`EndpointDecision` per endpoint, in the plan's order.
    """
    plan = plan.with_rater(sorted(data.model_grades))
    alpha1 = plan.one_sided_alpha
    raw = {e.id: _one(e, data, alpha1) for e in plan.endpoints}
    confirmatory = [e.id for e in plan.endpoints if e.confirmatory]
    order = plan.multiplicity.endpoints if plan.multiplicity else confirmatory
    ps = [raw[i]["outcome"].p_value if raw[i]["outcome"].p_value is not None else 1.0 for i in order]
    if plan.multiplicity:
        mp = plan.multiplicity
        adjusted = dict(zip(order, adjust_p_values(ps, procedure=mp.procedure, weights=mp.weights,
                                                   transitions=mp.transitions)))
        multiplicity = {"fixed_sequence": "fixed-sequence (hierarchical) testing in the order "
                        + " > ".join(order) + ", each at the full alpha until the first not met",
                        "holm": "Holm's step-down procedure (Holm 1979)",
                        "bonferroni": "Bonferroni correction",
                        "graphical": "the graphical procedure of Bretz et al. (2009), weights "
                        f"{mp.weights}, transitions {mp.transitions}"}[mp.procedure]
    else:
        adjusted = dict(zip(order, ps))
        multiplicity = "none needed (one confirmatory endpoint)"
    decisions = []
    decision: Decision
    overall: Literal["met", "not met", "not estimable"]
    fixed = plan.multiplicity is not None and plan.multiplicity.procedure == "fixed_sequence"
    first_failed = next((i for i in order if adjusted[i] > alpha1), None)
    for e in plan.endpoints:
        r = raw[e.id]
        out: TestOutcome = r["outcome"]
        criterion = _criterion(e, alpha1)
        est = out.estimate
        ci = f"{_fmt(est.estimate)} ({100 * (1 - 2 * alpha1):g}% CI {_fmt(est.ci_low)} to {_fmt(est.ci_high)})"
        reason = out.reason
        if not e.confirmatory:
            decision, p_adj = "exploratory", None
            text = f"Exploratory: {ci}; one-sided p = {_fmt(out.p_value)} (no multiplicity control, no decision)."
        elif out.p_value is None:
            decision, p_adj = "not estimable", None
            text = f"NOT ESTIMABLE: {reason}."
        else:
            p_adj = adjusted[e.id]
            met = p_adj <= alpha1
            decision = "met" if met else "not met"
            text = (f"{'MET' if met else 'NOT MET'}: {ci}; {criterion}; one-sided p = {_fmt(out.p_value)}, "
                    f"adjusted p = {_fmt(p_adj)} {'<=' if met else '>'} {alpha1:g}.")
            if not met and fixed and first_failed is not None and first_failed != e.id and out.p_value <= alpha1:
                reason = f"not reached: {first_failed}, earlier in the fixed sequence, was not met"
                text += f" Not reached in the fixed sequence: {first_failed} was not met before it."
        decisions.append(EndpointDecision(
            id=e.id, role=e.role, metric=e.metric, metric_description=_desc(e), source=r["source"], rater=e.rater or "(not named)",
            comparator=e.comparator.words(), hypothesis=_hypothesis_words(e), criterion=criterion, unit=e.unit,
            population=_population(e), estimand=_estimand(e), estimate=est, comparator_estimate=r["comparator_estimate"],
            statistic=out.statistic, statistic_name=out.statistic_name, p_value=out.p_value, p_adjusted=p_adj,
            alpha_one_sided=alpha1, n_cases=r["n_cases"], n_patients=r["n_patients"], decision=decision,
            decision_text=text, reason=reason))
    primaries = [d for d in decisions if d.role == "primary"]
    if any(d.decision == "not estimable" for d in primaries):
        overall, overall_text = "not estimable", ("The primary endpoint could not be estimated." if len(primaries) == 1
                                                     else "Not every primary endpoint could be estimated.")
    elif all(d.decision == "met" for d in primaries):
        overall, overall_text = "met", "Every primary endpoint met its pre-specified success criterion."
    else:
        failed = [d.id for d in primaries if d.decision != "met"]
        overall, overall_text = "not met", (f"Primary endpoint{'s' if len(failed) > 1 else ''} not met: "
                                          f"{', '.join(failed)}.")
    hyp = " ".join(f"{e.id} ({e.role}): {_hypothesis_words(e)} on {_desc(e)}; success when {_criterion(e, alpha1)}."
                   for e in plan.endpoints if e.confirmatory)
    hypotheses_text = (f"Pre-specified hypotheses, {plan.sided}-sided alpha {plan.alpha:g} (each one-sided test at "
                       f"{alpha1:g}); multiplicity: {multiplicity}. {hyp}")
    return AnalysisPlanResults(planned=True, lock=lock, alpha=plan.alpha, sided=plan.sided, multiplicity=multiplicity,
                               hypotheses_text=hypotheses_text, endpoints=decisions, primary_decision=overall,
                               primary_decision_text=overall_text)
