"""Lesion-level detection metrics: AP, precision / recall / F1, FROC, presence, segmentation.

One call, :func:`evaluate_detection`, computes everything the detection section of a
report shows, from a COCO instances ground truth and a COCO results list:

- matching (``study.metrics.matching``): COCO's greedy rule per image and class (IoU of
  boxes; mask IoU for polygon classes when the detections carry masks; optionally centre
  distance), and class-agnostic ("any lesion");
- per class and any lesion: AP by COCO's 101-point interpolation at the IoU threshold and
  VOC's all-point AP (Everingham et al. 2010), the precision-recall curve, maximum recall,
  and precision / recall (Wilson score intervals) and F1 (patient bootstrap) at the
  protocol's operating threshold;
- FROC over any lesion with patient-bootstrap intervals (``study.metrics.froc``);
- image-level presence per class (``study.metrics.presence``);
- Dice / IoU of polygon classes (``study.metrics.segmentation``);
- the COCO summary (AP@[.50:.95], AP50, AP75, APs/m/l, AR) with ``maxDets`` raised to
  ``max_detections`` (acne images can carry several hundred lesions, so detections are
  never capped at COCO's default 100), computed by ``study.metrics.coco_native`` (a
  vectorised equivalent of pycocotools' COCOeval, equal to it to 1e-12 in the tests and
  several times faster than faster-coco-eval, see ``bench/bench_detection.py``) or, on request, by faster-coco-eval
  or pycocotools themselves (``coco_backend``); ``coco.backend`` says which.

Our AP at the IoU threshold reproduces pycocotools' per-category AP50 exactly (same
matching, same 101-point rule; ``tests/test_detection.py`` checks it on random data).

Note on intervals: Wilson intervals for lesion-level precision, recall and maximum recall
treat lesions as independent; lesions cluster within patients, so these intervals can be
too narrow. The F1, FROC, presence-F1 and Dice/IoU intervals resample patients (percentile
bootstrap) and the AP interval deletes groups of patients (jackknife), so they respect the
clustering.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Mapping, Sequence

import numpy as np

from study.errors import StudyError
from study.metrics.bootstrap import bootstrap_estimate, resampling_weights
from study.metrics.coco_input import CocoArrays, check_coco_pair, load_coco_pair, to_arrays  # noqa: F401
from study.metrics.froc import DEFAULT_FP_RATES, FrocData, evaluate_froc
from study.metrics.intervals import binomial_ci
from study.metrics.matching import MatchResult, candidate_pairs, greedy_from_pairs, score_rank
from study.metrics.presence import evaluate_presence, f1_from_counts, presence_features
from study.metrics.segmentation import evaluate_segmentation, mask_iou, to_rle

#: COCO's 101 recall levels, exactly as pycocotools builds them
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
ANY_LESION = "any_lesion"


# --------------------------------------------------------------------------- AP
def average_precision(scores: np.ndarray, tp: np.ndarray, fp: np.ndarray, n_gt: int, *,
                      tie_order: np.ndarray | None = None) -> dict[str, Any]:
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
    dict
        ``ap`` (COCO: precision made monotone, sampled at recall 0, .01, ..., 1 by
        ``searchsorted(side="left")``, zero beyond the last recall, averaged; Lin et al.
        2014, ``COCOeval.accumulate``), ``ap_voc`` (area under the monotone envelope at every
        recall change, PASCAL VOC 2010+), ``max_recall``, ``pr_interpolated`` (the 101
        sampled precisions). NaN when ``n_gt == 0``.
    """
    scores = np.asarray(scores, float)
    keep = np.asarray(tp, bool) | np.asarray(fp, bool)
    keys = (np.arange(len(scores)),) if tie_order is None else (np.asarray(tie_order),)
    o = np.lexsort(keys + (-scores,))
    o = o[keep[o]]
    tps = np.asarray(tp, bool)[o]
    fps = np.asarray(fp, bool)[o]
    if n_gt <= 0:
        return {"ap": np.nan, "ap_voc": np.nan, "max_recall": np.nan, "pr_interpolated": np.full(len(REC_THRS), np.nan)}
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
    ap = float(np.mean(q))
    # VOC all-point
    mrec = np.r_[0.0, rc, 1.0]
    mpre = np.r_[0.0, pr_env if nd else [], 0.0]
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    ap_voc = float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
    return {"ap": ap, "ap_voc": ap_voc, "max_recall": float(rc[-1]) if nd else 0.0, "pr_interpolated": q}


