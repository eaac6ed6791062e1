"""Lesion counting: predicted minus reference count per case, at several score thresholds.

For each score threshold ``t`` (default 0.25, 0.5, 0.75, as the ACNE04 study, Wu et al.
ICCV 2019, Tables 2 and 3) the model's count of a case is its number of detections with
score >= t. With ``d = predicted - true`` over cases:

- ``mean_bias`` = mean(d), with a t-interval (Student) -- or, when the unit of analysis is the
  patient (``statistics.unit``) and patients are known, the cluster-robust (CR1) t interval
  of :func:`study.metrics.clustered.clustered_mean` (a patient's images are one cluster);
- ``sd`` = SD(d) (n - 1), with the chi-square interval (normal theory);
- ``mae`` = mean |d| and ``rmse`` = sqrt(mean d^2), with percentile bootstrap intervals
  resampling patients (each case its own patient when no mapping is given);
- ``ccc``: Lin's concordance correlation coefficient (Lin 1989, Biometrics 45:255-268;
  moments with denominator n) with Lin's interval on Fisher's z scale (Lin 1989, eq. for
  the asymptotic variance of z; the method of DescTools::CCC ``ci="z-transform"``);

overall, by reference severity group and by class. Also per threshold: the points of the
scatter of predicted against true totals, least-squares lines (all cases, and without the
most severe group, as the ACNE04 study's figure), and Bland-Altman limits of agreement
(Bland & Altman 1986, Lancet i:307-310: bias +/- 1.96 SD, each limit with the approximate
interval ``t_{n-1} * sqrt(3 SD^2 / n)``).

When the unit of analysis is the patient (``statistics.unit``; patients known), MAE, RMSE,
CCC and the Bland-Altman limits get patient bootstrap-t intervals instead
(:func:`study.metrics.clustered_counting.patient_bootstrap_counting`), and the mean bias the
cluster-robust t interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats as st

from study.errors import Problem, raise_if
from study.estimate import Estimate
from study.metrics.bootstrap import bootstrap_estimate, resampling_weights
from study.metrics.clustered import clustered_mean
from study.metrics.clustered_counting import patient_bootstrap_counting
from study.metrics.intervals import level_pct
from study.options import CountingOptions
from study.results.counting import (
    BlandAltman,
    ClassPoints,
    CountError,
    CountingDefinitions,
    CountingInputs,
    CountingPoints,
    CountingResult,
    LineFit,
    ThresholdCounting,
)


# --------------------------------------------------------------------------- formulas
def lin_ccc(x: np.ndarray, y: np.ndarray, *, confidence: float = 0.95) -> Estimate:
    """Lin's concordance correlation coefficient with its Fisher-z interval (Lin 1989).

    ``ccc = 2 s_xy / (s_x^2 + s_y^2 + (mean_x - mean_y)^2)`` with moments divided by n.
    With ``r`` the Pearson correlation and ``u = (mean_x - mean_y) / sqrt(s_x s_y)``,
    ``var(z) = 1/(n-2) [ (1-r^2) ccc^2 / ((1-ccc^2) r^2) + 2 ccc^3 (1-ccc) u^2 / (r (1-ccc^2)^2)
    - ccc^4 u^4 / (2 r^2 (1-ccc^2)^2) ]``, ``z = atanh(ccc)``; the interval is
    ``tanh(z -/+ z_{1-a/2} sqrt(var z))``.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n = len(x)
    method = f"Fisher z-transform, asymptotic variance of Lin (1989), {level_pct(confidence)}"
    if n < 3:
        return Estimate(None, None, None, method, reason="fewer than 3 cases")
    mx, my = x.mean(), y.mean()
    sx2, sy2 = x.var(), y.var()
    sxy = ((x - mx) * (y - my)).mean()
    den = sx2 + sy2 + (mx - my) ** 2
    if den == 0:
        return Estimate(None, None, None, method, reason="no variation and no difference")
    ccc = 2 * sxy / den
    if sx2 == 0 or sy2 == 0 or abs(ccc) >= 1:
        return Estimate(ccc, None, None, method, reason="interval undefined (zero variance or |ccc| = 1)")
    r = sxy / np.sqrt(sx2 * sy2)
    u = (mx - my) / np.sqrt(np.sqrt(sx2 * sy2))
    var_z = ((1 - r ** 2) * ccc ** 2 / ((1 - ccc ** 2) * r ** 2)
             + 2 * ccc ** 3 * (1 - ccc) * u ** 2 / (r * (1 - ccc ** 2) ** 2)
             - ccc ** 4 * u ** 4 / (2 * r ** 2 * (1 - ccc ** 2) ** 2)) / (n - 2)
    se = float(np.sqrt(var_z))
    z = np.arctanh(ccc)
    q = st.norm.ppf(1 - (1 - confidence) / 2)
    return Estimate(float(ccc), float(np.tanh(z - q * se)), float(np.tanh(z + q * se)), method, se_z=se)


