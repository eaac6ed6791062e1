"""The tests, multiplicity procedures and power formulas of the analysis plan, against independent references.

References: scipy.stats.binomtest (exact one-sided p), statsmodels proportion_confint
(Clopper-Pearson), statsmodels OLS with cluster-robust covariance (Obuchowski 1998's
clustered variance), statsmodels multipletests (Holm, Bonferroni), statsmodels
NormalIndPower (one-sample z power), a direct search over n with scipy.stats.binom (exact
binomial sample size).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from study.plan import power as pw
from study.plan.hypothesis_tests import (
    clustered_mean,
    exact_goal_test,
    null_values,
    wald_test,
)
from study.plan.multiplicity import adjust_p_values, graphical_adjusted


@pytest.mark.parametrize("k,n,goal", [(45, 50, 0.8), (30, 50, 0.7), (0, 10, 0.3), (10, 10, 0.9), (88, 120, 0.65)])
def test_exact_goal_test_matches_scipy_binomtest_and_clopper_pearson(k, n, goal):
    from statsmodels.stats.proportion import proportion_confint

    out = exact_goal_test(k, n, nulls=[(goal, "higher")], alpha1=0.025)
    assert out.p_value == pytest.approx(stats.binomtest(k, n, goal, alternative="greater").pvalue, rel=1e-12)
    lo, hi = proportion_confint(k, n, alpha=0.05, method="beta")
    assert (out.estimate.ci_low, out.estimate.ci_high) == pytest.approx((lo, hi), abs=1e-12)
    # the decision by p and by the lower bound agree
    assert (out.p_value <= 0.025) == (lo >= goal)
    low = exact_goal_test(k, n, nulls=[(goal, "lower")], alpha1=0.025)
    assert low.p_value == pytest.approx(stats.binomtest(k, n, goal, alternative="less").pvalue, rel=1e-12)


def test_clustered_mean_is_statsmodels_cluster_robust_intercept():
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    clusters = np.repeat(np.arange(40), rng.integers(1, 5, 40))
    y = (rng.random(len(clusters)) < 0.7).astype(float) - (rng.random(len(clusters)) < 0.6)
    mean, se, n, k = clustered_mean(y, clusters)
    fit = sm.OLS(y, np.ones(len(y))).fit(cov_type="cluster", cov_kwds={"groups": clusters})
    assert mean == pytest.approx(fit.params[0], rel=1e-12)
    assert se == pytest.approx(fit.bse[0], rel=1e-10)
    assert (n, k) == (len(y), 40)
    # one case per cluster: the usual SD / sqrt(n) with divisor n - 1
    _m2, se2, _, _ = clustered_mean(y, np.arange(len(y)))
    assert se2 == pytest.approx(np.std(y, ddof=1) / np.sqrt(len(y)), rel=1e-12)


def test_wald_test_non_inferiority_and_equivalence():
    nulls = null_values("non_inferiority", goal=0.0, margin=0.05, margins=None, direction="higher")
    assert nulls == [(-0.05, "higher")]
    out = wald_test(-0.01, 0.02, nulls=nulls, alpha1=0.025, method="Wald")
    assert out.statistic == pytest.approx(2.0)
    assert out.p_value == pytest.approx(stats.norm.sf(2.0))
    assert out.estimate.ci_low == pytest.approx(-0.01 - stats.norm.ppf(0.975) * 0.02)
    # TOST: the larger of the two one-sided p-values
    eq = null_values("equivalence", goal=0.0, margin=None, margins=(-0.1, 0.1), direction="none")
    out = wald_test(0.03, 0.04, nulls=eq, alpha1=0.05, method="Wald")
    assert out.p_value == pytest.approx(max(stats.norm.sf((0.03 + 0.1) / 0.04), stats.norm.cdf((0.03 - 0.1) / 0.04)))
    # lower is better (counting error against a goal): the alternative is below the goal
    mae = null_values("performance_goal", goal=5.0, margin=None, margins=None, direction="lower")
    out = wald_test(4.0, 0.5, nulls=mae, alpha1=0.025, method="Wald")
    assert out.p_value == pytest.approx(stats.norm.cdf(-2.0))
    assert wald_test(None, 0.1, nulls=mae, alpha1=0.025, method="Wald").p_value is None


def test_holm_and_bonferroni_are_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.2]
    for proc in ("holm", "bonferroni"):
        assert adjust_p_values(p, procedure=proc) == pytest.approx(multipletests(p, method=proc)[1].tolist())


@pytest.mark.parametrize("p", [[0.01, 0.04, 0.03, 0.2], [0.001, 0.3, 0.02, 0.011], [0.5, 0.01, 0.02, 0.03]])
def test_graphical_procedure_reduces_to_holm_and_to_the_fixed_sequence(p):
    """Bretz et al. (2009), section 2: equal weights passed on equally = Holm; weight 1 passed down a chain = fixed sequence."""
    from statsmodels.stats.multitest import multipletests

    k = len(p)
    holm_graph = [[0 if i == j else 1 / (k - 1) for j in range(k)] for i in range(k)]
    assert graphical_adjusted(p, weights=[1 / k] * k, transitions=holm_graph) == \
        pytest.approx(multipletests(p, method="holm")[1].tolist())
    chain = [[1.0 if j == i + 1 else 0.0 for j in range(k)] for i in range(k)]
    assert graphical_adjusted(p, weights=[1, 0, 0, 0], transitions=chain) == \
        pytest.approx(np.maximum.accumulate(p).tolist())
    assert adjust_p_values(p, procedure="fixed_sequence") == pytest.approx(np.maximum.accumulate(p).tolist())


def test_graphical_two_primaries_with_a_secondary_each():
    """Bretz et al. (2009) Figure 3 shape: H1, H2 primaries (weight 1/2), each passing to its own secondary."""
    g = [[0, 0.5, 0.5, 0], [0.5, 0, 0, 0.5], [0, 1, 0, 0], [1, 0, 0, 0]]
    q = graphical_adjusted([0.01, 0.02, 0.015, 0.5], weights=[0.5, 0.5, 0, 0], transitions=g)
    # H1: 0.01/0.5 = 0.02; then H2 gets 0.75: 0.02/0.75; H3 gets 0.25 + (0.5*0.5)... all rejected at 0.05
    assert q[0] == pytest.approx(0.02)
    assert max(q[:3]) <= 0.05 and q[3] == pytest.approx(0.5)


def _direct_exact_n(goal, expected, alpha, power):
    """Reference: the smallest n whose exact test (critical k by summing pmf) reaches the power."""
    for n in range(1, 2000):
        ks = np.arange(n + 1)
        tail = np.cumsum(stats.binom.pmf(ks, n, goal)[::-1])[::-1]  # P(X >= k)
        kcrit = int(ks[tail <= alpha][0]) if (tail <= alpha).any() else n + 1
        if stats.binom.pmf(np.arange(kcrit, n + 1), n, expected).sum() >= power:
            return n
    raise AssertionError


@pytest.mark.parametrize("goal,expected,alpha,power", [(0.7, 0.85, 0.025, 0.8), (0.8, 0.9, 0.05, 0.9),
                                                        (0.5, 0.7, 0.025, 0.8), (0.9, 0.97, 0.025, 0.8)])
def test_exact_binomial_sample_size_matches_a_direct_search(goal, expected, alpha, power):
    n = pw.exact_goal_sample_size(goal=goal, expected=expected, alpha1=alpha, power=power)
    assert n == _direct_exact_n(goal, expected, alpha, power)


def test_wald_sample_size_is_statsmodels_normal_power():
    from statsmodels.stats.power import NormalIndPower

    n = pw.wald_sample_size(effect=0.05, sigma=np.sqrt(0.3), alpha1=0.025, power=0.8)
    ref = NormalIndPower().solve_power(effect_size=0.05 / np.sqrt(0.3), alpha=0.025, power=0.8, ratio=0,
                                       alternative="larger")
    assert n == int(np.ceil(ref))
    assert float(pw.wald_power(n, effect=0.05, sigma=np.sqrt(0.3), alpha1=0.025)) == pytest.approx(
        NormalIndPower().power(effect_size=0.05 / np.sqrt(0.3), nobs1=n, alpha=0.025, ratio=0, alternative="larger"))


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_anticipated_kappa_table_has_the_anticipated_kappa_and_margins(weights):
    from study.metrics.intervals import kappa_stacked

    shares = [0.25, 0.3, 0.3, 0.15]
    t = pw.kappa_table(0.72, shares)
    assert float(kappa_stacked(t * 1000, weights=weights)) == pytest.approx(0.72)
    assert t.sum(axis=0) == pytest.approx(shares) and t.sum(axis=1) == pytest.approx(shares)


def test_kappa_sigma_matches_the_spread_of_simulated_kappas():
    """Reference: 4,000 simulated studies of 200 cases from the anticipated table (Monte Carlo SD)."""
    from study.metrics.intervals import kappa_stacked

    shares, n = [0.25, 0.3, 0.3, 0.15], 200
    rng = np.random.default_rng(11)
    tables = rng.multinomial(n, pw.kappa_table(0.75, shares).ravel(), size=4000).reshape(-1, 4, 4)
    sd = float(np.std(kappa_stacked(tables, weights="quadratic")))
    assert pw.kappa_sigma(0.75, shares, weights="quadratic") / np.sqrt(n) == pytest.approx(sd, rel=0.06)


def test_mrmc_power_increases_with_readers_and_cases_and_is_alpha_at_zero_effect():
    comps = {"var_r": 0.0004, "var_error": 0.0009, "cov2": 0.0003, "pilot_cases": 100}
    p0 = pw.mrmc_ai_power(5, 100, effect=0.0, alpha1=0.025, **comps)
    assert p0 == pytest.approx(0.025, abs=1e-9)
    a = pw.mrmc_ai_power(5, 100, effect=0.05, alpha1=0.025, **comps)
    assert pw.mrmc_ai_power(10, 100, effect=0.05, alpha1=0.025, **comps) > a
    assert pw.mrmc_ai_power(5, 400, effect=0.05, alpha1=0.025, **comps) > a


def test_kappa_plan_agrees_with_simulating_the_test_decide_runs():
    """`study plan`'s kappa power against 1,500 simulated studies decided by kappa_goal_test (MC SE ~0.01)."""
    from study.plan.hypothesis_tests import kappa_goal_test

    goal, expected, shares = 0.6, 0.75, [0.4, 0.35, 0.15, 0.1]
    s1, s0 = (pw.kappa_sigma(k, shares, weights="linear") for k in (expected, goal))
    n = pw.wald_sample_size(effect=expected - goal, sigma=s1, sigma0=s0, alpha1=0.025, power=0.8)
    rng = np.random.default_rng(4)
    tables = rng.multinomial(n, pw.kappa_table(expected, shares).ravel(), size=1500).reshape(-1, 4, 4)
    hits = np.mean([kappa_goal_test(t, nulls=[(goal, "higher")], alpha1=0.025, weights="linear").p_value <= 0.025
                    for t in tables])
    predicted = float(pw.wald_power(n, effect=expected - goal, sigma=s1, sigma0=s0, alpha1=0.025))
    assert abs(hits - predicted) < 0.04