def _ap_weighted(tp_sorted: np.ndarray, fp_sorted: np.ndarray, w: np.ndarray, n_gt: float) -> float:
    """COCO 101-point AP of a sorted detection list whose detections carry weights ``w``."""
    n = len(tp_sorted)
    if n_gt <= 0:
        return np.nan
    if not n:
        return 0.0
    tc = np.cumsum(w * tp_sorted)
    fc = np.cumsum(w * fp_sorted)
    rc = tc / n_gt
    pr = tc / (tc + fc + np.spacing(1))
    pr = np.maximum.accumulate(pr[::-1])[::-1]
    inds = np.searchsorted(rc, REC_THRS, side="left")
    return float(np.where(inds < n, pr[np.minimum(inds, n - 1)], 0.0).mean())


def ap_interval(point: float, scores: np.ndarray, tp: np.ndarray, fp: np.ndarray, patient: np.ndarray,
                n_gt_patient: np.ndarray, *, tie_order: np.ndarray | None = None, n_groups: int = 50, seed: int = 0,
                confidence: float = 0.95, unit: str = "patients") -> dict:
    """Confidence interval of the COCO 101-point AP by a delete-a-group jackknife over patients.

    Patients are dealt at random (seeded) into ``G = min(n_groups, P)`` groups; AP is
    recomputed ``G`` times, each time without one group's detections and lesions. With
    ``theta_g`` those values, ``SE^2 = (G-1)/G * sum (theta_g - mean theta)^2`` and the
    interval is ``AP -/+ t_{G-1} SE`` (clipped to [0, 1]). Resampling whole patients keeps
    the clustering of lesions; the cost is G passes over the detections.

    References
    ----------
    Kott PS (2001). The delete-a-group jackknife. Journal of Official Statistics 17:521-526.
    Efron B, Tibshirani RJ (1993). An Introduction to the Bootstrap, ch. 11 (the jackknife).
    """
    from scipy.stats import t as student_t

    from study.metrics.intervals import level_pct

    n_gt_patient = np.asarray(n_gt_patient, float)
    n_pat = len(n_gt_patient)
    g_count = int(min(n_groups, n_pat))
    method = (f"delete-a-group jackknife over {unit} ({g_count} random groups), Student t ({g_count - 1} df), "
              f"{level_pct(confidence)}")
    if point is None or not np.isfinite(point) or g_count < 2:
        return {"estimate": None if point is None or not np.isfinite(point) else float(point),
                "ci_low": None, "ci_high": None, "method": method, "reason": "undefined (no lesions or < 2 units)"}
    scores = np.asarray(scores, float)
    keep = np.asarray(tp, bool) | np.asarray(fp, bool)
    keys = (np.arange(len(scores)),) if tie_order is None else (np.asarray(tie_order),)
    o = np.lexsort(keys + (-scores,))
    o = o[keep[o]]
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
        return {"estimate": float(point), "ci_low": None, "ci_high": None, "method": method,
                "reason": "fewer than 2 groups with lesions"}
    k = len(thetas)
    se = float(np.sqrt((k - 1) / k * np.sum((thetas - thetas.mean()) ** 2)))
    q = student_t.ppf(1 - (1 - confidence) / 2, k - 1)
    return {"estimate": float(point), "ci_low": float(max(point - q * se, 0.0)),
            "ci_high": float(min(point + q * se, 1.0)), "se": se, "method": method}


