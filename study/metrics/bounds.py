"""Checks that intervals respect the bounds of what they estimate (issue 13 item 2).

:func:`interval_problems` walks a results tree (``results.json`` or any block of it) and
lists every estimate object ``{estimate, ci_low, ci_high, method}`` whose interval

- leaves the bounds of its quantity (proportions, AUC, AP, F1 in [0, 1]; kappa and alpha at
  most 1; differences of proportions in [-1, 1]), or
- has zero width although the estimate sits at a bound and the estimate rests on data.

The quantity is recognised from the last key naming it on the path (e.g.
``raters.ai.per_grade.II.sensitivity``; ``...accuracy_difference``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from study.estimate import is_estimate_dict

#: key fragments of quantities in [0, 1]
_UNIT = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "recall", "precision", "auc", "ap",
         "downgrade", "upgrade", "cross_grade", "share", "rate", "fom")
#: key fragments of quantities at most 1 (agreement coefficients)
_AT_MOST_ONE = ("kappa", "alpha")


def bounds_of(path: tuple[str, ...]) -> tuple[float | None, float | None]:
    """Lower and upper bound of the quantity at ``path`` (``None``: unbounded on that side)."""
    for key in reversed(path):
        k = key.lower()
        if k in ("bootstrap", "estimate") or k.isdigit():
            continue
        if "difference" in k or k.startswith("diff"):
            if any(f in k for f in _AT_MOST_ONE):
                return -2.0, 2.0
            if any(f in k for f in _UNIT):
                return -1.0, 1.0
            return None, None
        if any(f in k for f in _AT_MOST_ONE):
            return -1.0, 1.0
        parts = k.replace("-", "_").split("_")
        if any(f in parts or k == f or k.startswith(f) for f in _UNIT):
            return 0.0, 1.0
        return None, None
    return None, None


def estimates(tree: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict]]:
    """Every estimate object in ``tree`` with its key path."""
    if isinstance(tree, dict):
        if is_estimate_dict(tree):
            yield path, tree
        for k, v in tree.items():
            yield from estimates(v, (*path, str(k)))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from estimates(v, (*path, str(i)))


def interval_problems(tree: Any, *, tol: float = 1e-9) -> list[str]:
    """Every interval of ``tree`` that leaves its bounds or has zero width at a bound."""
    out = []
    for path, e in estimates(tree):
        lo, hi, est = e.get("ci_low"), e.get("ci_high"), e.get("estimate")
        if lo is None or hi is None:
            continue
        where = ".".join(path)
        b_lo, b_hi = bounds_of(path)
        if b_lo is not None and lo < b_lo - tol:
            out.append(f"{where}: ci_low {lo} below {b_lo} ({e['method']})")
        if b_hi is not None and hi > b_hi + tol:
            out.append(f"{where}: ci_high {hi} above {b_hi} ({e['method']})")
        if est is not None and hi - lo <= tol and any(b is not None and abs(est - b) <= tol for b in (b_lo, b_hi)):
            out.append(f"{where}: zero-width interval at the bound {est} ({e['method']})")
    return out
