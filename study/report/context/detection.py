"""Standalone lesion detection: per-class table, COCO summary, presence, FROC, segmentation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from study.estimate import Estimate
from study.report import selectors as S
from study.report.context.common import unavailable
from study.report.figure_ids import figure_id
from study.report.format import Table, fmt, fmt_int
from study.results.detection import (
    ClassDetection,
    CocoSummary,
    DetectionResult,
    FrocResult,
    PresenceResult,
    SegmentationResult,
)


def with_interval(point: float | None, interval: Estimate) -> Estimate | float | None:
    """The interval estimate when it is defined, else the plain point value (``ap`` / ``ap_ci``)."""
    return interval if interval.estimate is not None else point


def _in_order(names: Sequence[str], order: Sequence[str]) -> list[str]:
    return [c for c in order if c in names] + sorted(set(names) - set(order))


def _class_table(m: str, det: DetectionResult, order: Sequence[str], operating_threshold: float | None) -> Table:
    t = Table(f"tab-det-{m}", f"Standalone detection per class, model {m} (IoU ≥ {fmt(det.iou_threshold, 2)})",
              ["Class", "Reference lesions", "Detections", "AP", "Precision", "Recall", "F1", "Max recall"])
    for c, v in S.detection_classes(det, list(order)):
        t.add([c, fmt_int(v.n_gt), fmt_int(v.n_det), t.ci(with_interval(v.ap, v.ap_ci)), t.ci(v.precision),
               t.ci(v.recall), t.ci(v.f1), t.ci(with_interval(v.max_recall, v.max_recall_ci))])
    if det.map is not None:
        t.note(f"Mean AP over classes: {t.ci(det.map)}.")
    t.note(f"n = lesions (reference lesions and detections) in {det.n_images} images from {det.n_patients} patients.")
    t.note(f"Definitions: {det.ap_definition}.")
    if operating_threshold is not None:
        t.note(f"Precision, recall and F1 at the operating score threshold {operating_threshold}; AP and maximum "
               f"recall over all scores (max recall: the recall reached with every detection kept).")
    return t


def _coco_table(m: str, coco: CocoSummary) -> Table:
    ct = Table(f"tab-coco-{m}", f"COCO summary metrics (all classes), model {m}", ["Metric", "Value"])
    for k, v in sorted(coco.stats().items()):
        if v is not None:
            ct.add([k, ct.ci(v)])
    ct.note("COCO conventions: AP is averaged over IoU 0.50 to 0.95, AP50 and AP75 at IoU 0.50 and 0.75; "
            "s, m, l = small, medium, large lesions; AR<n> = average recall with at most n detections per image"
            f" (limits {', '.join(map(str, coco.max_dets))}; ARmax at the largest)"
            + f". Computed by {coco.backend} {coco.version}".rstrip() + ".")
    if coco.note:
        ct.note(coco.note + ".")
    return ct


def _coco_class_table(m: str, classes: list[tuple[str, ClassDetection]]) -> Table | None:
    rows = [(c, v.coco) for c, v in classes if v.coco is not None]
    if not rows:
        return None
    keys = ["AP", "AP50", "AP75"]
    t = Table(f"tab-coco-class-{m}", f"COCO AP per class, model {m}", ["Class"] + keys)
    for c, cc in rows:
        t.add([c, t.ci(cc.AP), t.ci(cc.AP50), t.ci(cc.AP75)])
    t.note("AP averaged over IoU 0.50 to 0.95; AP50 and AP75 at IoU 0.50 and 0.75 (COCO conventions).")
    return t


def _presence_table(m: str, pres: Mapping[str, PresenceResult], order: Sequence[str]) -> Table | None:
    if not pres:
        return None
    t = Table(f"tab-presence-{m}", f"Presence of each lesion class per image, model {m}",
              ["Class", "Accuracy", "Sensitivity", "Specificity", "F1"])
    for c in _in_order(list(pres), order):
        v = pres[c]
        t.add([c, t.ci(v.accuracy), t.ci(v.sensitivity), t.ci(v.specificity), t.ci(v.f1)])
    t.note("n = images: each image counts once per class (lesion present or absent).")
    return t


def _froc_table(m: str, froc: FrocResult) -> Table | None:
    if not froc.points:
        return None
    t = Table(f"tab-froc-{m}", f"FROC: lesion sensitivity at pre-specified false positives per image, model {m}",
              ["FP per image", "Sensitivity"])
    for p in froc.points:
        t.add([fmt(p.fp_per_image, 3), t.ci(p.sensitivity)])
    t.note(f"Average sensitivity over these rates: {t.ci(froc.average)}.")
    t.note("Sensitivity = share of reference lesions found (n = lesions); false positives counted per image.")
    return t


_IMAGE_OVERLAP = {"mask": "masks on both sides", "box": "boxes on both sides (rasterised)",
                  "box_vs_mask": "the model's boxes (rasterised) against the reference masks",
                  "mask_vs_box": "the model's masks against the reference boxes (rasterised)"}


def overlap_label(d: SegmentationResult) -> tuple[str, str]:
    """``("Mask", ...)`` only when both sides are masks, else ``("Box", ...)``: what the instance overlap
    compares, and what the image-level overlap rasterises."""
    inst = "Mask" if d.iou_type == "segm" else "Box"
    image = _IMAGE_OVERLAP.get(d.image_overlap or "", "masks on both sides" if d.iou_type == "segm"
                               else "as recorded by an earlier version (masks only)")
    return inst, image


def _segmentation_table(m: str, seg: Mapping[str, SegmentationResult], order: Sequence[str]) -> Table | None:
    if not seg:
        return None
    kinds = {overlap_label(d)[0] for d in seg.values()}
    kind = kinds.pop() if len(kinds) == 1 else "Mask or box"
    t = Table(f"tab-seg-{m}", f"Polygon classes: {kind.lower()} overlap of matched lesions and per image, model {m}",
              ["Class", "Level", "Lesions / images", f"{kind} IoU", f"{kind} Dice"])
    for c in _in_order(list(seg), order):
        d = seg[c]
        inst, image = overlap_label(d)
        for lvl, x in (("lesion", d.instance), ("image", d.image)):
            t.add([c, lvl, fmt_int(x.n), t.ci(x.iou), t.ci(x.dice)])
        sides = ("the model returned masks" if d.model_masks else "the model returned boxes") \
            if d.model_masks is not None else "what the model returned is not recorded"
        t.note(f"{c}: {sides}; matched lesions by {inst.lower()} IoU; per image, {image}.")
    t.note("Mask IoU / Dice only when both the model and the reference give masks; otherwise the overlap is of boxes. "
           "Lesion rows: matched lesions (n = lesions); image rows: images where either side has the class "
           "(n = images).")
    return t


def _dict(t: Table | None) -> dict[str, Any] | None:
    return t.to_dict() if t is not None else None


def detection_context(detection: Mapping[str, DetectionResult], figures: Mapping[str, str], *,
                      classes: Sequence[str], operating_threshold: float | None) -> dict[str, Any]:
    """The detection section: one entry per model.

    Parameters
    ----------
    detection : mapping model -> DetectionResult
        The ``detection`` block of ``results.json``.
    figures : mapping
        Figure names available (``pr__<model>``, ``froc__<model>``).
    classes : sequence of str
        The protocol's class order (rows follow it; other classes after, by name).
    operating_threshold : float, optional
        The protocol's operating score threshold, as printed.
    """
    if not detection:
        return unavailable("No detection results: results.json lists no model under 'detection'.")
    models = []
    for m, det in sorted(detection.items()):
        coco = _coco_table(m, det.coco)
        models.append({"model": m, "available": True,
                       "table": _class_table(m, det, classes, operating_threshold).to_dict(),
                       "coco": coco.to_dict() if coco.rows else None,
                       "coco_classes": _dict(_coco_class_table(m, S.detection_classes(det, list(classes)))),
                       "presence": _dict(_presence_table(m, det.presence, classes)),
                       "froc": _dict(_froc_table(m, det.froc)),
                       "segmentation": _dict(_segmentation_table(m, det.segmentation, classes)),
                       "figures": [f for f in (figure_id("pr", m), figure_id("froc", m)) if f in figures]})
    return {"available": True, "models": models}
