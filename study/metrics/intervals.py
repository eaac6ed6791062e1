"""Confidence intervals: binomial proportions and Cohen's kappa with its asymptotic SE.

- Binomial proportions: Wilson score (default) or Clopper-Pearson exact intervals, computed
  by statsmodels :func:`statsmodels.stats.proportion.proportion_confint`.
- Cohen's kappa (unweighted, linear / Cicchetti-Allison or quadratic / Fleiss-Cohen agreement
  weights) with the large-sample standard error of Fleiss, Cohen & Everitt (1969), the
  "ASE" printed by SAS PROC FREQ (AGREE option) and by statsmodels ``cohens_kappa``, and the
  Wald interval ``kappa +/- z * ASE``.

Functions come in two flavours: scalar ones returning :class:`study.estimate.Estimate`
(:func:`binomial_ci`, :func:`cohen_kappa`) and vectorised ones working on stacks of
confusion matrices with shape ``(..., K, K)`` (:func:`kappa_stacked`,
:func:`kappa_ase_stacked`), used by the bootstrap and the coverage simulation.

References
----------
Fleiss JL, Cohen J, Everitt BS (1969). Large sample standard errors of kappa and weighted
kappa. Psychological Bulletin 72(5):323-327.
SAS Institute. The FREQ procedure: Tests and measures of agreement (Kappa statistics).
Wilson EB (1927). Probable inference, the law of succession, and statistical inference.
JASA 22:209-212.
Clopper CJ, Pearson ES (1934). The use of confidence or fiducial limits illustrated in the
case of the binomial. Biometrika 26:404-413.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.stats import norm

from study.estimate import Estimate

BinomialMethod = Literal["wilson", "clopper_pearson"]
KappaWeights = Literal["linear", "quadratic"] | None

_BINOMIAL_NAMES = {"wilson": "Wilson score", "clopper_pearson": "Clopper-Pearson exact"}
_STATSMODELS_METHOD = {"wilson": "wilson", "clopper_pearson": "beta"}
KAPPA_METHOD = "Wald, ASE of Fleiss, Cohen & Everitt (1969)"


def level_pct(confidence: float) -> str:
    """``0.95 -> '95%'``, ``0.9 -> '90%'``, ``0.975 -> '97.5%'``."""
    return f"{100 * confidence:g}%"


def _check_confidence(confidence: float) -> None:
    """The one range rule for a confidence level: :data:`study.options.ConfidenceLevel`."""
    from pydantic import TypeAdapter, ValidationError

    from study.options import ConfidenceLevel

    try:
        TypeAdapter(ConfidenceLevel).validate_python(confidence)
    except ValidationError as e:
        raise ValueError(f"confidence {confidence!r}: {e.errors()[0]['msg']} (a two-sided level in (0.5, 1))") from None


def binomial_method_name(method: BinomialMethod, confidence: float) -> str:
    if method not in _BINOMIAL_NAMES:
        raise ValueError(f"binomial interval method must be one of {sorted(_BINOMIAL_NAMES)}, got {method!r}")
    return f"{_BINOMIAL_NAMES[method]}, {level_pct(confidence)}"


def undefined(method: str, reason: str, **extra) -> Estimate:
    """An estimate that cannot be computed (e.g. a zero denominator): ``null`` values and a reason."""
    return Estimate(None, None, None, method, extra={"reason": reason, **extra})  # type: ignore[arg-type]


def binomial_ci(k: int, n: int, *, confidence: float = 0.95, method: BinomialMethod = "wilson",
                reason_if_empty: str = "denominator is zero") -> Estimate:
    """Proportion ``k / n`` with a Wilson score or Clopper-Pearson interval.

    Parameters
    ----------
    k, n : int
        Successes and trials, ``0 <= k <= n``.
    confidence : float
        Two-sided confidence level.
    method : {"wilson", "clopper_pearson"}
        Interval; computed by statsmodels ``proportion_confint`` (method ``"wilson"`` or
        ``"beta"``).
    reason_if_empty : str
        Reason reported when ``n == 0`` (the estimate is then undefined: all values ``None``).

    Returns
    -------
    Estimate
        ``extra`` carries ``k`` and ``n``.

    References
    ----------
    Wilson (1927); Clopper & Pearson (1934); Brown, Cai & DasGupta (2001), Statistical
    Science 16:101-133.
    """
    from statsmodels.stats.proportion import proportion_confint

    _check_confidence(confidence)
    name = binomial_method_name(method, confidence)
    k, n = int(k), int(n)
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return undefined(name, reason_if_empty, k=0, n=0)
    lo, hi = proportion_confint(k, n, alpha=1 - confidence, method=_STATSMODELS_METHOD[method])
    return Estimate(k / n, float(lo), float(hi), name, extra={"k": k, "n": n})


# --------------------------------------------------------------------------- kappa
def agreement_weights(k: int, weights: KappaWeights) -> np.ndarray:
    """Agreement weight matrix ``w_ij`` (1 on the diagonal) for ``k`` ordered levels.

    ``None``: identity (unweighted kappa); ``"linear"``: Cicchetti-Allison
    ``1 - |i-j|/(k-1)``; ``"quadratic"``: Fleiss-Cohen ``1 - (i-j)^2/(k-1)^2``. Scores are
    the level indices, so a level nobody used still counts in the distance (SAS PROC FREQ
    with ``SCORES=TABLE`` on index scores).
    """
    i = np.arange(k)
    d = np.abs(i[:, None] - i[None, :]).astype(float)
    if weights is None:
        return np.eye(k)
    if k < 2:
        return np.ones((k, k))
    if weights == "linear":
        return 1.0 - d / (k - 1)
    if weights == "quadratic":
        return 1.0 - (d / (k - 1)) ** 2
    raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")


def _kappa_parts(table: np.ndarray, w: np.ndarray):
    table = np.asarray(table, dtype=float)
    n = table.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = table / n[..., None, None]
        row = p.sum(axis=-1)  # reference marginals p_i.
        col = p.sum(axis=-2)  # rater marginals p_.j
        po = (w * p).sum(axis=(-2, -1))
        pe = (w * row[..., :, None] * col[..., None, :]).sum(axis=(-2, -1))
        kappa = (po - pe) / (1.0 - pe)
    return n, p, row, col, po, pe, kappa


def kappa_stacked(tables: np.ndarray, *, weights: KappaWeights = None) -> np.ndarray:
    """Cohen's kappa for every ``K x K`` table in a stack ``(..., K, K)``; NaN where undefined."""
    tables = np.asarray(tables, dtype=float)
    w = agreement_weights(tables.shape[-1], weights)
    *_, kappa = _kappa_parts(tables, w)
    return kappa


