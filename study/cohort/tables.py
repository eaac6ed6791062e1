"""CSV tables of the cohort: reading, numeric and grade cells, case ids, count columns.

Shared by the manifest, the reference table and the readings (:mod:`study.readings`).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from study.errors import Problem

_NAN_WORDS = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "-infinity", "+infinity"}


def read_csv_table(path: str | os.PathLike, *, required: Iterable[str]) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Read a UTF-8, comma-separated table with one header row, all cells as stripped strings.

    Problems reported (all of them): missing or empty file, non-UTF-8 bytes (with the line),
    a header that looks separated by ``;``, tab or ``|`` instead of commas, duplicate or
    empty column names, missing required columns, rows whose field count differs from the
    header's. Blank lines are ignored.

    Returns
    -------
    (DataFrame | None, list[Problem])
        The table (strings; an extra ``_row`` column holds each row's line number) or
        ``None`` when it cannot be read at all.
    """
    path = Path(path)
    f = str(path)
    required = list(required)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, [Problem(f, "", "file not found")]
    except IsADirectoryError:
        return None, [Problem(f, "", "is a folder; expected a CSV file")]
    if not raw.strip():
        return None, [Problem(f, "", f"empty file; expected a header row with columns {required}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        return None, [Problem(f, f"line {line}", f"not UTF-8 text: byte 0x{raw[e.start]:02x} at offset {e.start}; "
                              "expected a UTF-8 encoded CSV (re-save it as 'CSV UTF-8')")]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as e:
        return None, [Problem(f, "line 1", f"cannot read the header row: {e}")]
    header = [h.strip() for h in header]
    problems: list[Problem] = []
    if len(header) == 1 and len(required) > 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
            if sep in header[0]:
                return None, [Problem(f, "line 1 (header)", f"header {header[0]!r} looks separated by {name}; "
                                      f"expected comma-separated columns {required}")]
    seen: set[str] = set()
    for i, h in enumerate(header):
        if not h:
            problems.append(Problem(f, "line 1 (header)", f"column {i + 1} has no name; every column needs a name"))
        elif h in seen:
            problems.append(Problem(f, "line 1 (header)", f"duplicate column name {h!r}"))
        seen.add(h)
    missing = [c for c in required if c not in header]
    if missing:
        problems.append(Problem(f, "line 1 (header)", f"missing column(s) {missing}; found {header}, "
                                f"expected at least {required}"))
    rows, lines = [], []
    try:
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                problems.append(Problem(f, f"row {reader.line_num}", f"has {len(row)} fields, the header has "
                                        f"{len(header)}; check for an unquoted comma or a missing cell"))
                continue
            rows.append([c.strip() for c in row])
            lines.append(reader.line_num)
    except csv.Error as e:
        problems.append(Problem(f, f"row {reader.line_num}", f"malformed CSV: {e}"))
    if missing or any(p.where.startswith("line 1") for p in problems):
        return None, problems
    df = pd.DataFrame(rows, columns=header, dtype=object) if rows else pd.DataFrame(columns=header, dtype=object)
    df["_row"] = lines
    return df, problems


def parse_number(value: str, *, file: str, where: str, column: str, integer: bool = False,
                 minimum: float | None = None, maximum: float | None = None) -> tuple[float | None, Problem | None]:
    """Parse one numeric cell; NaN / infinity / text / out-of-range give a :class:`Problem`."""
    v = str(value).strip()
    expected = "an integer" if integer else "a number"
    if minimum is not None and maximum is not None:
        expected += f" in [{minimum:g}, {maximum:g}]"
    elif minimum is not None:
        expected += f" >= {minimum:g}"
    if v.lower() in _NAN_WORDS:
        return None, Problem(file, where, f"{column} = {v!r}: NaN or infinity where a number is required; "
                             f"expected {expected}")
    try:
        x = float(v)
    except ValueError:
        return None, Problem(file, where, f"{column} = {v!r} is not a number; expected {expected}")
    if integer and x != int(x):
        return None, Problem(file, where, f"{column} = {v!r} is not a whole number; expected {expected}")
    if (minimum is not None and x < minimum) or (maximum is not None and x > maximum):
        return None, Problem(file, where, f"{column} = {v!r} is out of range; expected {expected}")
    return x, None


def map_grade(value: str, *, levels: list[str], aliases: Mapping[str, str] | None,
              file: str, where: str) -> tuple[str | None, Problem | None]:
    """Map a grade cell onto a protocol level (accepting ``letter_aliases``)."""
    v = str(value).strip()
    if v in levels:
        return v, None
    if aliases and v in aliases:
        return aliases[v], None
    accepted = list(levels) + [a for a in (aliases or {}) if a not in levels]
    if not v:
        return None, Problem(file, where, f"grade is empty; expected one of {accepted}")
    return None, Problem(file, where, f"grade {v!r} is not one of the protocol's levels; expected one of {accepted}")


# ============================================================================ reference
def _known_cases(cases: Any) -> set[str] | None:
    if cases is None:
        return None
    if isinstance(cases, pd.DataFrame):
        return set(cases["case_id"].astype(str))
    return {str(c) for c in cases}


def count_columns(columns: Iterable[str], *, classes: list[str] | None, file: str) -> tuple[list[str], list[Problem]]:
    """The ``count_<class>`` columns of a table; unknown classes are problems."""
    cols = [c for c in columns if c.startswith("count_")]
    problems = []
    if classes is not None:
        for c in cols:
            if c[len("count_"):] not in classes:
                problems.append(Problem(file, "line 1 (header)", f"column {c!r} counts an unknown class "
                                        f"{c[6:]!r}; expected count_<class> for a class in {classes}"))
    return cols, problems


def check_case_id(case_id: str, line: int, seen: dict[str, int], *, file: str, empty: str,
                  expected: str) -> Problem | None:
    """Check one row's ``case_id``: not empty and not seen before; record it in ``seen``.

    Parameters
    ----------
    case_id : the row's stripped ``case_id`` cell.
    line : the row's line number in ``file``.
    seen : case_id -> line of its first row; updated in place when ``case_id`` is new.
    empty : the message for an empty case_id.
    expected : what the table expects, appended to the duplicate message.

    Returns
    -------
    Problem or None
    """
    row = f"row {line}"
    if not case_id:
        return Problem(file, row, empty)
    if case_id in seen:
        return Problem(file, row, f"duplicate case_id {case_id!r} (first at row {seen[case_id]}); {expected}")
    seen[case_id] = line
    return None
