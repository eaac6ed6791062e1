"""Readers' readings: loading and validation.

A readings CSV has one row per (reader, case[, modality]): ``reader_id``, ``case_id``,
``grade`` [, ``reader_group``, ``modality``, ``confidence``, ``seconds``, ``assessable``,
``count_<class>``]. Partially crossed designs (readers reading different subsets of cases)
are legal; a reader reading one case twice in one modality is an error, as is a reader
listed under two groups. Grades may be given as the protocol's ``letter_aliases`` (e.g.
ACNE04's A-D) and are mapped onto its levels.

Optional columns (the reading tool's export, ``study readers export``, writes them all):

- ``modality``: ``unaided`` or ``aided`` (empty = ``unaided``);
- ``confidence``: the reader's 0-100 rating (the MRMC rating scale);
- ``seconds``: time spent on the case (>= 0);
- ``assessable``: ``true``/``false`` (also ``1/0``, ``yes/no``; empty = true); a
  not-assessable reading may leave ``grade`` empty.

``readings`` may also name a reading database (``.sqlite`` / ``.db``, made by
``study readers init``): it is exported in the same format and validated the same way.

Which readings the agreement and per-model OR/DBM analyses use is
:func:`analysable_readings`: **unaided, assessable** readings only (the aided ones enter the
aided-versus-unaided comparison, ``study.metrics.mrmc.study_ustat``, which selects its own).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from study.cohort import (
    _known_cases,
    count_columns,
    map_grade,
    parse_number,
    read_csv_table,
)
from study.errors import Problem, raise_if

REQUIRED = ["reader_id", "case_id", "grade"]
MODALITIES = ("unaided", "aided")
DATABASE_SUFFIXES = (".sqlite", ".db")
_TRUE = {"", "true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


def is_reading_database(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a reading database (by its suffix) rather than a CSV."""
    return Path(path).suffix.lower() in DATABASE_SUFFIXES


def _parse_optional(rec: dict, *, f: str, row: str, problems: list[Problem], cols: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"modality": "unaided", "assessable": True, "confidence": None, "seconds": None}
    if "modality" in cols:
        m = rec["modality"].strip().lower()
        if m == "":
            m = "unaided"
        if m not in MODALITIES:
            problems.append(Problem(f, row, f"modality {rec['modality']!r} is not one of {list(MODALITIES)}"))
        out["modality"] = m
    if "assessable" in cols:
        a = rec["assessable"].strip().lower()
        if a in _TRUE:
            out["assessable"] = True
        elif a in _FALSE:
            out["assessable"] = False
        else:
            problems.append(Problem(f, row, f"assessable = {rec['assessable']!r}; expected true or false"))
    for col, lo, hi in (("confidence", 0.0, 100.0), ("seconds", 0.0, None)):
        if col in cols and rec[col] != "":
            v, p = parse_number(rec[col], file=f, where=row, column=col, minimum=lo, maximum=hi)
            out[col] = v
            if p:
                problems.append(p)
    return out


