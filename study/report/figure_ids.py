"""The one name of each report figure, shared by the figures and the report sections.

A figure's id is its kind, followed by what it is drawn for (a model, a subgroup column, a
pseudonymised case), joined by ``__``: ``flow``, ``pr__<model>``, ``forest__<column>``,
``example__<model>__<pseudonym>``. The id names the SVG file (``figures/<id>.svg``) and the
template's figure slot. A part longer than :data:`MAX_PART` characters (a model id or a column
name of thousands of characters) is shortened to its start and a hash of the whole, so the file
name stays within the file system's limit (255 bytes) and two long names stay distinct.
"""

from __future__ import annotations

import hashlib

__all__ = ["MAX_PART", "SEPARATOR", "figure_id"]

SEPARATOR = "__"
#: the longest part kept whole in a figure id
MAX_PART = 48


def _part(p: str) -> str:
    if len(p) <= MAX_PART:
        return p
    return f"{p[:32]}-{hashlib.sha256(p.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


def figure_id(kind: str, *parts: str) -> str:
    """The id of the figure of ``kind`` drawn for ``parts`` (e.g. ``figure_id("pr", model)``)."""
    if not kind or SEPARATOR in kind:
        raise ValueError(f"a figure kind is a non-empty name without {SEPARATOR!r}, got {kind!r}")
    return SEPARATOR.join([kind, *(_part(str(p)) for p in parts)])
