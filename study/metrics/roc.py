"""Figures of merit for rating data: empirical ROC, Wilcoxon AUC, binary endpoints.

Everything here works on a *matrix* of ratings (one row per reader-modality
combination, one column per case) so that the jackknife and bootstrap of a whole
multi-reader study are a handful of vectorised numpy operations.

Figures of merit (``fom``):

``wilcoxon``
    the empirical (trapezoidal) area under the ROC curve, i.e. the Mann-Whitney /
    Wilcoxon statistic ``P(Y > X) + 0.5 P(Y = X)`` (Hanley & McNeil 1982), where ``X`` is
    the rating of a case with truth 0 and ``Y`` of a case with truth 1.
``sensitivity``, ``specificity``, ``accuracy``
    binary endpoints at a cut point: a rating ``>= threshold`` calls the case positive.

References
----------
DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Comparing the areas under two or more
correlated receiver operating characteristic curves: a nonparametric approach.
Biometrics 44:837-845.
Hanley JA, McNeil BJ (1982). The meaning and use of the area under a receiver operating
characteristic (ROC) curve. Radiology 143:29-36.
Efron B (1982). The jackknife, the bootstrap and other resampling plans. SIAM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata

from study.results.mrmc import RocCurve

FOMS = ("wilcoxon", "sensitivity", "specificity", "accuracy")

FOM_DESCRIPTIONS = {
    "wilcoxon": "empirical (trapezoidal / Wilcoxon) area under the ROC curve",
    "sensitivity": "sensitivity at the cut point (rating >= threshold is positive)",
    "specificity": "specificity at the cut point (rating >= threshold is positive)",
    "accuracy": "accuracy at the cut point (rating >= threshold is positive)",
}


def _check_fom(fom: str, threshold: float | None) -> None:
    if fom not in FOMS:
        raise ValueError(f"fom must be one of {FOMS}, got {fom!r}")
    if fom != "wilcoxon" and threshold is None:
        raise ValueError(f"fom {fom!r} needs a threshold (rating >= threshold is positive)")


@dataclass(frozen=True)
class FomParts:
    """Figures of merit of a ratings matrix and their per-case structural components.

    Attributes
    ----------
    theta : ndarray, shape (M,)
        The figure of merit of each row.
    v10 : ndarray, shape (M, n1)
        Per diseased-case components (DeLong's V10 for the AUC; the case's correct call
        for the binary figures of merit).
    v01 : ndarray, shape (M, n0)
        Per non-diseased-case components (DeLong's V01; correct call).
    """

    fom: str
    theta: np.ndarray
    v10: np.ndarray
    v01: np.ndarray
    pos: np.ndarray  # column indices of truth-1 cases
    neg: np.ndarray  # column indices of truth-0 cases


def fom_parts(ratings: np.ndarray, truth: np.ndarray, *, fom: str = "wilcoxon",
              threshold: float | None = None) -> FomParts:
    """Figure of merit of every row of ``ratings`` with its per-case components.

    Parameters
    ----------
    ratings : array, shape (M, n_cases)
        One row per reader (or reader x modality); higher = more likely positive.
    truth : array of 0/1, shape (n_cases,)
    fom : {"wilcoxon", "sensitivity", "specificity", "accuracy"}
    threshold : float, optional
        Cut point for the binary figures of merit (``rating >= threshold`` is positive).

    Notes
    -----
    For the AUC, ``V10_j = (#{x < y_j} + #{x = y_j}/2) / n0`` for each diseased case ``j``
    and ``V01_i = (#{y > x_i} + #{y = x_i}/2) / n1`` for each non-diseased case ``i``
    (DeLong et al. 1988); they are computed from mid-ranks: the mid-rank of ``y_j`` among
    all cases minus its mid-rank among the diseased cases is ``#{x < y_j} + #{x = y_j}/2``.
    """
    _check_fom(fom, threshold)
    r = np.atleast_2d(np.asarray(ratings, dtype=float))
    t = np.asarray(truth).astype(int)
    pos = np.flatnonzero(t == 1)
    neg = np.flatnonzero(t == 0)
    n1, n0 = len(pos), len(neg)
    if n1 == 0 or n0 == 0:
        raise ValueError("the cases must include both truths (0 and 1)")
    if fom == "wilcoxon":
        all_ranks = rankdata(r, axis=1)
        y, x = r[:, pos], r[:, neg]
        v10 = (all_ranks[:, pos] - rankdata(y, axis=1)) / n0
        v01 = 1.0 - (all_ranks[:, neg] - rankdata(x, axis=1)) / n1
        theta = v10.mean(axis=1)
    else:
        v10 = (r[:, pos] >= threshold).astype(float)
        v01 = (r[:, neg] < threshold).astype(float)
        if fom == "sensitivity":
            theta = v10.mean(axis=1)
        elif fom == "specificity":
            theta = v01.mean(axis=1)
        else:
            theta = (v10.sum(axis=1) + v01.sum(axis=1)) / (n1 + n0)
    return FomParts(fom, theta, v10, v01, pos, neg)


def fom_matrix(ratings: np.ndarray, truth: np.ndarray, *, fom: str = "wilcoxon",
               threshold: float | None = None) -> np.ndarray:
    """Figure of merit of every row of ``ratings`` (shape ``(M,)``); see :func:`fom_parts`."""
    return fom_parts(ratings, truth, fom=fom, threshold=threshold).theta


def jackknife_foms(parts: FomParts) -> np.ndarray:
    """Leave-one-case-out figures of merit, shape ``(M, n_cases)`` in the original case order.

    Exact, in closed form from the structural components: removing non-diseased case
    ``i`` leaves the AUC ``(n0 * AUC - V01_i) / (n0 - 1)``; removing diseased case ``j``
    leaves ``(n1 * AUC - V10_j) / (n1 - 1)``; the binary figures of merit are means of the
    per-case correct calls and lose one term likewise.
    """
    th = parts.theta[:, None]
    n1, n0 = parts.v10.shape[1], parts.v01.shape[1]
    if min(n0, n1) < 2 and parts.fom != "accuracy":
        raise ValueError("the jackknife needs at least two cases of each truth")
    M = parts.theta.shape[0]
    out = np.empty((M, n0 + n1))
    if parts.fom == "wilcoxon":
        out[:, parts.pos] = (n1 * th - parts.v10) / (n1 - 1)
        out[:, parts.neg] = (n0 * th - parts.v01) / (n0 - 1)
    elif parts.fom == "sensitivity":
        out[:, parts.pos] = (n1 * th - parts.v10) / (n1 - 1)
        out[:, parts.neg] = th
    elif parts.fom == "specificity":
        out[:, parts.pos] = th
        out[:, parts.neg] = (n0 * th - parts.v01) / (n0 - 1)
    else:
        n = n0 + n1
        out[:, parts.pos] = (n * th - parts.v10) / (n - 1)
        out[:, parts.neg] = (n * th - parts.v01) / (n - 1)
    return out


def jackknife_covariance(jk: np.ndarray) -> np.ndarray:
    """Jackknife covariance ``(c-1)/c * sum_k (theta_(k) - mean)(theta_(k) - mean)^T`` (Efron 1982)."""
    c = jk.shape[1]
    d = jk - jk.mean(axis=1, keepdims=True)
    return (c - 1) / c * (d @ d.T)


def delong_covariance(parts: FomParts) -> np.ndarray:
    """DeLong et al. (1988) covariance of the rows' figures of merit.

    ``S10 / n1 + S01 / n0`` with ``S10``, ``S01`` the sample covariance matrices
    (denominator n-1) of the structural components. For the binary figures of merit the
    same construction is the stratified covariance of the per-case correct calls
    (sensitivity: ``S10/n1``; specificity: ``S01/n0``; accuracy weights ``n1/n``, ``n0/n``).
    """
    n1, n0 = parts.v10.shape[1], parts.v01.shape[1]

    def scov(v):
        return np.atleast_2d(np.cov(v, ddof=1)) if v.shape[1] > 1 else np.zeros((v.shape[0], v.shape[0]))

    s10, s01 = scov(parts.v10), scov(parts.v01)
    if parts.fom == "wilcoxon":
        return s10 / n1 + s01 / n0
    if parts.fom == "sensitivity":
        return s10 / n1
    if parts.fom == "specificity":
        return s01 / n0
    n = n0 + n1
    return (n1 / n) ** 2 * s10 / n1 + (n0 / n) ** 2 * s01 / n0


def bootstrap_covariance(ratings: np.ndarray, truth: np.ndarray, *, fom: str = "wilcoxon",
                         threshold: float | None = None, n_bootstrap: int = 2000,
                         seed: int = 20261121) -> np.ndarray:
    """Covariance of the rows' figures of merit over a case bootstrap.

    Cases are resampled with replacement within each truth (stratified, so every
    replicate keeps ``n0`` and ``n1``), the same cases for every row, ``n_bootstrap``
    times; the result is the sample covariance (denominator B-1) of the replicates.
    """
    r = np.atleast_2d(np.asarray(ratings, dtype=float))
    t = np.asarray(truth).astype(int)
    pos, neg = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
    rng = np.random.default_rng(seed)
    sub_truth = np.r_[np.ones(len(pos), int), np.zeros(len(neg), int)]
    reps = np.empty((n_bootstrap, r.shape[0]))
    for b in range(n_bootstrap):
        idx = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        reps[b] = fom_matrix(r[:, idx], sub_truth, fom=fom, threshold=threshold)
    return np.atleast_2d(np.cov(reps, rowvar=False, ddof=1))


def binary_fom(truth, rating, *, threshold: float, fom: str = "sensitivity") -> float:
    """Sensitivity, specificity or accuracy of one reader at a cut point.

    Parameters
    ----------
    truth : array-like of 0/1
    rating : array-like of float
        Higher = more likely positive; ``rating >= threshold`` calls the case positive
        (so for ordinal grades coded 0..K-1, ``threshold=k`` means "grade k or worse").
    threshold : float
    fom : {"sensitivity", "specificity", "accuracy"}

    Returns
    -------
    float
        The proportion (sensitivity = TP / (TP + FN), specificity = TN / (TN + FP),
        accuracy = (TP + TN) / n). The same figures of merit are available inside the
        OR / DBM analyses via ``analyze_mrmc(..., fom=..., threshold=...)``.
    """
    if fom not in ("sensitivity", "specificity", "accuracy"):
        raise ValueError(f"fom must be sensitivity, specificity or accuracy, got {fom!r}")
    return float(fom_matrix(np.asarray(rating, float)[None, :], np.asarray(truth), fom=fom,
                            threshold=threshold)[0])


def empirical_roc(truth: ArrayLike, rating: ArrayLike) -> RocCurve:
    """Empirical ROC curve of one reader.

    Parameters
    ----------
    truth : array-like of 0/1
    rating : array-like of float (higher = more likely positive)

    Returns
    -------
    study.results.mrmc.RocCurve
        ``fpr``, ``tpr`` (lists, from (0, 0) to (1, 1), one operating point per distinct
        rating), ``thresholds`` (the rating at or above which a case is called positive;
        the first point has ``None``, i.e. +infinity: nothing called positive) and
        ``auc``, the trapezoidal area, equal to the Wilcoxon statistic. Points come from
        :func:`sklearn.metrics.roc_curve` (``drop_intermediate=False``).
    """
    from sklearn.metrics import roc_curve

    t = np.asarray(truth).astype(int)
    r = np.asarray(rating, dtype=float)
    fpr, tpr, thr = roc_curve(t, r, drop_intermediate=False)
    thresholds = [None if not np.isfinite(v) else float(v) for v in thr]
    return RocCurve(
        fpr=[float(v) for v in fpr],
        tpr=[float(v) for v in tpr],
        thresholds=thresholds,
        auc=float(fom_matrix(r[None, :], t)[0]),
        n_positive=int((t == 1).sum()),
        n_negative=int((t == 0).sum()),
    )
