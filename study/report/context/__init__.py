"""Build the template context of the study report from ``results.json``.

One function per report section; each returns a plain dict the Jinja2 template shows
(texts, :class:`~study.report.format.Table` dicts, figure names) and, when the section's
data is absent, ``available = False`` with the plain reason. Only formatting happens here:
every number shown is read from ``results``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from study.report import claim, stard
from study.report.flow_diagram import reference_split
from study.report.context.agreement import (
    accuracy_context,
    agreement_context,
    subgroups_context,
)
from study.report.context.appendix import information_context, provenance_context
from study.report.context.common import SECTIONS, TOC_EXCLUDE, unavailable
from study.report.context.comparisons import comparisons_context
from study.report.context.counting import counting_context
from study.report.context.decision import decision_context, endpoints_context
from study.report.context.detection import detection_context
from study.report.context.discussion import implications_context, limitations_context
from study.report.context.failures import examples_context, failures_context
from study.report.context.flow import baseline_context, flow_context
from study.report.context.methods import methods_context
from study.report.context.mrmc import mrmc_context
from study.report.context.summary import introduction_context, summary_context
from study.report.context.title import title_context
from study.results import Results
from study.results.flow import Flow
from study.results.parse import parse_model

__all__ = ["SECTIONS", "TOC_EXCLUDE", "build_context", "examples_context", "no_case_included", "parse_results"]


def parse_results(results: Results | Mapping[str, Any], *, source: str = "results.json") -> Results:
    """``results`` as the typed :class:`~study.results.Results` (validated once, with located errors)."""
    return results if isinstance(results, Results) else parse_model(Results, results, source=source)


def build_context(results: Results | Mapping[str, Any], *, figures: Mapping[str, str],
                  pages: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The whole template context: one entry per section plus the TOC and the STARD and CLAIM checklists.

    ``results`` is the typed :class:`~study.results.Results` or the parsed results.json, which
    is validated here once (a StudyError names every key that does not fit).
    """
    r = parse_results(results)
    protocol = r.study.protocol_settings
    threshold = protocol.detection.operating_threshold
    ag = r.agreement
    context: dict[str, Any] = {
        "title": title_context(r.study, r.provenance, schema_version=r.schema_version),
        "toc": [{"id": k, "title": v, "level": 2 if v[:1].isdigit() and "." in v.split(" ")[0].rstrip(".") else 1}
                for k, v in SECTIONS.items() if k not in TOC_EXCLUDE],
        "sections": SECTIONS,
        "decision": decision_context(r.analysis_plan),
        "summary": summary_context(r),
        "introduction": introduction_context(r),
        "methods": methods_context(r),
        "flow": flow_context(r.flow, reference=reference_split(r.baseline, protocol)),
        "baseline": baseline_context(r.baseline, classes=protocol.classes, levels=protocol.levels,
                                     inclusion=protocol.inclusion),
        "detection": detection_context(r.detection, figures, classes=protocol.classes, operating_threshold=threshold),
        "counting": counting_context(r.counting, figures, operating_threshold=threshold),
        "agreement": agreement_context(ag, figures),
        "accuracy": accuracy_context(ag, figures,
                                     analysed_readers=r.flow.analysed.readers if r.flow is not None else None),
        "comparisons": comparisons_context(ag),
        "mrmc": mrmc_context(r.mrmc, figures),
        "subgroups": subgroups_context(ag, figures, prespecified=protocol.subgroups),
        "failures": failures_context(r.counting, worst_cases=protocol.report.worst_cases, operating_threshold=threshold,
                                     pseudonymised=r.study.case_ids == "pseudonymised", errors=r.errors),
        "examples": examples_context(figures, show_example_images=protocol.report.show_example_images),
        "endpoints": endpoints_context(r.analysis_plan),
        "limitations": limitations_context(r.study, r.baseline, r.flow, ag, detection=r.detection, errors=r.errors),
        "implications": implications_context(r.study),
        "information": information_context(r.study),
        "stard": stard.checklist(r, SECTIONS, dict(pages or {})),
        "claim": claim.checklist(r, SECTIONS, dict(pages or {})),
        "provenance": provenance_context(r.provenance),
    }
    if r.flow is not None and r.flow.included == 0:
        # every case excluded (issue 18 item 1): each results section says so instead of empty tables
        reason = no_case_included(r.flow)
        for key in NO_CASE_SECTIONS:
            context[key] = unavailable(reason)
        summary: dict[str, Any] = context["summary"]
        context["summary"] = {**summary, "table": None, "not_estimable": reason}
    return context


#: the results sections that have nothing to show when no case was included
NO_CASE_SECTIONS = ("detection", "counting", "agreement", "accuracy", "comparisons", "mrmc", "subgroups", "failures")


def no_case_included(flow: Flow) -> str:
    """Why the results sections are empty when the protocol excluded every case (read from the flow)."""
    parts = []
    if flow.not_decodable:
        parts.append(f"{flow.not_decodable} not decodable")
    if flow.failed_quality.total:
        parts.append(f"{flow.failed_quality.total} failed the image-quality gate")
    if flow.failed_eligibility.total:
        parts.append(f"{flow.failed_eligibility.total} failed the inclusion criteria")
    why = f" ({'; '.join(parts)})" if parts else ""
    return (f"Not estimable: no case was included. {'The case' if flow.received == 1 else f'All {flow.received} cases'} received {'was' if flow.received == 1 else 'were'} excluded{why}; "
            "see the flow of cases (section 4.1) for the reasons.")
