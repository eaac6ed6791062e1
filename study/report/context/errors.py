"""The errors that matter (section 4.10): grading errors case by case, errors by group, skin type.

Every number comes from ``results.json`` ``errors`` (:class:`study.results.errors.ErrorAnalysis`,
built by :func:`study.error_analysis.error_analysis`); case ids there are pseudonyms.
"""

from __future__ import annotations

from typing import Any

from study.report import format as F
from study.report.format import Table, fmt, fmt_int, fmt_p, plural
from study.results.errors import ErrorAnalysis, ErrorCase, GroupDetection, GroupErrors, ModelErrors

__all__ = ["error_tables", "grading_error_rows", "skin_type_assessors_text", "skin_type_source"]

_FACTOR = {"device": "Device", "fitzpatrick": "Fitzpatrick skin type", "quality": "Image sharpness (tertile)"}


def grading_error_rows(cases: list[ErrorCase]) -> list[ErrorCase]:
    """The cases whose model grade differs from the reference: serious first, then by grades off, then by id."""
    wrong = [c for c in cases if c.grade_steps not in (None, 0)]
    return sorted(wrong, key=lambda c: (not c.serious, -abs(c.grade_steps or 0), c.case_id))


def _counts(c: ErrorCase) -> str:
    """``papule 4→1, pustule 2→0``: the classes whose counts differ (reference → model)."""
    parts = [f"{k} {c.reference_counts[k]}→{c.model_counts.get(k, 0)}" for k in c.reference_counts
             if c.reference_counts[k] != c.model_counts.get(k, 0)]
    return ", ".join(parts) if parts else "none"


def _quality(c: ErrorCase) -> str:
    q = c.quality
    bits = []
    if q.get("laplacian_var") is not None:
        bits.append(f"sharpness {fmt(q['laplacian_var'], 0)}")
    if q.get("dark_fraction") is not None:
        bits.append(f"dark {fmt(q['dark_fraction'], 2)}")
    if q.get("bright_fraction") is not None:
        bits.append(f"bright {fmt(q['bright_fraction'], 2)}")
    text = ", ".join(bits)
    return f"{text} ({c.quality_tertile} tertile)" if c.quality_tertile else text


def _grading_table(m: str, me: ModelErrors, *, k: int) -> tuple[Table, int]:
    rows = grading_error_rows(me.cases)
    serious = [c for c in rows if c.serious]
    shown = serious + [c for c in rows if not c.serious][:k]
    n_graded = sum(c.grade_steps is not None for c in me.cases)
    t = Table(f"tab-grading-errors-{m}",
              f"Grading errors case by case, model {m}: {plural(len(rows), 'case')} of {n_graded} graded "
              f"differ from the reference ({len(serious)} serious), score ≥ {me.threshold_key}",
              ["Case", "Reference grade", "Model grade", "Serious", "Counts differing (reference→model)",
               "Detections", "Lesions found", "Image quality", "Device", "Skin type"])
    for c in shown:
        t.add([c.case_id, c.reference_grade or F.DASH, c.model_grade or F.DASH, "yes" if c.serious else "no",
               _counts(c), fmt_int(c.detections), f"{c.lesions_found}/{c.lesions}", _quality(c) or F.DASH,
               c.device or F.DASH, c.fitzpatrick or F.DASH])
    worst = me.levels[-1] if me.levels else "the most severe grade"
    t.note(f"Serious: two or more grades off, or a reference grade {worst} (the most severe level) given another "
           "grade. Serious errors come first, then by the number of grades off.")
    if len(shown) < len(rows):
        t.note(f"Listed: every serious error and the first {plural(k, 'other error')} (protocol report.worst_cases); "
               f"{plural(len(rows) - len(shown), 'other error')} not listed.")
    t.note("Detections: the model's detections at the operating threshold (every class); lesions found: reference "
           "lesions matched by a same-class detection at that threshold, of all reference lesions of the case. "
           "Image quality: features of the quality gate (sharpness = variance of the Laplacian; dark / bright = "
           "fraction of under- / over-exposed pixels), with the case's tertile of sharpness among included cases.")
    return t, len(serious)


def _group_row(t: Table, label: str, g: GroupErrors) -> None:
    t.add([label, g.level, f"{g.n_cases} ({g.n_patients})", t.ci(g.grading_accuracy), t.ci(g.count_bias, 2),
           t.ci(g.count_mae, 2), t.ci(g.lesion_recall)])


def _groups_table(m: str, me: ModelErrors) -> Table | None:
    if not me.groups:
        return None
    t = Table(f"tab-error-groups-{m}", f"Grading accuracy, counting error and lesion recall by device, skin type and "
              f"image quality, model {m} (score ≥ {me.threshold_key})",
              ["Factor", "Group", "Cases (patients)", "Grading accuracy", "Count bias", "Count MAE", "Lesion recall"])
    for factor in ("device", "fitzpatrick", "quality"):
        for g in me.groups.get(factor, []):
            _group_row(t, _FACTOR.get(factor, factor), g)
    t.note("Count bias: mean of model minus reference lesion count per case; MAE: mean absolute difference. "
           "Lesion recall: reference lesions found at the operating threshold (class-aware match) over all "
           "reference lesions of the group. Sharpness tertiles: cut at the 1/3 and 2/3 quantiles of the "
           "variance of the Laplacian among the cases analysed.")
    return t


