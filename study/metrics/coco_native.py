"""COCO box evaluation (``COCOeval(..., "bbox")``: evaluate + accumulate + summary), vectorised.

A line-by-line equivalent of pycocotools' ``COCOeval.evaluateImg`` / ``accumulate`` /
``summarize`` for boxes, written on arrays so that ten thousand images with hundreds of
thousands of lesions evaluate in seconds (pycocotools needs about a minute; the C++ of
faster-coco-eval several seconds; ``bench/bench_detection.py`` times all three). Same parameters: IoU thresholds .50:.05:.95, the 101
recall levels, area ranges all / small / medium / large on the ground truth's ``area``
field, ``maxDets = [1, 10, max_detections]``; same rules: crowd and out-of-range ground
truth are ignored (matched last; crowd shared), unmatched detections outside the area
range are ignored, detections are truncated per image and class, precision is made
monotone and sampled with ``searchsorted(side="left")``. Its numbers equal pycocotools'
(``tests/test_detection_coco.py`` checks them to 1e-12 on the cocoapi demo data and on
random data sets with crowd regions and every area range).

Lin T-Y et al. (2014), Microsoft COCO: Common Objects in Context, ECCV.
"""

from __future__ import annotations

import numpy as np

from study.metrics.matching import greedy_core

IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
AREA_RNG = {"all": (0.0, 1e5 ** 2), "small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2),
            "large": (96.0 ** 2, 1e5 ** 2)}
_CAP = 1 - 1e-10


