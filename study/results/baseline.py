"""The ``baseline`` block of ``results.json``: the included cases (STARD 2015 items 20 and 21a).

Written by :func:`study.baseline.compute_baseline`. Percentages are of the included cases;
SD has ``ddof = 1``; quartiles are Hyndman & Fan (1996) type 7.
"""

from __future__ import annotations

from pydantic import Field

from study.results.base import ResultModel

__all__ = [
    "Baseline",
    "CategoricalSummary",
    "LesionSummary",
    "LesionsPerImage",
    "LevelCount",
    "NumericSummary",
    "SeverityLesions",
    "SeveritySummary",
]


class NumericSummary(ResultModel):
    """Mean, SD, median, quartiles, range and missing count of a numeric covariate (``age``)."""

    n: int
    n_missing: int
    mean: float | None
    sd: float | None = Field(description="None with fewer than two values")
    median: float | None
    q1: float | None
    q3: float | None
    min: float | None
    max: float | None


class LevelCount(ResultModel):
    """How many included cases have one value of a categorical variable."""

    value: str
    n: int
    percent: float | None = Field(description="of the included cases; None when there are none")


class CategoricalSummary(ResultModel):
    """Counts per value, in natural order (numbers, then Roman numerals, then text)."""

    n: int
    n_missing: int
    levels: list[LevelCount]


class SeveritySummary(ResultModel):
    """Distribution of the reference-standard grade over the protocol's levels."""

    levels: list[LevelCount]
    n_missing: int


class LesionSummary(ResultModel):
    """Reference lesions of one class (or of all classes) per image."""

    total: int
    mean: float | None
    sd: float | None
    median: float | None
    min: float | None
    max: float | None
    images_with: int = Field(description="images with at least one such lesion")
    percent_images_with: float | None


class SeverityLesions(ResultModel):
    """Mean reference lesions per image of each class, among the images of one reference grade."""

    n_images: int
    mean: dict[str, float | None] = Field(description="class -> mean count (None without images)")


class LesionsPerImage(ResultModel):
    """Reference lesions per image by class, overall and by reference grade."""

    classes: dict[str, LesionSummary]
    all: LesionSummary
    by_severity: dict[str, SeverityLesions]


class Baseline(ResultModel):
    """Baseline table of the included cases.

    ``age`` is numeric; ``sex``, ``fitzpatrick``, ``site`` and ``device`` are categorical. A
    covariate absent from the manifest is ``None`` and listed under ``not_recorded``.
    """

    n_cases: int = Field(description="included images (cases)")
    n_patients: int | None = Field(None, description="patients the included images come from (None when the "
                                                     "manifest names no patient_id)")
    images_per_patient: NumericSummary | None = Field(None, description="included images per patient")
    covariates: list[str]
    not_recorded: list[str]
    age: NumericSummary | None
    sex: CategoricalSummary | None
    fitzpatrick: CategoricalSummary | None
    site: CategoricalSummary | None
    device: CategoricalSummary | None
    severity: SeveritySummary
    lesions_per_image: LesionsPerImage

    def categorical(self, name: str) -> CategoricalSummary | None:
        """The summary of a categorical covariate by name (None when not recorded)."""
        value = getattr(self, name, None)
        return value if isinstance(value, CategoricalSummary) else None