def mean_t_interval(d: np.ndarray, *, confidence: float = 0.95) -> Estimate:
    """Mean with the Student t interval ``mean +/- t_{n-1} s / sqrt(n)``."""
    d = np.asarray(d, float)
    n = len(d)
    method = f"Student t, {level_pct(confidence)}"
    if n == 0:
        return Estimate(None, None, None, method, reason="no cases")
    m = float(d.mean())
    if n < 2:
        return Estimate(m, None, None, method, reason="one case")
    se = float(d.std(ddof=1) / np.sqrt(n))
    q = st.t.ppf(1 - (1 - confidence) / 2, n - 1)
    return Estimate(m, m - q * se, m + q * se, method, se=se)


def sd_chi2_interval(d: np.ndarray, *, confidence: float = 0.95) -> Estimate:
    """SD (n - 1) with the chi-square interval ``s sqrt((n-1)/chi2_{1-a/2})`` .. ``s sqrt((n-1)/chi2_{a/2})``."""
    d = np.asarray(d, float)
    n = len(d)
    method = f"chi-square (normal theory), {level_pct(confidence)}"
    if n < 2:
        return Estimate(None, None, None, method, reason="fewer than 2 cases")
    s = float(d.std(ddof=1))
    a = 1 - confidence
    lo = s * np.sqrt((n - 1) / st.chi2.ppf(1 - a / 2, n - 1))
    hi = s * np.sqrt((n - 1) / st.chi2.ppf(a / 2, n - 1))
    return Estimate(s, float(lo), float(hi), method)


def bland_altman(true: np.ndarray, pred: np.ndarray, *, confidence: float = 0.95) -> BlandAltman:
    """Bland-Altman bias and 95% limits of agreement of ``pred - true``.

    Limits ``bias -/+ 1.96 SD``, each with the approximate interval ``limit -/+ t_{n-1}
    sqrt(3 SD^2 / n)`` (Bland & Altman 1986, Lancet i:307-310).
    """
    d = np.asarray(pred, float) - np.asarray(true, float)
    n = len(d)
    if n < 2:
        return BlandAltman(n=n, bias=None, sd=None, loa_low=None, loa_high=None)
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    q = st.t.ppf(1 - (1 - confidence) / 2, n - 1)
    se_limit = np.sqrt(3 * sd ** 2 / n)
    method = f"Bland-Altman (1986) approximate SE sqrt(3 s^2 / n), Student t, {level_pct(confidence)}"
    lo, hi = bias - 1.96 * sd, bias + 1.96 * sd
    return BlandAltman(n=n, bias=bias, sd=sd,
                       loa_low=Estimate(lo, lo - q * se_limit, lo + q * se_limit, method),
                       loa_high=Estimate(hi, hi - q * se_limit, hi + q * se_limit, method),
                       plot="x = (true + predicted) / 2, y = predicted - true, from points")


def fit_line(true: np.ndarray, pred: np.ndarray) -> LineFit:
    """Least-squares line ``pred = intercept + slope * true`` with Pearson r (scipy linregress)."""
    x, y = np.asarray(true, float), np.asarray(pred, float)
    if len(x) < 3 or np.ptp(x) == 0:
        return LineFit(n=len(x), slope=None, intercept=None, r=None)
    lr = st.linregress(x, y)
    return LineFit(n=len(x), slope=float(lr.slope), intercept=float(lr.intercept), r=float(lr.rvalue))


