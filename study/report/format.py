"""Turn ``results.json`` into what the report template shows: formatted tables and texts.

Every number printed comes from ``results`` (nothing is computed here but formatting,
ordering, and the selection of rows); an interval is printed with its method (each table
lists, in a note, the methods of the intervals it shows). A section whose data is absent
says so, and why, in plain words.

Formatting is fixed so that the same results give the same report: proportions with three
decimals, intervals as ``0.812 (0.745-0.866)`` (``to`` instead of ``-`` when a bound is
negative), counts as integers. Case ids are never printed: the failure analysis uses
pseudonyms ``C-0001`` ... numbered in the order of the sha256 of the case ids.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from study.estimate import Estimate

ANY_LESION = "any lesion"
DASH = "–"
GROUP_ORDER = ("junior", "general", "intermediate", "senior", "expert")


# ----------------------------------------------------------------------------- formatting
def is_estimate(x: Any) -> bool:
    return isinstance(x, Estimate)


def value(x: Any) -> float | None:
    """The point value of an :class:`Estimate` or a plain number (``None`` when absent/undefined)."""
    if isinstance(x, Estimate):
        x = x.estimate
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, (int, float)):
        return float(x) if math.isfinite(float(x)) else None
    return None


def _num(x: float, nd: int) -> str:
    """``x`` with ``nd`` decimals, never ``-0.000``."""
    s = f"{x:.{nd}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def fmt(x: Any, nd: int = 3) -> str:
    """A number with ``nd`` decimals (integers as integers); ``–`` when absent."""
    if isinstance(x, Estimate):
        x = x.estimate
    if x is None or isinstance(x, bool):
        return DASH
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return DASH
        return _num(x, nd)
    return str(x)


def fmt_int(x: Any) -> str:
    return DASH if x is None else str(int(x))


def fmt_ci(e: Any, nd: int = 3) -> str:
    """``0.812 (0.745-0.866)``; ``–`` when the estimate is undefined; point only without a CI."""
    if not isinstance(e, Estimate):
        return fmt(e, nd)
    est, lo, hi = e.estimate, e.ci_low, e.ci_high
    if est is None:
        return "n/a"
    if lo is None or hi is None:
        return fmt(float(est), nd)
    a, b, c = _num(float(est), nd), _num(float(lo), nd), _num(float(hi), nd)
    sep = " to " if (b.startswith("-") or c.startswith("-")) else "-"
    return f"{a} ({b}{sep}{c})"


_IRREGULAR = {"case": "cases", "patient": "patients", "analysis": "analyses", "child": "children"}


def plural(n: int, singular: str, plural_form: str | None = None) -> str:
    """``"1 model"``, ``"7 readers"``: the count and the noun in the number it takes.

    The plural is ``plural_form`` when given, else the singular with ``s`` (``es`` after
    s, x, z, ch, sh; ``analysis`` -> ``analyses``).
    """
    if n == 1:
        return f"1 {singular}"
    if plural_form is None:
        plural_form = _IRREGULAR.get(singular) or (
            singular + "es" if singular.endswith(("s", "x", "z", "ch", "sh")) else singular + "s")
    return f"{n} {plural_form}"


def fmt_pct(n: Any, pct: Any) -> str:
    if n is None:
        return DASH
    return f"{int(n)} ({pct:.1f}%)" if pct is not None else str(int(n))


def fmt_p(p: Any) -> str:
    v = value(p)
    if v is None:
        return DASH
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


_SUP = dict(zip("abcdefghijklmnoprstuvwxyz", "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ"))
_MARK = re.compile("\x00(\\d+)\x00")


def method_marker(i: int) -> str:
    """Superscript letter naming the ``i``-th interval method of a table (a, b, c, ...)."""
    letters = "abcdefghijklmnoprstuvwxyz"
    return _SUP[letters[i]] if i < len(letters) else f"[{i + 1}]"


class Table:
    """A table for the template: caption, header, rows of strings, notes (incl. interval methods).

    Every interval printed through :meth:`ci` is tied to its method: when a table uses more than
    one method, each interval carries a superscript letter and the note lists the letters.
    """

    def __init__(self, id: str, caption: str, columns: list[str], *, nd: int = 3):
        self.id, self.caption, self.columns, self.nd = id, caption, columns, nd
        self.rows: list[list[str]] = []
        self.notes: list[str] = []
        self._methods: dict[str, int] = {}

    def ci(self, e: Estimate | float | None, nd: int | None = None) -> str:
        """``e`` as ``0.812 (0.745-0.866)``, tied to its method (and its reason when not estimable)."""
        text = fmt_ci(e, self.nd if nd is None else nd)
        if isinstance(e, Estimate) and e.method:
            if e.estimate is None and e.reason:
                self.note(f"n/a (not estimable): {e.reason}")
            elif e.reason and (e.ci_low is None or e.ci_high is None):
                text += " (no CI)"
                self.note(f"no CI (interval not estimable): {e.reason}")
            if e.estimate is not None or e.reason:
                i = self._methods.setdefault(e.method, len(self._methods))
                if e.ci_low is not None or e.reason:
                    text += f"\x00{i}\x00"
        return text

    def add(self, row: Iterable[Any]) -> None:
        self.rows.append([c if isinstance(c, str) else fmt(c, self.nd) for c in row])

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def to_dict(self) -> dict[str, Any]:
        multi = len(self._methods) > 1

        def mark(text: str) -> str:
            # a no-break space keeps the superscript on the line of its interval
            return _MARK.sub((lambda m: "\u00a0" + method_marker(int(m.group(1)))) if multi else "", text)

        notes = [mark(n) for n in self.notes]
        if self._methods:
            if multi:
                notes.append("Intervals: " + "; ".join(f"{method_marker(i)} {m}" for m, i in self._methods.items()) + ".")
            else:
                notes.append("Intervals: " + next(iter(self._methods)) + ".")
        return {"id": self.id, "caption": mark(self.caption), "columns": self.columns,
                "rows": [[mark(c) for c in r] for r in self.rows], "notes": notes}