# --------------------------------------------------------------------------- COCO block
def coco_summary(ground_truth: dict, detections: list, *, category_ids: Sequence[int], image_ids: Sequence[int],
                 max_detections: int, backend: str = "faster-coco-eval", iou_type: str = "bbox") -> dict:
    """COCO summary metrics from faster-coco-eval or pycocotools, ``maxDets=[1, 10, max_detections]``.

    The summary numbers are read from the library's ``eval["precision"]`` / ``eval["recall"]``
    arrays exactly as pycocotools' ``summarize`` does (mean over entries > -1), because
    pycocotools' own ``summarize`` looks for ``maxDets=100`` and returns -1 otherwise.
    """
    if backend == "faster-coco-eval":
        from faster_coco_eval import COCO, COCOeval_faster as COCOeval
        from faster_coco_eval import __version__ as version
    elif backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        from importlib.metadata import version as _v

        version = _v("pycocotools")
    else:
        raise ValueError(f"unknown COCO backend {backend!r}")
    wanted = set(category_ids)
    dets = [d for d in detections if d["category_id"] in wanted]
    with contextlib.redirect_stdout(io.StringIO()):
        if backend == "pycocotools":
            gt = COCO()
            gt.dataset = _copy_gt(ground_truth)
            gt.createIndex()
        else:
            gt = COCO(_copy_gt(ground_truth))
        if not dets:
            return {"backend": backend, "version": version, "reason": "no detections", "AP": None}
        dt = gt.loadRes([dict(d) for d in dets])  # the libraries add keys to each dict
        ev = COCOeval(gt, dt, iou_type)
        ev.params.imgIds = sorted(int(i) for i in image_ids)
        ev.params.catIds = sorted(int(c) for c in category_ids)
        ev.params.maxDets = [1, 10, int(max_detections)]
        ev.evaluate()
        ev.accumulate()
    p = ev.params
    prec = np.asarray(ev.eval["precision"])
    rec = np.asarray(ev.eval["recall"])
    iou_thrs = np.asarray(p.iouThrs)

    def summ(ap: bool, iou=None, area="all", md=int(max_detections)):
        a = list(p.areaRngLbl).index(area)
        m = list(p.maxDets).index(md)
        s = prec if ap else rec
        if iou is not None:
            s = s[np.where(np.isclose(iou_thrs, iou))[0]]
        s = s[:, :, :, a, m] if ap else s[:, :, a, m]
        v = s[s > -1]
        return float(np.mean(v)) if v.size else None

    md = int(max_detections)
    return {
        "backend": backend, "version": version, "iou_type": iou_type, "max_dets": [1, 10, md],
        "AP": summ(True), "AP50": summ(True, 0.5), "AP75": summ(True, 0.75),
        "APs": summ(True, area="small"), "APm": summ(True, area="medium"), "APl": summ(True, area="large"),
        "AR1": summ(False, md=1), "AR10": summ(False, md=10), "ARmax": summ(False),
        "ARs": summ(False, area="small"), "ARm": summ(False, area="medium"), "ARl": summ(False, area="large"),
    }


# --------------------------------------------------------------------------- helpers
def _copy_gt(gt: dict) -> dict:
    """Copy deep enough that the COCO libraries (which add keys to annotations) leave ours alone."""
    out = dict(gt)
    out["annotations"] = [dict(a) for a in gt["annotations"]]
    out["images"] = [dict(i) for i in gt["images"]]
    out["categories"] = [dict(c) for c in gt["categories"]]
    return out


def _patient_index(image_ids: np.ndarray, patient_of: Mapping | None) -> tuple[np.ndarray, list]:
    if patient_of is None:
        return np.arange(len(image_ids)), [int(i) for i in image_ids]
    missing = [int(i) for i in image_ids if int(i) not in patient_of and str(int(i)) not in patient_of]
    if missing:
        raise StudyError(f"no patient for image ids {missing[:20]}" + (" ..." if len(missing) > 20 else ""),
                         file="patient_of", where="image_id")
    labels = [patient_of[int(i)] if int(i) in patient_of else patient_of[str(int(i))] for i in image_ids]
    uniq, idx = np.unique(np.asarray([str(x) for x in labels]), return_inverse=True)
    return idx.astype(np.int64), list(uniq)


