"""Summary of key results and the background section."""

from __future__ import annotations

from collections.abc import Mapping

from study.report import format as F
from study.report import selectors as S
from study.report.context.agreement import agreement_block, ci
from study.report.context.common import (
    info_text,
    information,
    model_ids,
    operating_threshold,
    threshold_key,
)
from study.report.format import Table, fmt
from study.results.mrmc import parse_mrmc_block


def summary_context(results: Mapping) -> dict:
    t = Table("tab-summary", "Key results (point estimate and confidence interval)", ["Endpoint", "Rater", "Estimate (CI)"])
    for m in model_ids(results):
        det = (results.get("detection") or {}).get(m) or {}
        if det.get("map") is not None:
            t.add([f"Detection: mean AP over classes (IoU {fmt(det.get('iou_threshold'), 2)})", m,
                   t.ci(F.with_ci(det, "map"))])
        if (det.get("any_lesion") or {}).get("ap") is not None and len(det.get("classes") or {}) != 1:
            t.add(["Detection: AP, any lesion", m, t.ci(F.with_ci(det["any_lesion"], "ap"))])
        cnt = (results.get("counting") or {}).get(m) or {}
        tk = threshold_key(cnt, operating_threshold(results))
        ov = ((cnt.get("thresholds") or {}).get(tk) or {}).get("overall") or {}
        if ov.get("mae") is not None:
            t.add([f"Counting: mean absolute error per image (score ≥ {tk})", m, t.ci(ov["mae"], 2)])
        if ov.get("mean_bias") is not None:
            t.add([f"Counting: mean bias per image (score ≥ {tk})", m, t.ci(ov["mean_bias"], 2)])
    ag = agreement_block(results)
    raters = S.raters_in_order(ag.raters) if ag is not None else []
    for rid, r in raters:
        if r.kind == "model":
            t.add(["Grading: accuracy", rid, ci(t, r.accuracy)])
            t.add(["Grading: quadratic-weighted kappa", rid, ci(t, r.kappa_quadratic)])
    for g, gr in S.groups_in_order(ag.groups) if ag is not None else []:
        t.add(["Grading: accuracy", f"readers, {g}", ci(t, gr.accuracy)])
    for m, v in S.mrmc_models(parse_mrmc_block(results.get("mrmc"))).items():
        for d in v.analysis.differences:
            t.add([f"MRMC: difference in figure of merit ({' - '.join(d.modalities)})", m or F.DASH, t.ci(d.to_dict())])
    flow = S.flow_view(results.get("flow") or {})
    st = results.get("study") or {}
    n_readers = sum(1 for _, r in raters if r.kind != "model")
    stages = flow["stages"]
    design = (f"Study '{st.get('name', '')}' under protocol {(st.get('protocol') or {}).get('name', '')} "
              f"version {(st.get('protocol') or {}).get('version', '')}: "
              + (f"{stages[0]['n']} images received, " if stages else "")
              + (f"{(results.get('baseline') or {}).get('n_cases')} included; " if results.get("baseline") else "")
              + f"{len(model_ids(results))} model(s) and {n_readers} reader(s) were compared with the reference standard.")
    return {"design": design, "table": t.to_dict() if t.rows else None}


def introduction_context(results: Mapping) -> dict:
    st = results.get("study") or {}
    pr = st.get("protocol") or {}
    ps = S.protocol_settings(results)
    info = information(results)
    models = model_ids(results)
    ag = agreement_block(results)
    n_readers = 0 if ag is None else sum(1 for r in ag.raters.values() if r.kind != "model")
    grading = (ps.get("grading") or {})
    objective = (f"To estimate, on this cohort and with confidence intervals, how well the model(s) "
                 f"{', '.join(models) or '(none)'} find and count acne lesions of the classes "
                 f"{', '.join(ps.get('classes') or []) or '(not recorded)'} and grade acne severity "
                 f"({', '.join(grading.get('levels') or [])}) against the reference standard"
                 + (f", compared with {n_readers} dermatologist reader(s)." if n_readers else "."))
    return {
        "title": pr.get("title") or "",
        "description": pr.get("description") or ps.get("description") or "",
        "intended_use": info_text(info, "intended_use",
                                   "Not stated by the investigators. The index test is software that detects acne "
                                   "lesions on facial photographs and derives a severity grade from them."),
        "objective": objective,
        "hypotheses": info_text(info, "hypotheses",
                                 "No formal hypothesis was recorded; the analysis estimates accuracy and agreement "
                                 "with confidence intervals."),
    }
