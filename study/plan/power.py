"""Power and sample size of the tests in :mod:`study.plan.hypothesis_tests` (closed forms).

Each function plans the test the ``decide`` step runs, so the predicted power is the power
of that test (checked by simulation in ``bench/bench_plan_calibration.py``):

- :func:`exact_goal_power` / :func:`exact_goal_sample_size`: the exact one-sided binomial
  test of a proportion against a goal; power ``P(X >= k_crit | n, p1)`` with ``k_crit`` the
  smallest ``k`` with ``P(X >= k | n, p0) <= alpha`` (e.g. Chow, Shao & Wang 2008, Sample
  Size Calculations in Clinical Research, section 4.1; Flahault et al. 2005 for diagnostic
  accuracy). The smallest ``n`` reaching the power is returned (the power is saw-toothed in ``n``);
- :func:`wald_power` / :func:`wald_sample_size`: a Wald test whose SE shrinks as
  ``sigma / sqrt(n)`` (``Phi(sqrt(n) |theta1 - theta0| / sigma - z_{1-alpha})``);
- :func:`paired_sigma`: ``sigma`` of a paired difference of 0/1 outcomes from the share of
  discordant pairs ``psi`` and the difference ``delta``: ``sigma^2 = psi - delta^2``
  (Connor 1987, Biometrics 43:207-211); with :func:`tango_null_sigma`, the SD under the
  null, Nam's (1997) sample size for Tango's score test of non-inferiority;
- :func:`kappa_sigma`: ``sqrt(n)`` times the asymptotic SE of kappa (Fleiss, Cohen & Everitt
  1969) at the anticipated table ``P = (1 - k) p p^T + k diag(p)``, whose (weighted) kappa is
  ``k`` for any agreement weights and whose margins are ``p``; kappa is planned with the SE
  under the null and under the alternative, ``n = ((z_a s0 + z_b s1) / (k1 - k0))^2``
  (Flack, Afifi, Lachenbruch & Schouten 1988), matching the test of ``decide``;
- :func:`mrmc_ai_power`: the model against the readers' average (Hillis 2007, section 5.3,
  single-modality OR model of the differences) at ``J`` readers and ``c`` cases, from a
  pilot's variance components scaled by ``c0 / c`` as in Hillis, Obuchowski & Berbaum (2011),
  Academic Radiology 18:129-142: noncentral t with ``ddf_H``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

__all__ = [
    "exact_goal_power",
    "exact_goal_sample_size",
    "kappa_sigma",
    "kappa_table",
    "mrmc_ai_power",
    "paired_sigma",
    "wald_power",
    "wald_sample_size",
]


def _check_alpha(alpha1: float) -> None:
    if not 0 < alpha1 < 0.5:
        raise ValueError(f"one-sided alpha must be in (0, 0.5), got {alpha1}")


def exact_goal_power(n: int | np.ndarray, *, goal: float, expected: float, alpha1: float) -> np.ndarray:
    """Power of the exact one-sided binomial test of ``H0: p <= goal`` at ``n`` trials when ``p = expected``.

    Parameters
    ----------
    n : int or array of int (>= 1).
    goal, expected : proportions in (0, 1); the alternative is ``expected > goal``.
    alpha1 : one-sided level.
    """
    _check_alpha(alpha1)
    if not (0 < goal < 1 and 0 < expected < 1):
        raise ValueError(f"goal and expected must be in (0, 1), got {goal}, {expected}")
    n = np.atleast_1d(np.asarray(n, dtype=int))
    kcrit = stats.binom.isf(alpha1, n, goal) + 1  # smallest k with P(X >= k | goal) <= alpha1
    # isf works on floats: step back where k - 1 already qualifies, forward where k does not
    kcrit = np.where(stats.binom.sf(kcrit - 2, n, goal) <= alpha1, kcrit - 1, kcrit)
    kcrit = np.where(stats.binom.sf(kcrit - 1, n, goal) > alpha1, kcrit + 1, kcrit)
    return stats.binom.sf(kcrit - 1, n, expected)


def exact_goal_sample_size(*, goal: float, expected: float, alpha1: float, power: float, n_max: int = 200_000) -> int:
    """Smallest ``n`` whose exact binomial test reaches ``power`` (``expected > goal``).

    Raises
    ------
    ValueError
        When ``expected <= goal`` or no ``n <= n_max`` reaches the power.
    """
    if expected <= goal:
        raise ValueError(f"the anticipated value {expected} must exceed the goal {goal}")
    start = 1
    while start <= n_max:
        ns = np.arange(start, min(start * 4, n_max) + 1)
        pw = exact_goal_power(ns, goal=goal, expected=expected, alpha1=alpha1)
        hit = np.nonzero(pw >= power)[0]
        if len(hit):
            return int(ns[hit[0]])
        start = int(ns[-1]) + 1
    raise ValueError(f"no n up to {n_max} reaches power {power}")


def wald_power(n: float | np.ndarray, *, effect: float, sigma: float, alpha1: float,
               sigma0: float | None = None) -> np.ndarray:
    """Power ``Phi((sqrt(n) effect - z_{1-alpha1} sigma0) / sigma)`` of a one-sided Wald test.

    ``effect``: distance of the anticipated value from the null boundary, towards the
    alternative; ``sigma``: ``sqrt(n)`` times the SE under the alternative; ``sigma0``: under
    the null when the test uses the null SE (kappa; Flack et al. 1988), else ``sigma``.
    """
    _check_alpha(alpha1)
    n = np.asarray(n, dtype=float)
    s0 = sigma if sigma0 is None else sigma0
    return stats.norm.cdf((np.sqrt(n) * effect - stats.norm.ppf(1 - alpha1) * s0) / sigma)


def wald_sample_size(*, effect: float, sigma: float, alpha1: float, power: float, sigma0: float | None = None) -> int:
    """``ceil(((z_{1-alpha1} sigma0 + z_{power} sigma) / effect)^2)`` (``sigma0`` defaults to ``sigma``)."""
    if effect <= 0:
        raise ValueError(f"the anticipated value must lie beyond the null boundary (effect {effect} <= 0)")
    s0 = sigma if sigma0 is None else sigma0
    z = stats.norm.ppf(1 - alpha1) * s0 + stats.norm.ppf(power) * sigma
    return max(2, math.ceil((z / effect) ** 2))


def paired_sigma(*, delta: float, discordance: float) -> float:
    """SD of a paired difference of 0/1 outcomes: ``sqrt(psi - delta^2)`` (``|delta| <= psi``)."""
    if not abs(delta) <= discordance <= 1:
        raise ValueError(f"need |delta| <= discordance <= 1, got delta {delta}, discordance {discordance}")
    return math.sqrt(max(discordance - delta ** 2, 1e-12))


def tango_null_sigma(*, delta: float, discordance: float, delta0: float) -> float:
    """``sqrt(2 q + delta0 (1 - delta0))``: the SD under the null of Tango's score statistic, with ``q`` the
    constrained MLE at the anticipated cells ``p12 = (psi + delta) / 2``, ``p21 = (psi - delta) / 2``
    (Nam 1997, Biometrics 53:1422-1430, the sample size of Tango's test)."""
    from study.plan.hypothesis_tests import tango_constrained_p21

    q = tango_constrained_p21((discordance + delta) / 2, (discordance - delta) / 2, 1.0, delta0)
    return math.sqrt(max(2 * q + delta0 * (1 - delta0), 1e-12))


def kappa_table(kappa: float, shares: Sequence[float]) -> np.ndarray:
    """The anticipated joint table ``(1 - kappa) p p^T + kappa diag(p)`` (``p`` normalised)."""
    p = np.asarray(shares, dtype=float)
    p = p / p.sum()
    if not 0 <= kappa <= 1:
        raise ValueError(f"anticipated kappa must be in [0, 1], got {kappa}")
    return (1 - kappa) * np.outer(p, p) + kappa * np.diag(p)


def kappa_sigma(kappa: float, shares: Sequence[float], *, weights: str | None) -> float:
    """``sqrt(n) * ASE`` of kappa at the anticipated table (Fleiss, Cohen & Everitt 1969)."""
    from study.metrics.intervals import kappa_ase_stacked

    n = 1_000_000.0
    _, ase = kappa_ase_stacked(kappa_table(kappa, shares) * n, weights=weights)  # type: ignore[arg-type]
    return float(ase) * math.sqrt(n)


def mrmc_ai_power(readers: int, cases: float, *, effect: float, var_r: float, var_error: float, cov2: float,
                  pilot_cases: float, alpha1: float) -> float:
    """Power of the one-sided RRRC test of the model minus the readers' average (Hillis 2007, section 5.3).

    With the pilot's components of the differences ``psi_j`` (``var_r`` between readers,
    ``var_error`` and ``cov2`` of the error, scaled by ``r = pilot_cases / cases``):
    ``E MS(R) = var_r + r (var_error - cov2)``, ``se^2 = [E MS(R) + J r max(cov2, 0)] / J``,
    ``ddf = (J se^2)^2 (J - 1) / E MS(R)^2``; power ``= 1 - T_{ddf, ncp}(t_{1-alpha1, ddf})``
    with ``ncp = effect / se`` (Hillis, Obuchowski & Berbaum 2011).
    """
    _check_alpha(alpha1)
    if readers < 2 or cases <= 0:
        raise ValueError("need at least 2 readers and a positive number of cases")
    r = pilot_cases / cases
    ems = max(var_r, 0.0) + r * (var_error - cov2)
    den = ems + readers * r * max(cov2, 0.0)
    se = math.sqrt(den / readers)
    ddf = den ** 2 * (readers - 1) / ems ** 2 if ems > 0 else math.inf
    crit = stats.t.ppf(1 - alpha1, ddf) if math.isfinite(ddf) else stats.norm.ppf(1 - alpha1)
    if not math.isfinite(ddf):
        return float(stats.norm.sf(crit - effect / se))
    return float(stats.nct.sf(crit, ddf, effect / se))
