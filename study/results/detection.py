"""The ``detection.<model>`` block of ``results.json``: lesion-level detection metrics.

Written by :func:`study.metrics.detection.evaluate_detection` (one block per model) and
read by the report (``study.report.context.detection``, ``study.report.figures``).

- :class:`ClassDetection`: per class and for any lesion, AP (COCO 101-point and VOC
  all-point), its jackknife interval, maximum recall, precision / recall (Wilson) and F1
  (patient bootstrap) at the operating threshold, the counts and the PR curve;
- :class:`CocoSummary`: the COCO summary (AP@[.50:.95], AP50, AP75, APs/m/l, AR...) and
  which backend computed it;
- :class:`FrocResult`: FROC points, average and curve (``study.metrics.froc``);
- :class:`PresenceResult`: image-level presence per class (``study.metrics.presence``);
- :class:`SegmentationResult`: Dice / IoU of polygon classes (``study.metrics.segmentation``).

Numbers that are not defined (no reference lesion of a class, ...) are ``None`` (JSON has
no NaN): the metric code may hand NaN in, the models turn it into ``None``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from study.estimate import Estimate
from study.results.base import ResultModel

__all__ = ["ANY_LESION", "COCO_STATS", "ClassCoco", "ClassDetection", "CocoSummary", "DetectionInputs",
           "DetectionResult", "FrocCurve", "FrocPoint", "FrocResult", "MeanEstimate", "PRCurve",
           "ImageLesions", "PresenceResult", "PresenceTable", "ResamplingSettings", "SegmentationLevel", "SegmentationResult"]

#: the key of the class-agnostic block
ANY_LESION = "any_lesion"
#: the summary numbers of a COCO evaluation, in the order pycocotools' ``summarize`` prints them
COCO_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "ARmax", "ARs", "ARm", "ARl")


def _finite_or_none(v: Any) -> float | None:
    if v is None:
        return None
    x = float(v)
    return x if math.isfinite(x) else None


#: a number that may be undefined: NaN and infinities become ``None``
Number = Annotated[float | None, BeforeValidator(_finite_or_none)]


def _left_out_when_none() -> Any:
    """An optional field that is left out of the JSON when it is not set."""
    return Field(None, exclude_if=lambda v: v is None)


# --------------------------------------------------------------------------- per class
class PRCurve(ResultModel):
    """Precision at COCO's 101 recall levels (precision ``None`` when the class has no lesion)."""

    recall: list[float]
    precision: list[Number]
    kind: str


class ClassCoco(ResultModel):
    """COCO AP of one class (native backend only): over IoU .50:.95, at .50 and at .75."""

    AP: Number
    AP50: Number
    AP75: Number


class ClassDetection(ResultModel):
    """Detection metrics of one class (or of any lesion, class-agnostic)."""

    ap: Number = Field(description="COCO 101-point interpolated AP at the matching IoU threshold")
    ap_voc: Number = Field(description="PASCAL VOC all-point AP")
    max_recall: Number = Field(description="recall with every detection kept")
    ap_ci: Estimate = Field(description="AP with its delete-a-group jackknife interval over patients")
    max_recall_ci: Estimate
    n_gt: int
    n_det: int
    n_det_at_operating_threshold: int
    n_ignored_crowd: int
    tp: int
    fp: int
    fn: int
    precision: Estimate
    recall: Estimate
    f1: Estimate
    pr_curve: PRCurve
    coco: ClassCoco | None = _left_out_when_none()


# --------------------------------------------------------------------------- COCO
class CocoSummary(ResultModel):
    """COCO summary metrics of all evaluated classes, ``maxDets = [1, 10, max_detections]``."""

    backend: Literal["native", "faster-coco-eval", "pycocotools"]
    version: str
    iou_type: str
    max_dets: list[int]
    AP: Number
    AP50: Number
    AP75: Number
    APs: Number
    APm: Number
    APl: Number
    AR1: Number
    AR10: Number
    ARmax: Number
    ARs: Number
    ARm: Number
    ARl: Number
    note: str | None = _left_out_when_none()
    reason: str | None = _left_out_when_none()

    def stats(self) -> dict[str, float | None]:
        """The summary numbers by name (:data:`COCO_STATS`)."""
        return {k: getattr(self, k) for k in COCO_STATS}


