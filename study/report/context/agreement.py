"""Grading: cross-tabulation, accuracy and agreement, subgroups (from the typed ``agreement`` block)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from study.estimate import Estimate
from study.report import selectors as S
from study.report.context.common import unavailable
from study.report.figure_ids import figure_id
from study.report.format import DASH, Table, fmt, fmt_int, plural
from study.results.agreement import AgreementResult, GroupAgreement, RaterAgreement

NO_AGREEMENT = "results.json holds no agreement results (no grades were compared with the reference)."
NO_RATERS = "no rater has graded any included case."



def graded_unit(agreement: AgreementResult) -> str:
    """What one grade is: ``"Patients"`` with ``grading.patient_grade`` (one grade per patient), else ``"Images"``."""
    return "Patients" if agreement.settings.patient_grade else "Images"


def unit_note(agreement: AgreementResult) -> str:
    """The sentence every grading table carries on what n counts and what the intervals treat as independent."""
    s = agreement.settings
    if s.patient_grade:
        return (f"n = patients: one grade per patient, the most severe of the patient's images "
                f"(grading.patient_grade: {s.patient_grade}), for the reference and for each rater.")
    unit = ("the patient (a patient's images form one cluster)" if s.unit == "patient"
            else "the image (images treated as independent)")
    return (f"n = images ({s.n_cases} images from {s.n_patients} patients); unit of analysis of the intervals: "
            f"{unit}.")


def _unavailable_reason(agreement: AgreementResult | None) -> str:
    return NO_AGREEMENT if agreement is None else NO_RATERS


def agreement_context(agreement: AgreementResult | None, figures: Mapping[str, str]) -> dict[str, Any]:
    """Cross-tabulation of each model's grades against the reference grades (STARD 23)."""
    raters = S.raters_in_order(agreement.raters) if agreement is not None else []
    if agreement is None or not raters:
        return unavailable(_unavailable_reason(agreement))
    levels = agreement.levels
    tables = []
    for rid, r in raters:
        if r.kind != "model":
            continue
        cm = r.confusion_matrix
        t = Table(f"tab-cm-{rid}", f"Cross-tabulation of model {rid} grades (columns) by reference grades (rows), "
                                   f"counts of {graded_unit(agreement).lower()}",
                  ["Reference \\ model", *levels, "Total"])
        for lv, row in zip(levels, cm):
            t.add([lv, *(fmt_int(x) for x in row), fmt_int(sum(row))])
        t.add(["Total", *(fmt_int(sum(row[j] for row in cm)) for j in range(len(levels))),
               fmt_int(sum(map(sum, cm)))])
        tables.append(t.to_dict())
    return {"available": True, "tables": tables, "figures": [f for f in ("confusion",) if f in figures],
            "n_readers": sum(1 for _, r in raters if r.kind != "model")}


def _error_cell(t: Table, e: Estimate) -> str:
    """``19: 0.613 (0.438-0.763)``: count of errors in the direction, then their share with its CI."""
    return (f"{fmt_int(e.k)}: " if e.k is not None else "") + t.ci(e)


def _kind(r: RaterAgreement | GroupAgreement) -> str:
    if isinstance(r, GroupAgreement):
        return "group"
    return "model" if r.kind == "model" else f"reader, {r.group or DASH}"


def reader_average_row(g: GroupAgreement) -> list[str] | None:
    """Accuracy, the three kappas and macro F1 averaged over the group's readers (mean of their own estimates);
    ``None`` when every average equals the pooled value to three decimals."""
    cells, differs = [], False
    for name in ("accuracy", "kappa", "kappa_linear", "kappa_quadratic", "macro_f1"):
        vals = [v for v in getattr(g.spread, name).by_reader.values() if v is not None]
        mean = sum(vals) / len(vals) if vals else None
        pooled = getattr(g, name).estimate
        differs = differs or (mean is not None and (pooled is None or fmt(mean) != fmt(pooled)))
        cells.append(fmt(mean))
    return cells if differs else None


