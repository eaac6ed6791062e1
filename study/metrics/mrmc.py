"""Multi-reader multi-case (MRMC) analysis: Obuchowski-Rockette and Dorfman-Berbaum-Metz.

The analyses count both reader and case variability, as the FDA's iMRMC and the
University of Iowa's OR-DBM MRMC software do, and agree with the latter to the printed
digit on its reference example (Van Dyke et al. 1993; ``tests/test_mrmc.py``).

Design: fully crossed (every reader rates every case in every modality). Split-plot and
partially crossed designs are not supported; :func:`ratings_from_grades` extracts a
fully crossed block from a partially crossed reader study and says what it left out.

Notation: ``t`` modalities (treatments), ``r`` readers, ``c`` cases; ``theta_ij`` is the
figure of merit (FOM) of reader ``j`` in modality ``i``.

Obuchowski-Rockette (OR) analysis
    ``theta_ij = mu + tau_i + R_j + (tau R)_ij + e_ij``, with the error covariance
    estimated by the jackknife (default), a stratified case bootstrap or DeLong's method,
    summarised as ``Var`` (same reader, same modality), ``Cov1`` (same reader, different
    modalities), ``Cov2`` (different readers, same modality), ``Cov3`` (different readers,
    different modalities). With ``MS(T)``, ``MS(R)``, ``MS(T*R)`` the mean squares of the
    modality x reader ANOVA of the ``theta_ij``:

    - random readers, random cases (RRRC): ``F = MS(T) / [MS(T*R) + r max(Cov2 - Cov3, 0)]``
      with Hillis' (2007) denominator degrees of freedom
      ``ddf_H = [MS(T*R) + r max(Cov2 - Cov3, 0)]^2 / {MS(T*R)^2 / [(t-1)(r-1)]}``;
    - fixed readers, random cases (FRRC): ``X2 = (t-1) MS(T) / [Var - Cov1 + (r-1) max(Cov2 - Cov3, 0)]``
      on ``t-1`` degrees of freedom (chi-square; normal-theory intervals);
    - random readers, fixed cases (RRFC): ``F = MS(T) / MS(T*R)`` on ``(t-1), (t-1)(r-1)``
      degrees of freedom (the conventional modality x reader ANOVA).

Dorfman-Berbaum-Metz (DBM) analysis
    The modality x reader x case ANOVA of the jackknife pseudovalues
    ``Y_ijk = c theta_ij - (c-1) theta_ij(k)`` (normalised so that their mean over cases
    equals ``theta_ij``), with Hillis' ddf: RRRC
    ``F = MS(T) / [MS(T*R) + max(MS(T*C) - MS(T*R*C), 0)]``; FRRC ``F = MS(T)/MS(T*C)`` on
    ``(t-1), (t-1)(c-1)``; RRFC ``F = MS(T)/MS(T*R)``.

References
----------
Dorfman DD, Berbaum KS, Metz CE (1992). Receiver operating characteristic rating
analysis: generalization to the population of readers and patients with the jackknife
method. Invest Radiol 27:723-731.
Obuchowski NA, Rockette HE (1995). Hypothesis testing of diagnostic accuracy for
multiple readers and multiple tests: an ANOVA approach with dependent observations.
Commun Stat Simul Comput 24:285-308.
Hillis SL, Obuchowski NA, Schartz KM, Berbaum KS (2005). A comparison of the
Dorfman-Berbaum-Metz and Obuchowski-Rockette methods for receiver operating
characteristic (ROC) data. Stat Med 24:1579-1607.
Hillis SL (2007). A comparison of denominator degrees of freedom methods for multiple
observer ROC analysis. Stat Med 26:596-619 (ddf_H; single-modality analysis, section 5.3).
Hillis SL, Berbaum KS, Metz CE (2008). Recent developments in the Dorfman-Berbaum-Metz
procedure for multireader ROC study analysis. Acad Radiol 15:647-661.
Hillis SL (2014). A marginal-mean ANOVA approach for analyzing multireader multicase
radiological imaging data. Stat Med 33:330-360.
Chakraborty DP (2017). Observer Performance Methods for Diagnostic Imaging, CRC Press,
chapter "Standalone CAD vs. radiologists" (the algorithm-versus-readers analysis).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from study.errors import Problem, StudyError
from study.estimate import Estimate
from study.metrics.roc import (FOM_DESCRIPTIONS, FOMS, binary_fom, bootstrap_covariance,
                               delong_covariance, empirical_roc, fom_parts, jackknife_covariance,
                               jackknife_foms)

__all__ = ["load_mrmc_ratings", "analyze_mrmc", "ratings_from_grades", "empirical_roc", "binary_fom",
           "REQUIRED_COLUMNS", "ANALYSES", "METHODS", "COVARIANCES"]

REQUIRED_COLUMNS = ("modality", "reader_id", "case_id", "truth", "rating")
ANALYSES = ("rrrc", "frrc", "rrfc")
METHODS = ("or", "dbm")
COVARIANCES = ("jackknife", "bootstrap", "delong")
_ANALYSIS_NAMES = {
    "rrrc": "random readers, random cases",
    "frrc": "fixed readers, random cases",
    "rrfc": "random readers, fixed cases",
}
_MAX_LISTED = 20  # problems of one kind listed individually before summarising


# ============================================================================ loading
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

    def add(kind_rows: pd.Index, make) -> None:
        for n, i in enumerate(kind_rows):
            if n == _MAX_LISTED:
                problems.append(Problem(f, "", f"... and {len(kind_rows) - _MAX_LISTED} more row(s) with the same problem"))
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
        if n == _MAX_LISTED:
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


# ============================================================================ design
class _Design:
    """A validated fully crossed design as arrays: ratings[t, r, c], truth[c]."""

    def __init__(self, modalities, readers, cases, truth, ratings):
        self.modalities: list[str] = modalities
        self.readers: list[str] = readers
        self.cases: list[str] = cases
        self.truth: np.ndarray = truth
        self.ratings: np.ndarray = ratings

    @property
    def t(self):
        return len(self.modalities)

    @property
    def r(self):
        return len(self.readers)

    @property
    def c(self):
        return len(self.cases)

    def subset_readers(self, keep: Sequence[str]) -> "_Design":
        idx = [self.readers.index(k) for k in keep]
        return _Design(self.modalities, list(keep), self.cases, self.truth, self.ratings[:, idx, :])

    def to_dict(self) -> dict:
        return {
            "n_modalities": self.t,
            "modalities": list(self.modalities),
            "n_readers": self.r,
            "readers": list(self.readers),
            "n_cases": self.c,
            "n_cases_negative": int((self.truth == 0).sum()),
            "n_cases_positive": int((self.truth == 1).sum()),
            "crossing": "fully crossed (every reader rated every case in every modality)",
        }


def _build_design(ratings: pd.DataFrame, *, source: str = "ratings") -> _Design:
    """Check the item-5 design rules and return the crossed arrays (all problems at once)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in ratings.columns]
    if missing:
        raise StudyError(f"missing column(s) {missing}; expected {list(REQUIRED_COLUMNS)}", file=source)
    df = ratings[list(REQUIRED_COLUMNS)].copy()
    for c in ("modality", "reader_id", "case_id"):
        df[c] = df[c].astype(str)
    problems: list[Problem] = []
    truth = pd.to_numeric(df["truth"], errors="coerce")
    rating = pd.to_numeric(df["rating"], errors="coerce")
    if not truth.isin([0, 1]).all():
        bad = sorted(set(df.loc[~truth.isin([0, 1]), "truth"].astype(str)))[:10]
        problems.append(Problem(source, "truth", f"values {bad}; expected 0 or 1"))
    if not np.isfinite(rating.to_numpy(dtype=float, na_value=np.nan)).all():
        n = int((~np.isfinite(rating.to_numpy(dtype=float, na_value=np.nan))).sum())
        problems.append(Problem(source, "rating", f"{n} missing or non-finite rating(s); expected finite numbers"))
    dups = df.duplicated(["modality", "reader_id", "case_id"])
    if dups.any():
        problems.append(Problem(source, "", f"{int(dups.sum())} duplicate (modality, reader_id, case_id) row(s); "
                                            "expected one rating per reader per case per modality"))
    raise_now = list(problems)
    if raise_now:
        raise StudyError(raise_now)
    df["truth"] = truth.astype(int)
    df["rating"] = rating.astype(float)
    per_case = df.groupby("case_id", sort=False)["truth"].nunique()
    for case in per_case.index[per_case > 1][:_MAX_LISTED]:
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
        for m, rd, n in incomplete[:_MAX_LISTED]:
            got = set(df.loc[(df["modality"] == m) & (df["reader_id"] == rd), "case_id"])
            lacking = [k for k in cases if k not in got]
            problems.append(Problem(source, f"modality {m!r}, reader {rd!r}",
                                    f"rated {n} of {len(cases)} cases (missing e.g. {lacking[:5]}); the analysis "
                                    "needs a fully crossed design (every reader rates every case in every modality)"))
        if len(incomplete) > _MAX_LISTED:
            problems.append(Problem(source, "", f"... and {len(incomplete) - _MAX_LISTED} more incomplete reader-modality pairs"))
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
    return _Design(modalities, readers, cases, case_truth.loc[cases].to_numpy(dtype=int), arr)


