"""Discussion: limitations and implications."""

from __future__ import annotations

from typing import Any

from study.report.context.common import info_text
from study.report.flow_diagram import flow_view
from study.results.agreement import AgreementResult
from study.results.baseline import Baseline
from study.results.flow import Flow
from study.results.study import StudyBlock


def limitations_context(study: StudyBlock | None, baseline: Baseline | None, flow: Flow | None,
                        agreement: AgreementResult | None) -> dict[str, Any]:
    """The limitations that follow from the study's design and data (STARD 24)."""
    items = []
    if study is not None and study.synthetic_cohort:
        items.append("The cohort is synthetic (generated for demonstration): none of its numbers says anything "
                     "about any model's clinical performance.")
    if baseline is not None:
        items.append(f"Statistical uncertainty: {baseline.n_cases} cases were analysed; the intervals in the tables "
                     "show the resulting precision, and small grades or subgroups give wide intervals.")
    stages = flow_view(flow).stages if flow is not None else []
    ex = sum(s.excluded.n or 0 for s in stages if s.excluded is not None and "Readings" not in s.label)
    if ex:
        items.append(f"Spectrum: {ex} cases were excluded by the quality gate or the eligibility criteria; the "
                     "results apply to images that pass the gate and to patients who meet the criteria.")
    readers = [r for r in (agreement.raters.values() if agreement is not None else []) if r.kind != "model"]
    if readers and len({r.n_cases for r in readers}) > 1:
        items.append("The reader design is partially crossed: readers graded different subsets of cases, so "
                     "reader-to-reader differences partly reflect case mix.")
    if not readers:
        items.append("No human readers were included: the model is compared with the reference standard only.")
    items.append("Imperfect reference standard: the reference is treated as error-free; its own misclassification "
                 "lowers the apparent accuracy of the models and readers (reference-standard bias).")
    items.append("Lesion matching depends on the IoU threshold of the protocol; small lesions (comedones) are "
                 "sensitive to box placement, which lowers AP for reasons not all clinically relevant.")
    if study is not None and study.protocol_settings.subgroups:
        items.append("Subgroup analyses are descriptive and not adjusted for multiple comparisons.")
    items.append("Generalisability: a single cohort from the sites and devices listed in the baseline table; "
                 "performance on other populations, skin types or cameras is not established by this study.")
    return {"items": items}


def implications_context(study: StudyBlock | None) -> dict[str, Any]:
    """Implications for practice (STARD 27): the intended use the investigators state, if any."""
    info = study.information.supplied() if study is not None else {}
    return {"text": info_text(info, "intended_use",
                               "The report quantifies agreement with the reference standard on this cohort; whether "
                               "the model is fit for its intended use is a judgement for the investigators and the "
                               "reviewing body, who have not stated it here.")}
