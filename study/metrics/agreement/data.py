"""Validated inputs of the agreement analysis: level codes per case and per rater, patients.

:func:`prepare` checks the reference and the ratings against the protocol levels (every
problem listed in one :class:`study.errors.StudyError`) and returns a frozen
:class:`RatingData`; :func:`subset` restricts it to some cases (subgroups).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from study.errors import Problem, StudyError
from study.results.agreement import RaterKind

RATER_KINDS: tuple[RaterKind, ...] = ("model", "reader")


@dataclass(frozen=True)
class Rater:
    """One rater's readings: case positions (reference order, sorted) and their level codes."""

    id: str
    kind: RaterKind
    group: str | None
    cases: np.ndarray
    codes: np.ndarray
    n_missing: int


@dataclass(frozen=True)
class RatingData:
    """The reference (level code and patient position per case) and every rater's readings."""

    levels: list[str]
    case_ids: np.ndarray
    ref: np.ndarray
    patient: np.ndarray
    n_patients: int
    raters: dict[str, Rater]
    bootstrap_unit: str = "patients"

    def of_kind(self, kind: RaterKind) -> list[str]:
        """Rater ids of one kind (``model`` or ``reader``), in rater order."""
        return [r for r, v in self.raters.items() if v.kind == kind]

    def groups(self) -> dict[str, list[str]]:
        """Reader group -> its readers (in rater order); ungrouped readers are left out."""
        out: dict[str, list[str]] = {}
        for r in self.of_kind("reader"):
            g = self.raters[r].group
            if g is not None:
                out.setdefault(g, []).append(r)
        return out

    def reading_matrix(self, readers: list[str]) -> np.ndarray:
        """Cases x readers matrix of level codes, -1 where not read."""
        m = np.full((len(self.case_ids), len(readers)), -1, dtype=np.int64)
        for j, r in enumerate(readers):
            m[self.raters[r].cases, j] = self.raters[r].codes
        return m


def is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
def _codes(values: Sequence[Any], levels: list[str], source: str, rows: Sequence[int], *,
           allow_missing: bool, problems: list[Problem]) -> np.ndarray:
    """Level codes (0..K-1) of grade values; -1 for missing; every invalid value is a problem."""
    s = pd.Series(list(values), dtype=object)
    missing = s.map(is_missing).to_numpy(dtype=bool)
    lut = {lv: j for j, lv in enumerate(levels)}
    mapped = s[~missing].astype(str).str.strip().map(lut)
    out = np.full(len(s), -1, dtype=np.int64)
    ok = mapped.notna().to_numpy()
    out[np.flatnonzero(~missing)[ok]] = mapped[ok].to_numpy(dtype=np.int64)
    bad_pos = np.flatnonzero(~missing)[~ok]
    msgs = []
    if not allow_missing:
        msgs += [(int(pos), "grade is missing") for pos in np.flatnonzero(missing)]
    msgs += [(int(pos), f"grade {s.iloc[pos]!r} is not one of the protocol levels {levels}") for pos in bad_pos[:20]]
    msgs.sort()
    for pos, msg in msgs[:20]:
        problems.append(Problem(source, f"row {rows[pos]} (grade)", msg))
    n_bad = len(bad_pos) + (0 if allow_missing else int(missing.sum()))
    if n_bad > 20:
        problems.append(Problem(source, "grade", f"... and {n_bad - 20} more invalid grades"))
    return out


def _patients(case_ids: np.ndarray, unique_ids: pd.Index, patient_of: Mapping[Any, Any] | pd.Series | None,
              problems: list[Problem]) -> tuple[np.ndarray, int, str]:
    """Patient position per case, the number of patients, and the bootstrap's resampling unit."""
    if patient_of is None:
        return np.arange(len(case_ids)), len(case_ids), "cases (one patient per case)"
    pser = patient_of if isinstance(patient_of, pd.Series) else pd.Series(dict(patient_of), dtype=object)
    if not pser.index.is_unique:
        raise StudyError(Problem("patient_of", "", "case ids must be unique"))
    pvals = pser.reindex(unique_ids)
    missing = [c for c, v in zip(pvals.index, pvals.tolist()) if is_missing(v)]
    if missing:
        problems.append(Problem("patient_of", "case_id",
                                f"{len(missing)} reference case(s) have no patient_id, e.g. {missing[:5]}"))
    codes, uniq = pd.factorize(pd.Series(pvals.to_numpy(), dtype=object))
    return np.asarray(codes), len(uniq), "patients"


