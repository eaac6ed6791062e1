"""Whether a reporting-checklist item is reported, computed from what results.json holds.

Each item of a checklist (:mod:`study.report.stard`, :mod:`study.report.claim`) names its
*evidence*: the part of results.json that answers it. :func:`item_status` reads that part and
says "reported", "not reported" or "not applicable", with the reason. An item whose answer
would be a "not supplied" placeholder or the report's default sentence is **not reported**:
only facts the results (or the investigators, the model developer, the protocol) supplied count.

Evidence keys::

    report                       always written from the results by the harness
    info:<key>                   the config's information.<key> (StudyInformation) was supplied
    info:<key>|plan              ... or the protocol has an analysis plan
    card:<field>[,<field>...]    every model's card has these fields (dotted: training_data.size)
    reference:<field>[,...]      the protocol's reference_standard has these fields, or a reference fused from
                                 several annotators (reference.annotators) answers them
    block:<name>                 results.json holds the block (flow, baseline, detection, ...)
    readers                      human readers graded cases
    subgroups                    pre-specified subgroup analyses were computed
    na:<why>                     not applicable to this kind of study
    none:<why>                   the harness does not report it (so: not reported)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from study.results import Results

__all__ = ["ChecklistItem", "Status", "checklist_rows", "item_status"]

Status = Literal["reported", "not reported", "not applicable"]


@dataclass(frozen=True)
class ChecklistItem:
    """One item of a reporting checklist: its number, part, topic, text (shortened), the section
    of the report that answers it and the evidence (see the module docstring)."""

    number: str
    part: str
    topic: str
    text: str
    section: str
    evidence: str


def _has(obj: object, dotted: str) -> bool:
    for name in dotted.split("."):
        obj = getattr(obj, name, None)
        if obj is None:
            return False
    return obj not in ("", [], {})


def _card_status(fields: list[str], r: Results) -> tuple[Status, str]:
    if not r.model_ids:
        return "not applicable", "no model was evaluated"
    missing = []
    for m in r.model_ids:
        meta = r.models[m] if m in r.models else None
        card = meta.card if meta is not None else None
        absent = [f for f in fields if card is None or not _has(card, f)]
        if absent:
            missing.append(f"{m}: {', '.join(absent)}" if card is not None else f"{m}: no model card")
    if missing:
        return "not reported", "model card not supplied (" + "; ".join(missing) + ")"
    return "reported", "model card of every model"


def _fused_has(field: str, r: Results) -> bool:
    """Whether a reference fused from several annotators (``reference.annotators``) answers ``field``:
    who annotated (the annotators table), how disagreements were settled (the fusion rule and the
    agreement), their qualifications (when every annotator's is given)."""
    block = r.reference.annotators if r.reference is not None else None
    if block is None:
        return False
    if field == "qualifications":
        return all(a.qualification for a in block.annotators)
    return field in ("annotators", "disagreements")


def _reference_status(fields: list[str], r: Results) -> tuple[Status, str]:
    rs = r.study.protocol_settings.reference_standard
    absent = [f for f in fields if (rs is None or not getattr(rs, f)) and not _fused_has(f, r)]
    if absent:
        return "not reported", "protocol reference_standard not supplied: " + ", ".join(absent)
    fused = [f for f in fields if _fused_has(f, r)]
    return "reported", "protocol reference_standard" + (
        f" and the annotators' records ({', '.join(fused)})" if fused else "")


def _block_status(name: str, r: Results) -> tuple[Status, str]:
    value = getattr(r, name)
    if value in (None, {}, []):
        return "not reported", f"results.json holds no {name} block"
    return "reported", f"results.json {name}"


def item_status(evidence: str, results: Results) -> tuple[Status, str]:
    """The status of a checklist item with this evidence key, and why.

    Raises ValueError on an unknown key (a programming error, caught by the tests).
    """
    r = results
    kind, _, arg = evidence.partition(":")
    if kind == "report":
        return "reported", "written from the results"
    if kind == "info":
        key, _, alt = arg.partition("|")
        if key in r.study.information.supplied():
            return "reported", f"information.{key}"
        if alt == "plan" and r.study.protocol_settings.analysis_plan is not None:
            return "reported", "the protocol's analysis plan"
        return "not reported", f"information.{key} not supplied"
    if kind == "card":
        return _card_status(arg.split(","), r)
    if kind == "reference":
        return _reference_status(arg.split(","), r)
    if kind == "block":
        return _block_status(arg, r)
    if kind == "readers":
        ag = r.agreement
        if ag is not None and any(x.kind != "model" for x in ag.raters.values()):
            return "reported", "readers in the agreement results"
        return "not applicable", "no human readers took part"
    if kind == "subgroups":
        ag = r.agreement
        if r.study.protocol_settings.subgroups and ag is not None and ag.subgroups:
            return "reported", "pre-specified subgroups"
        return "not reported", "no subgroup analysis pre-specified or computed"
    if kind == "na":
        return "not applicable", arg
    if kind == "none":
        return "not reported", arg
    raise ValueError(f"unknown checklist evidence {evidence!r}")


def checklist_rows(items: tuple[ChecklistItem, ...], results: Results, section_titles: dict[str, str],
                   pages: dict[str, int] | None = None) -> list[dict[str, str | int | None]]:
    """Rows ``{number, part, topic, text, section, section_title, page, status, basis}`` of a checklist.

    ``section_titles`` maps anchor id -> section title (every item's section must be there: a
    missing one is a programming error, raised as KeyError so a test catches it).
    """
    rows: list[dict[str, str | int | None]] = []
    for it in items:
        status, basis = item_status(it.evidence, results)
        rows.append({"number": it.number, "part": it.part, "topic": it.topic, "text": it.text,
                     "section": it.section, "section_title": section_titles[it.section],
                     "page": (pages or {}).get(it.section), "status": status, "basis": basis})
    return rows