def _mask_pairs(arr: CocoArrays, polygon: set[int]):
    """``extra_pairs`` callback giving mask IoU where both sides of a pair carry a mask."""
    poly = np.array(sorted(polygon), np.int64)
    gt_mask = np.zeros(len(arr.gt_cls), bool)
    for i in np.flatnonzero(np.isin(arr.gt_cls, poly)).tolist():
        gt_mask[i] = arr.gt_seg[i] is not None
    dt_mask = np.zeros(len(arr.dt_cls), bool)
    for i in np.flatnonzero(np.isin(arr.dt_cls, poly)).tolist():
        dt_mask[i] = arr.dt_seg[i] is not None
    if not gt_mask.any() or not dt_mask.any():
        return None, gt_mask, dt_mask
    cache_g: dict[int, Any] = {}
    cache_d: dict[int, Any] = {}

    def rle_g(i):
        if i not in cache_g:
            h, w = arr.image_hw[arr.gt_img[i]]
            cache_g[i] = to_rle(arr.gt_seg[i], int(h), int(w))
        return cache_g[i]

    def rle_d(i):
        if i not in cache_d:
            h, w = arr.image_hw[arr.dt_img[i]]
            cache_d[i] = to_rle(arr.dt_seg[i], int(h), int(w))
        return cache_d[i]

    def extra(d, g):
        use = dt_mask[d] & gt_mask[g]
        alt = np.zeros(len(d))
        for k in np.flatnonzero(use):
            alt[k] = mask_iou([rle_d(int(d[k]))], [rle_g(int(g[k]))], [int(arr.gt_crowd[g[k]])])[0, 0]
        return alt, use

    return extra, gt_mask, dt_mask


def _est(point, reps, n_bootstrap, confidence, unit="patients"):
    return bootstrap_estimate(point, reps, n_replicates=n_bootstrap, confidence=confidence, unit=unit).to_dict()