# ============================================================================ helpers
def _est(value, se, df, alpha, method, **extra) -> dict:
    """Estimate dict with a t (finite df) or normal (df=None) interval."""
    q = stats.norm.ppf(1 - alpha / 2) if df is None else stats.t.ppf(1 - alpha / 2, df)
    lo, hi = (value - q * se, value + q * se) if np.isfinite(se) else (np.nan, np.nan)
    d = Estimate(value, lo, hi, method, se=se).to_dict()
    d["df"] = None if df is None or not np.isfinite(df) else float(df)
    d.update(extra)
    return d


def _pval_t(stat, df):
    if df is None or not np.isfinite(df):
        return float(2 * stats.norm.sf(abs(stat)))
    return float(2 * stats.t.sf(abs(stat), df))


def _safe_div(a, b):
    return a / b if b != 0 else (np.inf if a > 0 else (0.0 if a == 0 else -np.inf))


def _satterthwaite(den, ms, df_ms):
    """Hillis (2007) ddf: den^2 / (ms^2 / df_ms); infinite when ms = 0."""
    if ms == 0:
        return np.inf
    return den ** 2 / (ms ** 2 / df_ms)


def _diff_entry(a, b, value, se, df, alpha, method, kind="modality", **extra) -> dict:
    stat = _safe_div(value, se) if np.isfinite(se) else np.nan
    d = _est(value, se, df, alpha, method)
    d.update({
        "modalities": [a, b],
        "comparison": f"{a} - {b}",
        "kind": kind,
        "statistic": float(stat) if np.isfinite(stat) else None,
        "statistic_name": "z" if df is None else "t",
        "p_value": _pval_t(stat, df) if np.isfinite(stat) else None,
    })
    d.update(extra)
    return d


def _f_test(F, ndf, ddf, error_term, formula, name="F") -> dict:
    if name == "chi-square":
        p = float(stats.chi2.sf(F, ndf))
    else:
        p = float(stats.f.sf(F, ndf, ddf)) if np.isfinite(ddf) else float(stats.chi2.sf(F * ndf, ndf))
    return {"statistic": float(F), "statistic_name": name, "ndf": float(ndf),
            "ddf": None if ddf is None or not np.isfinite(ddf) else float(ddf),
            "p_value": p, "error_term": float(error_term), "error_term_formula": formula}


