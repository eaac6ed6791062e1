"""Lesion counting."""

from __future__ import annotations

from collections.abc import Mapping

from study.report import selectors as S
from study.report.context.common import operating_threshold, threshold_key, unavailable
from study.report.format import Table, fmt_int


def counting_context(results: Mapping, figures: Mapping[str, str]) -> dict:
    cnts = results.get("counting") or {}
    if not cnts:
        return unavailable("No counting results: results.json lists no model under 'counting'.")
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
        tk = threshold_key(cnt, operating_threshold(results))
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
