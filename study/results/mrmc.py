"""Typed results of the multi-reader multi-case (MRMC) analysis: the ``mrmc`` block of ``results.json``.

Two producers write these models:

- :func:`study.metrics.mrmc.analyze_mrmc` returns an :class:`MRMCAnalysis` (``study evaluate
  mrmc`` writes it, with the ROC curves and the input's checksum, as an :class:`MRMCCommandOutput`);
- the workflow step :func:`study.steps.evaluate_mrmc` writes the study block
  :data:`MRMCStudyBlock`: either :class:`~study.results.base.NotAssessed` or an :class:`MRMCBlock`
  holding, per model, the crossed block taken from the readers' grades (:class:`CrossedBlock`),
  the analysis and the empirical ROC curves.

Every estimate is a :class:`study.estimate.Estimate` (subclassed here to carry the degrees of
freedom and the components each interval was computed from). The JSON is what the producers
wrote before these models existed: keys that were always written (``df``, a component that is
undefined for one modality, ...) stay, as ``null`` when undefined; keys written only by some
analyses (``ms_r``, ``cov2``, ``reader``, ...) are left out where they do not apply.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError

from study.estimate import Estimate
from study.results.base import NotAssessed, ResultModel

__all__ = [
    "AIAnalyses",
    "AIVarianceComponents",
    "AIVersusReaders",
    "Analysis",
    "AnalysisName",
    "BootstrapSettings",
    "CasesExcluded",
    "CrossedBlock",
    "DBMMeanSquares",
    "DBMVarianceComponents",
    "Difference",
    "DroppedRater",
    "FTest",
    "FileRef",
    "MRMCAnalysis",
    "MRMCBlock",
    "MRMCCommandOutput",
    "MRMCDesign",
    "MRMCInputs",
    "MRMCModelResult",
    "MRMCStudyBlock",
    "MRMCUStatStudy",
    "MaybeFloat",
    "MethodName",
    "ModalityFom",
    "ModalityResult",
    "ORAnova",
    "ORVarianceComponents",
    "PseudovalueMeanSquares",
    "RocCurve",
    "TEstimate",
    "UStatAnalysis",
    "UStatCommandOutput",
    "UStatComponents",
    "UStatDesign",
    "UStatDifference",
    "UStatEstimate",
    "UStatModality",
    "UStatModalityDesign",
    "parse_mrmc_block",
]

AnalysisName = Literal["rrrc", "frrc", "rrfc"]
MethodName = Literal["or", "dbm"]


def _finite_or_none(v: Any) -> Any:
    """Non-finite numbers are undefined (JSON has no NaN): ``None``."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isfinite(float(v)):
        return None
    return v


#: a number that is ``None`` when undefined (e.g. a covariance across modalities with one modality)
MaybeFloat = Annotated[float | None, BeforeValidator(_finite_or_none)]


def _omitted() -> Any:
    """A field written only by the analyses it applies to (left out of the JSON otherwise)."""
    return Field(None, exclude_if=lambda v: v is None)


# ----------------------------------------------------------------------------- estimates
class TEstimate(Estimate):
    """An estimate with a t interval on ``df`` degrees of freedom (``df`` is ``None``: normal interval)."""

    df: MaybeFloat = None


class ModalityFom(TEstimate):
    """The figure of merit of one modality (the readers' average) and the terms of its interval.

    OR RRRC intervals carry ``ms_r`` and ``cov2``; OR FRRC ``var_error`` and ``cov2``; RRFC
    ``ms_r``; DBM ones the single-modality pseudovalue mean squares ``ms_r, ms_c, ms_rc``.
    """

    ms_r: float | None = _omitted()
    ms_c: float | None = _omitted()
    ms_rc: float | None = _omitted()
    cov2: float | None = _omitted()
    var_error: float | None = _omitted()


class Difference(TEstimate):
    """A difference of figures of merit (``modalities[0] - modalities[1]``) with its test.

    ``kind``: ``modality`` (between modalities, readers averaged), ``single_reader`` (FRRC,
    one reader: ``reader`` and its ``var_error, cov1`` (OR) or ``ms_tc`` (DBM)), or
    ``ai_vs_readers`` (the algorithm minus the readers' average in ``modality``, with
    ``f_statistic`` = statistic squared).
    """

    modalities: list[str]
    comparison: str
    kind: Literal["modality", "single_reader", "ai_vs_readers"]
    statistic: MaybeFloat
    statistic_name: Literal["z", "t"]
    p_value: MaybeFloat
    reader: str | None = _omitted()
    var_error: float | None = _omitted()
    cov1: float | None = _omitted()
    ms_tc: float | None = _omitted()
    modality: str | None = _omitted()
    f_statistic: float | None = _omitted()


