"""Analysis options: built once from the protocol, used by the workflow steps and the CLI alike.

Each metric family has one options model. ``XOptions.from_protocol(protocol)`` is the only
place protocol values become options; ``study step ...`` (the workflow) and ``study
evaluate ...`` (the CLI, with command-line overrides through ``model_copy(update=...)``
re-validated by :func:`override`) both go through it. Range rules (a confidence level in
(0.5, 1), at least 100 bootstrap replicates, a seed >= 0, thresholds in [0, 1]) live only in
the annotated types below, which the protocol models use too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if TYPE_CHECKING:
    from study.protocol import Protocol

#: a two-sided confidence level, e.g. 0.95
ConfidenceLevel = Annotated[float, Field(gt=0.5, lt=1, description="two-sided confidence level, in (0.5, 1)")]
#: patient-bootstrap replicates
BootstrapReplicates = Annotated[int, Field(ge=100, description="bootstrap replicates (at least 100)")]
#: a random seed numpy accepts
Seed = Annotated[int, Field(ge=0, le=2**32 - 1, description="random seed, 0 to 2**32 - 1")]
#: a detection score threshold
ScoreThreshold = Annotated[float, Field(ge=0, le=1, description="detection score threshold in [0, 1]")]
#: an IoU threshold for matching
IoUThreshold = Annotated[float, Field(gt=0, lt=1, description="IoU threshold in (0, 1)")]
BinomialInterval = Literal["wilson", "clopper_pearson"]
#: unit of analysis of the intervals: the patient (a patient's images are one cluster) or the image
AnalysisUnit = Literal["patient", "image"]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatisticsOptions(_Options):
    """Interval settings every metric family shares (protocol ``statistics:``)."""

    confidence: ConfidenceLevel = 0.95
    n_bootstrap: BootstrapReplicates = 2000
    seed: Seed = 20261121
    binomial_interval: BinomialInterval = "wilson"
    #: the metric functions' default is the image (their numbers are pinned to peers that assume
    #: independent images); a protocol's default is the patient (``statistics.unit``)
    #: ``"auto"``: the patient when the patients are known (``patient_of`` given), else the image
    unit: AnalysisUnit | Literal["auto"] = "image"

    def unit_for(self, patients_known: bool) -> AnalysisUnit:
        """The unit of analysis to use, given whether each case's patient is known."""
        if self.unit == "auto":
            return "patient" if patients_known else "image"
        return self.unit

    @classmethod
    def from_protocol(cls, protocol: Protocol) -> StatisticsOptions:
        s = protocol.statistics
        return cls(confidence=s.confidence_level, n_bootstrap=s.bootstrap_replicates, seed=s.bootstrap_seed,
                   binomial_interval=s.binomial_interval, unit=s.unit or "auto")


class _DetectionRules(_Options):
    """Fields and rules shared by the study's detection options and the metric's own arguments."""

    classes: tuple[str, ...] | None = None
    polygon_classes: tuple[str, ...] = ()
    iou_threshold: IoUThreshold = 0.5
    operating_threshold: ScoreThreshold = 0.5
    froc_fp_rates: tuple[Annotated[float, Field(gt=0)], ...] = (0.125, 0.25, 0.5, 1, 2, 4, 8)
    match_rule: Literal["iou", "center_distance"] = "iou"
    center_distance_px: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _centre_distance_needs_radius(self) -> Self:
        if self.match_rule == "center_distance" and self.center_distance_px is None:
            raise ValueError("match_rule center_distance needs center_distance_px > 0")
        return self


class DetectionOptions(_DetectionRules):
    """Lesion-level detection evaluation (protocol ``classes``, ``detection:``, ``statistics:``)."""

    max_detections: Annotated[int, Field(ge=100, description="per image; never the COCO default of 100")] = 1000
    statistics: StatisticsOptions = StatisticsOptions()

    @classmethod
    def from_protocol(cls, protocol: Protocol) -> DetectionOptions:
        d = protocol.detection
        return cls(classes=tuple(protocol.classes), polygon_classes=tuple(protocol.polygon_classes),
                   iou_threshold=d.iou_threshold, operating_threshold=d.operating_threshold,
                   max_detections=d.max_detections, froc_fp_rates=tuple(d.froc_fp_rates), match_rule=d.match_rule,
                   center_distance_px=d.center_distance_px, statistics=StatisticsOptions.from_protocol(protocol))

    def arguments(self) -> dict[str, Any]:
        """The keyword options of :func:`study.metrics.detection.evaluate_detection` (see
        :class:`DetectionArguments`)."""
        rules = self.model_dump(include=set(_DetectionRules.model_fields))
        s = self.statistics
        return {**rules, "max_detections": self.max_detections, "n_bootstrap": s.n_bootstrap, "seed": s.seed,
                "confidence": s.confidence, "unit": s.unit}


