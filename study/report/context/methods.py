"""Methods: design, criteria, quality gate, reference, index tests, readers, statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from study.protocol import Criterion, Grading, Protocol
from study.report import format as F
from study.report import selectors as S
from study.report.context.common import (
    INFORMATION_KEYS,
    has_numbers,
    info_text,
    interval_methods,
)
from study.report.context.index_tests import index_tests_table, model_card_tables
from study.report.context.reference import annotators_context
from study.report.context.plan_methods import plan_methods_context, sample_size_context
from study.report.format import Table, fmt, fmt_int
from study.results import Results
from study.results.reference import AnnotatorsBlock

#: reader characteristics the readers table shows when recorded: column label, ReaderRow field
READER_CHARACTERISTICS = (("Years of experience", "years_of_experience"), ("Specialty", "specialty"),
                          ("Certification", "certification"), ("Reading conditions", "reading_conditions"))

#: what the report prints for a fact the investigators did not supply
NOT_SUPPLIED = "not supplied"


def _criterion_rule(c: Criterion) -> str:
    parts = []
    if c.required:
        parts.append("value required")
    if c.min is not None:
        parts.append(f"≥ {fmt(c.min, 0) if float(c.min).is_integer() else c.min}")
    if c.max is not None:
        parts.append(f"≤ {fmt(c.max, 0) if float(c.max).is_integer() else c.max}")
    if c.allowed:
        parts.append("one of " + ", ".join(map(str, c.allowed)))
    if c.excluded:
        parts.append("not " + ", ".join(map(str, c.excluded)))
    return "; ".join(parts) or "recorded"


def _scheme_text(g: Grading, classes: list[str]) -> str:
    """The grading scheme in words (count bands or lesion-type rules)."""
    scheme = []
    if g.scheme == "count_bands":
        lo = 0
        for b in g.bands or []:
            scheme.append(f"{b.level}: {lo}-{b.max} lesions" if b.max is not None else f"{b.level}: more than {lo - 1} lesions")
            lo = (b.max or 0) + 1
        return (f"Count bands (Hayashi et al. 2008) on the number of {', '.join(g.count_classes or classes)} lesions: "
                + "; ".join(scheme) + ".")
    for r in g.rules or []:
        scheme.append(f"{r.level} if any of " + ", ".join(f"{k} ≥ {v}" for k, v in r.any_of.items()))
    return "Lesion-type rules, tried from the most severe: " + "; ".join(scheme) + f"; otherwise {g.default}."


def _reference_standard_rows(ps: Protocol, *, fused: AnnotatorsBlock | None = None) -> list[dict[str, str | bool]]:
    """Who made the reference standard (protocol ``reference_standard``), "not supplied" for each missing field.

    ``fused``: several annotators' record (``reference.annotators``), which answers who annotated,
    their qualifications (when every annotator's is given) and how disagreements were settled (the
    grade fusion rule) where the protocol's text does not (as ``checklist_status`` counts them).
    """
    fallback: dict[str, str] = {}
    if fused is not None:
        fallback["annotators"] = f"{len(fused.annotators)} annotators, " + ", ".join(
            a.annotator_id for a in fused.annotators) + " (table below)"
        if all(a.qualification for a in fused.annotators):
            fallback["qualifications"] = "; ".join(f"{a.annotator_id}: {a.qualification}" for a in fused.annotators)
        fallback["disagreements"] = f"by the protocol's fusion rule, {fused.grade_rule}"
    rs = ps.reference_standard
    labels = (("annotators", "Annotators"), ("qualifications", "Their qualifications"),
              ("disagreements", "How disagreements were settled"), ("annotation_tool", "Annotation tool"))
    out: list[dict[str, str | bool]] = []
    for key, label in labels:
        value = getattr(rs, key) if rs is not None else None
        value = value or fallback.get(key)
        out.append({"label": label, "text": value or NOT_SUPPLIED, "supplied": bool(value)})
    return out


def _quality_table(ps: Protocol) -> Table:
    t = Table("tab-quality", "Image-quality gate: an image failing any check is excluded", ["Setting", "Value"])
    q = ps.quality.model_dump(mode="json")
    for k in sorted(q):
        t.add([k.replace("_", " "), str(q[k]).lower() if isinstance(q[k], bool) else fmt(q[k], 3)
               if isinstance(q[k], float) else str(q[k])])
    return t


def methods_context(results: Results) -> dict[str, Any]:
    """The methods section: design, criteria, quality gate, reference, index tests, readers, statistics."""
    st = results.study
    ps = st.protocol_settings
    info = st.information.supplied()
    out: dict[str, Any] = {"protocol_recorded": True}

    # design and participants
    manifest, reference = st.cohort_file("manifest"), st.cohort_file("reference")
    out["design"] = {
        "cohort": (f"The cohort is the manifest {Path(manifest).name}"
                   if manifest else "The cohort manifest is not recorded in the configuration")
                  + (" (a synthetic demonstration cohort generated by 'study synth')." if st.synthetic_cohort else "."),
        "items": [
            {"item": "5", "label": INFORMATION_KEYS["design"], **info_text(
                info, "design", "The models and the analysis were applied after the images and the reference "
                                "standard had been collected (retrospective analysis of stored images).")},
            {"item": "7", "label": INFORMATION_KEYS["identification"], **info_text(
                info, "identification", "Cases are the rows of the study manifest; the harness does not know how "
                                        "they were identified.")},
            {"item": "8", "label": INFORMATION_KEYS["setting"], **info_text(
                info, "setting", "Not stated by the investigators.")},
            {"item": "9", "label": INFORMATION_KEYS["series"], **info_text(
                info, "series", "Not stated by the investigators.")},
            {"item": "22", "label": "Time interval between index test and reference standard",
             "text": "None: the index test and the reference standard are read on the same photograph; there is "
                     "no clinical intervention in between.", "source": "by design of an image-based study"},
            {"item": "25", "label": "Adverse events",
             "text": "Not applicable: the index test is software applied to existing photographs.",
             "source": "by design of an image-based study"},
        ],
    }

    # criteria
    if ps.inclusion:
        t = Table("tab-criteria", "Inclusion criteria, applied in this order (the flow reports the first failed)",
                  ["Id", "Manifest field", "Rule", "Description"])
        for c in ps.inclusion:
            t.add([c.id, c.field, _criterion_rule(c), c.description])
        out["criteria"] = t.to_dict()
    else:
        out["criteria"] = None

    # quality gate
    out["quality"] = _quality_table(ps).to_dict()

    # reference standard
    g = ps.grading
    scheme_text = _scheme_text(g, ps.classes)
    fused = results.reference.annotators if results.reference is not None else None
    ref_source = ("grades supplied in the reference file " + Path(reference).name
                  if reference else "grades derived from the reference annotations by the grading scheme")
    if fused is not None:
        ref_source = (f"lesions and grades fused from the files of {len(fused.annotators)} annotators by the "
                      "protocol's rules (below)")
    out["reference"] = {
        "classes": ", ".join(ps.classes),
        "polygon_classes": ", ".join(ps.polygon_classes),
        "levels": ", ".join(g.levels),
        "scheme": scheme_text,
        "source": ref_source,
        "rationale": info_text(info, "reference_rationale",
                                "Expert lesion annotations and grades are the accepted reference for acne lesion "
                                "detection and grading; no alternative reference was used."),
        "standard": _reference_standard_rows(ps, fused=fused),
        "annotators": annotators_context(fused),
        "blinding": info_text(info, "blinding_reference",
                               "Not stated by the investigators whether the reference-standard assessors saw clinical "
                               "information; they could not see the index-test results, which were produced afterwards."),
    }

    # index tests
    det_s = ps.detection
    out["models"] = index_tests_table(results.model_ids, models=results.models, provenance=results.provenance)
    out["model_cards"] = model_card_tables(results.model_ids, models=results.models, provenance=results.provenance,
                                           protocol_threshold=float(det_s.operating_threshold))
    out["detection_settings"] = {
        "iou": fmt(det_s.iou_threshold, 2),
        "match_rule": {"iou": "box overlap", "center_distance": "centre distance"}[det_s.match_rule],
        "score_thresholds": ", ".join(str(x) for x in det_s.score_thresholds),
        "operating_threshold": str(det_s.operating_threshold),
        "max_detections": str(det_s.max_detections),
        "froc_fp_rates": ", ".join(str(x) for x in det_s.froc_fp_rates),
    }

    # readers
    ag = results.agreement
    readers = [(rid, r) for rid, r in S.raters_in_order(ag.raters if ag is not None else {}) if r.kind != "model"]
    if readers:
        rows = {row.reader_id: row for row in (results.readers.readers if results.readers is not None else [])}
        # a characteristic gets a column when any reader has it recorded
        shown = [(label, key) for label, key in READER_CHARACTERISTICS
                 if any(getattr(row, key) not in (None, "") for row in rows.values())]
        t = Table("tab-readers", "Readers, their experience group and the number of included cases each graded",
                  ["Reader", "Group", "Images graded (readings)"] + [label for label, _ in shown])
        for rid, r in readers:
            row = rows[rid] if rid in rows else None
            extra = []
            for _, key in shown:
                v = getattr(row, key) if row is not None else None
                extra.append(F.DASH if v in (None, "") else fmt(v, 0) if isinstance(v, float) else str(v))
            t.add([rid, r.group or F.DASH, fmt_int(r.n_cases), *extra])
        if results.readers is not None:
            t.note(f"Reader characteristics: from the {results.readers.source}. Analysed: {results.readers.analysed}.")
        out["readers"] = t.to_dict()
        counts = {r.n_cases for _, r in readers}
        out["readers_design"] = ("fully crossed: every reader graded the same number of cases" if len(counts) == 1
                                 else "partially crossed: readers graded different subsets of the cases")
    else:
        out["readers"] = None
        out["readers_design"] = None
    out["readers_blinding"] = info_text(
        info, "blinding_readers",
        "Not stated by the investigators. The models saw the photograph only (no clinical information, no reference).")

    # statistics
    stats = ps.statistics
    out["statistics_settings"] = {
        "confidence": f"{100 * float(stats.confidence_level):g}%",
        "bootstrap": str(stats.bootstrap_replicates),
        "seed": str(stats.bootstrap_seed),
        "binomial": stats.binomial_interval.replace("_", "-"),
        "mrmc_positive_from": stats.mrmc_positive_from,
    }
    out["statistics"] = _statistics_table(results).to_dict()
    out["clustered"] = clustered_text(results)
    bt = _bootstrap_table(results)
    out["bootstrap"] = bt.to_dict() if bt.rows else None
    out["indeterminate"] = ("The models always return a grade (no indeterminate result): a case without detections "
                            "receives the lowest grade. Reader gradings outside the protocol's levels are rejected at "
                            "import, not analysed as indeterminate.")
    out["missing"] = ("Cases failing the quality gate or the eligibility criteria are excluded and counted by reason "
                      "in the flow diagram. A missing reading is not imputed: each reader is analysed on the cases "
                      "they graded"
                      + (" (the flow lists missing readings per reader)." if results.flow is not None and results.flow.missing_readings else ".")
                      + " Every reported interval is computed on the cases actually analysed.")
    out["sample_size"] = sample_size_context(results)
    out["plan"] = plan_methods_context(results)
    return out


#: the script whose printed table is the evidence for the clustered intervals (cited in the methods)
COVERAGE_SCRIPT = "bench/coverage_clustered.py"


def _patient_unit(results: Results) -> bool:
    """Whether the study's intervals treat the patient as the unit of analysis (``statistics.unit``)."""
    ag = results.agreement
    if ag is not None and ag.settings.unit is not None:
        return ag.settings.unit == "patient"
    return any("patients as clusters" in (c.thresholds[k].overall.mean_bias.method or "")
               for c in results.counting.values() for k in c.thresholds)


