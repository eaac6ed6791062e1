"""Build the template context of the study report from ``results.json``.

One function per report section; each returns a plain dict the Jinja2 template shows
(texts, :class:`~study.report.format.Table` dicts, figure names) and, when the section's
data is absent, ``available = False`` with the plain reason. Only formatting happens here:
every number shown is read from ``results``.
"""

from __future__ import annotations

from collections.abc import Mapping

from study.report import stard
from study.report.context.agreement import (
    accuracy_context,
    agreement_block,
    agreement_context,
    subgroups_context,
)
from study.report.context.appendix import information_context, provenance_context
from study.report.context.common import SECTIONS, TOC_EXCLUDE, operating_threshold
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
from study.report.selectors import class_order, protocol_settings
from study.results.counting import CountingResult
from study.results.detection import DetectionResult
from study.results.mrmc import parse_mrmc_block

__all__ = ["SECTIONS", "TOC_EXCLUDE", "build_context", "examples_context"]


def build_context(results: Mapping, *, figures: Mapping[str, str], pages: Mapping[str, int] | None = None) -> dict:
    """The whole template context: one entry per section plus the TOC and the STARD checklist."""
    if not isinstance(results, Mapping):
        raise TypeError("results must be a mapping (the parsed results.json)")
    # typed blocks, parsed here until build_context takes the typed Results model
    counting = {m: CountingResult.model_validate(d) for m, d in (results.get("counting") or {}).items()}
    report_settings = protocol_settings(results).get("report") or {}
    ot = operating_threshold(results)
    ot_value = None if ot is None else float(ot)
    agreement = agreement_block(results)
    return {
        "title": title_context(results),
        "toc": [{"id": k, "title": v, "level": 2 if v[:1].isdigit() and "." in v.split(" ")[0].rstrip(".") else 1}
                for k, v in SECTIONS.items() if k not in TOC_EXCLUDE],
        "sections": SECTIONS,
        "summary": summary_context(results),
        "introduction": introduction_context(results),
        "methods": methods_context(results),
        "flow": flow_context(results),
        "baseline": baseline_context(results),
        "detection": detection_context(
            {m: DetectionResult.model_validate(d) for m, d in (results.get("detection") or {}).items()}, figures,
            classes=class_order(results), operating_threshold=operating_threshold(results)),
        "counting": counting_context(counting, figures, operating_threshold=ot_value),
        "agreement": agreement_context(agreement, figures),
        "accuracy": accuracy_context(agreement, figures),
        "comparisons": comparisons_context(agreement),
        "mrmc": mrmc_context(parse_mrmc_block(results.get("mrmc")), figures),
        "subgroups": subgroups_context(agreement, figures,
                                       prespecified=protocol_settings(results).get("subgroups") or []),
        "failures": failures_context(counting, worst_cases=int(report_settings.get("worst_cases", 10)),
                                     operating_threshold=ot_value),
        "examples": examples_context(figures, show_example_images=bool(report_settings.get("show_example_images", False))),
        "limitations": limitations_context(results),
        "implications": implications_context(results),
        "information": information_context(results),
        "stard": stard.checklist(SECTIONS, dict(pages or {})),
        "provenance": provenance_context(results),
    }
