"""Readers' readings: loading and validation.

A readings CSV has one row per (reader, case): ``reader_id``, ``case_id``, ``grade``
[, ``reader_group``, ``count_<class>``]. Partially crossed designs (readers reading
different subsets of cases) are legal; a reader reading one case twice is an error, as is
a reader listed under two groups. Grades may be given as the protocol's ``letter_aliases``
(e.g. ACNE04's A-D) and are mapped onto its levels.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import pandas as pd

from study.cohort import _known_cases, count_columns, map_grade, parse_number, read_csv_table
from study.errors import Problem, raise_if

REQUIRED = ["reader_id", "case_id", "grade"]


def validate_readings(path: str | os.PathLike, *, levels: list[str], aliases: Mapping[str, str] | None = None,
                      cases: Any = None, classes: list[str] | None = None) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Validate a readings CSV; return ``(table or None, every problem found)``."""
    f = str(path)
    df, problems = read_csv_table(path, required=REQUIRED)
    if df is None:
        return None, problems
    known = _known_cases(cases)
    counts, p = count_columns(df.columns, classes=classes, file=f)
    problems += p
    has_group = "reader_group" in df.columns
    first: dict[tuple[str, str], int] = {}
    group_of: dict[str, tuple[str, int]] = {}
    grades, cnt_vals = [], {c: [] for c in counts}
    for rec in df.to_dict("records"):
        row = f"row {rec['_row']}"
        rid, cid = rec["reader_id"], rec["case_id"]
        if not rid:
            problems.append(Problem(f, row, "reader_id is empty; every reading needs its reader"))
        if not cid:
            problems.append(Problem(f, row, "case_id is empty"))
        elif known is not None and cid not in known:
            problems.append(Problem(f, row, f"reading of unknown case {cid!r} by reader {rid!r}; expected a "
                                    "case_id of the manifest"))
        if rid and cid:
            key = (rid, cid)
            if key in first:
                problems.append(Problem(f, row, f"reader {rid!r} has two readings of case {cid!r} (rows {first[key]} "
                                        f"and {rec['_row']}); expected at most one reading per reader and case"))
            else:
                first[key] = rec["_row"]
        if has_group and rid:
            g = rec["reader_group"]
            if rid in group_of and group_of[rid][0] != g:
                problems.append(Problem(f, row, f"reader {rid!r} is in group {g!r} here but in group "
                                        f"{group_of[rid][0]!r} at row {group_of[rid][1]}; expected one group per reader"))
            group_of.setdefault(rid, (g, rec["_row"]))
        grade, p = map_grade(rec["grade"], levels=levels, aliases=aliases, file=f,
                             where=f"{row}, reader {rid!r}, case {cid!r}")
        grades.append(grade)
        if p:
            problems.append(p)
        for c in counts:
            if rec[c] == "":
                cnt_vals[c].append(None)
                continue
            v, p = parse_number(rec[c], file=f, where=row, column=c, integer=True, minimum=0)
            cnt_vals[c].append(v)
            if p:
                problems.append(p)
    if problems:
        return None, problems
    out = pd.DataFrame({
        "reader_id": df["reader_id"].astype(str),
        "reader_group": df["reader_group"].astype(str) if has_group else pd.Series([""] * len(df), dtype=str),
        "case_id": df["case_id"].astype(str),
        "grade": pd.Series(grades, dtype=object).astype(str),
    })
    for c in counts:
        out[c] = pd.array([None if v is None else int(v) for v in cnt_vals[c]], dtype="Int64")
    return out.reset_index(drop=True), []


def load_readings(path: str | os.PathLike, *, levels: list[str], aliases: Mapping[str, str] | None = None,
                  cases: Any = None, classes: list[str] | None = None) -> pd.DataFrame:
    """Load and validate readers' readings.

    Parameters
    ----------
    path : readings CSV (UTF-8, comma-separated).
    levels : protocol grade levels (least to most severe); ``aliases`` maps alternative labels.
    cases : manifest DataFrame or iterable of case ids; readings of other cases are errors.
    classes : protocol classes, to check ``count_<class>`` columns (None: not checked).

    Returns
    -------
    DataFrame
        ``reader_id``, ``reader_group`` ("" when the file has none), ``case_id``, ``grade``
        (a protocol level), ``count_<class>`` (nullable Int64) when given.

    Raises
    ------
    StudyError
        Listing every problem (unknown case, unknown grade, a reader reading a case twice,
        a reader in two groups, bad counts, unreadable CSV).
    """
    df, problems = validate_readings(path, levels=levels, aliases=aliases, cases=cases, classes=classes)
    raise_if(problems)
    return df  # type: ignore[return-value]
