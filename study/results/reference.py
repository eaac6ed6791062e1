"""Typed ``reference`` block of ``results.json``: the reference standard fused from several annotators.

Built by :func:`study.annotators.build.build_reference` (workflow step ``fuse_reference``,
file ``reference-standard/annotators.json``) and read by collect into ``reference.annotators``;
absent when the study has one reference file (no ``cohort.annotators`` in the config).
"""

from __future__ import annotations

from pydantic import Field

from study.results.base import Estimate, ResultModel

__all__ = ["AnnotatorRow", "AnnotatorsBlock", "PairAgreement", "ReferenceBlock"]


class AnnotatorRow(ResultModel):
    """One annotator: who, qualification, experience, what they marked and where their grades come from."""

    annotator_id: str
    qualification: str | None = None
    years_experience: float | None = None
    n_lesions: int = Field(..., description="lesions the annotator marked on the cohort's images")
    grades_source: str = Field(..., description="'grades file' or 'graded from their lesions (<scheme>)'")


class PairAgreement(ResultModel):
    """Agreement of two annotators: Cohen's kappa of their grades and F1 of their lesions."""

    a: str
    b: str
    cohen_kappa: Estimate
    lesion_f1: Estimate


class AnnotatorsBlock(ResultModel):
    """How several annotators' files became the reference standard, and how far they agreed.

    Attributes
    ----------
    annotators : one row per annotator, config order.
    grade_rule : the protocol's grade fusion rule in words (``study.annotators.build.describe_grade_rule``).
    lesion_rule : the protocol's lesion fusion rule in words.
    rule, ties, adjudicator : the grade fusion settings as given.
    min_annotators, iou_threshold, box : the lesion fusion settings as given.
    n_cases, n_patients : cases (manifest) the annotators graded, and their patients.
    settled_by : cases by how their reference grade was settled (``study.annotators.grades.SETTLED_BY``).
    n_lesions_fused : reference lesions kept; ``lesions_by_support`` counts them by how many annotators
        marked them ("2", "3", ...); ``n_clusters_dropped`` lesions marked by fewer than ``min_annotators``.
    fleiss_kappa : Fleiss' kappa of the grades over all annotators (patient-bootstrap interval).
    pairs : Cohen's kappa and lesion F1 at IoU ``agreement_iou`` for each pair of annotators.
    """

    annotators: list[AnnotatorRow]
    grade_rule: str
    lesion_rule: str
    rule: str
    ties: str
    adjudicator: str | None = None
    min_annotators: int
    iou_threshold: float
    box: str
    n_cases: int
    n_patients: int
    settled_by: dict[str, int]
    n_lesions_fused: int
    lesions_by_support: dict[str, int]
    n_clusters_dropped: int
    fleiss_kappa: Estimate
    agreement_iou: float
    pairs: list[PairAgreement]


class ReferenceBlock(ResultModel):
    """``reference``: how the reference standard was built (only the several-annotators case so far)."""

    annotators: AnnotatorsBlock
