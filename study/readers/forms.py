"""Validation of a submitted reading form: every problem named, nothing stored when any."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

MAX_COMMENT = 2000
MAX_MARKS = 500


def _number(raw: str, name: str, problems: list[str], *, lo: float, hi: float | None = None,
            integer: bool = False) -> float | None:
    raw = (raw or "").strip()
    if raw == "":
        return None
    try:
        v = float(raw)
    except ValueError:
        problems.append(f"{name} = {raw!r} is not a number")
        return None
    if not math.isfinite(v) or v < lo or (hi is not None and v > hi) or (integer and v != int(v)):
        rng = f"in [{lo:g}, {hi:g}]" if hi is not None else f">= {lo:g}"
        problems.append(f"{name} = {raw!r} is out of range; expected {'a whole number' if integer else 'a number'} "
                        f"{rng}")
        return None
    return int(v) if integer else v


def parse_answer(form: Mapping[str, str], *, levels: list[str], classes: list[str]) -> tuple[dict[str, Any], list[str]]:
    """A reading form -> ``(answer, problems)``.

    Fields: ``grade`` (one of ``levels``), ``confidence`` (0-100, required when the case is
    assessable), ``count_<class>`` (whole numbers >= 0, optional), ``marks`` (JSON list of
    ``{x, y[, class]}`` in image pixels), ``not_assessable`` (checkbox) with ``reason``,
    ``comment`` (at most 2,000 characters).
    """
    problems: list[str] = []
    assessable = form.get("not_assessable", "") == ""
    grade = (form.get("grade") or "").strip()
    if assessable and grade not in levels:
        problems.append(f"grade {grade!r} is not one of the protocol's levels {levels}" if grade
                        else f"choose a grade: one of {levels}")
    elif not assessable and grade and grade not in levels:
        problems.append(f"grade {grade!r} is not one of the protocol's levels {levels}")
    confidence = _number(form.get("confidence", ""), "confidence", problems, lo=0, hi=100)
    if assessable and confidence is None and not any("confidence" in p for p in problems):
        problems.append("confidence is required: a number in [0, 100]")
    counts = {c: _number(form.get(f"count_{c}", ""), f"count_{c}", problems, lo=0, integer=True) for c in classes}
    reason = (form.get("reason") or "").strip()
    if not assessable and not reason:
        problems.append("a case marked not assessable needs a reason")
    comment = form.get("comment") or ""
    if len(comment) > MAX_COMMENT:
        problems.append(f"comment is {len(comment)} characters long; at most {MAX_COMMENT}")
    marks: list[dict[str, Any]] = []
    raw = (form.get("marks") or "").strip() or "[]"
    try:
        loaded = json.loads(raw)
        if not isinstance(loaded, list) or len(loaded) > MAX_MARKS:
            raise ValueError
        for m in loaded:
            x, y, cls = float(m["x"]), float(m["y"]), m.get("class")
            if not (math.isfinite(x) and math.isfinite(y)) or x < 0 or y < 0:
                raise ValueError
            if cls is not None and cls not in classes:
                raise ValueError
            marks.append({"x": round(x, 1), "y": round(y, 1), "class": cls})
    except (ValueError, TypeError, KeyError):
        problems.append(f"marks must be a list of at most {MAX_MARKS} points {{x, y, class}} with x, y >= 0 "
                        f"and class one of {classes}")
    answer = {"grade": grade if grade in levels else None, "confidence": confidence, "counts": counts,
              "marks": marks, "assessable": assessable, "reason": reason if not assessable else "",
              "comment": comment}
    return answer, problems