def clustered_text(results: Results) -> str:
    """The methods' paragraph on the unit of analysis, citing the coverage simulation as its evidence."""
    ag = results.agreement
    per_patient = (" Grading agreement is computed on one grade per patient (the most severe of the patient's "
                   "images, for the reference and for each rater), so its n counts patients."
                   if ag is not None and ag.settings.patient_grade else "")
    if not _patient_unit(results):
        return ("Unit of analysis: the image. The intervals treat images as independent (statistics.unit: image); "
                "when a patient contributes several images they can be too narrow." + per_patient)
    return ("Unit of analysis: the patient (statistics.unit). A patient's images form one cluster: proportions "
            "(grading accuracy, per-grade sensitivity and specificity, lesion recall and precision) use the ratio "
            "estimator for clustered binary data (Obuchowski 1998) with the Rao-Scott design effect; kappas a "
            "cluster-robust variance; model-versus-reader differences the clustered ratio estimator and the "
            "clustered McNemar test (Durkalski et al. 2003); the counting bias a cluster-robust t interval; MAE, "
            "RMSE, CCC and the Bland-Altman limits the patient bootstrap-t interval (studentised bootstrap "
            "resampling patients, each replicate's standard error from a delete-one-patient jackknife, on the log "
            "scale for MAE and RMSE and Fisher's z for CCC; Efron and Tibshirani 1993, ch. 12). Intervals of "
            "bounded quantities stay inside their bounds (logit or Fisher-z scale when needed). Evidence: the "
            f"coverage table printed by {COVERAGE_SCRIPT} (studies simulated with 1-4 images per patient, "
            "intra-patient correlation 0, 0.3 and 0.7, 100 and 1,000 patients) puts the coverage of every "
            "patient-level 95% interval type (proportions, kappas, AUC, differences, counting bias, MAE, RMSE, CCC "
            "and the Bland-Altman limits) between 93% and 97%; the lowest, about 93% for CCC, RMSE and the "
            "Bland-Altman limits with 100 patients and strong clustering, is where those intervals may be slightly "
            "too narrow; the image-level intervals it prints beside them fall well below 95% under clustering."
            + per_patient)


