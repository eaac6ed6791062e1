"""Grade fusion: several annotators' grades of a case -> the reference grade, and how it was settled.

The rules are the protocol's ``reference_standard.fusion`` (:class:`study.protocol.GradeFusion`):
``majority`` (most frequent grade; a tie to the more severe tied grade or to the adjudicator),
``consensus`` (all agree, else the adjudicator; without one a disagreement is an error) and
``adjudicator`` (all agree, else the adjudicator). Severity order is the protocol's
``grading.levels`` (mildest first). Panel rules as in the reference-standard items of STARD 2015
(item 10b) and CLAIM 2024 (items on annotation and adjudication).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from study.errors import Problem, StudyError
from study.protocol import GradeFusion

#: how a fused grade was settled
UNANIMOUS = "unanimous"
MAJORITY = "majority"
TIE_MORE_SEVERE = "tie: more severe grade"
TIE_ADJUDICATOR = "tie: adjudicator"
ADJUDICATOR = "adjudicator"
SETTLED_BY = (UNANIMOUS, MAJORITY, TIE_MORE_SEVERE, TIE_ADJUDICATOR, ADJUDICATOR)


@dataclass(frozen=True)
class FusedGrade:
    """The reference grade of one case: ``grade``, ``settled_by`` (one of :data:`SETTLED_BY`), the votes."""

    case_id: str
    grade: str
    settled_by: str
    votes: dict[str, str]


def fuse_grade(votes: Mapping[str, str], *, fusion: GradeFusion, levels: Sequence[str],
               case_id: str = "") -> FusedGrade:
    """Fuse one case's grades (annotator id -> grade) by ``fusion``.

    Raises
    ------
    StudyError
        ``consensus`` without an adjudicator on a case the annotators disagree on; a grade not
        in ``levels``; an adjudicator without a grade for the case.
    """
    rank = {g: i for i, g in enumerate(levels)}
    bad = {a: g for a, g in votes.items() if g not in rank}
    if bad or not votes:
        raise StudyError(f"case {case_id!r}: grades {bad or 'none'}; expected one of {list(levels)} from every "
                         "annotator", where=f"case {case_id}")
    tally = Counter(votes.values())
    if len(tally) == 1:
        return FusedGrade(case_id, next(iter(tally)), UNANIMOUS, dict(votes))

    def adjudicated(settled_by: str) -> FusedGrade:
        adj = fusion.adjudicator
        if adj is None:
            raise StudyError(f"case {case_id!r}: the annotators disagree ({dict(votes)}) and the protocol's "
                             f"reference_standard.fusion (rule {fusion.rule!r}) names no adjudicator; expected "
                             "'adjudicator: <annotator id>' or a consensus grade for the case",
                             where=f"case {case_id}")
        if adj not in votes:
            raise StudyError(f"case {case_id!r}: adjudicator {adj!r} gave no grade", where=f"case {case_id}")
        return FusedGrade(case_id, votes[adj], settled_by, dict(votes))

    if fusion.rule in ("consensus", "adjudicator"):
        return adjudicated(ADJUDICATOR)
    top = max(tally.values())
    tied = [g for g, n in tally.items() if n == top]
    if len(tied) == 1:
        return FusedGrade(case_id, tied[0], MAJORITY, dict(votes))
    if fusion.ties == "adjudicator":
        return adjudicated(TIE_ADJUDICATOR)
    return FusedGrade(case_id, max(tied, key=rank.__getitem__), TIE_MORE_SEVERE, dict(votes))


def fuse_grades(grades: Mapping[str, Mapping[str, str]], *, case_ids: Sequence[str], fusion: GradeFusion,
                levels: Sequence[str]) -> list[FusedGrade]:
    """Fuse every case: ``grades`` is annotator id -> (case id -> grade); every annotator grades every case.

    Raises
    ------
    StudyError
        Listing every case a rule cannot settle and every missing grade.
    """
    problems: list[Problem] = []
    out = []
    for cid in case_ids:
        votes = {a: g[cid] for a, g in grades.items() if cid in g}
        missing = [a for a in grades if cid not in grades[a]]
        if missing:
            problems.append(Problem("", f"case {cid}", f"no grade from annotator(s) {missing}; expected every "
                                    "annotator to grade every case"))
            continue
        try:
            out.append(fuse_grade(votes, fusion=fusion, levels=levels, case_id=cid))
        except StudyError as e:
            problems += e.problems
    if problems:
        raise StudyError(problems)
    return out
