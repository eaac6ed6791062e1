"""Image-level presence: hand-worked 2x2 table, Wilson intervals from statsmodels (the reference)."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from study.metrics.bootstrap import resampling_weights
from study.metrics.detection import evaluate_detection
from study.metrics.presence import evaluate_presence


def test_hand_worked_table():
    # truth  1 1 0 0 1 ; called 1 0 1 0 1 -> TP 2, FN 1, FP 1, TN 1
    # accuracy 3/5, sensitivity 2/3, specificity 1/2, F1 = 2*2 / (2*2 + 1 + 1) = 2/3
    truth = np.array([1, 1, 0, 0, 1], bool)
    called = np.array([1, 0, 1, 0, 1], bool)
    blocks = list(resampling_weights(5, n_replicates=200, rng=np.random.default_rng(0)))
    r = evaluate_presence(truth, called, np.arange(5), weight_blocks=blocks, n_bootstrap=200)
    assert r.table.model_dump() == {"tp": 2, "fp": 1, "fn": 1, "tn": 1}
    assert r.accuracy.estimate == pytest.approx(3 / 5)
    assert r.sensitivity.estimate == pytest.approx(2 / 3)
    assert r.specificity.estimate == pytest.approx(1 / 2)
    assert r.f1.estimate == pytest.approx(2 / 3)
    assert r.n_images_positive == 3
    lo, hi = proportion_confint(2, 3, alpha=0.05, method="wilson")
    assert (r.sensitivity.ci_low, r.sensitivity.ci_high) == pytest.approx((lo, hi))
    assert "Wilson" in r.sensitivity.method and "bootstrap" in r.f1.method


def test_presence_from_detections_uses_operating_threshold():
    # 3 images, class "c": image 1 has a lesion and a detection at .7 (called at .5),
    # image 2 has a lesion, detection at .3 (not called), image 3 no lesion, detection at .6 (false call).
    gt = {"images": [{"id": i, "width": 50, "height": 50} for i in (1, 2, 3)], "categories": [{"id": 1, "name": "c"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0},
                          {"id": 2, "image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0}]}
    dt = [{"image_id": 1, "category_id": 1, "bbox": [30, 30, 5, 5], "score": 0.7},
          {"image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.3},
          {"image_id": 3, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.6}]
    p = evaluate_detection(gt, dt, n_bootstrap=0).presence["c"]
    # presence ignores where the detection is: image 1 counts as found
    assert p.table.model_dump() == {"tp": 1, "fp": 1, "fn": 1, "tn": 0}
    p2 = evaluate_detection(gt, dt, n_bootstrap=0, operating_threshold=0.25).presence["c"]
    assert p2.table.model_dump() == {"tp": 2, "fp": 1, "fn": 0, "tn": 0}
