"""Readers' (and a model's) grades -> binary MRMC ratings on the largest fully crossed block."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pandas as pd

from study.errors import Problem, StudyError
from study.results.mrmc import CasesExcluded, CrossedBlock, DroppedRater

__all__ = ["ratings_from_grades"]


def _crossed_block(read: pd.DataFrame, keep: Sequence[str], min_raters: int,
                   exact_limit: int = 16) -> tuple[list[str], str]:
    """Choose the raters whose common cases give the largest crossed block (raters x cases)."""
    raters = list(read.columns)
    M = read.to_numpy(dtype=bool)  # cases x raters
    keep_idx = [raters.index(k) for k in keep]
    others = [k for k in range(len(raters)) if k not in keep_idx]

    def score(sel: list[int]) -> tuple[int, int]:
        common = M[:, sel].all(axis=1).sum() if sel else M.shape[0]
        return len(sel) * int(common), int(common)

    best, best_key = None, None
    min_others = min(max(min_raters - len(keep_idx), 0), len(others))
    if len(others) <= exact_limit:
        for size in range(min_others, len(others) + 1):
            for comb in itertools.combinations(others, size):
                sel = sorted(keep_idx + list(comb))
                cells, common = score(sel)
                key = (cells, common, len(sel), [-s for s in sel])
                if best_key is None or key > best_key:
                    best, best_key = sel, key
        rule = "exhaustive search"
    else:  # greedy backward elimination: drop the rater whose removal gains most cells
        sel = sorted(keep_idx + others)
        while True:
            cur = score(sel)
            cands = [(score([s for s in sel if s != o]), o) for o in sel if o in others]
            cands = [(sc, o) for sc, o in cands if len([s for s in sel if s != o and s in others]) >= min_others]
            if not cands:
                break
            (sc, o) = max(cands, key=lambda x: (x[0], -x[1]))
            if sc <= cur:
                break
            sel = [s for s in sel if s != o]
        best = sel
        rule = "greedy backward elimination (more than 16 candidate raters)"
    assert best is not None  # the search always tries at least one selection
    return [raters[s] for s in best], rule


def ratings_from_grades(reference: pd.DataFrame, grades: pd.DataFrame, *, levels: Sequence[str], positive_from: str,
                        modality: str = "grading", keep: Sequence[str] = (), min_raters: int = 3,
                        source: str = "grades") -> tuple[pd.DataFrame, CrossedBlock]:
    """Build MRMC ratings for a binary endpoint from readers' (and a model's) grades.

    Parameters
    ----------
    reference : DataFrame[case_id, grade]
        The reference-standard grade of each case.
    grades : DataFrame[rater_id, case_id, grade] (optional ``score``)
        One row per rater per case read: human readers and the model alike. When a
        ``score`` column is present and not empty for a rater, it is used as the rating
        (a continuous output, e.g. the model's expected grade); otherwise the rating is
        the ordinal index of the grade in ``levels`` (0 = least severe).
    levels : list of str
        Grade labels from least to most severe.
    positive_from : str
        The endpoint: truth = 1 when the reference grade is ``positive_from`` or worse.
    modality : str
        The modality label of the single-modality table.
    keep : sequence of str
        Raters always kept in the crossed block (e.g. the model).
    min_raters : int
        Minimum number of raters in the block, ``keep`` included (default 3: an
        algorithm plus the two readers an AI-versus-readers analysis needs); fewer only
        when fewer raters exist.

    Returns
    -------
    (DataFrame, CrossedBlock)
        The ratings table (``modality, reader_id, case_id, truth, rating, grade``) of a
        fully crossed block, and a plain account: the endpoint, the rule, the raters kept
        and dropped (with the number of cases each read), the cases kept and excluded
        (no reference grade; not read by every kept rater), and the counts per truth.

    Notes
    -----
    Reader studies are often partially crossed (e.g. ACNE04: seven dermatologists each
    graded about half of the images). The block kept is the set of raters (always
    including ``keep``; at least ``min_raters`` in all) whose commonly read cases
    make the largest number of rater x case cells; ties go to more cases, then to more
    raters. With up to 16 candidate raters the search is exhaustive; beyond, a greedy
    backward elimination. A rater who read every case never shrinks the block, so a
    model that graded every case is always kept.
    """
    problems: list[Problem] = []
    for name, df, cols in (("reference", reference, ["case_id", "grade"]),
                           (source, grades, ["rater_id", "case_id", "grade"])):
        miss = [c for c in cols if c not in df.columns]
        if miss:
            problems.append(Problem(name, "columns", f"missing {miss}; expected {cols}"))
    if positive_from not in levels:
        problems.append(Problem("positive_from", "", f"{positive_from!r} is not one of the levels {list(levels)}"))
    if problems:
        raise StudyError(problems)
    rank = {lv: k for k, lv in enumerate(levels)}
    ref = reference[["case_id", "grade"]].copy()
    ref["case_id"] = ref["case_id"].astype(str)
    ref["grade"] = ref["grade"].astype(str)
    g = grades.copy()
    g["case_id"] = g["case_id"].astype(str)
    g["rater_id"] = g["rater_id"].astype(str)
    g["grade"] = g["grade"].astype(str)
    bad_ref = sorted(set(ref["grade"]) - set(levels))
    if bad_ref:
        problems.append(Problem("reference", "grade", f"values {bad_ref[:10]} are not levels {list(levels)}"))
    dref = ref["case_id"].duplicated()
    if dref.any():
        problems.append(Problem("reference", "case_id", f"duplicate case_id(s) {sorted(set(ref.loc[dref, 'case_id']))[:10]}"))
    has_score = "score" in g.columns
    if has_score:
        g["score"] = pd.to_numeric(g["score"], errors="coerce")
    need_grade = ~g["score"].notna() if has_score else pd.Series(True, index=g.index)
    bad_g = sorted(set(g.loc[need_grade, "grade"]) - set(levels))
    if bad_g:
        problems.append(Problem(source, "grade", f"values {bad_g[:10]} are not levels {list(levels)} "
                                                 "(map letter aliases to level labels first)"))
    dg = g.duplicated(["rater_id", "case_id"])
    if dg.any():
        ex = g.loc[dg, ["rater_id", "case_id"]].head(5).to_records(index=False).tolist()
        problems.append(Problem(source, "rater_id, case_id", f"{int(dg.sum())} duplicate reading(s), e.g. {ex}; "
                                                             "expected one grade per rater per case"))
    unknown_keep = [k for k in keep if k not in set(g["rater_id"])]
    if unknown_keep:
        problems.append(Problem(source, "rater_id", f"rater(s) {unknown_keep} to keep have no grades"))
    if problems:
        raise StudyError(problems)

    ref_cases = set(ref["case_id"])
    no_ref = sorted(set(g["case_id"]) - ref_cases)
    g = g[g["case_id"].isin(ref_cases)]
    read = pd.crosstab(g["case_id"], g["rater_id"]).reindex(sorted(ref_cases), fill_value=0) > 0
    n_read = read.sum(axis=0).astype(int).to_dict()
    kept_raters, rule = _crossed_block(read, list(keep), min_raters)
    common = read.index[read[kept_raters].all(axis=1)] if kept_raters else read.index
    kept_cases = set(common)
    out = g[g["rater_id"].isin(kept_raters) & g["case_id"].isin(kept_cases)].copy()
    truth_of = {cid: int(rank[gr] >= rank[positive_from]) for cid, gr in zip(ref["case_id"], ref["grade"])}
    out["truth"] = out["case_id"].map(truth_of).astype(int)
    rating = out["grade"].map(rank).astype(float)
    if has_score:
        rating = out["score"].where(out["score"].notna(), rating)
    out["rating"] = rating.astype(float)
    out["modality"] = modality
    out = out.rename(columns={"rater_id": "reader_id"})
    out = out[["modality", "reader_id", "case_id", "truth", "rating", "grade"]].sort_values(
        ["reader_id", "case_id"], kind="stable").reset_index(drop=True)
    raters_with_score = sorted(set(g.loc[g["score"].notna(), "rater_id"])) if has_score else []
    dropped = {rid: DroppedRater(cases_read=n_read.get(rid, 0),
                                 reason="left out of the largest fully crossed block (reads too few of the common cases)")
               for rid in sorted(set(g["rater_id"]) - set(kept_raters))}
    case_truth = pd.Series({c: truth_of[c] for c in kept_cases}, dtype=int)
    n_positive, n_negative = int((case_truth == 1).sum()), int((case_truth == 0).sum())
    account = CrossedBlock(
        endpoint=f"reference grade {positive_from} or worse ({', '.join(levels[rank[positive_from]:])}) = positive",
        positive_from=positive_from,
        levels=list(levels),
        rating=("ordinal index of the rater's grade (0 = " + levels[0] + ")"
                + ("; the rater's score where given (" + ", ".join(raters_with_score) + ")" if raters_with_score else "")),
        rule="keep the raters whose commonly read cases make the largest fully crossed block "
             f"(raters x cases; ties: more cases, then more raters), always keeping {list(keep)}, with at least "
             f"{min_raters} raters in all; {rule}",
        raters_total=int(g["rater_id"].nunique()),
        raters_kept=sorted(kept_raters),
        raters_dropped=dropped,
        cases_read_by_rater={k: int(v) for k, v in sorted(n_read.items())},
        cases_reference=len(ref_cases),
        cases_kept=len(kept_cases),
        cases_excluded=CasesExcluded(graded_but_no_reference=len(no_ref),
                                     not_read_by_every_kept_rater=len(ref_cases) - len(kept_cases)),
        binary_threshold=rank[positive_from],
        binary_threshold_note=("for fom sensitivity/specificity/accuracy on grade-index ratings: rating >= "
                               f"{rank[positive_from]} means the rater graded {positive_from} or worse"),
        n_positive=n_positive,
        n_negative=n_negative,
        warning=("the kept cases have only one truth; no MRMC analysis is possible"
                 if n_positive == 0 or n_negative == 0 else None))
    return out, account
