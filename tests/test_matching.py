"""Vectorised greedy matching against a literal per-image port of pycocotools' matching loop."""

from __future__ import annotations

import numpy as np
import pytest

from study.metrics.matching import greedy_match


def _coco_loop(gt_img, gt_box, gt_crowd, dt_img, dt_box, dt_score, thr):
    """pycocotools COCOeval.evaluateImg matching for one IoU threshold, image by image.

    Ground truth sorted with crowd last, detections by descending score (mergesort); for
    each detection the best unmatched GT with IoU >= thr (ties to the later GT); crowd only
    when no ordinary GT matched; crowd GT can be matched repeatedly.
    """
    from pycocotools import mask as mu

    tp = np.zeros(len(dt_img), bool)
    ign = np.zeros(len(dt_img), bool)
    match = np.full(len(dt_img), -1)
    for im in np.unique(np.r_[gt_img, dt_img]):
        gi = np.flatnonzero(gt_img == im)
        di = np.flatnonzero(dt_img == im)
        if not len(di):
            continue
        gi = gi[np.argsort(gt_crowd[gi], kind="mergesort")]
        di = di[np.argsort(-dt_score[di], kind="mergesort")]
        if not len(gi):
            continue
        ious = mu.iou(dt_box[di].tolist(), gt_box[gi].tolist(), gt_crowd[gi].astype(int).tolist())
        gtm = np.zeros(len(gi), bool)
        for a, d in enumerate(di):
            iou = min(thr, 1 - 1e-10)
            m = -1
            for b, g in enumerate(gi):
                if gtm[b] and not gt_crowd[g]:
                    continue
                if m > -1 and not gt_crowd[gi[m]] and gt_crowd[g]:
                    break
                if ious[a, b] < iou:
                    continue
                iou = ious[a, b]
                m = b
            if m == -1:
                continue
            gtm[m] = True
            if gt_crowd[gi[m]]:
                ign[d] = True
            else:
                tp[d] = True
                match[d] = gi[m]
    return tp, ign, match


def _random_scene(rng, n_img, crowd_rate=0.05, dup_rate=0.3):
    gt_img, gt_box, dt_img, dt_box, dt_score = [], [], [], [], []
    for im in range(n_img):
        k = rng.integers(0, 25)
        xy = rng.uniform(0, 200, (k, 2))
        wh = rng.uniform(5, 40, (k, 2))
        boxes = np.c_[xy, wh]
        gt_img += [im] * k
        gt_box.append(boxes)
        # detections: jittered copies (some duplicated) + false positives
        src = boxes[rng.random(k) < 0.8]
        dup = src[rng.random(len(src)) < dup_rate]
        jit = np.r_[src, dup]
        jit = jit + rng.normal(0, 4, jit.shape) * [1, 1, 0.5, 0.5]
        jit[:, 2:] = np.abs(jit[:, 2:]) + 1
        n_fp = rng.integers(0, 10)
        fps = np.c_[rng.uniform(0, 200, (n_fp, 2)), rng.uniform(5, 40, (n_fp, 2))]
        d = np.r_[jit, fps]
        dt_img += [im] * len(d)
        dt_box.append(d)
        sc = rng.random(len(d)).round(2)  # coarse scores: many ties
        dt_score.append(sc)
    gt_box = np.vstack(gt_box) if gt_box else np.zeros((0, 4))
    gt_crowd = rng.random(len(gt_box)) < crowd_rate
    return (np.array(gt_img), gt_box, gt_crowd, np.array(dt_img), np.vstack(dt_box), np.concatenate(dt_score))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("thr", [0.3, 0.5, 0.75])
def test_matches_coco_loop(seed, thr):
    rng = np.random.default_rng(seed)
    gi, gb, gc, di, db, ds = _random_scene(rng, 40)
    ref_tp, ref_ign, ref_match = _coco_loop(gi, gb, gc, di, db, ds, thr)
    r = greedy_match(gi, gb, di, db, ds, threshold=thr, gt_crowd=gc)
    assert ref_tp.sum() > 0
    np.testing.assert_array_equal(r.tp, ref_tp)
    np.testing.assert_array_equal(r.ignored, ref_ign)
    np.testing.assert_array_equal(r.matched_gt, ref_match)
    # each ground truth taken at most once, only by a detection of its image
    taken = r.matched_gt[r.tp]
    assert len(np.unique(taken)) == len(taken)
    assert (gi[taken] == di[r.tp]).all()


def test_hand_worked_greedy_order():
    # One image. GT A=[0,0,10,10], B=[8,0,10,10].
    # d0 (score .9) = [4,0,10,10]: IoU with A = 6*10/(200-60)=60/140=.4286, with B = 6*10... same .4286 -> tie,
    #   COCO gives ties to the later GT -> B (threshold .4).
    # d1 (score .8) = [0,0,10,10] identical to A: IoU 1 -> A.
    # d2 (score .7) = [8,0,10,10] identical to B, but B is taken and A is taken -> FP.
    gt = np.array([[0, 0, 10, 10], [8, 0, 10, 10]], float)
    dt = np.array([[4, 0, 10, 10], [0, 0, 10, 10], [8, 0, 10, 10]], float)
    r = greedy_match([0, 0], gt, [0, 0, 0], dt, [0.9, 0.8, 0.7], threshold=0.4)
    assert r.matched_gt.tolist() == [1, 0, -1]
    assert r.tp.tolist() == [True, True, False]
    assert r.similarity[0] == pytest.approx(60 / 140)


def test_center_distance_rule():
    # centres: GT at (5,5) and (25,5); d0 centre (14,5): distances 9 and 11 -> nearest is GT0 (r=10 allows only GT0)
    # d1 centre (6,5): GT0 taken; GT1 at distance 19 > 10 -> FP.
    gt = np.array([[0, 0, 10, 10], [20, 0, 10, 10]], float)
    dt = np.array([[9, 0, 10, 10], [1, 0, 10, 10]], float)
    r = greedy_match([0, 0], gt, [0, 0], dt, [0.9, 0.5], threshold=10, rule="center_distance")
    assert r.matched_gt.tolist() == [0, -1]
    assert r.similarity[0] == pytest.approx(-9)


def test_groups_do_not_mix():
    gt = np.array([[0, 0, 10, 10]], float)
    dt = np.array([[0, 0, 10, 10]], float)
    r = greedy_match([0], gt, [1], dt, [0.9], threshold=0.5)
    assert not r.tp.any()


def test_sweep_pairs_cover_every_overlapping_pair():
    from study.metrics.matching import box_iou_pairs, group_pairs, sweep_pairs

    rng = np.random.default_rng(5)
    gi, gb, gc, di, db, ds = _random_scene(rng, 30)
    all_pairs = set()
    for d, g in group_pairs(gi, di):
        iou = box_iou_pairs(db, gb, d, g)
        all_pairs |= {(int(a), int(b)) for a, b in zip(d[iou > 0], g[iou > 0])}
    swept = set()
    for d, g in sweep_pairs(gi, gb, di, db, chunk=500):  # small chunks exercise the chunking
        swept |= {(int(a), int(b)) for a, b in zip(d, g)}
    assert all_pairs and all_pairs <= swept
    assert all(gi[b] == di[a] for a, b in swept)
