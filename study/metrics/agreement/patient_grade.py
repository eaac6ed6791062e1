"""One grade per patient from a patient's image grades (protocol ``grading.patient_grade``).

For studies whose endpoint is the patient's severity rather than each photograph's, the
grading agreement is computed on one grade per patient: with ``most_severe`` (the rule of
most acne grading systems applied to a person photographed from several angles: the worst
area decides, e.g. the Chinese acne guideline 2019 and Hayashi 2008 grade the face as a
whole), a patient's reference grade is the most severe reference grade of the patient's
included images, and a rater's patient grade is the most severe grade the rater gave to
those images. A rater who did not grade every included image of a patient has no grade for
that patient (counted as a missing reading): a grade from some of the images could miss the
worst one. Covariates of the subgroup analyses become patient values: the value shared by
all the patient's images, or ``"mixed"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd

from study.errors import Problem, StudyError

PatientGrade = Literal["none", "most_severe"]
MIXED = "mixed"

__all__ = ["MIXED", "PatientGrade", "patient_grades"]


def patient_grades(reference: pd.DataFrame, ratings: pd.DataFrame, *, levels: Sequence[str],
                   patient_of: Mapping[str, Any], covariates: pd.DataFrame | None = None,
                   rule: PatientGrade = "most_severe") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """Reference, ratings and covariates with one row per patient (``case_id`` = the patient id).

    Parameters
    ----------
    reference : DataFrame
        ``case_id``, ``grade`` (one of ``levels``) per included image.
    ratings : DataFrame
        ``rater_id``, ``case_id``, ``grade`` (a level or missing) [, ``rater_kind``, ``reader_group``].
    levels : sequence of str
        Grade levels, least to most severe.
    patient_of : mapping case_id -> patient id
    covariates : DataFrame, optional
        ``case_id`` + subgroup columns.
    rule : {"most_severe"}
        How a patient's image grades make one grade.

    Returns
    -------
    (reference, ratings, covariates)
        Same columns, ``case_id`` now the patient id. A rater's patient grade is missing when the
        rater left any of the patient's included images ungraded.

    Raises
    ------
    StudyError
        An image without a patient, or an unknown rule.
    """
    if rule != "most_severe":
        raise StudyError(Problem("protocol", "grading.patient_grade", f"{rule!r}: expected most_severe or none"))
    rank = {lv: i for i, lv in enumerate(levels)}
    ref = reference.assign(case_id=reference["case_id"].astype(str))
    missing = sorted(set(ref["case_id"]) - {str(k) for k in patient_of})
    if missing:
        raise StudyError(Problem("patient_of", "case_id", f"grading.patient_grade needs each image's patient; "
                                 f"none for {missing[:10]}"))
    pat = {str(k): str(v) for k, v in patient_of.items()}
    ref["patient"] = ref["case_id"].map(pat)
    ref["rank"] = ref["grade"].astype(str).map(rank)
    n_images = ref.groupby("patient").size()
    ref_p = (ref.groupby("patient")["rank"].max().map(lambda r: levels[int(r)])
             .rename("grade").rename_axis("case_id").reset_index())

    r = ratings.assign(case_id=ratings["case_id"].astype(str))
    r = r[r["case_id"].isin(ref["case_id"])]
    r["patient"] = r["case_id"].map(pat)
    r["rank"] = r["grade"].map(lambda g: rank.get(str(g)) if pd.notna(g) else None)
    keys = ["rater_id", "patient"]
    extra = [c for c in ("rater_kind", "reader_group") if c in r.columns]
    g = r.groupby(keys, dropna=False)
    out = g.agg(graded=("rank", "count"), worst=("rank", "max"))
    out["complete"] = out["graded"].to_numpy() == n_images.reindex(out.index.get_level_values("patient")).to_numpy()
    out["grade"] = [levels[int(w)] if c and pd.notna(w) else None for w, c in zip(out["worst"], out["complete"])]
    out = out.reset_index()
    if extra:
        out = out.merge(r.groupby("rater_id")[extra].first().reset_index(), on="rater_id", how="left")
    ratings_p = out.rename(columns={"patient": "case_id"})[["rater_id", "case_id", "grade", *extra]]

    cov_p = None
    if covariates is not None:
        cov = covariates.assign(case_id=covariates["case_id"].astype(str))
        cov = cov[cov["case_id"].isin(ref["case_id"])]
        cov["patient"] = cov["case_id"].map(pat)
        cols = [c for c in cov.columns if c not in ("case_id", "patient")]

        def one(values: pd.Series) -> Any:
            u = values.dropna().unique()
            return u[0] if len(u) == 1 and values.notna().all() else (None if values.isna().all() else MIXED)

        cov_p = (cov.groupby("patient")[cols].agg(one).rename_axis("case_id").reset_index() if cols
                 else pd.DataFrame({"case_id": sorted(cov["patient"].unique())}))
    return ref_p, ratings_p, cov_p
