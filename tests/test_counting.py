"""Counting error: hand-worked case, Lin's CCC, Bland-Altman, validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from study.errors import StudyError
from study.metrics.counting import (
    bland_altman,
    evaluate_counting,
    fit_line,
    lin_ccc,
    sd_chi2_interval,
)
from study.options import CountingOptions, StatisticsOptions


def _options(classes, *, thresholds=(0.25, 0.5, 0.75), levels=None, n_bootstrap=2000):
    return CountingOptions(classes=tuple(classes), thresholds=thresholds, levels=levels,
                           statistics=StatisticsOptions(n_bootstrap=n_bootstrap, seed=0))


def _case():
    # 4 cases, one class "acne"; true counts 2, 5, 10, 20.
    # detections: a: .9 .6 .55 .3 | b: five at .8 | c: eight at .7 and two at .2 | d: 24 at .95
    # predicted at .25: 4, 5, 8, 24 ; at .5: 3, 5, 8, 24 ; at .75: 1, 5, 0, 24
    true = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "count_acne": [2, 5, 10, 20]})
    scores = {"a": [.9, .6, .55, .3], "b": [.8] * 5, "c": [.7] * 8 + [.2] * 2, "d": [.95] * 24}
    det = pd.DataFrame([(c, "acne", s) for c, ss in scores.items() for s in ss], columns=["case_id", "class", "score"])
    sev = pd.Series({"a": "mild", "b": "mild", "c": "severe", "d": "severe"})
    return true, det, sev


def test_hand_worked_threshold_half():
    true, det, sev = _case()
    r = evaluate_counting(true, det, options=_options(["acne"], levels=("mild", "severe"), n_bootstrap=200),
                          severity=sev)
    o = r.thresholds["0.5"].overall
    # d = predicted - true = [1, 0, -2, 4]
    # mean 3/4; deviations .25 -.75 -2.75 3.25, squares sum 18.75, / 3 = 6.25 -> SD 2.5
    # MAE = 7/4 ; RMSE = sqrt((1 + 0 + 4 + 16) / 4) = sqrt(5.25)
    assert o.n == 4
    assert o.mean_bias.estimate == pytest.approx(0.75)
    assert o.sd.estimate == pytest.approx(2.5)
    assert o.mae.estimate == pytest.approx(1.75)
    assert o.rmse.estimate == pytest.approx(np.sqrt(5.25))
    # t interval: .75 +/- t(.975, 3) * 2.5 / 2
    q = st.t.ppf(0.975, 3)
    assert o.mean_bias.ci_low == pytest.approx(0.75 - q * 1.25)
    assert o.mean_bias.ci_high == pytest.approx(0.75 + q * 1.25)
    assert "Student t" in o.mean_bias.method
    # Lin's CCC: x = 2,5,10,20 (mean 9.25, var_n 186.75/4), y = 3,5,8,24 (mean 10, var_n 274/4),
    # cov_n = 221/4 -> ccc = 2*55.25 / (46.6875 + 68.5 + 0.75^2) = 110.5 / 115.75
    assert o.ccc.estimate == pytest.approx(110.5 / 115.75)
    assert o.ccc.ci_low < o.ccc.estimate < o.ccc.ci_high
    # by severity: mild d = [1, 0] -> mean .5 ; severe d = [-2, 4] -> mean 1
    bs = r.thresholds["0.5"].by_severity
    assert bs["mild"].mean_bias.estimate == pytest.approx(0.5)
    assert bs["severe"].mean_bias.estimate == pytest.approx(1.0)
    assert bs["severe"].mae.estimate == pytest.approx(3.0)
    # other thresholds: .25 -> d = [2, 0, -2, 4] (mean 1) ; .75 -> d = [-1, 0, -10, 4] (mean -7/4)
    assert r.thresholds["0.25"].overall.mean_bias.estimate == pytest.approx(1.0)
    assert r.thresholds["0.75"].overall.mean_bias.estimate == pytest.approx(-1.75)
    assert r.points.predicted["0.5"] == [3, 5, 8, 24]
    assert r.points.true == [2, 5, 10, 20]
    assert r.points.by_class["acne"].true == [2, 5, 10, 20]
    assert r.points.by_class["acne"].predicted["0.75"] == [1, 5, 0, 24]
    # the line without the most severe group has only 2 cases: not fitted
    lines = r.thresholds["0.5"].lines
    assert lines["without_severe"].slope is None
    lr = st.linregress([2, 5, 10, 20], [3, 5, 8, 24])
    assert lines["all"].slope == pytest.approx(lr.slope) and lines["all"].r == pytest.approx(lr.rvalue)


def test_sd_chi_square_interval():
    # s = 2.5, n = 4: [s sqrt(3 / chi2(.975, 3)), s sqrt(3 / chi2(.025, 3))]
    e = sd_chi2_interval(np.array([1, 0, -2, 4.0]))
    assert e.ci_low == pytest.approx(2.5 * np.sqrt(3 / st.chi2.ppf(0.975, 3)))
    assert e.ci_high == pytest.approx(2.5 * np.sqrt(3 / st.chi2.ppf(0.025, 3)))


def test_ccc_reduces_to_fisher_z_of_r_when_means_and_variances_agree():
    # y a permutation of x: equal means and variances, so ccc = r and u = 0; Lin's variance of z
    # reduces to 1 / (n - 2), i.e. the interval is tanh(atanh(r) -/+ 1.96 / sqrt(n - 2)).
    x = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10.0])
    y = np.array([2, 1, 3, 5, 4, 6, 8, 7, 10, 9.0])
    e = lin_ccc(x, y)
    r = np.corrcoef(x, y)[0, 1]
    assert e.estimate == pytest.approx(r)
    z, q = np.arctanh(r), st.norm.ppf(0.975)
    assert e.ci_low == pytest.approx(np.tanh(z - q / np.sqrt(8)))
    assert e.ci_high == pytest.approx(np.tanh(z + q / np.sqrt(8)))


def test_bland_altman_limits():
    # d = [1, 0, -2, 4]: bias .75, SD 2.5 -> limits .75 -/+ 1.96 * 2.5 ; SE of a limit sqrt(3 * 6.25 / 4)
    ba = bland_altman([2, 5, 10, 20], [3, 5, 8, 24])
    assert ba.bias == pytest.approx(0.75) and ba.sd == pytest.approx(2.5)
    assert ba.loa_low.estimate == pytest.approx(0.75 - 1.96 * 2.5)
    se = np.sqrt(3 * 6.25 / 4)
    assert ba.loa_high.ci_high - ba.loa_high.estimate == pytest.approx(st.t.ppf(0.975, 3) * se)


def test_by_class_and_patient_bootstrap():
    true = pd.DataFrame({"case_id": ["1", "2", "3"], "count_papule": [1, 0, 2], "count_pustule": [0, 3, 1]})
    det = pd.DataFrame({"case_id": ["1", "1", "2", "3", "9"], "class": ["papule", "pustule", "pustule", "papule", "papule"],
                        "score": [0.9, 0.9, 0.9, 0.9, 0.9]})
    r = evaluate_counting(true, det, options=_options(["papule", "pustule"], thresholds=(0.5,), n_bootstrap=100),
                          patient_of={"1": "p", "2": "p", "3": "q"})
    t = r.thresholds["0.5"]
    # papule: predicted 1, 0, 1 vs 1, 0, 2 -> d = 0, 0, -1 ; pustule: 1, 1, 0 vs 0, 3, 1 -> d = 1, -2, -1
    assert t.by_class["papule"].mean_bias.estimate == pytest.approx(-1 / 3)
    assert t.by_class["pustule"].mae.estimate == pytest.approx(4 / 3)
    # totals: predicted 2, 1, 1 vs 1, 3, 3 -> d = 1, -2, -2
    assert t.overall.mean_bias.estimate == pytest.approx(-1.0)
    assert r.inputs.n_detections_other_cases == 1 and r.inputs.n_patients == 2
    assert "patients" in t.overall.mae.method


def test_validation_lists_problems():
    true = pd.DataFrame({"case_id": ["a", "a"], "count_acne": [1, -2]})
    det = pd.DataFrame({"case_id": ["a"], "class": ["cyst"], "score": [float("nan")]})
    with pytest.raises(StudyError) as e:
        evaluate_counting(true, det, options=_options(["acne"]))
    text = str(e.value)
    assert "count_acne" in text and "-2" in text and "duplicate case_id" in text
    with pytest.raises(StudyError, match="no reference grade"):
        evaluate_counting(true.iloc[:1].assign(count_acne=1), pd.DataFrame({"case_id": [], "class": [], "score": []}),
                          options=_options(["acne"], levels=("mild",)), severity=pd.Series({"b": "mild"}))


def test_fit_line_degenerate():
    assert fit_line([1, 1, 1], [1, 2, 3]).slope is None


def test_model_rejects_unknown_keys_and_reads_the_report_fixture():
    import gzip
    import json
    from pathlib import Path

    from pydantic import ValidationError

    from study.io import dumps_json
    from study.results.counting import BlandAltman, CountingResult

    fixture = Path(__file__).resolve().parent / "fixtures" / "report" / "results.json.gz"
    with gzip.open(fixture, "rt", encoding="utf-8") as f:
        block = json.load(f)["counting"]["sim-detector"]
    model = CountingResult.model_validate(block)
    assert dumps_json(model) == dumps_json(block)  # the same JSON back, key for key
    with pytest.raises(ValidationError, match="surprise"):
        CountingResult.model_validate({**block, "surprise": 1})
    th = dict(block["thresholds"]["0.5"])
    with pytest.raises(ValidationError, match="fallback"):
        CountingResult.model_validate({**block, "thresholds": {"0.5": {**th, "overall": {
            **th["overall"], "fallback": None}}}})
    with pytest.raises(ValidationError, match="'all'"):
        CountingResult.model_validate({**block, "thresholds": {"0.5": {**th, "lines": {}}}})
    with pytest.raises(ValidationError, match="loa"):
        BlandAltman.model_validate({"n": 1, "bias": None, "sd": None})


def test_results_written_by_the_model_read_back_unchanged():
    from study.io import dumps_json
    from study.results.counting import CountingResult

    true, det, sev = _case()
    r = evaluate_counting(true, det, options=_options(["acne"], levels=("mild", "severe"), n_bootstrap=100),
                          severity=sev)
    text = dumps_json(r)
    assert dumps_json(CountingResult.model_validate_json(text)) == text
    # fewer than two cases: no limits and no plot instruction, as the JSON always had it
    assert bland_altman([1], [2]).model_dump() == {"n": 1, "bias": None, "sd": None, "loa_low": None,
                                                   "loa_high": None}


def test_options_hold_the_range_rules():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="thresholds"):
        CountingOptions(classes=("acne",), thresholds=(1.5,))
    with pytest.raises(ValidationError, match="n_bootstrap"):
        _options(["acne"], n_bootstrap=10)
