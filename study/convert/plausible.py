"""Lesions that cannot be right, and their quarantine (``study convert ... --drop-implausible``).

A box with a non-finite or missing coordinate, a zero or negative width or height, or that
reaches past its image by more than :data:`TOLERANCE` pixels cannot be a lesion of that image
(the same rules ``study check`` applies to ``annotations.json``:
:func:`study.cohort.validate_annotations`). A converter asks :func:`box_fault` about every box
and hands each faulty one to :func:`quarantine`: by default it is a problem (the conversion
fails, naming the file, the object and what is wrong); with ``--drop-implausible`` it is left
out and listed with its reason under ``quarantined`` in ``conversion.json``, and the command's
summary line counts it. The circles converter (:mod:`study.convert.circles`) applies its own
circle rules (centre outside, implausible radius) through the same list.
"""

from __future__ import annotations

import math
from typing import Any

from study.errors import Problem

__all__ = ["HINT", "TOLERANCE", "box_fault", "quarantine"]

#: how far (pixels) a box may reach past the image border (rounding of the annotation tool)
TOLERANCE = 1.0
#: what the message of a refused lesion tells the user to do
HINT = "fix it or pass --drop-implausible to leave such lesions out (each is listed in conversion.json)"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def box_fault(box: Any, *, width: float | None, height: float | None,
              tolerance: float = TOLERANCE) -> tuple[str, str] | None:
    """Why the COCO box ``[x, y, w, h]`` cannot be right on a ``width`` x ``height`` image, or None.

    Parameters
    ----------
    box : the box as read (anything: a list of four numbers is expected).
    width, height : the image's size; None when unknown (then only the box itself is judged).
    tolerance : pixels a box may reach past the border.

    Returns
    -------
    tuple or None
        ``(kind, message)``: kind ``non-finite``, ``size`` (zero or negative width or height) or
        ``outside``; the message says what is wrong with the numbers.
    """
    if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(_finite(v) for v in box)):
        return "non-finite", f"box {list(box) if isinstance(box, tuple) else box!r} has missing or non-finite coordinates"
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        return "size", f"box [{x:g}, {y:g}, {w:g}, {h:g}] has zero or negative size (width {w:g}, height {h:g})"
    if width is not None and height is not None and (
            x < -tolerance or y < -tolerance or x + w > width + tolerance or y + h > height + tolerance):
        return "outside", (f"box [{x:g}, {y:g}, {w:g}, {h:g}] lies outside the {width:g}x{height:g} image "
                           f"(x {x:g}..{x + w:g}, y {y:g}..{y + h:g})")
    return None


def quarantine(quarantined: list[dict[str, Any]], problems: list[Problem], *, drop: bool, file: str, where: str,
               image: str, reason: str, expected: str, **record: Any) -> None:
    """Record one lesion that cannot be right: appended to ``quarantined`` (what goes to ``conversion.json``:
    ``record``'s keys, ``file``, ``image``, ``field`` = ``where`` and ``reason``) and, unless ``drop``, to
    ``problems`` as a problem naming ``file``, ``where`` and what is expected."""
    quarantined.append({**record, "file": file, "image": image, "field": where, "reason": f"{reason}; {expected}"})
    if not drop:
        problems.append(Problem(file, where, f"{reason}; {expected}; {HINT}"))
