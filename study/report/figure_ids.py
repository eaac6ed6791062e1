"""The one name of each report figure, shared by the figures and the report sections.

A figure's id is its kind, followed by what it is drawn for (a model, a subgroup column, a
pseudonymised case), joined by ``__``: ``flow``, ``pr__<model>``, ``forest__<column>``,
``example__<model>__<pseudonym>``. The id names the SVG file (``figures/<id>.svg``) and the
template's figure slot.
"""

from __future__ import annotations

__all__ = ["SEPARATOR", "figure_id"]

SEPARATOR = "__"


def figure_id(kind: str, *parts: str) -> str:
    """The id of the figure of ``kind`` drawn for ``parts`` (e.g. ``figure_id("pr", model)``)."""
    if not kind or SEPARATOR in kind:
        raise ValueError(f"a figure kind is a non-empty name without {SEPARATOR!r}, got {kind!r}")
    return SEPARATOR.join([kind, *(str(p) for p in parts)])
