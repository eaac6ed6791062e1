"""Summary of key results and the background section."""

from __future__ import annotations

from typing import Any

from study.estimate import Estimate
from study.report import format as F
from study.report import selectors as S
from study.report.context.common import info_text, threshold_key_of
from study.report.context.detection import with_interval
from study.report.format import Table, fmt, fmt_int
from study.results import Results
from study.results.baseline import Baseline
from study.results.mrmc import MRMCBlock, UStatAnalysis


def _n_readers(results: Results) -> int:
    ag = results.agreement
    return 0 if ag is None else sum(1 for r in ag.raters.values() if r.kind != "model")


def _included(b: Baseline) -> str:
    """``"136 images from 93 patients included"`` (the patients only when known)."""
    return f"{b.n_cases} images" + (f" from {b.n_patients} patients" if b.n_patients is not None else "") + " included"


def _images(n: int | None, n_patients: int | None) -> str:
    """``"136 images, 93 patients"``: what n counts in a key-results row."""
    return f"{F.DASH if n is None else n} images" + (f", {n_patients} patients" if n_patients is not None else "")


def summary_context(results: Results) -> dict[str, Any]:
    """The key-results table (one row per endpoint and rater; a note says what n counts in each) and a
    one-paragraph design summary ("N images from P patients")."""
    t = Table("tab-summary", "Key results (point estimate and confidence interval)", ["Endpoint", "Rater", "Estimate (CI)"])
    counted: dict[str, None] = {}

    def add(row: list[str]) -> None:
        """A row (endpoint, rater, what n counts, estimate): n goes to the table's note, once per endpoint kind."""
        t.add([row[0], row[1], row[3]])
        counted[f"{row[0].split(':')[0].split(' (')[0]}, {row[1]}: {row[2]}"] = None

    threshold = results.study.protocol_settings.detection.operating_threshold
    for m in results.model_ids:
        det = results.detection.get(m)
        if det is not None:
            n_det = f"{det.inputs.n_gt} lesions; " + _images(det.n_images, det.n_patients)
            if det.map is not None:
                add([f"Detection: mean AP over classes (IoU {fmt(det.iou_threshold, 2)})", m, n_det, t.ci(det.map)])
            if det.any_lesion.ap is not None and len(det.classes) != 1:
                add(["Detection: AP, any lesion", m, n_det, t.ci(with_interval(det.any_lesion.ap, det.any_lesion.ap_ci))])
            if det.any_lesion.recall.estimate is not None:
                add([f"Detection: lesion recall, any lesion (score ≥ {fmt(det.operating_threshold, 2)})", m, n_det,
                       t.ci(det.any_lesion.recall)])
        cnt = results.counting.get(m)
        if cnt is not None:
            tk = threshold_key_of(cnt.threshold_keys(), threshold)
            overall = cnt.thresholds[tk].overall
            n_cnt = _images(overall.n, cnt.inputs.n_patients)
            add([f"Counting: mean absolute error per image (score ≥ {tk})", m, n_cnt, t.ci(overall.mae, 2)])
            add([f"Counting: mean bias per image (score ≥ {tk})", m, n_cnt, t.ci(overall.mean_bias, 2)])
            add([f"Counting: concordance (CCC) of lesion counts (score ≥ {tk})", m, n_cnt, t.ci(overall.ccc, 3)])
    ag = results.agreement
    if ag is not None:
        per_patient = ag.settings.patient_grade is not None

        def n_graded(n: int, e: Estimate) -> str:
            return f"{n} patients (one grade each)" if per_patient else _images(n, e.n_clusters)

        for rid, r in S.raters_in_order(ag.raters):
            if r.kind == "model":
                add(["Grading: accuracy", rid, n_graded(r.n_cases, r.accuracy), t.ci(r.accuracy)])
                add(["Grading: quadratic-weighted kappa", rid, n_graded(r.n_cases, r.accuracy),
                       t.ci(r.kappa_quadratic)])
        for g, gr in S.groups_in_order(ag.groups):
            add(["Grading: accuracy", f"readers, {g}",
                   f"{gr.n_readings} readings of {gr.n_cases} {'patients' if per_patient else 'images'}",
                   t.ci(gr.accuracy)])
    ustat = results.mrmc.ustat if isinstance(results.mrmc, MRMCBlock) else None
    if ustat is not None:
        used = f"{ustat.cases_with_readings} of {ustat.cases_included} included cases"
        n_used = f"{ustat.cases_with_readings} images"
        for label, rater, a in [("readers aided versus unaided", "readers", ustat.aided_vs_unaided)] + [
                (f"model {m} versus unaided readers", m, x) for m, x in sorted(ustat.models.items())]:
            if isinstance(a, UStatAnalysis):
                for ud in a.differences:
                    fom = a.fom.upper() if a.fom == "auc" else a.fom
                    add([f"MRMC {label}: {fom} difference ({ud.comparison}; {used}, U-statistics)", rater,
                           n_used, t.ci(ud.unbiased)])
            else:
                add([f"MRMC {label} ({used}, U-statistics)", rater, n_used, f"not estimable: {a.reason}"])
    for m, v in S.mrmc_models(results.mrmc).items():
        for d in v.analysis.differences:
            block = f"crossed block of {v.design.cases_kept} of {v.design.cases_reference} cases"
            add([f"MRMC: difference in figure of merit ({' - '.join(d.modalities)}; {block})", m or F.DASH,
                   f"{fmt_int(v.design.cases_kept)} images", t.ci(d)])
    if counted:
        t.note("n = " + "; ".join(counted) + ".")
    st = results.study
    design = (f"Study '{st.name}' under protocol {st.protocol.name} version {st.protocol.version}: "
              + (f"{results.flow.received} images received, " if results.flow is not None else "")
              + (f"{_included(results.baseline)}; " if results.baseline is not None else "")
              + f"{F.plural(len(results.model_ids), 'model')} and {F.plural(_n_readers(results), 'reader')} were "
              "compared with the "
              "reference standard.")
    return {"design": design, "table": t.to_dict() if t.rows else None, "not_estimable": None}


