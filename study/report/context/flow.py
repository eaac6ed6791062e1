"""Flow of cases (STARD diagram) and baseline characteristics."""

from __future__ import annotations

from collections.abc import Mapping

from study.report import format as F
from study.report import selectors as S
from study.report.context.common import unavailable
from study.report.format import Table, fmt, fmt_int, fmt_pct


def flow_context(results: Mapping) -> dict:
    flow = results.get("flow")
    if not flow:
        return unavailable("results.json holds no flow counts (flow.json was not produced).")
    view = S.flow_view(flow)
    t = Table("tab-flow", "Flow of cases: numbers at each stage and exclusions by reason", ["Stage", "n", "Excluded", "Reasons"])
    for st in view["stages"]:
        ex = st.get("excluded") or {}
        t.add([st["label"], fmt_int(st["n"]), fmt_int(ex.get("n")) if ex else F.DASH,
               "; ".join(f"{r}: {n}" for r, n in ex.get("reasons", [])) if ex else F.DASH])
    return {"available": True, "table": t.to_dict()}


def baseline_context(results: Mapping) -> dict:
    b = results.get("baseline")
    if not b:
        return unavailable("results.json holds no baseline table.")
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
