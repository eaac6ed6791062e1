"""Severity-grade agreement: each rater (model or reader) against the reference standard,
reader groups, agreement between readers, model-versus-reader comparisons and subgroups.

Everything a reader study of acne grading reports (the smartphone study, Frontiers in
Medicine 2024; ACNE04, Wu et al. 2019): confusion matrices over *all* protocol levels,
accuracy, Cohen's kappa (unweighted, linear, quadratic) with the asymptotic SE of Fleiss,
Cohen & Everitt (1969), per-grade one-versus-rest sensitivity / specificity / PPV / NPV / F1,
macro F1, the direction of errors, Fleiss' kappa, Krippendorff's ordinal alpha, and paired
model-minus-reader differences.

Intervals
---------
- proportions (accuracy, sensitivity, specificity, PPV, NPV, error shares): Wilson score
  (or Clopper-Pearson) -- ``statsmodels.stats.proportion.proportion_confint``;
- kappas: Wald with the ASE (SAS PROC FREQ, statsmodels ``cohens_kappa``);
- every statistic of a single rater also carries a ``bootstrap`` sub-object: a percentile
  bootstrap that resamples *patients* (a patient may contribute several images), with the
  same replicates for every rater so that differences are paired;
- statistics that pool several readers (groups), F1, macro F1, Fleiss' kappa, Krippendorff's
  alpha and all model-minus-reader differences have the patient bootstrap as their main
  interval: readings of one case by several readers are not independent.

All bootstrapped statistics are functions of sums of per-case features (confusion-matrix
cells, rating counts), so all replicates of all statistics come from one matrix product
(:func:`study.metrics.bootstrap.bootstrap_sums`).

Output of :func:`evaluate_agreement` (JSON-able; every estimate is an
:class:`study.estimate.Estimate` dict ``{estimate, ci_low, ci_high, method[, se]}``; an
undefined estimate has ``null`` values and a ``reason``)
------------------------------------------------------------------------------------------
- ``levels``; ``settings`` (confidence, n_bootstrap, seed, binomial_interval, bootstrap_unit,
  n_cases, n_patients, reference_distribution);
- ``raters.<id>``: ``kind``, ``group``, ``n_cases``, ``n_missing``, ``n_patients``,
  ``confusion_matrix`` (rows = reference, columns = rater, all levels), ``accuracy``,
  ``kappa``, ``kappa_linear``, ``kappa_quadratic`` (Wald-ASE, ``se`` = ASE, plus
  ``bootstrap``), ``per_grade.<level>.{n_reference, n_rated, sensitivity, specificity, ppv,
  npv, f1}``, ``macro_f1``, ``errors.{n_errors, downgrade, upgrade, cross_grade}``;
- ``groups.<reader_group>``: the same over the pooled readings (bootstrap intervals) +
  ``n_readings``, ``readers``, ``spread.<metric>.{min, median, max, n_readers, by_reader}``;
- ``inter_reader.pairwise.{readers, n_shared, kappa, kappa_linear, kappa_quadratic
  (matrices), pairs[]}``, ``inter_reader.fleiss.{kappa, readers, n_cases, case_ids}``,
  ``inter_reader.krippendorff_alpha_ordinal.{alpha, readers, n_cases}``;
- ``comparisons[]``: ``model``, ``versus``, ``versus_kind`` (reader | group), ``n_cases``,
  ``model_accuracy``, ``versus_accuracy``, ``accuracy_difference``,
  ``model_kappa_quadratic``, ``versus_kappa_quadratic``, ``kappa_quadratic_difference``
  (model minus reader, patient bootstrap), ``mcnemar.{p_value, both_correct,
  model_only_correct, reader_only_correct, both_wrong}``;
- ``subgroups.<column>.<value>.<rater_id>``: the rater summary on that subgroup's cases;
  ``subgroups_n_cases.<column>.<value>``.

References
----------
Cohen (1960, 1968); Fleiss, Cohen & Everitt (1969); Fleiss JL (1971), Measuring nominal scale
agreement among many raters, Psychol Bull 76:378-382; Krippendorff K (2004/2011), Computing
Krippendorff's alpha-reliability (coincidence matrices, ordinal metric); McNemar Q (1947),
Psychometrika 12:153-157; Davison & Hinkley (1997) s. 3.8 (cluster bootstrap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from study.errors import Problem, StudyError
from study.estimate import Estimate
from study.metrics.bootstrap import bootstrap_estimate, bootstrap_method_name, bootstrap_sums
from study.metrics.clustered import MCNEMAR_METHOD, clustered_kappa, clustered_mcnemar, clustered_proportion
from study.metrics.intervals import binomial_ci, cohen_kappa, kappa_stacked, undefined

RATER_KINDS = ("model", "reader")
_WEIGHTS = {"kappa": None, "kappa_linear": "linear", "kappa_quadratic": "quadratic"}
_SPREAD_METRICS = ("accuracy", "kappa", "kappa_linear", "kappa_quadratic", "macro_f1")
_MCNEMAR_METHOD = "McNemar exact (binomial) test, two-sided"


# =========================================================================== statistics of tables
def table_stats(tables: np.ndarray) -> dict[str, np.ndarray]:
    """Every per-rater statistic for a stack of confusion matrices ``(..., K, K)``.

    Rows = reference, columns = rater. Undefined values (zero denominators) are NaN.

    Returns
    -------
    dict
        ``n``, ``accuracy``, ``kappa``, ``kappa_linear``, ``kappa_quadratic`` (shape
        ``tables.shape[:-2]``); ``sensitivity``, ``specificity``, ``ppv``, ``npv``, ``f1``
        (one-versus-rest per level, shape ``(..., K)``); ``macro_f1`` (mean F1 over the
        levels used by the reference or the rater); ``n_errors`` and the shares of errors
        that ``downgrade`` (rater below reference), ``upgrade`` and ``cross_grade``
        (two or more levels apart).
    """
    t = np.asarray(tables, dtype=float)
    k = t.shape[-1]
    n = t.sum(axis=(-2, -1))
    tp = np.diagonal(t, axis1=-2, axis2=-1)
    ref = t.sum(axis=-1)
    rat = t.sum(axis=-2)
    nn = n[..., None]
    fn = ref - tp
    fp = rat - tp
    tn = nn - ref - rat + tp
    i = np.arange(k)
    diff = i[None, :] - i[:, None]  # rater level - reference level
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "n": n,
            "accuracy": tp.sum(axis=-1) / n,
            "sensitivity": tp / ref,
            "specificity": tn / (nn - ref),
            "ppv": tp / rat,
            "npv": tn / (nn - rat),
            "f1": 2 * tp / (2 * tp + fp + fn),
        }
        f1 = out["f1"]
        used = (ref + rat) > 0
        out["macro_f1"] = np.where(used.any(axis=-1), np.nansum(np.where(used, f1, 0.0), axis=-1)
                                   / used.sum(axis=-1), np.nan)
        n_err = n - tp.sum(axis=-1)
        out["n_errors"] = n_err
        out["downgrade"] = (t * (diff < 0)).sum(axis=(-2, -1)) / n_err
        out["upgrade"] = (t * (diff > 0)).sum(axis=(-2, -1)) / n_err
        out["cross_grade"] = (t * (np.abs(diff) >= 2)).sum(axis=(-2, -1)) / n_err
    for name, w in _WEIGHTS.items():
        out[name] = kappa_stacked(t, weights=w)
    return out


def fleiss_kappa_from_sums(sums: np.ndarray, m: int) -> np.ndarray:
    """Fleiss' (1971) kappa from summed features ``[n_j (K), sum_j n_ij^2, N]`` (last axis).

    ``P_bar = (sum_i sum_j n_ij^2 - N m) / (N m (m-1))``, ``p_j = sum_i n_ij / (N m)``,
    ``P_e = sum_j p_j^2``, ``kappa = (P_bar - P_e) / (1 - P_e)``.
    """
    s = np.asarray(sums, dtype=float)
    nj, sq, big_n = s[..., :-2], s[..., -2], s[..., -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        p_bar = (sq - big_n * m) / (big_n * m * (m - 1))
        pj = nj / (big_n * m)[..., None]
        pe = (pj ** 2).sum(axis=-1)
        return (p_bar - pe) / (1 - pe)


def krippendorff_ordinal_from_coincidences(o: np.ndarray) -> np.ndarray:
    """Krippendorff's alpha (ordinal metric) from coincidence matrices ``(..., K, K)``.

    ``alpha = 1 - (n - 1) sum_ck o_ck d_ck / sum_ck n_c n_k d_ck`` with the ordinal
    ``d_ck = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2`` (Krippendorff 2011).
    """
    o = np.asarray(o, dtype=float)
    k = o.shape[-1]
    nc = o.sum(axis=-1)
    n = nc.sum(axis=-1)
    cs = np.cumsum(nc, axis=-1)
    lo = np.minimum.outer(np.arange(k), np.arange(k))
    hi = np.maximum.outer(np.arange(k), np.arange(k))
    between = np.take(cs, hi, axis=-1) - np.take(cs, lo, axis=-1) + np.take(nc, lo, axis=-1)
    d = (between - (nc[..., :, None] + nc[..., None, :]) / 2) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        d_o = (o * d).sum(axis=(-2, -1))
        d_e = (nc[..., :, None] * nc[..., None, :] * d).sum(axis=(-2, -1)) / (n - 1)
        return 1 - d_o / d_e


# =========================================================================== validated inputs
@dataclass
class _Rater:
    id: str
    kind: str
    group: str | None
    cases: np.ndarray  # case positions (reference order), sorted
    codes: np.ndarray  # level codes, aligned with cases
    n_missing: int


@dataclass
class _Data:
    levels: list[str]
    case_ids: np.ndarray
    ref: np.ndarray  # level code per case
    patient: np.ndarray  # patient position per case
    n_patients: int
    raters: dict[str, _Rater] = field(default_factory=dict)
    bootstrap_unit: str = "patients"
    unit: str = "image"  # unit of analysis of the main intervals: "patient" or "image"


def _is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))


def _codes(values: Sequence[Any], levels: list[str], source: str, rows: Sequence[int], *,
           allow_missing: bool, problems: list[Problem]) -> np.ndarray:
    """Level codes (0..K-1) of grade values; -1 for missing; every invalid value is a problem."""
    s = pd.Series(list(values), dtype=object)
    missing = s.map(_is_missing).to_numpy(dtype=bool)
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


def _prepare(reference: pd.DataFrame, ratings: pd.DataFrame, *, levels: Sequence[str],
             patient_of: Mapping | pd.Series | None) -> _Data:
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

    # patients
    if patient_of is None:
        patient = np.arange(len(case_ids))
        n_patients = len(case_ids)
        unit = "cases (one patient per case)"
    else:
        pser = patient_of if isinstance(patient_of, pd.Series) else pd.Series(dict(patient_of), dtype=object)
        if not pser.index.is_unique:
            raise StudyError(Problem("patient_of", "", "case ids must be unique"))
        pvals = pser.reindex(pd.Index(case_ids) if not len(dup) else pd.Index(case_ids).unique())
        missing = [c for c, v in zip(pvals.index, pvals.tolist()) if _is_missing(v)]
        if missing:
            problems.append(Problem("patient_of", "case_id",
                                    f"{len(missing)} reference case(s) have no patient_id, e.g. {missing[:5]}"))
        codes, uniq = pd.factorize(pd.Series(pvals.to_numpy(), dtype=object))
        patient = codes
        n_patients = len(uniq)
        unit = "patients"

    # ratings
    r = ratings.reset_index(drop=True)
    rows = range(1, len(r) + 1)
    kind = r["rater_kind"].astype(object) if "rater_kind" in r.columns else pd.Series(["reader"] * len(r), dtype=object)
    group = r["reader_group"].astype(object) if "reader_group" in r.columns else pd.Series([None] * len(r), dtype=object)
    rid = r["rater_id"].astype(object)
    for pos in np.flatnonzero(rid.map(_is_missing).to_numpy())[:20]:
        problems.append(Problem("ratings", f"row {pos + 1} (rater_id)", "rater_id is missing"))
    bad_kind = ~kind.isin(RATER_KINDS)
    for pos in np.flatnonzero(bad_kind.to_numpy())[:20]:
        problems.append(Problem("ratings", f"row {pos + 1} (rater_kind)",
                                f"rater_kind {kind.iloc[pos]!r} is not one of {list(RATER_KINDS)}"))
    codes = _codes(r["grade"].tolist(), levels, "ratings", rows, allow_missing=True, problems=problems)
    case_pos = pd.Index(case_ids).get_indexer(r["case_id"]) if not len(dup) else np.zeros(len(r), dtype=np.int64)
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
    data = _Data(levels, case_ids, ref, np.asarray(patient), n_patients, bootstrap_unit=unit)
    for rater, idx in d.groupby("_rid", sort=True).indices.items():
        kinds = set(kind.iloc[idx].unique())
        groups = {g for g in group.iloc[idx].unique() if not _is_missing(g) and str(g).strip() != ""}
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
        data.raters[rater] = _Rater(rater, str(k), (str(next(iter(groups))) if groups else None),
                                    cp[order], codes[idx][ok][order], int((~ok).sum()))
    if problems:
        raise StudyError(problems)
    return data


# =========================================================================== bootstrap design
class _Design:
    """Registry of feature columns; every block is a K x K confusion table over some cases."""

    def __init__(self, data: _Data):
        self.data = data
        self.k = len(data.levels)
        self.blocks: dict[Any, int] = {}
        self.block_tables: list[np.ndarray] = []
        self._entries: list[tuple[np.ndarray, np.ndarray]] = []  # (case positions, column index)
        self.extras: dict[str, tuple[int, int]] = {}
        self.n_cols = 0
        self._extra_entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def block(self, key: Any, cases: np.ndarray, a: np.ndarray, b: np.ndarray) -> int:
        if key in self.blocks:
            return self.blocks[key]
        j = len(self.block_tables)
        self.blocks[key] = j
        cells = a * self.k + b
        self._entries.append((cases, cells))
        self.block_tables.append(np.bincount(cells, minlength=self.k * self.k).reshape(self.k, self.k))
        return j

    def extra(self, name: str, case_rows: np.ndarray, values: np.ndarray) -> None:
        """Per-case feature rows ``values`` (n x F) for cases ``case_rows``."""
        self._extra_entries.append((case_rows, np.asarray(values, dtype=np.float64), np.array([name])))

    def run(self, *, n_replicates: int, seed: int):
        kk = self.k * self.k
        nb = len(self.block_tables)
        widths = [v.shape[1] for _, v, _ in self._extra_entries]
        total = nb * kk + sum(widths)
        feats = np.zeros((self.data.n_patients, total), dtype=np.float64)
        pat = self.data.patient
        for j, (cases, cells) in enumerate(self._entries):
            np.add.at(feats, (pat[cases], j * kk + cells), 1.0)
        off = nb * kk
        for (rows, vals, name), w in zip(self._extra_entries, widths):
            np.add.at(feats, (pat[rows][:, None], off + np.arange(w)[None, :]), vals)
            self.extras[str(name[0])] = (off, off + w)
            off += w
        self.observed_extras = feats.sum(axis=0)
        self.patient_features = feats
        sums = bootstrap_sums(feats, n_replicates=n_replicates, seed=seed)
        self.boot_tables = sums[:, : nb * kk].reshape(n_replicates, nb, self.k, self.k)
        self.boot_extras = sums
        self.boot_stats = table_stats(self.boot_tables)  # arrays (B, nb[, K])
        self.obs_stats = table_stats(np.stack(self.block_tables) if nb else np.zeros((0, self.k, self.k)))


# =========================================================================== summaries
class _Ctx:
    def __init__(self, data: _Data, design: _Design, *, confidence: float, n_bootstrap: int, binomial: str):
        self.data, self.design = data, design
        self.confidence, self.B, self.binomial = confidence, n_bootstrap, binomial
        self.unit = data.bootstrap_unit

    @property
    def clustered(self) -> bool:
        """Main intervals by the clustered methods (``unit: patient`` and patients known)."""
        return self.data.unit == "patient"

    def patient_tables(self, j: int) -> np.ndarray:
        """Per-patient confusion tables ``(P, K, K)`` of block ``j``."""
        k = self.design.k
        return self.design.patient_features[:, j * k * k:(j + 1) * k * k].reshape(-1, k, k)

    def boot(self, point, samples) -> Estimate:
        return bootstrap_estimate(point, samples, n_replicates=self.B, confidence=self.confidence, unit=self.unit)

    def boot_sub(self, point, samples) -> dict:
        d = self.boot(point, samples).to_dict()
        d.pop("estimate", None)
        return d


def _f(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _with_boot(est: Estimate, sub: dict) -> dict:
    d = est.to_dict()
    d["bootstrap"] = sub
    return d


def _rater_summary(ctx: _Ctx, table: np.ndarray, boot: dict[str, np.ndarray], *, analytic: bool,
                   block: int | None = None) -> dict:
    """Summary of one confusion table. ``boot``: the bootstrap stats of this table (arrays over B).

    ``analytic``: main intervals Wilson / Wald-ASE with a ``bootstrap`` sub-object -- or, when
    the unit of analysis is the patient, the clustered ratio estimator and clustered kappa
    (:mod:`study.metrics.clustered`) computed from the per-patient tables of ``block``;
    otherwise (pooled readers) the patient bootstrap is the main interval.
    """
    levels = ctx.data.levels
    t = np.asarray(table, dtype=np.int64)
    n = int(t.sum())
    obs = table_stats(t)
    conf, bm = ctx.confidence, ctx.binomial
    clustered = analytic and block is not None and ctx.clustered
    pt = ctx.patient_tables(block) if clustered else None  # type: ignore[arg-type]

    def prop(name, k, m, point, samples, reason, x_n=None):
        if clustered and x_n is not None:
            x, nn = x_n(pt)
            return _with_boot(clustered_proportion(x, nn, confidence=conf, reason_if_empty=reason),
                              ctx.boot_sub(point if m else None, samples))
        if analytic:
            return _with_boot(binomial_ci(k, m, confidence=conf, method=bm, reason_if_empty=reason),
                              ctx.boot_sub(point if m else None, samples))
        if m == 0:
            return undefined(ctx.boot(None, samples).method, reason, k=int(k), n=int(m)).to_dict()
        e = ctx.boot(point, samples)
        return Estimate(e.estimate, e.ci_low, e.ci_high, e.method, se=e.se,
                        extra={**(e.extra or {}), "k": int(k), "n": int(m)}).to_dict()

    out: dict[str, Any] = {"n_cases": n, "confusion_matrix": t.tolist(),
                           "confusion_matrix_axes": {"rows": "reference", "columns": "rater", "labels": levels}}
    tr = int(np.trace(t))
    out["accuracy"] = prop("accuracy", tr, n, obs["accuracy"], boot["accuracy"], "no cases",
                           lambda q: (np.trace(q, axis1=1, axis2=2), q.sum(axis=(1, 2))))
    for name, w in _WEIGHTS.items():
        if clustered:
            out[name] = _with_boot(clustered_kappa(pt, weights=w, confidence=conf),
                                   ctx.boot_sub(obs[name], boot[name]))
        elif analytic:
            out[name] = _with_boot(cohen_kappa(t, weights=w, confidence=conf),
                                   ctx.boot_sub(obs[name], boot[name]))
        else:
            e = ctx.boot(obs[name], boot[name])
            out[name] = (e.to_dict() if np.isfinite(obs[name]) else
                         undefined(e.method, "no cases" if n == 0 else "chance agreement is 1: kappa is undefined").to_dict())
    per = {}
    ref_n, rat_n, tp = t.sum(axis=1), t.sum(axis=0), np.diag(t)
    for j, lv in enumerate(levels):
        tn = n - ref_n[j] - rat_n[j] + tp[j]
        xn = _per_grade_counts(j)
        g = {
            "n_reference": int(ref_n[j]), "n_rated": int(rat_n[j]),
            "sensitivity": prop("sensitivity", tp[j], ref_n[j], obs["sensitivity"][j], boot["sensitivity"][:, j],
                                f"no reference case of grade {lv}", xn["sensitivity"]),
            "specificity": prop("specificity", tn, n - ref_n[j], obs["specificity"][j], boot["specificity"][:, j],
                                f"every reference case is of grade {lv}" if n else "no cases", xn["specificity"]),
            "ppv": prop("ppv", tp[j], rat_n[j], obs["ppv"][j], boot["ppv"][:, j], f"the rater never gave grade {lv}",
                        xn["ppv"]),
            "npv": prop("npv", tn, n - rat_n[j], obs["npv"][j], boot["npv"][:, j],
                        f"the rater gave grade {lv} to every case" if n else "no cases", xn["npv"]),
        }
        f1 = obs["f1"][j]
        g["f1"] = (ctx.boot(f1, boot["f1"][:, j]).to_dict() if np.isfinite(f1) else
                   undefined(ctx.boot(None, boot["f1"][:, j]).method,
                             f"grade {lv} used by neither the reference nor the rater").to_dict())
        per[lv] = g
    out["per_grade"] = per
    mf = obs["macro_f1"]
    out["macro_f1"] = (ctx.boot(mf, boot["macro_f1"]).to_dict() if np.isfinite(mf) else
                       undefined(ctx.boot(None, boot["macro_f1"]).method, "no cases").to_dict())
    out["macro_f1"]["definition"] = "mean one-versus-rest F1 over the levels used by the reference or the rater"
    n_err = n - tr
    k_idx = np.arange(len(levels))
    diff = k_idx[None, :] - k_idx[:, None]
    err = {"n_errors": n_err}
    for name, mask, what in (("downgrade", diff < 0, "rater grade below the reference"),
                             ("upgrade", diff > 0, "rater grade above the reference"),
                             ("cross_grade", np.abs(diff) >= 2, "two or more grades from the reference")):
        k = int(t[mask].sum())
        err[name] = prop(name, k, n_err, obs[name], boot[name], "no errors",
                         lambda q, mask=mask: ((q * mask).sum(axis=(1, 2)),
                                               q.sum(axis=(1, 2)) - np.trace(q, axis1=1, axis2=2)))
        err[name]["definition"] = f"share of errors with the {what}"
    out["errors"] = err
    return out


def _per_grade_counts(j: int) -> dict:
    """Per-patient (successes, trials) of grade ``j``'s one-versus-rest proportions from tables ``(P, K, K)``."""
    def parts(q):
        n = q.sum(axis=(1, 2))
        tp, ref, rat = q[:, j, j], q[:, j, :].sum(axis=1), q[:, :, j].sum(axis=1)
        return n, tp, ref, rat, n - ref - rat + tp

    def pick(f):
        return lambda q: f(*parts(q))

    return {"sensitivity": pick(lambda n, tp, ref, rat, tn: (tp, ref)),
            "specificity": pick(lambda n, tp, ref, rat, tn: (tn, n - ref)),
            "ppv": pick(lambda n, tp, ref, rat, tn: (tp, rat)),
            "npv": pick(lambda n, tp, ref, rat, tn: (tn, n - rat))}


