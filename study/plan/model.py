"""The ``analysis_plan:`` block of a protocol: endpoints, hypotheses and success criteria as data.

Everything a confirmatory analysis needs is fixed here before the reference standard and
the readings are seen (ICH E9(R1) estimands; STARD 2015 items 4 and 18): each endpoint's
metric (from :data:`study.plan.metrics.METRICS`), rater, population, unit of analysis,
comparator and hypothesis, the family-wise ``alpha`` and its sidedness, and the
multiplicity procedure across the confirmatory (primary and secondary) endpoints. Unknown
keys are errors. What needs the study's config (model ids, reader groups, manifest columns)
is checked by :func:`check_plan_against_study` (``study check``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from study.errors import Problem
from study.plan.metrics import METRICS, metric_names

#: the reading modalities of the readings (``study.readings.MODALITIES``)
READING_MODALITIES = ("unaided", "aided")

Alpha = Annotated[float, Field(gt=0, le=0.5, description="family-wise type I error rate, in (0, 0.5]")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Population(_Strict):
    """The cases an endpoint concerns: all included cases, or those whose manifest ``column`` is one of ``values``."""

    column: str
    values: list[str | int | float] = Field(..., min_length=1)

    def words(self) -> str:
        return f"included cases with {self.column} in {', '.join(str(v) for v in self.values)}"


class Comparator(_Strict):
    """What the rater is compared with.

    ``goal``: a fixed performance goal (``value``); ``readers``: the readers' average on the
    cases both read (all readers, or ``reader_group``); ``model``: another model (``model``);
    ``modality``: another reading modality (``modality``: ``unaided`` or ``aided``): the readers
    reading in the other modality against themselves reading in this one (an MRMC figure-of-merit
    difference, ``mrmc_fom_difference``).
    """

    kind: Literal["goal", "readers", "model", "modality"]
    value: float | None = None
    reader_group: str | None = None
    model: str | None = None
    modality: str | None = None

    @model_validator(mode="after")
    def _fields(self) -> Comparator:
        need = {"goal": "value", "model": "model", "modality": "modality"}.get(self.kind)
        if need and getattr(self, need) is None:
            raise ValueError(f"comparator kind {self.kind!r} needs {need!r}")
        extra = [f for f in ("value", "reader_group", "model", "modality")
                 if getattr(self, f) is not None and f != need and not (self.kind == "readers" and f == "reader_group")]
        if extra:
            raise ValueError(f"comparator kind {self.kind!r} does not take {extra}")
        return self

    def words(self) -> str:
        if self.kind == "goal":
            return f"the performance goal {self.value:g}"
        if self.kind == "readers":
            return f"the average of the {self.reader_group + ' ' if self.reader_group else ''}readers on the cases both read"
        if self.kind == "model":
            return f"model {self.model} on the same cases"
        return f"the readers reading {self.modality}"


class Hypothesis(_Strict):
    """The hypothesis tested (alternative in words; margins in the metric's units).

    - ``performance_goal``: the confidence bound on the good side of the goal clears it
      (lower bound at or above for a higher-is-better metric, upper bound at or below else);
    - ``superiority``: the difference rater - comparator is better than 0;
    - ``non_inferiority``: the difference is better than ``-margin`` (``margin`` > 0);
    - ``equivalence``: the difference (or the metric minus the goal) lies within
      ``margins`` = [lower < 0, upper > 0] (two one-sided tests, Schuirmann 1987).
    """

    kind: Literal["performance_goal", "superiority", "non_inferiority", "equivalence"]
    margin: float | None = None
    margins: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _margins(self) -> Hypothesis:
        if self.kind == "non_inferiority":
            if self.margin is None:
                raise ValueError("non_inferiority needs 'margin' (a positive amount in the metric's units)")
            if not self.margin > 0:
                raise ValueError(f"margin {self.margin} has the wrong sign: the non-inferiority margin is the "
                                 "positive amount by which the rater may be worse than the comparator")
        elif self.margin is not None:
            raise ValueError(f"'margin' is only for non_inferiority, not {self.kind}")
        if self.kind == "equivalence":
            if self.margins is None:
                raise ValueError("equivalence needs 'margins': [lower (< 0), upper (> 0)]")
            lo, hi = self.margins
            if not (lo < 0 < hi):
                raise ValueError(f"margins {list(self.margins)} have the wrong sign: expected [lower < 0, upper > 0]")
        elif self.margins is not None:
            raise ValueError(f"'margins' is only for equivalence, not {self.kind}")
        return self


class Estimand(_Strict):
    """The estimand in words (ICH E9(R1)): population, variable, intercurrent events, summary measure."""

    population: str
    variable: str
    intercurrent_events: str
    summary_measure: str


class Planning(_Strict):
    """What ``study plan`` assumes for this endpoint (anticipated values under the alternative).

    ``expected``: the anticipated value of the metric (or of the difference for a comparison);
    ``prevalence``: share of reference-positive cases (sensitivity / specificity);
    ``discordance``: share of cases where exactly one of rater and comparator is right
    (paired comparisons); ``level_shares``: anticipated share of each grade (kappa).
    """

    expected: float | None = None
    prevalence: float | None = Field(None, gt=0, lt=1)
    discordance: float | None = Field(None, gt=0, le=1)
    level_shares: list[Annotated[float, Field(gt=0)]] | None = None


class Endpoint(_Strict):
    """One endpoint of the plan."""

    id: str = Field(..., pattern=r"^[a-z0-9_]+$")
    role: Literal["primary", "secondary", "exploratory"]
    metric: str
    rater: str | None = Field(None, description="the model id the endpoint concerns; omitted: the study's one "
                              "model (a config listing several models must name it)")
    lesion_class: str = Field("any", description="lesion metrics: a protocol class or 'any' (any lesion)")
    positive_from: str | None = Field(None, description="sensitivity / specificity: reference grade at or above "
                                      "this level is positive")
    population: Literal["all"] | Population = "all"
    unit: Literal["patient", "image"] = "patient"
    comparator: Comparator
    hypothesis: Hypothesis
    estimand: Estimand | None = None
    planning: Planning | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        if v not in METRICS:
            raise ValueError(f"unknown metric {v!r}; the registry has {metric_names()}")
        return v

    @model_validator(mode="after")
    def _fits(self) -> Endpoint:
        m = METRICS[self.metric]
        if self.comparator.kind not in m.comparators and self.comparator.kind != "modality":
            raise ValueError(f"metric {self.metric!r} cannot be compared with {self.comparator.kind!r}; "
                             f"it takes {list(m.comparators)}")
        if m.needs_cut and self.positive_from is None:
            raise ValueError(f"metric {self.metric!r} needs 'positive_from' (the grade at or above which a case is positive)")
        if not m.needs_cut and self.positive_from is not None:
            raise ValueError(f"'positive_from' is only for grade_sensitivity / grade_specificity, not {self.metric!r}")
        if not m.needs_class and self.lesion_class != "any":
            raise ValueError(f"'lesion_class' is only for lesion metrics, not {self.metric!r}")
        h, c = self.hypothesis.kind, self.comparator.kind
        if h == "performance_goal" and c != "goal":
            raise ValueError("a performance_goal hypothesis needs comparator kind 'goal'")
        if c == "goal" and h in ("superiority", "non_inferiority"):
            raise ValueError(f"against a fixed goal the hypothesis is performance_goal (or equivalence), not {h}")
        if m.direction == "none" and h != "equivalence":
            raise ValueError(f"metric {self.metric!r} has no better direction: its hypothesis must be equivalence")
        if m.kind in ("reported", "mrmc") and self.population != "all":
            raise ValueError(f"metric {self.metric!r} is computed by its step on all included cases: population 'all'")
        if c == "modality" and self.comparator.modality not in READING_MODALITIES:
            raise ValueError(f"comparator modality {self.comparator.modality!r} is not a reading modality: "
                             f"expected one of {list(READING_MODALITIES)}")
        # against another modality: the U-statistic analysis of every case with readings (unit 'patient' or 'image')
        if self.metric == "mrmc_fom_difference" and c != "modality" and (self.unit != "image" or self.population != "all"):
            raise ValueError("mrmc_fom_difference is the MRMC analysis of all crossed cases: unit 'image', population 'all'")
        return self

    @property
    def confirmatory(self) -> bool:
        return self.role != "exploratory"


class Multiplicity(_Strict):
    """How the family-wise error rate is controlled across the confirmatory endpoints.

    ``fixed_sequence``: tested in the order of ``endpoints``, each at the full alpha, until the
    first not met (hierarchical testing; Maurer, Hothorn & Lehmacher 1995); ``holm`` (Holm
    1979); ``bonferroni``; ``graphical`` (Bretz, Maurer, Brannath & Posch 2009): initial
    ``weights`` (in the order of ``endpoints``, summing to at most 1) and the transition
    matrix ``transitions`` (rows: from, columns: to; zero diagonal; rows summing to at most 1).
    """

    procedure: Literal["fixed_sequence", "holm", "bonferroni", "graphical"]
    endpoints: list[str] = Field(..., min_length=1)
    weights: list[Annotated[float, Field(ge=0, le=1)]] | None = None
    transitions: list[list[Annotated[float, Field(ge=0, le=1)]]] | None = None

    @model_validator(mode="after")
    def _graph(self) -> Multiplicity:
        k = len(self.endpoints)
        if len(set(self.endpoints)) != k:
            raise ValueError(f"endpoints must be listed once each, got {self.endpoints}")
        if self.procedure != "graphical":
            if self.weights is not None or self.transitions is not None:
                raise ValueError("'weights' and 'transitions' are only for the graphical procedure")
            return self
        if self.weights is None or self.transitions is None:
            raise ValueError("the graphical procedure needs 'weights' and 'transitions'")
        if len(self.weights) != k or sum(self.weights) > 1 + 1e-9:
            raise ValueError(f"weights must be {k} numbers (one per endpoint) summing to at most 1, got {self.weights}")
        if len(self.transitions) != k or any(len(r) != k for r in self.transitions):
            raise ValueError(f"transitions must be a {k} x {k} matrix")
        for i, row in enumerate(self.transitions):
            if row[i] != 0 or sum(row) > 1 + 1e-9:
                raise ValueError(f"transitions row {i}: the diagonal must be 0 and the row sum at most 1, got {row}")
        return self


class AnalysisPlan(_Strict):
    """The analysis plan (see the module docstring)."""

    alpha: Alpha = 0.05
    sided: Literal["one", "two"] = Field("two", description="two: each one-sided test runs at alpha / 2")
    power: float = Field(0.8, gt=0, lt=1, description="target power for `study plan`")
    images_per_patient: float = Field(1.0, ge=1, description="`study plan`: anticipated images per patient")
    intra_patient_correlation: float = Field(0.0, ge=0, le=1, description="`study plan`: ICC of images of one patient")
    endpoints: list[Endpoint] = Field(..., min_length=1)
    multiplicity: Multiplicity | None = None

    @model_validator(mode="after")
    def _coverage(self) -> AnalysisPlan:
        ids = [e.id for e in self.endpoints]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"endpoint ids must be unique, repeated: {dup}")
        confirmatory = [e.id for e in self.endpoints if e.confirmatory]
        if not any(e.role == "primary" for e in self.endpoints):
            raise ValueError("the plan needs at least one primary endpoint")
        if self.multiplicity is None:
            if len(confirmatory) > 1:
                raise ValueError(f"{len(confirmatory)} confirmatory endpoints {confirmatory} need a 'multiplicity' "
                                 "procedure that lists every one of them")
            return self
        listed = self.multiplicity.endpoints
        unknown = [i for i in listed if i not in ids]
        exploratory = [i for i in listed if i in ids and i not in confirmatory]
        missing = [i for i in confirmatory if i not in listed]
        if unknown:
            raise ValueError(f"multiplicity.endpoints names {unknown}, not endpoint ids of the plan ({ids})")
        if exploratory:
            raise ValueError(f"multiplicity.endpoints lists exploratory endpoints {exploratory}; they are not tested")
        if missing:
            raise ValueError(f"multiplicity procedure {self.multiplicity.procedure!r} does not cover the confirmatory "
                             f"endpoint(s) {missing}: list every primary and secondary endpoint")
        return self

    @property
    def one_sided_alpha(self) -> float:
        """The level each one-sided test runs at before multiplicity: ``alpha`` or ``alpha / 2``."""
        return self.alpha if self.sided == "one" else self.alpha / 2

    def endpoint(self, endpoint_id: str) -> Endpoint:
        return next(e for e in self.endpoints if e.id == endpoint_id)

    def with_rater(self, models: list[str]) -> AnalysisPlan:
        """The plan with every endpoint that names no rater given the study's one model (unchanged with several)."""
        if len(models) != 1:
            return self
        return self.model_copy(update={"endpoints": [e if e.rater is not None else e.model_copy(update={"rater": models[0]})
                                                     for e in self.endpoints]})


def check_plan_against_protocol(plan: AnalysisPlan, *, classes: list[str], levels: list[str],
                                subgroups: list[str], iou_threshold: float) -> list[str]:
    """Cross-field problems between the plan and the rest of its protocol (messages naming the endpoint)."""
    out = []
    for i, e in enumerate(plan.endpoints):
        where = f"analysis_plan.endpoints[{i}] ({e.id})"
        if e.lesion_class != "any" and e.lesion_class not in classes:
            out.append(f"{where}: lesion_class {e.lesion_class!r} is not one of the protocol's classes {classes} or 'any'")
        if e.positive_from is not None and e.positive_from not in levels:
            out.append(f"{where}: positive_from {e.positive_from!r} is not one of the grading levels {levels}")
        if e.positive_from is not None and e.positive_from == levels[0]:
            out.append(f"{where}: positive_from {e.positive_from!r} is the lowest level: every case would be positive")
        if isinstance(e.population, Population) and e.population.column not in subgroups:
            out.append(f"{where}: population column {e.population.column!r} is not one of the protocol's "
                       f"subgroups {subgroups}")
        if e.metric == "ap50" and abs(iou_threshold - 0.5) > 1e-12:
            out.append(f"{where}: ap50 needs detection.iou_threshold 0.5, the protocol has {iou_threshold}")
        if e.planning and e.planning.level_shares is not None and len(e.planning.level_shares) != len(levels):
            out.append(f"{where}: planning.level_shares needs {len(levels)} shares (one per level {levels})")
    return out


def check_plan_against_study(plan: AnalysisPlan, *, file: str, models: list[str], reader_groups: list[str] | None,
                             columns: list[str] | None) -> list[Problem]:
    """Problems only the study's config and inputs reveal: unknown model ids, reader groups, subgroup columns.

    ``reader_groups`` / ``columns``: ``None`` when the readings / manifest could not be read.
    """
    out = []
    for i, e in enumerate(plan.endpoints):
        where = f"analysis_plan.endpoints[{i}]"
        if e.rater is None and len(models) != 1:
            out.append(Problem(file, f"{where}.rater", f"endpoint {e.id!r} names no rater and the config lists "
                               f"{len(models)} models ({models}): name the model the endpoint concerns"))
        elif e.rater is not None and e.rater not in models:
            out.append(Problem(file, f"{where}.rater", f"endpoint {e.id!r} names model {e.rater!r}, which the config "
                               f"does not list (models: {models})"))
        if e.comparator.kind == "model" and e.comparator.model not in models:
            out.append(Problem(file, f"{where}.comparator.model", f"endpoint {e.id!r} compares with model "
                               f"{e.comparator.model!r}, which the config does not list (models: {models})"))
        if e.comparator.kind == "model" and e.comparator.model == (e.rater or (models[0] if len(models) == 1 else None)):
            out.append(Problem(file, f"{where}.comparator.model", f"endpoint {e.id!r} compares model {e.rater!r} with itself"))
        if e.comparator.kind == "readers" and e.comparator.reader_group and reader_groups is not None \
                and e.comparator.reader_group not in reader_groups:
            out.append(Problem(file, f"{where}.comparator.reader_group", f"endpoint {e.id!r} names reader group "
                               f"{e.comparator.reader_group!r}; the readings have groups {reader_groups}"))
        if isinstance(e.population, Population) and columns is not None and e.population.column not in columns:
            out.append(Problem(file, f"{where}.population.column", f"endpoint {e.id!r}: subgroup column "
                               f"{e.population.column!r} is not in the manifest"))
    return out
