"""study.metrics.coco_columns: the streamed columns equal what check_coco_pair extracts from the whole
files (the reference: json.load + study.metrics.coco_input), and the detection results are identical;
anything irregular falls back (None) to the whole-file path and its validators."""

from __future__ import annotations

import json

import numpy as np
import pytest

from study.io import dumps_json
from study.metrics.coco_columns import load_coco_columns
from study.metrics.coco_input import check_coco_pair
from study.metrics.detection import evaluate_detection
from tests.test_detection import _random_coco


def _files(tmp_path, gt, dt):
    g, d = tmp_path / "gt.json", tmp_path / "dt.json"
    g.write_text(json.dumps(gt), encoding="utf-8")
    d.write_text(json.dumps(dt, separators=(",", ":")), encoding="utf-8")
    return g, d


def _sample(seed=3):
    gt, dt = _random_coco(np.random.default_rng(seed), n_img=25)
    for k, a in enumerate(gt["annotations"]):
        if k % 4 == 0:  # a polygon class: segmentation kept for mask IoU
            x, y, w, h = a["bbox"]
            a["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
        if k % 7 == 0:
            del a["area"]  # COCO allows it: w * h is used
        if k % 9 == 0:
            a["segmentation"] = []
    return gt, dt


def test_columns_equal_check_coco_pair_and_results_are_identical(tmp_path):
    gt, dt = _sample()
    g, d = _files(tmp_path, gt, dt)
    loaded = load_coco_columns(g, d)
    assert loaded is not None
    sgt, sdt, raw = loaded
    ref = check_coco_pair(json.loads(g.read_text()), json.loads(d.read_text()))
    assert ref is not None
    for name in ("a_img", "a_cat", "a_box", "a_crowd", "a_area", "d_img", "d_cat", "d_box", "d_score"):
        a, b = getattr(raw, name), getattr(ref, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert sgt["images"] == gt["images"] and sgt["categories"] == gt["categories"]
    assert [a.get("segmentation") or None for a in sgt["annotations"]] == [
        a.get("segmentation") or None for a in gt["annotations"]]
    kw = dict(polygon_classes=["c0"], n_bootstrap=50, seed=1, patient_of={im["id"]: im["id"] // 2 for im in gt["images"]},
              image_ids=[im["id"] for im in gt["images"]][:-3])
    whole = evaluate_detection(json.loads(g.read_text()), json.loads(d.read_text()), **kw)
    streamed = evaluate_detection(sgt, sdt, raw=raw, **kw)
    assert dumps_json(streamed) == dumps_json(whole)


@pytest.mark.parametrize("spoil", ["mask_on_detection", "float_image_id", "bad_polygon", "nan_token", "no_annotations",
                                   "unknown_category", "bool_score", "dup_annotation_id", "string_bbox"])
def test_irregular_files_fall_back_to_the_whole_file_path(tmp_path, spoil):
    gt, dt = _sample()
    if spoil == "mask_on_detection":
        dt[0]["segmentation"] = [[1, 1, 5, 1, 5, 5]]
    elif spoil == "float_image_id":
        gt["annotations"][0]["image_id"] = float(gt["annotations"][0]["image_id"])
    elif spoil == "bad_polygon":
        gt["annotations"][1]["segmentation"] = [[1, 2, 3]]
    elif spoil == "no_annotations":
        gt["annotations"] = []
    elif spoil == "unknown_category":
        dt[2]["category_id"] = 999
    elif spoil == "bool_score":
        dt[0]["score"] = True
    elif spoil == "dup_annotation_id":
        gt["annotations"][1]["id"] = gt["annotations"][0]["id"]
    elif spoil == "string_bbox":
        gt["annotations"][0]["bbox"] = ["1", 2, 3, 4]
    g, d = _files(tmp_path, gt, dt)
    if spoil == "nan_token":
        d.write_text(d.read_text().replace('"score":', '"score":NaN,"x":', 1), encoding="utf-8")
    assert load_coco_columns(g, d) is None
