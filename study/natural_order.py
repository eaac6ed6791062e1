"""Natural order of subgroup values (numbers, then Fitzpatrick's Roman numerals, then text).

A module of its own, with no imports, so that the report can sort subgroups without
importing pandas (via :mod:`study.baseline`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["natural_key"]

_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6}


def natural_key(value: Any) -> tuple[int, float, str]:
    """Natural order: numbers numerically, then Roman numerals I-VI (Fitzpatrick), then text."""
    s = str(value)
    try:
        return (0, float(s), s)
    except ValueError:
        pass
    if s.upper() in _ROMAN:
        return (1, _ROMAN[s.upper()], s)
    return (2, 0.0, s.lower())