class DetectionArguments(_DetectionRules):
    """The keyword options of :func:`study.metrics.detection.evaluate_detection`, as it validates them.

    The rules of :class:`DetectionOptions`, except where a direct call of the metric needs a
    wider range than a study: ``max_detections`` >= 1 (COCO comparisons at any ``maxDets``)
    and ``n_bootstrap`` >= 0 (0: no bootstrap intervals).
    """

    max_detections: Annotated[int, Field(ge=1, description="per image and class, the highest-scoring detections kept")] = 1000
    n_bootstrap: Annotated[int, Field(ge=0, description="patient-bootstrap replicates (0: no bootstrap intervals)")] = 2000
    seed: Seed = 0
    confidence: ConfidenceLevel = 0.95
    coco_backend: Literal["native", "faster-coco-eval", "pycocotools"] = "native"
    #: unit of analysis of the lesion-level proportions (``auto``: the patient when patients are given)
    unit: AnalysisUnit | Literal["auto"] = "image"


class CountingOptions(_Options):
    """Lesion-counting error (protocol ``classes``, ``grading.levels``, ``detection.score_thresholds``)."""

    classes: tuple[str, ...]
    thresholds: tuple[ScoreThreshold, ...] = (0.25, 0.5, 0.75)
    levels: tuple[str, ...] | None = None
    statistics: StatisticsOptions = StatisticsOptions()

    @classmethod
    def from_protocol(cls, protocol: Protocol) -> CountingOptions:
        return cls(classes=tuple(protocol.classes), thresholds=tuple(protocol.detection.score_thresholds),
                   levels=tuple(protocol.levels), statistics=StatisticsOptions.from_protocol(protocol))


class AgreementOptions(_Options):
    """Grading agreement (protocol ``grading.levels``, ``subgroups``, ``statistics:``)."""

    levels: tuple[str, ...] = Field(..., min_length=2)
    subgroups: tuple[str, ...] = ()
    statistics: StatisticsOptions = StatisticsOptions()
    #: ``most_severe``: agreement on one grade per patient (protocol ``grading.patient_grade``)
    patient_grade: Literal["none", "most_severe"] = "none"

    @classmethod
    def from_protocol(cls, protocol: Protocol) -> AgreementOptions:
        return cls(levels=tuple(protocol.levels), subgroups=tuple(protocol.subgroups),
                   statistics=StatisticsOptions.from_protocol(protocol),
                   patient_grade=protocol.grading.patient_grade)


class MRMCOptions(_Options):
    """Multi-reader multi-case analysis (protocol ``statistics.mrmc_positive_from``, ``statistics:``)."""

    method: Literal["or", "dbm"] = "or"
    analysis: Literal["rrrc", "frrc", "rrfc"] | None = None
    covariance: Literal["jackknife", "bootstrap", "delong"] = "jackknife"
    fom: Literal["wilcoxon", "sensitivity", "specificity", "accuracy"] = "wilcoxon"
    threshold: float | None = None
    positive_from: str | None = None
    levels: tuple[str, ...] | None = None
    statistics: StatisticsOptions = StatisticsOptions()

    @classmethod
    def from_protocol(cls, protocol: Protocol) -> MRMCOptions:
        return cls(positive_from=protocol.statistics.mrmc_positive_from, levels=tuple(protocol.levels),
                   statistics=StatisticsOptions.from_protocol(protocol))


O = TypeVar("O", bound=_Options)


def override(options: O, *, source: str = "command line", **changes: Any) -> O:
    """``options`` with ``changes`` (``None`` values ignored), validated by the same types.

    Raises :class:`study.errors.StudyError` naming each bad option (``--confidence``, ...).
    """
    from study.errors import Problem, StudyError

    data = options.model_dump()
    stats = dict(data.get("statistics") or {})
    for key, value in changes.items():
        if value is None:
            continue
        if key in StatisticsOptions.model_fields and key not in type(options).model_fields:
            stats[key] = value
        else:
            data[key] = value
    if "statistics" in data:
        data["statistics"] = stats
    try:
        return type(options).model_validate(data)
    except ValidationError as e:
        raise StudyError([Problem(source, "--" + "-".join(str(x) for x in err["loc"] if x != "statistics")
                                  .replace("_", "-"), f"{err['input']!r}: {err['msg']}")
                          for err in e.errors()]) from None
