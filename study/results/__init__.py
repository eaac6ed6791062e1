"""Typed ``results.json``: one pydantic model per block, and the top-level :class:`Results`.

Every block is a frozen :class:`~study.results.base.ResultModel` that forbids unknown keys;
the producers return these models, :func:`study.collect.collect_results` validates every
block it reads into :class:`Results`, and the report reads attributes. The JSON Schema of
``results.json`` (``docs/results.schema.json``) is generated from :class:`Results`
(:mod:`study.results.schema`).
"""

from __future__ import annotations

from typing import Any, Literal

from study.results.base import Estimate, NotAssessed, ResultModel
from study.results.baseline import Baseline
from study.results.flow import Flow
from study.results.models import ModelMeta
from study.results.provenance import Provenance
from study.results.study import StudyBlock

__all__ = [
    "SCHEMA_VERSION",
    "Baseline",
    "Estimate",
    "Flow",
    "ModelMeta",
    "NotAssessed",
    "Provenance",
    "ResultModel",
    "Results",
    "StudyBlock",
]

#: version of the layout of results.json; bump it when a key is added, renamed or removed
SCHEMA_VERSION = 2


class Results(ResultModel):
    """``results.json``: every number the report shows, with its method and provenance."""

    schema_version: Literal[2]
    study: StudyBlock
    flow: Flow
    baseline: Baseline
    detection: dict[str, Any]  # typed by study/results/detection.py at merge
    counting: dict[str, Any]  # typed by study/results/counting.py at merge
    models: dict[str, ModelMeta]
    agreement: Any  # typed by study/results/agreement.py at merge
    mrmc: Any  # typed by study/results/mrmc.py at merge
    provenance: Provenance
