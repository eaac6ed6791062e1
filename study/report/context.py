"""Build the template context of the study report from ``results.json``.

One function per report section; each returns a plain dict the Jinja2 template shows
(texts, :class:`~study.report.sections.Table` dicts, figure names) and, when the section's
data is absent, ``available = False`` with the plain reason. Only formatting happens here:
every number shown is read from ``results``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from study.report import sections as S
from study.report import stard
from study.report.sections import Table, fmt, fmt_int, fmt_p, fmt_pct, is_estimate

#: section anchor id -> title (the order is the report's order; the TOC and STARD use it)
SECTIONS: dict[str, str] = {
    "sec-title": "Title page",
    "sec-summary": "1. Summary of key results",
    "sec-introduction": "2. Background and objectives",
    "sec-methods": "3. Methods",
    "sec-design": "3.1 Study design, setting and participants",
    "sec-criteria": "3.2 Eligibility criteria",
    "sec-quality": "3.3 Image-quality gate",
    "sec-reference": "3.4 Reference standard",
    "sec-index-tests": "3.5 Index tests (models)",
    "sec-readers": "3.6 Readers",
    "sec-statistics": "3.7 Statistical methods",
    "sec-results": "4. Results",
    "sec-flow": "4.1 Flow of cases (STARD diagram)",
    "sec-baseline": "4.2 Baseline characteristics",
    "sec-detection": "4.3 Standalone lesion detection",
    "sec-counting": "4.4 Lesion counting",
    "sec-agreement": "4.5 Grading: cross-tabulation against the reference",
    "sec-accuracy": "4.6 Grading accuracy and agreement",
    "sec-comparisons": "4.7 Model against readers",
    "sec-mrmc": "4.8 Multi-reader multi-case analysis",
    "sec-subgroups": "4.9 Subgroup analyses",
    "sec-failures": "4.10 Failure analysis",
    "sec-examples": "4.11 Example images",
    "sec-discussion": "5. Discussion",
    "sec-limitations": "5.1 Limitations",
    "sec-implications": "5.2 Implications for practice",
    "sec-information": "6. Registration, protocol and funding",
    "sec-stard": "Appendix A. STARD 2015 checklist",
    "sec-provenance": "Appendix B. Provenance",
}
TOC_EXCLUDE = {"sec-title"}

#: study information the harness cannot know (STARD items); read from ``study.information``
#: or ``study.config.information`` when the study supplies it
INFORMATION_KEYS = {
    "design": "Study design (prospective / retrospective data collection)",
    "identification": "Basis on which potentially eligible participants were identified",
    "setting": "Setting, location and dates",
    "series": "Consecutive, random or convenience series",
    "intended_use": "Intended use and clinical role of the index test",
    "hypotheses": "Objectives and hypotheses",
    "reference_rationale": "Rationale for the reference standard",
    "blinding_readers": "Information available to the readers",
    "blinding_reference": "Information available to the reference-standard assessors",
    "sample_size": "Intended sample size and how it was determined",
    "registration": "Registration number and registry",
    "protocol_access": "Where the full study protocol can be accessed",
    "funding": "Sources of funding and role of funders",
}


def _information(results: Mapping) -> dict[str, str]:
    st = results.get("study") or {}
    info = dict((st.get("config") or {}).get("information") or {})
    info.update(st.get("information") or {})
    return {k: str(v) for k, v in info.items() if v not in (None, "")}


def _info_text(info: dict, key: str, default: str) -> dict:
    if key in info:
        return {"text": info[key], "source": "supplied by the investigators"}
    return {"text": default, "source": f"not supplied (study information key '{key}')"}


def _unavailable(reason: str) -> dict:
    return {"available": False, "reason": reason}


def collect_methods(obj: Any, keys: set[str] | None = None, _key: str | None = None) -> list[str]:
    """Distinct ``method`` strings of the estimates under ``obj`` (only under ``keys`` when given)."""
    out: dict[str, None] = {}

    def walk(x, k):
        if is_estimate(x):
            if (keys is None or k in keys) and x.get("method"):
                out[str(x["method"])] = None
            return
        if isinstance(x, Mapping):
            for kk, v in x.items():
                walk(v, kk)
        elif isinstance(x, list):
            for v in x:
                walk(v, k)

    walk(obj, _key)
    return list(out)


def _has_numbers(obj: Any, keys: set[str]) -> bool:
    """True when a plain number sits under one of ``keys`` somewhere in ``obj``."""
    if isinstance(obj, Mapping):
        return any((k in keys and isinstance(v, (int, float)) and not isinstance(v, bool)) or _has_numbers(v, keys)
                   for k, v in obj.items())
    if isinstance(obj, list):
        return any(_has_numbers(v, keys) for v in obj)
    return False


def _generic_table(id: str, caption: str, items: list[Mapping], *, nd: int = 3) -> Table | None:
    """A table of a list of flat-ish dicts: strings and counts as they are, estimates with CI, p-values."""
    if not items:
        return None
    cols: dict[str, None] = {}
    for it in items:
        for k, v in it.items():
            if isinstance(v, (str, int, float, bool)) or v is None or is_estimate(v) or (
                    isinstance(v, list) and all(isinstance(x, str) for x in v)):
                cols[k] = None
    t = Table(id, caption, [k.replace("_", " ") for k in cols], nd=nd)
    for it in items:
        row = []
        for k in cols:
            v = it.get(k)
            if is_estimate(v):
                row.append(t.ci(v))
            elif isinstance(v, list):
                row.append(" vs ".join(v))
            elif k.startswith("p") and ("p_value" in k or k in ("p", "pvalue")) or k.endswith("_p"):
                row.append(fmt_p(v))
            elif isinstance(v, bool):
                row.append("yes" if v else "no")
            else:
                row.append(fmt(v, nd) if v is not None else S.DASH)
        t.add(row)
    return t


def _kv_rows(d: Mapping, *, skip: set[str] = frozenset(), prefix: str = "", depth: int = 2) -> list[tuple[str, Any]]:
    rows = []
    for k in sorted(d):
        if k in skip:
            continue
        v = d[k]
        name = f"{prefix}{k}"
        if is_estimate(v) or isinstance(v, (str, int, float, bool)) or v is None:
            rows.append((name, v))
        elif isinstance(v, Mapping) and depth > 0:
            rows += _kv_rows(v, skip=skip, prefix=f"{name}.", depth=depth - 1)
    return rows


# ============================================================================= sections
def title_context(results: Mapping) -> dict:
    st = results.get("study") or {}
    pr = st.get("protocol") or {}
    prov = results.get("provenance") or {}
    sw = st.get("software") or (prov.get("software") or {})
    return {
        "study": st.get("name") or S.DASH,
        "protocol_name": pr.get("name") or S.DASH,
        "protocol_title": pr.get("title") or "",
        "protocol_version": pr.get("version") or S.DASH,
        "protocol_sha256": pr.get("sha256") or (prov.get("protocol") or {}).get("sha256") or S.DASH,
        "date": st.get("generated") or _report_date(),
        "software_version": sw.get("acne_study") or S.DASH,
        "python": sw.get("python") or S.DASH,
        "git_commit": prov.get("git_commit") or "not recorded",
        "git_dirty": prov.get("git_dirty"),
        "schema_version": results.get("schema_version"),
    }


def _report_date() -> str:
    """The report's date: from ``SOURCE_DATE_EPOCH`` (reproducible builds), else today (UTC).

    results.json carries no run date, so the same inputs give the same results.json on any day.
    """
    import os
    from datetime import datetime, timezone

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.fromtimestamp(int(epoch), tz=timezone.utc) if epoch else datetime.now(timezone.utc)
    return when.date().isoformat()


def _model_ids(results: Mapping) -> list[str]:
    ids = set((results.get("detection") or {})) | set((results.get("counting") or {}))
    ag = results.get("agreement") or {}
    ids |= {rid for rid, r in (ag.get("raters") or {}).items() if r.get("kind") == "model"}
    return sorted(ids)


def _operating_threshold(results: Mapping) -> str | None:
    ot = (S.protocol_settings(results).get("detection") or {}).get("operating_threshold")
    return None if ot is None else str(ot)


def _threshold_key(cnt: Mapping, t: str | None) -> str | None:
    ths = list((cnt.get("thresholds") or {}).keys())
    if not ths:
        return None
    if t is not None:
        for k in ths:
            if abs(float(k) - float(t)) < 1e-9:
                return k
    return sorted(ths, key=float)[len(ths) // 2]


def summary_context(results: Mapping) -> dict:
    t = Table("tab-summary", "Key results (point estimate and confidence interval)", ["Endpoint", "Rater", "Estimate (CI)"])
    for m in _model_ids(results):
        det = (results.get("detection") or {}).get(m) or {}
        if det.get("map") is not None:
            t.add([f"Detection: mean AP over classes (IoU {fmt(det.get('iou_threshold'), 2)})", m,
                   t.ci(S.with_ci(det, "map"))])
        if (det.get("any_lesion") or {}).get("ap") is not None and len(det.get("classes") or {}) != 1:
            t.add(["Detection: AP, any lesion", m, t.ci(S.with_ci(det["any_lesion"], "ap"))])
        cnt = (results.get("counting") or {}).get(m) or {}
        tk = _threshold_key(cnt, _operating_threshold(results))
        ov = ((cnt.get("thresholds") or {}).get(tk) or {}).get("overall") or {}
        if ov.get("mae") is not None:
            t.add([f"Counting: mean absolute error per image (score ≥ {tk})", m, t.ci(ov["mae"], 2)])
        if ov.get("mean_bias") is not None:
            t.add([f"Counting: mean bias per image (score ≥ {tk})", m, t.ci(ov["mean_bias"], 2)])
    ag = results.get("agreement") or {}
    for rid, r in S.raters_in_order(ag):
        if r.get("kind") == "model":
            t.add(["Grading: accuracy", rid, t.ci(r.get("accuracy"))])
            t.add(["Grading: quadratic-weighted kappa", rid, t.ci(r.get("kappa_quadratic"))])
    for g, r in S.groups_in_order(ag):
        t.add(["Grading: accuracy", f"readers, {g}", t.ci(r.get("accuracy"))])
    for m, v in S.mrmc_models(results.get("mrmc")).items():
        for d in (v.get("analysis") or {}).get("differences") or []:
            mods = d.get("modalities")
            label = " - ".join(mods) if isinstance(mods, list) else str(mods or "")
            t.add([f"MRMC: difference in figure of merit ({label})", m or S.DASH, t.ci(d)])
    flow = S.flow_view(results.get("flow") or {})
    st = results.get("study") or {}
    n_readers = sum(1 for _, r in S.raters_in_order(ag) if r.get("kind") != "model")
    stages = flow["stages"]
    design = (f"Study '{st.get('name', '')}' under protocol {(st.get('protocol') or {}).get('name', '')} "
              f"version {(st.get('protocol') or {}).get('version', '')}: "
              + (f"{stages[0]['n']} images received, " if stages else "")
              + (f"{(results.get('baseline') or {}).get('n_cases')} included; " if results.get("baseline") else "")
              + f"{len(_model_ids(results))} model(s) and {n_readers} reader(s) were compared with the reference standard.")
    return {"design": design, "table": t.to_dict() if t.rows else None}


def introduction_context(results: Mapping) -> dict:
    st = results.get("study") or {}
    pr = st.get("protocol") or {}
    ps = S.protocol_settings(results)
    info = _information(results)
    models = _model_ids(results)
    ag = results.get("agreement") or {}
    n_readers = sum(1 for _, r in S.raters_in_order(ag) if r.get("kind") != "model")
    grading = (ps.get("grading") or {})
    objective = (f"To estimate, on this cohort and with confidence intervals, how well the model(s) "
                 f"{', '.join(models) or '(none)'} find and count acne lesions of the classes "
                 f"{', '.join(ps.get('classes') or []) or '(not recorded)'} and grade acne severity "
                 f"({', '.join(grading.get('levels') or [])}) against the reference standard"
                 + (f", compared with {n_readers} dermatologist reader(s)." if n_readers else "."))
    return {
        "title": pr.get("title") or "",
        "description": pr.get("description") or ps.get("description") or "",
        "intended_use": _info_text(info, "intended_use",
                                   "Not stated by the investigators. The index test is software that detects acne "
                                   "lesions on facial photographs and derives a severity grade from them."),
        "objective": objective,
        "hypotheses": _info_text(info, "hypotheses",
                                 "No formal hypothesis was recorded; the analysis estimates accuracy and agreement "
                                 "with confidence intervals."),
    }


def _criterion_rule(c: Mapping) -> str:
    parts = []
    if c.get("required", True):
        parts.append("value required")
    if c.get("min") is not None:
        parts.append(f"≥ {fmt(c['min'], 0) if float(c['min']).is_integer() else c['min']}")
    if c.get("max") is not None:
        parts.append(f"≤ {fmt(c['max'], 0) if float(c['max']).is_integer() else c['max']}")
    if c.get("allowed"):
        parts.append("one of " + ", ".join(map(str, c["allowed"])))
    if c.get("excluded"):
        parts.append("not " + ", ".join(map(str, c["excluded"])))
    return "; ".join(parts) or "recorded"


def methods_context(results: Mapping) -> dict:
    ps = S.protocol_settings(results)
    st = results.get("study") or {}
    cfg = st.get("config") or {}
    info = _information(results)
    out: dict[str, Any] = {"protocol_recorded": bool(ps)}

    # design and participants
    cohort = cfg.get("cohort") or {}
    synthetic = bool(cohort.get("synth"))
    out["design"] = {
        "cohort": (f"The cohort is the manifest {Path(str(cohort['manifest'])).name}"
                   if cohort.get("manifest") else "The cohort manifest is not recorded in the configuration")
                  + (" (a synthetic demonstration cohort generated by 'study synth')." if synthetic else "."),
        "items": [
            {"item": "5", "label": INFORMATION_KEYS["design"], **_info_text(
                info, "design", "The models and the analysis were applied after the images and the reference "
                                "standard had been collected (retrospective analysis of stored images).")},
            {"item": "7", "label": INFORMATION_KEYS["identification"], **_info_text(
                info, "identification", "Cases are the rows of the study manifest; the harness does not know how "
                                        "they were identified.")},
            {"item": "8", "label": INFORMATION_KEYS["setting"], **_info_text(
                info, "setting", "Not stated by the investigators.")},
            {"item": "9", "label": INFORMATION_KEYS["series"], **_info_text(
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
    crit = ps.get("inclusion") or []
    if crit:
        t = Table("tab-criteria", "Inclusion criteria, applied in this order (the flow reports the first failed)",
                  ["Id", "Manifest field", "Rule", "Description"])
        for c in crit:
            t.add([str(c.get("id")), str(c.get("field")), _criterion_rule(c), str(c.get("description", ""))])
        out["criteria"] = t.to_dict()
    else:
        out["criteria"] = None

    # quality gate
    q = ps.get("quality") or {}
    if q:
        t = Table("tab-quality", "Image-quality gate: an image failing any check is excluded", ["Setting", "Value"])
        for k in sorted(q):
            t.add([k.replace("_", " "), str(q[k]).lower() if isinstance(q[k], bool) else fmt(q[k], 3)
                   if isinstance(q[k], float) else str(q[k])])
        out["quality"] = t.to_dict()
    else:
        out["quality"] = None

    # reference standard
    g = ps.get("grading") or {}
    scheme = []
    if g.get("scheme") == "count_bands":
        lo = 0
        for b in g.get("bands") or []:
            scheme.append(f"{b['level']}: {lo}-{b['max']} lesions" if b.get("max") is not None else f"{b['level']}: more than {lo - 1} lesions")
            lo = (b.get("max") or 0) + 1
        scheme_text = (f"Count bands (Hayashi et al. 2008) on the number of "
                       f"{', '.join(g.get('count_classes') or ps.get('classes') or [])} lesions: " + "; ".join(scheme) + ".")
    elif g.get("scheme") == "type_rules":
        for r in g.get("rules") or []:
            scheme.append(f"{r['level']} if any of " + ", ".join(f"{k} ≥ {v}" for k, v in r["any_of"].items()))
        scheme_text = ("Lesion-type rules, tried from the most severe: " + "; ".join(scheme)
                       + f"; otherwise {g.get('default')}.")
    else:
        scheme_text = "The grading scheme is not recorded in results.json."
    ref_source = ("grades supplied in the reference file " + Path(str(cohort["reference"])).name
                  if cohort.get("reference") else "grades derived from the reference annotations by the grading scheme")
    out["reference"] = {
        "classes": ", ".join(ps.get("classes") or []),
        "polygon_classes": ", ".join(ps.get("polygon_classes") or []),
        "levels": ", ".join(g.get("levels") or []),
        "scheme": scheme_text,
        "source": ref_source,
        "rationale": _info_text(info, "reference_rationale",
                                "Expert lesion annotations and grades are the accepted reference for acne lesion "
                                "detection and grading; no alternative reference was used."),
        "blinding": _info_text(info, "blinding_reference",
                               "Not stated by the investigators whether the reference-standard assessors saw clinical "
                               "information; they could not see the index-test results, which were produced afterwards."),
    }

    # index tests
    prov_models = (results.get("provenance") or {}).get("models") or {}
    meta = results.get("models") or {}
    det_s = ps.get("detection") or {}
    models = _model_ids(results)
    if models:
        t = Table("tab-models", "Index tests: models, their weights and backends",
                  ["Model id", "Backend", "Backend version", "Weights sha256"])
        for m in models:
            pm = prov_models.get(m) or {}
            mm = meta.get(m) or {}
            sha = pm.get("sha256") or mm.get("weights_sha256") or mm.get("sha256")
            det_file = (pm.get("files") or {}).get("detections")
            if not sha and det_file:
                sha = f"none: precomputed detections, file sha256 {det_file.get('sha256')}"
            t.add([m, str(pm.get("backend") or mm.get("backend") or S.DASH),
                   str(pm.get("backend_version") or mm.get("backend_version") or S.DASH), str(sha or "not recorded")])
        out["models"] = t.to_dict()
    else:
        out["models"] = None
    out["detection_settings"] = {
        "iou": fmt(det_s.get("iou_threshold"), 2) if det_s else S.DASH,
        "match_rule": {"iou": "box overlap", "center_distance": "centre distance"}.get(
            str(det_s.get("match_rule", "iou")), str(det_s.get("match_rule"))),
        "score_thresholds": ", ".join(str(x) for x in det_s.get("score_thresholds") or []),
        "operating_threshold": str(det_s.get("operating_threshold", S.DASH)),
        "max_detections": str(det_s.get("max_detections", S.DASH)),
        "froc_fp_rates": ", ".join(str(x) for x in det_s.get("froc_fp_rates") or []),
    }

    # readers
    ag = results.get("agreement") or {}
    readers = [(rid, r) for rid, r in S.raters_in_order(ag) if r.get("kind") != "model"]
    if readers:
        t = Table("tab-readers", "Readers, their experience group and the number of included cases each graded",
                  ["Reader", "Group", "Cases graded"])
        for rid, r in readers:
            t.add([rid, str(r.get("group") or S.DASH), fmt_int(r.get("n_cases"))])
        out["readers"] = t.to_dict()
        counts = {r.get("n_cases") for _, r in readers}
        out["readers_design"] = ("fully crossed: every reader graded the same number of cases" if len(counts) == 1
                                 else "partially crossed: readers graded different subsets of the cases")
    else:
        out["readers"] = None
        out["readers_design"] = None
    out["readers_blinding"] = _info_text(
        info, "blinding_readers",
        "Not stated by the investigators. The models saw the photograph only (no clinical information, no reference).")

    # statistics
    stats = ps.get("statistics") or {}
    out["statistics_settings"] = {
        "confidence": f"{100 * float(stats['confidence_level']):g}%" if stats.get("confidence_level") else S.DASH,
        "bootstrap": str(stats.get("bootstrap_replicates", S.DASH)),
        "seed": str(stats.get("bootstrap_seed", S.DASH)),
        "binomial": str(stats.get("binomial_interval", S.DASH)).replace("_", "-"),
        "mrmc_positive_from": stats.get("mrmc_positive_from"),
    }
    det, cnt = results.get("detection") or {}, results.get("counting") or {}
    rows = [
        ("Average precision per class, mean AP", "lesion (detections matched to reference lesions)", det,
         {"ap", "map", "ap_ci", "map_ci"}),
        ("Precision, recall, F1, maximum recall", "lesion", det,
         {"precision", "recall", "f1", "max_recall", "max_recall_ci"}),
        ("FROC sensitivity", "lesion; false positives per image", det, {"sensitivity", "average"}),
        ("Lesion-class presence per image", "image", {m: (d or {}).get("presence") for m, d in det.items()}, None),
        ("Count error: bias, SD, MAE, RMSE, CCC", "image (one image per case)", cnt, None),
        ("Grading accuracy; per-grade sensitivity, specificity, PPV, NPV, F1", "case (image)", ag.get("raters"),
         {"accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "macro_f1"}),
        ("Cohen's kappa: unweighted, linear, quadratic", "case (image)", ag.get("raters"),
         {"kappa", "kappa_linear", "kappa_quadratic"}),
        ("Reader groups, pooled", "reading (reader x case)", ag.get("groups"), None),
        ("Model against readers: differences", "case, paired", ag.get("comparisons"), None),
        ("Inter-reader agreement", "case", ag.get("inter_reader"), None),
        ("MRMC figure-of-merit differences", "reader x case", results.get("mrmc"), None),
    ]
    t = Table("tab-methods", "Measures, unit of analysis and interval methods as recorded in results.json",
              ["Measure", "Unit of analysis", "Interval method(s)"])
    for label, unit, obj, keys in rows:
        ms = collect_methods(obj, keys) if obj else []
        if ms:
            t.add([label, unit, "; ".join(ms)])
        elif obj and keys and _has_numbers(obj, keys):
            t.add([label, unit, "point estimate only (results.json records no interval)"])
        else:
            t.add([label, unit, "not assessed in this study"])
    mr = S.mrmc_models(results.get("mrmc"))
    for m, v in mr.items():
        an = v.get("analysis") or {}
        if an.get("method"):
            t.note(f"MRMC ({m or 'all'}): method {an.get('method')}, analysis {an.get('analysis', S.DASH)}.")
    out["statistics"] = t.to_dict()
    bt = Table("tab-bootstrap", "Bootstrap settings as recorded by each analysis in results.json",
               ["Analysis", "Replicates", "Resampling unit", "Seed"])
    for m, d in sorted(det.items()):
        b = (d or {}).get("bootstrap") or {}
        if b:
            bt.add([f"detection, {m}", fmt_int(b.get("replicates")), str(b.get("unit", S.DASH)), str(b.get("seed", S.DASH))])
    for m, d in sorted(cnt.items()):
        b = (d or {}).get("definitions") or {}
        if b.get("bootstrap_replicates") is not None:
            bt.add([f"counting, {m}", fmt_int(b.get("bootstrap_replicates")), str(b.get("bootstrap_unit", S.DASH)),
                    str(b.get("seed", S.DASH))])
    a_set = ag.get("settings") or {}
    if a_set.get("n_bootstrap") is not None:
        bt.add(["grading agreement", fmt_int(a_set.get("n_bootstrap")), str(a_set.get("bootstrap_unit", S.DASH)),
                str(a_set.get("seed", S.DASH))])
    out["bootstrap"] = bt.to_dict() if bt.rows else None
    out["indeterminate"] = ("The models always return a grade (no indeterminate result): a case without detections "
                            "receives the lowest grade. Reader gradings outside the protocol's levels are rejected at "
                            "import, not analysed as indeterminate.")
    flow = results.get("flow") or {}
    out["missing"] = ("Cases failing the quality gate or the eligibility criteria are excluded and counted by reason "
                      "in the flow diagram. A missing reading is not imputed: each reader is analysed on the cases "
                      "they graded"
                      + (" (the flow lists missing readings per reader)." if flow.get("missing_readings") else ".")
                      + " Every reported interval is computed on the cases actually analysed.")
    out["sample_size"] = _info_text(info, "sample_size", "No sample-size calculation was recorded.")
    return out


def flow_context(results: Mapping) -> dict:
    flow = results.get("flow")
    if not flow:
        return _unavailable("results.json holds no flow counts (flow.json was not produced).")
    view = S.flow_view(flow)
    t = Table("tab-flow", "Flow of cases: numbers at each stage and exclusions by reason", ["Stage", "n", "Excluded", "Reasons"])
    for st in view["stages"]:
        ex = st.get("excluded") or {}
        t.add([st["label"], fmt_int(st["n"]), fmt_int(ex.get("n")) if ex else S.DASH,
               "; ".join(f"{r}: {n}" for r, n in ex.get("reasons", [])) if ex else S.DASH])
    return {"available": True, "table": t.to_dict()}


def baseline_context(results: Mapping) -> dict:
    b = results.get("baseline")
    if not b:
        return _unavailable("results.json holds no baseline table.")
    n = b.get("n_cases")
    t = Table("tab-baseline", f"Baseline characteristics of the {n} included cases", ["Characteristic", "Value"])
    age = b.get("age")
    if age:
        t.add(["Age, years: mean (SD)", f"{fmt(age.get('mean'), 1)} ({fmt(age.get('sd'), 1)})"])
        t.add(["Age: median (IQR)", f"{fmt(age.get('median'), 1)} ({fmt(age.get('q1'), 1)}-{fmt(age.get('q3'), 1)})"])
        t.add(["Age: range", f"{fmt(age.get('min'), 0)}-{fmt(age.get('max'), 0)}"])
        t.add(["Age: missing", fmt_int(age.get("n_missing"))])
    labels = {"sex": "Sex", "fitzpatrick": "Fitzpatrick skin type", "site": "Site", "device": "Capture device"}
    for cov in b.get("covariates") or ["sex", "fitzpatrick", "site", "device"]:
        if cov == "age" or not isinstance(b.get(cov), Mapping):
            continue
        for lv in b[cov].get("levels") or []:
            t.add([f"{labels.get(cov, cov)}: {lv['value']}", fmt_pct(lv["n"], lv.get("percent"))])
        if b[cov].get("n_missing"):
            t.add([f"{labels.get(cov, cov)}: missing", fmt_int(b[cov]["n_missing"])])
    sev = b.get("severity") or {}
    for lv in sev.get("levels") or []:
        t.add([f"Reference grade {lv['value']}", fmt_pct(lv["n"], lv.get("percent"))])
    if sev.get("n_missing"):
        t.add(["Reference grade missing", fmt_int(sev["n_missing"])])
    if b.get("not_recorded"):
        t.note("Not recorded in the manifest: " + ", ".join(b["not_recorded"]) + ".")
    t.note("n (%) of the included cases; SD = standard deviation; IQR = first to third quartile.")

    lpi = b.get("lesions_per_image") or {}
    order = S.class_order(results)
    lt = None
    if lpi.get("classes"):
        lt = Table("tab-lesions", "Reference lesions per image by class (as Table 1 of the smartphone study)",
                   ["Class", "Total", "Mean (SD) per image", "Median (range)", "Images with ≥ 1"], nd=2)
        names = [c for c in order if c in lpi["classes"]] + sorted(set(lpi["classes"]) - set(order))
        for c in names + (["all"] if lpi.get("all") else []):
            d = lpi["classes"].get(c) if c != "all" else lpi["all"]
            lt.add(["All classes" if c == "all" else c, fmt_int(d.get("total")), f"{fmt(d.get('mean'), 2)} ({fmt(d.get('sd'), 2)})",
                    f"{fmt(d.get('median'), 0)} ({fmt(d.get('min'), 0)}-{fmt(d.get('max'), 0)})",
                    fmt_pct(d.get("images_with"), d.get("percent_images_with"))])
    st = None
    bys = lpi.get("by_severity") or {}
    if bys:
        levels = S.level_order(results) or sorted(bys)
        names = [c for c in order if any(c in (v.get("mean") or {}) for v in bys.values())]
        st = Table("tab-lesions-severity", "Mean reference lesions per image by class and reference grade",
                   ["Grade", "Images"] + names, nd=2)
        for lv in levels:
            v = bys.get(lv) or {}
            st.add([lv, fmt_int(v.get("n_images"))] + [fmt((v.get("mean") or {}).get(c), 2) for c in names])
    ps = S.protocol_settings(results)
    diag = [c for c in ps.get("inclusion") or [] if c.get("field") in ("diagnosis", "other_facial_disease")]
    alt = ("Alternative diagnoses: not analysed. The eligibility criteria ("
           + "; ".join(f"{c['id']}: {c.get('description', '')}" for c in diag)
           + ") admit only cases with facial acne; cases excluded for another diagnosis are counted in the flow diagram."
           if diag else "Alternative diagnoses: not recorded; every case is assumed to have acne, and the study "
                        "estimates lesion-level and grade-level accuracy rather than the diagnosis of acne.")
    return {"available": True, "table": t.to_dict(), "lesions": lt.to_dict() if lt else None,
            "lesions_by_severity": st.to_dict() if st else None, "alternative": alt}


def detection_context(results: Mapping, figures: Mapping[str, str]) -> dict:
    dets = results.get("detection") or {}
    if not dets:
        return _unavailable("No detection results: results.json lists no model under 'detection'.")
    order = S.class_order(results)
    models = []
    for m, det in sorted(dets.items()):
        if not isinstance(det, Mapping) or det.get("assessed") is False:
            models.append({"model": m, "available": False,
                           "reason": (det or {}).get("reason", "no detection metrics for this model")})
            continue
        t = Table(f"tab-det-{m}", f"Standalone detection per class, model {m} (IoU ≥ {fmt(det.get('iou_threshold'), 2)})",
                  ["Class", "Reference lesions", "Detections", "AP", "Precision", "Recall", "F1", "Max recall"])
        for c, v in S.detection_classes(det, order):
            t.add([c, fmt_int(v.get("n_gt")), fmt_int(v.get("n_det")), t.ci(S.with_ci(v, "ap")),
                   t.ci(v.get("precision")), t.ci(v.get("recall")), t.ci(v.get("f1")), t.ci(S.with_ci(v, "max_recall"))])
        if det.get("map") is not None:
            t.note(f"Mean AP over classes: {t.ci(S.with_ci(det, 'map'))}.")
        if det.get("ap_definition"):
            t.note(f"Definitions: {det['ap_definition']}.")
        ot = _operating_threshold(results)
        if ot is not None:
            t.note(f"Precision, recall and F1 at the operating score threshold {ot}; AP and maximum recall over all "
                   f"scores (max recall: the recall reached with every detection kept).")
        coco = det.get("coco") or {}
        ct = None
        if coco:
            ct = Table(f"tab-coco-{m}", f"COCO summary metrics (all classes), model {m}", ["Metric", "Value"])
            for k, v in sorted(coco.items()):
                if is_estimate(v) or (isinstance(v, (int, float)) and not isinstance(v, bool)):
                    ct.add([k, ct.ci(v)])
            md = coco.get("max_dets")
            ct.note("COCO conventions: AP is averaged over IoU 0.50 to 0.95, AP50 and AP75 at IoU 0.50 and 0.75; "
                    "s, m, l = small, medium, large lesions; AR<n> = average recall with at most n detections per image"
                    + (f" (limits {', '.join(map(str, md))}; ARmax at the largest)" if isinstance(md, list) else "")
                    + f". Computed by {coco.get('backend', 'the COCO evaluator')} {coco.get('version', '')}".rstrip() + ".")
            if coco.get("note"):
                ct.note(str(coco["note"]) + ".")
        cls_coco = [(c, v.get("coco")) for c, v in S.detection_classes(det, order) if isinstance(v.get("coco"), Mapping)]
        if ct is not None and cls_coco:
            keys = [k for k in ("AP", "AP50", "AP75") if any(k in cc for _, cc in cls_coco)]
            cc_t = Table(f"tab-coco-class-{m}", f"COCO AP per class, model {m}", ["Class"] + keys)
            for c, cc in cls_coco:
                cc_t.add([c] + [cc_t.ci(cc.get(k)) for k in keys])
            cc_t.note("AP averaged over IoU 0.50 to 0.95; AP50 and AP75 at IoU 0.50 and 0.75 (COCO conventions).")
        else:
            cc_t = None
        pt = None
        pres = det.get("presence") or {}
        if pres:
            pt = Table(f"tab-presence-{m}", f"Presence of each lesion class per image, model {m}",
                       ["Class", "Accuracy", "Sensitivity", "Specificity", "F1"])
            for c in [c for c in order if c in pres] + sorted(set(pres) - set(order)):
                v = pres[c] or {}
                pt.add([c, pt.ci(v.get("accuracy")), pt.ci(v.get("sensitivity")), pt.ci(v.get("specificity")), pt.ci(v.get("f1"))])
        ft = None
        froc = det.get("froc") or {}
        if froc.get("points"):
            ft = Table(f"tab-froc-{m}", f"FROC: lesion sensitivity at pre-specified false positives per image, model {m}",
                       ["FP per image", "Sensitivity"])
            for p in froc["points"]:
                ft.add([fmt(p.get("fp_per_image"), 3), ft.ci(p.get("sensitivity"))])
            if froc.get("average") is not None:
                ft.note(f"Average sensitivity over these rates: {ft.ci(froc['average'])}.")
        seg = det.get("segmentation") or {}
        sg = None
        if seg:
            sg = Table(f"tab-seg-{m}", f"Polygon classes: overlap of matched lesions and per image, model {m}",
                       ["Class", "Level", "n", "IoU", "Dice"])
            for c in [c for c in order if c in seg] + sorted(set(seg) - set(order)):
                d = seg[c] or {}
                for lvl in ("instance", "image"):
                    x = d.get(lvl) or {}
                    if x:
                        sg.add([c, lvl, fmt_int(x.get("n")), sg.ci(x.get("iou")), sg.ci(x.get("dice"))])
                if d.get("definition"):
                    sg.note(f"{c}: {d['definition']}" + (f" (matched by {d['iou_type']})" if d.get("iou_type") else ""))
        models.append({"model": m, "available": True, "table": t.to_dict(), "coco": ct.to_dict() if ct and ct.rows else None,
                       "coco_classes": cc_t.to_dict() if cc_t else None,
                       "presence": pt.to_dict() if pt else None, "froc": ft.to_dict() if ft else None,
                       "segmentation": sg.to_dict() if sg else None,
                       "figures": [f for f in (f"pr__{m}", f"froc__{m}") if f in figures]})
    return {"available": True, "models": models}


def counting_context(results: Mapping, figures: Mapping[str, str]) -> dict:
    cnts = results.get("counting") or {}
    if not cnts:
        return _unavailable("No counting results: results.json lists no model under 'counting'.")
    levels = S.level_order(results)
    order = S.class_order(results)
    cols = ["n", "Mean bias", "SD", "MAE", "RMSE", "CCC"]

    def row(t, d):
        return [fmt_int(d.get("n")), t.ci(d.get("mean_bias"), 2), t.ci(d.get("sd"), 2), t.ci(d.get("mae"), 2),
                t.ci(d.get("rmse"), 2), t.ci(d.get("ccc"), 3)]

    models = []
    for m, cnt in sorted(cnts.items()):
        ths = sorted((cnt.get("thresholds") or {}), key=float)
        if not ths:
            models.append({"model": m, "available": False, "reason": cnt.get("reason", "no counting thresholds recorded")})
            continue
        t2 = Table(f"tab-count-{m}", f"Counting error per image by score threshold, model {m} (as ACNE04 Table 2)",
                   ["Score threshold"] + cols, nd=2)
        for th in ths:
            t2.add([f"≥ {th}"] + row(t2, (cnt["thresholds"][th] or {}).get("overall") or {}))
        t2.note("Bias = predicted - reference count; MAE = mean absolute error; RMSE = root mean squared error; "
                "CCC = Lin's concordance correlation coefficient.")
        t3 = Table(f"tab-count-sev-{m}", f"Counting error by reference grade, model {m} (as ACNE04 Table 3)",
                   ["Grade", "Score threshold"] + cols, nd=2)
        for lv in levels or sorted({k for th in ths for k in ((cnt['thresholds'][th] or {}).get('by_severity') or {})}):
            for th in ths:
                d = ((cnt["thresholds"][th] or {}).get("by_severity") or {}).get(lv)
                if d:
                    t3.add([lv, f"≥ {th}"] + row(t3, d))
        tk = _threshold_key(cnt, _operating_threshold(results))
        byc = ((cnt["thresholds"].get(tk) or {}).get("by_class") or {})
        tc = None
        if byc and len(byc) > 1:
            tc = Table(f"tab-count-class-{m}", f"Counting error per class at score ≥ {tk}, model {m}", ["Class"] + cols, nd=2)
            for c in [c for c in order if c in byc] + sorted(set(byc) - set(order)):
                tc.add([c] + row(tc, byc[c] or {}))
        models.append({"model": m, "available": True, "table2": t2.to_dict(), "table3": t3.to_dict() if t3.rows else None,
                       "by_class": tc.to_dict() if tc else None,
                       "figures": [f for f in (f"count_scatter__{m}", f"bland_altman__{m}") if f in figures]})
    return {"available": True, "models": models}


def _no_agreement_reason(results: Mapping) -> str:
    ag = results.get("agreement")
    if not ag:
        return "results.json holds no agreement results (no grades were compared with the reference)."
    return str(ag.get("reason") or "no rater has graded any included case.")


def agreement_context(results: Mapping, figures: Mapping[str, str]) -> dict:
    ag = results.get("agreement") or {}
    raters = S.raters_in_order(ag)
    if not raters:
        return _unavailable(_no_agreement_reason(results))
    levels = list(ag.get("levels") or [])
    tables = []
    for rid, r in raters:
        if r.get("kind") != "model" or not r.get("confusion_matrix"):
            continue
        t = Table(f"tab-cm-{rid}", f"Cross-tabulation of model {rid} grades (columns) by reference grades (rows)",
                  ["Reference \\ model"] + levels + ["Total"])
        for lv, rowv in zip(levels, r["confusion_matrix"]):
            t.add([lv] + [fmt_int(x) for x in rowv] + [fmt_int(sum(rowv))])
        cm = r["confusion_matrix"]
        t.add(["Total"] + [fmt_int(sum(rw[j] for rw in cm)) for j in range(len(levels))] + [fmt_int(sum(map(sum, cm)))])
        tables.append(t.to_dict())
    return {"available": True, "tables": tables, "figures": [f for f in ("confusion",) if f in figures],
            "n_readers": sum(1 for _, r in raters if r.get("kind") != "model")}


def _error_cell(t: Table, v: Any) -> str:
    """``19: 0.613 (0.438-0.763)`` (count: share of errors with CI), or a plain count."""
    if is_estimate(v):
        k = v.get("k")
        return (f"{fmt_int(k)}: " if k is not None else "") + t.ci(v)
    return fmt_int(v) if isinstance(v, (int, float)) else S.DASH


def accuracy_context(results: Mapping, figures: Mapping[str, str]) -> dict:
    ag = results.get("agreement") or {}
    raters = S.raters_in_order(ag)
    if not raters:
        return _unavailable(_no_agreement_reason(results))
    levels = list(ag.get("levels") or [])
    groups = S.groups_in_order(ag)
    main = Table("tab-accuracy", "Grading accuracy and agreement with the reference, per rater and reader group",
                 ["Rater", "Kind / group", "Cases", "Accuracy", "Kappa", "Linear kappa", "Quadratic kappa", "Macro F1"])
    for rid, r in raters + [(f"{g} (pooled)", {**v, "kind": "group", "group": g}) for g, v in groups]:
        kind = "model" if r.get("kind") == "model" else ("group" if r.get("kind") == "group" else f"reader, {r.get('group') or S.DASH}")
        main.add([rid, kind, fmt_int(r.get("n_cases", r.get("n_readings"))), main.ci(r.get("accuracy")), main.ci(r.get("kappa")),
                  main.ci(r.get("kappa_linear")), main.ci(r.get("kappa_quadratic")), main.ci(r.get("macro_f1"))])
    for g, v in groups:
        sp = v.get("spread") or {}
        parts = [f"{k.replace('_', ' ')} {fmt(x.get('min'))}-{fmt(x.get('max'))} (median {fmt(x.get('median'))})"
                 for k, x in sorted(sp.items()) if isinstance(x, Mapping) and "min" in x]
        if parts:
            main.note(f"Range over the {g} readers: " + "; ".join(parts) + ".")
    per = Table("tab-per-grade", "Per-grade sensitivity, specificity, predictive values and F1 (one grade against the others)",
                ["Rater", "Grade", "Sensitivity", "Specificity", "PPV", "NPV", "F1"])
    for rid, r in raters + [(f"{g} (pooled)", v) for g, v in groups]:
        for lv in levels:
            pg = (r.get("per_grade") or {}).get(lv) or {}
            if pg:
                per.add([rid, lv, per.ci(pg.get("sensitivity")), per.ci(pg.get("specificity")), per.ci(pg.get("ppv")),
                         per.ci(pg.get("npv")), per.ci(pg.get("f1"))])
    err = Table("tab-errors", "Direction of grading errors: down-grade (less severe than the reference), up-grade, "
                              "and errors crossing more than one grade", ["Rater", "Errors", "Down-grade", "Up-grade", "Cross-grade (> 1 level)"])
    for rid, r in raters + [(f"{g} (pooled)", v) for g, v in groups]:
        e = r.get("errors") or {}
        if e:
            err.add([rid, _error_cell(err, e.get("n_errors")), _error_cell(err, e.get("downgrade")),
                     _error_cell(err, e.get("upgrade")), _error_cell(err, e.get("cross_grade"))])
    err.note("Count of errors: share of the rater's errors (CI). Cross-grade: the rater's grade is two or more levels "
             "from the reference.")
    return {"available": True, "table": main.to_dict(), "per_grade": per.to_dict() if per.rows else None,
            "errors": err.to_dict() if err.rows else None, "figures": [f for f in ("sens_spec",) if f in figures]}


def comparisons_context(results: Mapping) -> dict:
    ag = results.get("agreement") or {}
    comps = [c for c in ag.get("comparisons") or [] if isinstance(c, Mapping)]
    inter = ag.get("inter_reader") or {}
    n_readers = sum(1 for _, r in S.raters_in_order(ag) if r.get("kind") != "model")
    if not comps and not inter:
        reason = ("the study has no readers" if n_readers == 0 else
                  "results.json holds no model-against-reader comparison")
        return _unavailable(f"Not assessed: {reason}.")
    t = None
    if comps:
        t = Table("tab-comparisons", "Model against each reader and reader group on the cases both graded: "
                                     "accuracy and quadratic kappa, differences (model minus reader) and McNemar's test",
                  ["Model", "Versus", "Cases", "Model accuracy", "Versus accuracy", "Accuracy difference",
                   "Quadratic kappa difference", "McNemar p"])
        for c in comps:
            mc = c.get("mcnemar") or {}
            t.add([str(c.get("model")), f"{c.get('versus')} ({c.get('versus_kind', '')})", fmt_int(c.get("n_cases")),
                   t.ci(c.get("model_accuracy")), t.ci(c.get("versus_accuracy")), t.ci(c.get("accuracy_difference")),
                   t.ci(c.get("kappa_quadratic_difference")), fmt_p(mc.get("p_value"))])
            if mc.get("method"):
                t.note(f"McNemar: {mc['method']}.")
            if mc.get("note"):
                t.note(f"McNemar's test {mc['note']}.")
    ov = Table("tab-inter", "Inter-reader agreement (readers only)", ["Measure", "Readers", "Cases", "Estimate (CI)"])
    fl = inter.get("fleiss") or {}
    if is_estimate(fl.get("kappa")):
        ov.add(["Fleiss' kappa", fmt_int(len(fl.get("readers") or [])), fmt_int(fl.get("n_cases")), ov.ci(fl["kappa"])])
        if fl.get("selection"):
            ov.note(f"Fleiss' kappa: {fl['selection']}.")
    ka = inter.get("krippendorff_alpha_ordinal") or {}
    if is_estimate(ka.get("alpha")):
        ov.add(["Krippendorff's alpha (ordinal)", fmt_int(len(ka.get("readers") or [])), fmt_int(ka.get("n_cases")),
                ov.ci(ka["alpha"])])
        if ka.get("note"):
            ov.note(f"Krippendorff's alpha: {ka['note']}.")
    if inter.get("reason"):
        ov.note(str(inter["reason"]))
    pw = None
    pairs = (inter.get("pairwise") or {}).get("pairs") if isinstance(inter.get("pairwise"), Mapping) else None
    if pairs:
        pw = Table("tab-inter-pairs", "Inter-reader agreement, pairwise (cases read by both)",
                   ["Reader A", "Reader B", "Cases", "Kappa", "Linear kappa", "Quadratic kappa"])
        for q in pairs:
            pw.add([str(q.get("reader_a")), str(q.get("reader_b")), fmt_int(q.get("n_cases")), pw.ci(q.get("kappa")),
                    pw.ci(q.get("kappa_linear")), pw.ci(q.get("kappa_quadratic"))])
    return {"available": True, "table": t.to_dict() if t else None, "pairwise": pw.to_dict() if pw else None,
            "overall": ov.to_dict() if ov.rows or ov.notes else None}


def mrmc_context(results: Mapping, figures: Mapping[str, str]) -> dict:
    mr = results.get("mrmc")
    models = S.mrmc_models(mr)
    if not models:
        reason = (mr or {}).get("reason") if isinstance(mr, Mapping) else None
        return _unavailable("Not assessed: " + (reason or "results.json holds no MRMC analysis (no MRMC endpoint)") + ".")
    out = []
    for m, v in models.items():
        an = v.get("analysis") or {}
        design = {**(an.get("design") or {}), **{k: x for k, x in (v.get("design") or {}).items()}}
        st = Table(f"tab-mrmc-{m}", f"MRMC analysis, {m or 'all raters'}: design and method", ["Item", "Value"])
        for label, val in (
            ("Method", f"{str(an.get('method', '')).upper()} ({an.get('analysis', S.DASH)}), covariance {an.get('covariance', S.DASH)}"),
            ("Figure of merit", str(an.get("fom_description") or an.get("fom") or S.DASH)),
            ("Endpoint", str(design.get("endpoint") or S.DASH)),
            ("Rating", str(design.get("rating") or S.DASH)),
            ("Design", str(design.get("crossing") or S.DASH)),
            ("Cases analysed (positive / negative)", f"{fmt_int(design.get('cases_kept', design.get('n_cases')))} "
                                                     f"({fmt_int(design.get('n_positive', design.get('n_cases_positive')))} / "
                                                     f"{fmt_int(design.get('n_negative', design.get('n_cases_negative')))})"),
            ("Cases with a reference", fmt_int(design.get("cases_reference"))),
            ("Raters analysed", ", ".join(design.get("raters_kept") or design.get("readers") or []) or S.DASH),
            ("Selection rule", str(design.get("rule") or S.DASH)),
        ):
            st.add([label, val])
        for k2, n2 in sorted((design.get("cases_excluded") or {}).items()):
            st.add([f"Cases left out: {k2.replace('_', ' ')}", fmt_int(n2)])
        for w in an.get("warnings") or []:
            st.note(str(w))
        ft = Table(f"tab-mrmc-fom-{m}", "Figures of merit and the algorithm-minus-readers difference",
                   ["Quantity", "Estimate (CI)", "SE", "df", "Statistic", "p"])
        for a in an.get("ai_vs_readers") or []:
            ft.add([f"Algorithm {a.get('ai_reader', '')}", ft.ci(a.get("ai_fom")), fmt((a.get("ai_fom") or {}).get("se")),
                    S.DASH, S.DASH, S.DASH])
            ft.add(["Readers (average)", ft.ci(a.get("readers_fom")), fmt((a.get("readers_fom") or {}).get("se")),
                    fmt((a.get("readers_fom") or {}).get("df"), 1), S.DASH, S.DASH])
        for mod, mv in sorted((an.get("modalities") or {}).items()):
            if not an.get("ai_vs_readers") and is_estimate((mv or {}).get("fom")):
                ft.add([f"Modality {mod}", ft.ci(mv["fom"]), fmt(mv["fom"].get("se")), fmt(mv["fom"].get("df"), 1), S.DASH, S.DASH])
        for d in an.get("differences") or []:
            if isinstance(d, Mapping):
                label = d.get("comparison") or " - ".join(d.get("modalities") or [])
                ft.add([f"Difference: {label}", ft.ci(d), fmt(d.get("se")), fmt(d.get("df"), 1),
                        f"{d.get('statistic_name', '')} = {fmt(d.get('statistic'), 3)}", fmt_p(d.get("p_value"))])
        rd = an.get("readers") or {}
        rt = None
        if isinstance(rd, Mapping) and rd:
            mods = sorted({k for x in rd.values() if isinstance(x, Mapping) for k in x})
            rt = Table(f"tab-mrmc-readers-{m}", "Figure of merit per rater", ["Rater"] + [f"FOM ({x})" for x in mods])
            for r_id, x in sorted(rd.items()):
                rt.add([r_id] + [fmt((x or {}).get(k)) for k in mods])
        vc = an.get("variance_components") or {}
        vt = None
        if vc:
            vt = Table(f"tab-mrmc-var-{m}", "Variance components", ["Component", "Value"], nd=6)
            for k2, x in sorted(vc.items()):
                if isinstance(x, (int, float)) and not isinstance(x, bool):
                    vt.add([k2, fmt(x, 6)])
            if vc.get("note"):
                vt.note(str(vc["note"]))
        out.append({"model": m, "table": st.to_dict(), "differences": ft.to_dict() if ft.rows else None,
                    "readers": rt.to_dict() if rt else None, "variance": vt.to_dict() if vt and vt.rows else None,
                    "figures": [f for f in (f"mrmc_roc__{m}",) if f in figures]})
    endpoint = mr.get("endpoint") if isinstance(mr, Mapping) else None
    return {"available": True, "endpoint": endpoint, "models": out}


def subgroups_context(results: Mapping, figures: Mapping[str, str]) -> dict:
    ag = results.get("agreement") or {}
    rows = S.subgroup_rows(ag)
    ps = S.protocol_settings(results)
    if not rows:
        why = ("the protocol names no subgroup columns" if not ps.get("subgroups")
               else "results.json holds no subgroup results (the subgroup columns may be absent from the manifest)")
        return _unavailable(f"Not assessed: {why}.")
    tables = []
    for col, rs in rows.items():
        t = Table(f"tab-sub-{col}", f"Grading accuracy and quadratic kappa by {col}", ["Value", "Rater", "Cases", "Accuracy", "Quadratic kappa"])
        for r in rs:
            t.add([str(r["value"]), r["rater"], fmt_int(r["n"]), t.ci(r["accuracy"]), t.ci(r["kappa"])])
        small = sorted({str(r["value"]) for r in rs if r["n"] is not None and r["n"] < 20})
        if small:
            t.note(f"Fewer than 20 cases in: {', '.join(small)}; interpret with caution.")
        tables.append({"column": col, "table": t.to_dict(), "figure": f"forest__{col}" if f"forest__{col}" in figures else None})
    pre = ", ".join(ps.get("subgroups") or [])
    return {"available": True, "subgroups": tables,
            "prespecified": (f"Subgroup columns pre-specified in the protocol: {pre}. The analyses are descriptive, "
                             "without adjustment for multiplicity.") if pre else
                            "The subgroup analyses were not pre-specified (exploratory)."}


def failures_context(results: Mapping) -> dict:
    ps = S.protocol_settings(results)
    k = int((ps.get("report") or {}).get("worst_cases", 10))
    cnts = results.get("counting") or {}
    if k == 0:
        return _unavailable("Not shown: the protocol sets report.worst_cases to 0.")
    order = S.class_order(results)
    all_ids = set()
    for cnt in cnts.values():
        all_ids |= {str(c) for c in ((cnt or {}).get("points") or {}).get("case_id") or []}
    if not all_ids:
        return _unavailable("Not assessed: results.json holds no per-case counts (counting.<model>.points).")
    pseudo = S.pseudonyms(all_ids)
    out = []
    for m, cnt in sorted(cnts.items()):
        tk = _threshold_key(cnt or {}, _operating_threshold(results))
        pts = (cnt or {}).get("points") or {}
        ids = pts.get("case_id") or []
        pred = (pts.get("predicted") or {}).get(tk)
        if not ids or pred is None:
            continue
        true, sev = pts.get("true") or [], pts.get("severity") or [None] * len(ids)
        by_class = pts.get("by_class") or {}
        rows = []
        for i, cid in enumerate(ids):
            if pred[i] is None or true[i] is None:
                continue
            cls = []
            for c in order:
                bc = by_class.get(c) or {}
                a = (bc.get("true") or [None] * len(ids))[i]
                b = ((bc.get("predicted") or {}).get(tk) or [None] * len(ids))[i]
                if a is not None and b is not None and a != b:
                    cls.append(f"{c} {fmt_int(a)}/{fmt_int(b)}")
            rows.append({"case": pseudo[str(cid)], "true": true[i], "pred": pred[i], "grade": sev[i], "classes": cls})
        rows.sort(key=lambda r: (-abs(float(r["pred"]) - float(r["true"])), r["case"]))
        t = Table(f"tab-worst-{m}", f"The {min(k, len(rows))} cases with the largest count error at score ≥ {tk}, model {m}",
                  ["Case", "Reference grade", "Reference count", "Predicted count", "Error", "Classes differing (reference/predicted)"])
        for r in rows[:k]:
            t.add([r["case"], str(r["grade"] or S.DASH), fmt_int(r["true"]), fmt_int(r["pred"]),
                   f"{float(r['pred']) - float(r['true']):+.0f}",
                   ", ".join(r["classes"]) if r["classes"] else ("none" if by_class else "not recorded")])
        if not by_class:
            t.note("Per-class counts per case are not recorded in results.json (counting.<model>.points.by_class), "
                   "so the classes involved cannot be listed; the per-class error over all cases is in the counting tables.")
        t.note("Cases are pseudonymised (C-numbers in the order of the sha256 of the case ids); no patient or case id "
               "is printed. The study team can regenerate the mapping from the manifest.")
        out.append({"model": m, "table": t.to_dict()})
    if not out:
        return _unavailable("Not assessed: no per-case counts at the operating threshold.")
    return {"available": True, "models": out}


def examples_context(results: Mapping, figures: Mapping[str, str] | None = None) -> dict:
    ps = S.protocol_settings(results)
    allowed = bool((ps.get("report") or {}).get("show_example_images", False))
    if not allowed:
        return _unavailable("Not shown: the protocol does not allow example images (report.show_example_images is "
                            "false, the default), because facial photographs are personal data.")
    names = sorted(n for n in (figures or {}) if n.startswith("example__"))
    if not names:
        return _unavailable("Not shown: the protocol allows example images, but the renderer was not given the "
                            "study's results folder with the images and detections (study report RESULTS_DIR does).")
    return {"available": True, "figures": names,
            "note": "The cases with the largest count error, by pseudonym; reference lesions as solid boxes, the "
                    "model's detections at the operating threshold as dashed boxes."}


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
    ag = results.get("agreement") or {}
    readers = [r for _, r in S.raters_in_order(ag) if r.get("kind") != "model"]
    if readers and len({r.get("n_cases") for r in readers}) > 1:
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
    info = _information(results)
    return {"text": _info_text(info, "intended_use",
                               "The report quantifies agreement with the reference standard on this cohort; whether "
                               "the model is fit for its intended use is a judgement for the investigators and the "
                               "reviewing body, who have not stated it here.")}


def information_context(results: Mapping) -> dict:
    info = _information(results)
    st = results.get("study") or {}
    pr = st.get("protocol") or {}
    return {
        "registration": _info_text(info, "registration", "Not registered, or the registration was not supplied."),
        "protocol": _info_text(info, "protocol_access",
                               f"The analysis protocol is the file {Path(str(pr.get('path', ''))).name or S.DASH} "
                               f"(name {pr.get('name', S.DASH)}, version {pr.get('version', S.DASH)}, sha256 "
                               f"{pr.get('sha256', S.DASH)}), listed in Appendix B."),
        "funding": _info_text(info, "funding", "Not supplied by the investigators."),
    }


def provenance_context(results: Mapping) -> dict:
    prov = results.get("provenance") or {}
    if not prov:
        return _unavailable("results.json holds no provenance record.")
    it = Table("tab-inputs", "Input files and their sha256", ["Role", "File", "sha256", "Bytes"])
    for role, e in sorted((prov.get("inputs") or {}).items()):
        if e is None:
            it.add([role, "absent", S.DASH, S.DASH])
        else:
            it.add([role, str(e.get("path")), str(e.get("sha256")), fmt_int(e.get("bytes"))])
    p = prov.get("protocol") or {}
    if p and p.get("sha256") not in {(e or {}).get("sha256") for e in (prov.get("inputs") or {}).values()}:
        it.add(["protocol (file)", str(p.get("path")), str(p.get("sha256")), fmt_int(p.get("bytes"))])
    img = prov.get("images_digest") or {}
    if img:
        it.add([f"images ({fmt_int(img.get('n_images'))} files)", "digest of all images", str(img.get("sha256") or S.DASH), S.DASH])
        it.note(f"Images digest: {img.get('method', '')}.")
    mt = Table("tab-model-files", "Model files", ["Model", "Backend", "File", "Path", "sha256"])
    for m, e in sorted((prov.get("models") or {}).items()):
        files = e.get("files") or ({"weights": {"path": e.get("weights"), "sha256": e.get("sha256")}} if e.get("sha256") else {})
        for k, f in sorted(files.items()):
            mt.add([m, str(e.get("backend") or S.DASH), k, str(f.get("path")), str(f.get("sha256"))])
        if not files:
            mt.add([m, str(e.get("backend") or S.DASH), S.DASH, S.DASH, "not recorded"])
    sw = prov.get("software") or ((results.get("study") or {}).get("software")) or {}
    swt = Table("tab-software", "Software and library versions", ["Component", "Version"])
    for k in ("acne_study", "python", "implementation", "platform"):
        if sw.get(k):
            swt.add([k.replace("_", "-"), str(sw[k])])
    for k, v in sorted((sw.get("libraries") or {}).items()):
        swt.add([k, str(v) if v else "not installed"])
    swt.add(["git commit", str(prov.get("git_commit") or "not recorded")
             + (" (uncommitted changes present)" if prov.get("git_dirty") else "")])
    cfg = prov.get("config") or (results.get("study") or {}).get("config") or {}
    return {"available": True, "inputs": it.to_dict(), "models": mt.to_dict() if mt.rows else None,
            "software": swt.to_dict(), "config": json.dumps(cfg, indent=2, sort_keys=True, ensure_ascii=False)}


# ============================================================================= all
def build_context(results: Mapping, *, figures: Mapping[str, str], pages: Mapping[str, int] | None = None) -> dict:
    """The whole template context: one entry per section plus the TOC and the STARD checklist."""
    if not isinstance(results, Mapping):
        raise TypeError("results must be a mapping (the parsed results.json)")
    return {
        "title": title_context(results),
        "toc": [{"id": k, "title": v, "level": 2 if v[:1].isdigit() and "." in v.split(" ")[0].rstrip(".") else 1}
                for k, v in SECTIONS.items() if k not in TOC_EXCLUDE],
        "sections": SECTIONS,
        "summary": summary_context(results),
        "introduction": introduction_context(results),
        "methods": methods_context(results),
        "flow": flow_context(results),
        "baseline": baseline_context(results),
        "detection": detection_context(results, figures),
        "counting": counting_context(results, figures),
        "agreement": agreement_context(results, figures),
        "accuracy": accuracy_context(results, figures),
        "comparisons": comparisons_context(results),
        "mrmc": mrmc_context(results, figures),
        "subgroups": subgroups_context(results, figures),
        "failures": failures_context(results),
        "examples": examples_context(results, figures),
        "limitations": limitations_context(results),
        "implications": implications_context(results),
        "information": information_context(results),
        "stard": stard.checklist(SECTIONS, dict(pages or {})),
        "provenance": provenance_context(results),
    }
