"""Segmentation agreement for polygon classes (cysts, scars): Dice and IoU.

- per instance: for each reference lesion matched (at the IoU threshold, mask IoU) by a
  detection at or above the operating threshold, the mask IoU of the pair and its Dice
  ``2 IoU / (1 + IoU)`` (Dice 1945; Sorensen 1948). Unmatched lesions are not included
  (they count against recall, not here).
- per image: the union of the predicted masks of the class (score >= operating threshold)
  against the union of the reference masks, over images where either is non-empty;
  ``Dice = 2|A n B| / (|A| + |B|)``, ``IoU = |A n B| / |A u B|``.

Masks are rasterised by ``pycocotools.mask`` (polygons or RLE, at the image size of the
ground truth). Means get a percentile bootstrap interval over patients.
"""

from __future__ import annotations

import numpy as np

from study.metrics.bootstrap import bootstrap_estimate


def to_rle(seg, h: int, w: int):
    """COCO segmentation (polygons, uncompressed or compressed RLE) -> one compressed RLE."""
    from pycocotools import mask as mu

    if isinstance(seg, list):
        return mu.merge(mu.frPyObjects(seg, h, w))
    if isinstance(seg, dict) and isinstance(seg.get("counts"), list):
        return mu.frPyObjects(seg, h, w)
    return seg


def mask_iou(dt_rles: list, gt_rles: list, crowd: list[int]) -> np.ndarray:
    """IoU matrix (n_dt x n_gt) of RLE masks (crowd: intersection / detection area)."""
    from pycocotools import mask as mu

    if not dt_rles or not gt_rles:
        return np.zeros((len(dt_rles), len(gt_rles)))
    return np.asarray(mu.iou(dt_rles, gt_rles, list(crowd)), float).reshape(len(dt_rles), len(gt_rles))


def _mean_estimate(values: np.ndarray, patient: np.ndarray, weight_blocks, n_bootstrap: int, confidence: float,
                   unit: str = "patients"):
    values = np.asarray(values, float)
    if not len(values):
        return bootstrap_estimate(None, np.zeros(0), n_replicates=n_bootstrap, confidence=confidence, unit=unit).to_dict()
    reps = np.zeros(0)
    if weight_blocks:
        p = int(weight_blocks[0].shape[1])
        feats = np.zeros((p, 2))
        np.add.at(feats, (patient, 0), values)
        np.add.at(feats, (patient, 1), 1.0)
        s = np.vstack([w.astype(float) @ feats for w in weight_blocks])
        with np.errstate(invalid="ignore", divide="ignore"):
            reps = s[:, 0] / s[:, 1]
    d = bootstrap_estimate(float(values.mean()), reps, n_replicates=n_bootstrap, confidence=confidence,
                           unit=unit).to_dict()
    d["median"] = float(np.median(values))
    return d


def evaluate_segmentation(*, inst_iou: np.ndarray, inst_patient: np.ndarray, img_inter: np.ndarray,
                          img_area_dt: np.ndarray, img_area_gt: np.ndarray, img_patient: np.ndarray,
                          weight_blocks=None, n_bootstrap: int = 0, confidence: float = 0.95,
                          iou_type: str = "segm", unit: str = "patients") -> dict:
    """Dice / IoU summaries of one polygon class from per-instance and per-image areas.

    Returns
    -------
    dict
        ``instance {n, iou, dice}`` and ``image {n, iou, dice}`` (mean estimate dicts with
        ``median``), ``iou_type`` (``segm`` = masks; ``bbox`` when detections had no masks).
    """
    inst_iou = np.asarray(inst_iou, float)
    inst_dice = 2 * inst_iou / (1 + inst_iou) if len(inst_iou) else inst_iou
    inter = np.asarray(img_inter, float)
    a_dt = np.asarray(img_area_dt, float)
    a_gt = np.asarray(img_area_gt, float)
    any_ = (a_dt + a_gt) > 0
    inter, a_dt, a_gt, ip = inter[any_], a_dt[any_], a_gt[any_], np.asarray(img_patient)[any_]
    img_dice = 2 * inter / (a_dt + a_gt) if len(inter) else inter
    img_iou = inter / (a_dt + a_gt - inter) if len(inter) else inter
    return {
        "iou_type": iou_type,
        "instance": {"n": int(len(inst_iou)),
                     "iou": _mean_estimate(inst_iou, inst_patient, weight_blocks, n_bootstrap, confidence, unit),
                     "dice": _mean_estimate(inst_dice, inst_patient, weight_blocks, n_bootstrap, confidence, unit)},
        "image": {"n": int(len(img_iou)),
                  "iou": _mean_estimate(img_iou, ip, weight_blocks, n_bootstrap, confidence, unit),
                  "dice": _mean_estimate(img_dice, ip, weight_blocks, n_bootstrap, confidence, unit)},
        "definition": "instance: mask IoU / Dice of matched pairs (score >= operating threshold); image: union "
                      "of predicted vs union of reference masks, images where either is non-empty",
    }
