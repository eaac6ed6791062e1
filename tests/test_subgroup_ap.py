"""Subgroup AP from detection flags (study.metrics.subgroup_ap) against pycocotools, the study's own
evaluate_detection run on the subgroup alone, and a brute-force patient bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from study.metrics.average_precision import average_precision
from study.metrics.bootstrap import ReplicateWeights, percentile_interval
from study.metrics.detection import detection_flags, evaluate_detection
from study.metrics.subgroup_ap import SubgroupAP, class_aps, difference, subgroup_map
from tests.conftest import pycocotools_eval
from tests.test_detection import _random_coco


def _continuous(dt, rng):
    """Scores without ties (the bootstrap's weighted AP equals the resampled list's AP exactly then)."""
    for d in dt:
        d["score"] = float(rng.random())
    return dt


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_subgroup_ap_equals_pycocotools_and_evaluate_detection(seed):
    """Reference: pycocotools' per-category AP50 (imgIds = the subgroup; the study's AP is COCO's
    101-point AP) and evaluate_detection(image_ids=subgroup).map."""
    rng = np.random.default_rng(seed)
    gt, dt = _random_coco(rng, n_img=40)
    flags = detection_flags(gt, dt)
    sub = rng.random(len(flags.image_ids)) < 0.5
    ids = flags.image_ids[sub].tolist()
    ours = class_aps(flags, sub)
    p = pycocotools_eval(gt, dt, img_ids=ids).eval["precision"]
    for k, name in enumerate(flags.classes):
        ref = p[0, :, k, 0, -1]
        if (ref > -1).all():
            assert ours[name] == pytest.approx(ref.mean(), abs=1e-12), name
        else:
            assert ours[name] is None
    r = evaluate_detection(gt, dt, image_ids=ids, n_bootstrap=0)
    assert subgroup_map(flags, sub) == pytest.approx(r.map, abs=1e-12)
    # the whole cohort: the study's map
    assert subgroup_map(flags, np.ones(len(sub), bool)) == pytest.approx(evaluate_detection(gt, dt, n_bootstrap=0).map,
                                                                         abs=1e-12)


def test_subgroup_ap_at_another_iou_threshold():
    rng = np.random.default_rng(5)
    gt, dt = _random_coco(rng, n_img=25)
    flags = detection_flags(gt, dt, iou_threshold=0.75)
    sub = np.arange(len(flags.image_ids)) % 3 == 0
    r = evaluate_detection(gt, dt, iou_threshold=0.75, image_ids=flags.image_ids[sub].tolist(), n_bootstrap=0)
    assert subgroup_map(flags, sub) == pytest.approx(r.map, abs=1e-12)
    assert flags.iou_threshold == 0.75


def _brute_force_replicates(flags, sub, patient, *, n_replicates, seed):
    """Each replicate rebuilt as a list: patients drawn with the same draws, a patient drawn m times
    contributing m copies of its detections and lesions; AP by average_precision on that list."""
    labels = np.asarray([str(x) for x in patient[sub]])
    uniq, pat_sub = np.unique(labels, return_inverse=True)
    sub_idx = np.flatnonzero(sub)
    rng = np.random.default_rng(seed)
    out = []
    for block in ReplicateWeights(len(uniq), n_replicates=n_replicates, rng=rng):
        for w in block:
            aps = []
            for c in range(len(flags.classes)):
                if flags.lesions[sub, c].sum() == 0:
                    continue
                scores, tp, fp, tie, n_gt = [], [], [], [], 0
                for copy_no in range(int(w.max())):
                    for j, img in enumerate(sub_idx):
                        if w[pat_sub[j]] <= copy_no:
                            continue
                        n_gt += int(flags.lesions[img, c])
                        d = (flags.dt_img == img) & (flags.dt_cls == c)
                        scores += flags.dt_score[d].tolist()
                        tp += flags.dt_tp[d].tolist()
                        fp += flags.dt_fp[d].tolist()
                        tie += [copy_no * 10**9 + t for t in flags.dt_tie[d].tolist()]
                if n_gt == 0:
                    continue
                aps.append(average_precision(np.array(scores), np.array(tp, bool), np.array(fp, bool), n_gt,
                                             tie_order=np.array(tie, np.int64)).ap)
            out.append(np.mean(aps) if aps else np.nan)
    return np.array(out)


def test_bootstrap_equals_brute_force_resampling():
    rng = np.random.default_rng(11)
    gt, dt = _random_coco(rng, n_img=24)
    dt = _continuous(dt, rng)
    flags = detection_flags(gt, dt)
    patient = np.array([f"P{i // 2}" for i in range(len(flags.image_ids))], dtype=object)  # two images each
    sub = np.arange(len(flags.image_ids)) < 14
    g = SubgroupAP(flags, sub, patient)
    assert (g.n_images, g.n_patients) == (14, 7)
    assert g.n_lesions == int(flags.lesions[sub].sum())
    reps = g.replicates(n_replicates=60, seed=4)
    ref = _brute_force_replicates(flags, sub, patient, n_replicates=60, seed=4)
    np.testing.assert_allclose(reps, ref, rtol=0, atol=1e-12)
    est = g.estimate(reps, n_replicates=60, confidence=0.9)
    lo, hi, _ = percentile_interval(ref, confidence=0.9)
    assert (est.ci_low, est.ci_high) == pytest.approx((lo, hi), abs=1e-12)
    assert est.estimate == pytest.approx(subgroup_map(flags, sub), abs=1e-15)
    assert "resampling patients" in est.method


def test_bootstrap_in_small_row_blocks_equals_brute_force(monkeypatch):
    """The bounded-memory path (a few replicate rows per work array, as at 100,000 cases) gives the
    brute-force replicates too."""
    import study.metrics.subgroup_ap as subgroup_ap

    rng = np.random.default_rng(11)
    gt, dt = _random_coco(rng, n_img=24)
    dt = _continuous(dt, rng)
    flags = detection_flags(gt, dt)
    patient = np.array([f"P{i // 2}" for i in range(len(flags.image_ids))], dtype=object)
    sub = np.arange(len(flags.image_ids)) < 14
    whole = SubgroupAP(flags, sub, patient).replicates(n_replicates=60, seed=4)
    monkeypatch.setattr(subgroup_ap, "_CELLS", 7)  # fewer cells than one class's detections: one row at a time
    rows = SubgroupAP(flags, sub, patient).replicates(n_replicates=60, seed=4)
    np.testing.assert_array_equal(rows, whole)
    ref = _brute_force_replicates(flags, sub, patient, n_replicates=60, seed=4)
    np.testing.assert_allclose(rows, ref, rtol=0, atol=1e-12)


def test_difference_interval_and_p_value_brute_force():
    rng = np.random.default_rng(2)
    gt, dt = _random_coco(rng, n_img=30)
    dt = _continuous(dt, rng)
    flags = detection_flags(gt, dt)
    patient = np.array([f"P{i // 3}" for i in range(len(flags.image_ids))], dtype=object)
    light = np.arange(len(flags.image_ids)) < 15
    a, b = SubgroupAP(flags, light, patient), SubgroupAP(flags, ~light, patient)
    ra, rb = a.replicates(n_replicates=200, seed=[0, 7]), b.replicates(n_replicates=200, seed=[0, 8])
    est, p = difference(a, b, ra, rb, n_replicates=200, confidence=0.95)
    assert est.estimate == pytest.approx(a.point - b.point, abs=1e-15)
    d = ra - rb
    lo, hi, _ = percentile_interval(d, confidence=0.95)
    assert (est.ci_low, est.ci_high) == pytest.approx((lo, hi), abs=1e-12)
    below = sum(1 for x in d if x <= 0)
    above = sum(1 for x in d if x >= 0)
    assert p == pytest.approx(min(1.0, 2 * min(below + 1, above + 1) / (len(d) + 1)))
    assert "independently" in est.method


def test_difference_detects_a_real_gap_and_not_a_null_one():
    """A group whose detections are all correct versus one whose detections are all wrong: p small;
    two halves of the same detector on exchangeable images: p not small."""
    rng = np.random.default_rng(9)
    images = [{"id": i + 1, "width": 200, "height": 200} for i in range(40)]
    anns, dets = [], []
    for im in images:
        for k in range(3):
            b = [10.0 + 50 * k, 20.0, 30.0, 30.0]
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": 1, "bbox": b, "area": 900.0,
                         "iscrowd": 0})
            good = im["id"] <= 20 or rng.random() < 0.2
            box = b if good else [150.0, 150.0, 20.0, 20.0]
            dets.append({"image_id": im["id"], "category_id": 1, "bbox": box, "score": float(rng.random())})
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "papule"}]}
    flags = detection_flags(gt, dets)
    patient = np.array([str(i) for i in range(40)], dtype=object)
    first = np.arange(40) < 20
    a, b = SubgroupAP(flags, first, patient), SubgroupAP(flags, ~first, patient)
    _, p = difference(a, b, a.replicates(n_replicates=400, seed=[1, 1]), b.replicates(n_replicates=400, seed=[1, 2]),
                      n_replicates=400, confidence=0.95)
    assert p is not None and p < 0.01
    odd = np.arange(40) % 2 == 1
    a, b = SubgroupAP(flags, first & odd, patient), SubgroupAP(flags, first & ~odd, patient)
    _, p_null = difference(a, b, a.replicates(n_replicates=400, seed=[1, 1]),
                           b.replicates(n_replicates=400, seed=[1, 2]), n_replicates=400, confidence=0.95)
    assert p_null is not None and p_null > 0.2


def test_group_without_lesions():
    rng = np.random.default_rng(1)
    gt, dt = _random_coco(rng, n_img=10)
    flags = detection_flags(gt, dt)
    none = np.zeros(len(flags.image_ids), bool)
    g = SubgroupAP(flags, none, np.arange(len(none)))
    assert g.point is None and g.n_images == 0
    assert g.estimate(g.replicates(n_replicates=100, seed=0), n_replicates=100, confidence=0.95).estimate is None
    with pytest.raises(ValueError, match="one subgroup flag"):
        SubgroupAP(flags, none[:-1], np.arange(len(none)))
