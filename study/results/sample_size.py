"""What ``study plan`` writes (``sample_size.json``): per confirmatory endpoint, the sample size and power.

The report's sample-size section (STARD 2015 item 18) reads :class:`SampleSizePlan`: per
endpoint ``patients`` and ``images`` (and for MRMC endpoints the readers x cases grid),
the method, the assumptions and the achieved power; ``figure`` names the power-curve PNG.
"""

from __future__ import annotations

from pydantic import Field

from study.results.base import ResultModel

__all__ = ["EndpointSampleSize", "PowerPoint", "ReadersCases", "SampleSizePlan"]


class PowerPoint(ResultModel):
    """Power at ``patients`` patients."""

    patients: int
    power: float


class ReadersCases(ResultModel):
    """MRMC: the fewest cases giving the target power with ``readers`` readers (``None``: not reachable)."""

    readers: int
    cases: int | None
    power: float | None


class EndpointSampleSize(ResultModel):
    """Sample size of one confirmatory endpoint (``reason`` instead of numbers when it cannot be planned).

    ``n_analysed`` counts the units the formula counts (``n_analysed_unit``: reference-positive
    or -negative cases, cases, or paired cases); ``patients`` and ``images`` follow from the
    prevalence, images per patient and the intra-patient correlation (design effect
    ``1 + (m - 1) rho``).
    """

    id: str
    role: str
    metric: str
    method: str
    assumptions: dict[str, float | str | None]
    alpha_one_sided: float
    power_target: float
    n_analysed: int | None = None
    n_analysed_unit: str | None = None
    patients: int | None = None
    images: int | None = None
    achieved_power: float | None = None
    curve: list[PowerPoint] = Field(default_factory=list)
    readers_cases: list[ReadersCases] = Field(default_factory=list)
    reason: str | None = None


class SampleSizePlan(ResultModel):
    """``study plan``'s output: every confirmatory endpoint's sample size and the study's (the largest)."""

    protocol: str
    alpha: float
    sided: str
    power: float
    images_per_patient: float
    intra_patient_correlation: float
    pilot: str | None
    endpoints: list[EndpointSampleSize]
    patients_required: int | None
    images_required: int | None
    statement: str
    figure: str | None = None