def _mean_masked(a, mask):
    v = a[mask]
    return float(v.mean()) if v.size else np.nan


# ============================================================================ OR
def _or_covariances(theta: np.ndarray, cov: np.ndarray) -> dict:
    """Var, Cov1, Cov2, Cov3 (overall, per modality, per reader) from the (t*r)^2 matrix."""
    t, r = theta.shape
    S = cov.reshape(t, r, t, r)
    same_i = np.broadcast_to(np.eye(t, dtype=bool)[:, None, :, None], S.shape)
    same_j = np.broadcast_to(np.eye(r, dtype=bool)[None, :, None, :], S.shape)
    out = {
        "var": _mean_masked(S, same_i & same_j),
        "cov1": _mean_masked(S, ~same_i & same_j),
        "cov2": _mean_masked(S, same_i & ~same_j),
        "cov3": _mean_masked(S, ~same_i & ~same_j),
    }
    offr = ~np.eye(r, dtype=bool)
    offt = ~np.eye(t, dtype=bool)
    out["var_by_modality"] = [float(np.mean([S[i, j, i, j] for j in range(r)])) for i in range(t)]
    out["cov2_by_modality"] = [_mean_masked(S[i, :, i, :], offr) for i in range(t)]
    out["var_by_reader"] = [float(np.mean([S[i, j, i, j] for i in range(t)])) for j in range(r)]
    out["cov1_by_reader"] = [_mean_masked(S[:, j, :, j], offt) for j in range(r)]
    return out


def _two_way_ms(theta: np.ndarray) -> dict:
    t, r = theta.shape
    g = theta.mean()
    mi, mj = theta.mean(axis=1), theta.mean(axis=0)
    out = {"ms_r_by_modality": [float(np.var(theta[i], ddof=1)) for i in range(t)]}
    if t > 1:
        out["ms_t"] = float(r * ((mi - g) ** 2).sum() / (t - 1))
        out["ms_tr"] = float(((theta - mi[:, None] - mj[None, :] + g) ** 2).sum() / ((t - 1) * (r - 1)))
        out["ms_t_by_reader"] = [float(np.var(theta[:, j], ddof=1)) for j in range(r)]
    out["ms_r"] = float(t * ((mj - g) ** 2).sum() / (r - 1))
    return out


