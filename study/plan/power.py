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
- :func:`exact_equivalence_power` / :func:`exact_equivalence_sample_size`: the two one-sided
  exact binomial tests (TOST, Schuirmann 1987) of ``low < p < high``: power
  ``P(k_low <= X <= k_high | n, p1)`` with ``k_low`` the smallest count rejecting ``p <= low``
  and ``k_high`` the largest rejecting ``p >= high`` (Chow, Shao & Wang 2008, section 4.1, exact);
- :func:`wald_equivalence_power`: the TOST of a Wald-type statistic, ``P(both one-sided tests
  reject)`` ~ ``Phi(a_low) + Phi(a_high) - 1`` with ``a = (sqrt(n) effect - z_{1-alpha} sigma0) / sigma``
  for each boundary (Chow, Shao & Wang 2008, section 3.2; exact when the two rejection
  regions overlap, i.e. at any useful power); :func:`smallest_n` searches the sample size;
- :func:`mrmc_ai_power`: the model against the readers' average (Hillis 2007, section 5.3,
  single-modality OR model of the differences) at ``J`` readers and ``c`` cases, from a
  pilot's variance components scaled by ``c0 / c`` as in Hillis, Obuchowski & Berbaum (2011),
  Academic Radiology 18:129-142: noncentral t with ``ddf_H``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

__all__ = [
    "exact_equivalence_power",
    "exact_equivalence_sample_size",
    "exact_goal_power",
    "exact_goal_sample_size",
    "kappa_sigma",
    "kappa_table",
    "mrmc_ai_power",
    "paired_sigma",
    "smallest_n",
    "wald_equivalence_power",
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


def _exact_bounds(n: np.ndarray, *, low: float, high: float, alpha1: float) -> tuple[np.ndarray, np.ndarray]:
    """(smallest k rejecting ``p <= low``, largest k rejecting ``p >= high``) at each ``n`` (exact binomial)."""
    k_low = stats.binom.isf(alpha1, n, low) + 1
    k_low = np.where(stats.binom.sf(k_low - 2, n, low) <= alpha1, k_low - 1, k_low)
    k_low = np.where(stats.binom.sf(k_low - 1, n, low) > alpha1, k_low + 1, k_low)
    k_high = stats.binom.ppf(alpha1, n, high)  # smallest k with P(X <= k | high) >= alpha1
    k_high = np.where(stats.binom.cdf(k_high, n, high) > alpha1, k_high - 1, k_high)
    k_high = np.where(stats.binom.cdf(k_high + 1, n, high) <= alpha1, k_high + 1, k_high)
    return k_low, k_high


def exact_equivalence_power(n: int | np.ndarray, *, low: float, high: float, expected: float,
                            alpha1: float) -> np.ndarray:
    """Power of the exact TOST of ``H0: p <= low or p >= high`` at ``n`` trials when ``p = expected``.

    Both one-sided exact binomial tests at level ``alpha1`` must reject: ``X >= k_low`` and
    ``X <= k_high``; power ``P(k_low <= X <= k_high | n, expected)`` (0 when ``k_low > k_high``).
    Schuirmann (1987), J Pharmacokinet Biopharm 15:657-680; Chow, Shao & Wang (2008), section 4.1.
    """
    _check_alpha(alpha1)
    if not (0 < low < expected < high < 1):
        raise ValueError(f"need 0 < low < expected < high < 1, got {low}, {expected}, {high}")
    n = np.atleast_1d(np.asarray(n, dtype=int))
    k_low, k_high = _exact_bounds(n, low=low, high=high, alpha1=alpha1)
    power = stats.binom.cdf(k_high, n, expected) - stats.binom.cdf(k_low - 1, n, expected)
    return np.where(k_low <= k_high, power, 0.0)


def smallest_n(power_at: Callable[[np.ndarray], np.ndarray], *, power: float, n_max: int = 200_000) -> int:
    """Smallest ``n >= 2`` with ``power_at(n) >= power`` (searched in growing blocks; saw-toothed powers allowed).

    Raises
    ------
    ValueError
        When no ``n <= n_max`` reaches the power.
    """
    start = 2
    while start <= n_max:
        ns = np.arange(start, min(start * 4, n_max) + 1)
        hit = np.nonzero(np.atleast_1d(power_at(ns)) >= power)[0]
        if len(hit):
            return int(ns[hit[0]])
        start = int(ns[-1]) + 1
    raise ValueError(f"no n up to {n_max} reaches power {power}")


def exact_equivalence_sample_size(*, low: float, high: float, expected: float, alpha1: float, power: float,
                                  n_max: int = 200_000) -> int:
    """Smallest ``n`` whose exact TOST (:func:`exact_equivalence_power`) reaches ``power``."""
    exact_equivalence_power(2, low=low, high=high, expected=expected, alpha1=alpha1)  # validates the inputs
    return smallest_n(lambda k: exact_equivalence_power(k, low=low, high=high, expected=expected, alpha1=alpha1),
                      power=power, n_max=n_max)


def wald_equivalence_power(n: float | np.ndarray, *, effect_low: float, effect_high: float, sigma: float,
                           alpha1: float, sigma0_low: float | None = None,
                           sigma0_high: float | None = None) -> np.ndarray:
    """Power of the TOST of a Wald-type statistic: ``max(0, Phi(a_low) + Phi(a_high) - 1)``.

    ``effect_low = theta1 - low`` and ``effect_high = high - theta1`` (both > 0);
    ``a = (sqrt(n) effect - z_{1-alpha1} sigma0) / sigma`` at each boundary, ``sigma0`` the
    null SD there (kappa, Tango) or ``sigma`` (Chow, Shao & Wang 2008, section 3.2).
    """
    if effect_low <= 0 or effect_high <= 0:
        raise ValueError("the anticipated value must lie strictly between the equivalence margins")
    p_low = wald_power(n, effect=effect_low, sigma=sigma, alpha1=alpha1, sigma0=sigma0_low)
    p_high = wald_power(n, effect=effect_high, sigma=sigma, alpha1=alpha1, sigma0=sigma0_high)
    return np.maximum(p_low + p_high - 1.0, 0.0)


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