def _raters(r: pd.DataFrame, case_pos: np.ndarray, levels: list[str], problems: list[Problem]) -> dict[str, Rater]:
    """Every rater's readings, with each problem of the ratings table listed."""
    rows = range(1, len(r) + 1)
    kind = r["rater_kind"].astype(object) if "rater_kind" in r.columns else pd.Series(["reader"] * len(r), dtype=object)
    group = r["reader_group"].astype(object) if "reader_group" in r.columns else pd.Series([None] * len(r), dtype=object)
    rid = r["rater_id"].astype(object)
    for pos in np.flatnonzero(rid.map(is_missing).to_numpy())[:20]:
        problems.append(Problem("ratings", f"row {pos + 1} (rater_id)", "rater_id is missing"))
    bad_kind = ~kind.isin(RATER_KINDS)
    for pos in np.flatnonzero(bad_kind.to_numpy())[:20]:
        problems.append(Problem("ratings", f"row {pos + 1} (rater_kind)",
                                f"rater_kind {kind.iloc[pos]!r} is not one of {list(RATER_KINDS)}"))
    codes = _codes(r["grade"].tolist(), levels, "ratings", rows, allow_missing=True, problems=problems)
    unknown = np.flatnonzero(case_pos < 0)
    if len(unknown):
        problems.append(Problem("ratings", f"row {unknown[0] + 1} (case_id)",
                                f"{len(unknown)} rating(s) of case(s) not in the reference, e.g. "
                                f"{r['case_id'].iloc[unknown[:5]].tolist()}"))
    d = r.assign(_rid=rid.astype(str), _case=r["case_id"])
    dups = d.duplicated(subset=["_rid", "_case"], keep="first")
    for pos in np.flatnonzero(dups.to_numpy())[:20]:
        problems.append(Problem("ratings", f"row {pos + 1}",
                                f"rater {rid.iloc[pos]!r} rated case {r['case_id'].iloc[pos]!r} more than once"))
    raters: dict[str, Rater] = {}
    for rater, idx in d.groupby("_rid", sort=True).indices.items():
        kinds = set(kind.iloc[idx].unique())
        groups = {g for g in group.iloc[idx].unique() if not is_missing(g) and str(g).strip() != ""}
        if len(kinds) > 1:
            problems.append(Problem("ratings", f"rater {rater!r}", f"more than one rater_kind: {sorted(map(str, kinds))}"))
        k = next(iter(kinds))
        if len(groups) > 1:
            problems.append(Problem("ratings", f"rater {rater!r}", f"more than one reader_group: {sorted(map(str, groups))}"))
        if k == "model" and groups:
            problems.append(Problem("ratings", f"rater {rater!r}",
                                    f"a model has no reader_group, got {sorted(map(str, groups))}"))
        if problems:
            continue
        ok = codes[idx] >= 0
        cp = case_pos[idx][ok]
        order = np.argsort(cp, kind="stable")
        raters[rater] = Rater(rater, "model" if k == "model" else "reader", (str(next(iter(groups))) if groups else None),
                              cp[order], codes[idx][ok][order], int((~ok).sum()))
    return raters


def prepare(reference: pd.DataFrame, ratings: pd.DataFrame, *, levels: Sequence[str],
            patient_of: Mapping[Any, Any] | pd.Series | None) -> RatingData:
    """Check the reference and the ratings and code them as level indices.

    Parameters
    ----------
    reference : DataFrame
        ``case_id`` (unique), ``grade`` (a level; none missing).
    ratings : DataFrame
        ``rater_id``, ``case_id``, ``grade`` (a level, or missing), ``rater_kind``
        (``model`` | ``reader``; default reader), ``reader_group``.
    levels : sequence of str
        Protocol levels, least to most severe.
    patient_of : mapping case_id -> patient_id, optional
        ``None``: every case is its own patient.

    Raises
    ------
    StudyError
        Every problem found (missing columns, grades outside ``levels``, duplicates, ratings
        of unknown cases, inconsistent rater kinds or groups, cases without patient).
    """
    levels = [str(x) for x in levels]
    problems: list[Problem] = []
    if len(levels) < 2 or len(set(levels)) != len(levels):
        raise StudyError(Problem("levels", "", f"need at least two distinct ordered levels, got {levels}"))
    for name, df, cols in (("reference", reference, ["case_id", "grade"]),
                           ("ratings", ratings, ["rater_id", "case_id", "grade"])):
        miss = [c for c in cols if c not in df.columns]
        if miss:
            problems.append(Problem(name, ", ".join(miss), f"column(s) missing; need {cols}"))
    if problems:
        raise StudyError(problems)

    case_ids = reference["case_id"].to_numpy()
    dup = pd.Index(case_ids)[pd.Index(case_ids).duplicated()].unique()
    for cid in dup[:20]:
        problems.append(Problem("reference", f"case_id {cid!r}", "case appears more than once"))
    ref = _codes(reference["grade"].tolist(), levels, "reference", range(1, len(reference) + 1),
                 allow_missing=False, problems=problems)
    patient, n_patients, unit = _patients(case_ids, pd.Index(case_ids) if not len(dup) else pd.Index(case_ids).unique(),
                                          patient_of, problems)
    r = ratings.reset_index(drop=True)
    case_pos = pd.Index(case_ids).get_indexer(r["case_id"]) if not len(dup) else np.zeros(len(r), dtype=np.int64)
    raters = _raters(r, case_pos, levels, problems)
    if problems:
        raise StudyError(problems)
    return RatingData(levels, case_ids, ref, patient, n_patients, raters, bootstrap_unit=unit)


def subset(data: RatingData, mask: np.ndarray) -> RatingData:
    """The cases where ``mask`` is true (patients renumbered), with every rater's readings of them."""
    keep = np.flatnonzero(mask)
    new_pos = np.full(len(mask), -1, dtype=np.int64)
    new_pos[keep] = np.arange(len(keep))
    pcodes, puniq = pd.factorize(data.patient[keep])
    raters = {}
    for rid, r in data.raters.items():
        m = mask[r.cases]
        raters[rid] = Rater(rid, r.kind, r.group, new_pos[r.cases[m]], r.codes[m], r.n_missing)
    return RatingData(data.levels, data.case_ids[keep], data.ref[keep], np.asarray(pcodes), len(puniq), raters,
                      bootstrap_unit=data.bootstrap_unit)
