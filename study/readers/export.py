"""The reading database -> the study's readings format (CSV) and the lesion marks (JSON)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from study.errors import StudyError
from study.io import write_json, write_text
from study.readers import db

SESSION_ORDER = {"unaided": 0, "aided": 1}


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:g}"


def readings_table(database: str | os.PathLike) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Every submitted answer as a readings table, and every lesion mark.

    Returns
    -------
    (DataFrame, list of dict)
        Columns ``reader_id, reader_group, case_id, modality, grade, confidence,
        count_<class>`` (one per protocol class), ``seconds, assessable, comment``, as strings
        (empty = not given), sorted by reader, session (unaided first) and case; and marks
        ``{reader_id, case_id, modality, marks: [{x, y, class}]}`` (image pixels).
    """
    path = Path(database)
    if not path.exists():
        raise StudyError("reading database not found (create it with `study readers init`)", file=str(path))
    import sqlite3

    try:
        con = db.connect(path)
    except sqlite3.DatabaseError as e:
        raise StudyError(f"not a reading database made by `study readers init` ({e})", file=str(path)) from None
    try:
        meta = db.get_meta(con)
        rows = con.execute(
            "SELECT r.reader_id, r.reader_group, i.case_id, i.modality, a.* FROM answers a JOIN items i "
            "USING (item_id) JOIN readers r USING (reader_id)").fetchall()
        meta["classes"]
    except (sqlite3.DatabaseError, KeyError) as e:
        raise StudyError(f"not a reading database made by `study readers init` ({e})", file=str(path)) from None
    finally:
        con.close()
    classes = meta["classes"]
    records, marks = [], []
    import json

    for r in rows:
        counts = json.loads(r["counts"])
        rec = {"reader_id": r["reader_id"], "reader_group": r["reader_group"], "case_id": r["case_id"],
               "modality": r["modality"], "grade": r["grade"] or "", "confidence": _fmt(r["confidence"])}
        for c in classes:
            rec[f"count_{c}"] = "" if counts.get(c) is None else str(int(counts[c]))
        rec.update(seconds=_fmt(r["seconds"]), assessable="true" if r["assessable"] else "false",
                   comment=r["comment"])
        records.append(rec)
        m = json.loads(r["marks"])
        if m:
            marks.append({"reader_id": r["reader_id"], "case_id": r["case_id"], "modality": r["modality"],
                          "marks": m})
    cols = (["reader_id", "reader_group", "case_id", "modality", "grade", "confidence"]
            + [f"count_{c}" for c in classes] + ["seconds", "assessable", "comment"])
    df = pd.DataFrame.from_records(records, columns=cols)
    if len(df):
        df = df.assign(_s=df["modality"].map(SESSION_ORDER)).sort_values(["reader_id", "_s", "case_id"]) \
            .drop(columns="_s").reset_index(drop=True)
    marks.sort(key=lambda m: (m["reader_id"], SESSION_ORDER[m["modality"]], m["case_id"]))
    return df, marks


def export_readings(database: str | os.PathLike, *, out: str | os.PathLike,
                    marks_out: str | os.PathLike | None = None) -> int:
    """Write the readings CSV (and the marks JSON when ``marks_out``) atomically; return the row count."""
    df, marks = readings_table(database)
    write_text(out, df.to_csv(index=False, lineterminator="\n"))
    if marks_out is not None:
        write_json(marks_out, {"coordinates": "image pixels, origin top left", "readings": marks})
    return len(df)


def reader_characteristics(database: str | os.PathLike) -> pd.DataFrame:
    """``reader_id, reader_group, years_of_experience, specialty, certification, reading_conditions`` of
    every reader (for the report); the last two are optional columns of the readers file (kept in
    the database's ``extra``), "" when not given."""
    con = db.connect(Path(database))
    try:
        df = pd.read_sql_query("SELECT reader_id, reader_group, years_of_experience, specialty, extra FROM readers "
                               "ORDER BY reader_id", con)
    finally:
        con.close()
    extra = [json.loads(x) if x else {} for x in df.pop("extra")]
    for key in ("certification", "reading_conditions"):
        df[key] = [str(e.get(key) or "") for e in extra]
    return df
