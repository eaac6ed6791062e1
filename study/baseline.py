"""Baseline characteristics of the analysed cohort (STARD 2015 items 20 and 21a).

The table describes the cases that were *included* (passed the quality gate and the
inclusion criteria): demographic covariates (age, sex, Fitzpatrick skin type, anatomical
site, capture device), the distribution of the reference-standard grade (severity), and the
number of reference lesions per class per image, as in Table 1 of the smartphone acne study
(Frontiers in Medicine 2024), which lists for every lesion class the total and the average
number per image.

Every value is computed from the tables given; nothing is typed in. Summary statistics
follow the usual conventions: mean with the sample standard deviation (``ddof = 1``),
median with the first and third quartiles (linear interpolation, the pandas / numpy
default, i.e. Hyndman & Fan 1996 type 7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from study.errors import Problem, raise_if
from study.natural_order import natural_key
from study.results.baseline import (
    Baseline,
    CategoricalSummary,
    LesionsPerImage,
    LesionSummary,
    LevelCount,
    NumericSummary,
    SeverityLesions,
    SeveritySummary,
)

DEFAULT_COVARIATES = ("age", "sex", "fitzpatrick", "site", "device")
#: covariates summarised as numbers (mean, SD, median, IQR); the others are categorical
NUMERIC_COVARIATES = ("age",)


def _float(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _numeric_summary(values: pd.Series) -> NumericSummary:
    """Mean, SD (ddof 1), median, quartiles (type 7), range and missing count of a numeric column."""
    v = pd.to_numeric(values, errors="coerce")
    present = v.dropna().to_numpy(dtype=float)
    n_missing = int(v.isna().sum())
    if present.size == 0:
        return NumericSummary(n=0, n_missing=n_missing, mean=None, sd=None, median=None,
                              q1=None, q3=None, min=None, max=None)
    q1, med, q3 = np.quantile(present, [0.25, 0.5, 0.75])
    return NumericSummary(
        n=int(present.size),
        n_missing=n_missing,
        mean=_float(present.mean()),
        sd=_float(present.std(ddof=1)) if present.size > 1 else None,
        median=_float(med),
        q1=_float(q1),
        q3=_float(q3),
        min=_float(present.min()),
        max=_float(present.max()),
    )


#: natural order of subgroup values (:func:`study.natural_order.natural_key`)
_sort_key = natural_key


def _categorical_summary(values: pd.Series, n_total: int) -> CategoricalSummary:
    """Counts and percentages (of all included cases) per value, in natural order; missing counted apart."""
    missing = values.isna() | (values.astype("string").str.strip() == "")
    present = values[~missing].map(lambda x: str(int(x)) if isinstance(x, float) and x.is_integer() else str(x))
    counts = present.value_counts()
    rows = [
        LevelCount(value=str(val), n=int(counts[val]), percent=100.0 * int(counts[val]) / n_total)
        for val in sorted(counts.index, key=_sort_key)
    ]
    return CategoricalSummary(n=int((~missing).sum()), n_missing=int(missing.sum()), levels=rows)


def compute_baseline(
    cases: pd.DataFrame,
    eligibility: pd.DataFrame,
    counts: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    levels: Sequence[str],
    classes: Sequence[str],
) -> Baseline:
    """Baseline table of the included cases.

    Parameters
    ----------
    cases : DataFrame
        One row per case (``case_id`` unique) with the manifest covariates.
    eligibility : DataFrame
        ``case_id``, ``included`` (bool): the cases analysed are those with ``included``.
    counts : DataFrame
        ``case_id`` and ``count_<class>`` per protocol class: the reference-standard number of
        lesions of each class on the image (e.g. from the ground-truth annotations).
    reference : DataFrame
        ``case_id``, ``grade``: the reference-standard grade (one of ``levels``).
    levels : sequence of str
        Grade levels, least to most severe.
    classes : sequence of str
        Lesion classes, in protocol order.

    Returns
    -------
    Baseline
        The covariates summarised are :data:`DEFAULT_COVARIATES` (``age`` numeric, the others
        categorical); one absent from ``cases`` is ``None`` and listed under ``not_recorded``
        (the report says so). ``n_cases`` (images); ``n_patients`` and ``images_per_patient``
        (a numeric summary) when ``cases`` has ``patient_id``; per covariate ``age`` = ``{n, n_missing, mean, sd, median, q1, q3, min, max}``
        and categorical ones = ``{n, n_missing, levels: [{value, n, percent}]}``;
        ``not_recorded`` (covariates absent from the manifest); ``severity`` =
        ``{levels: [{value, n, percent}], n_missing}`` of the reference grade;
        ``lesions_per_image`` = ``{classes: {<class>: {total, mean, sd, median, min, max,
        images_with, percent_images_with}}, all: {...}, by_severity: {<level>: {n_images,
        mean: {<class>: float}}}}``. Percentages are of the included cases.

    Raises
    ------
    StudyError
        When a table lacks a required column, ``case_id`` repeats, a reference grade is not one
        of ``levels``, or an included case has no reference grade or no counts (all listed).
    """
    levels = list(levels)
    classes = list(classes)
    problems: list[Problem] = []
    for name, df, cols in (
        ("cases", cases, ["case_id"]),
        ("eligibility", eligibility, ["case_id", "included"]),
        ("counts", counts, ["case_id"] + [f"count_{c}" for c in classes]),
        ("reference", reference, ["case_id", "grade"]),
    ):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            problems.append(Problem(name, "columns", f"missing column(s) {missing}; expected {cols}"))
        elif df["case_id"].duplicated().any():
            dup = sorted(df.loc[df["case_id"].duplicated(), "case_id"].astype(str).unique())[:5]
            problems.append(Problem(name, "case_id", f"repeated case_id(s) {dup}; expected one row per case"))
    raise_if(problems)

    included_ids = set(eligibility.loc[eligibility["included"].astype(bool), "case_id"].astype(str))
    cases = cases.assign(case_id=cases["case_id"].astype(str))
    inc = cases[cases["case_id"].isin(included_ids)].sort_values("case_id").reset_index(drop=True)
    unknown = sorted(included_ids - set(inc["case_id"]))
    if unknown:
        problems.append(Problem("eligibility", "case_id", f"included case(s) {unknown[:5]} are not in the cases table"))
    n = len(inc)

    ref = reference.assign(case_id=reference["case_id"].astype(str)).set_index("case_id")["grade"]
    ref = ref.reindex(inc["case_id"])
    bad = sorted({str(g) for g in ref.dropna() if str(g) not in levels})
    if bad:
        problems.append(Problem("reference", "grade", f"grade(s) {bad} are not protocol levels {levels}"))
    cnt = counts.assign(case_id=counts["case_id"].astype(str)).set_index("case_id")
    cnt = cnt.reindex(inc["case_id"])[[f"count_{c}" for c in classes]]
    no_counts = sorted(cnt.index[cnt.isna().any(axis=1)])
    if no_counts:
        problems.append(Problem("counts", "case_id", f"included case(s) {no_counts[:5]} have no lesion counts"
                                f" ({len(no_counts)} in all)"))
    raise_if(problems)

    summaries: dict[str, Any] = {}
    not_recorded: list[str] = []
    for cov in DEFAULT_COVARIATES:
        if cov not in inc.columns:
            not_recorded.append(cov)
            summaries[cov] = None
        elif cov in NUMERIC_COVARIATES:
            summaries[cov] = _numeric_summary(inc[cov])
        else:
            summaries[cov] = _categorical_summary(inc[cov], n)

    grades = ref.astype("string")
    severity = SeveritySummary(
        levels=[LevelCount(value=lv, n=int((grades == lv).sum()),
                           percent=100.0 * int((grades == lv).sum()) / n if n else None) for lv in levels],
        n_missing=int(grades.isna().sum()),
    )

    def per_class(col: pd.Series) -> LesionSummary:
        v = col.to_numpy(dtype=float)
        s = _numeric_summary(col)
        with_ = int((v > 0).sum())
        return LesionSummary(total=int(v.sum()), mean=s.mean, sd=s.sd, median=s.median, min=s.min, max=s.max,
                             images_with=with_, percent_images_with=100.0 * with_ / n if n else None)

    by_sev = {}
    for lv in levels:
        sel = cnt[(grades == lv).to_numpy()]
        by_sev[lv] = SeverityLesions(
            n_images=int(len(sel)),
            mean={c: (_float(sel[f"count_{c}"].mean()) if len(sel) else None) for c in classes})
    lpi = LesionsPerImage(classes={c: per_class(cnt[f"count_{c}"]) for c in classes},
                          all=per_class(cnt.sum(axis=1)), by_severity=by_sev)
    n_patients, per_patient = None, None
    if "patient_id" in inc.columns:
        counts_per_patient = inc["patient_id"].astype(str).value_counts()
        n_patients = int(len(counts_per_patient))
        per_patient = _numeric_summary(counts_per_patient.astype(float))
    return Baseline(n_cases=n, n_patients=n_patients, images_per_patient=per_patient, covariates=list(DEFAULT_COVARIATES), not_recorded=not_recorded, **summaries,
                    severity=severity, lesions_per_image=lpi)