def validate_readings(path: str | os.PathLike, *, levels: list[str], aliases: Mapping[str, str] | None = None,
                      cases: Any = None, classes: list[str] | None = None) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Validate a readings CSV (or reading database); return ``(table or None, every problem found)``."""
    if is_reading_database(path):
        return _validate_database(path, levels=levels, aliases=aliases, cases=cases, classes=classes)
    f = str(path)
    df, problems = read_csv_table(path, required=REQUIRED)
    if df is None:
        return None, problems
    known = _known_cases(cases)
    counts, header_problems = count_columns(df.columns, classes=classes, file=f)
    problems += header_problems
    cols = set(df.columns)
    has_group = "reader_group" in cols
    first: dict[tuple[str, str, str], int] = {}
    group_of: dict[str, tuple[str, int]] = {}
    grades: list[str | None] = []
    extra: list[dict[str, Any]] = []
    cnt_vals: dict[str, list] = {c: [] for c in counts}
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
        opt = _parse_optional(rec, f=f, row=row, problems=problems, cols=cols)
        extra.append(opt)
        if rid and cid:
            key = (rid, cid, opt["modality"])
            if key in first:
                within = f" in the {opt['modality']} session" if "modality" in cols else ""
                problems.append(Problem(f, row, f"reader {rid!r} has two readings of case {cid!r} (rows {first[key]} "
                                        f"and {rec['_row']}){within}; expected at most one reading per reader and "
                                        "case in each session (modality)"))
            else:
                first[key] = rec["_row"]
        if has_group and rid:
            g = rec["reader_group"]
            if rid in group_of and group_of[rid][0] != g:
                problems.append(Problem(f, row, f"reader {rid!r} is in group {g!r} here but in group "
                                        f"{group_of[rid][0]!r} at row {group_of[rid][1]}; expected one group per reader"))
            group_of.setdefault(rid, (g, rec["_row"]))
        if not opt["assessable"] and str(rec["grade"]).strip() == "":
            grades.append(None)  # not assessable: no grade needed
        else:
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
        "grade": pd.Series(grades, dtype=object).astype(object),
        "modality": pd.Series([e["modality"] for e in extra], dtype=str),
        "assessable": pd.Series([e["assessable"] for e in extra], dtype=bool),
    })
    out["grade"] = out["grade"].where(out["grade"].notna(), None)
    for col in ("confidence", "seconds"):
        if col in cols:
            out[col] = pd.array([e[col] for e in extra], dtype="Float64")
    for c in counts:
        out[c] = pd.array([None if v is None else int(v) for v in cnt_vals[c]], dtype="Int64")
    return out.reset_index(drop=True), []


def _validate_database(path: str | os.PathLike, **kwargs: Any) -> tuple[pd.DataFrame | None, list[Problem]]:
    from study.errors import StudyError
    from study.readers.export import export_readings

    with tempfile.TemporaryDirectory(prefix="readings-") as tmp:
        csv = Path(tmp) / "readings.csv"
        try:
            export_readings(path, out=csv)
        except StudyError as e:
            return None, list(e.problems)
        df, problems = validate_readings(csv, **kwargs)
    # name the database, not the temporary export, in every problem
    return df, [Problem(str(path), p.where, p.message) for p in problems]


def load_readings(path: str | os.PathLike, *, levels: list[str], aliases: Mapping[str, str] | None = None,
                  cases: Any = None, classes: list[str] | None = None) -> pd.DataFrame:
    """Load and validate readers' readings.

    Parameters
    ----------
    path : readings CSV (UTF-8, comma-separated), or a reading database (``.sqlite``/``.db``).
    levels : protocol grade levels (least to most severe); ``aliases`` maps alternative labels.
    cases : manifest DataFrame or iterable of case ids; readings of other cases are errors.
    classes : protocol classes, to check ``count_<class>`` columns (None: not checked).

    Returns
    -------
    DataFrame
        ``reader_id``, ``reader_group`` ("" when the file has none), ``case_id``, ``grade``
        (a protocol level; None for a not-assessable reading without one), ``modality``
        (``unaided``/``aided``), ``assessable`` (bool), ``confidence`` and ``seconds``
        (nullable Float64) when given, ``count_<class>`` (nullable Int64) when given.

    Raises
    ------
    StudyError
        Listing every problem (unknown case, unknown grade, a reader reading a case twice in
        one modality, a reader in two groups, bad counts, confidence outside 0-100, unknown
        modality, unreadable CSV).
    """
    df, problems = validate_readings(path, levels=levels, aliases=aliases, cases=cases, classes=classes)
    raise_if(problems)
    return df  # type: ignore[return-value]


def analysable_readings(readings: pd.DataFrame) -> pd.DataFrame:
    """The readings the agreement and per-model OR/DBM analyses use: unaided and assessable ones.

    Aided readings (made with the model's output in view) are kept in ``readings.parquet``;
    mixing them with unaided readings in the agreement of readers with the reference, or
    in a model-versus-readers comparison, would credit the readers with the model's help.
    They enter the aided-versus-unaided comparison (``mrmc.ustat``) only. Not-assessable
    readings carry no grade. Tables without the ``modality``/``assessable`` columns (older
    ``readings.parquet``) are all unaided and assessable.
    """
    keep = pd.Series(True, index=readings.index)
    if "modality" in readings.columns:
        keep &= readings["modality"].fillna("unaided").astype(str).eq("unaided")
    if "assessable" in readings.columns:
        keep &= readings["assessable"].fillna(True).astype(bool)
    return readings[keep].reset_index(drop=True)