def introduction_context(results: Results) -> dict[str, Any]:
    """Background and objectives: the protocol's title and description, intended use, objective, hypotheses."""
    st = results.study
    ps = st.protocol_settings
    info = st.information.supplied()
    n_readers = _n_readers(results)
    ids = results.model_ids
    who = (f"the model {ids[0]}" if len(ids) == 1 else f"the models {', '.join(ids)}" if ids else "the models (none)")
    objective = (f"To estimate, on this cohort and with confidence intervals, how well {who} find and count acne lesions of the classes "
                 f"{', '.join(ps.classes)} and grade acne severity ({', '.join(ps.levels)}) against the reference "
                 "standard" + (f", compared with {F.plural(n_readers, 'dermatologist reader')}." if n_readers else "."))
    return {
        "title": st.protocol.title,
        "description": st.protocol.description or ps.description,
        "intended_use": info_text(info, "intended_use",
                                   "Not stated by the investigators. The index test is software that detects acne "
                                   "lesions on facial photographs and derives a severity grade from them."),
        "objective": objective,
        "hypotheses": hypotheses_items(results),
    }


def hypotheses_items(results: Results) -> dict[str, Any]:
    """STARD item 4: the hypotheses written from the analysis plan, then the investigators' own text.

    ``plan``: ``intro`` (alpha, sidedness, multiplicity) and one sentence per confirmatory
    endpoint (hypothesis and success criterion), or ``None`` without a plan; ``investigators``:
    their text (study information key ``hypotheses``), or, without a plan, the plain statement
    that none was recorded.
    """
    info = results.study.information.supplied()
    plan = results.analysis_plan
    out: dict[str, Any] = {"plan": None, "investigators": None}
    if plan is not None and plan.planned:
        confirmatory = [d for d in plan.endpoints if d.role != "exploratory"]
        alpha1 = confirmatory[0].alpha_one_sided if confirmatory else None
        out["plan"] = {
            "intro": (f"Pre-specified in the protocol's analysis plan: {plan.sided}-sided alpha "
                      f"{plan.alpha if plan.alpha is not None else '–'}"
                      + (f" (each one-sided test at {alpha1:g})" if alpha1 is not None else "")
                      + f"; multiplicity: {plan.multiplicity or 'not recorded'}. The confirmatory hypotheses:"),
            "endpoints": [f"{d.id} ({d.role}): {d.hypothesis}, on {d.metric_description}; success when {d.criterion}."
                          for d in confirmatory],
            "source": "written from the protocol's pre-specified analysis_plan",
        }
    if "hypotheses" in info or out["plan"] is None:
        out["investigators"] = info_text(
            info, "hypotheses", "No formal hypothesis was recorded (the protocol has no analysis_plan); the analysis "
                                "estimates accuracy and agreement with confidence intervals and makes no decision.")
    return out