def _statistics_table(results: Results) -> Table:
    """Measures, their unit of analysis and the interval methods results.json records for them."""
    det, cnt, ag = results.detection, results.counting, results.agreement
    clusters = "; patients as clusters" if _patient_unit(results) else ""
    graded = "patient (one grade each)" if ag is not None and ag.settings.patient_grade else f"image{clusters}"
    rows: list[tuple[str, str, Any, set[str] | None]] = [
        ("Average precision per class, mean AP", "lesion (detections matched to reference lesions)", det,
         {"ap", "map", "ap_ci", "map_ci"}),
        ("Precision, recall, F1, maximum recall", f"lesion{clusters}", det,
         {"precision", "recall", "f1", "max_recall", "max_recall_ci"}),
        ("FROC sensitivity", "lesion; false positives per image", det, {"sensitivity", "average"}),
        ("Lesion-class presence per image", "image", {m: d.presence for m, d in det.items()}, None),
        ("Count error: bias, SD, MAE, RMSE, CCC; Bland-Altman limits", f"image{clusters}", cnt, None),
        ("Grading accuracy; per-grade sensitivity, specificity, PPV, NPV, F1", graded,
         ag.raters if ag is not None else None, {"accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "macro_f1"}),
        ("Cohen's kappa: unweighted, linear, quadratic", graded, ag.raters if ag is not None else None,
         {"kappa", "kappa_linear", "kappa_quadratic"}),
        ("Reader groups, pooled", "reading (reader x image)", ag.groups if ag is not None else None, None),
        ("Model against readers: differences", f"{graded}, paired", ag.comparisons if ag is not None else None, None),
        ("Inter-reader agreement", graded, ag.inter_reader if ag is not None and ag.inter_reader.readers else None,
         None),
        ("MRMC figure-of-merit differences", "reader x image", results.mrmc, None),
    ]
    t = Table("tab-methods", "Measures, unit of analysis and interval methods as recorded in results.json",
              ["Measure", "Unit of analysis", "Interval methods"])
    for label, unit, obj, keys in rows:
        ms = interval_methods(obj, keys) if obj else []
        if ms:
            t.add([label, unit, "; ".join(ms)])
        elif obj and keys and has_numbers(obj, keys):
            t.add([label, unit, "point estimate only (results.json records no interval)"])
        else:
            t.add([label, unit, "not assessed in this study"])
    for m, v in S.mrmc_models(results.mrmc).items():
        t.note(f"MRMC ({m or 'all'}): method {v.analysis.method}, analysis {v.analysis.analysis}.")
    return t


def _bootstrap_table(results: Results) -> Table:
    """The bootstrap settings each analysis recorded (replicates, resampling unit, seed)."""
    bt = Table("tab-bootstrap", "Bootstrap settings as recorded by each analysis in results.json",
               ["Analysis", "Replicates", "Resampling unit", "Seed"])
    for m, d in sorted(results.detection.items()):
        bt.add([f"detection, {m}", fmt_int(d.bootstrap.replicates), d.bootstrap.unit, str(d.bootstrap.seed)])
    for m, c in sorted(results.counting.items()):
        b = c.definitions
        bt.add([f"counting, {m}", fmt_int(b.bootstrap_replicates), b.bootstrap_unit, str(b.seed)])
    if results.agreement is not None:
        a_set = results.agreement.settings
        bt.add(["grading agreement", fmt_int(a_set.n_bootstrap), a_set.bootstrap_unit, str(a_set.seed)])
    return bt
