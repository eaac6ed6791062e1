"""Grading: cross-tabulation, accuracy and agreement, subgroups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from study.report import format as F
from study.report import selectors as S
from study.report.context.common import unavailable
from study.report.format import Table, fmt, fmt_int, is_estimate


def _no_agreement_reason(results: Mapping) -> str:
    ag = results.get("agreement")
    if not ag:
        return "results.json holds no agreement results (no grades were compared with the reference)."
    return str(ag.get("reason") or "no rater has graded any included case.")


def agreement_context(results: Mapping, figures: Mapping[str, str]) -> dict:
    ag = results.get("agreement") or {}
    raters = S.raters_in_order(ag)
    if not raters:
        return unavailable(_no_agreement_reason(results))
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
    return fmt_int(v) if isinstance(v, (int, float)) else F.DASH


def accuracy_context(results: Mapping, figures: Mapping[str, str]) -> dict:
    ag = results.get("agreement") or {}
    raters = S.raters_in_order(ag)
    if not raters:
        return unavailable(_no_agreement_reason(results))
    levels = list(ag.get("levels") or [])
    groups = S.groups_in_order(ag)
    main = Table("tab-accuracy", "Grading accuracy and agreement with the reference, per rater and reader group",
                 ["Rater", "Kind / group", "Cases", "Accuracy", "Kappa", "Linear kappa", "Quadratic kappa", "Macro F1"])
    for rid, r in raters + [(f"{g} (pooled)", {**v, "kind": "group", "group": g}) for g, v in groups]:
        kind = "model" if r.get("kind") == "model" else ("group" if r.get("kind") == "group" else f"reader, {r.get('group') or F.DASH}")
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


def subgroups_context(results: Mapping, figures: Mapping[str, str]) -> dict:
    ag = results.get("agreement") or {}
    rows = S.subgroup_rows(ag)
    ps = S.protocol_settings(results)
    if not rows:
        why = ("the protocol names no subgroup columns" if not ps.get("subgroups")
               else "results.json holds no subgroup results (the subgroup columns may be absent from the manifest)")
        return unavailable(f"Not assessed: {why}.")
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
