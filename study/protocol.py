"""Study protocols: pydantic models, loading, validation and hashing.

A protocol is a YAML file (see ``protocols/``) that declares, as data only, everything a
study's analysis depends on: lesion classes, the grading scheme, inclusion criteria, the
image-quality gate, detection thresholds, statistics settings and reporting options.
Unknown keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from study.options import (AnalysisUnit, BinomialInterval, BootstrapReplicates, ConfidenceLevel, IoUThreshold,
                           ScoreThreshold, Seed)
from study.errors import Problem, StudyError, validation_problems
from study.plan.model import AnalysisPlan, check_plan_against_protocol
from study.io import sha256_bytes


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- grading
class CountBand(_Strict):
    """One level of a count-band scheme: the level applies up to ``max`` lesions (inclusive)."""

    level: str
    max: int | None = Field(None, ge=0, description="inclusive upper bound; omit on the last band")


class TypeRule(_Strict):
    """One rule of a lesion-type scheme: ``level`` applies when any listed class reaches its minimum count."""

    level: str
    any_of: dict[str, int] = Field(..., min_length=1, description="class -> minimum count (>= 1)")

    @field_validator("any_of")
    @classmethod
    def _positive(cls, v: dict[str, int]) -> dict[str, int]:
        for k, n in v.items():
            if n < 1:
                raise ValueError(f"minimum count for {k!r} must be >= 1, got {n}")
        return v


class Grading(_Strict):
    """How a grade follows from lesion counts.

    ``scheme``:
      - ``count_bands`` (Hayashi 2008): the total count of ``count_classes`` falls in a band;
      - ``type_rules`` (Chinese acne guideline 2019, or any custom ordered rules): ``rules`` are
        tried from the first (most severe) to the last; the first that matches gives the grade,
        otherwise ``default``.
    """

    scheme: Literal["count_bands", "type_rules"]
    levels: list[str] = Field(..., min_length=2, description="ordered from least to most severe")
    count_classes: list[str] | None = Field(None, description="classes summed (count_bands); default all")
    bands: list[CountBand] | None = None
    rules: list[TypeRule] | None = None
    default: str | None = None
    letter_aliases: dict[str, str] | None = Field(
        None, description="accepted alternative labels in readings files, e.g. {A: mild}")
    patient_grade: Literal["none", "most_severe"] = Field(
        "none", exclude_if=lambda v: v == "none",
        description="most_severe: grading agreement on one grade per patient (the most severe of the patient's "
                    "images, for the reference and for each rater; study.metrics.agreement.patient_grade); "
                    "none: one grade per image")

    @model_validator(mode="after")
    def _check(self) -> "Grading":
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"levels must be unique, got {self.levels}")
        if self.scheme == "count_bands":
            if not self.bands:
                raise ValueError("scheme count_bands needs 'bands'")
            if [b.level for b in self.bands] != self.levels:
                raise ValueError("bands must list every level once, in the order of 'levels'")
            maxes = [b.max for b in self.bands]
            if maxes[-1] is not None or any(m is None for m in maxes[:-1]):
                raise ValueError("every band but the last needs 'max'; the last has none")
            if any(a >= b for a, b in zip(maxes[:-2], maxes[1:-1])):
                raise ValueError(f"band maxima must increase, got {maxes[:-1]}")
        else:
            if not self.rules or self.default is None:
                raise ValueError("scheme type_rules needs 'rules' and 'default'")
            for r in self.rules:
                if r.level not in self.levels:
                    raise ValueError(f"rule level {r.level!r} is not one of levels {self.levels}")
            if self.default not in self.levels:
                raise ValueError(f"default {self.default!r} is not one of levels {self.levels}")
            self._check_rule_order()
        if self.letter_aliases:
            for k, v in self.letter_aliases.items():
                if v not in self.levels:
                    raise ValueError(f"letter alias {k!r} -> {v!r}: not one of levels {self.levels}")
        return self


    def _check_rule_order(self) -> None:
        """Rules run from the most severe level down; every level must be reachable.

        Rule ``j`` can give its grade only for counts that no earlier rule matches. With
        one class ``c`` of rule ``j`` at its minimum and every other count 0, an earlier rule
        ``i`` matches exactly when it lists ``c`` with a minimum no higher; so rule ``j`` is
        reachable iff one of its classes has no such earlier rule (exact, since counts are
        monotone in each class).
        """
        rules = self.rules or []
        rank = {lv: i for i, lv in enumerate(self.levels)}
        for i, (a, b) in enumerate(zip(rules, rules[1:])):
            if rank[b.level] > rank[a.level]:
                raise ValueError(f"rules[{i + 1}] (level {b.level!r}) comes after rules[{i}] (level {a.level!r}): "
                                 "rules are tried in order and must run from the most severe level down "
                                 f"(levels {self.levels}, least to most severe)")
        reachable = {self.default}
        for j, rule in enumerate(rules):
            if any(all(not (c in earlier.any_of and earlier.any_of[c] <= m) for earlier in rules[:j])
                   for c, m in rule.any_of.items()):
                reachable.add(rule.level)
            else:
                raise ValueError(f"rules[{j}] (level {rule.level!r}, any_of {rule.any_of}) can never apply: "
                                 "every count that meets it already meets an earlier rule")
        unreachable = [lv for lv in self.levels if lv not in reachable]
        if unreachable:
            raise ValueError(f"no rule gives level(s) {unreachable} and neither is the default: "
                             "no case could ever be graded so")


# --------------------------------------------------------------------------- criteria
class Criterion(_Strict):
    """One inclusion/exclusion criterion on a manifest column, declared as data.

    Exactly the checks given apply: ``required`` (value present), ``min``/``max`` (inclusive
    numeric range), ``allowed`` (value must be one of), ``excluded`` (value must not be one of).
    """

    id: str = Field(..., pattern=r"^[a-z0-9_]+$")
    field: str
    description: str
    required: bool = True
    min: float | None = None
    max: float | None = None
    allowed: list[str | int | float] | None = None
    excluded: list[str | int | float] | None = None


# --------------------------------------------------------------------------- quality
class QualityThresholds(_Strict):
    """Image-quality gate thresholds (smartphone study: blur, exposure, face found, not occluded)."""

    min_width: int = Field(256, ge=1)
    min_height: int = Field(256, ge=1)
    analysis_size: int = Field(512, ge=64, description="longest side images are resized to for features")
    laplacian_var_min: float = Field(..., ge=0, description="variance of the Laplacian below this = blurred")
    tenengrad_min: float = Field(..., ge=0, description="mean squared Sobel gradient below this = blurred")
    dark_value: int = Field(40, ge=0, le=255, description="HSV V at or below this counts as too dark")
    bright_value: int = Field(250, ge=0, le=255, description="HSV V at or above this counts as over-exposed")
    dark_fraction_max: float = Field(0.5, ge=0, le=1)
    bright_fraction_max: float = Field(0.3, ge=0, le=1)
    mean_value_min: float = Field(50, ge=0, le=255)
    mean_value_max: float = Field(225, ge=0, le=255)
    face_required: bool = True
    face_fraction_min: float = Field(0.05, ge=0, le=1, description="share of the image the face box covers")
    occlusion_check: bool = True
    face_margin_min: float = Field(0.0, ge=0, le=0.5, description="face box must stay this far (share of side) from the border")
    skin_fraction_min: float = Field(0.0, ge=0, le=1, description="occlusion check: share of skin-coloured pixels "
                                     "(YCrCb rule of Chai & Ngan 1999) the face box must hold")
    face_detection_size: int = Field(160, ge=48, description="longest side images are resized to for face detection")


# --------------------------------------------------------------------------- detection
class DetectionSettings(_Strict):
    iou_threshold: IoUThreshold = 0.5
    score_thresholds: list[ScoreThreshold] = Field(default_factory=lambda: [0.25, 0.5, 0.75], min_length=1)
    operating_threshold: ScoreThreshold = 0.5
    max_detections: int = Field(1000, ge=100, description="per image; never the COCO default of 100")
    froc_fp_rates: list[float] = Field(default_factory=lambda: [0.125, 0.25, 0.5, 1, 2, 4, 8])
    match_rule: Literal["iou", "center_distance"] = "iou"
    center_distance_px: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> "DetectionSettings":
        ths = self.score_thresholds
        if len(set(ths)) != len(ths):
            raise ValueError(f"score_thresholds must be unique, got {ths}")
        if not any(abs(t - self.operating_threshold) < 1e-12 for t in ths):
            raise ValueError(f"operating_threshold {self.operating_threshold} is not one of score_thresholds {ths}: "
                             "counting error is reported at the score thresholds, so add it there")
        if self.match_rule == "center_distance" and self.center_distance_px is None:
            raise ValueError("match_rule center_distance needs center_distance_px (the matching radius in pixels)")
        return self


# --------------------------------------------------------------------------- statistics
class StatisticsSettings(_Strict):
    confidence_level: ConfidenceLevel = 0.95
    bootstrap_replicates: BootstrapReplicates = 2000
    bootstrap_seed: Seed = 20261121
    binomial_interval: BinomialInterval = "wilson"
    unit: AnalysisUnit | None = Field(
        None, exclude_if=lambda v: v is None, description="unit of analysis of the intervals: patient (a patient's images form one cluster) or "
        "image (images treated as independent); default: patient whenever patient ids exist (every study manifest "
        "has them)")
    mrmc_positive_from: str | None = Field(
        None, description="binary endpoint for MRMC: reference grade at or above this level is positive")


class ReportSettings(_Strict):
    show_example_images: bool = Field(False, description="faces are personal data: off by default")
    pseudonymise_case_ids: bool = True
    worst_cases: int = Field(10, ge=0)


class ReaderStudySettings(_Strict):
    """How readers are run by the reading tool (``study readers``)."""

    reader_groups: list[str] = Field(["junior", "intermediate", "senior"], min_length=1,
                                     description="the reader groups a readers file may name")
    aided_session: bool = Field(True, description="after the unaided session, an aided one (model output shown)")
    washout_days: int = Field(28, ge=0, description="days between a reader's last unaided answer and the aided "
                              "session opening (memory washout)")


class GradeFusion(_Strict):
    """The rule that turns several annotators' grades of a case into the reference grade.

    ``rule``:
      - ``majority``: the most frequent grade; a tie goes to the more severe of the tied grades
        (``ties: more_severe``) or to the adjudicator's grade (``ties: adjudicator``);
      - ``consensus``: the grade all annotators gave; when they disagree, the adjudicator's grade
        (without an adjudicator a disagreement is an error: the case needs a consensus meeting);
      - ``adjudicator``: the grade all annotators gave; when they disagree, the adjudicator's grade.

    ``adjudicator`` is the id of one of the config's ``cohort.annotators``.
    """

    rule: Literal["majority", "consensus", "adjudicator"]
    ties: Literal["more_severe", "adjudicator"] = Field("more_severe", description="majority rule: who breaks a tie")
    adjudicator: str | None = Field(None, description="annotator id who settles disagreements (ties)")

    @model_validator(mode="after")
    def _adjudicator(self) -> "GradeFusion":
        if self.rule == "adjudicator" and not self.adjudicator:
            raise ValueError("fusion rule 'adjudicator' needs 'adjudicator: <annotator id>'")
        if self.rule == "majority" and self.ties == "adjudicator" and not self.adjudicator:
            raise ValueError("majority with 'ties: adjudicator' needs 'adjudicator: <annotator id>'")
        return self


class LesionFusion(_Strict):
    """How several annotators' lesions become the reference lesions (study.annotators.lesions).

    Boxes of one class on one image from different annotators are clustered greedily (pairs in
    decreasing IoU; two clusters join when the pair's IoU reaches ``iou_threshold`` and no
    annotator is in both); a cluster is a reference lesion when at least ``min_annotators``
    annotators are in it. Its box is the coordinate-wise ``box`` (median or mean) of the
    cluster's boxes; for polygon classes the cluster's medoid annotation (highest mean IoU to
    the others) is kept whole, so its polygon and box agree.
    """

    min_annotators: int = Field(2, ge=1, description="k of k-of-m: annotators who must mark a lesion")
    iou_threshold: IoUThreshold = 0.5
    box: Literal["median", "mean"] = "median"


class ReferenceStandard(_Strict):
    """Who made the reference standard and how (STARD 10b; CLAIM 2024 reference-standard items).

    Each field optional: the report prints "not supplied" for a missing one and the checklists
    count it as not reported.
    """

    annotators: str | None = Field(None, description="who annotated the lesions and assigned the grades")
    qualifications: str | None = Field(None, description="their qualifications and training for the task")
    disagreements: str | None = Field(None, description="how disagreements between annotators were settled")
    annotation_tool: str | None = Field(None, description="the software used to annotate")
    fusion: GradeFusion | None = Field(None, exclude_if=lambda v: v is None,
                                       description="how the grades of several annotators (config cohort.annotators) "
                                       "become the reference grade (study.annotators.grades)")
    lesion_fusion: LesionFusion | None = Field(None, exclude_if=lambda v: v is None,
                                               description="how several annotators' lesions become the reference "
                                               "lesions (study.annotators.lesions)")


class Protocol(_Strict):
    """A study protocol (see ``protocols/*.yaml``)."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$")
    title: str
    version: str
    description: str = ""
    classes: list[str] = Field(..., min_length=1)
    polygon_classes: list[str] = Field(default_factory=list, description="classes annotated as polygons (masks)")
    grading: Grading
    inclusion: list[Criterion] = Field(default_factory=list, description="applied in this order")
    quality: QualityThresholds
    detection: DetectionSettings = DetectionSettings()
    statistics: StatisticsSettings = StatisticsSettings()
    subgroups: list[str] = Field(default_factory=list, description="manifest columns for subgroup analyses")
    report: ReportSettings = ReportSettings()
    analysis_plan: AnalysisPlan | None = Field(None, exclude_if=lambda v: v is None,
                                               description="pre-specified endpoints, hypotheses and "
                                               "multiplicity (study.plan.model); left out of dumps when absent")
    reader_study: ReaderStudySettings = ReaderStudySettings()
    reference_standard: ReferenceStandard | None = Field(None, exclude_if=lambda v: v is None,
                                                         description="who annotated, their qualifications, how "
                                                         "disagreements were settled; left out of dumps when absent")

    @model_validator(mode="after")
    def _check(self) -> "Protocol":
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be unique, got {self.classes}")
        unknown = [c for c in self.polygon_classes if c not in self.classes]
        if unknown:
            raise ValueError(f"polygon_classes {unknown} are not in classes {self.classes}")
        g = self.grading
        used = set(g.count_classes or []) | {c for r in (g.rules or []) for c in r.any_of}
        unknown = sorted(used - set(self.classes))
        if unknown:
            raise ValueError(f"grading refers to classes {unknown} not in classes {self.classes}")
        ids = [c.id for c in self.inclusion]
        if len(set(ids)) != len(ids):
            raise ValueError(f"inclusion criterion ids must be unique, got {ids}")
        s = self.statistics
        if s.mrmc_positive_from is not None and s.mrmc_positive_from not in g.levels:
            raise ValueError(f"statistics.mrmc_positive_from {s.mrmc_positive_from!r} is not one of {g.levels}")
        if self.analysis_plan is not None:
            problems = check_plan_against_protocol(self.analysis_plan, classes=self.classes, levels=self.levels,
                                                   subgroups=self.subgroups,
                                                   iou_threshold=self.detection.iou_threshold)
            if problems:
                raise ValueError("; ".join(problems))
        return self

    # ------------------------------------------------------------------ helpers
    @property
    def levels(self) -> list[str]:
        return list(self.grading.levels)


class LoadedProtocol(BaseModel):
    """A protocol together with where it came from and the sha256 of its file."""

    model_config = ConfigDict(frozen=True)
    protocol: Protocol
    path: str
    sha256: str


def _pydantic_problems(file: str, err: ValidationError) -> list[Problem]:
    return validation_problems(file, err, unknown_key_hint="check the spelling against the protocol schema")


def parse_protocol(data: Any, *, source: str = "<protocol>") -> Protocol:
    """Validate a protocol given as a mapping; raise :class:`StudyError` listing every problem."""
    if not isinstance(data, dict):
        raise StudyError(f"a protocol must be a YAML mapping, got {type(data).__name__}", file=source)
    try:
        return Protocol.model_validate(data)
    except ValidationError as e:
        raise StudyError(_pydantic_problems(source, e)) from None


def load_protocol(path: str | Path) -> LoadedProtocol:
    """Load and validate a protocol YAML file.

    Raises
    ------
    StudyError
        If the file is missing, not YAML, or not a valid protocol (all problems listed).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StudyError("protocol file not found", file=str(path)) from None
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise StudyError("protocol is not UTF-8 text", file=str(path)) from None
    except yaml.YAMLError as e:
        raise StudyError(f"invalid YAML: {e}", file=str(path)) from None
    return LoadedProtocol(protocol=parse_protocol(data, source=str(path)), path=str(path), sha256=sha256_bytes(raw))