def _skin_table(m: str, me: ModelErrors) -> Table | None:
    s = me.skin_type
    if s is None:
        return None
    t = Table(f"tab-skin-type-{m}", f"Skin type: lesion detection and counting, Fitzpatrick I-III versus IV-VI, "
              f"model {m} (score ≥ {me.threshold_key})",
              ["Fitzpatrick", "Cases (patients)", "Reference lesions", "Lesion recall", "Count MAE", "Count bias"])
    for g in (s.light, s.dark):
        k = g.lesion_recall.n
        t.add([g.level, f"{g.n_cases} ({g.n_patients})", fmt_int(k), t.ci(g.lesion_recall), t.ci(g.count_mae, 2),
               t.ci(g.count_bias, 2)])
    t.add(["Difference (I-III minus IV-VI)", F.DASH, F.DASH, t.ci(s.recall_difference) + f"; p = {fmt_p(s.recall_p_value)}",
           t.ci(s.mae_difference, 2) + f"; p = {fmt_p(s.mae_p_value)}", F.DASH])
    t.note(f"Test of no difference: {s.test}.")
    return t


def _skin_detection_row(t: Table, g: GroupDetection) -> None:
    t.add([g.level, f"{g.n_images} ({g.n_patients})", fmt_int(g.n_lesions), fmt_int(g.n_detections), t.ci(g.map)])


def _skin_detection_table(m: str, me: ModelErrors) -> Table | None:
    s = me.skin_type_detection
    if s is None:
        return None
    t = Table(f"tab-skin-type-detection-{m}", f"Skin type: detection mAP at IoU {s.iou_threshold:g} by Fitzpatrick "
              f"type and I-III versus IV-VI, model {m}",
              ["Fitzpatrick", "Images (patients)", "Reference lesions", "Detections", f"mAP (IoU {s.iou_threshold:g})"])
    for g in s.by_type:
        _skin_detection_row(t, g)
    for pooled in (s.light, s.dark):
        if pooled is not None:
            _skin_detection_row(t, pooled)
    if s.difference is not None:
        t.add(["Difference (I-III minus IV-VI)", F.DASH, F.DASH, F.DASH,
               t.ci(s.difference) + f"; p = {fmt_p(s.p_value)}"])
    t.note(f"{s.ap_definition}; detections at every score (AP integrates over the scores), matching rule "
           f"{s.match_rule}. Resampling: {s.bootstrap}.")
    t.note(f"Test of no difference: {s.test}.")
    if s.reason:
        t.note(s.reason[0].upper() + s.reason[1:] + ".")
    return t


def skin_type_assessors_text(errors: ErrorAnalysis) -> str | None:
    """Who assigned skin types case by case (manifest column ``skin_type_assessor``), or ``None`` without it."""
    a = errors.skin_type_assessors
    if not a:
        return None
    parts = ", ".join(f"{who}: {plural(n, 'case')}" for who, n in a.items())
    return f"Skin type assessor by case (manifest column skin_type_assessor, included cases with a skin type): {parts}."


def skin_type_source(errors: ErrorAnalysis) -> str:
    """Who assigned skin types: the investigators' statement, or "not stated" (in the config, when the
    manifest names an assessor per case)."""
    if errors.skin_type_assessed_by:
        return f"Skin types were assigned by: {errors.skin_type_assessed_by} (supplied by the investigators)."
    if errors.skin_type_assessors:
        return ("The study's configuration does not state who assigned the Fitzpatrick skin types (config key "
                "information.skin_type_assessment); they are read from the manifest's fitzpatrick column, and "
                "its skin_type_assessor column names the assessor case by case (below).")
    return ("Who assigned the Fitzpatrick skin types is not stated (config key "
            "information.skin_type_assessment); they are read from the manifest's fitzpatrick column.")


def error_tables(m: str, me: ModelErrors, *, errors_block: ErrorAnalysis, k: int) -> dict[str, Any]:
    """The grading-error, group and skin-type tables of one model, for the template."""
    grading, n_serious = _grading_table(m, me, k=k)
    groups = _groups_table(m, me)
    skin = _skin_table(m, me)
    skin_det = _skin_detection_table(m, me)
    return {"grading": grading.to_dict(), "n_serious": n_serious,
            "skin_detection": skin_det.to_dict() if skin_det is not None else None,
            "skin_detection_reason": me.skin_type_detection_reason,
            "skin_assessors": skin_type_assessors_text(errors_block),
            "groups": groups.to_dict() if groups is not None else None,
            "skin": skin.to_dict() if skin is not None else None,
            "skin_reason": me.skin_type_reason,
            "skin_source": skin_type_source(errors_block)}