# --------------------------------------------------------------------------- main
def evaluate_detection(ground_truth: dict, detections: list[dict], *, classes: list[str] | None = None,
                       iou_threshold: float = 0.5, operating_threshold: float = 0.5, max_detections: int = 1000,
                       froc_fp_rates: Sequence[float] = DEFAULT_FP_RATES, polygon_classes: Sequence[str] = (),
                       patient_of: Mapping[Any, Any] | None = None, n_bootstrap: int = 2000, seed: int = 0,
                       confidence: float = 0.95, image_ids: Sequence[int] | None = None,
                       match_rule: str = "iou", center_distance_px: float | None = None,
                       coco_backend: str = "native", validate: bool = True) -> dict:
    """Every lesion-level detection metric of one model on one cohort.

    Parameters
    ----------
    ground_truth : dict
        COCO instances (``images`` with ``id``, ``width``, ``height``; ``annotations``;
        ``categories``).
    detections : list of dict
        COCO results (``image_id``, ``category_id``, ``bbox``, ``score``[, ``segmentation``]).
    classes : list of str, optional
        Category names to evaluate (default: every ground-truth category, by id).
    iou_threshold : float
        Matching IoU (or, with ``match_rule="center_distance"``, ignored for matching).
    operating_threshold : float
        Score at or above which a detection counts, for precision / recall / F1 / presence /
        segmentation.
    max_detections : int
        Per image and class, the highest-scoring detections kept (COCO ``maxDets``).
    froc_fp_rates : sequence of float
        False positives per image at which the FROC sensitivity is read.
    polygon_classes : sequence of str
        Classes annotated as polygons: matched by mask IoU when the detections carry masks.
    patient_of : mapping image id -> patient id, optional
        Bootstrap unit (default: each image its own patient).
    n_bootstrap, seed, confidence :
        Percentile bootstrap over patients (replicates, seed, level); Wilson level too.
    image_ids : sequence of int, optional
        Evaluate only these images (e.g. the included cases).
    match_rule : {"iou", "center_distance"}
        ``center_distance`` matches point-like lesions whose box centres are within
        ``center_distance_px`` pixels (nearest first).
    coco_backend : {"native", "faster-coco-eval", "pycocotools"}
        What computes the ``coco`` block: ``native`` (``study.metrics.coco_native``, a
        vectorised equivalent of pycocotools' COCOeval, tested equal to it to 1e-12; the
        fastest) or one of the two libraries (run with ``maxDets`` raised).
    validate : bool
        Validate the inputs (skip only when they were validated already).

    Returns
    -------
    dict
        ``iou_threshold``, ``operating_threshold``, ``match_rule``, ``n_images``,
        ``max_detections``, ``classes.<name>`` and ``any_lesion`` (``ap``, ``ap_ci``,
        ``ap_voc``, ``precision``, ``recall``, ``f1``, ``max_recall``, ``max_recall_ci``,
        ``n_gt``, ``n_det``, ``tp``, ``fp``, ``fn``, ``pr_curve``; classes also ``coco``
        {AP, AP50, AP75} with the native backend), ``map``, ``map_voc``, ``coco``, ``froc``, ``presence.<name>``,
        ``segmentation.<polygon class>``, ``inputs`` (counts excluded / truncated).
    """
    if not 0 < iou_threshold < 1:
        raise StudyError(f"iou_threshold must be in (0, 1), got {iou_threshold!r}", file="options")
    if max_detections < 1:
        raise StudyError(f"max_detections must be >= 1, got {max_detections!r}", file="options")
    if match_rule == "center_distance" and not (center_distance_px and center_distance_px > 0):
        raise StudyError("match_rule center_distance needs center_distance_px > 0", file="options")
    if coco_backend not in ("native", "faster-coco-eval", "pycocotools"):
        raise StudyError(f"coco_backend must be native, faster-coco-eval or pycocotools, got {coco_backend!r}",
                         file="options")
    raw = check_coco_pair(ground_truth, detections) if validate else None
    arr = to_arrays(ground_truth, detections, classes=classes, image_ids=image_ids, max_detections=max_detections,
                    raw=raw)
    unknown_poly = [c for c in polygon_classes if c not in arr.classes]
    if unknown_poly:
        raise StudyError(f"polygon classes {unknown_poly} are not among the evaluated classes {arr.classes}",
                         file="options", where="polygon_classes")
    n_cls = len(arr.classes)
    n_img = len(arr.image_ids)
    patient, patient_labels = _patient_index(arr.image_ids, patient_of)
    n_pat = len(patient_labels)
    unit = "patients" if patient_of is not None else "images"
    rng = np.random.default_rng(seed)
    blocks = list(resampling_weights(n_pat, n_replicates=n_bootstrap, rng=rng)) if n_bootstrap > 0 and n_pat else []

    # ---- matching: pairs by image once; class-aware pairs are the same-class subset
    poly_idx = {arr.classes.index(c) for c in polygon_classes}
    extra, gt_mask, dt_mask = _mask_pairs(arr, poly_idx) if poly_idx else (None, None, None)
    n_dt, n_gt = len(arr.dt_score), len(arr.gt_box)
    rank = score_rank(arr.dt_score)
    native = coco_backend == "native"
    box_only = match_rule == "iou" and extra is None
    if match_rule == "iou":
        pair_thr = min(iou_threshold, 0.5) if (native and box_only) else iou_threshold
        d, g, s = candidate_pairs(arr.gt_img, arr.gt_box, arr.dt_img, arr.dt_box, threshold=pair_thr,
                                  gt_crowd=arr.gt_crowd, extra_pairs=extra)
    else:
        d, g, s = candidate_pairs(arr.gt_img, arr.gt_box, arr.dt_img, arr.dt_box, threshold=center_distance_px,
                                  gt_crowd=arr.gt_crowd, rule="center_distance")
    same = arr.dt_cls[d] == arr.gt_cls[g]
    coco_pairs = None
    if native:
        if box_only:
            cp = same & (s >= 0.5 - 1e-12)
            coco_pairs = (d[cp], g[cp], s[cp])
        else:
            d2, g2, s2 = candidate_pairs(arr.gt_img, arr.gt_box, arr.dt_img, arr.dt_box, threshold=0.5,
                                         gt_crowd=arr.gt_crowd)
            cp = arr.dt_cls[d2] == arr.gt_cls[g2]
            coco_pairs = (d2[cp], g2[cp], s2[cp])
    if match_rule == "iou":
        keep = s >= min(iou_threshold, 1 - 1e-10)
        d, g, s, same = d[keep], g[keep], s[keep], same[keep]
    m_cls = greedy_from_pairs(n_dt, n_gt, d[same], g[same], s[same], rank, gt_crowd=arr.gt_crowd)
    m_any = greedy_from_pairs(n_dt, n_gt, d, g, s, rank, gt_crowd=arr.gt_crowd)

    tie = arr.dt_img * (len(arr.dt_order) + 1) + arr.dt_order  # pycocotools: image order, then input order
    at_op = arr.dt_score >= operating_threshold
    real_gt = ~arr.gt_crowd

    # per-patient features for the bootstrap of F1: [tp, fp, n_gt] per class + any lesion
    feats = np.zeros((n_pat, 3 * (n_cls + 1)), np.float32)

    def class_block(sel_dt: np.ndarray, sel_gt: np.ndarray, m: MatchResult, col: int) -> dict:
        tp, fp = m.tp[sel_dt], m.fp[sel_dt]
        ngt = int(sel_gt.sum())
        apd = average_precision(arr.dt_score[sel_dt], tp, fp, ngt, tie_order=tie[sel_dt])
        op = at_op[sel_dt]
        k_tp, k_fp = int((tp & op).sum()), int((fp & op).sum())
        pat_dt = patient[arr.dt_img[sel_dt]]
        feats[:, 3 * col] = np.bincount(pat_dt, weights=tp & op, minlength=n_pat)
        feats[:, 3 * col + 1] = np.bincount(pat_dt, weights=fp & op, minlength=n_pat)
        feats[:, 3 * col + 2] = np.bincount(patient[arr.gt_img[sel_gt]], minlength=n_pat)
        ngt_pat = np.bincount(patient[arr.gt_img[sel_gt]], minlength=n_pat)
        k_all = int(tp.sum())
        return {
            "ap": apd["ap"], "ap_voc": apd["ap_voc"], "max_recall": apd["max_recall"],
            "ap_ci": ap_interval(apd["ap"], arr.dt_score[sel_dt], tp, fp, pat_dt, ngt_pat, tie_order=tie[sel_dt],
                                 seed=seed, confidence=confidence, unit=unit),
            "max_recall_ci": binomial_ci(k_all, ngt, confidence=confidence,
                                         reason_if_empty="no reference lesion of this class").to_dict(),
            "n_gt": ngt, "n_det": int(sel_dt.sum()), "n_det_at_operating_threshold": int(op.sum()),
            "n_ignored_crowd": int(m.ignored[sel_dt].sum()),
            "tp": k_tp, "fp": k_fp, "fn": ngt - k_tp,
            "precision": binomial_ci(k_tp, k_tp + k_fp, confidence=confidence,
                                     reason_if_empty="no detection at the operating threshold").to_dict(),
            "recall": binomial_ci(k_tp, ngt, confidence=confidence,
                                  reason_if_empty="no reference lesion of this class").to_dict(),
            "pr_curve": {"recall": REC_THRS.tolist(), "precision": apd["pr_interpolated"].tolist(),
                         "kind": "COCO interpolated precision at 101 recall levels"},
            "_f1_point": float(f1_from_counts(k_tp, k_fp, ngt - k_tp)),
        }

    out_classes: dict[str, dict] = {}
    for c, name in enumerate(arr.classes):
        out_classes[name] = class_block(arr.dt_cls == c, (arr.gt_cls == c) & real_gt, m_cls, c)
    any_block = class_block(np.ones(n_dt, bool), real_gt, m_any, n_cls)

    # F1 with a patient bootstrap (all classes at once)
    reps = np.vstack([w @ feats for w in blocks]) if blocks else np.zeros((0, feats.shape[1]))
    for col, blk in enumerate(list(out_classes.values()) + [any_block]):
        r = f1_from_counts(reps[:, 3 * col], reps[:, 3 * col + 1], reps[:, 3 * col + 2] - reps[:, 3 * col])
        blk["f1"] = _est(blk.pop("_f1_point"), r, n_bootstrap, confidence, unit)

    aps = [b["ap"] for b in out_classes.values() if b["n_gt"] > 0]
    aps_voc = [b["ap_voc"] for b in out_classes.values() if b["n_gt"] > 0]

    # ---- FROC: any lesion
    n_gt_pat = np.bincount(patient[arr.gt_img[real_gt]], minlength=n_pat)
    n_img_pat = np.bincount(patient, minlength=n_pat)
    fd = FrocData.build(arr.dt_score, m_any.tp, m_any.fp, patient[arr.dt_img], n_gt_patient=n_gt_pat,
                        n_img_patient=n_img_pat)
    froc = evaluate_froc(fd, fp_rates=froc_fp_rates, weight_blocks=blocks, n_bootstrap=n_bootstrap, unit=unit,
                         confidence=confidence)
    froc["matching"] = "class-agnostic (any lesion)"

    # ---- presence per class
    presence = {}
    gt_count = np.zeros((n_img, n_cls), np.int64)
    np.add.at(gt_count, (arr.gt_img[real_gt], arr.gt_cls[real_gt]), 1)
    called = np.zeros((n_img, n_cls), bool)
    called[arr.dt_img[at_op], arr.dt_cls[at_op]] = True
    pres_feats = np.hstack([presence_features(gt_count[:, c] > 0, called[:, c], patient, n_pat)
                            for c in range(n_cls)]) if n_cls else np.zeros((n_pat, 0), np.float32)
    pres_reps = np.vstack([w @ pres_feats for w in blocks]) if blocks else None
    for c, name in enumerate(arr.classes):
        presence[name] = evaluate_presence(
            gt_count[:, c] > 0, called[:, c], patient, n_bootstrap=n_bootstrap, confidence=confidence, unit=unit,
            replicate_table=pres_reps[:, 3 * c:3 * c + 3] if pres_reps is not None else None)

    # ---- segmentation of polygon classes
    segmentation = {}
    for name in polygon_classes:
        c = arr.classes.index(name)
        segmentation[name] = _segmentation_block(arr, c, m_cls, at_op, gt_mask, dt_mask, patient, blocks,
                                                 n_bootstrap, confidence, unit)

    # ---- COCO block
    if native:
        from study.metrics.coco_native import coco_evaluate

        dt_area = arr.dt_box[:, 2] * arr.dt_box[:, 3]
        md = [1, 10, int(max_detections)]
        res = coco_evaluate(n_classes=n_cls, gt_img=arr.gt_img, gt_cls=arr.gt_cls, gt_area=arr.gt_area,
                            gt_crowd=arr.gt_crowd, dt_img=arr.dt_img, dt_cls=arr.dt_cls, dt_area=dt_area,
                            dt_score=arr.dt_score, dt_order=arr.dt_order, pair_d=coco_pairs[0], pair_g=coco_pairs[1],
                            pair_iou=coco_pairs[2], max_dets=md)
        from study import __version__

        for k, name in enumerate(arr.classes):
            pk = res["precision"][:, :, k, 0, -1]
            out_classes[name]["coco"] = {
                "AP": float(pk[pk > -1].mean()) if (pk > -1).any() else None,
                "AP50": float(pk[0][pk[0] > -1].mean()) if (pk[0] > -1).any() else None,
                "AP75": float(pk[5][pk[5] > -1].mean()) if (pk[5] > -1).any() else None}
        coco = {"backend": "native", "version": __version__, "iou_type": "bbox", "max_dets": md, **res["stats"],
                "note": "vectorised equivalent of pycocotools COCOeval (bbox) evaluate/accumulate/summarize; "
                        "equal to pycocotools to 1e-12 in tests/test_detection_coco.py"}
    else:
        coco = coco_summary(ground_truth, detections, category_ids=arr.category_ids,
                            image_ids=arr.image_ids.tolist(), max_detections=max_detections, backend=coco_backend)

    return {
        "iou_threshold": float(iou_threshold),
        "operating_threshold": float(operating_threshold),
        "match_rule": match_rule if match_rule == "iou" else f"center_distance <= {center_distance_px} px",
        "max_detections": int(max_detections),
        "n_images": int(n_img),
        "n_patients": int(n_pat),
        "classes": out_classes,
        ANY_LESION: any_block,
        "map": float(np.mean(aps)) if aps else None,
        "map_voc": float(np.mean(aps_voc)) if aps_voc else None,
        "ap_definition": "ap: COCO 101-point interpolated AP at iou_threshold; ap_voc: PASCAL VOC all-point AP; "
                         "map: mean of per-class ap over classes with reference lesions",
        "coco": coco,
        "froc": froc,
        "presence": presence,
        "segmentation": segmentation,
        "inputs": {"n_gt": int(real_gt.sum()), "n_gt_crowd": int(arr.gt_crowd.sum()), "n_det": int(n_dt),
                   "n_det_truncated_by_max_detections": int(arr.n_dt_truncated), **arr.excluded},
        "bootstrap": {"replicates": int(n_bootstrap), "seed": int(seed), "unit": unit},
    }