# --------------------------------------------------------------------------- tables
def counts_from_coco(gt: dict, *, classes: Sequence[str] | None = None,
                     image_ids: Sequence[int] | None = None) -> pd.DataFrame:
    """Reference counts per image from COCO ground truth: ``case_id`` + ``count_<class>``.

    ``case_id`` is the image's ``case_id`` when present, else its id as text; crowd regions
    are not lesions and are not counted.
    """
    cats = {c["id"]: c["name"] for c in gt["categories"]}
    classes = list(classes) if classes is not None else [cats[k] for k in sorted(cats)]
    wanted = None if image_ids is None else set(image_ids)
    imgs = [im for im in gt["images"] if wanted is None or im["id"] in wanted]
    ids = np.array([im["id"] for im in imgs], np.int64)
    order = np.argsort(ids)
    anns = [a for a in gt["annotations"] if not a.get("iscrowd", 0)]
    a_img = np.fromiter((a["image_id"] for a in anns), np.int64, len(anns))
    lut = {cid: classes.index(name) for cid, name in cats.items() if name in classes}
    a_cls = np.fromiter((lut.get(a["category_id"], -1) for a in anns), np.int64, len(anns))
    pos = np.clip(np.searchsorted(ids[order], a_img), 0, max(len(ids) - 1, 0))
    ok = (a_cls >= 0) & (len(ids) > 0) & (ids[order][pos] == a_img if len(ids) else False)
    row = order[pos[ok]]
    m = np.bincount(row * len(classes) + a_cls[ok], minlength=len(imgs) * len(classes)).reshape(len(imgs), len(classes))
    df = pd.DataFrame(m, columns=[f"count_{c}" for c in classes])
    df.insert(0, "case_id", [str(im.get("case_id", im["id"])) for im in imgs])
    return df


def detections_frame(gt: dict, dets: list[dict]) -> pd.DataFrame:
    """COCO results -> ``case_id, class, score`` (class names and case ids from the ground truth).

    ``case_id`` and ``class`` are categorical columns (cheap for hundreds of thousands of rows).
    """
    cat_ids = np.array([c["id"] for c in gt["categories"]], np.int64)
    cat_names = [c["name"] for c in gt["categories"]]
    img_ids = np.array([im["id"] for im in gt["images"]], np.int64)
    case_names = [str(im.get("case_id", im["id"])) for im in gt["images"]]

    def codes(ids: np.ndarray, keys: np.ndarray) -> np.ndarray:
        o = np.argsort(keys)
        p_ = np.clip(np.searchsorted(keys[o], ids), 0, max(len(keys) - 1, 0))
        return np.where(keys[o][p_] == ids, o[p_], -1) if len(keys) else np.full(len(ids), -1)

    di = np.array([d["image_id"] for d in dets], np.int64).reshape(-1)
    dc = np.array([d["category_id"] for d in dets], np.int64).reshape(-1)
    if len(set(case_names)) == len(case_names):
        case_col = pd.Categorical.from_codes(codes(di, img_ids), categories=case_names)
    else:  # several images share a case id: plain text column
        case_col = np.array(case_names, dtype=object)[codes(di, img_ids)]
    return pd.DataFrame({
        "case_id": case_col,
        "class": pd.Categorical.from_codes(codes(dc, cat_ids), categories=cat_names),
        "score": np.array([d["score"] for d in dets], float).reshape(-1)})


def _codes(values: pd.Series, labels: Sequence[str]) -> np.ndarray:
    """Position of each value (as text) in ``labels``; -1 when absent. Fast for categoricals."""
    index = pd.Index([str(x) for x in labels])
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat_pos = index.get_indexer(pd.Index(values.cat.categories).astype(str))
        c = values.cat.codes.to_numpy()
        return np.where(c >= 0, cat_pos[np.maximum(c, 0)], -1)
    return index.get_indexer(values.astype(str))