class FTest(ResultModel):
    """The global test of equal figures of merit (F, or chi-square for OR FRRC).

    With one modality and an algorithm, the headline test is the AI-versus-readers one: it then
    names the ``comparison`` and the ``modality``.
    """

    statistic: MaybeFloat
    statistic_name: Literal["F", "chi-square"]
    ndf: float
    ddf: MaybeFloat
    p_value: MaybeFloat
    error_term: MaybeFloat
    error_term_formula: str
    comparison: str | None = _omitted()
    modality: str | None = _omitted()


# ----------------------------------------------------------------------------- design
class MRMCDesign(ResultModel):
    """The fully crossed design analysed."""

    n_modalities: int
    modalities: list[str]
    n_readers: int
    readers: list[str]
    n_cases: int
    n_cases_negative: int
    n_cases_positive: int
    crossing: str
    ai_reader: str | None
    readers_in_modality_comparison: list[str]


class ModalityResult(ResultModel):
    """The headline figure of merit of one modality and each reader's."""

    fom: ModalityFom
    readers: dict[str, MaybeFloat]


class BootstrapSettings(ResultModel):
    replicates: int
    seed: int
    stratified_by_truth: bool


# ----------------------------------------------------------------------------- variance
class ORVarianceComponents(ResultModel):
    """Obuchowski-Rockette variance components (ANOVA estimates; Hillis et al. 2005, Table I)."""

    var_r: MaybeFloat
    var_tr: MaybeFloat
    cov1: MaybeFloat
    cov2: MaybeFloat
    cov3: MaybeFloat
    var_error: MaybeFloat
    corr1: MaybeFloat
    corr2: MaybeFloat
    corr3: MaybeFloat
    covariance_method: str
    note: str


class ORAnova(ResultModel):
    """The modality x reader ANOVA of the figures of merit, and the covariances by modality and reader."""

    ms_t: MaybeFloat
    ms_r: MaybeFloat
    ms_tr: MaybeFloat
    df_t: int
    df_r: int
    df_tr: int
    ss_t: MaybeFloat
    ss_r: MaybeFloat
    ss_tr: MaybeFloat
    ms_r_by_modality: dict[str, MaybeFloat]
    var_error_by_modality: dict[str, MaybeFloat]
    cov2_by_modality: dict[str, MaybeFloat]
    var_error_by_reader: dict[str, MaybeFloat]
    cov1_by_reader: dict[str, MaybeFloat] | None


class DBMVarianceComponents(ResultModel):
    """DBM variance components from the pseudovalue mean squares; ``var_rc_error`` with one modality."""

    var_r: MaybeFloat
    var_c: MaybeFloat
    var_tr: MaybeFloat
    var_tc: MaybeFloat
    var_rc: MaybeFloat
    var_trc_error: MaybeFloat
    var_rc_error: float | None = _omitted()
    note: str


class PseudovalueMeanSquares(ResultModel):
    """Mean squares of the modality x reader x case ANOVA of the pseudovalues (``ms_t*`` with two modalities or more)."""

    ms_r: MaybeFloat
    ms_c: MaybeFloat
    ms_rc: MaybeFloat
    ms_t: float | None = _omitted()
    ms_tr: float | None = _omitted()
    ms_tc: float | None = _omitted()
    ms_trc: float | None = _omitted()


class DBMMeanSquares(PseudovalueMeanSquares):
    """The pseudovalue ANOVA with its degrees of freedom and the single-modality ANOVAs."""

    df_t: int
    df_r: int
    df_c: int
    df_tr: int
    df_tc: int
    df_rc: int
    df_trc: int
    by_modality: dict[str, PseudovalueMeanSquares]


# ----------------------------------------------------------------------------- analyses
class Analysis(ResultModel):
    """One generalisation (RRRC, FRRC or RRFC) of one method."""

    name: str
    modalities: dict[str, ModalityFom]
    test: FTest | None
    differences: list[Difference]
    single_reader_differences: list[Difference] | None = _omitted()


class AIAnalyses(ResultModel):
    """The algorithm minus the readers' average under each generalisation."""

    rrrc: Difference
    frrc: Difference
    rrfc: Difference

    def of(self, analysis: AnalysisName) -> Difference:
        """The difference under ``analysis``."""
        chosen: Difference = getattr(self, analysis)
        return chosen


class AIVarianceComponents(ResultModel):
    """Single-modality OR model of the differences ``psi_j = AI - reader j``."""

    var_r: MaybeFloat
    var_error: MaybeFloat
    cov2: MaybeFloat
    ms_r: MaybeFloat
    note: str


class AIVersusReaders(ResultModel):
    """One algorithm against the average of the readers in one modality (Hillis 2007, section 5.3)."""

    ai_reader: str
    modality: str
    ai_fom: TEstimate
    readers_fom: TEstimate
    readers: dict[str, MaybeFloat]
    difference_definition: str
    analyses: AIAnalyses
    variance_components: AIVarianceComponents


