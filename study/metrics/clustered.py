"""Intervals that stay valid when a patient contributes several images (patients = clusters).

Every function takes *per-patient* totals (or per-image values with a patient code) and
returns a :class:`study.estimate.Estimate` whose ``method`` names the clustered method:

- :func:`clustered_proportion`: the ratio estimator for clustered binary data
  ``p = sum_k x_k / sum_k n_k`` with the variance of Obuchowski (1998)
  ``var = K / (K - 1) * sum_k (x_k - p n_k)^2 / N^2``; the interval is the Wilson score
  interval on the effective sample size ``N / deff`` with the design effect
  ``deff = var / (p (1 - p) / N)`` (Rao & Scott 1992), so it stays inside [0, 1] and keeps a
  positive width when ``p`` is 0 or 1;
- :func:`clustered_paired_difference`: the same ratio estimator for the difference of two
  paired proportions (model minus reader on the same images; Obuchowski 1998);
- :func:`clustered_mcnemar`: the clustered McNemar test of Durkalski et al. (2003);
- :func:`clustered_kappa`: Cohen's (weighted) kappa with a cluster-robust (linearisation)
  variance: the influence value of every image summed per patient (Yang & Zhou 2014 use the
  same delta-method construction); with one image per patient it is the Fleiss, Cohen &
  Everitt (1969) ASE times ``sqrt(K / (K - 1))``; interval: :func:`bounded_kappa_interval`;
- :func:`clustered_auc`: the nonparametric AUC with the clustered variance of Obuchowski
  (1997), interval on the logit scale (inside [0, 1]);
- :func:`clustered_mean`: a mean (counting bias, MAE) with the cluster-robust (CR1) standard
  error and a t interval on ``K - 1`` degrees of freedom, as statsmodels' OLS with
  ``cov_type="cluster"`` computes it;
- :func:`bca_interval`: the bias-corrected and accelerated bootstrap interval (Efron 1987)
  from patient-bootstrap replicates and leave-one-patient-out (jackknife) values, as
  ``scipy.stats.bootstrap(method="BCa")`` computes it.

References
----------
Obuchowski NA (1997). Nonparametric analysis of clustered ROC curve data. Biometrics
53:567-578.
Obuchowski NA (1998). On the comparison of correlated proportions for clustered data.
Statistics in Medicine 17:1495-1507.
Rao JNK, Scott AJ (1992). A simple method for the analysis of clustered binary data.
Biometrics 48:577-585.
Durkalski VL, Palesch YY, Lipsitz SR, Rust PF (2003). Analysis of clustered matched-pair
data. Statistics in Medicine 22:2417-2428.
Yang Z, Zhou M (2014). Kappa statistic for clustered matched-pair data. Statistics in
Medicine 33:2612-2633.
Efron B (1987). Better bootstrap confidence intervals. JASA 82:171-185; Efron & Tibshirani
(1993), An Introduction to the Bootstrap, ch. 14.3 and eq. 14.15.
Fleiss JL, Cohen J, Everitt BS (1969). Psychological Bulletin 72:323-327.
Cameron AC, Miller DL (2015). A practitioner's guide to cluster-robust inference. J Human
Resources 50:317-372 (CR1 small-sample factor).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import chi2, norm
from scipy.stats import t as t_dist

from study.estimate import Estimate
from study.metrics.intervals import KappaWeights, agreement_weights, bounded_kappa_interval, level_pct, wilson_limits

PATIENTS = "patients as clusters"


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(norm.ppf(0.5 + confidence / 2))


def _totals(x, n, what: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float).ravel()
    n = np.asarray(n, dtype=float).ravel()
    if x.shape != n.shape:
        raise ValueError(f"{what}: successes and trials need one value per patient, got {x.shape} and {n.shape}")
    if (n < 0).any() or (x < 0).any() or (x > n).any():
        raise ValueError(f"{what}: need 0 <= successes <= trials for every patient")
    keep = n > 0
    return x[keep], n[keep]


def proportion_method(confidence: float) -> str:
    return (f"Wilson score on the effective sample size (ratio estimator for clustered binary data, "
            f"Obuchowski 1998; Rao & Scott 1992 design effect), {PATIENTS}, {level_pct(confidence)}")


def clustered_proportion(successes, trials, *, confidence: float = 0.95,
                         reason_if_empty: str = "denominator is zero") -> Estimate:
    """Proportion of images with an event when patients contribute several images.

    Parameters
    ----------
    successes, trials : array_like, shape (K,)
        Per patient: images with the event and images counted (patients with no image
        counted are left out of ``K``).
    confidence : float
        Two-sided level.
    reason_if_empty : str
        Reason when no image is counted.

    Returns
    -------
    Estimate
        ``estimate = sum x / sum n``; ``se`` from the ratio-estimator variance
        ``K/(K-1) sum_k (x_k - p n_k)^2 / N^2`` (Obuchowski 1998, eq. 3); interval: Wilson on
        ``N / deff`` with ``deff = max(1, var / (p(1-p)/N))`` (Rao & Scott 1992). When ``p``
        is 0 or 1 the design effect cannot be estimated and the conservative ``deff = N / K``
        (every patient counts once) is used. Extra: ``k``, ``n`` (images), ``n_clusters``,
        ``design_effect``.

    References
    ----------
    Obuchowski (1998); Rao & Scott (1992); Wilson (1927).
    """
    z = _z(confidence)
    name = proportion_method(confidence)
    x, n = _totals(successes, trials, "clustered_proportion")
    big_n, k_clusters = float(n.sum()), len(n)
    if big_n == 0:
        return Estimate(None, None, None, name, reason=reason_if_empty, k=0, n=0, n_clusters=0)
    p = float(x.sum() / big_n)
    if k_clusters > 1:
        var = k_clusters / (k_clusters - 1) * float(((x - p * n) ** 2).sum()) / big_n ** 2
    else:
        var = float("nan")
    if 0 < p < 1 and np.isfinite(var):
        deff = max(1.0, var / (p * (1 - p) / big_n))
    else:
        deff = big_n / k_clusters
    lo, hi = wilson_limits(p, big_n / deff, z)
    se = float(np.sqrt(var)) if np.isfinite(var) else None
    return Estimate(p, lo, hi, name, se=se, k=round(float(x.sum())), n=round(big_n), n_clusters=k_clusters,
                    design_effect=deff)


def clustered_paired_difference(x_a, x_b, trials, *, confidence: float = 0.95) -> Estimate:
    """Difference of two paired proportions (rater A minus rater B on the same images).

    Parameters
    ----------
    x_a, x_b, trials : array_like, shape (K,)
        Per patient: images right by A, images right by B, images rated by both.

    Returns
    -------
    Estimate
        ``d = sum (x_a - x_b) / N`` with the ratio-estimator variance
        ``K/(K-1) sum_k (D_k - d n_k)^2 / N^2`` (Obuchowski 1998, section 3) and a Wald
        interval kept inside [-1, 1]; not estimable when there is one patient or no
        discordant image (the variance is then 0: no information on the difference).
    """
    z = _z(confidence)
    name = f"Wald, ratio-estimator variance for clustered paired proportions (Obuchowski 1998), {PATIENTS}, " \
           f"{level_pct(confidence)}"
    a = np.asarray(x_a, dtype=float).ravel()
    b = np.asarray(x_b, dtype=float).ravel()
    n = np.asarray(trials, dtype=float).ravel()
    if not (a.shape == b.shape == n.shape):
        raise ValueError("x_a, x_b and trials need one value per patient")
    keep = n > 0
    a, b, n = a[keep], b[keep], n[keep]
    big_n, kc = float(n.sum()), len(n)
    if big_n == 0:
        return Estimate(None, None, None, name, reason="no image rated by both", n=0, n_clusters=0)
    dk = a - b
    d = float(dk.sum() / big_n)
    if kc < 2:
        return Estimate(d, None, None, name, reason="one patient: the clustered variance needs two or more",
                        n=int(big_n), n_clusters=kc)
    var = kc / (kc - 1) * float(((dk - d * n) ** 2).sum()) / big_n ** 2
    if var == 0:
        return Estimate(d, None, None, name, reason="no discordant image: the variance of the difference is 0",
                        se=0.0, n=int(big_n), n_clusters=kc)
    se = float(np.sqrt(var))
    return Estimate(d, max(-1.0, d - z * se), min(1.0, d + z * se), name, se=se, n=int(big_n), n_clusters=kc)


def clustered_mcnemar(a_only, b_only) -> tuple[float | None, float | None]:
    """Clustered McNemar test of Durkalski et al. (2003).

    Parameters
    ----------
    a_only, b_only : array_like, shape (K,)
        Per patient: images right by A only, and right by B only (the discordant pairs).

    Returns
    -------
    statistic, p_value : float or None
        ``X^2 = (sum_k (b_k - c_k))^2 / sum_k (b_k - c_k)^2`` on 1 degree of freedom
        (Durkalski et al. 2003, eq. 3); with one image per patient it is McNemar's chi-square
        without continuity correction. ``(None, None)`` when no patient has a discordant
        balance (the test is undefined); ``p = 1`` when there is no discordant image.
    """
    b = np.asarray(a_only, dtype=float).ravel()
    c = np.asarray(b_only, dtype=float).ravel()
    if b.shape != c.shape:
        raise ValueError("a_only and b_only need one value per patient")
    diff = b - c
    if b.sum() + c.sum() == 0:
        return 0.0, 1.0
    den = float((diff ** 2).sum())
    if den == 0:
        return None, None
    stat = float(diff.sum() ** 2 / den)
    return stat, float(chi2.sf(stat, 1))


MCNEMAR_METHOD = "clustered McNemar test (Durkalski et al. 2003), patients as clusters, two-sided"


# --------------------------------------------------------------------------- kappa
def kappa_influence(table: np.ndarray, *, weights: KappaWeights = None) -> tuple[float, float, np.ndarray]:
    """Kappa, chance agreement and the influence value of an image in each cell.

    ``kappa = (p_o - p_e) / (1 - p_e)``; its gradient in the cell proportions is
    ``g_ab = [w_ab - (1 - kappa)(wbar_a. + wbar_.b)] / (1 - p_e)`` (the terms of the
    Fleiss, Cohen & Everitt 1969 variance); the influence value of an image in cell
    ``(a, b)`` is ``g_ab - sum_ij p_ij g_ij``, so that ``kappa_hat - kappa`` is, to first
    order, the mean of the images' influence values.
    """
    t = np.asarray(table, dtype=float)
    k = t.shape[-1]
    w = agreement_weights(k, weights)
    n = t.sum()
    p = t / n
    row, col = p.sum(axis=1), p.sum(axis=0)
    po = float((w * p).sum())
    pe = float((w * np.outer(row, col)).sum())
    if pe >= 1:
        return float("nan"), pe, np.full((k, k), np.nan)
    kappa = (po - pe) / (1 - pe)
    wr = w @ col  # wbar_i. = sum_j w_ij p_.j
    wc = row @ w  # wbar_.j = sum_i p_i. w_ij
    g = (w - (1 - kappa) * (wr[:, None] + wc[None, :])) / (1 - pe)
    return float(kappa), pe, g - float((p * g).sum())


def kappa_method(confidence: float, transformed: bool = False) -> str:
    scale = "Wald on the Fisher z scale" if transformed else "Wald"
    return (f"{scale}, cluster-robust (linearisation) variance of kappa (Yang & Zhou 2014), {PATIENTS}, "
            f"{level_pct(confidence)}")


def clustered_kappa(patient_tables, *, weights: KappaWeights = None, confidence: float = 0.95) -> Estimate:
    """Cohen's (weighted) kappa with a cluster-robust variance (patients as clusters).

    Parameters
    ----------
    patient_tables : array_like, shape (K, L, L)
        One confusion table per patient (rows = reference, columns = rater, all levels).
    weights : {None, "linear", "quadratic"}
    confidence : float

    Returns
    -------
    Estimate
        ``se`` = ``sqrt(K/(K-1) sum_k U_k^2) / N``, ``U_k`` the sum of patient ``k``'s image
        influence values (:func:`kappa_influence`); interval from
        :func:`bounded_kappa_interval` with ``n_eff`` = number of patients. Extra: ``n``
        (images), ``n_clusters``.

    References
    ----------
    Yang & Zhou (2014); Fleiss, Cohen & Everitt (1969).
    """
    _z(confidence)
    tabs = np.asarray(patient_tables, dtype=float)
    if tabs.ndim != 3 or tabs.shape[1] != tabs.shape[2]:
        raise ValueError(f"patient_tables must have shape (patients, L, L), got {tabs.shape}")
    tabs = tabs[tabs.sum(axis=(1, 2)) > 0]
    kc = len(tabs)
    name = kappa_method(confidence)
    big_n = float(tabs.sum())
    if big_n == 0:
        return Estimate(None, None, None, name, reason="no cases", n=0, n_clusters=0)
    kappa, pe, u = kappa_influence(tabs.sum(axis=0), weights=weights)
    if not np.isfinite(kappa):
        return Estimate(None, None, None, name, reason="chance agreement is 1 (a single level used by both): "
                        "kappa is undefined", n=int(big_n), n_clusters=kc)
    if kc < 2:
        return Estimate(kappa, None, None, name, reason="one patient: the clustered variance needs two or more",
                        n=int(big_n), n_clusters=kc)
    uk = (tabs * u[None]).sum(axis=(1, 2))
    se = float(np.sqrt(kc / (kc - 1) * (uk ** 2).sum()) / big_n)
    if kappa < 1 - 1e-12 and not se > 0:
        return Estimate(kappa, None, None, name, se=se, reason="the cluster-robust standard error is 0: a Wald "
                        "interval of zero width, so no interval is given", n=int(big_n), n_clusters=kc)
    lo, hi, method = bounded_kappa_interval(kappa, se, pe=pe, n_eff=kc, confidence=confidence, method=name,
                                            transformed_method=kappa_method(confidence, transformed=True))
    return Estimate(kappa, lo, hi, method, se=se, n=int(big_n), n_clusters=kc)


# --------------------------------------------------------------------------- AUC
def clustered_auc(scores, truth, clusters, *, confidence: float = 0.95) -> Estimate:
    """Nonparametric AUC with the clustered variance of Obuchowski (1997), logit interval.

    Parameters
    ----------
    scores : array_like, shape (n,)
        Rating per image (higher = more likely positive).
    truth : array_like of bool, shape (n,)
    clusters : array_like, shape (n,)
        Patient of each image.

    Returns
    -------
    Estimate
        ``theta = mean over positive-negative pairs of psi`` (1 if the positive scores
        higher, 1/2 for ties); ``V10`` (per positive image) and ``V01`` (per negative) are
        summed per patient, and ``var = S10/n1 + S01/n0 + 2 S11/(n1 n0)`` with
        ``S10 = K/((K-1) n1) sum_k (V10_k - m_k theta)^2``, ``S01`` likewise and
        ``S11 = K/(K-1) sum_k (V10_k - m_k theta)(V01_k - n_k theta)`` (Obuchowski 1997,
        eqs. 2-5). Interval: ``expit(logit(theta) +/- z se / (theta (1 - theta)))``, inside
        (0, 1). Not estimable at theta = 0 or 1 (complete separation: the variance is 0).
    """
    z = _z(confidence)
    name = (f"Wald on the logit scale, clustered AUC variance (Obuchowski 1997), {PATIENTS}, "
            f"{level_pct(confidence)}")
    s = np.asarray(scores, dtype=float).ravel()
    y = np.asarray(truth, dtype=bool).ravel()
    codes = np.unique(np.asarray(clusters), return_inverse=True)[1].ravel()
    if not (s.shape == y.shape == codes.shape):
        raise ValueError("scores, truth and clusters need one value per image")
    pos, neg = s[y], s[~y]
    n1, n0 = len(pos), len(neg)
    if n1 == 0 or n0 == 0:
        return Estimate(None, None, None, name, reason="needs positive and negative images", n=len(s))
    # psi via ranks: for a positive x, V10 = (#neg < x + 0.5 #neg == x) / n0
    neg_sorted = np.sort(neg)
    pos_sorted = np.sort(pos)
    v10 = (np.searchsorted(neg_sorted, pos, "left") + np.searchsorted(neg_sorted, pos, "right")) / (2 * n0)
    v01 = (n1 - (np.searchsorted(pos_sorted, neg, "left") + np.searchsorted(pos_sorted, neg, "right")) / 2) / n1
    theta = float(v10.mean())
    kc = int(codes.max()) + 1
    v10k = np.bincount(codes[y], weights=v10, minlength=kc)
    v01k = np.bincount(codes[~y], weights=v01, minlength=kc)
    mk = np.bincount(codes[y], minlength=kc).astype(float)
    nk = np.bincount(codes[~y], minlength=kc).astype(float)
    if kc < 2:
        return Estimate(theta, None, None, name, reason="one patient", n=len(s), n_clusters=kc)
    f = kc / (kc - 1)
    r10, r01 = v10k - mk * theta, v01k - nk * theta
    s10 = f / n1 * float((r10 ** 2).sum())
    s01 = f / n0 * float((r01 ** 2).sum())
    s11 = f * float((r10 * r01).sum())
    var = s10 / n1 + s01 / n0 + 2 * s11 / (n1 * n0)
    se = float(np.sqrt(max(var, 0.0)))
    if theta <= 0 or theta >= 1 or se == 0:
        return Estimate(theta, None, None, name, se=se, n=len(s), n_clusters=kc,
                        reason=f"AUC = {theta:g}: complete separation, the variance is 0 (not estimable)")
    lg = float(np.log(theta / (1 - theta)))
    sl = se / (theta * (1 - theta))
    return Estimate(theta, float(1 / (1 + np.exp(-(lg - z * sl)))), float(1 / (1 + np.exp(-(lg + z * sl)))),
                    name, se=se, n=len(s), n_clusters=kc)


# --------------------------------------------------------------------------- means
def clustered_mean(values, clusters, *, confidence: float = 0.95, what: str = "mean") -> Estimate:
    """Mean of per-image values with a cluster-robust (CR1) standard error and t interval.

    ``se^2 = K/(K-1) sum_k (S_k - n_k mean)^2 / N^2`` (``S_k`` the patient's sum), the
    sandwich variance of an intercept-only OLS fit with the CR1 factor ``K/(K-1)``, and the
    interval ``mean +/- t_{K-1} se`` -- what ``statsmodels`` OLS with
    ``cov_type="cluster"`` and ``use_t=True`` reports (Cameron & Miller 2015).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    name = f"t, cluster-robust (CR1) standard error, {PATIENTS}, {level_pct(confidence)}"
    v = np.asarray(values, dtype=float).ravel()
    codes = np.unique(np.asarray(clusters), return_inverse=True)[1].ravel()
    if v.shape != codes.shape:
        raise ValueError("values and clusters need one value per image")
    if not np.isfinite(v).all():
        raise ValueError(f"{what}: values must be finite")
    if v.size == 0:
        return Estimate(None, None, None, name, reason="no cases", n=0, n_clusters=0)
    kc = int(codes.max()) + 1
    m = float(v.mean())
    if kc < 2:
        return Estimate(m, None, None, name, reason="one patient", n=v.size, n_clusters=kc)
    sk = np.bincount(codes, weights=v - m, minlength=kc)
    se = float(np.sqrt(kc / (kc - 1) * (sk ** 2).sum()) / v.size)
    q = float(t_dist.ppf(0.5 + confidence / 2, kc - 1))
    return Estimate(m, m - q * se, m + q * se, name, se=se, n=v.size, n_clusters=kc)


# --------------------------------------------------------------------------- BCa
def bca_method(n_replicates: int, confidence: float) -> str:
    return (f"BCa bootstrap resampling patients (Efron 1987), {n_replicates} replicates, {level_pct(confidence)}")


def bca_interval(point: float, replicates, jackknife, *, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Bias-corrected and accelerated (BCa) bootstrap interval.

    Parameters
    ----------
    point : float
        The statistic on the observed data.
    replicates : array_like, shape (B,)
        Bootstrap replicates (non-finite ones are left out).
    jackknife : array_like, shape (K,)
        The statistic with each resampled unit (patient) left out in turn.

    Returns
    -------
    (low, high)
        ``z0 = Phi^-1(#(theta* < theta) + #(theta* <= theta)) / 2B)``,
        ``a = sum U^3 / (6 (sum U^2)^1.5)`` with ``U_i = (K-1)(mean theta_(.) - theta_(i))``,
        limits at the percentiles ``Phi(z0 + (z0 + z_a) / (1 - a (z0 + z_a)))`` (Efron &
        Tibshirani 1993, eqs. 14.10-14.15; the construction of ``scipy.stats.bootstrap``).
        ``(None, None)`` when no replicate is finite or the acceleration is undefined (all
        jackknife values equal).
    """
    b = np.asarray(replicates, dtype=float).ravel()
    b = b[np.isfinite(b)]
    jk = np.asarray(jackknife, dtype=float).ravel()
    jk = jk[np.isfinite(jk)]
    if b.size == 0 or jk.size < 2 or not np.isfinite(point):
        return None, None
    alpha = (1 - confidence) / 2
    z0 = float(ndtri(((b < point).sum() + (b <= point).sum()) / (2 * b.size)))
    kk = float(jk.size)
    u = (kk - 1) * (jk.mean() - jk)
    den = float((u ** 2).sum() / kk ** 2)
    if den == 0 or not np.isfinite(z0):
        return None, None
    a_hat = float((u ** 3).sum() / kk ** 3) / 6 / den ** 1.5
    za = float(ndtri(alpha))
    lo_q = ndtr(z0 + (z0 + za) / (1 - a_hat * (z0 + za)))
    hi_q = ndtr(z0 + (z0 - za) / (1 - a_hat * (z0 - za)))
    lo, hi = np.percentile(b, [100 * lo_q, 100 * hi_q])
    return float(lo), float(hi)


def bca_estimate(point: float | None, replicates, jackknife, *, confidence: float = 0.95,
                 n_replicates: int | None = None) -> Estimate:
    """:func:`bca_interval` as an :class:`Estimate` (``se`` = SD of the finite replicates).

    Not estimable (with the reason) when every replicate equals the estimate (a statistic
    at its bound in every resample: the bootstrap carries no information on its spread).
    """
    b = np.asarray(replicates, dtype=float).ravel()
    name = bca_method(n_replicates or b.size, confidence)
    if point is None or not np.isfinite(point):
        return Estimate(None, None, None, name, reason="undefined on the observed data")
    fin = b[np.isfinite(b)]
    n_bad = int(b.size - fin.size)
    nu = n_bad or None
    if fin.size and np.all(fin == point):
        return Estimate(point, None, None, name, reason="every bootstrap replicate equals the estimate: "
                        "no interval from the bootstrap", n_undefined=nu)
    lo, hi = bca_interval(point, fin, jackknife, confidence=confidence)
    se = float(fin.std(ddof=1)) if fin.size > 1 else None
    if lo is None:
        return Estimate(point, None, None, name, se=se, reason="BCa acceleration undefined (all jackknife values "
                        "equal)", n_undefined=nu)
    return Estimate(float(point), lo, hi, name, se=se, n_undefined=nu)
