"""The fully crossed design of an MRMC ratings table: checks and the ``ratings[t, r, c]`` array."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from study.errors import Problem, StudyError
from study.metrics.mrmc.input import MAX_LISTED, REQUIRED_COLUMNS
from study.results.mrmc import MRMCDesign

__all__ = ["Design", "build_design"]


class Design:
    """A validated fully crossed design as arrays: ``ratings[t, r, c]``, ``truth[c]``."""

    def __init__(self, modalities: list[str], readers: list[str], cases: list[str], truth: np.ndarray,
                 ratings: np.ndarray) -> None:
        self.modalities = modalities
        self.readers = readers
        self.cases = cases
        self.truth = truth
        self.ratings = ratings

    @property
    def t(self) -> int:
        return len(self.modalities)

    @property
    def r(self) -> int:
        return len(self.readers)

    @property
    def c(self) -> int:
        return len(self.cases)

    def subset_readers(self, keep: Sequence[str]) -> Design:
        idx = [self.readers.index(k) for k in keep]
        return Design(self.modalities, list(keep), self.cases, self.truth, self.ratings[:, idx, :])

    def to_model(self, *, ai_reader: str | None, compared: Design) -> MRMCDesign:
        """The design as reported; ``compared``: the design of the modality comparison (readers other than the AI)."""
        return MRMCDesign(
            n_modalities=self.t, modalities=list(self.modalities), n_readers=self.r, readers=list(self.readers),
            n_cases=self.c, n_cases_negative=int((self.truth == 0).sum()),
            n_cases_positive=int((self.truth == 1).sum()),
            crossing="fully crossed (every reader rated every case in every modality)",
            ai_reader=ai_reader, readers_in_modality_comparison=list(compared.readers))


def parse_ratings(ratings: pd.DataFrame, *, source: str) -> tuple[pd.DataFrame, list[Problem]]:
    """The ratings table's columns, ids as text, and the problems of its ``truth`` and ``rating`` values.

    Raises a StudyError when a required column is missing. When no problem is returned,
    ``truth`` is 0/1 (int) and ``rating`` a finite float in the returned frame.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in ratings.columns]
    if missing:
        raise StudyError(f"missing column(s) {missing}; expected {list(REQUIRED_COLUMNS)}", file=source)
    df = ratings[list(REQUIRED_COLUMNS)].copy()
    for c in ("modality", "reader_id", "case_id"):
        df[c] = df[c].astype(str)
    problems: list[Problem] = []
    truth = pd.to_numeric(df["truth"], errors="coerce")
    rating = pd.to_numeric(df["rating"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if not truth.isin([0, 1]).all():
        bad = sorted(set(df.loc[~truth.isin([0, 1]), "truth"].astype(str)))[:10]
        problems.append(Problem(source, "truth", f"values {bad}; expected 0 or 1"))
    if not np.isfinite(rating).all():
        problems.append(Problem(source, "rating", f"{int((~np.isfinite(rating)).sum())} missing or non-finite "
                                                  "rating(s); expected finite numbers"))
    if not problems:
        df["truth"], df["rating"] = truth.astype(int), rating
    return df, problems


def build_design(ratings: pd.DataFrame, *, source: str = "ratings") -> Design:
    """Check the item-5 design rules and return the crossed arrays (all problems at once)."""
    df, problems = parse_ratings(ratings, source=source)
    dups = df.duplicated(["modality", "reader_id", "case_id"])
    if dups.any():
        problems.append(Problem(source, "", f"{int(dups.sum())} duplicate (modality, reader_id, case_id) row(s); "
                                            "expected one rating per reader per case per modality"))
    if problems:
        raise StudyError(problems)
    per_case = df.groupby("case_id", sort=False)["truth"].nunique()
    for case in per_case.index[per_case > 1][:MAX_LISTED]:
        problems.append(Problem(source, f"case_id {case!r}", "truth is not constant across rows; expected one truth per case"))
    modalities = list(pd.unique(df["modality"]))
    readers = list(pd.unique(df["reader_id"]))
    cases = list(pd.unique(df["case_id"]))
    if len(readers) < 2:
        problems.append(Problem(source, "reader_id", f"{len(readers)} reader(s) ({readers}); an MRMC analysis needs at least two"))
    case_truth = df.drop_duplicates("case_id").set_index("case_id")["truth"]
    n_pos, n_neg = int((case_truth == 1).sum()), int((case_truth == 0).sum())
    if n_pos < 2 or n_neg < 2:
        problems.append(Problem(source, "truth", f"{n_neg} case(s) with truth 0 and {n_pos} with truth 1; "
                                                 "expected at least two cases of each truth"))
    # fully crossed: every (modality, reader) pair rated every case
    counts = df.groupby(["modality", "reader_id"], sort=False)["case_id"].nunique()
    incomplete = []
    for m in modalities:
        for rd in readers:
            n = int(counts.get((m, rd), 0))
            if n != len(cases):
                incomplete.append((m, rd, n))
    if incomplete:
        for m, rd, n in incomplete[:MAX_LISTED]:
            got = set(df.loc[(df["modality"] == m) & (df["reader_id"] == rd), "case_id"])
            lacking = [k for k in cases if k not in got]
            problems.append(Problem(source, f"modality {m!r}, reader {rd!r}",
                                    f"rated {n} of {len(cases)} cases (missing e.g. {lacking[:5]}); the analysis "
                                    "needs a fully crossed design (every reader rates every case in every modality)"))
        if len(incomplete) > MAX_LISTED:
            problems.append(Problem(source, "", f"... and {len(incomplete) - MAX_LISTED} more incomplete reader-modality pairs"))
        problems.append(Problem(source, "design", "split-plot and partially crossed designs are not supported; "
                                                  "restrict the data to a fully crossed block (e.g. with "
                                                  "study.metrics.mrmc.ratings_from_grades) or add the missing ratings"))
    if problems:
        raise StudyError(problems)
    pivot = df.pivot(index=["modality", "reader_id"], columns="case_id", values="rating")
    arr = np.empty((len(modalities), len(readers), len(cases)))
    for i, m in enumerate(modalities):
        for j, rd in enumerate(readers):
            arr[i, j] = pivot.loc[(m, rd), cases].to_numpy(dtype=float)
    return Design(modalities, readers, cases, case_truth.loc[cases].to_numpy(dtype=int), arr)
