"""Segmentation agreement for polygon classes (cysts, scars): Dice and IoU.

- per instance: for each reference lesion matched (at the IoU threshold; mask IoU only when
  both sides carry masks, else box IoU: ``iou_type``) by a
  detection at or above the operating threshold, the mask IoU of the pair and its Dice
  ``2 IoU / (1 + IoU)`` (Dice 1945; Sorensen 1948). Unmatched lesions are not included
  (they count against recall, not here).
- per image: the union of the predicted shapes of the class (score >= operating threshold)
  against the union of the reference shapes, rasterised (a lesion's mask when it has one,
  its box otherwise: ``image_overlap`` says which), over images where either is non-empty;
  ``Dice = 2|A n B| / (|A| + |B|)``, ``IoU = |A n B| / |A u B|``.

Masks are rasterised by ``pycocotools.mask`` (polygons or RLE, at the image size of the
ground truth). Means get a percentile bootstrap interval over patients.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from study.metrics.bootstrap import bootstrap_estimate, units_of
from study.metrics.coco_input import CocoArrays
from study.metrics.matching import MatchResult
from study.results.detection import MeanEstimate, SegmentationLevel, SegmentationResult

DEFINITION = ("instance: IoU / Dice of matched pairs (score >= operating threshold; mask IoU only when both "
              "sides are masks, else box IoU); image: union of the predicted vs union of the reference shapes "
              "rasterised (masks where given, boxes otherwise), images where either is non-empty")


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
                   unit: str = "patients") -> MeanEstimate:
    """Mean of ``values`` with a percentile bootstrap interval over patients, and the median."""
    values = np.asarray(values, float)
    if not len(values):
        empty = bootstrap_estimate(None, np.zeros(0), n_replicates=n_bootstrap, confidence=confidence, unit=unit)
        return MeanEstimate(**empty.model_dump())
    reps = np.zeros(0)
    if weight_blocks:
        p = units_of(weight_blocks)
        feats = np.zeros((p, 2))
        np.add.at(feats, (patient, 0), values)
        np.add.at(feats, (patient, 1), 1.0)
        s = np.vstack([w.astype(float) @ feats for w in weight_blocks])
        with np.errstate(invalid="ignore", divide="ignore"):
            reps = s[:, 0] / s[:, 1]
    est = bootstrap_estimate(float(values.mean()), reps, n_replicates=n_bootstrap, confidence=confidence, unit=unit)
    return MeanEstimate(**est.model_dump(), median=float(np.median(values)))


def _level(iou: np.ndarray, dice: np.ndarray, patient: np.ndarray, weight_blocks, n_bootstrap: int,
           confidence: float, unit: str) -> SegmentationLevel:
    return SegmentationLevel(n=len(iou),
                             iou=_mean_estimate(iou, patient, weight_blocks, n_bootstrap, confidence, unit),
                             dice=_mean_estimate(dice, patient, weight_blocks, n_bootstrap, confidence, unit))


def evaluate_segmentation(*, inst_iou: np.ndarray, inst_patient: np.ndarray, img_inter: np.ndarray,
                          img_area_dt: np.ndarray, img_area_gt: np.ndarray, img_patient: np.ndarray,
                          weight_blocks=None, n_bootstrap: int = 0, confidence: float = 0.95,
                          iou_type: Literal["segm", "bbox"] = "segm", unit: str = "patients") -> SegmentationResult:
    """Dice / IoU summaries of one polygon class from per-instance and per-image areas.

    Returns
    -------
    SegmentationResult
        ``instance {n, iou, dice}`` and ``image {n, iou, dice}`` (mean estimates with
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
    return SegmentationResult(
        iou_type=iou_type,
        instance=_level(inst_iou, inst_dice, inst_patient, weight_blocks, n_bootstrap, confidence, unit),
        image=_level(img_iou, img_dice, ip, weight_blocks, n_bootstrap, confidence, unit),
        definition=DEFINITION,
    )


def _shape_rle(seg, box, h: int, w: int):
    """The lesion's mask as RLE: its segmentation when it has one, else its box rasterised."""
    from pycocotools import mask as mu

    if seg is not None:
        return to_rle(seg, h, w)
    return mu.frPyObjects(np.asarray([box], dtype=np.float64), h, w)[0]


def _by_image(index: np.ndarray, image: np.ndarray, images: np.ndarray):
    """``k -> the entries of index whose image is images[k]``, in their order in ``index``.

    One stable sort, then a slice per image: linear in lesions (a boolean mask per image
    made the per-image loop quadratic, issue 16)."""
    order = np.argsort(image, kind="stable")
    idx, img = index[order], image[order]
    lo = np.searchsorted(img, images, "left")
    hi = np.searchsorted(img, images, "right")
    return lambda k: idx[lo[k]:hi[k]]


def overlap_kind(model_masks: bool, reference_masks: bool) -> Literal["mask", "box", "box_vs_mask", "mask_vs_box"]:
    """What an overlap compares: ``mask`` only when both sides are masks, ``box`` when neither is."""
    if model_masks and reference_masks:
        return "mask"
    if not model_masks and not reference_masks:
        return "box"
    return "mask_vs_box" if model_masks else "box_vs_mask"


def segmentation_of_class(arr: CocoArrays, c: int, m: MatchResult, at_op: np.ndarray, dt_mask: np.ndarray | None,
                          patient: np.ndarray, *, weight_blocks, n_bootstrap: int, confidence: float,
                          unit: str) -> SegmentationResult:
    """Dice / IoU of polygon class ``c`` from the class-aware matching ``m``.

    Instances: the detections at or above the operating threshold (``at_op``) that matched,
    with the similarity of their match: mask IoU only when every detection and every
    reference lesion of the class carries a mask (``iou_type = "segm"``), else box IoU
    (``"bbox"``). Images: the union of the class's shapes on each side, rasterised at the
    image size (masks where a lesion has one, its box otherwise; ``image_overlap`` says which).
    """
    from pycocotools import mask as mu

    sel = (arr.dt_cls == c) & at_op & m.tp
    d_idx = np.flatnonzero(sel)
    gsel = np.flatnonzero((arr.gt_cls == c) & ~arr.gt_crowd)
    dsel = np.flatnonzero((arr.dt_cls == c) & at_op)
    model_masks = dt_mask is not None and bool((arr.dt_cls == c).any()) and bool(dt_mask[arr.dt_cls == c].all())
    reference_masks = bool(len(gsel)) and all(arr.gt_seg[int(i)] is not None for i in gsel)
    inst_iou = m.similarity[d_idx] if len(d_idx) else np.zeros(0)
    inst_pat = patient[arr.dt_img[d_idx]]
    inter, a_dt, a_gt, ip = [], [], [], []
    images = np.union1d(arr.gt_img[gsel], arr.dt_img[dsel])
    g_of = _by_image(gsel, arr.gt_img[gsel], images)
    d_of = _by_image(dsel, arr.dt_img[dsel], images)
    for k, im in enumerate(images):
        h, w = (int(v) for v in arr.image_hw[im])
        gl = [_shape_rle(arr.gt_seg[int(i)], arr.gt_box[i], h, w) for i in g_of(k)]
        dl = [_shape_rle(arr.dt_seg[int(i)], arr.dt_box[i], h, w) for i in d_of(k)]
        gu = mu.merge(gl) if gl else None
        du = mu.merge(dl) if dl else None
        ag = float(mu.area(gu)) if gu is not None else 0.0
        ad = float(mu.area(du)) if du is not None else 0.0
        it = float(mu.area(mu.merge([gu, du], intersect=True))) if gu is not None and du is not None else 0.0
        inter.append(it)
        a_dt.append(ad)
        a_gt.append(ag)
        ip.append(patient[im])
    res = evaluate_segmentation(inst_iou=inst_iou, inst_patient=inst_pat, img_inter=np.array(inter),
                                img_area_dt=np.array(a_dt), img_area_gt=np.array(a_gt),
                                img_patient=np.array(ip, np.int64), weight_blocks=weight_blocks,
                                n_bootstrap=n_bootstrap, confidence=confidence,
                                iou_type="segm" if (model_masks and reference_masks) else "bbox", unit=unit)
    return res.model_copy(update={"model_masks": model_masks, "reference_masks": reference_masks,
                                  "image_overlap": overlap_kind(model_masks, reference_masks)})
