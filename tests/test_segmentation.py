"""Dice / IoU of polygon classes, on masks whose areas are counted by hand."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mu

from study.metrics.detection import evaluate_detection


def _rle(x0, y0, w, h, H=40, W=60):
    m = np.zeros((H, W), np.uint8, order="F")
    m[y0:y0 + h, x0:x0 + w] = 1
    r = mu.encode(np.asfortranarray(m))
    r["counts"] = r["counts"].decode("ascii")
    return r


def test_mask_iou_matching_and_dice():
    # Image 60 x 40. Class "cyst" (polygon class): GT mask 10x10 at (0,0); GT mask 10x10 at (30,0).
    # Detection 1 mask 10x10 at (2,0): intersection 8*10 = 80, union 120 -> IoU 2/3, Dice 160/200 = .8
    # Detection 2: box identical to GT 2's box, but its mask is only the left half (5x10):
    #   mask IoU = 50/100 = .5 (matched at .5); box IoU would be 1.
    # Class "papule" (box class) alongside, unaffected.
    gt = {"images": [{"id": 1, "width": 60, "height": 40}],
          "categories": [{"id": 1, "name": "cyst"}, {"id": 2, "name": "papule"}],
          "annotations": [
              {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0,
               "segmentation": _rle(0, 0, 10, 10)},
              {"id": 2, "image_id": 1, "category_id": 1, "bbox": [30, 0, 10, 10], "area": 100, "iscrowd": 0,
               "segmentation": _rle(30, 0, 10, 10)},
              {"id": 3, "image_id": 1, "category_id": 2, "bbox": [50, 30, 5, 5], "area": 25, "iscrowd": 0}]}
    dt = [{"image_id": 1, "category_id": 1, "bbox": [2, 0, 10, 10], "score": 0.9, "segmentation": _rle(2, 0, 10, 10)},
          {"image_id": 1, "category_id": 1, "bbox": [30, 0, 10, 10], "score": 0.8, "segmentation": _rle(30, 0, 5, 10)},
          {"image_id": 1, "category_id": 2, "bbox": [50, 30, 5, 5], "score": 0.9}]
    r = evaluate_detection(gt, dt, polygon_classes=["cyst"], n_bootstrap=50)
    seg = r.segmentation["cyst"]
    assert seg.iou_type == "segm"
    assert seg.instance.n == 2
    # instance IoU: 2/3 and 1/2 -> mean 7/12 ; Dice: .8 and 2*.5/1.5 = 2/3 -> mean (0.8 + 2/3) / 2
    assert seg.instance.iou.estimate == pytest.approx(7 / 12)
    assert seg.instance.dice.estimate == pytest.approx((0.8 + 2 / 3) / 2)
    # image: union of GT = 200 px, union of predictions = 100 + 50 = 150, intersection 80 + 50 = 130
    #   Dice = 260 / 350, IoU = 130 / 220
    assert seg.image.n == 1
    assert seg.image.dice.estimate == pytest.approx(260 / 350)
    assert seg.image.iou.estimate == pytest.approx(130 / 220)
    assert r.classes["cyst"].tp == 2 and r.classes["papule"].tp == 1

    # raise the IoU threshold to .6: the half mask (IoU .5) no longer matches although its box is exact
    r2 = evaluate_detection(gt, dt, polygon_classes=["cyst"], iou_threshold=0.6, n_bootstrap=0)
    assert r2.classes["cyst"].tp == 1


def test_polygons_rasterised_at_image_size():
    # square polygons 0..10: pycocotools rasterises them to 10x10 = 100 px; two identical -> Dice 1
    poly = [[0, 0, 10, 0, 10, 10, 0, 10]]
    gt = {"images": [{"id": 1, "width": 30, "height": 30}], "categories": [{"id": 1, "name": "scar"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100,
                           "iscrowd": 0, "segmentation": poly}]}
    dt = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9, "segmentation": poly}]
    seg = evaluate_detection(gt, dt, polygon_classes=["scar"], n_bootstrap=0).segmentation["scar"]
    assert seg.instance.dice.estimate == pytest.approx(1.0)
    assert seg.image.iou.estimate == pytest.approx(1.0)


def test_model_boxes_against_reference_masks_are_called_box_overlap():
    """Issue 17 item 3: mask IoU / Dice only when both sides are masks. A model returning boxes is matched by
    box IoU; per image, its boxes are rasterised against the reference masks (areas counted by hand)."""
    from study.report.context.detection import detection_context

    # reference: mask 10x10 at (0,0) whose box is [0,0,10,10]; but the mask covers only its left half (5x10)
    gt = {"images": [{"id": 1, "width": 60, "height": 40}], "categories": [{"id": 1, "name": "cyst"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 50,
                           "iscrowd": 0, "segmentation": _rle(0, 0, 5, 10)}]}
    dt = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}]
    r = evaluate_detection(gt, dt, polygon_classes=["cyst"], n_bootstrap=0)
    seg = r.segmentation["cyst"]
    assert seg.iou_type == "bbox" and seg.model_masks is False and seg.reference_masks is True
    assert seg.image_overlap == "box_vs_mask"
    assert seg.instance.iou.estimate == pytest.approx(1.0)  # box IoU of identical boxes
    # image: box 100 px against mask 50 px, intersection 50 -> IoU .5, Dice 100/150
    assert seg.image.iou.estimate == pytest.approx(0.5)
    assert seg.image.dice.estimate == pytest.approx(100 / 150)
    table = detection_context({"m": r}, {}, classes=["cyst"], operating_threshold=0.5)["models"][0]["segmentation"]
    assert table["columns"][3:] == ["Box IoU", "Box Dice"] and "box overlap" in table["caption"]
    assert any("the model returned boxes" in n and "rasterised" in n for n in table["notes"])
    # with masks on both sides, the same table says mask
    dt_mask = [dict(dt[0], segmentation=_rle(0, 0, 5, 10))]
    r2 = evaluate_detection(gt, dt_mask, polygon_classes=["cyst"], n_bootstrap=0)
    assert r2.segmentation["cyst"].iou_type == "segm" and r2.segmentation["cyst"].image_overlap == "mask"
    t2 = detection_context({"m": r2}, {}, classes=["cyst"], operating_threshold=0.5)["models"][0]["segmentation"]
    assert t2["columns"][3:] == ["Mask IoU", "Mask Dice"]


def test_image_unions_with_lesions_interleaved_across_images():
    """Per-image unions when annotations and detections of many images come in no image order (issue 16:
    grouped by one sort instead of a mask per image). Reference: the masks painted with numpy, image by image."""
    rng = np.random.default_rng(7)
    n_img, H, W = 12, 40, 60
    anns, dts, truth = [], [], {}
    for k in range(60):
        img = int(rng.integers(1, n_img + 1))
        x, y, w, h = (int(v) for v in (rng.integers(0, 45), rng.integers(0, 25), rng.integers(3, 15), rng.integers(3, 15)))
        anns.append({"id": k + 1, "image_id": img, "category_id": 1, "bbox": [x, y, w, h], "area": w * h,
                     "iscrowd": 0, "segmentation": _rle(x, y, w, h)})
        truth.setdefault(img, [np.zeros((H, W), bool), np.zeros((H, W), bool)])[0][y:y + h, x:x + w] = True
    for k in range(70):
        img = int(rng.integers(1, n_img + 3))  # two images with detections only
        x, y, w, h = (int(v) for v in (rng.integers(0, 45), rng.integers(0, 25), rng.integers(3, 15), rng.integers(3, 15)))
        dts.append({"image_id": img, "category_id": 1, "bbox": [x, y, w, h], "score": float(rng.uniform(0.5, 1)),
                    "segmentation": _rle(x, y, w, h)})
        truth.setdefault(img, [np.zeros((H, W), bool), np.zeros((H, W), bool)])[1][y:y + h, x:x + w] = True
    gt = {"images": [{"id": i, "width": W, "height": H} for i in range(1, n_img + 3)],
          "categories": [{"id": 1, "name": "cyst"}], "annotations": anns}
    seg = evaluate_detection(gt, dts, polygon_classes=["cyst"], n_bootstrap=0,
                             operating_threshold=0.0).segmentation["cyst"]
    iou = [(g & d).sum() / (g | d).sum() for g, d in (truth[i] for i in sorted(truth))]
    dice = [2 * (g & d).sum() / (g.sum() + d.sum()) for g, d in (truth[i] for i in sorted(truth))]
    assert seg.image.n == len(truth) == len(set(a["image_id"] for a in anns) | set(d["image_id"] for d in dts))
    assert seg.image.iou.estimate == pytest.approx(np.mean(iou), rel=1e-12)
    assert seg.image.dice.estimate == pytest.approx(np.mean(dice), rel=1e-12)
    assert seg.image.iou.median == pytest.approx(np.median(iou), rel=1e-12)
