"""The one shape every reported estimate takes.

DESIGN.md: every estimate is an object ``{"estimate", "ci_low", "ci_high", "method"}``
(+ ``"se"`` where defined), so a reader of ``results.json`` never guesses which interval
it is. ``method`` names the interval (e.g. ``"Wilson score, 95%"``,
``"Wald, asymptotic SE (Fleiss, Cohen & Everitt 1969), 95%"``,
``"percentile bootstrap over patients, 2000 replicates, 95%"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Estimate:
    estimate: float
    ci_low: float | None
    ci_high: float | None
    method: str
    se: float | None = None
    extra: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        def clean(x):
            if x is None:
                return None
            x = float(x)
            return x if math.isfinite(x) else None

        d: dict[str, Any] = {
            "estimate": clean(self.estimate),
            "ci_low": clean(self.ci_low),
            "ci_high": clean(self.ci_high),
            "method": self.method,
        }
        if self.se is not None:
            d["se"] = clean(self.se)
        if self.extra:
            d.update(self.extra)
        return d


def is_estimate_dict(d: Any) -> bool:
    return isinstance(d, dict) and {"estimate", "ci_low", "ci_high", "method"} <= set(d)
