"""The reference standard table: ``case_id``, ``grade`` [, ``count_<class>``]."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from study.cohort.tables import _known_cases, check_case_id, count_columns, map_grade, parse_number, read_csv_table
from study.errors import Problem, raise_if


def validate_reference(path: str | os.PathLike, *, levels: list[str], aliases: Mapping[str, str] | None = None,
                       cases: Any = None, classes: list[str] | None = None) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Validate a reference CSV (``case_id``, ``grade`` [, ``count_<class>``]); all problems at once."""
    f = str(path)
    df, problems = read_csv_table(path, required=["case_id", "grade"])
    if df is None:
        return None, problems
    known = _known_cases(cases)
    counts, header_problems = count_columns(df.columns, classes=classes, file=f)
    problems += header_problems
    seen: dict[str, int] = {}
    grades: list[str | None] = []
    cnt_vals: dict[str, list[float | None]] = {c: [] for c in counts}
    for rec in df.to_dict("records"):
        row = f"row {rec['_row']}"
        cid = rec["case_id"]
        bad_id = check_case_id(cid, rec["_row"], seen, file=f, empty="case_id is empty",
                               expected="expected one reference grade per case")
        if bad_id:
            problems.append(bad_id)
        if cid and known is not None and cid not in known:
            problems.append(Problem(f, row, f"reference for unknown case {cid!r}; expected a case_id of the manifest"))
        g, p = map_grade(rec["grade"], levels=levels, aliases=aliases, file=f, where=f"{row}, case {cid!r}")
        grades.append(g)
        if p:
            problems.append(p)
        for c in counts:
            v, p = parse_number(rec[c], file=f, where=row, column=c, integer=True, minimum=0)
            cnt_vals[c].append(v)
            if p:
                problems.append(p)
    if problems:
        return None, problems
    out = pd.DataFrame({"case_id": df["case_id"].astype(str), "grade": grades})
    for c in counts:
        out[c] = pd.array([int(v) for v in cnt_vals[c]], dtype="int64")
    return out, []


def load_reference(path: str | os.PathLike, *, levels: list[str], aliases: Mapping[str, str] | None = None,
                   cases: Any = None, classes: list[str] | None = None) -> pd.DataFrame:
    """Load the reference standard grades.

    Parameters
    ----------
    path : reference CSV: ``case_id``, ``grade`` [, ``count_<class>``].
    levels : the protocol's grade levels; ``aliases`` maps accepted alternative labels onto them.
    cases : manifest DataFrame (or iterable of case ids); reference rows for other cases are errors.
    classes : protocol classes; ``count_<x>`` for an unknown ``x`` is an error (None: not checked).

    Returns
    -------
    DataFrame
        ``case_id``, ``grade`` (a protocol level), ``count_<class>`` (int64) as given.
    """
    df, problems = validate_reference(path, levels=levels, aliases=aliases, cases=cases, classes=classes)
    raise_if(problems)
    return df  # type: ignore[return-value]