def _segmentation_block(arr: CocoArrays, c: int, m: MatchResult, at_op: np.ndarray, gt_mask, dt_mask,
                        patient: np.ndarray, blocks, n_bootstrap: int, confidence: float, unit: str) -> dict:
    from pycocotools import mask as mu

    sel = (arr.dt_cls == c) & at_op & m.tp
    d_idx = np.flatnonzero(sel)
    g_idx = m.matched_gt[d_idx]
    has_masks = dt_mask is not None and bool(dt_mask[arr.dt_cls == c].all()) and bool((arr.dt_cls == c).any())
    iou_type = "segm" if has_masks else "bbox"
    inst_iou = m.similarity[d_idx] if len(d_idx) else np.zeros(0)
    inst_pat = patient[arr.dt_img[d_idx]]
    inter, a_dt, a_gt, ip = [], [], [], []
    if has_masks:
        gsel = np.flatnonzero((arr.gt_cls == c) & ~arr.gt_crowd)
        dsel = np.flatnonzero((arr.dt_cls == c) & at_op)
        for im in np.union1d(arr.gt_img[gsel], arr.dt_img[dsel]):
            h, w = (int(v) for v in arr.image_hw[im])
            gl = [to_rle(arr.gt_seg[i], h, w) for i in gsel[arr.gt_img[gsel] == im]]
            dl = [to_rle(arr.dt_seg[i], h, w) for i in dsel[arr.dt_img[dsel] == im]]
            gu = mu.merge(gl) if gl else None
            du = mu.merge(dl) if dl else None
            ag = float(mu.area(gu)) if gu is not None else 0.0
            ad = float(mu.area(du)) if du is not None else 0.0
            it = float(mu.area(mu.merge([gu, du], intersect=True))) if gu is not None and du is not None else 0.0
            inter.append(it); a_dt.append(ad); a_gt.append(ag); ip.append(patient[im])
    return evaluate_segmentation(inst_iou=inst_iou, inst_patient=inst_pat, img_inter=np.array(inter),
                                 img_area_dt=np.array(a_dt), img_area_gt=np.array(a_gt),
                                 img_patient=np.array(ip, np.int64), weight_blocks=blocks, n_bootstrap=n_bootstrap,
                                 confidence=confidence, iou_type=iou_type, unit=unit)
