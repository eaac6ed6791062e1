"""``statistics.unit``: the patient as the unit of analysis in grading agreement and counting.

The clustered intervals are recomputed here from the raw rows (per-patient totals) with the
functions of study.metrics.clustered, which tests/test_clustered.py pins to statsmodels; the
counting bias is checked directly against statsmodels' cluster-robust OLS.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from study.errors import StudyError
from study.metrics.agreement import evaluate_agreement
from study.metrics.clustered import clustered_kappa, clustered_mcnemar, clustered_proportion
from study.metrics.counting import evaluate_counting
from study.options import CountingOptions, StatisticsOptions
from study.protocol import StatisticsSettings
from tests.test_agreement import LEVELS, make_study, options


def _agreement(reference, ratings, patient_of=None, **statistics):
    return evaluate_agreement(reference, ratings, options=options(**statistics), patient_of=patient_of).to_json_dict()


@pytest.fixture(scope="module")
def study():
    reference, ratings, patient_of, _ = make_study(180, seed=5, imgs_per_patient=3)
    by_patient = _agreement(reference, ratings, patient_of, n_bootstrap=200, unit="patient")
    by_image = _agreement(reference, ratings, patient_of, n_bootstrap=200)
    return reference, ratings, patient_of, by_patient, by_image


def _rows(reference, ratings, patient_of, rater):
    r = ratings[(ratings["rater_id"] == rater) & ratings["grade"].notna()].merge(
        reference.rename(columns={"grade": "ref"}), on="case_id")
    r["patient"] = r["case_id"].map(patient_of)
    return r


def test_accuracy_sensitivity_and_kappa_use_the_clustered_methods(study):
    reference, ratings, patient_of, by_patient, _ = study
    assert by_patient["settings"]["unit"] == "patient"
    r = _rows(reference, ratings, patient_of, "ai")
    g = r.groupby("patient")
    expected = clustered_proportion(g.apply(lambda d: (d["grade"] == d["ref"]).sum()), g.size())
    acc = by_patient["raters"]["ai"]["accuracy"]
    assert (acc["estimate"], acc["ci_low"], acc["ci_high"]) == (
        pytest.approx(expected.estimate), pytest.approx(expected.ci_low), pytest.approx(expected.ci_high))
    assert acc["n_clusters"] == 60 and "Obuchowski 1998" in acc["method"] and "bootstrap" in acc
    sub = r[r["ref"] == "II"].groupby("patient")
    sens = clustered_proportion(sub.apply(lambda d: (d["grade"] == "II").sum()), sub.size())
    got = by_patient["raters"]["ai"]["per_grade"]["II"]["sensitivity"]
    assert (got["estimate"], got["ci_low"]) == (pytest.approx(sens.estimate), pytest.approx(sens.ci_low))
    code = {lv: i for i, lv in enumerate(LEVELS)}
    tabs = np.zeros((60, 4, 4))
    pats = {p: i for i, p in enumerate(sorted(set(patient_of.values())))}
    np.add.at(tabs, (r["patient"].map(pats).to_numpy(), r["ref"].map(code).to_numpy(), r["grade"].map(code).to_numpy()), 1)
    kq = clustered_kappa(tabs, weights="quadratic")
    got = by_patient["raters"]["ai"]["kappa_quadratic"]
    assert (got["estimate"], got["se"], got["ci_low"]) == (pytest.approx(kq.estimate), pytest.approx(kq.se),
                                                           pytest.approx(kq.ci_low))
    assert "Yang & Zhou 2014" in got["method"]


def test_comparisons_use_the_clustered_mcnemar(study):
    reference, ratings, patient_of, by_patient, by_image = study
    cmp = next(c for c in by_patient["comparisons"] if c["model"] == "ai" and c["versus"] == "j1")
    m = _rows(reference, ratings, patient_of, "ai")
    j = _rows(reference, ratings, patient_of, "j1")
    both = m.merge(j[["case_id", "grade"]], on="case_id", suffixes=("_m", "_r"))
    mo = (both["grade_m"] == both["ref"]) & (both["grade_r"] != both["ref"])
    ro = (both["grade_m"] != both["ref"]) & (both["grade_r"] == both["ref"])
    _stat, p = clustered_mcnemar(mo.groupby(both["patient"]).sum(), ro.groupby(both["patient"]).sum())
    assert cmp["mcnemar"]["p_value"] == pytest.approx(p) and "Durkalski" in cmp["mcnemar"]["method"]
    assert cmp["n_patients"] == both["patient"].nunique()
    assert "Obuchowski 1998" in cmp["model_accuracy"]["method"]
    image_cmp = next(c for c in by_image["comparisons"] if c["model"] == "ai" and c["versus"] == "j1")
    assert image_cmp["mcnemar"]["method"].startswith("McNemar exact")


def test_image_unit_keeps_the_independent_intervals(study):
    *_, by_patient, by_image = study
    assert by_image["settings"]["unit"] == "image"
    assert by_image["raters"]["ai"]["accuracy"]["method"] == "Wilson score, 95%"
    assert by_image["raters"]["ai"]["accuracy"]["estimate"] == by_patient["raters"]["ai"]["accuracy"]["estimate"]


def test_patient_unit_needs_patients():
    reference, ratings, _, _ = make_study(20, seed=1)
    with pytest.raises(StudyError, match="patient_of"):
        _agreement(reference, ratings, n_bootstrap=100, unit="patient")


def test_protocol_default_is_the_patient_whenever_patients_are_known():
    assert StatisticsSettings().unit is None
    assert StatisticsSettings(unit="image").unit == "image"
    with pytest.raises(ValueError):
        StatisticsSettings(unit="lesion")
    assert StatisticsOptions().unit == "image"  # the metric functions' own default
    auto = StatisticsOptions(unit="auto")
    assert (auto.unit_for(True), auto.unit_for(False)) == ("patient", "image")
    assert StatisticsOptions(unit="image").unit_for(True) == "image"
    reference, ratings, patient_of, _ = make_study(40, seed=3)
    assert _agreement(reference, ratings, patient_of, n_bootstrap=100, unit="auto")["settings"]["unit"] == "patient"
    assert _agreement(reference, ratings, None, n_bootstrap=100, unit="auto")["settings"]["unit"] == "image"


def test_counting_bias_is_statsmodels_cluster_robust_when_the_unit_is_the_patient():
    rng = np.random.default_rng(0)
    n = 90
    cases = [f"c{i}" for i in range(n)]
    patient = {c: f"p{i // 3}" for i, c in enumerate(cases)}
    true = rng.poisson(6, n)
    shared = np.repeat(rng.normal(0, 2, n // 3), 3)
    pred = np.clip(np.round(true + shared + rng.normal(0, 1, n)), 0, None).astype(int)
    det = pd.DataFrame([(c, "acne", 0.9) for c, k in zip(cases, pred) for _ in range(k)],
                       columns=["case_id", "class", "score"])
    tc = pd.DataFrame({"case_id": cases, "count_acne": true})
    opts = CountingOptions(classes=("acne",), thresholds=(0.5,),
                           statistics=StatisticsOptions(n_bootstrap=100, seed=0, unit="patient"))
    bias = evaluate_counting(tc, det, options=opts, patient_of=patient).thresholds["0.5"].overall.mean_bias
    d = (pred - true).astype(float)
    fit = sm.OLS(d, np.ones((n, 1))).fit(cov_type="cluster", cov_kwds={"groups": np.arange(n) // 3}, use_t=True)
    assert bias.estimate == pytest.approx(fit.params[0]) and bias.se == pytest.approx(fit.bse[0])
    assert bias.ci_low == pytest.approx(fit.conf_int(0.05)[0][0]) and bias.n_clusters == 30
    image = evaluate_counting(tc, det, options=opts.model_copy(update={"statistics": StatisticsOptions(
        n_bootstrap=100, seed=0)}), patient_of=patient).thresholds["0.5"].overall.mean_bias
    assert image.method == "Student t, 95%" and image.n_clusters is None