# --------------------------------------------------------------------------- main
def _validate(true_counts: pd.DataFrame, detections: pd.DataFrame, classes: Sequence[str],
              severity: pd.Series | None, levels: Sequence[str] | None,
              patient_of: Mapping[str, Any] | None) -> list[Problem]:
    """Every problem of the inputs at once (columns, counts, scores, classes, grades, patients)."""
    p: list[Problem] = []
    if "case_id" not in true_counts.columns:
        p.append(Problem("true counts", "case_id", "column missing"))
    for c in classes:
        col = f"count_{c}"
        if col not in true_counts.columns:
            p.append(Problem("true counts", col, f"column missing (one count_<class> per class of {list(classes)})"))
            continue
        v = pd.to_numeric(true_counts[col], errors="coerce")
        bad = np.flatnonzero(~(np.isfinite(v.to_numpy(float)) & (v.to_numpy(float) >= 0)
                               & (np.mod(v.fillna(-1).to_numpy(float), 1) == 0)))
        for i in bad[:20]:
            p.append(Problem("true counts", f"row {i + 1}, {col}",
                             f"expected a whole number >= 0, got {true_counts[col].iloc[i]!r}"))
    if "case_id" in true_counts.columns:
        dup = true_counts["case_id"].astype(str).duplicated()
        for i in np.flatnonzero(dup.to_numpy())[:20]:
            p.append(Problem("true counts", f"row {i + 1}, case_id", f"duplicate case_id {true_counts['case_id'].iloc[i]!r}"))
    for col in ("case_id", "class", "score"):
        if col not in detections.columns:
            p.append(Problem("detections", col, "column missing"))
    if not p:
        sc = pd.to_numeric(detections["score"], errors="coerce").to_numpy(float)
        for i in np.flatnonzero(~np.isfinite(sc))[:20]:
            p.append(Problem("detections", f"row {i + 1}, score", f"expected a finite number, got {detections['score'].iloc[i]!r}"))
        cl = _codes(detections["class"], classes)
        unknown = sorted({str(x) for x in detections["class"][cl < 0].unique()})
        if unknown:
            p.append(Problem("detections", "class", f"classes {unknown} are not among {list(classes)}"))
    if severity is not None and not p:
        sev = pd.Series(severity)
        sev.index = sev.index.astype(str)
        ids = true_counts["case_id"].astype(str)
        missing = [c for c in ids if c not in sev.index]
        if missing:
            p.append(Problem("severity", "case_id", f"no reference grade for cases {missing[:10]}"))
        elif levels is not None:
            foreign = sorted(set(sev.loc[ids].astype(str)) - set(levels))
            if foreign:
                p.append(Problem("severity", "grade", f"grades {foreign} are not among the levels {list(levels)}"))
    if patient_of is not None and "case_id" in true_counts.columns:
        missing = [c for c in true_counts["case_id"].astype(str) if c not in patient_of]
        if missing:
            p.append(Problem("patient_of", "case_id", f"no patient for cases {missing[:10]}"))
    return p