def test_paired_plan_agrees_with_simulating_the_paired_test():
    """Paired non-inferiority with the clustered Wald test (several readers per case, or patients): power vs 2,000 studies."""
    margin, psi, delta = 0.05, 0.25, 0.02
    sigma = pw.paired_sigma(delta=delta, discordance=psi)
    n = pw.wald_sample_size(effect=delta + margin, sigma=sigma, alpha1=0.025, power=0.8)
    rng = np.random.default_rng(5)
    u = rng.random((2000, n))
    p10, p01 = (psi + delta) / 2, (psi - delta) / 2
    d = np.where(u < p10, 1.0, np.where(u < p10 + p01, -1.0, 0.0))
    ids = np.arange(n)
    hits = np.mean([wald_test(*clustered_mean(row, ids)[:2], nulls=[(-margin, "higher")], alpha1=0.025,
                              method="").p_value <= 0.025 for row in d])
    assert abs(hits - 0.8) < 0.04


@pytest.mark.parametrize("b,c,n,d0", [(30, 12, 150, -0.05), (5, 9, 60, 0.1), (0, 4, 40, -0.1), (20, 20, 100, 0.05)])
def test_tango_constrained_mle_matches_numerical_maximum_likelihood(b, c, n, d0):
    """Tango (1998) eq. 4 against scipy's bounded maximisation of the multinomial likelihood under p12 - p21 = d0."""
    from scipy import optimize

    from study.plan.hypothesis_tests import tango_constrained_p21

    def negll(p21):
        p12, p22 = p21 + d0, 1 - 2 * p21 - d0
        return -(b * np.log(p12) + c * np.log(p21) + (n - b - c) * np.log(p22))

    lo, hi = max(0.0, -d0) + 1e-12, (1 - d0) / 2 - 1e-12
    ref = optimize.minimize_scalar(negll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}).x
    assert tango_constrained_p21(b, c, n, d0) == pytest.approx(ref, abs=1e-6)