def kappa_ase_stacked(tables: np.ndarray, *, weights: KappaWeights = None) -> tuple[np.ndarray, np.ndarray]:
    """Kappa and its asymptotic SE (Fleiss, Cohen & Everitt 1969) for a stack of tables.

    With agreement weights ``w_ij``, ``p_o = sum w p``, ``p_e = sum w p_i. p_.j``,
    ``wbar_i. = sum_j p_.j w_ij``, ``wbar_.j = sum_i p_i. w_ij``::

        var = ( sum_ij p_ij [w_ij - (wbar_i. + wbar_.j)(1 - kappa)]^2
                - [kappa - p_e (1 - kappa)]^2 ) / ( (1 - p_e)^2 n )

    (SAS PROC FREQ, "Weighted kappa coefficient"; the unweighted case is ``w = I``).

    Returns
    -------
    kappa, ase : ndarray
        Shape ``tables.shape[:-2]``; NaN where kappa is undefined (``p_e = 1`` or ``n = 0``).
    """
    tables = np.asarray(tables, dtype=float)
    w = agreement_weights(tables.shape[-1], weights)
    n, p, row, col, po, pe, kappa = _kappa_parts(tables, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        wbar_row = (w * col[..., None, :]).sum(axis=-1)  # wbar_i. = sum_j p_.j w_ij
        wbar_col = (w * row[..., :, None]).sum(axis=-2)  # wbar_.j = sum_i p_i. w_ij
        k1 = (1.0 - kappa)[..., None, None]
        term = (p * (w - (wbar_row[..., :, None] + wbar_col[..., None, :]) * k1) ** 2).sum(axis=(-2, -1))
        var = (term - (kappa - pe * (1.0 - kappa)) ** 2) / ((1.0 - pe) ** 2 * n)
        ase = np.sqrt(np.clip(var, 0.0, None))
    return kappa, np.where(np.isfinite(kappa), ase, np.nan)


def wilson_limits(p: float, n_eff: float, z: float) -> tuple[float, float]:
    """Wilson score limits for proportion ``p`` on a (possibly fractional) sample size."""
    z2 = z * z
    centre = (p + z2 / (2 * n_eff)) / (1 + z2 / n_eff)
    half = z * np.sqrt(p * (1 - p) / n_eff + z2 / (4 * n_eff ** 2)) / (1 + z2 / n_eff)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def bounded_kappa_interval(kappa: float, se: float, *, pe: float, n_eff: float, confidence: float,
                           method: str, transformed_method: str) -> tuple[float, float, str]:
    """An interval for kappa that stays in [-1, 1] and has positive width at kappa = 1.

    - the Wald interval ``kappa +/- z se`` when it lies inside [-1, 1] (``method``);
    - otherwise the Wald interval on the Fisher z scale, ``tanh(atanh(kappa) +/- z se /
      (1 - kappa^2))`` (``transformed_method``);
    - at ``kappa = 1`` (no disagreement; the variance is 0): the upper Wilson limit ``u``
      for 0 disagreements in ``n_eff`` units bounds the weighted disagreement, and
      ``kappa >= 1 - u / (1 - p_e)`` with ``p_e`` held at its observed value.
    """
    _check_confidence(confidence)
    z = float(norm.ppf(0.5 + confidence / 2))
    if kappa >= 1 - 1e-12:
        _, u = wilson_limits(0.0, n_eff, z)
        return max(-1.0, 1 - u / (1 - pe)), 1.0, (
            f"score bound at kappa = 1: 1 - (upper Wilson limit of 0 disagreements in {n_eff:g} units) / (1 - p_e), "
            f"{level_pct(confidence)}")
    lo, hi = kappa - z * se, kappa + z * se
    if -1 <= lo and hi <= 1:
        return lo, hi, method
    zk = float(np.arctanh(np.clip(kappa, -1 + 1e-15, 1 - 1e-15)))
    sz = se / (1 - kappa ** 2)
    return float(np.tanh(zk - z * sz)), float(np.tanh(zk + z * sz)), transformed_method


def bounded_unit_interval(value: float, se: float, q: float) -> tuple[float, float, bool] | None:
    """An interval for a quantity in [0, 1] (AUC, AP, a figure of merit) that stays inside.

    ``value +/- q se`` when it lies inside [0, 1]; otherwise the interval on the logit scale,
    ``expit(logit(value) +/- q se / (value (1 - value)))`` (the delta method; Pepe 2003, The
    Statistical Evaluation of Medical Tests, section 5.2.2, for the AUC). Returns
    ``(low, high, transformed)``, or ``None`` when ``value`` is 0 or 1 or ``se`` is 0 (no
    interval of positive width follows from the standard error).
    """
    if not np.isfinite(se) or se <= 0:
        return None
    lo, hi = value - q * se, value + q * se
    if 0 <= lo and hi <= 1:
        return float(lo), float(hi), False
    if not 0 < value < 1:
        return None
    lg = float(np.log(value / (1 - value)))
    half = q * se / (value * (1 - value))
    return float(1 / (1 + np.exp(-(lg - half)))), float(1 / (1 + np.exp(-(lg + half)))), True


def kappa_method_name(confidence: float) -> str:
    return f"{KAPPA_METHOD}, {level_pct(confidence)}"


def cohen_kappa(confusion, *, weights: KappaWeights = None, confidence: float = 0.95) -> Estimate:
    """Cohen's (weighted) kappa of a square confusion matrix with its ASE and Wald interval.

    Parameters
    ----------
    confusion : array_like, shape (K, K)
        Counts; rows = reference, columns = rater (kappa is symmetric in the two raters).
        Include every protocol level, also unused ones: they fix the weight distances.
    weights : {None, "linear", "quadratic"}
        Unweighted, Cicchetti-Allison linear or Fleiss-Cohen quadratic agreement weights.
    confidence : float
        Level of the two-sided Wald interval ``kappa +/- z * ASE``; where that interval leaves
        [-1, 1], the Wald interval on the Fisher z scale; at kappa = 1 a score bound
        (:func:`bounded_kappa_interval`): never clipped, never of zero width (an ASE of 0
        below kappa = 1, e.g. on one case, gives the point estimate with no interval and a
        ``reason``).

    Returns
    -------
    Estimate
        ``se`` = ASE (Fleiss, Cohen & Everitt 1969); undefined (``None`` values, with a
        ``reason``) when there are no cases or when chance agreement is 1 (both raters used
        a single, identical level).

    References
    ----------
    Cohen J (1960), Educ Psychol Meas 20:37-46; Cohen J (1968), Psychol Bull 70:213-220;
    Fleiss, Cohen & Everitt (1969), Psychol Bull 72:323-327; SAS PROC FREQ AGREE.
    """
    _check_confidence(confidence)
    table = np.asarray(confusion, dtype=float)
    if table.ndim != 2 or table.shape[0] != table.shape[1]:
        raise ValueError(f"confusion must be a square matrix, got shape {table.shape}")
    if (table < 0).any():
        raise ValueError("confusion counts must be >= 0")
    name = kappa_method_name(confidence)
    n = table.sum()
    if n == 0:
        return undefined(name, "no cases", n=0)
    kappa, ase = kappa_ase_stacked(table, weights=weights)
    kappa, ase = float(kappa), float(ase)
    if not np.isfinite(kappa):
        return undefined(name, "chance agreement is 1 (a single level used by both): kappa is undefined", n=int(n))
    pe = float(_kappa_parts(table, agreement_weights(table.shape[0], weights))[5])
    if kappa < 1 - 1e-12 and not ase > 0:
        # e.g. one case: the ASE is 0 and the Wald interval would have zero width
        return Estimate(kappa, None, None, name, se=ase, extra={
            "n": int(n), "reason": f"the asymptotic standard error is 0 on {int(n)} case(s): "
                                   "a Wald interval of zero width, so no interval is given"})
    lo, hi, method = bounded_kappa_interval(
        kappa, ase, pe=pe, n_eff=float(n), confidence=confidence, method=name,
        transformed_method=f"Wald on the Fisher z scale, ASE of Fleiss, Cohen & Everitt (1969), {level_pct(confidence)}")
    return Estimate(kappa, lo, hi, method, se=ase, extra={"n": int(n)})
