"""The one-sided tests that decide an endpoint, each with its confidence interval.

Every test is one-sided in the direction of the alternative at level ``alpha1`` (the plan's
``alpha``, halved when two-sided); the interval reported is the two-sided ``1 - 2 alpha1``
interval, whose bound on the good side is the one-sided ``1 - alpha1`` bound the decision
rests on (so "lower 97.5% bound >= goal" and "p <= 0.025" agree).

- :func:`exact_goal_test`: a proportion against a fixed goal, exact binomial test with the
  Clopper-Pearson interval (Clopper & Pearson 1934); equivalence by two one-sided exact tests;
- :func:`clustered_mean`: a mean (a proportion, or a paired difference of 0/1 outcomes) over
  cases clustered in patients, with the ratio-estimator variance of Obuchowski (1998),
  Statistics in Medicine 17:1495-1507 (equal to the cluster-robust variance of an
  intercept-only least-squares fit, statsmodels ``cov_type="cluster"``);
- :func:`tango_paired_test`: a paired difference of proportions (the model against one
  reader, or another model, on the same cases), Tango's (1998) score test and interval;
- :func:`wald_test`: an estimate with a standard error (normal, or Student t with ``df``)
  against the null value the hypothesis implies;
- :func:`kappa_goal_test`: Cohen's kappa against a goal with the standard error *under the
  null* (the asymptotic SE of Fleiss, Cohen & Everitt 1969 at the table with the observed
  margins and kappa equal to the goal), as in the sample-size method of Flack, Afifi,
  Lachenbruch & Schouten (1988), Psychometrika 53:321-325. The Wald test with the estimated
  SE rejects up to three times too often near kappa = 0.9 with 100 cases
  (bench/bench_plan_calibration.py); this one keeps its level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from study.estimate import Estimate

Direction = Literal["higher", "lower"]

__all__ = ["TestOutcome", "clustered_mean", "exact_goal_test", "kappa_goal_test", "null_values", "rao_scott_design_effect",
           "tango_paired_test", "wald_test"]


@dataclass(frozen=True)
class TestOutcome:
    """An estimate with its interval, the test statistic and the one-sided p-value (``None``: not estimable)."""

    estimate: Estimate
    statistic: float | None
    statistic_name: str | None
    p_value: float | None
    reason: str | None = None


def _pct(alpha1: float) -> str:
    return f"{100 * (1 - 2 * alpha1):g}%"


def null_values(kind: str, *, goal: float, margin: float | None, margins: tuple[float, float] | None,
                direction: Direction | Literal["none"]) -> list[tuple[float, Direction]]:
    """The one-sided null boundaries a hypothesis implies, as ``(theta0, side of the alternative)``.

    ``goal`` is the goal (performance goal, equivalence against a goal) or 0 (differences).
    """
    if kind == "equivalence":
        assert margins is not None
        return [(goal + margins[0], "higher"), (goal + margins[1], "lower")]
    side: Direction = "lower" if direction == "lower" else "higher"
    if kind == "non_inferiority":
        assert margin is not None
        return [(-margin if side == "higher" else margin, side)]
    return [(goal, side)]


def exact_goal_test(k: int, n: int, *, nulls: Sequence[tuple[float, Direction]], alpha1: float,
                    design_effect: float = 1.0) -> TestOutcome:
    """Exact binomial test of ``k`` successes in ``n`` against each null boundary (max p: TOST).

    ``p`` for the alternative "higher than theta0" is ``P(X >= k | n, theta0)``; for "lower",
    ``P(X <= k | n, theta0)``. The interval is Clopper-Pearson at ``1 - 2 alpha1``. With
    cases clustered in patients, ``design_effect`` ``d`` > 1 divides both counts (Rao & Scott
    1992, Biometrics 48:577-585) and the test and interval use the beta-function forms
    ``P(X >= k) = I_theta0(k, n - k + 1)`` on the effective counts ``k / d`` and ``n / d``.
    """
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not design_effect >= 1:
        raise ValueError(f"design_effect must be >= 1, got {design_effect}")
    d = float(design_effect)
    name = f"Clopper-Pearson, {_pct(alpha1)}" + (f", Rao-Scott effective counts (design effect {d:.3g})"
                                                 if d > 1 else "")
    if n == 0:
        why = "no case in the endpoint's population"
        return TestOutcome(Estimate(None, None, None, name, extra={"reason": why, "k": 0, "n": 0}), None, None, None, why)
    ke, ne = k / d, n / d
    lo = float(stats.beta.ppf(alpha1, ke, ne - ke + 1)) if k > 0 else 0.0
    hi = float(stats.beta.ppf(1 - alpha1, ke + 1, ne - ke)) if k < n else 1.0
    ps = []
    for t0, side in nulls:
        t0 = min(max(t0, 0.0), 1.0)
        if side == "higher":
            ps.append(1.0 if k == 0 else float(stats.beta.cdf(t0, ke, ne - ke + 1)))
        else:
            ps.append(1.0 if k == n else float(stats.beta.sf(t0, ke + 1, ne - ke)))
    est = Estimate(k / n, lo, hi, name, extra={"k": k, "n": n})
    label = f"successes of {n} (exact binomial{'' if d == 1 else f'; effective {ke:.4g} of {ne:.4g}'})"
    return TestOutcome(est, float(k), label, max(ps))


def rao_scott_design_effect(values: Sequence[float], clusters: Sequence[object]) -> float:
    """Design effect of a proportion over clustered 0/1 values: clustered variance over binomial variance, at least 1.

    ``d = se_clustered^2 / (p (1 - p) / N)`` (Rao & Scott 1992), with ``se_clustered`` of
    :func:`clustered_mean`; 1 when ``p`` is 0 or 1 (no information on the clustering) or
    with fewer than two clusters. Values below 1 are set to 1 (never fewer effective cases
    than... never more effective cases than cases).
    """
    p, se, n, k = clustered_mean(values, clusters)
    if n == 0 or k < 2 or not 0 < p < 1 or not math.isfinite(se):
        return 1.0
    return max(1.0, se * se / (p * (1 - p) / n))


def clustered_mean(values: Sequence[float], clusters: Sequence[object]) -> tuple[float, float, int, int]:
    """Mean of per-case values with its standard error over clusters (patients).

    ``se^2 = K / (K - 1) * sum_i (x_i - n_i m)^2 / N^2`` with cluster totals ``x_i``, cluster
    sizes ``n_i``, ``N`` cases, ``K`` clusters and ``m = sum x_i / N`` (Obuchowski 1998,
    eq. 2; Rao & Scott 1992). With one case per cluster it is the usual ``s^2 / N`` with the
    divisor ``N - 1``.

    Returns
    -------
    (mean, se, n_cases, n_clusters); ``se`` is NaN with fewer than two clusters.
    """
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, 0, 0
    codes, inverse = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    k = len(codes)
    totals = np.bincount(inverse, weights=v, minlength=k)
    sizes = np.bincount(inverse, minlength=k).astype(float)
    n = float(len(v))
    m = totals.sum() / n
    if k < 2:
        return float(m), math.nan, int(n), k
    var = k / (k - 1) * float(((totals - sizes * m) ** 2).sum()) / n ** 2
    return float(m), math.sqrt(var), int(n), k


def wald_test(estimate: float | None, se: float | None, *, nulls: Sequence[tuple[float, Direction]], alpha1: float,
              method: str, df: float | None = None, bounds: tuple[float, float] | None = None,
              extra: dict | None = None) -> TestOutcome:
    """Wald (z, or t with ``df``) test of an estimate with a standard error against each null boundary.

    ``p`` = ``1 - F((est - theta0) / se)`` for "higher", ``F(...)`` for "lower" (``F`` the
    normal or t cdf); TOST takes the larger. The interval is ``est -/+ q se`` at
    ``1 - 2 alpha1``, clipped to ``bounds``.
    """
    name = f"{method}, {_pct(alpha1)}"
    if estimate is None or se is None or not math.isfinite(estimate) or not math.isfinite(se) or se <= 0:
        why = "the estimate is not available" if estimate is None or not math.isfinite(estimate) else \
            "its standard error is not available or zero"
        return TestOutcome(Estimate(estimate, None, None, name, extra={"reason": why, **(extra or {})}),
                           None, None, None, why)
    dist = stats.t(df) if df is not None and math.isfinite(df) and df > 0 else stats.norm
    q = float(dist.ppf(1 - alpha1))
    lo, hi = estimate - q * se, estimate + q * se
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    zs = [(estimate - t0) / se for t0, _ in nulls]
    ps = [float(dist.sf(z)) if side == "higher" else float(dist.cdf(z)) for z, (_, side) in zip(zs, nulls)]
    i = int(np.argmax(ps))
    stat_name = "t" if dist is not stats.norm else "z"
    return TestOutcome(Estimate(estimate, lo, hi, name, se=se, extra=extra), zs[i], stat_name, ps[i])


def kappa_null_se(goal: float, margins: Sequence[float], n: float, *, weights: str | None) -> float:
    """SE of kappa at ``n`` cases under ``kappa = goal`` with the given margins (the table of
    :func:`study.plan.power.kappa_table`)."""
    from study.plan.power import kappa_sigma

    return kappa_sigma(goal, margins, weights=weights) / math.sqrt(n)


def kappa_goal_test(table: np.ndarray, *, nulls: Sequence[tuple[float, Direction]], alpha1: float,
                    weights: str | None, se_scale: float = 1.0, interval_se: float | None = None,
                    interval_method: str = "Wald, asymptotic SE (Fleiss, Cohen & Everitt 1969)") -> TestOutcome:
    """Kappa of a ``K x K`` table (rows reference, columns rater) against each null boundary.

    ``z = (kappa - kappa0) / SE0`` with ``SE0`` the asymptotic SE at ``kappa0`` and the
    observed margins (the mean of the row and column shares), times ``se_scale`` (a patient
    design effect, ``sqrt(bootstrap var / asymptotic var)``, when patients have several
    images). The interval is the Wald interval with ``interval_se`` (default: the estimated ASE).
    """
    from study.metrics.intervals import kappa_ase_stacked

    t = np.asarray(table, dtype=float)
    n = float(t.sum())
    kappa, ase = (float(x) for x in kappa_ase_stacked(t, weights=weights))  # type: ignore[arg-type]
    se = interval_se if interval_se is not None else ase
    name = f"{interval_method}, {_pct(alpha1)}; test: SE under the null (Flack et al. 1988)"
    if n == 0 or not math.isfinite(kappa):
        why = "kappa is undefined (no case, or both raters used one identical level)"
        return TestOutcome(Estimate(None, None, None, name, extra={"reason": why, "n": int(n)}), None, None, None, why)
    margins = (t.sum(axis=0) + t.sum(axis=1)) / (2 * n)
    margins = np.clip(margins, 1e-9, None)
    q = float(stats.norm.ppf(1 - alpha1))
    est = Estimate(kappa, max(-1.0, kappa - q * se) if math.isfinite(se) else None,
                   min(1.0, kappa + q * se) if math.isfinite(se) else None, name, se=se, extra={"n": int(n)})
    zs, ps = [], []
    for k0, side in nulls:
        se0 = kappa_null_se(min(max(k0, 0.0), 1.0), margins, n, weights=weights) * se_scale
        z = (kappa - k0) / se0 if se0 > 0 else (math.inf if kappa > k0 else -math.inf)
        zs.append(z)
        ps.append(float(stats.norm.sf(z)) if side == "higher" else float(stats.norm.cdf(z)))
    i = int(np.argmax(ps))
    return TestOutcome(est, zs[i], "z (SE under the null)", ps[i])


def tango_constrained_p21(b: float, c: float, n: float, delta0: float) -> float:
    """Constrained MLE of the cell "rater wrong, comparator right" under ``p12 - p21 = delta0`` (Tango 1998, eq. 4).

    ``q = (sqrt(B^2 - 4 A C) - B) / (2 A)`` with ``A = 2n``, ``B = -b - c + (2n - b + c) delta0``,
    ``C = -c delta0 (1 - delta0)``; ``b``, ``c``: pairs where only the rater / only the
    comparator is right. Also used with expected counts for Nam's (1997) power.
    """
    a = 2.0 * n
    bb = -b - c + (2.0 * n - b + c) * delta0
    cc = -c * delta0 * (1.0 - delta0)
    return (math.sqrt(max(bb * bb - 4.0 * a * cc, 0.0)) - bb) / (2.0 * a)


def tango_score(b: int, c: int, n: int, delta0: float) -> float:
    """Tango's (1998) score statistic ``(b - c - n delta0) / sqrt(n (2 q21 + delta0 (1 - delta0)))``.

    Tango T (1998), Statistics in Medicine 17:891-908; at ``delta0 = 0`` it is McNemar's
    ``(b - c) / sqrt(b + c)``.
    """
    q = tango_constrained_p21(b, c, n, delta0)
    var = n * (2.0 * q + delta0 * (1.0 - delta0))
    num = b - c - n * delta0
    if var <= 0:
        return 0.0 if num == 0 else math.copysign(math.inf, num)
    return num / math.sqrt(var)


def tango_paired_test(b: int, c: int, n: int, *, nulls: Sequence[tuple[float, Direction]], alpha1: float,
                      extra: dict | None = None) -> TestOutcome:
    """Paired difference of proportions (rater minus comparator), Tango's score test and interval.

    ``n`` pairs, ``b`` where only the rater is right, ``c`` where only the comparator is
    right. The interval (``1 - 2 alpha1``) inverts the score statistic (root finding); the
    one-sided p-value at each null boundary is ``1 - Phi(T(delta0))`` ("higher") or ``Phi``.
    """
    from scipy.optimize import brentq

    name = f"Tango (1998) score interval for a paired difference, {_pct(alpha1)}"
    if n == 0:
        why = "no case graded by both"
        return TestOutcome(Estimate(None, None, None, name, extra={"reason": why}), None, None, None, why)
    est = (b - c) / n
    q = float(stats.norm.ppf(1 - alpha1))
    eps = 1e-10

    def bound(target: float, lo: float, hi: float) -> float:
        def f(d: float) -> float:
            return tango_score(b, c, n, d) - target

        if f(lo) * f(hi) > 0:
            return lo if abs(f(lo)) < abs(f(hi)) else hi
        return float(brentq(f, lo, hi, xtol=1e-12))

    low = bound(q, -1 + eps, est) if est > -1 + eps else -1.0
    high = bound(-q, est, 1 - eps) if est < 1 - eps else 1.0
    zs = [tango_score(b, c, n, t0) for t0, _ in nulls]
    ps = [float(stats.norm.sf(z)) if side == "higher" else float(stats.norm.cdf(z)) for z, (_, side) in zip(zs, nulls)]
    i = int(np.argmax(ps))
    return TestOutcome(Estimate(est, low, high, name, extra={"n": n, **(extra or {})}), zs[i], "z (Tango score)", ps[i])
