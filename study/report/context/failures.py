"""Failure analysis and example images."""

from __future__ import annotations

from collections.abc import Mapping

from study.report import format as F
from study.report import selectors as S
from study.report.context.common import operating_threshold, threshold_key, unavailable
from study.report.format import Table, fmt_int


def failures_context(results: Mapping) -> dict:
    ps = S.protocol_settings(results)
    k = int((ps.get("report") or {}).get("worst_cases", 10))
    cnts = results.get("counting") or {}
    if k == 0:
        return unavailable("Not shown: the protocol sets report.worst_cases to 0.")
    order = S.class_order(results)
    all_ids = set()
    for cnt in cnts.values():
        all_ids |= {str(c) for c in ((cnt or {}).get("points") or {}).get("case_id") or []}
    if not all_ids:
        return unavailable("Not assessed: results.json holds no per-case counts (counting.<model>.points).")
    pseudo = S.pseudonyms(all_ids)
    out = []
    for m, cnt in sorted(cnts.items()):
        tk = threshold_key(cnt or {}, operating_threshold(results))
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
            t.add([r["case"], str(r["grade"] or F.DASH), fmt_int(r["true"]), fmt_int(r["pred"]),
                   f"{float(r['pred']) - float(r['true']):+.0f}",
                   ", ".join(r["classes"]) if r["classes"] else ("none" if by_class else "not recorded")])
        if not by_class:
            t.note("Per-class counts per case are not recorded in results.json (counting.<model>.points.by_class), "
                   "so the classes involved cannot be listed; the per-class error over all cases is in the counting tables.")
        t.note("Cases are pseudonymised (C-numbers in the order of the sha256 of the case ids); no patient or case id "
               "is printed. The study team can regenerate the mapping from the manifest.")
        out.append({"model": m, "table": t.to_dict()})
    if not out:
        return unavailable("Not assessed: no per-case counts at the operating threshold.")
    return {"available": True, "models": out}


def examples_context(results: Mapping, figures: Mapping[str, str] | None = None) -> dict:
    ps = S.protocol_settings(results)
    allowed = bool((ps.get("report") or {}).get("show_example_images", False))
    if not allowed:
        return unavailable("Not shown: the protocol does not allow example images (report.show_example_images is "
                            "false, the default), because facial photographs are personal data.")
    names = sorted(n for n in (figures or {}) if n.startswith("example__"))
    if not names:
        return unavailable("Not shown: the protocol allows example images, but the renderer was not given the "
                            "study's results folder with the images and detections (study report RESULTS_DIR does).")
    return {"available": True, "figures": names,
            "note": "The cases with the largest count error, by pseudonym; reference lesions as solid boxes, the "
                    "model's detections at the operating threshold as dashed boxes."}
