"""Intervals, tests and degrees of freedom shared by the OR, DBM and AI-versus-readers analyses."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import numpy as np
from scipy import stats

from study.metrics.intervals import bounded_unit_interval
from study.results.mrmc import Difference, FTest, TEstimate

__all__ = [
    "ANALYSIS_NAMES",
    "bounded_estimate",
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


def bounded_estimate(cls: type[E], value: float, se: float, df: float | None, alpha: float, method: str,
                     **extra: Any) -> E:
    """A figure of merit in [0, 1] with its t (or normal) interval kept inside [0, 1].

    The interval of :func:`t_estimate` when it lies inside [0, 1]; otherwise the same
    quantile and standard error on the logit scale
    (:func:`study.metrics.intervals.bounded_unit_interval`), the method then saying so. At a
    figure of merit of 0 or 1 with ``se`` = 0 (every case agrees), or when the transformed
    interval is undefined, the interval is not given and ``reason`` says why.
    """
    q = float(stats.norm.ppf(1 - alpha / 2) if df is None else stats.t.ppf(1 - alpha / 2, df))
    dfv = None if df is None or not np.isfinite(df) else float(df)
    got = bounded_unit_interval(value, se, q) if np.isfinite(value) else None
    if got is None:
        return cls(estimate=value, ci_low=None, ci_high=None, method=method, se=se if np.isfinite(se) else None,
                   df=dfv, reason=f"figure of merit {value:g} with standard error {se:g}: no interval of positive "
                                  "width inside 0-1 (a standard error of 0: the cases carry no spread)", **extra)
    lo, hi, transformed = got
    if transformed:
        method = f"{method}; on the logit scale (the interval would leave 0-1)"
    return cls(estimate=value, ci_low=lo, ci_high=hi, method=method, se=se, df=dfv, **extra)


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
