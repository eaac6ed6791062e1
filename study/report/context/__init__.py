"""Build the template context of the study report from ``results.json``.

One function per report section; each returns a plain dict the Jinja2 template shows
(texts, :class:`~study.report.format.Table` dicts, figure names) and, when the section's
data is absent, ``available = False`` with the plain reason. Only formatting happens here:
every number shown is read from ``results``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from study.report import selectors as S
from study.report import stard
from study.report.context.agreement import (
    accuracy_context,
    agreement_context,
    subgroups_context,
)
from study.report.context.appendix import information_context, provenance_context
from study.report.context.common import SECTIONS, TOC_EXCLUDE
from study.report.context.comparisons import comparisons_context
from study.report.context.counting import counting_context
from study.report.context.detection import detection_context
from study.report.context.discussion import implications_context, limitations_context
from study.report.context.failures import examples_context, failures_context
from study.report.context.flow import baseline_context, flow_context
from study.report.context.methods import methods_context
from study.report.context.mrmc import mrmc_context
from study.report.context.summary import introduction_context, summary_context
from study.report.context.title import title_context
from study.results.baseline import Baseline
from study.results.flow import Flow
from study.results.parse import parse_model
from study.results.provenance import Provenance
from study.results.study import StudyBlock

__all__ = ["SECTIONS", "TOC_EXCLUDE", "build_context", "examples_context"]

_B = TypeVar("_B", bound=BaseModel)


def _block(results: Mapping[str, Any], key: str, model: type[_B]) -> _B | None:
    """One block of results.json as its typed model (None when absent); until the lead parses
    the whole file into :class:`study.results.Results` here."""
    data = results.get(key)
    return None if data is None else parse_model(model, data, source="results.json", where=key)


def build_context(results: Mapping, *, figures: Mapping[str, str], pages: Mapping[str, int] | None = None) -> dict:
    """The whole template context: one entry per section plus the TOC and the STARD checklist."""
    if not isinstance(results, Mapping):
        raise TypeError("results must be a mapping (the parsed results.json)")
    study = _block(results, "study", StudyBlock)
    flow = _block(results, "flow", Flow)
    baseline = _block(results, "baseline", Baseline)
    provenance = _block(results, "provenance", Provenance)
    return {
        "title": title_context(study, provenance, schema_version=results.get("schema_version")),
        "toc": [{"id": k, "title": v, "level": 2 if v[:1].isdigit() and "." in v.split(" ")[0].rstrip(".") else 1}
                for k, v in SECTIONS.items() if k not in TOC_EXCLUDE],
        "sections": SECTIONS,
        "summary": summary_context(results),
        "introduction": introduction_context(results),
        "methods": methods_context(results),
        "flow": flow_context(flow),
        "baseline": baseline_context(baseline, classes=S.class_order(results), levels=S.level_order(results),
                                     inclusion=study.protocol_settings.inclusion if study is not None else []),
        "detection": detection_context(results, figures),
        "counting": counting_context(results, figures),
        "agreement": agreement_context(results, figures),
        "accuracy": accuracy_context(results, figures),
        "comparisons": comparisons_context(results),
        "mrmc": mrmc_context(results, figures),
        "subgroups": subgroups_context(results, figures),
        "failures": failures_context(results),
        "examples": examples_context(results, figures),
        "limitations": limitations_context(study, baseline, flow, results.get("agreement") or {}),
        "implications": implications_context(study),
        "information": information_context(study),
        "stard": stard.checklist(SECTIONS, dict(pages or {})),
        "provenance": provenance_context(provenance),
    }