def evaluate_counting(true_counts: pd.DataFrame, detections: pd.DataFrame, *, options: CountingOptions,
                      severity: pd.Series | None = None,
                      patient_of: Mapping[str, Any] | None = None) -> CountingResult:
    """Counting error of a model against reference counts, per score threshold.

    Parameters
    ----------
    true_counts : DataFrame
        ``case_id`` + ``count_<class>`` for every class: the evaluated cases (one row each).
    detections : DataFrame
        ``case_id, class, score``; detections of cases not in ``true_counts`` are not counted
        (their number is reported under ``inputs``).
    options : CountingOptions
        ``classes`` (counted; the total is their sum), score ``thresholds`` (a detection
        counts at ``t`` when ``score >= t``), ``levels`` (orders the reference grades, the
        last is the most severe; default: the sorted grades) and ``statistics``
        (confidence level, bootstrap replicates and seed). Built once by
        :meth:`CountingOptions.from_protocol`; its types hold the range rules.
    severity : Series, optional
        Reference grade per ``case_id`` (for ``by_severity`` and the line without the most
        severe group).
    patient_of : mapping case_id -> patient, optional
        Bootstrap unit for MAE and RMSE (default: each case).

    Returns
    -------
    CountingResult
        ``thresholds.<t>`` (:class:`~study.results.counting.ThresholdCounting`: ``overall``,
        ``by_severity.<level>``, ``by_class.<class>``, ``lines`` and ``bland_altman``),
        ``points`` (per case, with ``by_class``), ``classes``, ``levels``, ``inputs``,
        ``definitions``. The formulas and their sources are in the module docstring.
    """
    classes = list(options.classes)
    thresholds = [float(t) for t in options.thresholds]
    stats = options.statistics
    levels = list(options.levels) if options.levels is not None else None
    if severity is not None and levels is None:
        levels = sorted(pd.Series(severity).astype(str).unique())
    raise_if(_validate(true_counts, detections, classes, severity, levels, patient_of))

    case_ids = true_counts["case_id"].astype(str).to_numpy()
    n = len(case_ids)
    k = len(classes)
    true_cls = true_counts[[f"count_{c}" for c in classes]].to_numpy(float)  # n x K
    true_tot = true_cls.sum(axis=1)
    ci = _codes(detections["case_id"], case_ids)
    cl = _codes(detections["class"], classes)
    sc = pd.to_numeric(detections["score"]).to_numpy(float)
    inside = ci >= 0
    ci, cl, sc = ci[inside], cl[inside], sc[inside]
    pred_cls = np.stack([np.bincount(ci * k + cl, weights=(sc >= t), minlength=n * k).reshape(n, k)
                         for t in thresholds])  # T x n x K
    pred_tot = pred_cls.sum(axis=2)  # T x n

    sev = None
    if severity is not None:
        s = pd.Series(severity)
        s.index = s.index.astype(str)
        sev = s.loc[case_ids].astype(str).to_numpy()
    unit: Literal["cases", "patients"]
    if patient_of is None:
        patient = np.arange(n)
        n_pat = n
        unit = "cases"
    else:
        labels = np.array([str(patient_of[c]) for c in case_ids])
        _, patient = np.unique(labels, return_inverse=True)
        n_pat = int(patient.max()) + 1 if n else 0
        unit = "patients"

    # subsets: (kind, key, case mask, true x over n, predicted y over T x n)
    subsets: list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]] = []
    all_mask = np.ones(n, bool)
    subsets.append(("overall", "", all_mask, true_tot, pred_tot))
    if sev is not None and levels is not None:
        for lv in levels:
            subsets.append(("by_severity", lv, sev == lv, true_tot, pred_tot))
    for j, c in enumerate(classes):
        subsets.append(("by_class", c, all_mask, true_cls[:, j], pred_cls[:, :, j]))
    clustered = stats.unit_for(patient_of is not None) == "patient" and patient_of is not None
    reps = _bootstrap_sums(subsets, patient, n_pat, len(thresholds), n_bootstrap=stats.n_bootstrap, seed=stats.seed)

    def error(ti: int, si: int) -> CountError:
        _, _, mask, x, y = subsets[si]
        xs, ys = x[mask], y[ti][mask]
        d = ys - xs
        with np.errstate(invalid="ignore", divide="ignore"):
            r_mae = reps[:, ti, si, 0] / reps[:, ti, si, 2]
            r_rmse = np.sqrt(reps[:, ti, si, 1] / reps[:, ti, si, 2])
        m = len(d)
        if clustered:
            boot = patient_bootstrap_counting(xs, ys, patient[mask], n_bootstrap=stats.n_bootstrap, seed=stats.seed,
                                              confidence=stats.confidence, statistics=("mae", "rmse", "ccc"))
            return CountError(
                n=m, mean_true=float(xs.mean()) if m else None, mean_predicted=float(ys.mean()) if m else None,
                mean_bias=clustered_mean(d, patient[mask], confidence=stats.confidence, what="mean bias"),
                sd=sd_chi2_interval(d, confidence=stats.confidence),
                mae=boot["mae"], rmse=boot["rmse"], ccc=boot["ccc"])
        return CountError(
            n=m,
            mean_true=float(xs.mean()) if m else None,
            mean_predicted=float(ys.mean()) if m else None,
            mean_bias=mean_t_interval(d, confidence=stats.confidence),
            sd=sd_chi2_interval(d, confidence=stats.confidence),
            mae=bootstrap_estimate(float(np.abs(d).mean()) if m else None, r_mae, n_replicates=stats.n_bootstrap,
                                   confidence=stats.confidence, unit=unit),
            rmse=bootstrap_estimate(float(np.sqrt((d ** 2).mean())) if m else None, r_rmse,
                                    n_replicates=stats.n_bootstrap, confidence=stats.confidence, unit=unit),
            ccc=lin_ccc(xs, ys, confidence=stats.confidence))

    def _bland_altman(ti: int) -> BlandAltman:
        ba = bland_altman(true_tot, pred_tot[ti], confidence=stats.confidence)
        if not clustered or ba.loa_low is None:
            return ba
        boot = patient_bootstrap_counting(true_tot, pred_tot[ti], patient, n_bootstrap=stats.n_bootstrap,
                                          seed=stats.seed, confidence=stats.confidence,
                                          statistics=("loa_low", "loa_high"))
        return ba.model_copy(update={"loa_low": boot["loa_low"], "loa_high": boot["loa_high"]})

    out_t: dict[str, ThresholdCounting] = {}
    for ti, t in enumerate(thresholds):
        lines = {"all": fit_line(true_tot, pred_tot[ti])}
        if sev is not None and levels is not None:
            keep = sev != levels[-1]
            lines[f"without_{levels[-1]}"] = fit_line(true_tot[keep], pred_tot[ti][keep])
        out_t[f"{t:g}"] = ThresholdCounting(
            overall=error(ti, 0),
            by_severity={key: error(ti, si) for si, (kind, key, *_) in enumerate(subsets) if kind == "by_severity"},
            by_class={key: error(ti, si) for si, (kind, key, *_) in enumerate(subsets) if kind == "by_class"},
            lines=lines,
            bland_altman=_bland_altman(ti))

    keys = [f"{t:g}" for t in thresholds]
    return CountingResult(
        thresholds=out_t,
        classes=classes,
        levels=levels,
        points=CountingPoints(
            case_id=case_ids.tolist(), true=true_tot.tolist(), severity=sev.tolist() if sev is not None else None,
            predicted={key: pred_tot[ti].tolist() for ti, key in enumerate(keys)},
            by_class={c: ClassPoints(true=true_cls[:, j].tolist(),
                                     predicted={key: pred_cls[ti, :, j].tolist() for ti, key in enumerate(keys)})
                      for j, c in enumerate(classes)}),
        inputs=CountingInputs(n_cases=n, n_patients=n_pat, n_detections=len(detections),
                              n_detections_other_cases=int((~inside).sum())),
        definitions=CountingDefinitions(
            difference="predicted count (detections with score >= threshold) minus true count",
            bootstrap_unit=unit, bootstrap_replicates=stats.n_bootstrap, seed=stats.seed))