def accuracy_context(agreement: AgreementResult | None, figures: Mapping[str, str], *,
                     analysed_readers: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Accuracy and agreement per rater and pooled reader group; per grade; direction of errors.

    ``analysed_readers`` (the flow's ``analysed.readers``): a reader listed there with no
    analysed case is shown as not estimable, with the reason, instead of being left out.
    """
    raters = S.raters_in_order(agreement.raters) if agreement is not None else []
    if agreement is None or not raters:
        return unavailable(_unavailable_reason(agreement))
    idle = sorted(r for r, n in (analysed_readers or {}).items() if n == 0 and r not in agreement.raters)
    groups = S.groups_in_order(agreement.groups)
    rows: list[tuple[str, RaterAgreement | GroupAgreement]] = [*raters, *((f"{g} (pooled)", v) for g, v in groups)]
    main = Table("tab-accuracy", "Grading accuracy and agreement with the reference, per rater and reader group",
                 ["Rater", "Kind / group", f"{graded_unit(agreement)} (readings)", "Accuracy", "Kappa",
                  "Linear kappa", "Quadratic kappa", "Macro F1"])
    main.note(unit_note(agreement))
    for rid, r in rows:
        n = (f"{fmt_int(r.n_cases)} ({plural(r.n_readings, 'reading')})" if isinstance(r, GroupAgreement)
             else fmt_int(r.n_cases))
        main.add([rid, _kind(r), n, main.ci(r.accuracy), main.ci(r.kappa),
                  main.ci(r.kappa_linear), main.ci(r.kappa_quadratic), main.ci(r.macro_f1)])
        if isinstance(r, GroupAgreement):
            averaged = reader_average_row(r)
            if averaged is not None:
                main.add([rid.replace("(pooled)", "(reader average)"), "group", plural(len(r.readers), "reader"),
                          *averaged])
    main.note("Group rows: 'pooled' treats every reading of the group's readers as one sample (cases counted once, "
              "readings in brackets); 'reader average' is the mean of the readers' own estimates (no interval), "
              "shown when it differs from the pooled value.")
    for rid in idle:
        main.add([rid, "reader", "0", *(["n/a"] * 5)])
    if idle:
        main.note(f"n/a (not estimable): {'reader' if len(idle) == 1 else 'readers'} {', '.join(idle)} had no "
                  "analysable reading (unaided and assessable) of an included case.")
    for g, v in groups:
        parts = [f"{k.replace('_', ' ')} {fmt(x.min)}-{fmt(x.max)} (median {fmt(x.median)})"
                 for k, x in v.spread.items()]
        main.note(f"Range over the {g} readers: " + "; ".join(parts) + ".")
    per = Table("tab-per-grade", "Per-grade sensitivity, specificity, predictive values and F1 (one grade against the others)",
                ["Rater", "Grade", "Sensitivity", "Specificity", "PPV", "NPV", "F1"])
    per.note(unit_note(agreement))
    for rid, r in rows:
        for lv in agreement.levels:
            pg = r.per_grade[lv]
            per.add([rid, lv, per.ci(pg.sensitivity), per.ci(pg.specificity), per.ci(pg.ppv), per.ci(pg.npv),
                     per.ci(pg.f1)])
    err = Table("tab-errors", "Direction of grading errors: down-grade (less severe than the reference), up-grade, "
                              "and errors crossing more than one grade", ["Rater", "Errors", "Down-grade", "Up-grade", "Cross-grade (> 1 level)"])
    for rid, r in rows:
        e = r.errors
        err.add([rid, fmt_int(e.n_errors), _error_cell(err, e.downgrade), _error_cell(err, e.upgrade),
                 _error_cell(err, e.cross_grade)])
    err.note(unit_note(agreement))
    err.note("Count of errors: share of the rater's errors (CI). Cross-grade: the rater's grade is two or more levels "
             "from the reference.")
    return {"available": True, "table": main.to_dict(), "per_grade": per.to_dict() if per.rows else None,
            "errors": err.to_dict() if err.rows else None, "figures": [f for f in ("sens_spec",) if f in figures],
            "sens_spec_missing": None if "sens_spec" in figures else (
                "The figure of per-grade sensitivity against specificity is not drawn: no grade has both an "
                "estimable sensitivity and an estimable specificity for any rater (not estimable when the "
                "reference holds a single grade, or a grade with no case or every case).")}


def subgroups_context(agreement: AgreementResult | None, figures: Mapping[str, str], *,
                      prespecified: Sequence[str]) -> dict[str, Any]:
    """Accuracy and quadratic kappa per subgroup value and rater.

    ``prespecified``: the subgroup columns the protocol names (``subgroups``).
    """
    rows = S.subgroup_rows(agreement) if agreement is not None else {}
    if not rows:
        why = ("the protocol names no subgroup columns" if not prespecified
               else "results.json holds no subgroup results (the subgroup columns may be absent from the manifest)")
        return unavailable(f"Not assessed: {why}.")
    tables = []
    for col, rs in rows.items():
        unit = graded_unit(agreement) if agreement is not None else "Images"
        t = Table(f"tab-sub-{col}", f"Grading accuracy and quadratic kappa by {col}",
                  ["Value", "Rater", unit, "Accuracy", "Quadratic kappa"])
        for r in rs:
            t.add([r.value, r.rater, fmt_int(r.n), t.ci(r.accuracy), t.ci(r.kappa)])
        small = sorted({r.value for r in rs if r.n < 20})
        if small:
            t.note(f"Fewer than 20 {unit.lower()} in: {', '.join(small)}; interpret with caution.")
        forest = figure_id("forest", col)
        tables.append({"column": col, "table": t.to_dict(), "figure": forest if forest in figures else None})
    pre = ", ".join(prespecified)
    return {"available": True, "subgroups": tables,
            "prespecified": (f"Subgroup columns pre-specified in the protocol: {pre}. The analyses are descriptive, "
                             "without adjustment for multiplicity.") if pre else
                            "The subgroup analyses were not pre-specified (exploratory)."}
