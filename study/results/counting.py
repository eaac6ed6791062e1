"""Typed ``counting.<model>`` block of ``results.json`` (``study.metrics.counting.evaluate_counting``).

Per score threshold ``t`` (the key is ``f"{t:g}"``, e.g. ``"0.5"``): the counting error of
predicted minus reference lesion counts per case, overall, by reference grade and by class
(:class:`CountError`), the least-squares lines of the scatter (:class:`LineFit`) and the
Bland-Altman limits of agreement (:class:`BlandAltman`); and per case the counts the
figures and the failure analysis draw on (:class:`CountingPoints`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from study.estimate import Estimate
from study.results.base import ResultModel

__all__ = ["BlandAltman", "ClassPoints", "CountError", "CountingDefinitions", "CountingInputs", "CountingPoints",
           "CountingResult", "LineFit", "ThresholdCounting"]


def _omitted_when_none() -> Any:
    """An optional field left out of the JSON when it is ``None`` (as the producer writes it)."""
    return Field(None, exclude_if=lambda v: v is None)


class CountError(ResultModel):
    """Counting error ``d = predicted - true`` over one set of cases (all, one grade or one class).

    Attributes
    ----------
    n : int
        Cases in the set.
    mean_true, mean_predicted : float or None
        Mean reference and predicted count (``None`` without cases).
    mean_bias : Estimate
        mean(d) with the Student t interval.
    sd : Estimate
        SD(d) (n - 1) with the chi-square interval.
    mae, rmse : Estimate
        mean |d| and sqrt(mean d^2) with percentile bootstrap intervals.
    ccc : Estimate
        Lin's concordance correlation coefficient with its Fisher-z interval (Lin 1989).
    """

    n: int = Field(ge=0)
    mean_true: float | None
    mean_predicted: float | None
    mean_bias: Estimate
    sd: Estimate
    mae: Estimate
    rmse: Estimate
    ccc: Estimate


class LineFit(ResultModel):
    """Least-squares line ``predicted = intercept + slope * true`` with Pearson r (``None`` when not fitted:
    fewer than 3 cases or no spread in the reference counts)."""

    n: int = Field(ge=0)
    slope: float | None
    intercept: float | None
    r: float | None


class BlandAltman(ResultModel):
    """Bland & Altman (1986) bias and limits of agreement ``bias -/+ 1.96 SD`` of ``predicted - true``.

    Each limit carries the approximate interval ``t_{n-1} sqrt(3 SD^2 / n)``; with fewer than
    2 cases every number is ``None`` and ``plot`` is absent.
    """

    n: int = Field(ge=0)
    bias: float | None
    sd: float | None
    loa_low: Estimate | None
    loa_high: Estimate | None
    plot: str | None = _omitted_when_none()


class ThresholdCounting(ResultModel):
    """Everything computed at one score threshold.

    ``lines`` holds ``"all"`` (every case) and, when reference grades were given,
    ``"without_<most severe level>"`` (as the ACNE04 study's figure); the second key
    names the level, so the lines are a mapping rather than fixed fields.
    """

    overall: CountError
    by_severity: dict[str, CountError]
    by_class: dict[str, CountError]
    lines: dict[str, LineFit]
    bland_altman: BlandAltman

    @field_validator("lines")
    @classmethod
    def _has_all(cls, v: dict[str, LineFit]) -> dict[str, LineFit]:
        if "all" not in v:
            raise ValueError("expected the line over all cases under the key 'all'")
        return v

    @property
    def line_all(self) -> LineFit:
        """The least-squares line over all cases."""
        return self.lines["all"]


class ClassPoints(ResultModel):
    """Per case (in ``CountingPoints.case_id`` order): reference and predicted count of one class."""

    true: list[float]
    predicted: dict[str, list[float]]


class CountingPoints(ResultModel):
    """Per case, in one order: case id, reference total, reference grade, predicted total per threshold.

    ``severity`` is ``None`` when no reference grades were given; ``by_class`` holds, per
    class, the same lists (the failure analysis names the classes that drove an error).
    """

    case_id: list[str]
    true: list[float]
    severity: list[str] | None
    predicted: dict[str, list[float]]
    by_class: dict[str, ClassPoints]


class CountingInputs(ResultModel):
    """What went in: cases, patients (bootstrap units), detections, and detections of other cases."""

    n_cases: int = Field(ge=0)
    n_patients: int = Field(ge=0)
    n_detections: int = Field(ge=0)
    n_detections_other_cases: int = Field(ge=0)


class CountingDefinitions(ResultModel):
    """What the difference is and how the bootstrap intervals were drawn."""

    difference: str
    bootstrap_unit: Literal["cases", "patients"]
    bootstrap_replicates: int = Field(ge=0)
    seed: int = Field(ge=0)


class CountingResult(ResultModel):
    """``counting.<model>``: the counting error of one model against the reference counts."""

    thresholds: dict[str, ThresholdCounting] = Field(min_length=1)
    classes: list[str]
    levels: list[str] | None
    points: CountingPoints
    inputs: CountingInputs
    definitions: CountingDefinitions

    def threshold_keys(self) -> list[str]:
        """The threshold keys in increasing order of the threshold."""
        return sorted(self.thresholds, key=float)
