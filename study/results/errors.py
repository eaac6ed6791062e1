"""The ``errors`` block of ``results.json``: the errors that matter, case by case and by group.

Written by :func:`study.error_analysis.error_analysis` (called by the collect step) from the
step outputs of one run; read by the report's failure analysis
(``study.report.context.failures``). Case ids are pseudonyms (``study.pseudonyms``); no
patient id is stored.

- :class:`ErrorCase`: one included case: reference and model grade, lesion counts by class
  on both sides, detections and reference lesions found at the operating threshold, the
  capture device, the Fitzpatrick skin type and the image-quality features of the gate;
- :class:`GroupErrors`: grading accuracy, counting error and lesion recall of one group of
  cases (a device, a skin type, a tertile of sharpness), with intervals;
- :class:`SkinTypeComparison`: lesion recall and counting error of Fitzpatrick I-III versus
  IV-VI, their difference with its interval and a test of no difference;
- :class:`SkinTypeDetection` (:class:`GroupDetection` per group): detection mAP by Fitzpatrick
  type and pooled I-III versus IV-VI, patient-bootstrap intervals, the difference and its test.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from study.estimate import Estimate
from study.results.base import ResultModel

__all__ = ["ErrorAnalysis", "ErrorCase", "GroupDetection", "GroupErrors", "ModelErrors", "SkinTypeComparison",
           "SkinTypeDetection"]


class ErrorCase(ResultModel):
    """One included case, at the model's operating threshold."""

    case_id: str = Field(description="pseudonym (C-number); never the case id")
    reference_grade: str | None
    model_grade: str | None
    grade_steps: int | None = Field(description="model grade minus reference grade, in levels (None without both)")
    serious: bool = Field(description="two or more grades off, or the most severe reference grade missed")
    reference_counts: dict[str, int] = Field(description="reference lesions by class")
    model_counts: dict[str, int] = Field(description="the model's detections by class at the operating threshold")
    detections: int = Field(description="detections at the operating threshold (every class)")
    lesions: int = Field(description="reference lesions (not crowd)")
    lesions_found: int = Field(description="reference lesions matched by a same-class detection at the threshold")
    device: str | None = None
    fitzpatrick: str | None = None
    quality: dict[str, float | None] = Field(default_factory=dict,
                                             description="image-quality features of the gate (study.quality)")
    quality_tertile: Literal["low", "middle", "high"] | None = None


class GroupErrors(ResultModel):
    """Errors of one group of cases (``factor`` = ``level``)."""

    factor: str
    level: str
    n_cases: int
    n_patients: int
    grading_accuracy: Estimate
    count_bias: Estimate = Field(description="mean of predicted minus reference lesion count")
    count_mae: Estimate = Field(description="mean absolute counting error")
    lesion_recall: Estimate


class SkinTypeComparison(ResultModel):
    """Fitzpatrick I-III versus IV-VI: lesion recall and counting error, and their differences."""

    light: GroupErrors
    dark: GroupErrors
    recall_difference: Estimate = Field(description="recall I-III minus recall IV-VI")
    recall_p_value: float | None
    mae_difference: Estimate = Field(description="mean absolute count error I-III minus IV-VI")
    mae_p_value: float | None
    test: str


class GroupDetection(ResultModel):
    """Detection performance of one group of images (a Fitzpatrick type, or I-III / IV-VI pooled)."""

    level: str
    n_images: int
    n_patients: int
    n_lesions: int = Field(description="reference lesions (not crowd), every class")
    n_detections: int = Field(description="detections kept (every score), every class")
    map: Estimate = Field(description="mean over classes with reference lesions in the group of the study's AP "
                                      "(COCO 101-point at iou_threshold), patient-bootstrap percentile interval")
    ap_by_class: dict[str, float | None] = Field(description="the study's AP of each class in the group "
                                                             "(None: no reference lesion of the class)")


class SkinTypeDetection(ResultModel):
    """Detection mAP by Fitzpatrick skin type, and I-III versus IV-VI (``study.metrics.subgroup_ap``)."""

    iou_threshold: float
    match_rule: str
    ap_definition: str
    bootstrap: str = Field(description="replicates, seed and what is resampled")
    by_type: list[GroupDetection] = Field(description="one row per Fitzpatrick type present, I to VI")
    light: GroupDetection | None = Field(description="Fitzpatrick I-III pooled")
    dark: GroupDetection | None = Field(description="Fitzpatrick IV-VI pooled")
    difference: Estimate | None = Field(description="mAP I-III minus IV-VI")
    p_value: float | None
    test: str
    reason: str | None = Field(None, description="why I-III and IV-VI are not compared")


class ModelErrors(ResultModel):
    """The error analysis of one model."""

    operating_threshold: float
    threshold_key: str = Field(description="the counting threshold key the counts were read at")
    levels: list[str]
    cases: list[ErrorCase]
    groups: dict[str, list[GroupErrors]] = Field(default_factory=dict,
                                                 description="factor (device, fitzpatrick, quality) -> groups")
    skin_type: SkinTypeComparison | None = None
    skin_type_reason: str | None = None
    skin_type_detection: SkinTypeDetection | None = None
    skin_type_detection_reason: str | None = None


class ErrorAnalysis(ResultModel):
    """``errors``: per model, the case-by-case errors and the breakdowns."""

    quality_score: str = Field(description="the image-quality feature whose tertiles define the quality groups")
    skin_type_assessed_by: str | None = Field(None, description="who assigned skin types (config information)")
    skin_type_assessors: dict[str, int] = Field(
        default_factory=dict, description="included cases with a Fitzpatrick type by the manifest's "
                                          "skin_type_assessor ('not recorded' when blank); empty without that column")
    models: dict[str, ModelErrors] = Field(default_factory=dict)