def _spread(values: dict[str, dict]) -> dict:
    out = {}
    for m in _SPREAD_METRICS:
        vals = {r: v[m]["estimate"] for r, v in values.items()}
        ok = [x for x in vals.values() if x is not None]
        out[m] = {"min": min(ok) if ok else None, "median": float(np.median(ok)) if ok else None,
                  "max": max(ok) if ok else None, "n_readers": len(ok), "by_reader": vals}
    return out


def _boot_slice(stats: dict[str, np.ndarray], j: int) -> dict[str, np.ndarray]:
    return {k: v[:, j] for k, v in stats.items()}


# =========================================================================== inter-reader
def _fleiss_design(data: _Data, readers: list[str]) -> tuple[list[str], np.ndarray] | None:
    """Reader set and the cases they all read, maximising the number of readings used."""
    if len(readers) < 2:
        return None
    n = len(data.case_ids)
    member = np.zeros((n, len(readers)), dtype=bool)
    for j, r in enumerate(readers):
        member[data.raters[r].cases, j] = True
    patterns, counts = np.unique(member[member.sum(axis=1) >= 2], axis=0, return_counts=True)
    best = None
    for p in patterns[np.argsort(-counts)][:200]:
        cover = member[:, p].all(axis=1)
        score = (int(cover.sum()) * int(p.sum()), int(p.sum()))
        if best is None or score > best[0]:
            best = (score, p, cover)
    if best is None:
        return None
    _, p, cover = best
    return [r for r, keep in zip(readers, p) if keep], np.flatnonzero(cover)


