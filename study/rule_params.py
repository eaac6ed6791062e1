"""What each workflow step reads from the protocol, so a rule re-runs only when those values change.

The Snakefile does not make the protocol file an input of the steps: touching or editing a
part of it a step does not read must not re-run that step (re-running prediction can mean
hours of GPU time). Instead each rule gets, as a Snakemake ``param``, the digest of the
protocol values it uses (:func:`protocol_digests`); Snakemake's ``params`` rerun trigger
re-runs the rule when that digest changes. The steps of :mod:`study.steps` read the
protocol through :func:`protocol_for_step`, a view that refuses any field the step has not
declared in :data:`STEP_PROTOCOL_FIELDS`, so the declaration cannot silently go stale: a
step reading an undeclared field fails loudly instead of missing a re-run.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, cast

from study.protocol import Protocol, load_protocol

#: top-level protocol fields each step reads (``levels`` is ``grading.levels``)
STEP_PROTOCOL_FIELDS: dict[str, tuple[str, ...]] = {
    "fuse_reference": ("classes", "polygon_classes", "grading", "reference_standard", "statistics"),
    "intake": ("classes", "polygon_classes"),
    "quality": ("quality",),
    "eligibility": ("inclusion",),
    "reference": ("classes", "grading"),
    "readings": ("grading",),
    "predict": ("classes",),
    "grade": ("classes", "grading", "detection"),
    "evaluate_detection": ("classes", "polygon_classes", "detection", "statistics"),
    "evaluate_counting": ("classes", "detection", "grading", "statistics"),
    "evaluate_agreement": ("grading", "subgroups", "statistics"),
    "evaluate_mrmc": ("grading", "statistics"),
}

#: fields reachable through a property of :class:`Protocol` -> the field they read
_DERIVED = {"levels": "grading"}


def protocol_values(protocol: Protocol, step: str) -> dict[str, Any]:
    """The protocol values ``step`` uses, as JSON-able data (the fields of :data:`STEP_PROTOCOL_FIELDS`)."""
    fields = STEP_PROTOCOL_FIELDS[step]
    return protocol.model_dump(mode="json", include=set(fields))


def protocol_digests(path: str | os.PathLike) -> dict[str, str]:
    """sha256 of the canonical JSON of the protocol values each step uses, by step name.

    A Snakemake rule passes its step's digest as a ``param``: the rule re-runs when (and
    only when) a value it uses changes, whatever happens to the rest of the file.
    """
    p = load_protocol(Path(path)).protocol
    return {step: hashlib.sha256(json.dumps(protocol_values(p, step), sort_keys=True,
                                            separators=(",", ":")).encode()).hexdigest()
            for step in STEP_PROTOCOL_FIELDS}


class ProtocolView:
    """A read-only view of a protocol exposing only the fields one step declared."""

    __slots__ = ("_protocol", "_step", "_allowed")

    def __init__(self, protocol: Protocol, step: str):
        object.__setattr__(self, "_protocol", protocol)
        object.__setattr__(self, "_step", step)
        object.__setattr__(self, "_allowed", frozenset(STEP_PROTOCOL_FIELDS[step]))

    def __getattr__(self, name: str) -> Any:
        needed = _DERIVED.get(name, name)
        if needed in Protocol.model_fields and needed not in self._allowed:
            raise AttributeError(f"step {self._step!r} reads protocol field {needed!r}, which it does not declare in "
                                 "study.rule_params.STEP_PROTOCOL_FIELDS (so a change to it would not re-run the step)")
        return getattr(self._protocol, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a protocol view is read-only")


def protocol_for_step(path: str | os.PathLike, step: str) -> Protocol:
    """Load the protocol and return the view of it ``step`` may read (see :class:`ProtocolView`)."""
    if step not in STEP_PROTOCOL_FIELDS:
        raise KeyError(f"unknown step {step!r}; known: {sorted(STEP_PROTOCOL_FIELDS)}")
    return cast(Protocol, ProtocolView(load_protocol(Path(path)).protocol, step))