def test_tango_score_is_mcnemar_at_zero_and_its_interval_inverts_the_score():
    from statsmodels.stats.contingency_tables import mcnemar

    from study.plan.hypothesis_tests import tango_paired_test, tango_score

    b, c, n = 30, 12, 150
    chi2 = mcnemar([[n - b - c, b], [c, 0]], exact=False, correction=False).statistic
    assert tango_score(b, c, n, 0.0) ** 2 == pytest.approx(chi2)
    out = tango_paired_test(b, c, n, nulls=[(-0.05, "higher")], alpha1=0.025)
    z = stats.norm.ppf(0.975)
    assert tango_score(b, c, n, out.estimate.ci_low) == pytest.approx(z, abs=1e-8)
    assert tango_score(b, c, n, out.estimate.ci_high) == pytest.approx(-z, abs=1e-8)
    assert out.p_value == pytest.approx(stats.norm.sf(tango_score(b, c, n, -0.05)))
    # the one-sided decision and the interval agree
    assert (out.p_value <= 0.025) == (out.estimate.ci_low > -0.05)


def test_rao_scott_effective_counts_equal_the_exact_test_on_the_divided_counts():
    """Design effect 2 on (80 of 100) is the exact test and Clopper-Pearson interval of 40 of 50 (scipy, statsmodels)."""
    from statsmodels.stats.proportion import proportion_confint

    out = exact_goal_test(80, 100, nulls=[(0.65, "higher")], alpha1=0.025, design_effect=2.0)
    assert out.p_value == pytest.approx(stats.binomtest(40, 50, 0.65, alternative="greater").pvalue, rel=1e-9)
    assert (out.estimate.ci_low, out.estimate.ci_high) == pytest.approx(proportion_confint(40, 50, 0.05, "beta"))
    assert out.estimate.estimate == 0.8 and "design effect 2" in out.estimate.method