class MRMCAnalysis(ResultModel):
    """What :func:`study.metrics.mrmc.analyze_mrmc` returns (see its docstring for each field)."""

    method: MethodName
    analysis: AnalysisName
    analyses_reported: list[AnalysisName]
    fom: str
    fom_description: str
    threshold: float | None
    covariance: str
    bootstrap: BootstrapSettings | None
    confidence_level: float
    design: MRMCDesign
    readers: dict[str, dict[str, MaybeFloat]]
    modalities: dict[str, ModalityResult]
    test: FTest | None
    differences: list[Difference]
    analyses: dict[AnalysisName, Analysis]
    variance_components: ORVarianceComponents
    anova: ORAnova
    dbm_variance_components: DBMVarianceComponents | None
    dbm_mean_squares: DBMMeanSquares | None
    ai_vs_readers: list[AIVersusReaders] | None
    warnings: list[str]


class RocCurve(ResultModel):
    """Empirical ROC curve of one reader (:func:`study.metrics.roc.empirical_roc`)."""

    fpr: list[float]
    tpr: list[float]
    thresholds: list[float | None]
    auc: float
    n_positive: int
    n_negative: int


class FileRef(ResultModel):
    path: str
    sha256: str


class MRMCInputs(ResultModel):
    ratings: FileRef


class MRMCCommandOutput(MRMCAnalysis):
    """``study evaluate mrmc``'s output: the analysis, the ROC curves (modality -> reader) and the input file."""

    roc: dict[str, dict[str, RocCurve]] | None = _omitted()
    input: MRMCInputs


# ----------------------------------------------------------------------------- U-statistics (any design)
class UStatModalityDesign(ResultModel):
    """The design of one modality: who read what (``matrix``: reader -> one character per case of
    ``UStatDesign.cases``, ``1`` read, ``0`` not read; ``cases_read_by_reader``: [non-diseased, diseased])."""

    n_readers: int
    n_cases: int
    n_cases_negative: int
    n_cases_positive: int
    n_readings: int
    crossing: str
    cases_read_by_reader: dict[str, list[int]]
    matrix: dict[str, str]


class UStatDesign(ResultModel):
    """The reader x case design of a U-statistic MRMC analysis (any design).

    ``case_truth``: one character per case of ``cases``, ``1`` diseased, ``0`` non-diseased
    (``None`` in results written before it existed).
    """

    modalities: list[str]
    readers: list[str]
    cases: list[str]
    n_cases: int
    n_cases_negative: int
    n_cases_positive: int
    n_readings: int
    readers_in_every_modality: int
    n_patients: int | None
    by_modality: dict[str, UStatModalityDesign]
    case_truth: str | None = _omitted()


class UStatEstimate(TEstimate):
    """A reader-averaged figure of merit (or difference) with one variance estimate.

    ``ci_low, ci_high``: t interval on ``df`` (BDG degrees of freedom; iMRMC uses the normal
    quantile from 50 on and otherwise truncates ``df`` to an integer); ``ci_normal``: the normal
    approximation; ``df_hillis`` and its interval where the comparison is fully crossed (AUC).
    ``null_value``: the value tested (0.5 for an AUC, none for sensitivity or specificity, 0 for
    a difference).
    """

    variance: MaybeFloat
    variance_kind: Literal["unbiased", "mle"]
    null_value: float | None
    statistic: MaybeFloat
    p_value: MaybeFloat
    p_value_normal: MaybeFloat
    ci_normal: list[MaybeFloat]
    variance_untruncated: float | None = _omitted()
    df_hillis: float | None = _omitted()
    p_value_hillis: float | None = _omitted()
    ci_hillis: list[MaybeFloat] | None = _omitted()


class UStatComponents(ResultModel):
    """Variance components of one comparison: ``names`` -> unbiased and MLE values and their coefficients.

    AUC: the eight BDG moments ``M1..M8`` and the seven BCK components; binary endpoints: the case,
    reader and reader x case components (``truncated`` names those set to the nearest valid value).
    """

    kind: Literal["auc", "binary"]
    moments: dict[str, MaybeFloat]
    moments_mle: dict[str, MaybeFloat]
    moment_coefficients: dict[str, float]
    components: dict[str, MaybeFloat]
    components_mle: dict[str, MaybeFloat]
    component_coefficients: dict[str, float]
    truncated: list[str] = Field(default_factory=list)