def _reading_matrix(data: _Data, readers: list[str]) -> np.ndarray:
    """Cases x readers matrix of level codes, -1 where not read."""
    m = np.full((len(data.case_ids), len(readers)), -1, dtype=np.int64)
    for j, r in enumerate(readers):
        m[data.raters[r].cases, j] = data.raters[r].codes
    return m


# =========================================================================== main entry
def evaluate_agreement(reference: pd.DataFrame, ratings: pd.DataFrame, *, levels: Sequence[str],
                       patient_of: Mapping[Any, Any] | pd.Series | None = None,
                       covariates: pd.DataFrame | None = None, subgroups: Sequence[str] = (),
                       confidence: float = 0.95, n_bootstrap: int = 2000, seed: int = 20261121,
                       binomial_interval: str = "wilson", unit: str = "image") -> dict:
    """Agreement of every rater with the reference grade, between readers, and model vs readers.

    Parameters
    ----------
    reference : DataFrame
        ``case_id`` (unique), ``grade`` (a level; none missing).
    ratings : DataFrame
        ``rater_id``, ``case_id``, ``grade`` (a level, or missing = a missing reading,
        counted in ``n_missing``), ``rater_kind`` (``model`` | ``reader``; default reader),
        ``reader_group`` (None or "" for models and ungrouped readers). Raters need not rate every
        case (partially crossed designs); each is evaluated on the cases it graded.
    levels : sequence of str
        Protocol levels, least to most severe; every table has all of them.
    patient_of : mapping case_id -> patient_id, optional
        Bootstrap resampling unit; ``None`` = every case its own patient.
    covariates : DataFrame, optional
        ``case_id`` + the ``subgroups`` columns.
    subgroups : sequence of str
        Covariate columns; per value, every rater's summary on the cases of that value
        (missing values form the subgroup ``"missing"``).
    confidence : float
    n_bootstrap : int
        Patient-bootstrap replicates (shared by all raters: paired).
    seed : int
    binomial_interval : {"wilson", "clopper_pearson"}
        Interval of the proportions when ``unit`` is ``"image"``.
    unit : {"image", "patient"}
        Unit of analysis of the main intervals of every single rater and of the
        model-versus-reader comparisons. ``"image"``: Wilson (or Clopper-Pearson) and
        Wald-ASE, exact McNemar (images independent); ``"patient"``: the clustered ratio
        estimator, clustered kappa and clustered McNemar of :mod:`study.metrics.clustered`
        (valid when a patient contributes several images; needs ``patient_of``). The
        protocol's default (``statistics.unit``) is ``"patient"`` whenever patient ids exist.

    Returns
    -------
    dict
        JSON-able: ``levels``, ``settings``, ``raters``, ``groups``, ``inter_reader``,
        ``comparisons``, ``subgroups``, ``subgroups_n_cases`` (keys: the module docstring).

    Raises
    ------
    StudyError
        A grade outside ``levels``, a duplicated case or reading, a rating of a case not in the
        reference, an inconsistent rater kind/group, a case without patient, or a missing
        subgroup column (all problems listed).
    """
    if binomial_interval not in ("wilson", "clopper_pearson"):
        raise StudyError(Problem("binomial_interval", "", f"must be wilson or clopper_pearson, got {binomial_interval!r}"))
    if not 0 < confidence < 1:
        raise StudyError(Problem("confidence", "", f"must be in (0, 1), got {confidence!r}"))
    if int(n_bootstrap) < 1:
        raise StudyError(Problem("n_bootstrap", "", f"must be >= 1, got {n_bootstrap!r}"))
    if unit not in ("image", "patient"):
        raise StudyError(Problem("unit", "", f"must be patient or image, got {unit!r}"))
    if unit == "patient" and patient_of is None:
        raise StudyError(Problem("unit", "patient", "the patient as unit of analysis needs each case's patient "
                                 "(patient_of / the manifest's patient_id)"))
    data = _prepare(reference, ratings, levels=levels, patient_of=patient_of)
    data.unit = unit
    cov = None
    if subgroups:
        if covariates is None:
            raise StudyError(Problem("covariates", "", f"subgroups {list(subgroups)} need a covariates table"))
        miss = [c for c in ["case_id", *subgroups] if c not in covariates.columns]
        if miss:
            raise StudyError(Problem("covariates", ", ".join(miss), "column(s) missing for the subgroup analyses"))
        cov = covariates.drop_duplicates("case_id").set_index("case_id").reindex(pd.Index(data.case_ids))
    out = _evaluate(data, confidence=confidence, n_bootstrap=int(n_bootstrap), seed=seed,
                    binomial=binomial_interval, full=True)
    out["subgroups"] = {}
    for col in subgroups:
        vals = cov[col].map(_subgroup_key)  # type: ignore[index]
        res = {}
        for v in sorted(vals.unique(), key=str):
            mask = (vals == v).to_numpy()
            sub = _subset(data, mask)
            r = _evaluate(sub, confidence=confidence, n_bootstrap=int(n_bootstrap), seed=seed,
                          binomial=binomial_interval, full=False)
            res[v] = r["raters"]
        out["subgroups"][col] = res
    out["subgroups_n_cases"] = {col: {v: int((cov[col].map(_subgroup_key) == v).sum())  # type: ignore[index]
                                      for v in out["subgroups"][col]} for col in subgroups}
    return out


