"""Intervals for clustered data (patients with several images), checked against peers.

References used here:
- statsmodels OLS with ``cov_type="cluster"`` (CR1 sandwich, t on K-1 df) for the ratio
  estimator's variance and the cluster-robust mean;
- statsmodels ``cohens_kappa`` (Fleiss, Cohen & Everitt 1969 ASE, pinned to SAS PROC FREQ in
  tests/test_intervals.py) for the clustered kappa variance with one image per patient;
- statsmodels ``mcnemar`` (chi-square without continuity correction) for the clustered
  McNemar test with one image per patient (Durkalski et al. 2003 reduce to it);
- scikit-learn ``roc_auc_score`` and the DeLong covariance of study.metrics.roc for the
  clustered AUC (Obuchowski 1997) with one image per patient;
- ``scipy.stats.bootstrap(method="BCa")`` for the BCa interval, fed the same replicates;
- the patient bootstrap for the clustered kappa and proportion standard errors.
"""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.stats import bootstrap
from sklearn.metrics import roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.inter_rater import cohens_kappa as sm_kappa
from statsmodels.stats.proportion import proportion_confint

from study.metrics.clustered import (bca_estimate, bca_interval, clustered_auc, clustered_kappa, clustered_mcnemar,
                                     clustered_mean, clustered_paired_difference, clustered_proportion)


def _clustered_binary(rng, n_patients, rho, p=0.7):
    """Patients of 1-4 images; an image's outcome equals its patient's shared draw with probability rho."""
    sizes = rng.integers(1, 5, size=n_patients)
    shared = rng.random(n_patients) < p
    patient = np.repeat(np.arange(n_patients), sizes)
    own = rng.random(patient.size) < p
    y = np.where(rng.random(patient.size) < rho, shared[patient], own)
    return y.astype(float), patient


def _sm_cluster(y, patient):
    fit = sm.OLS(y, np.ones((len(y), 1))).fit(cov_type="cluster", cov_kwds={"groups": patient}, use_t=True)
    return fit


def test_proportion_variance_is_statsmodels_cluster_robust_variance():
    rng = np.random.default_rng(3)
    y, patient = _clustered_binary(rng, 80, 0.6)
    x = np.bincount(patient, weights=y)
    n = np.bincount(patient)
    e = clustered_proportion(x, n)
    fit = _sm_cluster(y, patient)
    assert e.estimate == pytest.approx(y.mean(), abs=1e-15)
    assert e.se == pytest.approx(float(fit.bse[0]), rel=1e-10)
    # Wilson on the effective sample size N / deff
    n_eff = len(y) / e.design_effect
    lo, hi = proportion_confint(e.estimate * n_eff, n_eff, method="wilson")
    assert (e.ci_low, e.ci_high) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))
    assert e.design_effect > 1.2 and e.n_clusters == 80 and e.n == len(y)
    assert "Obuchowski 1998" in e.method and "Rao & Scott 1992" in e.method


def test_proportion_at_bounds_has_width_and_stays_inside():
    for x in ([0, 0, 0], [2, 1, 3]):
        e = clustered_proportion(x, [2, 1, 3])
        assert 0 <= e.ci_low < e.ci_high <= 1
        assert e.design_effect == pytest.approx(2.0)  # N / K: every patient counts once
    lo, hi = proportion_confint(0, 3, method="wilson")
    e = clustered_proportion([0, 0, 0], [2, 1, 3])
    assert (e.ci_low, e.ci_high) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))
    empty = clustered_proportion([0, 0], [0, 0], reason_if_empty="no grade III")
    assert empty.estimate is None and empty.reason == "no grade III"
    with pytest.raises(ValueError, match="successes <= trials"):
        clustered_proportion([3], [2])


def test_clustered_mean_is_statsmodels_cluster_ols():
    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 5, size=60)
    patient = np.repeat(np.arange(60), sizes)
    d = rng.normal(size=60)[patient] + rng.normal(size=patient.size) + 0.3
    e = clustered_mean(d, patient)
    fit = _sm_cluster(d, patient)
    lo, hi = fit.conf_int(0.05)[0]
    assert e.estimate == pytest.approx(float(fit.params[0]), abs=1e-12)
    assert e.se == pytest.approx(float(fit.bse[0]), rel=1e-10)
    assert (e.ci_low, e.ci_high) == (pytest.approx(lo, abs=1e-10), pytest.approx(hi, abs=1e-10))


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed", range(3))
def test_kappa_one_image_per_patient_is_fleiss_cohen_everitt_ase(weights, seed):
    rng = np.random.default_rng(seed)
    k = 4
    ref = rng.integers(0, k, size=150)
    rat = np.where(rng.random(150) < 0.6, ref, rng.integers(0, k, size=150))
    tabs = np.zeros((150, k, k))
    tabs[np.arange(150), ref, rat] = 1
    e = clustered_kappa(tabs, weights=weights)
    ref_k = sm_kappa(tabs.sum(axis=0), wt=weights) if weights else sm_kappa(tabs.sum(axis=0))
    assert e.estimate == pytest.approx(ref_k.kappa, abs=1e-12)
    # the clustered variance carries the CR1 factor K / (K - 1)
    assert e.se * np.sqrt(149 / 150) == pytest.approx(ref_k.std_kappa, rel=1e-10)


