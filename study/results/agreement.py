"""The ``agreement`` block of ``results.json``: severity-grade agreement, typed.

Written by :func:`study.metrics.agreement.evaluate_agreement` (``metrics/agreement.json``,
and by ``study evaluate agreement`` with the :class:`StandaloneAgreement` extras), read by
``collect`` and the report. Every statistic is an :class:`~study.estimate.Estimate`; a
single rater's analytic estimates (Wilson / Clopper-Pearson proportions, Wald-ASE kappas)
carry the patient-bootstrap interval of the same statistic as ``bootstrap``
(:class:`BootstrappedEstimate`); statistics that pool several readers have the patient
bootstrap as their main interval (plain :class:`~study.estimate.Estimate`).
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import Field

from study.estimate import Estimate
from study.results.base import ResultModel

__all__ = [
    "AgreementResult", "AgreementSettings", "AgreementStats", "BootstrapInterval", "BootstrappedEstimate",
    "Comparison", "ConfusionAxes", "ErrorDirections", "FleissKappa", "GradeAgreement", "GroupAgreement",
    "GroupComparison", "InputFile", "InterReader", "KrippendorffAlpha", "McNemarNotDone", "McNemarTest",
    "NoSharedCases", "PairwiseAgreement",
    "ProtocolReference", "RaterAgreement", "RaterKind", "ReaderComparison", "ReaderPair", "Spread", "SpreadByMetric",
    "StandaloneAgreement",
]


def _optional() -> Any:
    """An optional field left out of the JSON when it is not set (as the producer writes it)."""
    return Field(None, exclude_if=lambda v: v is None)


class BootstrapInterval(ResultModel):
    """The patient-bootstrap interval of a statistic whose main interval is analytic.

    An :class:`Estimate` without its point value (the point is the analytic estimate's):
    ``reason`` when the statistic is undefined on the observed data, ``n_undefined`` the
    replicates in which it was undefined (left out of the percentiles).
    """

    ci_low: float | None
    ci_high: float | None
    method: str
    se: float | None = _optional()
    n_undefined: int | None = _optional()
    reason: str | None = _optional()


class BootstrappedEstimate(Estimate):
    """An analytic estimate with the patient-bootstrap interval of the same statistic."""

    bootstrap: BootstrapInterval


E = TypeVar("E", bound=Estimate)
RaterKind = Literal["model", "reader"]


class ConfusionAxes(ResultModel):
    """What the rows and columns of ``confusion_matrix`` are: all protocol levels, in order."""

    rows: Literal["reference"]
    columns: Literal["rater"]
    labels: list[str]


class GradeAgreement(ResultModel, Generic[E]):
    """One grade against the others (one-versus-rest); F1 always has the bootstrap interval."""

    n_reference: int
    n_rated: int
    sensitivity: E
    specificity: E
    ppv: E
    npv: E
    f1: Estimate


class ErrorDirections(ResultModel, Generic[E]):
    """Shares of the errors that down-grade, up-grade, or cross two or more grades."""

    n_errors: int
    downgrade: E
    upgrade: E
    cross_grade: E


class AgreementStats(ResultModel, Generic[E]):
    """Every statistic of one confusion table (rows = reference, columns = rater)."""

    confusion_matrix: list[list[int]]
    confusion_matrix_axes: ConfusionAxes
    accuracy: E
    kappa: E
    kappa_linear: E
    kappa_quadratic: E
    per_grade: dict[str, GradeAgreement[E]]
    macro_f1: Estimate
    errors: ErrorDirections[E]


class RaterAgreement(AgreementStats[BootstrappedEstimate]):
    """One rater (model or reader) against the reference, on the cases it graded."""

    kind: RaterKind
    group: str | None
    n_cases: int
    n_missing: int
    n_patients: int


class Spread(ResultModel):
    """Range of one statistic over the readers of a group (``None`` where no reader has it)."""

    min: float | None
    median: float | None
    max: float | None
    n_readers: int
    by_reader: dict[str, float | None]


class SpreadByMetric(ResultModel):
    """:class:`Spread` of each single-reader statistic over a group's readers."""

    accuracy: Spread
    kappa: Spread
    kappa_linear: Spread
    kappa_quadratic: Spread
    macro_f1: Spread

    def items(self) -> list[tuple[str, Spread]]:
        """``(statistic, spread)`` pairs in the order of the statistic names."""
        return sorted(((name, getattr(self, name)) for name in type(self).model_fields), key=lambda kv: kv[0])


class GroupAgreement(AgreementStats[Estimate]):
    """The pooled readings of a reader group (patient bootstrap as the main interval)."""

    n_cases: int
    n_readings: int
    readers: list[str]
    spread: SpreadByMetric
    note: str


class ReaderPair(ResultModel):
    """Cohen's kappas of two readers on the cases both read."""

    reader_a: str
    reader_b: str
    n_cases: int
    kappa: BootstrappedEstimate
    kappa_linear: BootstrappedEstimate
    kappa_quadratic: BootstrappedEstimate


class PairwiseAgreement(ResultModel):
    """Reader-by-reader matrices (rows and columns in the order of ``readers``; diagonal: ``None``)."""

    readers: list[str]
    n_shared: list[list[int | None]]
    kappa: list[list[BootstrappedEstimate | None]]
    kappa_linear: list[list[BootstrappedEstimate | None]]
    kappa_quadratic: list[list[BootstrappedEstimate | None]]
    pairs: list[ReaderPair]
    rows_columns: str


class FleissKappa(ResultModel):
    """Fleiss' (1971) kappa on the reader set and cases that use the most readings."""

    kappa: Estimate
    readers: list[str]
    n_cases: int
    case_ids: list[str]
    selection: str | None = _optional()


class KrippendorffAlpha(ResultModel):
    """Krippendorff's alpha (ordinal metric) over all readings of cases read by two or more readers."""

    alpha: Estimate
    readers: list[str]
    n_cases: int
    note: str | None = _optional()


class InterReader(ResultModel):
    """Agreement between readers (models are compared with the reference and with readers)."""

    readers: list[str]
    note: str
    pairwise: PairwiseAgreement
    fleiss: FleissKappa
    krippendorff_alpha_ordinal: KrippendorffAlpha


class McNemarTest(ResultModel):
    """McNemar's test of the model against one reader on the cases both graded.

    Exact (images as independent pairs, ``note``) or, when the unit of analysis is the
    patient, the clustered test of Durkalski et al. (2003) with its chi-square ``statistic``
    and ``n_patients`` (``p_value`` ``None`` with a ``reason`` when it is undefined).
    """

    p_value: float | None
    method: str
    both_correct: int
    model_only_correct: int
    reader_only_correct: int
    both_wrong: int
    note: str | None = _optional()
    statistic: float | None = _optional()
    n_patients: int | None = _optional()
    reason: str | None = _optional()


class McNemarNotDone(ResultModel):
    """Why McNemar's test is not done (a reader group: readings of one case are not independent pairs)."""

    p_value: None
    method: str
    reason: str


class _Compared(ResultModel):
    """Model against a reader or a reader group on the cases both graded."""

    model: str
    versus: str
    n_cases: int
    n_patients: int | None = _optional()
    model_accuracy: Estimate
    versus_accuracy: Estimate
    accuracy_difference: Estimate
    model_kappa_quadratic: Estimate
    versus_kappa_quadratic: Estimate
    kappa_quadratic_difference: Estimate


class ReaderComparison(_Compared):
    """Model against one reader: each one's accuracy and kappa, differences model minus reader."""

    versus_kind: Literal["reader"]
    mcnemar: McNemarTest


class GroupComparison(_Compared):
    """Model against a reader group: means over the group's readers of the paired comparisons."""

    versus_kind: Literal["group"]
    readers: list[str]
    mcnemar: McNemarNotDone


class NoSharedCases(ResultModel):
    """Model against a reader or group with no case graded by both: nothing is estimated."""

    model: str
    versus: str
    versus_kind: Literal["reader", "group"]
    n_cases: int
    reason: str
    readers: list[str] | None = _optional()  # written for a group (empty), not for a reader


#: one entry of ``comparisons`` (the shapes exclude each other: unknown keys are refused)
Comparison = ReaderComparison | GroupComparison | NoSharedCases


class AgreementSettings(ResultModel):
    """The interval settings used and the cohort the block was computed on."""

    confidence: float
    n_bootstrap: int
    seed: int
    binomial_interval: Literal["wilson", "clopper_pearson"]
    bootstrap_unit: str
    n_cases: int
    n_patients: int
    reference_distribution: dict[str, int]
    #: unit of analysis of the main intervals (``statistics.unit``); absent in files written before it existed
    unit: Literal["patient", "image"] | None = _optional()
    #: ``most_severe``: every grade is one patient's (the most severe of the patient's images;
    #: ``n_cases`` then counts patients); absent: one grade per image
    patient_grade: Literal["most_severe"] | None = _optional()


class AgreementResult(ResultModel):
    """The whole ``agreement`` block.

    ``subgroups.<column>.<value>.<rater_id>``: the rater's agreement on that subgroup's cases
    (missing covariate values form the value ``"missing"``); ``subgroups_n_cases.<column>.<value>``.
    """

    levels: list[str]
    settings: AgreementSettings
    raters: dict[str, RaterAgreement]
    groups: dict[str, GroupAgreement]
    inter_reader: InterReader
    comparisons: list[Comparison]
    subgroups: dict[str, dict[str, dict[str, RaterAgreement]]]
    subgroups_n_cases: dict[str, dict[str, int]]


class InputFile(ResultModel):
    """An input file of a stand-alone evaluation and its sha256."""

    path: str
    sha256: str


class ProtocolReference(ResultModel):
    """The protocol a stand-alone evaluation took its levels and settings from."""

    name: str
    version: str
    path: str
    sha256: str


class StandaloneAgreement(AgreementResult):
    """What ``study evaluate agreement`` writes: the block plus its inputs (and protocol, if any)."""

    input: dict[str, InputFile]
    protocol: ProtocolReference | None = _optional()