class UStatModality(ResultModel):
    """One modality: the reader-averaged figure of merit, per reader values and weights, both variances.

    With patient ids, ``unbiased`` resamples patients (``patient_terms``: its reader, patient and
    reader x patient parts), ``mle`` is ``None`` and ``components`` are the image-level ones.
    """

    unbiased: UStatEstimate
    mle: UStatEstimate | None
    readers: dict[str, MaybeFloat]
    reader_weights: dict[str, float]
    components: UStatComponents
    patient_terms: dict[str, MaybeFloat] | None = _omitted()


class UStatDifference(ResultModel):
    """``modalities[0] - modalities[1]``: both variances, per reader differences (forest plot)."""

    modalities: list[str]
    comparison: str
    unbiased: UStatEstimate
    mle: UStatEstimate | None
    readers: dict[str, MaybeFloat]
    components: UStatComponents
    covariance_components: UStatComponents
    patient_terms: dict[str, MaybeFloat] | None = _omitted()


class UStatAnalysis(ResultModel):
    """U-statistic MRMC analysis of any design (iMRMC): per modality and per pair of modalities."""

    method: Literal["ustat"] = "ustat"
    fom: Literal["auc", "sensitivity", "specificity"]
    fom_description: str
    threshold: float | None
    confidence_level: float
    design: UStatDesign
    weighting: str
    variance_note: str
    df_note: str
    resampling_unit: Literal["case", "patient"]
    modalities: dict[str, UStatModality]
    differences: list[UStatDifference]
    references: list[str]
    warnings: list[str]


class MRMCUStatStudy(ResultModel):
    """The study's U-statistic analyses on every included case with readings (:func:`study.metrics.mrmc.study_ustat`).

    ``rating``: modality -> what its rating is (confidence, or the grade as an ordinal);
    ``cases_included``: included cases with a reference grade; ``cases_with_readings``: those
    with at least one reading; ``readings_not_used``: readings of included cases marked not
    assessable or without a grade; ``aided_vs_unaided``: the readers' two sessions (the CADe-style
    primary) or why not; ``models``: each model standalone against the unaided readers.
    """

    endpoint: str
    rating: dict[str, str]
    cases_included: int
    cases_with_readings: int
    readings_used: int
    readings_not_used: int
    readings_by_modality: dict[str, int]
    resampling_unit: Literal["case", "patient"]
    aided_vs_unaided: UStatAnalysis | NotAssessed
    models: dict[str, UStatAnalysis | NotAssessed]


class UStatCommandOutput(UStatAnalysis):
    """``study evaluate mrmc --method ustat``'s output: the analysis and its input file."""

    input: MRMCInputs


# ----------------------------------------------------------------------------- study block
class DroppedRater(ResultModel):
    cases_read: int
    reason: str


class CasesExcluded(ResultModel):
    graded_but_no_reference: int
    not_read_by_every_kept_rater: int


class CrossedBlock(ResultModel):
    """The fully crossed block taken from the readers' grades (:func:`study.metrics.mrmc.ratings_from_grades`)."""

    endpoint: str
    positive_from: str
    levels: list[str]
    rating: str
    rule: str
    raters_total: int
    raters_kept: list[str]
    raters_dropped: dict[str, DroppedRater]
    cases_read_by_rater: dict[str, int]
    cases_reference: int
    cases_kept: int
    cases_excluded: CasesExcluded
    binary_threshold: int
    binary_threshold_note: str
    n_positive: int
    n_negative: int
    warning: str | None = _omitted()


class MRMCModelResult(ResultModel):
    """One model against the readers: the crossed block, its analysis, each rater's ROC curve."""

    assessed: Literal[True] = True
    design: CrossedBlock
    analysis: MRMCAnalysis
    roc: dict[str, RocCurve]


class MRMCBlock(ResultModel):
    """The study's ``mrmc`` block when the protocol names a binary endpoint and there are readers."""

    assessed: Literal[True] = True
    endpoint: str
    positive_from: str
    models: dict[str, MRMCModelResult | NotAssessed]
    ustat: MRMCUStatStudy | None = _omitted()


#: the ``mrmc`` block of ``results.json``
MRMCStudyBlock: TypeAlias = MRMCBlock | NotAssessed
_STUDY_BLOCK: TypeAdapter[MRMCBlock | NotAssessed] = TypeAdapter(MRMCStudyBlock)


def parse_mrmc_block(data: Any, *, source: str = "results.json") -> MRMCBlock | NotAssessed | None:
    """The typed ``mrmc`` block of ``data`` (the parsed JSON); ``None`` when there is none.

    Raises :class:`study.errors.StudyError` naming each field that does not fit.
    """
    if data is None:
        return None
    try:
        return _STUDY_BLOCK.validate_python(data)
    except ValidationError as e:
        from study.errors import Problem, StudyError

        raise StudyError([Problem(source, "mrmc." + ".".join(str(x) for x in err["loc"]), err["msg"])
                          for err in e.errors()]) from None
