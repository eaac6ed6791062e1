"""Detection metrics: the COCO reference numbers, AP against pycocotools, no cap at 100 detections."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from study.errors import StudyError
from study.metrics.detection import average_precision, evaluate_detection
from tests.conftest import pycocotools_eval


# ----------------------------------------------------------------------------- COCO reference data
def test_cli_reproduces_pycocotools_demo_numbers(reference_data, run_cli, tmp_path):
    # tests/data/README.md: pycocotools' COCOeval(..., "bbox") on the official demo pair gives
    # AP = 0.5045806987249628 and AP50 = 0.6969727247299577 (cocodataset/cocoapi results/).
    gt = reference_data / "coco" / "instances_val2014_100.json"
    dt = reference_data / "coco" / "instances_val2014_fakebbox100_results.json"
    out = tmp_path / "det.json"
    rc, stdout, err = run_cli("evaluate", "detection", "--ground-truth", gt, "--detections", dt, "--out", out)
    assert rc == 0, err
    r = json.loads(out.read_text())
    assert abs(r["coco"]["AP"] - 0.5045806987249628) < 1e-12
    assert abs(r["coco"]["AP50"] - 0.6969727247299577) < 1e-12
    assert abs(r["coco"]["AP75"] - 0.5729816669904824) < 1e-12
    assert abs(r["coco"]["ARmax"] - 0.595352982877607) < 1e-12
    assert r["coco"]["backend"] == "native" and r["coco"]["max_dets"][-1] == 1000
    # our own matching + 101-point rule gives the same AP50 as the library, class by class
    assert abs(r["map"] - 0.6969727247299577) < 1e-12
    assert r["n_images"] == 100 and r["max_detections"] == 1000
    for name, c in r["classes"].items():
        assert set(c) >= {"ap", "ap_voc", "precision", "recall", "f1", "max_recall", "n_gt", "n_det", "pr_curve"}
    f = r["froc"]
    assert [p["fp_per_image"] for p in f["points"]] == [0.125, 0.25, 0.5, 1, 2, 4, 8]
    assert "resampling images" in f["average"]["method"]  # no patient mapping on the command line


@pytest.mark.parametrize("backend", ["pycocotools", "faster-coco-eval"])
def test_library_backends(reference_data, backend):
    gt = json.loads((reference_data / "coco" / "instances_val2014_100.json").read_text())
    dt = json.loads((reference_data / "coco" / "instances_val2014_fakebbox100_results.json").read_text())
    c = evaluate_detection(gt, dt, n_bootstrap=0, coco_backend=backend).coco
    assert abs(c.AP - 0.5045806987249628) < 1e-12
    assert abs(c.AP50 - 0.6969727247299577) < 1e-12
    assert c.backend == backend and c.max_dets == [1, 10, 1000]


# ----------------------------------------------------------------------------- AP vs pycocotools
def _random_coco(rng, n_img=30, n_cls=3, crowd=True):
    images = [{"id": i + 7, "width": 400, "height": 300} for i in range(n_img)]
    cats = [{"id": 10 + k, "name": f"c{k}"} for k in range(n_cls)]
    anns, dets = [], []
    for im in images:
        k = int(rng.integers(0, 20))
        for _ in range(k):
            b = [float(rng.uniform(0, 350)), float(rng.uniform(0, 250)), float(rng.uniform(4, 50)), float(rng.uniform(4, 50))]
            c = int(rng.integers(0, n_cls))
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": 10 + c, "bbox": b,
                         "area": b[2] * b[3], "iscrowd": int(crowd and rng.random() < 0.05)})
            for _ in range(int(rng.integers(0, 3))):
                j = (np.array(b) + rng.normal(0, 3, 4) * [1, 1, .5, .5]).tolist()
                j[2], j[3] = abs(j[2]) + 1, abs(j[3]) + 1
                cc = c if rng.random() < 0.85 else int(rng.integers(0, n_cls))
                dets.append({"image_id": im["id"], "category_id": 10 + cc, "bbox": j,
                             "score": float(np.round(rng.random(), 2))})
        for _ in range(int(rng.integers(0, 5))):
            dets.append({"image_id": im["id"], "category_id": 10 + int(rng.integers(0, n_cls)),
                         "bbox": [float(rng.uniform(0, 350)), float(rng.uniform(0, 250)), 20.0, 20.0],
                         "score": float(np.round(rng.random(), 2))})
    return {"images": images, "annotations": anns, "categories": cats}, dets


def _pycocotools_ap_per_class(gt, dt, max_dets=1000):
    return pycocotools_eval(gt, dt, max_dets=max_dets).eval["precision"]  # T x R x K x A x M


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_ap_equals_pycocotools(seed):
    """Reference: pycocotools COCOeval precision array (per-class AP at IoU .5 and .75, area all)."""
    rng = np.random.default_rng(seed)
    gt, dt = _random_coco(rng)
    p = _pycocotools_ap_per_class(gt, dt)
    for t_idx, thr in ((0, 0.5), (5, 0.75)):
        r = evaluate_detection(gt, dt, iou_threshold=thr, n_bootstrap=0)
        for k, name in enumerate(["c0", "c1", "c2"]):
            ref = p[t_idx, :, k, 0, -1]
            ours = r.classes[name].ap
            if (ref > -1).all():
                assert abs(ours - ref.mean()) < 1e-12, (name, thr)
            else:
                assert ours is None or np.isnan(ours)
    r = evaluate_detection(gt, dt, n_bootstrap=0)
    assert abs(r.map - r.coco.AP50) < 1e-12


# ----------------------------------------------------------------------------- 300 lesions
def _grid_image(n=300, extra_fp=0):
    # 300 lesions on a 20 x 15 grid of 10 x 10 px boxes (30 px apart); one exact detection each,
    # scores all distinct, decreasing in lesion order; plus optional low-score false positives.
    boxes = [[30.0 * (i % 20), 30.0 * (i // 20), 10.0, 10.0] for i in range(n)]
    gt = {"images": [{"id": 1, "width": 640, "height": 480}], "categories": [{"id": 1, "name": "acne"}],
          "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": 100.0, "iscrowd": 0}
                          for i, b in enumerate(boxes)]}
    dt = [{"image_id": 1, "category_id": 1, "bbox": b, "score": 0.99 - 0.003 * i} for i, b in enumerate(boxes)]
    dt += [{"image_id": 1, "category_id": 1, "bbox": [615.0, 455.0, 10.0, 10.0], "score": 0.001}] * extra_fp
    return gt, dt


def test_three_hundred_lesions_are_not_truncated():
    gt, dt = _grid_image()
    r = evaluate_detection(gt, dt, n_bootstrap=0)
    c = r.classes["acne"]
    assert c.n_det == 300 and c.n_gt == 300
    assert c.max_recall == 1.0 and c.ap == 1.0 and c.ap_voc == 1.0
    assert r.coco.AP50 == pytest.approx(1.0, abs=1e-12)
    assert r.coco.ARmax == pytest.approx(1.0, abs=1e-12)
    # with the COCO default cap of 100 only the 100 best detections count: recall 1/3 and
    # 101-point AP = (#recall levels 0, .01, ..., .33 = 34) / 101
    capped = evaluate_detection(gt, dt, n_bootstrap=0, max_detections=100)
    cc = capped.classes["acne"]
    assert cc.max_recall == pytest.approx(1 / 3)
    assert cc.ap == pytest.approx(34 / 101, abs=1e-12)
    assert capped.inputs.n_det_truncated_by_max_detections == 200
    # pycocotools with its default maxDets (100) reports the truncated number
    p = _pycocotools_ap_per_class(gt, dt, max_dets=100)
    assert p[0, :, 0, 0, -1].mean() == pytest.approx(34 / 101, abs=1e-12)
    assert r.coco.AP50 != pytest.approx(34 / 101)


# ----------------------------------------------------------------------------- hand-worked AP
def test_average_precision_hand_worked():
    # 3 lesions; detections by score: TP, FP, TP. precision 1, 1/2, 2/3; recall 1/3, 1/3, 2/3.
    # monotone envelope: 1 up to recall 1/3, 2/3 up to 2/3.
    # VOC all-point: 1/3 * 1 + 1/3 * 2/3 = 5/9.
    # COCO 101-point: recall levels 0..0.33 (34 levels) -> 1; 0.34..0.66 (33) -> 2/3; 0.67..1 (34) -> 0;
    #   (34 + 33 * 2/3) / 101 = 56 / 101.
    r = average_precision(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1], bool), np.array([0, 1, 0], bool), 3)
    assert r.ap_voc == pytest.approx(5 / 9, abs=1e-12)
    assert r.ap == pytest.approx(56 / 101, abs=1e-12)
    assert r.max_recall == pytest.approx(2 / 3)


def test_operating_point_and_any_lesion():
    # One image, two classes. GT: a (class x) [0,0,10,10], b (class y) [50,0,10,10].
    # detections: on a as x (0.9), on b but labelled x (0.8), on b as y (0.3).
    # class-aware at operating threshold 0.5: x: TP 1, FP 1 (b is not x) -> precision 1/2, recall 1/1;
    #   y: its detection (0.3) is below 0.5 -> TP 0, recall 0/1.
    # any lesion: 0.9 -> a, 0.8 -> b, 0.3 -> FP (both taken) -> at 0.5: TP 2, FP 0.
    gt = {"images": [{"id": 1, "width": 100, "height": 100}],
          "categories": [{"id": 1, "name": "x"}, {"id": 2, "name": "y"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
                          {"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 0, 10, 10], "area": 100, "iscrowd": 0}]}
    dt = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
          {"image_id": 1, "category_id": 1, "bbox": [50, 0, 10, 10], "score": 0.8},
          {"image_id": 1, "category_id": 2, "bbox": [50, 0, 10, 10], "score": 0.3}]
    r = evaluate_detection(gt, dt, n_bootstrap=200)
    x, y, a = r.classes["x"], r.classes["y"], r.any_lesion
    assert (x.tp, x.fp, x.fn) == (1, 1, 0)
    assert x.precision.estimate == 0.5 and x.recall.estimate == 1.0
    assert "Wilson" in x.precision.method
    assert x.f1.estimate == pytest.approx(2 / 3)  # 2*1 / (2*1 + 1 + 0)
    assert (y.tp, y.fp, y.fn) == (0, 0, 1)
    assert y.max_recall == 1.0  # found below the operating threshold
    assert (a.tp, a.fp) == (2, 0)
    assert r.presence["x"].table.model_dump() == {"tp": 1, "fp": 0, "fn": 0, "tn": 0}
    assert r.presence["y"].table.model_dump() == {"tp": 0, "fp": 0, "fn": 1, "tn": 0}


# ----------------------------------------------------------------------------- validation
def test_invalid_inputs_list_every_problem(tmp_path, run_cli):
    gt = {"images": [{"id": 1, "width": 100, "height": 100}], "categories": [{"id": 1, "name": "acne"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, -5, 10], "area": 1, "iscrowd": 0},
                          {"id": 2, "image_id": 9, "category_id": 1, "bbox": [0, 0, 5, 10], "area": 1, "iscrowd": 0}]}
    with pytest.raises(StudyError) as e:
        evaluate_detection(gt, [])
    msgs = [str(p) for p in e.value.problems]
    assert any("annotations[0].bbox" in m and "negative size" in m for m in msgs)
    assert any("annotations[1].image_id" in m and "9" in m for m in msgs)

    good_gt = copy.deepcopy(gt)
    good_gt["annotations"] = [gt["annotations"][0] | {"bbox": [0, 0, 5, 10]}]
    (tmp_path / "gt.json").write_text(json.dumps(good_gt))
    (tmp_path / "dt.json").write_text('[{"image_id": 1, "category_id": 3, "bbox": [0, 0, 5, 5], "score": NaN},'
                                      ' {"image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}]')
    rc, out, err = run_cli("evaluate", "detection", "--ground-truth", tmp_path / "gt.json",
                           "--detections", tmp_path / "dt.json", "--out", tmp_path / "o.json")
    assert rc == 2
    assert "[0].category_id" in err and "[0].score" in err and "nan" in err and "[1].image_id" in err
    assert not (tmp_path / "o.json").exists()


def test_unknown_class_option():
    gt, dt = _grid_image(5)
    with pytest.raises(StudyError, match="not categories"):
        evaluate_detection(gt, dt, classes=["papule"], n_bootstrap=0)


def test_patient_bootstrap_needs_every_image():
    gt, dt = _grid_image(5)
    with pytest.raises(StudyError, match="no patient"):
        evaluate_detection(gt, dt, patient_of={2: "p"}, n_bootstrap=10)
    r = evaluate_detection(gt, dt, patient_of={1: "p1"}, n_bootstrap=10)
    assert r.n_patients == 1 and r.bootstrap.unit == "patients"


def test_image_subset_and_center_distance_rule():
    # two images; restricting to image 1 leaves its single lesion and detection.
    # centre rule: the detection is 12 px wide of a 10 px box (IoU 0) but its centre is 4 px away.
    gt = {"images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
          "categories": [{"id": 1, "name": "acne"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 10, 10], "area": 100, "iscrowd": 0},
                          {"id": 2, "image_id": 2, "category_id": 1, "bbox": [10, 10, 10, 10], "area": 100, "iscrowd": 0}]}
    dt = [{"image_id": 1, "category_id": 1, "bbox": [13, 7, 2, 2], "score": 0.9}]
    r = evaluate_detection(gt, dt, n_bootstrap=0, image_ids=[1])
    assert r.n_images == 1 and r.classes["acne"].n_gt == 1 and r.classes["acne"].tp == 0
    assert r.inputs.gt_other_images == 1
    # centre (14, 8) vs (15, 15): distance sqrt(1 + 49) = 7.07
    r2 = evaluate_detection(gt, dt, n_bootstrap=0, image_ids=[1], match_rule="center_distance", center_distance_px=8)
    assert r2.classes["acne"].tp == 1
    r3 = evaluate_detection(gt, dt, n_bootstrap=0, image_ids=[1], match_rule="center_distance", center_distance_px=7)
    assert r3.classes["acne"].tp == 0
    # the COCO block stays a box-IoU evaluation
    assert r2.coco.AP50 == 0.0


def test_ap_interval_grouped_jackknife():
    """Delete-a-group jackknife (Kott 2001) against a plain recomputation with average_precision."""
    from scipy.stats import t as student_t

    from study.metrics.detection import ap_interval

    rng = np.random.default_rng(0)
    n = 300
    tp = rng.random(n) < 0.6
    score = np.where(tp, rng.beta(4, 2, n), rng.beta(2, 4, n))
    pat = rng.integers(0, 30, n)
    ngt_pat = np.bincount(pat[tp], minlength=30) + 1
    point = average_precision(score, tp, ~tp, int(ngt_pat.sum())).ap
    e = ap_interval(point, score, tp, ~tp, pat, ngt_pat, n_groups=10, seed=3)
    # reference: drop each group's patients, recompute AP from scratch on what is left
    group_of = np.random.default_rng(3).permutation(30) % 10
    thetas = []
    for g in range(10):
        keep = group_of[pat] != g
        thetas.append(average_precision(score[keep], tp[keep], ~tp[keep], int(ngt_pat[group_of != g].sum())).ap)
    thetas = np.array(thetas)
    se = np.sqrt(9 / 10 * np.sum((thetas - thetas.mean()) ** 2))
    assert e.se == pytest.approx(se, rel=1e-9)
    assert e.ci_low == pytest.approx(point - student_t.ppf(0.975, 9) * se, rel=1e-9)
    assert "jackknife" in e.method and "10 random groups" in e.method