def _or_analysis(d: _Design, theta: np.ndarray, cov: np.ndarray, alpha: float, cov_name: str, analyses,
                 warnings: list[str]) -> dict:
    t, r = theta.shape
    ms = _two_way_ms(theta)
    cv = _or_covariances(theta, cov)
    var, cov1, cov2, cov3 = cv["var"], cv["cov1"], cv["cov2"], cv["cov3"]
    conf = f"{100 * (1 - alpha):g}%"
    # variance components: ANOVA estimates (can be negative); as the Iowa software, Var(T*R)
    # uses Cov2 - Cov3 without truncation (Hillis et al. 2005, Table I).
    if t > 1:
        var_tr = ms["ms_tr"] - var + cov1 + (cov2 - cov3)
        var_r = (ms["ms_r"] - var - (t - 1) * cov1 + cov2 + (t - 1) * cov3 - var_tr) / t
    else:
        var_tr = np.nan
        var_r = ms["ms_r"] - var + cov2
    components = {
        "var_r": var_r, "var_tr": var_tr, "cov1": cov1, "cov2": cov2, "cov3": cov3, "var_error": var,
        "corr1": _safe_div(cov1, var) if t > 1 else None,
        "corr2": _safe_div(cov2, var),
        "corr3": _safe_div(cov3, var) if t > 1 else None,
        "covariance_method": cov_name,
        "note": "ANOVA estimates (can be negative); corr_k = Cov_k / Var(error)",
    }
    mod_names = d.modalities
    fom_i = theta.mean(axis=1)
    res: dict[str, Any] = {}
    c23 = max(cov2 - cov3, 0.0) if t > 1 else 0.0
    if t > 1 and cov2 - cov3 < 0:
        warnings.append(f"OR: Cov2 - Cov3 = {cov2 - cov3:.3g} < 0, set to 0 in the error terms (Hillis 2007)")
    pairs = list(itertools.combinations(range(t), 2))
    for a in analyses:
        out: dict[str, Any] = {"name": _ANALYSIS_NAMES[a]}
        mods = {}
        if a == "rrrc":
            for i in range(t):
                den_i = ms["ms_r_by_modality"][i] + r * max(cv["cov2_by_modality"][i], 0.0)
                df_i = _satterthwaite(den_i, ms["ms_r_by_modality"][i], r - 1)
                mods[mod_names[i]] = _est(fom_i[i], np.sqrt(den_i / r), df_i, alpha,
                                          f"OR single-modality t interval, ddf_H_single (Hillis 2007), {conf}",
                                          ms_r=ms["ms_r_by_modality"][i], cov2=cv["cov2_by_modality"][i])
            if t > 1:
                den = ms["ms_tr"] + r * c23
                ddf = _satterthwaite(den, ms["ms_tr"], (t - 1) * (r - 1))
                out["test"] = _f_test(ms["ms_t"] / den, t - 1, ddf, den, "MS(T*R) + r*max(Cov2 - Cov3, 0)")
                se = np.sqrt(2 / r * den)
                out["differences"] = [_diff_entry(mod_names[p], mod_names[q], fom_i[p] - fom_i[q], se, ddf, alpha,
                                                  f"OR RRRC t interval, ddf_H (Hillis 2007), {conf}") for p, q in pairs]
        elif a == "frrc":
            for i in range(t):
                se_i = np.sqrt((cv["var_by_modality"][i] + (r - 1) * max(cv["cov2_by_modality"][i], 0.0)) / r)
                mods[mod_names[i]] = _est(fom_i[i], se_i, None, alpha, f"OR FRRC normal interval, {conf}",
                                          var_error=cv["var_by_modality"][i], cov2=cv["cov2_by_modality"][i])
            if t > 1:
                den = var - cov1 + (r - 1) * c23
                out["test"] = _f_test((t - 1) * ms["ms_t"] / den, t - 1, None, den,
                                      "Var(error) - Cov1 + (r-1)*max(Cov2 - Cov3, 0)", name="chi-square")
                se = np.sqrt(2 / r * den)
                out["differences"] = [_diff_entry(mod_names[p], mod_names[q], fom_i[p] - fom_i[q], se, None, alpha,
                                                  f"OR FRRC normal interval, {conf}") for p, q in pairs]
                per_reader = []
                for j, rd in enumerate(d.readers):
                    den_j = cv["var_by_reader"][j] - cv["cov1_by_reader"][j]
                    se_j = np.sqrt(2 * den_j) if den_j > 0 else np.nan
                    for p, q in pairs:
                        per_reader.append(_diff_entry(mod_names[p], mod_names[q], theta[p, j] - theta[q, j], se_j, None,
                                                      alpha, f"OR single-reader normal interval, {conf}",
                                                      kind="single_reader", reader=rd,
                                                      var_error=cv["var_by_reader"][j], cov1=cv["cov1_by_reader"][j]))
                out["single_reader_differences"] = per_reader
        else:  # rrfc
            for i in range(t):
                mods[mod_names[i]] = _est(fom_i[i], np.sqrt(ms["ms_r_by_modality"][i] / r), r - 1, alpha,
                                          f"t interval over readers (cases fixed), {conf}",
                                          ms_r=ms["ms_r_by_modality"][i])
            if t > 1:
                ddf = (t - 1) * (r - 1)
                out["test"] = _f_test(_safe_div(ms["ms_t"], ms["ms_tr"]), t - 1, ddf, ms["ms_tr"], "MS(T*R)")
                se = np.sqrt(2 / r * ms["ms_tr"])
                out["differences"] = [_diff_entry(mod_names[p], mod_names[q], fom_i[p] - fom_i[q], se, ddf, alpha,
                                                  f"RRFC t interval, df = (t-1)(r-1), {conf}") for p, q in pairs]
        out["modalities"] = mods
        out.setdefault("test", None)
        out.setdefault("differences", [])
        res[a] = out
    anova = {"ms_t": ms.get("ms_t"), "ms_r": ms["ms_r"], "ms_tr": ms.get("ms_tr"),
             "df_t": t - 1, "df_r": r - 1, "df_tr": (t - 1) * (r - 1),
             "ss_t": ms["ms_t"] * (t - 1) if t > 1 else None, "ss_r": ms["ms_r"] * (r - 1),
             "ss_tr": ms["ms_tr"] * (t - 1) * (r - 1) if t > 1 else None,
             "ms_r_by_modality": dict(zip(mod_names, ms["ms_r_by_modality"])),
             "var_error_by_modality": dict(zip(mod_names, cv["var_by_modality"])),
             "cov2_by_modality": dict(zip(mod_names, cv["cov2_by_modality"])),
             "var_error_by_reader": dict(zip(d.readers, cv["var_by_reader"])),
             "cov1_by_reader": dict(zip(d.readers, cv["cov1_by_reader"])) if t > 1 else None}
    return {"analyses": res, "variance_components": components, "anova": anova}


# ============================================================================ DBM
def _pseudovalues(theta: np.ndarray, jk: np.ndarray) -> np.ndarray:
    """Jackknife pseudovalues, normalised so their mean over cases is theta (shape t, r, c)."""
    c = jk.shape[-1]
    y = c * theta[..., None] - (c - 1) * jk
    return y + (theta - y.mean(axis=-1))[..., None]


def _three_way_ms(y: np.ndarray) -> dict:
    t, r, c = y.shape
    g = y.mean()
    m_i, m_j, m_k = y.mean(axis=(1, 2)), y.mean(axis=(0, 2)), y.mean(axis=(0, 1))
    m_ij, m_ik, m_jk = y.mean(axis=2), y.mean(axis=1), y.mean(axis=0)
    ms = {
        "ms_r": t * c * ((m_j - g) ** 2).sum() / (r - 1),
        "ms_c": t * r * ((m_k - g) ** 2).sum() / (c - 1),
        "ms_rc": t * ((m_jk - m_j[:, None] - m_k[None, :] + g) ** 2).sum() / ((r - 1) * (c - 1)),
    }
    if t > 1:
        ms["ms_t"] = r * c * ((m_i - g) ** 2).sum() / (t - 1)
        ms["ms_tr"] = c * ((m_ij - m_i[:, None] - m_j[None, :] + g) ** 2).sum() / ((t - 1) * (r - 1))
        ms["ms_tc"] = r * ((m_ik - m_i[:, None] - m_k[None, :] + g) ** 2).sum() / ((t - 1) * (c - 1))
        resid = (y - m_ij[:, :, None] - m_ik[:, None, :] - m_jk[None, :, :] + m_i[:, None, None]
                 + m_j[None, :, None] + m_k[None, None, :] - g)
        ms["ms_trc"] = (resid ** 2).sum() / ((t - 1) * (r - 1) * (c - 1))
    return {k: float(v) for k, v in ms.items()}


