"""Intervals, tests and degrees of freedom shared by the OR, DBM and AI-versus-readers analyses."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import numpy as np
from scipy import stats

from study.results.mrmc import Difference, FTest, TEstimate

__all__ = [
    "ANALYSIS_NAMES",
    "confidence_label",
    "difference",
    "f_test",
    "mean_masked",
    "p_value_t",
    "safe_div",
    "satterthwaite",
    "t_estimate",
]

ANALYSIS_NAMES = {
    "rrrc": "random readers, random cases",
    "frrc": "fixed readers, random cases",
    "rrfc": "random readers, fixed cases",
}

E = TypeVar("E", bound=TEstimate)


def confidence_label(alpha: float) -> str:
    """``95%`` for ``alpha = 0.05``."""
    return f"{100 * (1 - alpha):g}%"


def t_estimate(cls: type[E], value: float, se: float, df: float | None, alpha: float, method: str,
               **extra: Any) -> E:
    """An estimate with a t (finite ``df``) or normal (``df=None``) interval ``value +- q se``."""
    q = stats.norm.ppf(1 - alpha / 2) if df is None else stats.t.ppf(1 - alpha / 2, df)
    lo, hi = (value - q * se, value + q * se) if np.isfinite(se) else (np.nan, np.nan)
    return cls(estimate=value, ci_low=lo, ci_high=hi, method=method, se=se,
               df=None if df is None or not np.isfinite(df) else float(df), **extra)


def p_value_t(stat: float, df: float | None) -> float:
    """Two-sided p of a t statistic (normal when ``df`` is ``None`` or infinite)."""
    if df is None or not np.isfinite(df):
        return float(2 * stats.norm.sf(abs(stat)))
    return float(2 * stats.t.sf(abs(stat), df))


def safe_div(a: float, b: float) -> float:
    """``a / b``; ``+-inf`` (or 0 for ``0 / 0``) when ``b`` is 0."""
    return a / b if b != 0 else (np.inf if a > 0 else (0.0 if a == 0 else -np.inf))


def satterthwaite(den: float, ms: float, df_ms: float) -> float:
    """Hillis (2007) ddf: ``den^2 / (ms^2 / df_ms)``; infinite when ``ms = 0``."""
    if ms == 0:
        return np.inf
    return float(den ** 2 / (ms ** 2 / df_ms))


def difference(a: str, b: str, value: float, se: float, df: float | None, alpha: float, method: str,
               kind: str = "modality", **extra: Any) -> Difference:
    """``a - b`` with its interval and its t (or z) test of no difference."""
    stat = safe_div(value, se) if np.isfinite(se) else np.nan
    return t_estimate(Difference, value, se, df, alpha, method, modalities=[a, b], comparison=f"{a} - {b}",
                      kind=kind, statistic=float(stat) if np.isfinite(stat) else None,
                      statistic_name="z" if df is None else "t",
                      p_value=p_value_t(stat, df) if np.isfinite(stat) else None, **extra)


def f_test(F: float, ndf: float, ddf: float | None, error_term: float, formula: str,
           name: Literal["F", "chi-square"] = "F") -> FTest:
    """The global test: F on ``(ndf, ddf)`` (chi-square on ``ndf`` when ``ddf`` is infinite), or chi-square."""
    if name == "chi-square":
        p = float(stats.chi2.sf(F, ndf))
    else:
        assert ddf is not None
        p = float(stats.f.sf(F, ndf, ddf)) if np.isfinite(ddf) else float(stats.chi2.sf(F * ndf, ndf))
    return FTest(statistic=float(F), statistic_name=name, ndf=float(ndf),
                 ddf=None if ddf is None or not np.isfinite(ddf) else float(ddf), p_value=p,
                 error_term=float(error_term), error_term_formula=formula)


def mean_masked(a: np.ndarray, mask: np.ndarray) -> float:
    """Mean of ``a[mask]``; NaN when the mask is empty."""
    v = a[mask]
    return float(v.mean()) if v.size else np.nan
