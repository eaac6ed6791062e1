"""Shared helpers of the report sections: section titles, study information, generic tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from study.report import selectors as S
from study.report.format import is_estimate

#: section anchor id -> title (the order is the report's order; the TOC and STARD use it)
SECTIONS: dict[str, str] = {
    "sec-title": "Title page",
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
    "sec-discussion": "5. Discussion",
    "sec-limitations": "5.1 Limitations",
    "sec-implications": "5.2 Implications for practice",
    "sec-information": "6. Registration, protocol and funding",
    "sec-stard": "Appendix A. STARD 2015 checklist",
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
}



def information(results: Mapping) -> dict[str, str]:
    st = results.get("study") or {}
    return {k: str(v) for k, v in (st.get("information") or {}).items() if v not in (None, "")}


def info_text(info: Mapping[str, str], key: str, default: str) -> dict[str, str]:
    if key in info:
        return {"text": info[key], "source": "supplied by the investigators"}
    return {"text": default, "source": f"not supplied (study information key '{key}')"}


def unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


def collect_methods(obj: Any, keys: set[str] | None = None, _key: str | None = None) -> list[str]:
    """Distinct ``method`` strings of the estimates under ``obj`` (only under ``keys`` when given)."""
    out: dict[str, None] = {}

    def walk(x, k):
        if is_estimate(x):
            if (keys is None or k in keys) and x.get("method"):
                out[str(x["method"])] = None
            return
        if isinstance(x, Mapping):
            for kk, v in x.items():
                walk(v, kk)
        elif isinstance(x, list):
            for v in x:
                walk(v, k)

    walk(obj, _key)
    return list(out)


def has_numbers(obj: Any, keys: set[str]) -> bool:
    """True when a plain number sits under one of ``keys`` somewhere in ``obj``."""
    if isinstance(obj, Mapping):
        return any((k in keys and isinstance(v, (int, float)) and not isinstance(v, bool)) or has_numbers(v, keys)
                   for k, v in obj.items())
    if isinstance(obj, list):
        return any(has_numbers(v, keys) for v in obj)
    return False


def report_date() -> str:
    """The report's date: from ``SOURCE_DATE_EPOCH`` (reproducible builds), else today (UTC).

    results.json carries no run date, so the same inputs give the same results.json on any day.
    """
    import os
    from datetime import datetime, timezone

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.fromtimestamp(int(epoch), tz=timezone.utc) if epoch else datetime.now(timezone.utc)
    return when.date().isoformat()


def model_ids(results: Mapping) -> list[str]:
    ids = set((results.get("detection") or {})) | set((results.get("counting") or {}))
    ag = results.get("agreement") or {}
    ids |= {rid for rid, r in (ag.get("raters") or {}).items() if r.get("kind") == "model"}
    return sorted(ids)


def operating_threshold(results: Mapping) -> str | None:
    ot = (S.protocol_settings(results).get("detection") or {}).get("operating_threshold")
    return None if ot is None else str(ot)


def threshold_key(cnt: Mapping, t: str | None) -> str | None:
    ths = list((cnt.get("thresholds") or {}).keys())
    if not ths:
        return None
    if t is not None:
        for k in ths:
            if abs(float(k) - float(t)) < 1e-9:
                return k
    return sorted(ths, key=float)[len(ths) // 2]
