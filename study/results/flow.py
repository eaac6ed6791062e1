"""The ``flow`` block of ``results.json`` (``flow.json``): the flow of cases, STARD 2015 item 19.

Written by :func:`study.eligibility.build_flow`; every count is a number of cases (images),
except ``patients``, which counts the patients those images come from. A case is
counted at the first step it fails: received -> decodable -> passes the image-quality gate
-> meets the inclusion criteria -> included.
"""

from __future__ import annotations

from pydantic import Field

from study.results.base import ResultModel

__all__ = ["Analysed", "CriterionRecord", "ExclusionChecks", "FailedEligibility", "FailedQuality", "Flow",
           "MissingReadings", "PatientCounts"]


class FailedQuality(ResultModel):
    """Decodable cases that failed the image-quality gate."""

    total: int
    by_reason: dict[str, int] = Field(description="reason -> cases whose first failed reason it is "
                                                  "(study.quality.REASONS order)")
    any_reason: dict[str, int] = Field(description="reason -> cases failing it at all")


class FailedEligibility(ResultModel):
    """Cases that passed the quality gate but not the inclusion criteria."""

    total: int
    by_criterion: dict[str, int] = Field(description="criterion id -> cases whose first failed criterion it is "
                                                     "(protocol order)")
    any_criterion: dict[str, int] = Field(description="criterion id -> cases failing it at all")


class CriterionRecord(ResultModel):
    """One inclusion criterion of the protocol, as the flow names it."""

    id: str
    field: str
    description: str


class Analysed(ResultModel):
    """Included cases analysed by each model and read by each reader."""

    models: dict[str, int]
    readers: dict[str, int]


class MissingReadings(ResultModel):
    """Included cases a reader did not read, and readings of cases that were excluded."""

    by_reader: dict[str, int]
    cases_without_any_reading: int
    readings_of_excluded_cases: int = Field(description="readings (reader x case) of excluded cases: not analysed")
    excluded_cases_read: int | None = Field(None, exclude_if=lambda v: v is None,
                                            description="excluded cases with at least one reading")


class ExclusionChecks(ResultModel):
    """Every check failed by the cases excluded at one step of the flow, not only the first.

    A case failing two checks is counted under each and once in ``more_than_one``, so
    ``by_check`` may add up to more than ``excluded``.
    """

    excluded: int = Field(description="cases excluded at this step (their first failed check is here)")
    by_check: dict[str, int] = Field(description="'not_decodable', 'quality:<reason>' or 'criterion:<id>' -> "
                                                 "excluded cases failing it, in flow order")
    more_than_one: int = Field(description="excluded cases failing more than one check")


class PatientCounts(ResultModel):
    """Patients (distinct ``patient_id``) with at least one image at each stage of the flow."""

    received: int = Field(ge=0)
    decodable: int = Field(ge=0)
    passed_quality: int = Field(ge=0)
    included: int = Field(ge=0)
    images_per_included_patient_min: int | None = Field(None, description="None without included patients")
    images_per_included_patient_max: int | None = None
    images_per_included_patient_mean: float | None = None


class Flow(ResultModel):
    """Counts at each step of the flow of cases; ``check`` says the boxes add up."""

    received: int
    not_decodable: int
    decodable: int
    failed_quality: FailedQuality
    passed_quality: int
    failed_eligibility: FailedEligibility
    included: int
    criteria: list[CriterionRecord]
    analysed: Analysed
    missing_readings: MissingReadings | None = Field(description="None when the study has no readings")
    reader_groups: dict[str, str] = Field(description="reader id -> reader group")
    check: bool = Field(description="received == not_decodable + failed_quality.total "
                                    "+ failed_eligibility.total + included")
    patients: PatientCounts | None = Field(None, description="patients at each stage (None when the cases "
                                                             "table names no patient_id)")
    exclusion_checks: dict[str, ExclusionChecks] | None = Field(
        None, exclude_if=lambda v: v is None,
        description="step ('decodable', 'quality', 'eligibility') -> every check its excluded cases failed")
