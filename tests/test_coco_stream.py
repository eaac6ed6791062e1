"""study.coco_stream: a COCO file with its annotations streamed gives what json.load of it gives."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from study.coco_stream import iter_items, streamed_coco
from study.errors import StudyError
from study.grading import counts_from_coco

CLASSES = ["comedone", "papule", "pustule"]


def _coco(tmp_path, n_images=30):
    images = [{"id": i + 1, "file_name": f"c{i}.jpg", "case_id": f"C{i:03d}", "width": 640, "height": 480}
              for i in range(n_images)]
    anns, k = [], 0
    for i in range(n_images):
        for j in range(i % 5):
            k += 1
            anns.append({"id": k, "image_id": i + 1, "category_id": 1 + (i + j) % 3, "iscrowd": 0,
                         "bbox": [1.5 * j, 2.0, 10, 12.25], "area": 122.5,
                         "segmentation": [[1.0, 2.0, 11.0, 2.0, 11.0, 14.25]]})
    gt = {"info": {"note": "é"}, "images": images, "annotations": anns,
          "categories": [{"id": c + 1, "name": n} for c, n in enumerate(CLASSES)]}
    path = tmp_path / "ground_truth.json"
    path.write_text(json.dumps(gt, indent=2, ensure_ascii=False), encoding="utf-8")
    return path, gt


def test_streamed_items_equal_json_load(tmp_path):
    """Reference: the standard library's json.load of the same file (ints stay ints, floats floats)."""
    path, gt = _coco(tmp_path)
    s = streamed_coco(path)
    assert s["images"] == gt["images"]
    assert s["categories"] == gt["categories"]
    assert list(s["annotations"]) == gt["annotations"]
    assert list(s["annotations"]) == gt["annotations"]  # streamed again: iterable more than once
    assert [type(v) for v in next(iter(s["annotations"]))["bbox"]] == [type(v) for v in gt["annotations"][0]["bbox"]]
    assert "info" not in s and set(s) == {"images", "categories", "annotations"}


def test_counts_from_streamed_coco_equal_counts_from_the_whole_file(tmp_path):
    path, gt = _coco(tmp_path)
    slim = streamed_coco(path, image_keys=("id", "case_id"), annotation_keys=("image_id", "category_id"))
    assert slim["images"][0] == {"id": 1, "case_id": "C000"}
    assert next(iter(slim["annotations"])) == {"image_id": 2, "category_id": 2}
    pd.testing.assert_frame_equal(counts_from_coco(slim, classes=CLASSES), counts_from_coco(gt, classes=CLASSES))


def test_streamed_coco_names_the_file_when_broken_or_missing(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [{"id": 1}, ', encoding="utf-8")
    with pytest.raises(StudyError, match="invalid JSON") as e:
        list(iter_items(bad, "images.item"))
    assert str(bad) in str(e.value)
    with pytest.raises(StudyError, match="file not found"):
        streamed_coco(tmp_path / "missing.json")
