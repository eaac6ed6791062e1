"""Issue 13 item 2: no interval leaves the bounds of its quantity or has zero width at a bound.

The walker (study.metrics.bounds) is first shown to catch the defects the issue names (an AUC
interval ending at 1.011, kappa clipped to 1.000-1.000, AP 1.000 (1.000-1.000)); then the whole
agreement block -- raters, groups, inter-reader, comparisons and small subgroups where
estimates sit at 0 or 1 -- is walked for both units of analysis.
"""

import pytest

from study.metrics.agreement import evaluate_agreement
from study.metrics.bounds import bounds_of, interval_problems
from tests.test_agreement import make_study, options


def _e(est, lo, hi):
    return {"estimate": est, "ci_low": lo, "ci_high": hi, "method": "m"}


def test_walker_catches_the_defects_of_the_issue():
    tree = {"mrmc": {"analysis": [{"ai_fom": _e(0.97, 0.93, 1.0105)}]},
            "agreement": {"raters": {"ai": {"kappa": _e(1.0, 1.0, 1.0), "accuracy": _e(0.8, 0.7, 0.9)}}},
            "detection": {"classes": {"nodule": {"ap_ci": _e(1.0, 1.0, 1.0)}}},
            "counting": {"mean_bias": _e(-3.0, -5.0, -1.0)}}
    problems = interval_problems(tree)
    assert len(problems) == 3
    assert any("ai_fom: ci_high 1.0105 above 1.0" in p for p in problems)
    assert any("kappa: zero-width" in p for p in problems) and any("ap_ci: zero-width" in p for p in problems)


@pytest.mark.parametrize("path,bounds", [
    (("raters", "ai", "per_grade", "II", "sensitivity"), (0.0, 1.0)),
    (("raters", "ai", "kappa_quadratic", "bootstrap"), (-1.0, 1.0)),
    (("comparisons", "0", "accuracy_difference"), (-1.0, 1.0)),
    (("comparisons", "0", "kappa_quadratic_difference"), (-2.0, 2.0)),
    (("counting", "0.5", "overall", "mean_bias"), (None, None)),
    (("mrmc", "analysis", "ai_fom"), (0.0, 1.0)),
])
def test_bounds_of_known_keys(path, bounds):
    assert bounds_of(path) == bounds


@pytest.mark.parametrize("unit", ["patient", "image"])
def test_whole_agreement_block_respects_bounds(unit):
    # small subgroups (fitzpatrick, sex) give estimates of exactly 0 and 1 with few cases
    reference, ratings, patient_of, cov = make_study(60, seed=21, imgs_per_patient=2)
    out = evaluate_agreement(reference, ratings, options=options(subgroups=["fitzpatrick", "sex"], n_bootstrap=200,
                                                                 unit=unit),
                             patient_of=patient_of, covariates=cov).to_json_dict()
    assert interval_problems(out) == []
    # the data do reach the bounds: some estimate is exactly 0 or 1 with an interval of positive width
    from study.metrics.bounds import estimates

    at_bound = [e for p, e in estimates(out) if e["estimate"] in (0.0, 1.0) and e["ci_low"] is not None
                and bounds_of(p) != (None, None)]
    assert at_bound and all(e["ci_high"] > e["ci_low"] for e in at_bound)


def test_bootstrap_at_its_bound_gives_no_zero_width_interval():
    import numpy as np

    from study.metrics.bootstrap import bootstrap_estimate

    nearly_all_one = np.r_[np.ones(198), 0.9, 0.8]  # fewer than 2.5% of replicates below the bound
    e = bootstrap_estimate(1.0, nearly_all_one, n_replicates=200, confidence=0.95)
    assert e.estimate == 1.0 and e.ci_low is None and "zero width" in e.reason
    spread = bootstrap_estimate(0.9, np.linspace(0.8, 1.0, 200), n_replicates=200, confidence=0.95)
    assert spread.ci_low < 0.9 < spread.ci_high


def test_bootstrap_of_means_at_the_bound_with_rounding_gives_no_interval():
    import numpy as np

    from study.metrics.bootstrap import bootstrap_estimate

    reps = 1.0 + np.r_[np.zeros(100), np.full(100, 2.2e-16), -np.full(10, 1.1e-16)]  # means of kappas of 1
    assert bootstrap_estimate(1.0, reps, n_replicates=210, confidence=0.95).ci_low is None
