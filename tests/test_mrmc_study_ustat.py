"""The study's U-statistic MRMC analyses (``study.metrics.mrmc.study_ustat``): every case with readings.

Reference for the model-versus-readers variance: the brute-force enumeration of pairs of AUC
terms in tests/test_mrmc_ustat.py (the U-statistic definition, written independently).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from study.metrics.mrmc.study_ustat import study_ustat
from study.metrics.mrmc.ustat import analyze_ustat
from study.results.base import NotAssessed
from study.results.mrmc import UStatAnalysis
from tests.test_mrmc_ustat import _brute_force_cov

LEVELS = ["mild", "moderate", "severe", "very severe"]


def _study(seed: int = 0, *, n_cases: int = 60, n_readers: int = 5, aided: bool = True):
    rng = np.random.default_rng(seed)
    cases = [f"c{i}" for i in range(n_cases)]
    true_level = rng.integers(0, 4, n_cases)
    reference = pd.DataFrame({"case_id": cases, "grade": [LEVELS[k] for k in true_level]})
    rows = []
    for r in range(n_readers):
        read = rng.random(n_cases) < 0.7  # each reader reads about 70% of the cases
        for modality in (("unaided", "aided") if aided else ("unaided",)):
            noise = 0.6 if modality == "aided" else 1.0
            for i in np.nonzero(read)[0]:
                level = int(np.clip(np.round(true_level[i] + rng.normal(scale=noise)), 0, 3))
                conf = float(np.clip(25 * true_level[i] + rng.normal(scale=45 * noise), 0, 100))
                rows.append({"reader_id": f"r{r}", "case_id": cases[i], "grade": LEVELS[level],
                             "modality": modality, "confidence": round(conf, 1)})
    readings = pd.DataFrame(rows)
    model = pd.DataFrame({"case_id": cases,
                          "grade": [LEVELS[int(np.clip(k + rng.integers(-1, 2), 0, 3))] for k in true_level]})
    return reference, readings, {"m1": model}


def test_aided_versus_unaided_uses_every_case_with_readings():
    reference, readings, models = _study(1)
    res = study_ustat(reference, readings, models, levels=LEVELS, positive_from="moderate")
    assert isinstance(res.aided_vs_unaided, UStatAnalysis)
    assert res.cases_included == 60
    assert res.cases_with_readings == readings.case_id.nunique()
    assert res.readings_used == len(readings)
    assert res.readings_by_modality == readings.modality.value_counts().to_dict()
    assert res.rating == {"unaided": "confidence (0-100)", "aided": "confidence (0-100)"}
    d = res.aided_vs_unaided.differences[0]
    assert d.comparison == "aided - unaided"  # the CADe-style difference, whatever order the readings come in
    assert res.aided_vs_unaided.design.by_modality["aided"].crossing == "partially crossed"
    assert res.aided_vs_unaided.design.n_readings == len(readings)
    # the analysis is exactly analyze_ustat on the readings with truth from the reference
    truth = dict(zip(reference.case_id, (reference.grade != "mild").astype(int)))
    direct = analyze_ustat(readings.assign(truth=readings.case_id.map(truth), rating=readings.confidence))
    assert d.unbiased.variance == pytest.approx(direct.differences[0].unbiased.variance, rel=1e-12)


def test_model_standalone_versus_unaided_readers_is_a_fixed_single_reader_modality():
    reference, readings, models = _study(6)  # a study whose unbiased variance is positive (small studies vary)
    res = study_ustat(reference, readings, models, levels=LEVELS, positive_from="severe")
    m = res.models["m1"]
    assert isinstance(m, UStatAnalysis)
    assert m.design.by_modality["model m1"].n_readers == 1
    d = m.differences[0]
    assert d.comparison == "model m1 - unaided"
    assert d.unbiased.df is not None and d.unbiased.ci_low is not None
    # variance against the brute-force enumeration of pairs of AUC terms
    truth = dict(zip(reference.case_id, reference.grade.isin(["severe", "very severe"]).astype(int)))
    order = {lv: i for i, lv in enumerate(LEVELS)}
    table = pd.concat([
        pd.DataFrame({"modality": "M", "reader_id": "m1", "case_id": models["m1"].case_id,
                      "rating": models["m1"].grade.map(order).astype(float)}),
        readings[readings.modality == "unaided"].assign(modality="U", rating=readings.confidence)[
            ["modality", "reader_id", "case_id", "rating"]],
    ]).assign(truth=lambda t: t.case_id.map(truth))
    var_m, _, _ = _brute_force_cov(table, "M", "M", fixed_reader=True)
    var_u, _, _ = _brute_force_cov(table, "U", "U")
    cov, _, _ = _brute_force_cov(table, "M", "U")
    assert d.unbiased.variance == pytest.approx(var_m + var_u - 2 * cov, abs=1e-12)


def test_without_an_aided_session_the_primary_says_why_and_grades_are_ordinal_ratings():
    reference, readings, models = _study(3, aided=False)
    res = study_ustat(reference, readings.drop(columns=["modality", "confidence"]), models, levels=LEVELS,
                      positive_from="moderate")
    assert isinstance(res.aided_vs_unaided, NotAssessed)
    assert "no aided session" in res.aided_vs_unaided.reason
    assert res.rating["unaided"].startswith("grade as an ordinal")
    assert isinstance(res.models["m1"], UStatAnalysis)


def test_patients_resampled_when_given():
    reference, readings, models = _study(4)
    patient_of = {c: f"p{int(c[1:]) // 2}" for c in reference.case_id}
    res = study_ustat(reference, readings, models, levels=LEVELS, positive_from="moderate", patient_of=patient_of)
    assert res.resampling_unit == "patient"
    assert isinstance(res.aided_vs_unaided, UStatAnalysis)
    assert res.aided_vs_unaided.design.n_patients == 30
    assert res.aided_vs_unaided.differences[0].patient_terms is not None


def test_an_unanalysable_design_is_not_assessed_with_the_reason():
    reference, readings, models = _study(5, n_readers=2)
    one = readings[~((readings.modality == "aided") & (readings.reader_id == "r1"))]
    res = study_ustat(reference, one, models, levels=LEVELS, positive_from="moderate")
    assert isinstance(res.aided_vs_unaided, NotAssessed)
    assert "modality 'aided'" in res.aided_vs_unaided.reason and "at least two readers" in res.aided_vs_unaided.reason


def test_the_study_block_round_trips_through_json():
    import json

    from study.results.mrmc import MRMCBlock, parse_mrmc_block

    reference, readings, models = _study(6)
    res = study_ustat(reference, readings, models, levels=LEVELS, positive_from="severe")
    block = MRMCBlock(endpoint=res.endpoint, positive_from="severe", models={}, ustat=res)
    data = json.loads(json.dumps(block.to_json_dict()))
    assert parse_mrmc_block(data) == block


def test_not_assessable_readings_are_left_out_and_counted():
    reference, readings, models = _study(6)
    marked = readings.assign(assessable=["false" if i % 10 == 0 else "true" for i in range(len(readings))],
                             confidence=readings.confidence.where(readings.index % 10 != 0))
    res = study_ustat(reference, marked, models, levels=LEVELS, positive_from="severe")
    n_out = int((readings.index % 10 == 0).sum())
    assert res.readings_not_used == n_out and res.readings_used == len(readings) - n_out
    assert isinstance(res.aided_vs_unaided, UStatAnalysis)