def test_rao_scott_design_effect_is_clustered_over_binomial_variance():
    import statsmodels.api as sm

    from study.plan.hypothesis_tests import rao_scott_design_effect

    rng = np.random.default_rng(8)
    clusters = np.repeat(np.arange(60), 3)
    y = (rng.random(180) < np.repeat(rng.beta(2, 1, 60), 3)).astype(float)
    fit = sm.OLS(y, np.ones(180)).fit(cov_type="cluster", cov_kwds={"groups": clusters})
    p = y.mean()
    assert rao_scott_design_effect(y, clusters) == pytest.approx(fit.bse[0] ** 2 / (p * (1 - p) / 180))
    assert rao_scott_design_effect(np.ones(10), np.repeat(np.arange(5), 2)) == 1.0  # p = 1: no information


def test_plan_from_a_pilot_mrmc_grid_and_detection_se():
    """The MRMC grid gives, per reader count, the fewest cases (in steps of 10) reaching the power; a lesion
    metric's pilot SE is scaled by the pilot's images."""
    from study.plan.model import AnalysisPlan
    from study.plan.sample_size import plan_sample_size

    plan = AnalysisPlan.model_validate({"endpoints": [
        {"id": "auc", "role": "primary", "metric": "mrmc_fom_difference", "unit": "image",
         "comparator": {"kind": "readers"}, "hypothesis": {"kind": "non_inferiority", "margin": 0.05}},
        {"id": "recall", "role": "secondary", "metric": "lesion_recall", "unit": "image",
         "comparator": {"kind": "goal", "value": 0.8}, "hypothesis": {"kind": "performance_goal"}}],
        "multiplicity": {"procedure": "fixed_sequence", "endpoints": ["auc", "recall"]}})
    comps = {"var_r": 0.0004, "var_error": 0.0009, "cov2": 0.0003}
    pilot = {"models": {"m": {}}, "detection": {"m": {"n_images": 120}},
             "mrmc": {"models": {"m": {"analysis": {"design": {"n_cases": 100},
                                                    "ai_vs_readers": [{"variance_components": comps}]}}}},
             "analysis_plan": {"endpoints": [{"id": "auc", "estimate": {"estimate": 0.0}},
                                             {"id": "recall", "estimate": {"estimate": 0.85, "se": 0.02}}]}}
    res = plan_sample_size(plan, protocol="t", pilot=pilot)
    auc, recall = res.endpoints
    assert any(g.cases is not None for g in auc.readers_cases)
    for g in auc.readers_cases:
        if g.cases is None:  # reader variance alone keeps the power below target: never reached
            assert pw.mrmc_ai_power(g.readers, 5000, effect=0.05, pilot_cases=100, alpha1=0.025, **comps) < 0.8
            continue
        assert g.power >= 0.8
        if g.cases > 10:
            assert pw.mrmc_ai_power(g.readers, g.cases - 10, effect=0.05, pilot_cases=100, alpha1=0.025, **comps) < 0.8
    sigma = 0.02 * np.sqrt(120)
    assert recall.n_analysed == pw.wald_sample_size(effect=0.05, sigma=sigma, alpha1=0.025, power=0.8)