def _dbm_analysis(d: _Design, theta: np.ndarray, jk: np.ndarray, alpha: float, analyses, warnings) -> dict:
    t, r = theta.shape
    c = d.c
    y = _pseudovalues(theta, jk.reshape(t, r, c))
    ms = _three_way_ms(y)
    single = [_three_way_ms(y[i:i + 1]) for i in range(t)]
    conf = f"{100 * (1 - alpha):g}%"
    mod_names = d.modalities
    fom_i = theta.mean(axis=1)
    pairs = list(itertools.combinations(range(t), 2))
    if t > 1:
        comps = {
            "var_r": (ms["ms_r"] - ms["ms_tr"] - ms["ms_rc"] + ms["ms_trc"]) / (t * c),
            "var_c": (ms["ms_c"] - ms["ms_tc"] - ms["ms_rc"] + ms["ms_trc"]) / (t * r),
            "var_tr": (ms["ms_tr"] - ms["ms_trc"]) / c,
            "var_tc": (ms["ms_tc"] - ms["ms_trc"]) / r,
            "var_rc": (ms["ms_rc"] - ms["ms_trc"]) / t,
            "var_trc_error": ms["ms_trc"],
        }
        tc_excess = ms["ms_tc"] - ms["ms_trc"]
        if tc_excess < 0:
            warnings.append(f"DBM: MS(T*C) - MS(T*R*C) = {tc_excess:.3g} < 0, set to 0 in the error term (Hillis 2008)")
    else:
        comps = {"var_r": (ms["ms_r"] - ms["ms_rc"]) / c, "var_c": (ms["ms_c"] - ms["ms_rc"]) / r,
                 "var_tr": None, "var_tc": None, "var_rc": None, "var_rc_error": ms["ms_rc"],
                 "var_trc_error": None}
    comps["note"] = "ANOVA estimates from the pseudovalue mean squares (can be negative)"
    res: dict[str, Any] = {}
    for a in analyses:
        out: dict[str, Any] = {"name": _ANALYSIS_NAMES[a]}
        mods = {}
        for i in range(t):
            s = single[i]
            if a == "rrrc":
                den_i = s["ms_r"] + max(s["ms_c"] - s["ms_rc"], 0.0)
                df_i = _satterthwaite(den_i, s["ms_r"], r - 1)
                mods[mod_names[i]] = _est(fom_i[i], np.sqrt(den_i / (r * c)), df_i, alpha,
                                          f"DBM single-modality t interval, ddf_H_single (Hillis 2007), {conf}")
            elif a == "frrc":
                mods[mod_names[i]] = _est(fom_i[i], np.sqrt(s["ms_c"] / (r * c)), c - 1, alpha,
                                          f"DBM FRRC t interval, df = c-1, {conf}")
            else:
                mods[mod_names[i]] = _est(fom_i[i], np.sqrt(s["ms_r"] / (r * c)), r - 1, alpha,
                                          f"DBM RRFC t interval, df = r-1, {conf}")
            mods[mod_names[i]].update({"ms_r": s["ms_r"], "ms_c": s["ms_c"], "ms_rc": s["ms_rc"]})
        out["modalities"] = mods
        out["test"], out["differences"] = None, []
        if t > 1:
            if a == "rrrc":
                den = ms["ms_tr"] + max(ms["ms_tc"] - ms["ms_trc"], 0.0)
                ddf = _satterthwaite(den, ms["ms_tr"], (t - 1) * (r - 1))
                formula = "MS(T*R) + max(MS(T*C) - MS(T*R*C), 0)"
                meth = f"DBM RRRC t interval, ddf_H (Hillis 2007), {conf}"
            elif a == "frrc":
                den, ddf, formula = ms["ms_tc"], (t - 1) * (c - 1), "MS(T*C)"
                meth = f"DBM FRRC t interval, df = (t-1)(c-1), {conf}"
            else:
                den, ddf, formula = ms["ms_tr"], (t - 1) * (r - 1), "MS(T*R)"
                meth = f"DBM RRFC t interval, df = (t-1)(r-1), {conf}"
            out["test"] = _f_test(_safe_div(ms["ms_t"], den), t - 1, ddf, den, formula)
            se = np.sqrt(2 * den / (r * c))
            out["differences"] = [_diff_entry(mod_names[p], mod_names[q], fom_i[p] - fom_i[q], se, ddf, alpha, meth)
                                  for p, q in pairs]
            if a == "frrc":
                per_reader = []
                for j, rd in enumerate(d.readers):
                    # one reader: the T x C ANOVA of its pseudovalues; MS(T*C) is the error term
                    yj = y[:, j, :]
                    res_j = yj - yj.mean(axis=1, keepdims=True) - yj.mean(axis=0, keepdims=True) + yj.mean()
                    ms_tc_j = float((res_j ** 2).sum() / ((t - 1) * (c - 1)))
                    se_j = np.sqrt(2 * ms_tc_j / c)
                    for p, q in pairs:
                        per_reader.append(_diff_entry(mod_names[p], mod_names[q], theta[p, j] - theta[q, j], se_j,
                                                      (t - 1) * (c - 1), alpha,
                                                      f"DBM single-reader t interval, df = (t-1)(c-1), {conf}",
                                                      kind="single_reader", reader=rd, ms_tc=ms_tc_j))
                out["single_reader_differences"] = per_reader
        res[a] = out
    mean_squares = dict(ms)
    mean_squares.update({"df_t": t - 1, "df_r": r - 1, "df_c": c - 1, "df_tr": (t - 1) * (r - 1),
                         "df_tc": (t - 1) * (c - 1), "df_rc": (r - 1) * (c - 1),
                         "df_trc": (t - 1) * (r - 1) * (c - 1),
                         "by_modality": {mod_names[i]: single[i] for i in range(t)}})
    return {"analyses": res, "dbm_variance_components": comps, "dbm_mean_squares": mean_squares}