def _subgroup_key(v: Any) -> str:
    if _is_missing(v):
        return "missing"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _subset(data: _Data, mask: np.ndarray) -> _Data:
    keep = np.flatnonzero(mask)
    new_pos = np.full(len(mask), -1, dtype=np.int64)
    new_pos[keep] = np.arange(len(keep))
    pcodes, puniq = pd.factorize(data.patient[keep])
    sub = _Data(data.levels, data.case_ids[keep], data.ref[keep], np.asarray(pcodes), len(puniq),
                bootstrap_unit=data.bootstrap_unit, unit=data.unit)
    for rid, r in data.raters.items():
        m = mask[r.cases]
        sub.raters[rid] = _Rater(rid, r.kind, r.group, new_pos[r.cases[m]], r.codes[m], r.n_missing)
    return sub


def _evaluate(data: _Data, *, confidence: float, n_bootstrap: int, seed: int, binomial: str, full: bool) -> dict:
    design = _Design(data)
    ref = data.ref
    raters = data.raters
    models = [r for r in raters if raters[r].kind == "model"]
    readers = [r for r in raters if raters[r].kind == "reader"]
    groups: dict[str, list[str]] = {}
    for r in readers:
        if raters[r].group is not None:
            groups.setdefault(raters[r].group, []).append(r)

    for rid, r in raters.items():
        design.block(("rater", rid), r.cases, ref[r.cases], r.codes)

    # model vs reader on shared cases
    pairs = []
    if full:
        for m in models:
            for r in readers:
                cm, cr = raters[m], raters[r]
                shared, im, ir = np.intersect1d(cm.cases, cr.cases, assume_unique=True, return_indices=True)
                km = ("rater", m) if len(shared) == len(cm.cases) else ("on", m, r)
                kr = ("rater", r) if len(shared) == len(cr.cases) else ("on", r, m)
                jm = design.block(km, shared, ref[shared], cm.codes[im])
                jr = design.block(kr, shared, ref[shared], cr.codes[ir])
                pairs.append((m, r, shared, cm.codes[im], cr.codes[ir], jm, jr))
        # reader pairs
        reader_pairs = []
        for a_i, a in enumerate(readers):
            for b in readers[a_i + 1:]:
                ca, cb = raters[a], raters[b]
                shared, ia, ib = np.intersect1d(ca.cases, cb.cases, assume_unique=True, return_indices=True)
                j = design.block(("pair", a, b), shared, ca.codes[ia], cb.codes[ib])
                reader_pairs.append((a, b, len(shared), j))
        # Fleiss and Krippendorff features
        k = len(data.levels)
        fleiss = _fleiss_design(data, readers)
        if fleiss is not None:
            fl_readers, fl_cases = fleiss
            mat = _reading_matrix(data, fl_readers)[fl_cases]
            nij = np.stack([(mat == j).sum(axis=1) for j in range(k)], axis=1).astype(float)
            design.extra("fleiss", fl_cases, np.column_stack([nij, (nij ** 2).sum(axis=1), np.ones(len(fl_cases))]))
        if len(readers) >= 2:
            mat = _reading_matrix(data, readers)
            nuc = np.stack([(mat == j).sum(axis=1) for j in range(k)], axis=1).astype(float)
            mu = nuc.sum(axis=1)
            pairable = np.flatnonzero(mu >= 2)
            nu = nuc[pairable]
            o = (nu[:, :, None] * nu[:, None, :] - nu[:, :, None] * np.eye(k)[None]) / (mu[pairable] - 1)[:, None, None]
            design.extra("krippendorff", pairable, o.reshape(len(pairable), k * k))

    design.run(n_replicates=n_bootstrap, seed=seed)
    ctx = _Ctx(data, design, confidence=confidence, n_bootstrap=n_bootstrap, binomial=binomial)
    bs = design.boot_stats

    out: dict[str, Any] = {"levels": list(data.levels)}
    if full:
        out["settings"] = {"confidence": confidence, "n_bootstrap": n_bootstrap, "seed": seed,
                           "binomial_interval": binomial, "bootstrap_unit": data.bootstrap_unit,
                           "unit": data.unit,
                           "n_cases": len(data.case_ids), "n_patients": int(data.n_patients),
                           "reference_distribution": dict(zip(data.levels, np.bincount(ref, minlength=len(data.levels)).tolist()))}
    out["raters"] = {}
    for rid, r in raters.items():
        j = design.blocks[("rater", rid)]
        s = _rater_summary(ctx, design.block_tables[j], _boot_slice(bs, j), analytic=True, block=j)
        out["raters"][rid] = {"kind": r.kind, "group": r.group, "n_missing": r.n_missing,
                              "n_patients": len(np.unique(data.patient[r.cases])), **s}
    if not full:
        return out

    # groups: pooled tables, patient bootstrap as the main interval
    out["groups"] = {}
    for g, members in sorted(groups.items()):
        idx = [design.blocks[("rater", r)] for r in members]
        table = sum(design.block_tables[j] for j in idx)
        boot = table_stats(design.boot_tables[:, idx].sum(axis=1))
        s = _rater_summary(ctx, table, boot, analytic=False)
        cases = np.unique(np.concatenate([raters[r].cases for r in members]))
        s["n_readings"] = s.pop("n_cases")
        s["n_cases"] = len(cases)
        s["readers"] = sorted(members)
        s["spread"] = _spread({r: out["raters"][r] for r in members})
        s["note"] = ("readings of all the group's readers pooled; intervals resample patients, "
                     "so several readers' readings of one case stay together")
        out["groups"][g] = s

    out["inter_reader"] = _inter_reader(ctx, readers, reader_pairs, fleiss)
    out["comparisons"] = _comparisons(ctx, pairs, groups)
    return out