def coco_evaluate(*, n_classes: int, gt_img, gt_cls, gt_area, gt_crowd, dt_img, dt_cls, dt_area, dt_score, dt_order,
                  pair_d, pair_g, pair_iou, max_dets=(1, 10, 1000)) -> dict:
    """Precision / recall arrays and the summary of COCOeval for boxes.

    Parameters
    ----------
    gt_*, dt_* : arrays
        Ground truth (image index in ascending image-id order, class index, ``area`` field,
        crowd flag) and detections (image, class, box area ``w * h``, score, position in
        the results file), detections already truncated to ``max_dets[-1]`` per image and
        class.
    pair_d, pair_g, pair_iou : arrays
        Every same-image, same-class pair with IoU >= 0.5 (crowd: intersection over the
        detection's area), as from :func:`study.metrics.matching.candidate_pairs`.

    Returns
    -------
    dict
        ``precision`` (T x R x K x A x M, -1 where undefined; filled at the last maxDets only,
        the one pycocotools' summary reads), ``recall`` (T x K x A x M),
        ``stats`` (AP, AP50, AP75, APs, APm, APl, AR1, AR10, ARmax, ARs, ARm, ARl).
    """
    gt_img, gt_cls, dt_img, dt_cls = (np.asarray(x, np.int64) for x in (gt_img, gt_cls, dt_img, dt_cls))
    gt_area, dt_area, dt_score = (np.asarray(x, float) for x in (gt_area, dt_area, dt_score))
    gt_crowd = np.asarray(gt_crowd, bool)
    n_dt, n_gt = len(dt_score), len(gt_area)
    areas = list(AREA_RNG.values())
    T, R, K, A, M = len(IOU_THRS), len(REC_THRS), n_classes, len(areas), len(max_dets)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))

    # processing order inside an image and class: score desc, then file order (mergesort)
    rank = np.empty(n_dt, np.int64)
    o_rank = np.lexsort((dt_order, -dt_score))
    rank[o_rank] = np.arange(n_dt)
    # position of each detection within its (image, class), for maxDets truncation
    o_ic = np.lexsort((rank, dt_cls, dt_img))
    key = dt_img[o_ic] * K + dt_cls[o_ic]
    start = np.r_[True, key[1:] != key[:-1]] if n_dt else np.zeros(0, bool)
    first = np.maximum.accumulate(np.where(start, np.arange(n_dt), 0)) if n_dt else np.zeros(0, np.int64)
    pos_in_ic = np.empty(n_dt, np.int64)
    pos_in_ic[o_ic] = np.arange(n_dt) - first
    # accumulate order: per class, score desc (mergesort) over the concatenation by image
    o_acc = np.lexsort((dt_order, dt_img, -dt_score, dt_cls))
    cls_sorted = dt_cls[o_acc]
    cls_lo = np.searchsorted(cls_sorted, np.arange(K), "left")
    cls_hi = np.searchsorted(cls_sorted, np.arange(K), "right")

    pos_acc = pos_in_ic[o_acc]
    within_md = [None if (n_dt == 0 or pos_acc.max() < md) else pos_acc < md for md in max_dets]

    # pairs sorted once by (gt, rank): subsets keep the order greedy_core needs
    pair_d = np.asarray(pair_d, np.int64)
    pair_g = np.asarray(pair_g, np.int64)
    pair_iou = np.asarray(pair_iou, float)
    o = np.lexsort((rank[pair_d], pair_g))
    pair_d, pair_g, pair_iou = pair_d[o], pair_g[o], pair_iou[o]

    # groups (image, class) that exist (pycocotools drops groups with neither gt nor dt)
    for a, (lo_a, hi_a) in enumerate(areas):
        g_ign = gt_crowd | (gt_area < lo_a) | (gt_area > hi_a)
        d_out = (dt_area < lo_a) | (dt_area > hi_a)
        npig = np.bincount(gt_cls[~g_ign], minlength=K)
        has_any = np.bincount(gt_cls, minlength=K) + np.bincount(dt_cls, minlength=K) > 0
        stage2_pair = g_ign[pair_g]
        for t, thr in enumerate(IOU_THRS):
            ok = pair_iou >= min(thr, _CAP)
            s1 = ok & ~stage2_pair
            m1, _, _ = greedy_core(n_dt, n_gt, pair_d[s1], pair_g[s1], pair_iou[s1], rank, presorted=True)
            matched = m1 >= 0
            s2 = ok & stage2_pair
            s2 &= ~matched[pair_d]
            if s2.any():
                m2, _, _ = greedy_core(n_dt, n_gt, pair_d[s2], pair_g[s2], pair_iou[s2], rank,
                                       reusable=gt_crowd, presorted=True)
                ign_match = m2 >= 0
            else:
                ign_match = np.zeros(n_dt, bool)
            dt_ig = ign_match | (~matched & ~ign_match & d_out)
            tps_all = matched[o_acc]
            fps_all = ~tps_all & ~dt_ig[o_acc]
            for mi, md in enumerate(max_dets):
                within = within_md[mi]
                for k in range(K):
                    if not has_any[k] or npig[k] == 0:
                        continue
                    sl = slice(cls_lo[k], cls_hi[k])
                    if within is None:
                        tps, fps = tps_all[sl], fps_all[sl]
                    else:
                        w = within[sl]
                        tps, fps = tps_all[sl][w], fps_all[sl][w]
                    if mi < M - 1:  # the summary reads precision at the last maxDets only: recall suffices
                        recall[t, k, a, mi] = tps.sum() / npig[k] if len(tps) else 0
                        continue
                    tp_sum = np.cumsum(tps).astype(dtype=float)
                    fp_sum = np.cumsum(fps).astype(dtype=float)
                    nd = len(tp_sum)
                    rc = tp_sum / npig[k]
                    pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
                    recall[t, k, a, mi] = rc[-1] if nd else 0
                    q = np.zeros(R)
                    if nd:
                        pr = np.maximum.accumulate(pr[::-1])[::-1]
                        inds = np.searchsorted(rc, REC_THRS, side="left")
                        good = inds < nd
                        q[good] = pr[inds[good]]
                    precision[t, :, k, a, mi] = q
    return {"precision": precision, "recall": recall, "stats": summarize(precision, recall, max_dets)}


def summarize(precision: np.ndarray, recall: np.ndarray, max_dets) -> dict:
    """pycocotools ``summarize`` (mean over entries > -1), with the last maxDets for AP."""
    area_idx = {name: i for i, name in enumerate(AREA_RNG)}
    md = list(max_dets)

    def s(ap: bool, iou=None, area="all", m=md[-1]):
        x = precision if ap else recall
        if iou is not None:
            x = x[np.where(np.isclose(IOU_THRS, iou))[0]]
        a, mi = area_idx[area], md.index(m)
        x = x[:, :, :, a, mi] if ap else x[:, :, a, mi]
        v = x[x > -1]
        return float(np.mean(v)) if v.size else None

    return {"AP": s(True), "AP50": s(True, 0.5), "AP75": s(True, 0.75), "APs": s(True, area="small"),
            "APm": s(True, area="medium"), "APl": s(True, area="large"), "AR1": s(False, m=md[0]),
            "AR10": s(False, m=md[1]), "ARmax": s(False), "ARs": s(False, area="small"),
            "ARm": s(False, area="medium"), "ARl": s(False, area="large")}
