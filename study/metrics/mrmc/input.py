"""Reading and validating an MRMC ratings CSV (one row per modality, reader and case)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from study.errors import Problem, StudyError

__all__ = ["MAX_LISTED", "REQUIRED_COLUMNS", "load_mrmc_ratings"]

REQUIRED_COLUMNS = ("modality", "reader_id", "case_id", "truth", "rating")
MAX_LISTED = 20  # problems of one kind listed individually before summarising

def load_mrmc_ratings(path: str | Path) -> pd.DataFrame:
    """Read and validate an MRMC ratings CSV.

    Parameters
    ----------
    path : str or Path
        CSV with columns ``modality, reader_id, case_id, truth, rating`` (extra columns
        are kept). ``truth`` is 0/1 (1 = diseased / positive), constant per case;
        ``rating`` is a finite number, higher = more likely positive; one row per
        (modality, reader, case).

    Returns
    -------
    pandas.DataFrame
        ``modality``, ``reader_id``, ``case_id`` as strings, ``truth`` as int, ``rating``
        as float, plus any extra columns, in file order.

    Raises
    ------
    StudyError
        Listing every problem found (missing file or columns, empty values, truth not 0/1
        or not constant per case, non-numeric or non-finite ratings, duplicate rows),
        each with the file, CSV line and offending value.
    """
    path = Path(path)
    f = str(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError:
        raise StudyError("ratings file not found", file=f) from None
    except UnicodeDecodeError as e:
        raise StudyError(f"not UTF-8 text (byte {e.start})", file=f) from None
    except pd.errors.EmptyDataError:
        raise StudyError(f"the file is empty; expected a header row with {', '.join(REQUIRED_COLUMNS)}",
                         file=f) from None
    except pd.errors.ParserError as e:
        raise StudyError(f"not a readable CSV: {e}", file=f) from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise StudyError(f"missing column(s) {missing}; found {list(df.columns)}; expected "
                         f"{list(REQUIRED_COLUMNS)} (extra columns are allowed)", file=f, where="header")
    if df.empty:
        raise StudyError("no data rows", file=f)
    for c in ("modality", "reader_id", "case_id", "truth", "rating"):
        df[c] = df[c].str.strip()
    line = pd.Series(np.arange(len(df)) + 2, index=df.index)  # CSV line (header is line 1)
    problems: list[Problem] = []

    def add(kind_rows: pd.Index, make: Callable[..., Problem]) -> None:
        for n, i in enumerate(kind_rows):
            if n == MAX_LISTED:
                problems.append(Problem(f, "", f"... and {len(kind_rows) - MAX_LISTED} more row(s) with the same problem"))
                break
            problems.append(make(i))

    for c in ("modality", "reader_id", "case_id"):
        add(df.index[df[c] == ""], lambda i, c=c: Problem(f, f"line {line[i]}, column {c}", "empty value; expected an identifier"))
    truth_num = pd.to_numeric(df["truth"], errors="coerce")
    bad_truth = df.index[~truth_num.isin([0, 1])]
    add(bad_truth, lambda i: Problem(f, f"line {line[i]}, column truth", f"value {df.at[i, 'truth']!r}; expected 0 or 1"))
    rating = pd.to_numeric(df["rating"], errors="coerce")
    bad_rating = df.index[~np.isfinite(rating.to_numpy(dtype=float, na_value=np.nan))]
    add(bad_rating, lambda i: Problem(f, f"line {line[i]}, column rating",
                                      f"value {df.at[i, 'rating']!r}; expected a finite number (higher = more likely positive)"))
    key = ["modality", "reader_id", "case_id"]
    dup = df.index[df.duplicated(key, keep="first")]
    add(dup, lambda i: Problem(f, f"line {line[i]}", "duplicate row for (modality, reader_id, case_id) = "
                               f"({df.at[i, 'modality']!r}, {df.at[i, 'reader_id']!r}, {df.at[i, 'case_id']!r}); "
                               "expected one rating per reader per case per modality"))
    ok = truth_num.isin([0, 1])
    per_case = truth_num[ok].groupby(df.loc[ok, "case_id"]).nunique()
    for n, case in enumerate(per_case.index[per_case > 1]):
        if n == MAX_LISTED:
            problems.append(Problem(f, "", "... and more cases whose truth is not constant"))
            break
        rows = df.index[(df["case_id"] == case) & ok]
        vals = sorted(set(truth_num[rows].astype(int)))
        problems.append(Problem(f, f"case_id {case!r} (lines {', '.join(str(line[i]) for i in rows[:6])}"
                                   f"{', ...' if len(rows) > 6 else ''})",
                                f"truth takes values {vals}; expected one truth per case"))
    if problems:
        raise StudyError(problems)
    out = df.copy()
    out["truth"] = truth_num.astype(int)
    out["rating"] = rating.astype(float)
    return out.reset_index(drop=True)
