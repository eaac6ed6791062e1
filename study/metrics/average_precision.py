"""Average precision of one class from per-detection TP/FP flags, and its patient interval.

- :func:`average_precision`: COCO's 101-point interpolated AP (Lin et al. 2014,
  ``COCOeval.accumulate``) and PASCAL VOC's all-point AP (Everingham et al. 2010), the
  maximum recall and the interpolated precision-recall curve;
- :func:`ap_interval`: a delete-a-group jackknife over patients for the COCO AP (Kott 2001),
  which keeps the clustering of lesions within patients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from study.estimate import Estimate

#: COCO's 101 recall levels, exactly as pycocotools builds them
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


@dataclass(frozen=True)
class AveragePrecision:
    """What :func:`average_precision` computes (NaN when the class has no reference lesion).

    Attributes
    ----------
    ap : float
        COCO 101-point interpolated AP.
    ap_voc : float
        PASCAL VOC all-point AP.
    max_recall : float
        Recall with every detection kept.
    pr_interpolated : array (101,)
        Interpolated precision at :data:`REC_THRS`.
    """

    ap: float
    ap_voc: float
    max_recall: float
    pr_interpolated: np.ndarray


def _score_order(scores: np.ndarray, tp: np.ndarray, fp: np.ndarray, tie_order: np.ndarray | None) -> np.ndarray:
    """Detections counted (TP or FP) by descending score, ties by ``tie_order`` (else input order)."""
    keep = np.asarray(tp, bool) | np.asarray(fp, bool)
    keys = (np.arange(len(scores)),) if tie_order is None else (np.asarray(tie_order),)
    o = np.lexsort(keys + (-scores,))
    return o[keep[o]]


def average_precision(scores: np.ndarray, tp: np.ndarray, fp: np.ndarray, n_gt: int, *,
                      tie_order: np.ndarray | None = None) -> AveragePrecision:
    """COCO 101-point and VOC all-point AP of one class from per-detection TP/FP flags.

    Parameters
    ----------
    scores, tp, fp : arrays (n_det,)
        Detection scores and status (a detection ignored by a crowd region has both False).
    n_gt : int
        Number of reference lesions (non-crowd).
    tie_order : int array, optional
        Secondary sort key for equal scores (pycocotools: image order, then input order).

    Returns
    -------
    AveragePrecision
        ``ap`` (COCO: precision made monotone, sampled at recall 0, .01, ..., 1 by
        ``searchsorted(side="left")``, zero beyond the last recall, averaged; Lin et al.
        2014, ``COCOeval.accumulate``), ``ap_voc`` (area under the monotone envelope at every
        recall change, PASCAL VOC 2010+), ``max_recall``, ``pr_interpolated`` (the 101
        sampled precisions). NaN when ``n_gt == 0``.
    """
    scores = np.asarray(scores, float)
    o = _score_order(scores, tp, fp, tie_order)
    tps = np.asarray(tp, bool)[o]
    fps = np.asarray(fp, bool)[o]
    if n_gt <= 0:
        return AveragePrecision(np.nan, np.nan, np.nan, np.full(len(REC_THRS), np.nan))
    tp_sum = np.cumsum(tps).astype(dtype=float)
    fp_sum = np.cumsum(fps).astype(dtype=float)
    nd = len(tp_sum)
    rc = tp_sum / n_gt
    pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
    # monotone envelope from the right, as the loop in COCOeval.accumulate
    pr_env = np.maximum.accumulate(pr[::-1])[::-1] if nd else pr
    q = np.zeros(len(REC_THRS))
    inds = np.searchsorted(rc, REC_THRS, side="left")
    ok = inds < nd
    q[ok] = pr_env[inds[ok]]
    # VOC all-point
    mrec = np.r_[0.0, rc, 1.0]
    mpre = np.r_[0.0, pr_env if nd else [], 0.0]
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    ap_voc = float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
    return AveragePrecision(float(np.mean(q)), ap_voc, float(rc[-1]) if nd else 0.0, q)


def weighted_ap_rows(tp: np.ndarray, fp: np.ndarray, w: np.ndarray, n_gt: np.ndarray) -> np.ndarray:
    """COCO 101-point AP of one score-sorted detection list under ``b`` rows of detection weights.

    ``w`` is ``(b, n_det)``, ``n_gt`` the ``(b,)`` weighted reference lesions; NaN where ``n_gt`` is 0,
    0 where there are lesions but no detection. Each row is COCOeval's accumulate (recall thresholds
    ``REC_THRS``, precision made monotone from the right) with detection ``i`` counted ``w[r, i]`` times:
    the resampling jackknife (:func:`ap_interval`) and the subgroup bootstrap
    (``study.metrics.subgroup_ap``) both use it.
    """
    b, n = w.shape
    out = np.full(b, np.nan)
    has = n_gt > 0
    if n == 0:
        out[has] = 0.0
        return out
    tc = np.cumsum(w * tp, axis=1)
    fc = np.cumsum(w * fp, axis=1)
    pr = tc / (tc + fc + np.spacing(1))
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    for r in np.flatnonzero(has):
        rc = tc[r] / n_gt[r]
        inds = np.searchsorted(rc, REC_THRS, side="left")
        out[r] = float(np.where(inds < n, pr[r, np.minimum(inds, n - 1)], 0.0).mean())
    return out


def _ap_weighted(tp_sorted: np.ndarray, fp_sorted: np.ndarray, w: np.ndarray, n_gt: float) -> float:
    """COCO 101-point AP of a sorted detection list whose detections carry weights ``w`` (one row of
    :func:`weighted_ap_rows`)."""
    return float(weighted_ap_rows(tp_sorted, fp_sorted, np.asarray(w, dtype=float)[None, :],
                                  np.array([n_gt], dtype=float))[0])


def ap_interval(point: float | None, scores: np.ndarray, tp: np.ndarray, fp: np.ndarray, patient: np.ndarray,
                n_gt_patient: np.ndarray, *, tie_order: np.ndarray | None = None, n_groups: int = 50, seed: int = 0,
                confidence: float = 0.95, unit: str = "patients") -> Estimate:
    """Confidence interval of the COCO 101-point AP by a delete-a-group jackknife over patients.

    Patients are dealt at random (seeded) into ``G = min(n_groups, P)`` groups; AP is
    recomputed ``G`` times, each time without one group's detections and lesions. With
    ``theta_g`` those values, ``SE^2 = (G-1)/G * sum (theta_g - mean theta)^2`` and the
    interval is ``AP -/+ t_{G-1} SE``, on the logit scale when it would leave [0, 1]
    (:func:`study.metrics.intervals.bounded_unit_interval`). Resampling whole patients keeps
    the clustering of lesions; the cost is G passes over the detections.

    Returns
    -------
    Estimate
        The AP with ``se`` and the interval; without an interval (and a ``reason``) when the
        AP is undefined, fewer than two groups have lesions, or every jackknife value equals
        the AP (e.g. AP = 1 in every sample: no interval of positive width).

    References
    ----------
    Kott PS (2001). The delete-a-group jackknife. Journal of Official Statistics 17:521-526.
    Efron B, Tibshirani RJ (1993). An Introduction to the Bootstrap, ch. 11 (the jackknife).
    """
    from scipy.stats import t as student_t

    from study.metrics.intervals import bounded_unit_interval, level_pct

    n_gt_patient = np.asarray(n_gt_patient, float)
    n_pat = len(n_gt_patient)
    g_count = int(min(n_groups, n_pat))
    method = (f"delete-a-group jackknife over {unit} ({g_count} random groups), Student t ({g_count - 1} df), "
              f"{level_pct(confidence)}")
    if point is None or not np.isfinite(point) or g_count < 2:
        return Estimate(None if point is None or not np.isfinite(point) else float(point), None, None, method,
                        reason="undefined (no lesions or < 2 units)")
    scores = np.asarray(scores, float)
    o = _score_order(scores, tp, fp, tie_order)
    tps = np.asarray(tp, float)[o]
    fps = np.asarray(fp, float)[o]
    pat = np.asarray(patient)[o]
    group_of = np.random.default_rng(seed).permutation(n_pat) % g_count
    gd = group_of[pat]
    gt_by_group = np.bincount(group_of, weights=n_gt_patient, minlength=g_count)
    total = n_gt_patient.sum()
    thetas = np.array([_ap_weighted(tps, fps, (gd != g).astype(float), total - gt_by_group[g])
                       for g in range(g_count)])
    thetas = thetas[np.isfinite(thetas)]
    if len(thetas) < 2:
        return Estimate(float(point), None, None, method, reason="fewer than 2 groups with lesions")
    k = len(thetas)
    se = float(np.sqrt((k - 1) / k * np.sum((thetas - thetas.mean()) ** 2)))
    q = float(student_t.ppf(1 - (1 - confidence) / 2, k - 1))
    got = bounded_unit_interval(float(point), se, q)
    if got is None:
        return Estimate(float(point), None, None, method, se=se,
                        reason=f"AP = {float(point):g} in every delete-a-group jackknife sample (standard error "
                               f"{se:g}): no interval of positive width")
    lo, hi, transformed = got
    return Estimate(float(point), lo, hi, f"{method}; on the logit scale (the interval would leave 0-1)"
                    if transformed else method, se=se)
