"""The one shape every reported estimate takes: a typed, frozen :class:`Estimate`.

Every estimate in ``results.json`` is an object ``{"estimate", "ci_low", "ci_high",
"method"}`` (+ ``"se"`` where defined, and the counts or reason that explain it), so a
reader never guesses which interval it is. ``method`` names the interval (e.g.
``"Wilson score, 95%"``, ``"Wald, asymptotic SE (Fleiss, Cohen & Everitt 1969), 95%"``,
``"percentile bootstrap over patients, 2000 replicates, 95%"``).

The object stays typed through the results models (``study.results``) until it is
written: non-finite numbers become ``None`` (JSON has no NaN), and optional fields that
are not set are left out of the JSON, so files written before this model existed read
back unchanged.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: the four keys every estimate has, in the order they are written
CORE_KEYS = ("estimate", "ci_low", "ci_high", "method")
#: why a zero-width interval is not given (issue 18 item 1)
ZERO_WIDTH_REASON = ("the interval has zero width (no variation in the data behind it, e.g. one case or one "
                     "patient, or identical values): no interval is given")


def _number(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _optional() -> Any:
    """An optional field that is left out of the JSON when it is not set."""
    return Field(None, exclude_if=lambda v: v is None)


class Estimate(BaseModel):
    """A point estimate with its confidence interval and the interval's method.

    Construct positionally as ``Estimate(estimate, ci_low, ci_high, method, se=None,
    extra=None)`` (``extra``: a mapping of the optional fields below) or by keywords.

    Attributes
    ----------
    estimate, ci_low, ci_high : float or None
        ``None`` when not estimable (``reason`` then says why) or not finite.
    method : str
        The interval's method, with its confidence level.
    se : float, optional
        Standard error, where the method defines one.
    n, k : int, optional
        Denominator and numerator of a proportion; ``n`` alone: the number of units.
    reason : str, optional
        Why the estimate or its interval is not available. A zero-width interval (within
        rounding: one case, one patient, identical values) is never kept: its limits become
        ``None`` with :data:`ZERO_WIDTH_REASON` unless a reason is given.
    definition : str, optional
        What the estimate is, when its key alone does not say.
    se_z : float, optional
        Standard error on the transformed scale (Fisher z for Lin's CCC).
    n_undefined : int, optional
        Bootstrap replicates in which the statistic was undefined (left out of the interval).
    n_clusters : int, optional
        Patients (clusters) behind a clustered interval (``n`` then counts images).
    design_effect : float, optional
        Variance of the clustered estimate over its variance under independence (Rao & Scott 1992).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    method: str
    se: float | None = _optional()
    n: int | None = _optional()
    k: int | None = _optional()
    reason: str | None = _optional()
    definition: str | None = _optional()
    se_z: float | None = _optional()
    n_undefined: int | None = _optional()
    n_clusters: int | None = _optional()
    design_effect: float | None = _optional()

    def __init__(self, estimate: Any = None, ci_low: Any = None, ci_high: Any = None, method: str = "",
                 se: Any = None, extra: dict[str, Any] | None = None, **fields: Any) -> None:
        super().__init__(estimate=estimate, ci_low=ci_low, ci_high=ci_high, method=method, se=se,
                         **(extra or {}), **fields)

    @model_validator(mode="before")
    @classmethod
    def _no_zero_width_interval(cls, data: Any) -> Any:
        """A zero-width interval (within rounding) claims a certainty the data cannot give: it is
        dropped, and ``reason`` says why (an existing reason is kept)."""
        if not isinstance(data, dict):
            return data
        lo, hi = _number(data.get("ci_low")), _number(data.get("ci_high"))
        if lo is None or hi is None:
            return data
        est = _number(data.get("estimate"))
        scale = max(1.0, abs(est) if est is not None else 0.0, abs(lo), abs(hi))
        if hi - lo > 1e-9 * scale:
            return data
        return {**data, "ci_low": None, "ci_high": None, "reason": data.get("reason") or ZERO_WIDTH_REASON}

    @field_validator("estimate", "ci_low", "ci_high", "se", "se_z", "design_effect", mode="before")
    @classmethod
    def _finite_or_none(cls, v: Any) -> float | None:
        if v is None:
            return None
        x = float(v)
        return x if math.isfinite(x) else None

    @field_validator("n", "k", "n_undefined", "n_clusters", mode="before")
    @classmethod
    def _whole(cls, v: Any) -> int | None:
        return None if v is None else int(v)

    @property
    def extra(self) -> dict[str, Any]:
        """The optional fields that are set, other than ``se`` (as the old dataclass had them)."""
        return {k: v for k, v in self.model_dump().items() if k not in (*CORE_KEYS, "se")}

    @property
    def estimable(self) -> bool:
        return self.estimate is not None

    def with_fields(self, **fields: Any) -> Estimate:
        """A copy with some fields replaced (e.g. ``definition``, ``k`` and ``n``)."""
        return Estimate(**{**self.model_dump(), **fields})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this estimate (``None`` for missing or non-finite numbers)."""
        return self.model_dump()


def is_estimate_dict(d: Any) -> bool:
    return isinstance(d, dict) and set(CORE_KEYS) <= set(d)
