"""Summary of key results and the background section."""

from __future__ import annotations

from typing import Any

from study.report import format as F
from study.report import selectors as S
from study.report.context.common import info_text, threshold_key_of
from study.report.context.detection import with_interval
from study.report.format import Table, fmt
from study.results import Results
from study.results.baseline import Baseline


def _n_readers(results: Results) -> int:
    ag = results.agreement
    return 0 if ag is None else sum(1 for r in ag.raters.values() if r.kind != "model")


def _included(b: Baseline) -> str:
    """``"136 images from 93 patients included"`` (the patients only when known)."""
    return f"{b.n_cases} images" + (f" from {b.n_patients} patients" if b.n_patients is not None else "") + " included"


def summary_context(results: Results) -> dict[str, Any]:
    """The key-results table (one row per endpoint and rater) and a one-paragraph design summary."""
    t = Table("tab-summary", "Key results (point estimate and confidence interval)", ["Endpoint", "Rater", "Estimate (CI)"])
    threshold = results.study.protocol_settings.detection.operating_threshold
    for m in results.model_ids:
        det = results.detection[m] if m in results.detection else None
        if det is not None and det.map is not None:
            t.add([f"Detection: mean AP over classes (IoU {fmt(det.iou_threshold, 2)})", m, t.ci(det.map)])
        if det is not None and det.any_lesion.ap is not None and len(det.classes) != 1:
            t.add(["Detection: AP, any lesion", m, t.ci(with_interval(det.any_lesion.ap, det.any_lesion.ap_ci))])
        cnt = results.counting[m] if m in results.counting else None
        if cnt is not None:
            tk = threshold_key_of(cnt.threshold_keys(), threshold)
            overall = cnt.thresholds[tk].overall
            t.add([f"Counting: mean absolute error per image (score ≥ {tk})", m, t.ci(overall.mae, 2)])
            t.add([f"Counting: mean bias per image (score ≥ {tk})", m, t.ci(overall.mean_bias, 2)])
    ag = results.agreement
    if ag is not None:
        for rid, r in S.raters_in_order(ag.raters):
            if r.kind == "model":
                t.add(["Grading: accuracy", rid, t.ci(r.accuracy)])
                t.add(["Grading: quadratic-weighted kappa", rid, t.ci(r.kappa_quadratic)])
        for g, gr in S.groups_in_order(ag.groups):
            t.add(["Grading: accuracy", f"readers, {g}", t.ci(gr.accuracy)])
    for m, v in S.mrmc_models(results.mrmc).items():
        for d in v.analysis.differences:
            t.add([f"MRMC: difference in figure of merit ({' - '.join(d.modalities)})", m or F.DASH, t.ci(d)])
    st = results.study
    design = (f"Study '{st.name}' under protocol {st.protocol.name} version {st.protocol.version}: "
              + (f"{results.flow.received} images received, " if results.flow is not None else "")
              + (f"{_included(results.baseline)}; " if results.baseline is not None else "")
              + f"{len(results.model_ids)} model(s) and {_n_readers(results)} reader(s) were compared with the "
              "reference standard.")
    return {"design": design, "table": t.to_dict() if t.rows else None}


def introduction_context(results: Results) -> dict[str, Any]:
    """Background and objectives: the protocol's title and description, intended use, objective, hypotheses."""
    st = results.study
    ps = st.protocol_settings
    info = st.information.supplied()
    n_readers = _n_readers(results)
    objective = (f"To estimate, on this cohort and with confidence intervals, how well the model(s) "
                 f"{', '.join(results.model_ids) or '(none)'} find and count acne lesions of the classes "
                 f"{', '.join(ps.classes)} and grade acne severity ({', '.join(ps.levels)}) against the reference "
                 "standard" + (f", compared with {n_readers} dermatologist reader(s)." if n_readers else "."))
    return {
        "title": st.protocol.title,
        "description": st.protocol.description or ps.description,
        "intended_use": info_text(info, "intended_use",
                                   "Not stated by the investigators. The index test is software that detects acne "
                                   "lesions on facial photographs and derives a severity grade from them."),
        "objective": objective,
        "hypotheses": info_text(info, "hypotheses",
                                 "No formal hypothesis was recorded; the analysis estimates accuracy and agreement "
                                 "with confidence intervals."),
    }