# ============================================================================ AI vs readers
def _ai_vs_readers(theta: np.ndarray, cov: np.ndarray, ai_index: int, names: list[str], modality: str,
                   alpha: float, warnings: list[str]) -> dict:
    """One algorithm against the average of the readers in one modality (Hillis 2007, 5.3).

    ``psi_j = theta_AI - theta_j`` for the J human readers; the covariance of the psi's
    follows from that of the FOMs (``A Sigma A^T``); ``Var`` and ``Cov2`` are its mean
    diagonal and off-diagonal. RRRC: ``t = mean(psi) / sqrt([MS(R) + J max(Cov2, 0)] / J)``
    on ``ddf_H = [MS(R) + J max(Cov2,0)]^2 / [MS(R)^2 / (J-1)]``; RRFC: one-sample t test
    of the psi's on J-1 df; FRRC: ``se = sqrt([Var + (J-1) max(Cov2, 0)] / J)``, normal.
    Signs: the difference is AI minus the readers' average (RJafroc's StCadVsRad reports
    readers minus CAD).
    """
    conf = f"{100 * (1 - alpha):g}%"
    others = [k for k in range(len(theta)) if k != ai_index]
    J = len(others)
    A = np.zeros((J, len(theta)))
    A[:, ai_index] = 1.0
    A[np.arange(J), others] = -1.0
    psi = A @ theta
    cpsi = A @ cov @ A.T
    var = float(np.mean(np.diag(cpsi)))
    cov2 = float(cpsi[~np.eye(J, dtype=bool)].mean())
    msr = float(np.var(psi, ddof=1))
    mean_psi = float(psi.mean())
    ai = names[ai_index]
    label_b = "readers (average)"
    res: dict[str, Any] = {}
    den = msr + J * max(cov2, 0.0)
    ddf = _satterthwaite(den, msr, J - 1)
    res["rrrc"] = _diff_entry(ai, label_b, mean_psi, np.sqrt(den / J), ddf, alpha,
                              f"single-modality OR t interval, ddf_H (Hillis 2007, section 5.3), {conf}",
                              kind="ai_vs_readers", modality=modality)
    res["rrfc"] = _diff_entry(ai, label_b, mean_psi, np.sqrt(msr / J), J - 1, alpha,
                              f"one-sample t interval over readers (cases fixed), df = J-1, {conf}",
                              kind="ai_vs_readers", modality=modality)
    den_f = var + (J - 1) * max(cov2, 0.0)
    res["frrc"] = _diff_entry(ai, label_b, mean_psi, np.sqrt(den_f / J), None, alpha,
                              f"normal interval (readers fixed), {conf}", kind="ai_vs_readers", modality=modality)
    for a, e in res.items():
        if e["statistic"] is not None:
            e["f_statistic"] = e["statistic"] ** 2
    if cov2 < 0:
        warnings.append(f"AI vs readers ({modality}): Cov2 of the differences = {cov2:.3g} < 0, set to 0")
    reader_theta = theta[others]
    # readers' own average with a single-modality OR interval (Hillis 2007)
    Sr = cov[np.ix_(others, others)]
    cov2_r = float(Sr[~np.eye(J, dtype=bool)].mean())
    msr_r = float(np.var(reader_theta, ddof=1))
    den_r = msr_r + J * max(cov2_r, 0.0)
    readers_avg = _est(float(reader_theta.mean()), np.sqrt(den_r / J), _satterthwaite(den_r, msr_r, J - 1), alpha,
                       f"OR single-modality t interval over the readers, ddf_H_single (Hillis 2007), {conf}")
    ai_fom = _est(float(theta[ai_index]), float(np.sqrt(max(cov[ai_index, ai_index], 0.0))), None, alpha,
                  f"normal interval, case-sampling variance only, {conf}")
    return {
        "ai_reader": ai,
        "modality": modality,
        "ai_fom": ai_fom,
        "readers_fom": readers_avg,
        "readers": {names[k]: float(theta[k]) for k in others},
        "difference_definition": "AI FOM minus the average FOM of the other readers",
        "analyses": res,
        "variance_components": {"var_r": msr - var + cov2, "var_error": var, "cov2": cov2, "ms_r": msr,
                                "note": "single-modality OR model of the differences psi_j = AI - reader j"},
    }