def _inter_reader(ctx: _Ctx, readers: list[str], reader_pairs, fleiss) -> dict:
    design, data = ctx.design, ctx.data
    res: dict[str, Any] = {"readers": readers,
                           "note": "readers only (models are compared with the reference and with readers)"}
    n = len(readers)
    n_shared = [[None] * n for _ in range(n)]
    mats = {name: [[None] * n for _ in range(n)] for name in _WEIGHTS}
    pair_list = []
    pos = {r: i for i, r in enumerate(readers)}
    for i, r in enumerate(readers):
        n_shared[i][i] = len(data.raters[r].cases)
    for a, b, n_ab, j in reader_pairs:
        t = design.block_tables[j]
        entry = {"reader_a": a, "reader_b": b, "n_cases": int(n_ab)}
        for name, w in _WEIGHTS.items():
            e = _with_boot(cohen_kappa(t, weights=w, confidence=ctx.confidence),
                           ctx.boot_sub(design.obs_stats[name][j], design.boot_stats[name][:, j]))
            entry[name] = e
            mats[name][pos[a]][pos[b]] = mats[name][pos[b]][pos[a]] = e
        n_shared[pos[a]][pos[b]] = n_shared[pos[b]][pos[a]] = int(n_ab)
        pair_list.append(entry)
    res["pairwise"] = {"readers": readers, "n_shared": n_shared, **mats, "pairs": pair_list,
                       "rows_columns": "readers in the order of 'readers'; diagonal n_shared = cases read"}
    boot_name = bootstrap_method_name(ctx.B, ctx.confidence, unit=ctx.unit)
    if fleiss is None:
        res["fleiss"] = {"kappa": undefined(boot_name, "fewer than two readers read a common case").to_dict(),
                         "readers": [], "n_cases": 0, "case_ids": []}
    else:
        fl_readers, fl_cases = fleiss
        a, b = design.extras["fleiss"]
        m = len(fl_readers)
        point = fleiss_kappa_from_sums(design.observed_extras[a:b], m)
        boot = fleiss_kappa_from_sums(design.boot_extras[:, a:b], m)
        e = (ctx.boot(point, boot).to_dict() if np.isfinite(point) else
             undefined(boot_name, "chance agreement is 1: kappa is undefined").to_dict())
        res["fleiss"] = {"kappa": e, "readers": fl_readers, "n_cases": len(fl_cases),
                         "case_ids": data.case_ids[fl_cases].tolist(),
                         "selection": "the reader set and the cases they all read that use the most readings"}
    if "krippendorff" in design.extras:
        a, b = design.extras["krippendorff"]
        k = len(data.levels)
        point = krippendorff_ordinal_from_coincidences(design.observed_extras[a:b].reshape(k, k))
        boot = krippendorff_ordinal_from_coincidences(design.boot_extras[:, a:b].reshape(-1, k, k))
        n_pairable = int(np.count_nonzero(
            np.bincount(np.concatenate([data.raters[r].cases for r in readers]), minlength=len(data.case_ids)) >= 2))
        e = (ctx.boot(point, boot).to_dict() if np.isfinite(point) else
             undefined(boot_name, "no case read by two readers, or no variation in the readings").to_dict())
        res["krippendorff_alpha_ordinal"] = {"alpha": e, "readers": readers, "n_cases": n_pairable,
                                             "note": "all readings of cases read by at least two readers"}
    else:
        res["krippendorff_alpha_ordinal"] = {"alpha": undefined(boot_name, "fewer than two readers").to_dict(),
                                             "readers": readers, "n_cases": 0}
    return res


