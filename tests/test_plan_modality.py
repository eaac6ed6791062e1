"""The analysis plan's comparator "another reading modality": readers aided versus unaided (MRMC AUC difference).

The decision reads ``mrmc.ustat.aided_vs_unaided`` written by the study's U-statistic analysis
(computed here by :func:`study.metrics.mrmc.study_ustat.study_ustat` on a small simulated
study); the test statistic and p-value are checked against scipy's t distribution on the
analysis' BDG degrees of freedom.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy import stats

from study.metrics.mrmc.study_ustat import study_ustat
from study.plan.decide import StudyData, decide_endpoints
from study.plan.model import AnalysisPlan
from study.plan.sample_size import plan_sample_size
from study.results.decisions import LockStatus

LEVELS = ["I", "II", "III", "IV"]
NOT_LOCKED = LockStatus(state="not_locked", lock_file="x", statement="not locked")


def _readings(n: int, seed: int, *, aided: bool) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    case = [f"c{i}" for i in range(n)]
    ref = rng.integers(0, 4, n)
    rows = []
    for j, p_err in enumerate((0.45, 0.35, 0.4, 0.3)):
        for i in range(n):
            if rng.random() < 0.8:
                for mod, p in (("unaided", p_err), ("aided", p_err / 3)) if aided else (("unaided", p_err),):
                    g = ref[i] if rng.random() > p else int(np.clip(ref[i] + rng.choice([-1, 1]), 0, 3))
                    rows.append({"reader_id": f"r{j}", "reader_group": "g", "case_id": case[i], "grade": LEVELS[g],
                                 "modality": mod, "confidence": 25.0 * (g + rng.uniform(0.05, 0.95))})
    reference = pd.DataFrame({"case_id": case, "grade": [LEVELS[g] for g in ref]})
    model = pd.DataFrame({"case_id": case, "grade": [LEVELS[g] for g in ref]})
    return reference, pd.DataFrame(rows), model


def _data(*, aided: bool = True, patients: bool = True, n: int = 100, seed: int = 1) -> StudyData:
    reference, readings, model = _readings(n, seed, aided=aided)
    patient_of = {c: f"p{i // 2}" for i, c in enumerate(reference["case_id"])}
    ustat = study_ustat(reference, readings, {"m": model}, levels=LEVELS, positive_from="III",
                        patient_of=patient_of if patients else None)
    mrmc = {"assessed": True, "endpoint": "x", "positive_from": "III", "models": {},
            "ustat": ustat.model_dump(mode="json")}
    return StudyData(levels=LEVELS, reference=reference, model_grades={"m": model}, readings=readings,
                     patient_of=patient_of, covariates=pd.DataFrame({"case_id": reference["case_id"]}), mrmc=mrmc)


def _endpoint(**kw) -> dict:
    e = {"id": "aided", "role": "primary", "metric": "mrmc_fom_difference", "unit": "patient",
         "comparator": {"kind": "modality", "modality": "unaided"}, "hypothesis": {"kind": "superiority"}}
    return {**e, **kw}


def test_aided_versus_unaided_is_the_ustat_difference_with_a_t_test_on_its_bdg_df():
    data = _data()
    d = decide_endpoints(AnalysisPlan.model_validate({"endpoints": [_endpoint()]}), data, lock=NOT_LOCKED).endpoints[0]
    diff = data.mrmc["ustat"]["aided_vs_unaided"]["differences"][0]
    assert diff["modalities"] == ["aided", "unaided"]
    u = diff["unbiased"]
    assert d.estimate.estimate == pytest.approx(u["estimate"]) and d.estimate.se == pytest.approx(u["se"])
    assert d.statistic == pytest.approx(u["estimate"] / u["se"])
    assert d.p_value == pytest.approx(stats.t(u["df"]).sf(u["estimate"] / u["se"]))  # scipy, one-sided
    q = stats.t(u["df"]).ppf(0.975)
    assert d.estimate.ci_low == pytest.approx(u["estimate"] - q * u["se"])
    assert d.source == "mrmc.ustat.aided_vs_unaided.differences[0].unbiased"
    assert d.decision == ("met" if d.p_value <= 0.025 else "not met")
    assert u["estimate"] > 0 and d.decision == "met"  # aided readers err a third as often
    assert d.n_cases == data.mrmc["ustat"]["aided_vs_unaided"]["design"]["n_cases"] and d.n_patients == 50
    assert "the readers reading aided" in d.criterion and "minus the readers reading unaided" in d.criterion
    # non-inferiority of unaided against aided: the difference is turned round (unaided - aided)
    e = _endpoint(comparator={"kind": "modality", "modality": "aided"},
                  hypothesis={"kind": "non_inferiority", "margin": 0.05})
    d2 = decide_endpoints(AnalysisPlan.model_validate({"endpoints": [e]}), data, lock=NOT_LOCKED).endpoints[0]
    assert d2.estimate.estimate == pytest.approx(-u["estimate"])
    assert d2.p_value == pytest.approx(stats.t(u["df"]).sf((-u["estimate"] + 0.05) / u["se"]))


def test_not_estimable_names_what_is_missing():
    plan = AnalysisPlan.model_validate({"endpoints": [_endpoint()]})
    one = decide_endpoints(plan, _data(aided=False), lock=NOT_LOCKED).endpoints[0]
    assert one.decision == "not estimable" and "no aided session" in one.decision_text
    no_patients = decide_endpoints(plan, _data(patients=False), lock=NOT_LOCKED).endpoints[0]
    assert no_patients.decision == "not estimable" and "no patient ids" in no_patients.decision_text
    image = AnalysisPlan.model_validate({"endpoints": [_endpoint(unit="image")]})
    assert decide_endpoints(image, _data(patients=False), lock=NOT_LOCKED).endpoints[0].p_value is not None
    negative = decide_endpoints(plan, _data(n=60, seed=3), lock=NOT_LOCKED).endpoints[0]  # variance -0.00017
    assert negative.decision == "not estimable" and "variance of the difference is not positive" in negative.decision_text
    data = _data()
    data.mrmc = {"assessed": False, "reason": "an MRMC analysis needs at least two readers; the study has 1"}
    none = decide_endpoints(plan, data, lock=NOT_LOCKED).endpoints[0]
    assert none.decision == "not estimable" and "at least two readers" in none.decision_text


def test_the_plan_rejects_an_unknown_modality_and_study_plan_says_it_cannot_size_it():
    with pytest.raises(ValidationError, match="not a reading modality"):
        AnalysisPlan.model_validate({"endpoints": [_endpoint(comparator={"kind": "modality", "modality": "ai"})]})
    plan = AnalysisPlan.model_validate({"endpoints": [_endpoint(planning={"expected": 0.05})]})
    sized = plan_sample_size(plan, protocol="p.yaml")
    assert "not planned" in (sized.endpoints[0].reason or "")