# ============================================================================ main entry
def analyze_mrmc(ratings: pd.DataFrame, *, method: str = "or", analysis: str | None = None,
                 covariance: str = "jackknife", ai_reader: str | None = None, confidence: float = 0.95,
                 fom: str = "wilcoxon", threshold: float | None = None, n_bootstrap: int = 2000,
                 seed: int = 20261121, source: str = "ratings") -> dict:
    """Multi-reader multi-case analysis of a fully crossed ratings table.

    Parameters
    ----------
    ratings : DataFrame
        Columns ``modality, reader_id, case_id, truth, rating`` (see :func:`load_mrmc_ratings`).
    method : {"or", "dbm"}
        Obuchowski-Rockette (with Hillis' ddf) or Dorfman-Berbaum-Metz (pseudovalues;
        jackknife only).
    analysis : {"rrrc", "frrc", "rrfc"} or None
        Which generalisation to report as the headline; ``None`` computes all three and
        makes RRRC the headline (``analyses`` always holds every one computed).
    covariance : {"jackknife", "bootstrap", "delong"}
        Error covariance estimate for OR (``delong`` is DeLong et al. 1988's structural
        components; bootstrap: ``n_bootstrap`` stratified case resamples, ``seed``).
    ai_reader : str, optional
        A reader (the algorithm) compared with the average of the other readers in each
        modality where it appears (RJafroc ``StCadVsRad``, 1T-RRRC / 1T-RRFC, plus FRRC).
        It is then left out of the modality comparison, which uses the other readers.
    confidence : float
        Confidence level of every interval.
    fom : {"wilcoxon", "sensitivity", "specificity", "accuracy"}
        Figure of merit; the binary ones need ``threshold`` (``rating >= threshold`` is
        called positive; for grades coded 0..K-1, ``threshold=k`` is "grade k or worse").

    Returns
    -------
    dict
        JSON-able: ``method``, ``analysis`` (headline), ``analyses_reported``, ``fom``,
        ``fom_description``, ``threshold``, ``covariance``, ``confidence_level``,
        ``design``, ``readers`` (reader -> modality -> FOM), ``modalities.<m>.fom``
        (estimate dict of the headline analysis, with ``readers``), ``differences[]``
        (``modalities, comparison, kind, estimate, se, ci_low, ci_high, method,
        statistic, statistic_name, df, p_value``; the modality comparisons of the headline
        analysis, then the AI-versus-readers comparisons), ``test`` (the headline global
        test: ``statistic, statistic_name, ndf, ddf, p_value, error_term``),
        ``analyses.<rrrc|frrc|rrfc>`` (``test``, ``differences``, ``modalities``, FRRC
        ``single_reader_differences``), ``variance_components`` (OR: ``var_r, var_tr,
        cov1, cov2, cov3, var_error``, correlations), ``anova`` (OR mean squares),
        ``dbm_variance_components`` and ``dbm_mean_squares`` (always computed when the
        jackknife is used), ``ai_vs_readers`` (list, one per modality; or None),
        ``warnings``.

    Raises
    ------
    StudyError
        For design problems the user can fix (not fully crossed, fewer than two readers,
        cases of one truth only, truth not 0/1 or not constant per case, unknown AI
        reader, bad options).
    """
    problems = []
    if method not in METHODS:
        problems.append(Problem("--method", "", f"{method!r}; expected one of {list(METHODS)}"))
    if analysis is not None and analysis not in ANALYSES:
        problems.append(Problem("--analysis", "", f"{analysis!r}; expected one of {list(ANALYSES)}"))
    if covariance not in COVARIANCES:
        problems.append(Problem("--covariance", "", f"{covariance!r}; expected one of {list(COVARIANCES)}"))
    if method == "dbm" and covariance != "jackknife":
        problems.append(Problem("--covariance", "", f"{covariance!r} with --method dbm; DBM works on jackknife "
                                                    "pseudovalues, so only 'jackknife' applies"))
    if covariance == "bootstrap" and n_bootstrap < 100:
        problems.append(Problem("--bootstrap-replicates", "", f"{n_bootstrap}; expected at least 100"))
    if not (0.5 < confidence < 1):
        problems.append(Problem("--confidence", "", f"{confidence!r}; expected a level between 0.5 and 1, e.g. 0.95"))
    if fom not in FOMS:
        problems.append(Problem("--fom", "", f"{fom!r}; expected one of {list(FOMS)}"))
    elif fom != "wilcoxon" and threshold is None:
        problems.append(Problem("--threshold", "", f"missing; fom {fom!r} needs a cut point (rating >= threshold is positive)"))
    if problems:
        raise StudyError(problems)
    alpha = 1 - confidence
    analyses = list(ANALYSES) if analysis is None else [analysis]
    headline = analysis or "rrrc"
    warnings: list[str] = []

    full = _build_design(ratings, source=source)
    if ai_reader is not None:
        ai_reader = str(ai_reader)
        if ai_reader not in full.readers:
            raise StudyError(Problem(source, "--ai-reader", f"{ai_reader!r} is not a reader_id; readers are {full.readers}"))
        if full.r - 1 < 2:
            raise StudyError(Problem(source, "reader_id", f"the AI-versus-readers analysis needs at least two readers "
                                                          f"besides {ai_reader!r}; found {full.r - 1}"))
    design = full.subset_readers([x for x in full.readers if x != ai_reader]) if ai_reader else full

    def covariance_of(des: _Design):
        t, r, c = des.ratings.shape
        flat = des.ratings.reshape(t * r, c)
        parts = fom_parts(flat, des.truth, fom=fom, threshold=threshold)
        jk = jackknife_foms(parts)
        if covariance == "jackknife":
            cov = jackknife_covariance(jk)
        elif covariance == "delong":
            cov = delong_covariance(parts)
        else:
            cov = bootstrap_covariance(flat, des.truth, fom=fom, threshold=threshold, n_bootstrap=n_bootstrap, seed=seed)
        return parts.theta.reshape(t, r), cov, jk

    theta_full, cov_full, jk_full = covariance_of(full)
    # the modality comparison uses the readers other than the AI: take their rows
    rows = [i * full.r + j for i in range(full.t) for j, rd in enumerate(full.readers) if rd != ai_reader]
    theta = theta_full[:, [j for j, rd in enumerate(full.readers) if rd != ai_reader]]
    cov = cov_full[np.ix_(rows, rows)]
    jk = jk_full[rows]
    t, r = theta.shape

    if method == "or":
        core = _or_analysis(design, theta, cov, alpha, covariance, analyses, warnings)
    else:
        core = _dbm_analysis(design, theta, jk, alpha, analyses, warnings)
    # DBM variance components accompany OR output too (Iowa prints both), jackknife only
    if method == "or" and covariance == "jackknife":
        extra = _dbm_analysis(design, theta, jk, alpha, [], [])
        core["dbm_variance_components"] = extra["dbm_variance_components"]
        core["dbm_mean_squares"] = extra["dbm_mean_squares"]
    if method == "dbm":
        # OR components from the jackknife covariance, for sample-size planning
        extra = _or_analysis(design, theta, jackknife_covariance(jk), alpha, "jackknife", [], [])
        core["variance_components"] = extra["variance_components"]
        core["anova"] = extra["anova"]

    if r < 4:
        warnings.append(f"only {r} readers: reader variability is poorly estimated; random-reader results are imprecise")

    ai_results = None
    if ai_reader:
        ai_results = []
        k = full.readers.index(ai_reader)
        r_full = full.r
        for i, m in enumerate(full.modalities):
            idx = np.arange(i * r_full, (i + 1) * r_full)
            ai_results.append(_ai_vs_readers(theta_full[i], cov_full[np.ix_(idx, idx)], k, full.readers, m, alpha,
                                             warnings))

    head = core["analyses"][headline]
    modalities = {}
    for i, m in enumerate(design.modalities):
        modalities[m] = {"fom": head["modalities"][m],
                         "readers": {rd: float(theta[i, j]) for j, rd in enumerate(design.readers)}}
    differences = list(head["differences"])
    test = head["test"]
    if test is None and ai_results:  # one modality: the headline test is the AI-versus-readers one
        e = ai_results[0]["analyses"][headline]
        if e["statistic"] is not None:
            test = {"statistic": e["statistic"] ** 2,
                    "statistic_name": "chi-square" if e["df"] is None else "F",
                    "ndf": 1.0, "ddf": e["df"], "p_value": e["p_value"],
                    "error_term": e["se"] ** 2, "error_term_formula": "squared SE of the AI-minus-readers difference",
                    "comparison": e["comparison"], "modality": e["modality"]}
    if ai_results:
        differences += [a["analyses"][headline] for a in ai_results]
    readers = {rd: {m: float(theta_full[i, j]) for i, m in enumerate(full.modalities)}
               for j, rd in enumerate(full.readers)}
    design_d = full.to_dict()
    design_d["ai_reader"] = ai_reader
    design_d["readers_in_modality_comparison"] = list(design.readers)
    out = {
        "method": method,
        "analysis": headline,
        "analyses_reported": analyses,
        "fom": fom,
        "fom_description": FOM_DESCRIPTIONS[fom],
        "threshold": threshold,
        "covariance": covariance,
        "bootstrap": {"replicates": n_bootstrap, "seed": seed, "stratified_by_truth": True} if covariance == "bootstrap" else None,
        "confidence_level": confidence,
        "design": design_d,
        "readers": readers,
        "modalities": modalities,
        "test": test,
        "differences": differences,
        "analyses": core["analyses"],
        "variance_components": core["variance_components"],
        "anova": core["anova"],
        "dbm_variance_components": core.get("dbm_variance_components"),
        "dbm_mean_squares": core.get("dbm_mean_squares"),
        "ai_vs_readers": ai_results,
        "warnings": warnings,
    }
    from study.io import to_jsonable

    return to_jsonable(out)