def _clustered_tables(rng, n_patients, rho, k=4):
    sizes = rng.integers(1, 5, size=n_patients)
    patient = np.repeat(np.arange(n_patients), sizes)
    grade = np.where(rng.random(patient.size) < rho, rng.integers(0, k, n_patients)[patient],
                     rng.integers(0, k, patient.size))
    hard = rng.random(n_patients) < 0.3  # a patient hard for the rater: all their images
    p_right = np.where(hard[patient], 0.3, 0.9)
    rat = np.where(rng.random(patient.size) < p_right, grade, np.clip(grade + rng.choice([-1, 1], patient.size), 0, k - 1))
    tabs = np.zeros((n_patients, k, k))
    np.add.at(tabs, (patient, grade, rat), 1)
    return tabs


@pytest.mark.parametrize("weights", [None, "quadratic"])
def test_clustered_kappa_se_matches_patient_bootstrap(weights):
    from study.metrics.bootstrap import bootstrap_sums
    from study.metrics.intervals import kappa_stacked

    rng = np.random.default_rng(11)
    tabs = _clustered_tables(rng, 300, 0.8)
    e = clustered_kappa(tabs, weights=weights)
    reps = bootstrap_sums(tabs.reshape(len(tabs), -1), n_replicates=4000, seed=1).reshape(-1, 4, 4)
    boot_se = np.nanstd(kappa_stacked(reps, weights=weights), ddof=1)
    assert e.se == pytest.approx(boot_se, rel=0.08)
    assert e.ci_low < e.estimate < e.ci_high <= 1


def test_kappa_at_one_has_positive_width():
    tabs = np.zeros((5, 3, 3))
    for i in range(5):
        tabs[i, i % 3, i % 3] = 2
    e = clustered_kappa(tabs)
    assert e.estimate == 1 and e.ci_high == 1 and -1 <= e.ci_low < 1
    assert e.method.startswith("score bound at kappa = 1")


def test_mcnemar_one_image_per_patient_is_statsmodels_chi2():
    rng = np.random.default_rng(2)
    a = rng.random(120) < 0.7
    b = rng.random(120) < 0.6
    stat, p = clustered_mcnemar((a & ~b).astype(int), (~a & b).astype(int))
    t = [[int((a & b).sum()), int((a & ~b).sum())], [int((~a & b).sum()), int((~a & ~b).sum())]]
    ref = mcnemar(t, exact=False, correction=False)
    assert stat == pytest.approx(ref.statistic, rel=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-12)
    assert clustered_mcnemar([0, 0], [0, 0]) == (0.0, 1.0)


def test_paired_difference_variance_is_cluster_robust_mean_of_differences():
    rng = np.random.default_rng(8)
    a, patient = _clustered_binary(rng, 70, 0.5, p=0.75)
    b, _ = _clustered_binary(np.random.default_rng(9), 70, 0.5, p=0.6)
    b = b[: len(a)] if len(b) >= len(a) else np.resize(b, len(a))
    xa, xb, n = (np.bincount(patient, weights=v) for v in (a, b, np.ones_like(a)))
    e = clustered_paired_difference(xa, xb, n)
    fit = _sm_cluster(a - b, patient)
    assert e.estimate == pytest.approx(float(fit.params[0]), abs=1e-12)
    assert e.se == pytest.approx(float(fit.bse[0]), rel=1e-10)
    same = clustered_paired_difference([1, 2], [1, 2], [2, 2])
    assert same.ci_low is None and "no discordant" in same.reason


def test_auc_one_image_per_patient_matches_sklearn_and_delong():
    from study.metrics.roc import delong_covariance, fom_parts

    rng = np.random.default_rng(4)
    y = rng.random(400) < 0.4
    s = rng.normal(size=400) + 1.0 * y
    s = np.round(s, 1)  # ties
    e = clustered_auc(s, y, np.arange(400))
    assert e.estimate == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    parts = fom_parts(s[None, :], y.astype(int))
    var = float(np.asarray(delong_covariance(parts)).ravel()[0])
    assert e.se ** 2 == pytest.approx(var, rel=0.01)  # Obuchowski's K/(K-1) versus DeLong's n/(n-1) per group
    assert 0 < e.ci_low < e.estimate < e.ci_high < 1


def test_auc_interval_stays_inside_near_one_and_separation_is_not_estimable():
    rng = np.random.default_rng(6)
    y = np.repeat([True, False], 30)
    s = np.where(y, 3.0, 0.0) + rng.normal(size=60) * 1.1
    e = clustered_auc(s, y, np.arange(60) // 2)
    assert e.estimate > 0.95 and e.ci_high < 1 and e.ci_low > 0.8, e
    sep = clustered_auc(np.where(y, 1.0, 0.0), y, np.arange(60))
    assert sep.estimate == 1 and sep.ci_low is None and "complete separation" in sep.reason


def test_bca_equals_scipy_on_the_same_replicates():
    rng = np.random.default_rng(12)
    y, patient = _clustered_binary(rng, 40, 0.5, p=0.8)
    x = np.bincount(patient, weights=y)
    n = np.bincount(patient)

    def ratio(idx, axis=-1):
        idx = np.asarray(idx, dtype=int)
        return x[idx].sum(axis=axis) / n[idx].sum(axis=axis)

    res = bootstrap((np.arange(40),), ratio, method="BCa", n_resamples=2999, random_state=1, vectorized=True)
    point = x.sum() / n.sum()
    jk = np.array([(x.sum() - x[i]) / (n.sum() - n[i]) for i in range(40)])
    lo, hi = bca_interval(point, res.bootstrap_distribution, jk, confidence=0.95)
    assert (lo, hi) == (pytest.approx(res.confidence_interval.low, abs=1e-12),
                        pytest.approx(res.confidence_interval.high, abs=1e-12))


def test_bca_at_bound_is_not_estimable_with_reason():
    e = bca_estimate(1.0, np.ones(200), np.ones(10))
    assert e.estimate == 1 and e.ci_low is None and "every bootstrap replicate" in e.reason