def _mcnemar(model_ok: np.ndarray, reader_ok: np.ndarray, patient: np.ndarray | None = None) -> dict:
    """McNemar test of model versus reader: exact (images independent) or, with ``patient``
    codes, the clustered test of Durkalski et al. (2003)."""
    from statsmodels.stats.contingency_tables import mcnemar

    both = int((model_ok & reader_ok).sum())
    m_only = int((model_ok & ~reader_ok).sum())
    r_only = int((~model_ok & reader_ok).sum())
    neither = int((~model_ok & ~reader_ok).sum())
    counts = {"both_correct": both, "model_only_correct": m_only, "reader_only_correct": r_only, "both_wrong": neither}
    if patient is not None:
        codes = np.unique(patient, return_inverse=True)[1]
        stat, p_cl = clustered_mcnemar(np.bincount(codes, weights=model_ok & ~reader_ok),
                                       np.bincount(codes, weights=~model_ok & reader_ok))
        out = {"p_value": p_cl, "statistic": stat, "method": MCNEMAR_METHOD, **counts,
               "n_patients": int(codes.max()) + 1 if len(codes) else 0}
        if p_cl is None:
            out["reason"] = "every patient's discordant images cancel: the clustered test is undefined"
        return out
    p = 1.0 if m_only + r_only == 0 else float(mcnemar([[both, m_only], [r_only, neither]], exact=True).pvalue)
    return {"p_value": p, "method": _MCNEMAR_METHOD, **counts, "note": "treats cases as independent pairs"}