# ============================================================================ grades -> ratings
def _crossed_block(read: pd.DataFrame, keep: Sequence[str], min_raters: int, exact_limit: int = 16):
    """Choose the raters whose common cases give the largest crossed block (raters x cases)."""
    raters = list(read.columns)
    M = read.to_numpy(dtype=bool)  # cases x raters
    keep_idx = [raters.index(k) for k in keep]
    others = [k for k in range(len(raters)) if k not in keep_idx]

    def score(sel):
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
    return [raters[s] for s in best], rule


def ratings_from_grades(reference: pd.DataFrame, grades: pd.DataFrame, *, levels: list[str], positive_from: str,
                        modality: str = "grading", keep: Sequence[str] = (), min_raters: int = 3,
                        source: str = "grades") -> tuple[pd.DataFrame, dict]:
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
    (DataFrame, dict)
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
    dropped = {rid: {"cases_read": n_read.get(rid, 0),
                     "reason": "left out of the largest fully crossed block (reads too few of the common cases)"}
               for rid in sorted(set(g["rater_id"]) - set(kept_raters))}
    case_truth = pd.Series({c: truth_of[c] for c in kept_cases}, dtype=int)
    account = {
        "endpoint": f"reference grade {positive_from} or worse ({', '.join(levels[rank[positive_from]:])}) = positive",
        "positive_from": positive_from,
        "levels": list(levels),
        "rating": ("ordinal index of the rater's grade (0 = " + levels[0] + ")"
                   + ("; the rater's score where given (" + ", ".join(raters_with_score) + ")" if raters_with_score else "")),
        "rule": "keep the raters whose commonly read cases make the largest fully crossed block "
                f"(raters x cases; ties: more cases, then more raters), always keeping {list(keep)}, with at least "
                f"{min_raters} raters in all; {rule}",
        "raters_total": int(g["rater_id"].nunique()),
        "raters_kept": sorted(kept_raters),
        "raters_dropped": dropped,
        "cases_read_by_rater": {k: int(v) for k, v in sorted(n_read.items())},
        "cases_reference": len(ref_cases),
        "cases_kept": len(kept_cases),
        "cases_excluded": {
            "graded_but_no_reference": len(no_ref),
            "not_read_by_every_kept_rater": len(ref_cases) - len(kept_cases),
        },
        "binary_threshold": rank[positive_from],
        "binary_threshold_note": ("for fom sensitivity/specificity/accuracy on grade-index ratings: rating >= "
                                  f"{rank[positive_from]} means the rater graded {positive_from} or worse"),
        "n_positive": int((case_truth == 1).sum()),
        "n_negative": int((case_truth == 0).sum()),
    }
    if account["n_positive"] == 0 or account["n_negative"] == 0:
        account["warning"] = "the kept cases have only one truth; no MRMC analysis is possible"
    return out, account