# --------------------------------------------------------------------------- FROC
class FrocPoint(ResultModel):
    fp_per_image: float
    sensitivity: Estimate


class FrocCurve(ResultModel):
    """The observed FROC curve (thinned); ``threshold`` is ``None`` at the empty operating point."""

    fp_per_image: list[Number]
    sensitivity: list[Number]
    threshold: list[Number]


class FrocResult(ResultModel):
    """FROC of any lesion: sensitivity at pre-specified false positives per image."""

    points: list[FrocPoint]
    average: Estimate
    curve: FrocCurve
    n_lesions: int
    n_images: int
    readout: str
    matching: str


# --------------------------------------------------------------------------- presence
class PresenceTable(ResultModel):
    """Images by reference (class present or not) and call (detected at the operating threshold)."""

    tp: int
    fp: int
    fn: int
    tn: int


class PresenceResult(ResultModel):
    """Image-level presence of one class."""

    accuracy: Estimate
    sensitivity: Estimate
    specificity: Estimate
    ppv: Estimate
    npv: Estimate
    f1: Estimate
    table: PresenceTable
    n_images: int
    n_images_positive: int


# --------------------------------------------------------------------------- segmentation
class MeanEstimate(Estimate):
    """A mean with its bootstrap interval and the median of the values it averages."""

    median: float | None = _left_out_when_none()

    @field_validator("median", mode="before")
    @classmethod
    def _median_finite_or_none(cls, v: Any) -> float | None:
        return _finite_or_none(v)


class SegmentationLevel(ResultModel):
    n: int
    iou: MeanEstimate
    dice: MeanEstimate


class SegmentationResult(ResultModel):
    """Dice / IoU of one polygon class, per matched instance and per image."""

    iou_type: Literal["segm", "bbox"] = Field(description="instance overlap: segm = mask IoU (both sides masks)")
    instance: SegmentationLevel
    image: SegmentationLevel
    definition: str
    model_masks: bool | None = Field(None, exclude_if=lambda v: v is None,
                                     description="every detection of the class carries a mask")
    reference_masks: bool | None = Field(None, exclude_if=lambda v: v is None,
                                         description="every reference lesion of the class carries a mask")
    image_overlap: Literal["mask", "box", "box_vs_mask", "mask_vs_box"] | None = Field(
        None, exclude_if=lambda v: v is None,
        description="what the image-level overlap rasterises: masks on both sides, boxes on both, or one of each")


# --------------------------------------------------------------------------- per image
class ImageLesions(ResultModel):
    """Per evaluated image (COCO image ids of the ground truth), at the operating threshold.

    ``lesions``: reference lesions (not crowd); ``found``: those matched by a same-class
    detection at or above the operating threshold; ``detections``: detections at or above it.
    The error analysis groups these by skin type and device (``study.error_analysis``).
    """

    image_id: list[int]
    lesions: list[int]
    found: list[int]
    detections: list[int]


# --------------------------------------------------------------------------- the block
class DetectionInputs(ResultModel):
    """What went in: reference lesions and detections, and what was left out and why."""

    n_gt: int
    n_gt_crowd: int
    n_det: int
    n_det_truncated_by_max_detections: int
    gt_other_images: int
    gt_other_classes: int
    dt_other_images: int
    dt_other_classes: int


class ResamplingSettings(ResultModel):
    """The bootstrap behind the percentile intervals (``unit``: what is resampled)."""

    replicates: int
    seed: int
    unit: Literal["patients", "images"]


class DetectionResult(ResultModel):
    """Every lesion-level detection metric of one model on one cohort (``detection.<model>``)."""

    iou_threshold: float
    operating_threshold: float
    match_rule: str
    max_detections: int
    n_images: int
    n_patients: int
    classes: dict[str, ClassDetection]
    any_lesion: ClassDetection
    map: Number = Field(description="mean of per-class ap over classes with reference lesions")
    map_voc: Number
    ap_definition: str
    coco: CocoSummary
    froc: FrocResult
    presence: dict[str, PresenceResult]
    segmentation: dict[str, SegmentationResult]
    inputs: DetectionInputs
    bootstrap: ResamplingSettings
    per_image: ImageLesions | None = _left_out_when_none()