def _direct_tost_n(low, high, expected, alpha, power):
    """Reference: the smallest n at which the exact TOST -- every k whose two one-sided exact binomial p-values
    (scipy.stats.binomtest) are both <= alpha -- rejects with probability >= power under ``expected``."""
    for n in range(2, 1000):
        ks = [k for k in range(n + 1)
              if stats.binomtest(k, n, low, alternative="greater").pvalue <= alpha
              and stats.binomtest(k, n, high, alternative="less").pvalue <= alpha]
        if ks and stats.binom.pmf(ks, n, expected).sum() >= power:
            return n
    raise AssertionError


@pytest.mark.parametrize("low,high,expected,alpha,power", [(0.7, 0.9, 0.8, 0.05, 0.8), (0.6, 0.95, 0.85, 0.025, 0.8)])
def test_exact_equivalence_sample_size_matches_a_direct_search(low, high, expected, alpha, power):
    n = pw.exact_equivalence_sample_size(low=low, high=high, expected=expected, alpha1=alpha, power=power)
    assert n == _direct_tost_n(low, high, expected, alpha, power)


def test_kappa_equivalence_plan_agrees_with_simulating_the_tost_decide_runs():
    """`study plan` for a kappa equivalence endpoint (TOST, margins +/-0.15 around 0.7) against 1,000 simulated
    studies decided by kappa_goal_test with both null boundaries (MC SE ~0.013)."""
    from study.plan.hypothesis_tests import kappa_goal_test
    from study.plan.model import AnalysisPlan
    from study.plan.sample_size import plan_sample_size

    shares = [0.4, 0.35, 0.15, 0.1]
    plan = AnalysisPlan.model_validate({"endpoints": [{
        "id": "k", "role": "primary", "metric": "kappa_linear", "rater": "m", "unit": "image",
        "comparator": {"kind": "goal", "value": 0.7}, "hypothesis": {"kind": "equivalence", "margins": [-0.15, 0.15]},
        "planning": {"expected": 0.72, "level_shares": shares}}]})
    row = plan_sample_size(plan, protocol="p").endpoints[0]
    assert row.reason is None and "TOST" in row.method
    n = row.n_analysed
    nulls = null_values("equivalence", goal=0.7, margin=None, margins=(-0.15, 0.15), direction="higher")
    rng = np.random.default_rng(8)
    tables = rng.multinomial(n, pw.kappa_table(0.72, shares).ravel(), size=1000).reshape(-1, 4, 4)
    hits = np.mean([kappa_goal_test(t, nulls=nulls, alpha1=0.025, weights="linear").p_value <= 0.025 for t in tables])
    assert row.achieved_power >= 0.8 and abs(hits - row.achieved_power) < 0.05
    # and one fewer unit does not reach the power (the smallest n)
    s1 = pw.kappa_sigma(0.72, shares, weights="linear")
    s_lo, s_hi = (pw.kappa_sigma(k, shares, weights="linear") for k in (0.55, 0.85))
    assert float(pw.wald_equivalence_power(n - 1, effect_low=0.17, effect_high=0.13, sigma=s1, alpha1=0.025,
                                           sigma0_low=s_lo, sigma0_high=s_hi)) < 0.8


def test_equivalence_outside_the_margins_is_a_located_reason():
    from study.plan.model import AnalysisPlan
    from study.plan.sample_size import plan_sample_size

    plan = AnalysisPlan.model_validate({"endpoints": [{
        "id": "acc", "role": "primary", "metric": "grading_accuracy", "rater": "m",
        "comparator": {"kind": "goal", "value": 0.8}, "hypothesis": {"kind": "equivalence", "margins": [-0.05, 0.05]},
        "planning": {"expected": 0.9}}]})
    row = plan_sample_size(plan, protocol="p").endpoints[0]
    assert row.patients is None and "inside the equivalence range" in row.reason
