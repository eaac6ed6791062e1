"""Discussion: limitations and implications."""

from __future__ import annotations

from collections.abc import Mapping

from study.report import selectors as S
from study.report.context.agreement import agreement_block
from study.report.context.common import info_text, information


def limitations_context(results: Mapping) -> dict:
    items = []
    st = results.get("study") or {}
    cohort = (st.get("config") or {}).get("cohort") or {}
    if cohort.get("synth"):
        items.append("The cohort is synthetic (generated for demonstration): none of its numbers says anything "
                     "about any model's clinical performance.")
    b = results.get("baseline") or {}
    n = b.get("n_cases")
    if n is not None:
        items.append(f"Statistical uncertainty: {n} cases were analysed; the intervals in the tables show the "
                     "resulting precision, and small grades or subgroups give wide intervals.")
    flow = S.flow_view(results.get("flow") or {})
    ex = sum((s.get("excluded") or {}).get("n") or 0 for s in flow["stages"] if "Readings" not in s["label"])
    if ex:
        items.append(f"Spectrum: {ex} cases were excluded by the quality gate or the eligibility criteria; the "
                     "results apply to images that pass the gate and to patients who meet the criteria.")
    ag = agreement_block(results)
    readers = [r for r in (ag.raters.values() if ag is not None else []) if r.kind != "model"]
    if readers and len({r.n_cases for r in readers}) > 1:
        items.append("The reader design is partially crossed: readers graded different subsets of cases, so "
                     "reader-to-reader differences partly reflect case mix.")
    if not readers:
        items.append("No human readers were included: the model is compared with the reference standard only.")
    items.append("Imperfect reference standard: the reference is treated as error-free; its own misclassification "
                 "lowers the apparent accuracy of the models and readers (reference-standard bias).")
    items.append("Lesion matching depends on the IoU threshold of the protocol; small lesions (comedones) are "
                 "sensitive to box placement, which lowers AP for reasons not all clinically relevant.")
    ps = S.protocol_settings(results)
    if ps.get("subgroups"):
        items.append("Subgroup analyses are descriptive and not adjusted for multiple comparisons.")
    items.append("Generalisability: a single cohort from the sites and devices listed in the baseline table; "
                 "performance on other populations, skin types or cameras is not established by this study.")
    return {"items": items}


def implications_context(results: Mapping) -> dict:
    info = information(results)
    return {"text": info_text(info, "intended_use",
                               "The report quantifies agreement with the reference standard on this cohort; whether "
                               "the model is fit for its intended use is a judgement for the investigators and the "
                               "reviewing body, who have not stated it here.")}
