"""The reader x case design of an MRMC ratings table of any shape (fully crossed, split-plot, partially crossed).

:func:`build_ustat_design` turns the long ratings table into per-modality arrays
``rating[m, r, c]`` with a ``read[m, r, c]`` mask, checks what the U-statistic analysis needs
(every problem at once, as a :class:`~study.errors.StudyError` naming the modality and what is
missing) and summarises the design as a typed :class:`~study.results.mrmc.UStatDesign`
(reader x case matrices included, for the report's picture).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from study.errors import Problem, StudyError
from study.metrics.mrmc.design import parse_ratings
from study.results.mrmc import UStatDesign, UStatModalityDesign

__all__ = ["UStatDesignArrays", "build_ustat_design", "crossing_of", "design_summary", "patient_index"]


@dataclass(frozen=True)
class UStatDesignArrays:
    """Ratings ``rating[m, r, c]`` (0 where not read), ``read[m, r, c]`` and ``truth[c]``."""

    modalities: list[str]
    readers: list[str]
    cases: list[str]
    truth: np.ndarray
    rating: np.ndarray
    read: np.ndarray

    def modality(self, name: str) -> int:
        return self.modalities.index(name)


def crossing_of(read: np.ndarray) -> str:
    """``fully crossed``, ``split-plot`` or ``partially crossed`` for a ``read[r, c]`` mask of one modality.

    Split-plot: the readers fall into groups that read disjoint sets of cases, every reader of a
    group reading all of its cases (Obuchowski 2009); fully crossed is one such group.
    """
    readers = read[read.any(axis=1)]
    cases_read = read.any(axis=0)
    if readers.size == 0:
        return "empty"
    if readers[:, cases_read].all():
        return "fully crossed"
    patterns = {tuple(row) for row in readers.astype(bool)}
    rows = np.array(sorted(patterns), dtype=bool)
    if (rows.sum(axis=0) <= 1).all():  # each case in exactly one group's pattern
        return "split-plot"
    return "partially crossed"


def build_ustat_design(ratings: pd.DataFrame, *, source: str = "ratings", endpoint: str = "auc",
                       fixed_modalities: Sequence[str] = ()) -> UStatDesignArrays:
    """Arrays of a ratings table of any design, checked for what the analysis of ``endpoint`` needs.

    Parameters
    ----------
    ratings : DataFrame
        ``modality, reader_id, case_id, truth, rating`` (see :func:`study.metrics.mrmc.load_mrmc_ratings`).
    source : str
        The name of the ratings in error messages.
    endpoint : {"auc", "sensitivity", "specificity"}
        AUC needs, per modality, two readers who each read a diseased and a non-diseased case,
        and two cases of each truth; sensitivity (specificity) needs two readers and two
        diseased (non-diseased) cases.
    fixed_modalities : sequence of str
        Modalities allowed a single (fixed) reader, such as an algorithm read alone.

    Raises
    ------
    StudyError
        Naming each modality and what it lacks; duplicate readings; truth not constant per case.
    """
    df, problems = parse_ratings(ratings, source=source)
    if problems:
        raise StudyError(problems)
    dups = df.duplicated(["modality", "reader_id", "case_id"])
    if dups.any():
        first = df[dups].iloc[0]
        problems.append(Problem(source, "", f"{int(dups.sum())} duplicate (modality, reader_id, case_id) row(s), e.g. "
                                            f"({first['modality']!r}, {first['reader_id']!r}, {first['case_id']!r}); "
                                            "expected one rating per reader per case per modality"))
    per_case = df.groupby("case_id", sort=False)["truth"].nunique()
    for case in per_case.index[per_case > 1][:20]:
        problems.append(Problem(source, f"case_id {case!r}", "truth is not constant across rows; expected one truth per case"))
    if problems:
        raise StudyError(problems)
    modalities = list(pd.unique(df["modality"]))
    readers = list(pd.unique(df["reader_id"]))
    cases = list(pd.unique(df["case_id"]))
    truth = df.drop_duplicates("case_id").set_index("case_id")["truth"].loc[cases].to_numpy(dtype=int)
    mi = pd.Index(modalities).get_indexer(df["modality"])
    ri = pd.Index(readers).get_indexer(df["reader_id"])
    ci = pd.Index(cases).get_indexer(df["case_id"])
    rating = np.zeros((len(modalities), len(readers), len(cases)))
    read = np.zeros(rating.shape, dtype=bool)
    rating[mi, ri, ci] = df["rating"].to_numpy(dtype=float)
    read[mi, ri, ci] = True
    arrays = UStatDesignArrays(modalities, readers, cases, truth, rating, read)
    _check(arrays, source, endpoint, set(fixed_modalities))
    return arrays


def _check(a: UStatDesignArrays, source: str, endpoint: str, fixed: set[str]) -> None:
    problems: list[Problem] = []
    pos, neg = a.truth == 1, a.truth == 0
    for k, m in enumerate(a.modalities):
        read = a.read[k]
        n_pos, n_neg = int(read[:, pos].any(axis=0).sum()), int(read[:, neg].any(axis=0).sum())
        if endpoint == "auc":
            usable = [r for j, r in enumerate(a.readers) if read[j, pos].any() and read[j, neg].any()]
            need = "who each read at least one diseased (truth 1) and one non-diseased (truth 0) case"
        else:
            cases = pos if endpoint == "sensitivity" else neg
            usable = [r for j, r in enumerate(a.readers) if read[j, cases].any()]
            need = f"who read at least one {'diseased' if endpoint == 'sensitivity' else 'non-diseased'} case"
        if len(usable) < (1 if m in fixed else 2):
            problems.append(Problem(source, f"modality {m!r}", f"{len(usable)} reader(s) {usable} {need}; "
                                                               "the MRMC variance needs at least two readers per modality"))
        if endpoint in ("auc", "sensitivity") and n_pos < 2:
            problems.append(Problem(source, f"modality {m!r}", f"{n_pos} diseased case(s) (truth 1) read; "
                                                               "expected at least two"))
        if endpoint in ("auc", "specificity") and n_neg < 2:
            problems.append(Problem(source, f"modality {m!r}", f"{n_neg} non-diseased case(s) (truth 0) read; "
                                                               "expected at least two"))
    if problems:
        raise StudyError(problems)


def design_summary(a: UStatDesignArrays, *, n_patients: int | None = None) -> UStatDesign:
    """The design as reported: per modality the readers, cases and readings, and the reader x case matrix."""
    pos = a.truth == 1
    per_modality: dict[str, UStatModalityDesign] = {}
    for k, m in enumerate(a.modalities):
        read = a.read[k]
        rows = [j for j in range(len(a.readers)) if read[j].any()]
        per_modality[m] = UStatModalityDesign(
            n_readers=len(rows), n_cases=int(read.any(axis=0).sum()),
            n_cases_negative=int(read[:, ~pos].any(axis=0).sum()), n_cases_positive=int(read[:, pos].any(axis=0).sum()),
            n_readings=int(read.sum()), crossing=crossing_of(read),
            cases_read_by_reader={a.readers[j]: [int(read[j, ~pos].sum()), int(read[j, pos].sum())] for j in rows},
            matrix={a.readers[j]: "".join("1" if x else "0" for x in read[j]) for j in rows})
    both = a.read.any(axis=2)
    paired_readers = int(both.all(axis=0).sum()) if len(a.modalities) > 1 else len(a.readers)
    return UStatDesign(
        modalities=list(a.modalities), readers=list(a.readers), cases=list(a.cases),
        n_cases=len(a.cases), n_cases_negative=int((~pos).sum()), n_cases_positive=int(pos.sum()),
        n_readings=int(a.read.sum()), readers_in_every_modality=paired_readers,
        n_patients=n_patients, by_modality=per_modality, case_truth="".join("1" if x else "0" for x in pos))


def patient_index(ratings: pd.DataFrame, cases: list[str], *, column: str = "patient_id",
                  source: str = "ratings") -> tuple[np.ndarray, int] | None:
    """The patient of each case (index into the patients, and their number), or ``None`` without ``column``.

    Raises
    ------
    StudyError
        An empty patient id, or a case given two patients (line numbers of the first ones).
    """
    if column not in ratings.columns:
        return None
    df = ratings[["case_id", column]].astype(str)
    df[column] = df[column].str.strip()
    problems: list[Problem] = []
    empty = df.index[df[column].isin(["", "nan", "None"])]
    if len(empty):
        problems.append(Problem(source, f"column {column}", f"{len(empty)} empty value(s) (first at data row "
                                                            f"{int(empty[0]) + 1}); expected a patient id on every row"))
    per_case = df.groupby("case_id")[column].nunique()
    for case in per_case.index[per_case > 1][:20]:
        vals = sorted(set(df.loc[df["case_id"] == case, column]))
        problems.append(Problem(source, f"case_id {case!r}", f"{column} takes values {vals}; expected one patient per case"))
    if problems:
        raise StudyError(problems)
    patient_of = df.drop_duplicates("case_id").set_index("case_id")[column]
    patients = list(pd.unique(patient_of.loc[cases]))
    return pd.Index(patients).get_indexer(patient_of.loc[cases]).astype(int), len(patients)
