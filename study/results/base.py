"""The base of every typed block of ``results.json``.

Every block is a frozen pydantic model that forbids unknown keys: a producer that writes a
key no model declares fails at once (in its own tests and in ``collect``), and the report
reads attributes, never ``.get`` chains. Estimates are :class:`study.estimate.Estimate`
objects until the file is written (``study.io.write_json`` serialises models).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from study.estimate import Estimate

__all__ = ["Estimate", "NotAssessed", "ResultModel"]


class ResultModel(BaseModel):
    """Base of the results models: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON object of this block (what ``results.json`` holds)."""
        return self.model_dump(mode="json")


class NotAssessed(ResultModel):
    """A block or analysis that could not be computed, and the plain reason why."""

    assessed: Literal[False] = False
    reason: str
