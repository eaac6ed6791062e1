"""Binomial intervals and Cohen's kappa with its ASE, pinned to published tables and peers.

References: SAS/STAT User's Guide, PROC FREQ, "Kappa Statistics" example (the 3x3 table
[[0,4,1],[0,8,0],[0,1,5]], as also printed in statsmodels' inter_rater.py); Fleiss, Cohen &
Everitt (1969), Psychol Bull 72:323-327 (the 3x3 table of 200 subjects); statsmodels
``cohens_kappa`` and ``proportion_confint`` as peer implementations.
"""

import numpy as np
import pytest
from statsmodels.stats.inter_rater import cohens_kappa as sm_kappa
from statsmodels.stats.proportion import proportion_confint

from study.metrics.intervals import (agreement_weights, binomial_ci, cohen_kappa, kappa_ase_stacked,
                                     kappa_stacked)

SAS = [[0, 4, 1], [0, 8, 0], [0, 1, 5]]
FCE = [[106, 10, 4], [22, 28, 10], [2, 12, 6]]


def r4(x):
    return round(x, 4)


def test_sas_proc_freq_simple_kappa():
    e = cohen_kappa(SAS)
    assert (r4(e.estimate), r4(e.se), r4(e.ci_low), r4(e.ci_high)) == (0.4842, 0.1380, 0.2137, 0.7547)
    assert e.method == "Wald, ASE of Fleiss, Cohen & Everitt (1969), 95%"


def test_sas_proc_freq_linear_weighted_kappa():
    e = cohen_kappa(SAS, weights="linear")
    assert (r4(e.estimate), r4(e.se), r4(e.ci_low), r4(e.ci_high)) == (0.4701, 0.1457, 0.1845, 0.7558)


def test_fleiss_cohen_everitt_1969():
    e = cohen_kappa(FCE)
    assert (r4(e.estimate), r4(e.se)) == (0.4286, 0.0537)
    q = cohen_kappa(FCE, weights="quadratic")
    assert (r4(q.estimate), r4(q.se)) == (0.5667, 0.0557)


@pytest.mark.parametrize("weights,wt", [(None, None), ("linear", "linear"), ("quadratic", "quadratic")])
@pytest.mark.parametrize("seed", range(5))
def test_kappa_and_ase_equal_statsmodels(weights, wt, seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    t = rng.integers(0, 30, size=(k, k)) + np.diag(rng.integers(5, 40, size=k))
    ours = cohen_kappa(t, weights=weights, confidence=0.9)
    ref = sm_kappa(t, wt=wt) if wt else sm_kappa(t)
    assert ours.estimate == pytest.approx(ref.kappa, abs=1e-12)
    assert ours.se == pytest.approx(ref.std_kappa, abs=1e-12)
    z = 1.6448536269514722
    assert ours.ci_low == pytest.approx(max(-1, ref.kappa - z * ref.std_kappa), abs=1e-12)
    assert ours.method.endswith("90%")


def test_stacked_equals_scalar():
    rng = np.random.default_rng(1)
    tables = rng.integers(0, 20, size=(7, 4, 4))
    for w in (None, "linear", "quadratic"):
        ks, ases = kappa_ase_stacked(tables, weights=w)
        np.testing.assert_allclose(ks, kappa_stacked(tables, weights=w))
        for t, k, s in zip(tables, ks, ases):
            ref = sm_kappa(t, wt=w) if w else sm_kappa(t)
            assert k == pytest.approx(ref.kappa) and s == pytest.approx(ref.std_kappa)


def test_unused_level_keeps_its_distance():
    # a middle level nobody used still separates its neighbours in the weights
    t3 = [[5, 0, 2], [0, 0, 0], [1, 0, 6]]
    assert agreement_weights(3, "linear")[0, 2] == 0.0
    assert cohen_kappa(t3, weights="linear").estimate == pytest.approx(sm_kappa(t3, wt="linear").kappa)


def test_kappa_undefined_cases():
    e = cohen_kappa([[0, 0], [0, 0]])
    assert e.estimate is None and e.extra["reason"] == "no cases"
    e = cohen_kappa([[10, 0], [0, 0]])
    assert e.estimate is None and "chance agreement" in e.extra["reason"]
    d = e.to_dict()
    assert d["estimate"] is None and d["ci_low"] is None
    with pytest.raises(ValueError):
        cohen_kappa([[1, 2, 3]])


def test_perfect_agreement_has_zero_ase():
    e = cohen_kappa([[5, 0], [0, 7]])
    assert e.estimate == 1.0 and e.se == 0.0 and e.ci_high == 1.0
    # issue 13 item 2: no zero-width interval at the bound; the score bound with p_e held fixed
    pe = (5 / 12) ** 2 + (7 / 12) ** 2
    u = proportion_confint(0, 12, method="wilson")[1]
    assert e.ci_low == pytest.approx(1 - u / (1 - pe), abs=1e-12)
    assert e.method.startswith("score bound at kappa = 1")


def test_kappa_interval_never_clipped_at_one():
    # Wald would end above 1 here; the interval moves to the Fisher z scale instead of being clipped
    e = cohen_kappa([[9, 1], [0, 4]])
    z = 1.959963984540054
    assert e.estimate + z * e.se > 1
    assert e.ci_high < 1 and e.ci_low < e.estimate and e.method.startswith("Wald on the Fisher z scale")
    zk, sz = np.arctanh(e.estimate), e.se / (1 - e.estimate ** 2)
    assert (e.ci_low, e.ci_high) == (pytest.approx(np.tanh(zk - z * sz)), pytest.approx(np.tanh(zk + z * sz)))


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (1, 1), (57, 123), (999, 1000)])
@pytest.mark.parametrize("method,sm", [("wilson", "wilson"), ("clopper_pearson", "beta")])
def test_binomial_ci_equals_statsmodels(k, n, method, sm):
    for conf in (0.95, 0.9):
        e = binomial_ci(k, n, confidence=conf, method=method)
        lo, hi = proportion_confint(k, n, alpha=1 - conf, method=sm)
        assert (e.ci_low, e.ci_high) == (pytest.approx(lo, abs=1e-15), pytest.approx(hi, abs=1e-15))
        assert e.estimate == k / n
    assert binomial_ci(3, 10).method == "Wilson score, 95%"
    assert binomial_ci(3, 10, method="clopper_pearson", confidence=0.9).method == "Clopper-Pearson exact, 90%"


def test_binomial_ci_zero_denominator_and_bad_input():
    e = binomial_ci(0, 0, reason_if_empty="no reference case of grade IV")
    assert e.estimate is None and e.extra["reason"] == "no reference case of grade IV"
    with pytest.raises(ValueError):
        binomial_ci(5, 3)
    with pytest.raises(ValueError):
        binomial_ci(1, 3, method="wald")
