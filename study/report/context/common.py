"""Shared helpers of the report sections: section titles, study information, generic tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import Any

from pydantic import BaseModel

from study.estimate import Estimate

#: section anchor id -> title (the order is the report's order; the TOC and STARD use it)
SECTIONS: dict[str, str] = {
    "sec-title": "Title page",
    "sec-decision": "Decision on the pre-specified analysis plan",
    "sec-summary": "1. Summary of key results",
    "sec-introduction": "2. Background and objectives",
    "sec-methods": "3. Methods",
    "sec-design": "3.1 Study design, setting and participants",
    "sec-criteria": "3.2 Eligibility criteria",
    "sec-quality": "3.3 Image-quality gate",
    "sec-reference": "3.4 Reference standard",
    "sec-index-tests": "3.5 Index tests (models)",
    "sec-readers": "3.6 Readers",
    "sec-statistics": "3.7 Statistical methods",
    "sec-results": "4. Results",
    "sec-flow": "4.1 Flow of cases (STARD diagram)",
    "sec-baseline": "4.2 Baseline characteristics",
    "sec-detection": "4.3 Standalone lesion detection",
    "sec-counting": "4.4 Lesion counting",
    "sec-agreement": "4.5 Grading: cross-tabulation against the reference",
    "sec-accuracy": "4.6 Grading accuracy and agreement",
    "sec-comparisons": "4.7 Model against readers",
    "sec-mrmc": "4.8 Multi-reader multi-case analysis",
    "sec-subgroups": "4.9 Subgroup analyses",
    "sec-failures": "4.10 Failure analysis",
    "sec-examples": "4.11 Example images",
    "sec-endpoints": "4.12 Endpoints of the analysis plan, confirmatory and exploratory",
    "sec-discussion": "5. Discussion",
    "sec-limitations": "5.1 Limitations",
    "sec-implications": "5.2 Implications for practice",
    "sec-information": "6. Registration, protocol and funding",
    "sec-stard": "Appendix A1. STARD 2015 checklist",
    "sec-claim": "Appendix A2. CLAIM 2024 checklist",
    "sec-provenance": "Appendix B. Provenance",
}
TOC_EXCLUDE = {"sec-title"}

#: study information the harness cannot know (STARD items); read from ``study.information``
#: (:class:`study.results.study.StudyInformation`) when the study supplies it
INFORMATION_KEYS = {
    "design": "Study design (prospective / retrospective data collection)",
    "identification": "Basis on which potentially eligible participants were identified",
    "setting": "Setting, location and dates",
    "series": "Consecutive, random or convenience series",
    "intended_use": "Intended use and clinical role of the index test",
    "hypotheses": "Objectives and hypotheses",
    "reference_rationale": "Rationale for the reference standard",
    "blinding_readers": "Information available to the readers",
    "blinding_reference": "Information available to the reference-standard assessors",
    "sample_size": "Intended sample size and how it was determined",
    "registration": "Registration number and registry",
    "protocol_access": "Where the full study protocol can be accessed",
    "funding": "Sources of funding and role of funders",
    "skin_type_assessment": "Who assigned the Fitzpatrick skin types",
}



def info_text(info: Mapping[str, str], key: str, default: str) -> dict[str, str]:
    if key in info:
        return {"text": info[key], "source": "supplied by the investigators"}
    return {"text": default, "source": f"not supplied: config key information.{key}"}


def unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


def interval_methods(obj: Any, keys: Set[str] | None = None) -> list[str]:
    """Distinct ``method`` of the estimates in ``obj`` (only under fields or keys named in ``keys``).

    ``obj`` is a results model, or a mapping or sequence of them. Fields are visited in
    sorted order, as they stand in results.json, so the list reads in the file's order.
    """
    out: dict[str, None] = {}

    def walk(x: Any, key: str | None) -> None:
        if isinstance(x, Estimate):
            if (keys is None or key in keys) and x.method:
                out[x.method] = None
        elif isinstance(x, BaseModel):
            for name in sorted(type(x).model_fields):
                walk(getattr(x, name), name)
        elif isinstance(x, Mapping):
            for k in sorted(x, key=str):
                walk(x[k], str(k))
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v, key)

    walk(obj, None)
    return list(out)


def has_numbers(obj: Any, keys: Set[str]) -> bool:
    """True when a plain number (not an estimate) sits under a field named in ``keys`` in ``obj``."""
    if isinstance(obj, Estimate):
        return False
    if isinstance(obj, BaseModel):
        return any((k in keys and _is_number(getattr(obj, k))) or has_numbers(getattr(obj, k), keys)
                   for k in type(obj).model_fields)
    if isinstance(obj, Mapping):
        return any((str(k) in keys and _is_number(v)) or has_numbers(v, keys) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return any(has_numbers(v, keys) for v in obj)
    return False


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def report_date() -> str:
    """The report's date: from ``SOURCE_DATE_EPOCH`` (reproducible builds), else today (UTC).

    results.json carries no run date, so the same inputs give the same results.json on any day.
    """
    import os
    from datetime import datetime, timezone

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.fromtimestamp(int(epoch), tz=timezone.utc) if epoch else datetime.now(timezone.utc)
    return when.date().isoformat()


def threshold_key_of(keys: Sequence[str], t: str | float | None) -> str:
    """The key among the non-empty ``keys`` (score thresholds as text) equal to ``t``, else the middle one."""
    if t is not None:
        for k in keys:
            if abs(float(k) - float(t)) < 1e-9:
                return k
    return sorted(keys, key=float)[len(keys) // 2]