def _bootstrap_sums(subsets: list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]], patient: np.ndarray,
                    n_pat: int, t_count: int, *, n_bootstrap: int, seed: int) -> np.ndarray:
    """Bootstrap replicates of (sum |d|, sum d^2, n) per (threshold, subset), resampling patients.

    Returns an array ``replicates x thresholds x subsets x 3`` (no replicates without patients).
    """
    s_count = len(subsets)
    feats = np.zeros((n_pat, t_count, s_count, 3))
    for si, (_, _, mask, x, y) in enumerate(subsets):
        d = y - x[None, :]  # T x n
        w = mask.astype(float)
        for ti in range(t_count):
            feats[:, ti, si, 0] = np.bincount(patient, weights=np.abs(d[ti]) * w, minlength=n_pat)
            feats[:, ti, si, 1] = np.bincount(patient, weights=d[ti] ** 2 * w, minlength=n_pat)
            feats[:, ti, si, 2] = np.bincount(patient, weights=w, minlength=n_pat)
    flat = feats.reshape(n_pat, t_count * s_count * 3)
    if n_pat > 0:
        rng = np.random.default_rng(seed)
        flat32 = flat.astype(np.float32)  # replicate sums to float32 precision (1e-7 relative): ample for intervals
        reps = np.vstack([w @ flat32 for w in resampling_weights(n_pat, n_replicates=n_bootstrap, rng=rng)])
        reps = reps.astype(float)
    else:
        reps = np.zeros((0, flat.shape[1]))
    return reps.reshape(-1, t_count, s_count, 3)
