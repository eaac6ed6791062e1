"""The readers file of a reader study: who reads, in which group, with what experience."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from study.cohort import parse_number, read_csv_table
from study.errors import Problem, raise_if

REQUIRED = ["reader_id", "reader_group"]
_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


@dataclass(frozen=True)
class Reader:
    """One reader: id, group, optional experience and specialty, any further columns as ``extra``."""

    reader_id: str
    reader_group: str
    years_of_experience: float | None = None
    specialty: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def load_roster(path: str | os.PathLike, *, groups: list[str]) -> list[Reader]:
    """Load and validate a readers CSV.

    Parameters
    ----------
    path : CSV with ``reader_id``, ``reader_group`` [, ``years_of_experience``, ``specialty``, ...].
    groups : the reader groups the protocol allows (``reader_study.reader_groups``).

    Returns
    -------
    list of Reader, in file order.

    Raises
    ------
    StudyError
        Listing every problem: duplicate or malformed reader ids, unknown groups, experience
        that is not a number >= 0, an empty file.
    """
    f = str(path)
    df, problems = read_csv_table(path, required=REQUIRED)
    raise_if(problems)
    assert df is not None
    seen: dict[str, int] = {}
    readers: list[Reader] = []
    known = {"reader_id", "reader_group", "years_of_experience", "specialty", "_row"}
    for rec in df.to_dict("records"):
        row = f"row {rec['_row']}"
        rid, grp = rec["reader_id"], rec["reader_group"]
        if not rid or not set(rid) <= _ID_CHARS:
            problems.append(Problem(f, row, f"reader_id {rid!r}: expected a non-empty id of letters, digits, '_', "
                                    "'.' or '-'"))
        elif rid in seen:
            problems.append(Problem(f, row, f"reader_id {rid!r} is listed twice (rows {seen[rid]} and {rec['_row']}); "
                                    "expected one row per reader"))
        else:
            seen[rid] = rec["_row"]
        if grp not in groups:
            problems.append(Problem(f, row, f"reader_group {grp!r} of reader {rid!r} is not one of the protocol's "
                                    f"reader groups {groups} (reader_study.reader_groups)"))
        years = None
        if rec.get("years_of_experience", "") != "":
            years, p = parse_number(rec["years_of_experience"], file=f, where=row, column="years_of_experience",
                                    minimum=0)
            if p:
                problems.append(p)
        readers.append(Reader(rid, grp, years, rec.get("specialty", ""),
                              {k: v for k, v in rec.items() if k not in known}))
    if not readers:
        problems.append(Problem(f, "", "no readers: expected at least one row"))
    raise_if(problems)
    return readers
