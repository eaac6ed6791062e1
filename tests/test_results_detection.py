"""The typed ``detection`` block: the report fixture validates, unknown keys are refused, options are checked."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from study.errors import StudyError
from study.io import dumps_json
from study.metrics.detection import evaluate_detection
from study.options import DetectionOptions
from study.results.detection import DetectionResult

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "report" / "results.json.gz"


def _fixture_detection() -> dict:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        return json.load(f)["detection"]


def _one_image(n_classes: int = 2) -> tuple[dict, list[dict]]:
    gt = {"images": [{"id": 1, "width": 100, "height": 100}],
          "categories": [{"id": k + 1, "name": f"c{k}"} for k in range(n_classes)],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100,
                           "iscrowd": 0}]}
    dt = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}]
    return gt, dt


def test_fixture_detection_block_validates_and_round_trips():
    blocks = _fixture_detection()
    assert blocks
    for d in blocks.values():
        typed = DetectionResult.model_validate(d)
        assert json.loads(dumps_json(typed)) == d  # same keys, same values
        assert typed.any_lesion.ap_ci.method.startswith("delete-a-group jackknife")


def test_unknown_keys_are_refused():
    d = next(iter(_fixture_detection().values()))
    with pytest.raises(ValidationError, match="extra"):
        DetectionResult.model_validate({**d, "map_ci": d["any_lesion"]["ap_ci"]})
    name = next(iter(d["classes"]))
    cls = {**d["classes"][name], "_f1_point": 0.5}
    with pytest.raises(ValidationError, match="_f1_point"):
        DetectionResult.model_validate({**d, "classes": {**d["classes"], name: cls}})


def test_undefined_numbers_are_none():
    # class c1 has no reference lesion: its AP is undefined (None, not NaN) and mAP leaves it out
    gt, dt = _one_image()
    r = evaluate_detection(gt, dt, n_bootstrap=0)
    assert r.classes["c1"].ap is None and r.classes["c1"].max_recall is None
    assert set(r.classes["c1"].pr_curve.precision) == {None}
    assert r.map == r.classes["c0"].ap == pytest.approx(1.0)
    assert r.classes["c0"].coco is not None  # the native backend gives COCO AP per class; the libraries do not
    lib = evaluate_detection(gt, dt, n_bootstrap=0, coco_backend="pycocotools")
    assert lib.classes["c0"].coco is None and "coco" not in lib.classes["c0"].model_dump()
    assert json.loads(dumps_json(r))["classes"]["c1"]["ap"] is None


def test_library_backend_without_detections_has_the_full_shape():
    gt, _ = _one_image()
    c = evaluate_detection(gt, [], n_bootstrap=0, coco_backend="pycocotools").coco
    assert c.reason == "no detections" and c.AP is None and c.max_dets == [1, 10, 1000]
    assert "note" not in c.model_dump() and c.model_dump()["reason"] == "no detections"


@pytest.mark.parametrize(("option", "value", "field"), [
    ("iou_threshold", 1.5, "iou_threshold"),
    ("operating_threshold", -0.1, "operating_threshold"),
    ("max_detections", 0, "max_detections"),
    ("n_bootstrap", -1, "n_bootstrap"),
    ("confidence", 0.3, "confidence"),
    ("coco_backend", "detectron", "coco_backend"),
    ("froc_fp_rates", (0.5, -1), "froc_fp_rates"),
])
def test_bad_options_name_the_option(option, value, field):
    gt, dt = _one_image()
    with pytest.raises(StudyError) as e:
        evaluate_detection(gt, dt, **{"n_bootstrap": 0, option: value})
    assert any(p.file == "options" and p.where.startswith(field) for p in e.value.problems), e.value.problems


def test_centre_distance_needs_a_radius():
    gt, dt = _one_image()
    with pytest.raises(StudyError, match="center_distance_px"):
        evaluate_detection(gt, dt, n_bootstrap=0, match_rule="center_distance")
    with pytest.raises(ValidationError, match="center_distance_px"):
        DetectionOptions(match_rule="center_distance")


def test_options_hand_the_metric_its_keywords():
    o = DetectionOptions(classes=("c0", "c1"), iou_threshold=0.4, max_detections=300)
    kw = o.arguments()
    assert kw["iou_threshold"] == 0.4 and kw["max_detections"] == 300 and kw["classes"] == ("c0", "c1")
    assert (kw["n_bootstrap"], kw["seed"], kw["confidence"]) == (2000, 20261121, 0.95)
    gt, dt = _one_image()
    r = evaluate_detection(gt, dt, **{**kw, "n_bootstrap": 0})
    assert r.iou_threshold == 0.4 and r.max_detections == 300 and r.bootstrap.seed == 20261121
    # a study never caps detections at COCO's 100; a direct call may (comparisons with pycocotools)
    with pytest.raises(ValidationError):
        DetectionOptions(max_detections=20)
    assert evaluate_detection(gt, dt, n_bootstrap=0, max_detections=20).max_detections == 20
