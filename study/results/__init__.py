"""Typed ``results.json``: one pydantic model per block, and the top-level :class:`Results`.

Every block is a frozen :class:`~study.results.base.ResultModel` that forbids unknown keys;
the producers return these models, :func:`study.collect.collect_results` validates every
block it reads into :class:`Results`, and the report reads attributes. The JSON Schema of
``results.json`` (``docs/results.schema.json``) is generated from :class:`Results`
(:mod:`study.results.schema`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from study.results.agreement import AgreementResult
from study.results.base import Estimate, NotAssessed, ResultModel
from study.results.baseline import Baseline
from study.results.counting import CountingResult
from study.results.decisions import AnalysisPlanResults
from study.results.detection import DetectionResult
from study.results.errors import ErrorAnalysis
from study.results.flow import Flow
from study.results.models import ModelMeta
from study.results.mrmc import MRMCBlock
from study.results.provenance import Provenance
from study.results.readers import ReadersBlock
from study.results.reference import ReferenceBlock
from study.results.sample_size import SampleSizePlan
from study.results.study import StudyBlock

__all__ = [
    "SCHEMA_VERSION",
    "AgreementResult",
    "AnalysisPlanResults",
    "Baseline",
    "CountingResult",
    "DetectionResult",
    "ErrorAnalysis",
    "Estimate",
    "Flow",
    "MRMCBlock",
    "ModelMeta",
    "NotAssessed",
    "Provenance",
    "ReferenceBlock",
    "ResultModel",
    "Results",
    "SampleSizePlan",
    "StudyBlock",
]

#: version of the layout of results.json; bump it when a key is added, renamed or removed
SCHEMA_VERSION = 2


class Results(ResultModel):
    """``results.json``: every number the report shows, with its method and provenance."""

    schema_version: Literal[2]
    study: StudyBlock
    flow: Flow | None = Field(None, description="None only when the flow was not computed")
    baseline: Baseline | None = Field(None, description="None only when the baseline was not computed")
    detection: dict[str, DetectionResult] = Field(default_factory=dict)
    counting: dict[str, CountingResult] = Field(default_factory=dict)
    models: dict[str, ModelMeta] = Field(default_factory=dict)
    errors: ErrorAnalysis | None = Field(None, exclude_if=lambda v: v is None,
                                         description="grading and counting errors case by case and by device, skin "
                                                     "type and image quality (absent in files written before it)")
    agreement: AgreementResult | None = None
    readers: ReadersBlock | None = Field(None, exclude_if=lambda v: v is None,
                                         description="the readers, their experience and readings (absent in files "
                                                     "written before the reading tool)")
    reference: ReferenceBlock | None = Field(None, exclude_if=lambda v: v is None,
                                             description="the reference standard fused from several annotators and "
                                                         "their agreement (absent with a single reference file)")
    mrmc: MRMCBlock | NotAssessed | None = Field(None, description="None when the study computes no MRMC")
    analysis_plan: AnalysisPlanResults | None = Field(
        None, exclude_if=lambda v: v is None,
        description="the lock status and each endpoint's decision (absent in files written before the decide step)")
    sample_size: SampleSizePlan | None = Field(
        None, exclude_if=lambda v: v is None,
        description="`study plan`'s table when it was written into the results folder; absent otherwise")
    provenance: Provenance | None = Field(None, description="None only when provenance was not collected")

    @property
    def model_ids(self) -> list[str]:
        """The models of the study, in sorted order (detection, counting and grading alike)."""
        ids = set(self.detection) | set(self.counting) | set(self.models)
        if self.agreement is not None:
            ids |= {rid for rid, r in self.agreement.raters.items() if r.kind == "model"}
        return sorted(ids)