def _comparisons(ctx: _Ctx, pairs, groups: dict[str, list[str]]) -> list[dict]:
    design, data = ctx.design, ctx.data
    obs, bs = design.obs_stats, design.boot_stats
    out = []
    by_model: dict[str, dict[str, tuple]] = {}
    for m, r, shared, cm, cr, jm, jr in pairs:
        by_model.setdefault(m, {})[r] = (jm, jr, len(shared))
        if len(shared) == 0:
            out.append({"model": m, "versus": r, "versus_kind": "reader", "n_cases": 0,
                        "reason": "no case graded by both"})
            continue
        ref = data.ref[shared]
        entry = {"model": m, "versus": r, "versus_kind": "reader", "n_cases": len(shared),
                 "n_patients": len(np.unique(data.patient[shared]))}
        for who, codes, j in (("model", cm, jm), ("versus", cr, jr)):
            if ctx.clustered:
                pt = ctx.patient_tables(j)
                entry[f"{who}_accuracy"] = clustered_proportion(
                    np.trace(pt, axis1=1, axis2=2), pt.sum(axis=(1, 2)), confidence=ctx.confidence).to_dict()
                entry[f"{who}_kappa_quadratic"] = clustered_kappa(pt, weights="quadratic",
                                                                  confidence=ctx.confidence).to_dict()
            else:
                entry[f"{who}_accuracy"] = binomial_ci(int((codes == ref).sum()), len(shared),
                                                       confidence=ctx.confidence, method=ctx.binomial).to_dict()
                entry[f"{who}_kappa_quadratic"] = cohen_kappa(design.block_tables[j], weights="quadratic",
                                                              confidence=ctx.confidence).to_dict()
        for stat, key in (("accuracy", "accuracy_difference"), ("kappa_quadratic", "kappa_quadratic_difference")):
            entry[key] = ctx.boot(obs[stat][jm] - obs[stat][jr], bs[stat][:, jm] - bs[stat][:, jr]).to_dict()
            entry[key]["definition"] = "model minus reader, same cases"
        entry["mcnemar"] = _mcnemar(cm == ref, cr == ref, data.patient[shared] if ctx.clustered else None)
        out.append(entry)
    for m, per_reader in by_model.items():
        for g, members in sorted(groups.items()):
            use = [r for r in members if per_reader[r][2] > 0]
            entry = {"model": m, "versus": g, "versus_kind": "group", "readers": sorted(use),
                     "n_cases": int(sum(per_reader[r][2] for r in use))}
            if not use:
                entry["reason"] = "no case graded by the model and a reader of the group"
                out.append(entry)
                continue
            jm = [per_reader[r][0] for r in use]
            jr = [per_reader[r][1] for r in use]
            for stat, key in (("accuracy", "accuracy"), ("kappa_quadratic", "kappa_quadratic")):
                mo, ro = obs[stat][jm].mean(), obs[stat][jr].mean()
                mb, rb = bs[stat][:, jm].mean(axis=1), bs[stat][:, jr].mean(axis=1)
                entry[f"model_{key}"] = ctx.boot(mo, mb).to_dict()
                entry[f"versus_{key}"] = ctx.boot(ro, rb).to_dict()
                d = ctx.boot(mo - ro, mb - rb).to_dict()
                d["definition"] = ("mean over the group's readers of (model minus reader) on each reader's "
                                   "cases graded by both")
                entry[f"{key}_difference"] = d
            entry["mcnemar"] = {"p_value": None, "method": _MCNEMAR_METHOD,
                                "reason": "several readers' readings of one case are not independent pairs; "
                                          "use the bootstrap interval of the difference"}
            out.append(entry)
    return out
