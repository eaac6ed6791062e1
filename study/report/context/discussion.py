"""Discussion: limitations and implications."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from study.report.context.common import info_text
from study.report.flow_diagram import flow_view
from study.report.format import fmt, fmt_p, plural
from study.results.agreement import AgreementResult
from study.results.baseline import Baseline, CategoricalSummary
from study.results.detection import DetectionResult
from study.results.errors import ErrorAnalysis
from study.results.flow import Flow
from study.results.study import StudyBlock


def limitations_context(study: StudyBlock | None, baseline: Baseline | None, flow: Flow | None,
                        agreement: AgreementResult | None, *, detection: Mapping[str, DetectionResult] | None = None,
                        errors: ErrorAnalysis | None = None) -> dict[str, Any]:
    """The limitations that follow from the study's design and data (STARD 24)."""
    items = []
    if study is not None and study.synthetic_cohort:
        items.append("The cohort is synthetic (generated for demonstration): none of its numbers says anything "
                     "about any model's clinical performance.")
    if baseline is not None:
        items.append(f"Statistical uncertainty: {plural(baseline.n_cases, 'case')} were analysed; the intervals in the tables "
                     "show the resulting precision, and small grades or subgroups give wide intervals.")
    stages = flow_view(flow).stages if flow is not None else []
    ex = sum(s.excluded.n or 0 for s in stages if s.excluded is not None and "Readings" not in s.label)
    if ex:
        items.append(f"Spectrum: {plural(ex, 'case')} {'was' if ex == 1 else 'were'} excluded by the quality gate or the eligibility criteria; the "
                     "results apply to images that pass the gate and to patients who meet the criteria.")
    readers = [r for r in (agreement.raters.values() if agreement is not None else []) if r.kind != "model"]
    if readers and len({r.n_cases for r in readers}) > 1:
        items.append("The reader design is partially crossed: readers graded different subsets of cases, so "
                     "reader-to-reader differences partly reflect case mix.")
    if not readers:
        items.append("No human readers were included: the model is compared with the reference standard only.")
    items.append("Imperfect reference standard: the reference is treated as error-free; its own misclassification "
                 "lowers the apparent accuracy of the models and readers (reference-standard bias).")
    items.extend(_matching_limitation(detection or {}))
    if study is not None and study.protocol_settings.subgroups:
        items.append("Subgroup analyses are descriptive and not adjusted for multiple comparisons.")
    items.append(_generalisability(baseline, errors))
    return {"items": items}


def _matching_limitation(detection: Mapping[str, DetectionResult]) -> list[str]:
    """The class with the lowest AP of each model, from the data (no sentence when no class has an AP)."""
    out = []
    for m, det in sorted(detection.items()):
        aps = [(c, v.ap) for c, v in det.classes.items() if v.ap is not None and v.n_gt > 0]
        if len(aps) < 2:
            continue
        low, high = min(aps, key=lambda x: x[1]), max(aps, key=lambda x: x[1])
        out.append(f"Lesion matching uses IoU ≥ {fmt(det.iou_threshold, 2)} ({det.match_rule}); for model {m}, AP is "
                   f"lowest for {low[0]} ({fmt(low[1])}) and highest for {high[0]} ({fmt(high[1])}). Part of a low "
                   "AP can come from box placement on small lesions rather than missed lesions (compare the "
                   "lesion recall at the operating threshold).")
    return out


def _levels(c: CategoricalSummary | None) -> list[str]:
    return [lv.value for lv in (c.levels if c is not None else []) if lv.n > 0]


def _generalisability(baseline: Baseline | None, errors: ErrorAnalysis | None) -> str:
    """What the cohort covers (sites, devices, skin types), from the baseline table."""
    if baseline is None:
        return ("Generalisability: the cohort's sites, devices and skin types were not summarised, so the population "
                "the results apply to is not described.")
    parts = []
    for name, label in (("site", "site"), ("device", "device")):
        vals = _levels(baseline.categorical(name))
        parts.append(f"{plural(len(vals), label)} ({', '.join(vals)})" if vals else f"{label}s not recorded")
    types = _levels(baseline.fitzpatrick)
    missing = [t for t in ("I", "II", "III", "IV", "V", "VI") if t not in types]
    if not types:
        skin = "Fitzpatrick skin types were not recorded, so performance by skin type is unknown"
    elif missing:
        skin = (f"Fitzpatrick types {', '.join(types)} are represented and {', '.join(missing)} are not: "
                "performance on the missing types is not established")
    else:
        skin = "all six Fitzpatrick types are represented, several by few cases (see the baseline table)"
    text = f"Generalisability: one cohort from {' and '.join(parts)}; {skin}."
    if errors is not None:
        cmp = [(m, me.skin_type) for m, me in sorted(errors.models.items()) if me.skin_type is not None]
        for m, st in cmp:
            d = st.recall_difference
            if d.estimate is not None and st.recall_p_value is not None:
                text += (f" Lesion recall of model {m}, Fitzpatrick I-III minus IV-VI: {fmt(d.estimate)} (p = "
                         f"{fmt_p(st.recall_p_value)}; section 4.10); a study of this size detects only large "
                         "differences.")
        for m, me in sorted(errors.models.items()):
            sd = me.skin_type_detection
            if sd is not None and sd.difference is not None and sd.difference.estimate is not None \
                    and sd.p_value is not None:
                text += (f" Detection mAP of model {m} at IoU {sd.iou_threshold:g}, Fitzpatrick I-III minus IV-VI: "
                         f"{fmt(sd.difference.estimate)} (p = {fmt_p(sd.p_value)}; section 4.10).")
    return text


def implications_context(study: StudyBlock | None) -> dict[str, Any]:
    """Implications for practice (STARD 27): the intended use the investigators state, if any."""
    info = study.information.supplied() if study is not None else {}
    return {"text": info_text(info, "intended_use",
                               "The report quantifies agreement with the reference standard on this cohort; whether "
                               "the model is fit for its intended use is a judgement for the investigators and the "
                               "reviewing body, who have not stated it here.")}
