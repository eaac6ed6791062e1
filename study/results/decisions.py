"""The ``analysis_plan`` block of ``results.json``: the lock status and each endpoint's decision.

Written by the ``decide`` step (:func:`study.plan.decide.decide_endpoints`); page one of the
report reads it: the lock line (:class:`LockStatus`), then each primary endpoint's
``criterion``, ``estimate`` and ``decision``, then the secondary endpoints with their
adjusted p-values, while exploratory endpoints stay in the body.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from study.results.base import Estimate, ResultModel

__all__ = ["AnalysisPlanResults", "EndpointDecision", "LockChange", "LockStatus"]


class LockChange(ResultModel):
    """One key that differs from the locked protocol or model files (dotted path; old and new value)."""

    key: str
    old: Any
    new: Any


class LockStatus(ResultModel):
    """``locked``: the run matches the lock; ``deviation``: it differs (``changes``); ``not_locked``: no lock."""

    state: Literal["locked", "deviation", "not_locked"]
    lock_file: str
    locked_at: str | None = None
    protocol_sha256: str | None = None
    plan_sha256: str | None = None
    git_commit: str | None = None
    changes: list[LockChange] = Field(default_factory=list)
    inputs_at_lock: dict[str, str] = Field(default_factory=dict)
    statement: str


class EndpointDecision(ResultModel):
    """One endpoint: what was tested, the estimate with its interval, the test and the decision in words.

    ``estimate`` is the metric (performance goal) or the difference rater minus comparator;
    ``p_value`` is one-sided (``None`` when not estimable or exploratory without a test),
    ``p_adjusted`` the multiplicity-adjusted p-value (confirmatory endpoints), compared with
    ``alpha_one_sided``. ``decision``: ``met`` / ``not met`` / ``not estimable`` for
    confirmatory endpoints; exploratory endpoints are ``exploratory`` (no decision).
    """

    id: str
    role: Literal["primary", "secondary", "exploratory"]
    metric: str
    metric_description: str
    source: str
    rater: str
    comparator: str
    hypothesis: str
    criterion: str
    unit: Literal["patient", "image"]
    population: str
    estimand: dict[str, str]
    estimate: Estimate
    comparator_estimate: Estimate | None = None
    statistic: float | None
    statistic_name: str | None
    p_value: float | None
    p_adjusted: float | None
    alpha_one_sided: float
    n_cases: int | None
    n_patients: int | None
    decision: Literal["met", "not met", "not estimable", "exploratory"]
    decision_text: str
    reason: str | None = None


class AnalysisPlanResults(ResultModel):
    """The plan's outcome: ``planned`` False (no ``analysis_plan`` in the protocol) keeps only the lock status."""

    planned: bool
    lock: LockStatus
    alpha: float | None = None
    sided: Literal["one", "two"] | None = None
    multiplicity: str | None = None
    hypotheses_text: str | None = None
    endpoints: list[EndpointDecision] = Field(default_factory=list)
    primary_decision: Literal["met", "not met", "not estimable"] | None = None
    primary_decision_text: str | None = None
