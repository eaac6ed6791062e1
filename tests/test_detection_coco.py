"""The native COCO block equals pycocotools (the reference implementation) to 1e-12."""

from __future__ import annotations

import json

import numpy as np
import pytest

from study.metrics.detection import evaluate_detection
from tests.conftest import pycocotools_eval

KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "ARmax", "ARs", "ARm", "ARl"]


def _pycocotools(gt, dt, max_dets):
    ev = pycocotools_eval(gt, dt, max_dets=max_dets)
    return ev.eval["precision"], ev.eval["recall"]


def _random(rng, n_img=25, n_cls=3):
    """Boxes of every COCO area range, crowd regions, heavy duplication, score ties, empty images."""
    images = [{"id": 100 + 3 * i, "width": 800, "height": 600} for i in range(n_img)]
    cats = [{"id": 5 + 2 * k, "name": f"k{k}"} for k in range(n_cls)]
    anns, dets = [], []
    for im in images:
        for _ in range(int(rng.integers(0, 15))):
            side = float(rng.choice([8, 20, 40, 70, 120, 200]) * rng.uniform(0.8, 1.2))
            b = [float(rng.uniform(0, 600)), float(rng.uniform(0, 400)), side, side * float(rng.uniform(0.6, 1.4))]
            c = 5 + 2 * int(rng.integers(0, n_cls))
            crowd = int(rng.random() < 0.07)
            # the area field differs from w*h (COCO: polygon area), which the area ranges use
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": c, "bbox": b,
                         "area": b[2] * b[3] * float(rng.uniform(0.6, 1.0)), "iscrowd": crowd})
            for _ in range(int(rng.integers(0, 4))):
                j = (np.array(b) + rng.normal(0, 0.08 * side, 4)).tolist()
                j[2], j[3] = abs(j[2]) + 1, abs(j[3]) + 1
                dets.append({"image_id": im["id"], "category_id": c if rng.random() < 0.9 else 5,
                             "bbox": j, "score": float(np.round(rng.random(), 1))})
        for _ in range(int(rng.integers(0, 6))):
            s = float(rng.choice([10, 50, 150]))
            dets.append({"image_id": im["id"], "category_id": 5 + 2 * int(rng.integers(0, n_cls)),
                         "bbox": [float(rng.uniform(0, 600)), float(rng.uniform(0, 400)), s, s],
                         "score": float(np.round(rng.random(), 1))})
    return {"images": images, "annotations": anns, "categories": cats}, dets


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("max_dets", [1000, 20])
def test_native_equals_pycocotools(seed, max_dets):
    rng = np.random.default_rng(seed)
    gt, dt = _random(rng)
    prec, rec = _pycocotools(gt, dt, max_dets)
    r = evaluate_detection(gt, dt, n_bootstrap=0, max_detections=max_dets)
    c = r.coco.model_dump()
    assert c["backend"] == "native" and c["max_dets"] == [1, 10, max_dets]

    def ref(x, ap=True):
        v = x[x > -1]
        return float(np.mean(v)) if v.size else None

    expected = {
        "AP": ref(prec[:, :, :, 0, 2]), "AP50": ref(prec[0, :, :, 0, 2]), "AP75": ref(prec[5, :, :, 0, 2]),
        "APs": ref(prec[:, :, :, 1, 2]), "APm": ref(prec[:, :, :, 2, 2]), "APl": ref(prec[:, :, :, 3, 2]),
        "AR1": ref(rec[:, :, 0, 0]), "AR10": ref(rec[:, :, 0, 1]), "ARmax": ref(rec[:, :, 0, 2]),
        "ARs": ref(rec[:, :, 1, 2]), "ARm": ref(rec[:, :, 2, 2]), "ARl": ref(rec[:, :, 3, 2]),
    }
    for k in KEYS:
        if expected[k] is None:
            assert c[k] is None, k
        else:
            assert abs(c[k] - expected[k]) < 1e-12, (k, c[k], expected[k])


def test_native_equals_libraries_on_cocoapi_demo(reference_data):
    # Reference values: tests/data/README.md (pycocotools on the cocoapi demo pair)
    gt = json.loads((reference_data / "coco" / "instances_val2014_100.json").read_text())
    dt = json.loads((reference_data / "coco" / "instances_val2014_fakebbox100_results.json").read_text())
    nat = evaluate_detection(gt, dt, n_bootstrap=0).coco.model_dump()
    fce = evaluate_detection(gt, dt, n_bootstrap=0, coco_backend="faster-coco-eval").coco.model_dump()
    assert abs(nat["AP"] - 0.5045806987249628) < 1e-12
    assert abs(nat["AP50"] - 0.6969727247299577) < 1e-12
    assert abs(nat["AP75"] - 0.5729816669904824) < 1e-12
    assert abs(nat["ARmax"] - 0.595352982877607) < 1e-12
    for k in KEYS:
        assert abs(nat[k] - fce[k]) < 1e-12, k
