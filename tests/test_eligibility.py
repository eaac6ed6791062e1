"""Inclusion criteria, the case decision, the STARD flow, and the gate on a synthetic cohort with planted failures."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import pandas as pd
import pytest
from test_check_fixtures import REPO

from study import cohort, eligibility, quality
from study.protocol import Criterion, load_protocol
from study.report.flow_diagram import flow_svg

PROTOCOL = load_protocol(REPO / "protocols" / "chinese-2019.yaml").protocol

#: planted failure kind (study.synth) -> the first reason the intake must give
EXPECTED_FIRST_REASON = {
    "blurred": "quality:blurred",
    "underexposed": "quality:underexposed",
    "overexposed": "quality:overexposed",
    "no_face": "quality:no_face",
    "minor": "criterion:adult",
    "other_facial_disease": "criterion:no_other_facial_disease",
}


def test_criteria_semantics():
    cases = pd.DataFrame({"case_id": list("abcdefg"),
                          "age": [30, 17, math.nan, "40", "x", 18, 90],
                          "dx": ["acne", "acne", "acne", "rosacea", "acne", "", "acne"]})
    crit = [Criterion(id="age_known", field="age", description="", required=True),
            Criterion(id="adult", field="age", description="", min=18, max=80),
            Criterion(id="acne", field="dx", description="", allowed=["acne"], required=False),
            Criterion(id="not_rosacea", field="dx", description="", excluded=["rosacea"]),
            Criterion(id="site", field="no_such_column", description="", required=False)]
    r = eligibility.apply_criteria(cases, crit)
    assert r["failed"].tolist() == [[], ["adult"], ["age_known", "adult"], ["acne", "not_rosacea"], ["adult"], ["not_rosacea"],
                                     ["adult"]]
    assert r["first_failed"].tolist() == ["", "adult", "age_known", "acne", "adult", "not_rosacea", "adult"]
    assert r["eligible"].tolist() == [True] + [False] * 6
    # numbers in 'allowed' compare as numbers, strings as strings
    c = Criterion(id="fitz", field="f", description="", allowed=[1, 2, "III"])
    assert [eligibility.evaluate_criterion(v, c) for v in ("1", "2.0", "III", "3", "iii")] == [True, True, True, False, False]


def _tables():
    cases = pd.DataFrame({"case_id": ["a", "b", "c", "d", "e"], "decodable": [True, False, True, True, True],
                          "age": [30, 30, 30, 12, 40], "diagnosis": ["acne"] * 5, "other_facial_disease": ["none"] * 4 + ["rosacea"]})
    q = pd.DataFrame({"case_id": ["a", "b", "c", "d", "e"], "decodable": [True, False, True, True, True],
                      "quality_pass": [True, False, False, True, True],
                      "quality_reasons": [[], ["not_decodable"], ["blurred", "no_face"], [], []]})
    return cases, q


def test_decision_table_and_flow_add_up():
    cases, q = _tables()
    readings = pd.DataFrame({"reader_id": ["r1", "r1", "r2", "r2"], "reader_group": ["junior", "junior", "senior", "senior"],
                             "case_id": ["a", "d", "a", "c"], "grade": ["I"] * 4})
    table, model = eligibility.decide_eligibility(cases, q, criteria=PROTOCOL.inclusion, readings=readings, models=["m1", "m2"])
    flow = model.model_dump()
    assert table["included"].tolist() == [True, False, False, False, False]
    assert table["first_reason"].tolist() == ["", "not_decodable", "quality:blurred", "criterion:adult",
                                              "criterion:no_other_facial_disease"]
    assert table.loc[2, "reasons"] == ["quality:blurred", "quality:no_face"]
    assert flow["received"] == 5 and flow["not_decodable"] == 1 and flow["passed_quality"] == 3
    assert flow["failed_quality"]["by_reason"]["blurred"] == 1 and flow["failed_quality"]["any_reason"]["no_face"] == 1
    assert flow["failed_quality"]["by_reason"]["no_face"] == 0
    assert flow["failed_eligibility"]["by_criterion"] == {"age_known": 0, "adult": 1, "facial_acne": 0,
                                                          "no_other_facial_disease": 1}
    assert flow["included"] == 1 and flow["check"] is True
    assert flow["analysed"] == {"models": {"m1": 1, "m2": 1}, "readers": {"r1": 1, "r2": 1}}
    assert flow["missing_readings"] == {"by_reader": {"r1": 0, "r2": 0}, "cases_without_any_reading": 0,
                                        "readings_of_excluded_cases": 2, "excluded_cases_read": 2}
    assert flow["reader_groups"] == {"r1": "junior", "r2": "senior"}


def test_flow_svg_is_wellformed_and_shows_the_counts():
    cases, q = _tables()
    _, flow = eligibility.decide_eligibility(cases, q, criteria=PROTOCOL.inclusion, models=["m1"])
    svg = flow_svg(flow)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    texts = " | ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    for needle in ("Images received (n = 5 images)", "Not decodable (n = 1 images)", "Failed image quality (n = 1 images)",
                   "blurred: 1", "Not eligible (n = 2 images)", "adult (18 years or older): 1",
                   "Included in the analysis (n = 1 images)", "model m1: 1"):
        assert needle in texts, needle


def test_flow_counts_every_failed_check_and_the_readings_of_excluded_cases():
    """A case failing two checks is counted under each and under "more than one reason"; the
    criteria of a case that failed quality are counted too; readings of excluded cases are shown."""
    from study.report.context.flow import flow_context
    from study.report.flow_diagram import ReferenceSplit, flow_view

    cases, q = _tables()
    cases.loc[2, "age"] = 15  # c: blurred, no face, and a minor
    readings = pd.DataFrame({"reader_id": ["r1", "r1", "r2", "r2", "r2"], "reader_group": ["junior"] * 5,
                             "case_id": ["a", "d", "a", "c", "d"], "grade": ["I"] * 5})
    _, flow = eligibility.decide_eligibility(cases, q, criteria=PROTOCOL.inclusion, readings=readings, models=["m"])
    checks = flow.exclusion_checks
    assert checks is not None
    assert checks["quality"].excluded == 1 and checks["quality"].more_than_one == 1
    assert checks["quality"].by_check == {"quality:blurred": 1, "quality:no_face": 1, "criterion:adult": 1}
    assert checks["eligibility"].by_check == {"criterion:adult": 1, "criterion:no_other_facial_disease": 1}
    assert checks["eligibility"].more_than_one == 0 and checks["decodable"].excluded == 1
    assert flow.missing_readings.readings_of_excluded_cases == 3 and flow.missing_readings.excluded_cases_read == 2
    texts = " | ".join(t.text or "" for t in ET.fromstring(flow_svg(flow)).iter() if t.tag.endswith("text"))
    for needle in ("Failed image quality (n = 1 images)", "every failed check, per case:", "blurred: 1", "no face: 1",
                   "adult (18 years or older): 1", "more than one reason: 1", "Readings of 2 excluded cases, not analysed:",
                   "3 readings"):
        assert needle in texts, needle
    ref = [ReferenceSplit(cut="III", source="MRMC binary endpoint", positive=1, negative=0, missing=0)]
    svg = flow_svg(flow, reference=ref)
    assert "grade III or worse: 1; below: 0" in svg
    rows = {r[0]: r for r in flow_context(flow, reference=ref)["table"]["rows"]}
    assert "blurred: 1; no face: 1; adult (18 years or older): 1; more than one reason: 1" in \
        rows["Assessed for image quality"][4]
    assert rows["Readings of 2 excluded cases, not analysed (count of readings)"][1] == "3"
    assert rows["Included, reference positive (grade III or worse; MRMC binary endpoint)"][1] == "1"
    assert [st.label for st in flow_view(flow).stages][:4] == ["Images received", "Assessed for image quality",
                                                         "Assessed for eligibility",
                                                         "Included (reference standard available)"]


def test_reference_split_counts_the_included_cases_by_reference_grade():
    from study.report.flow_diagram import reference_split
    from study.results.baseline import LevelCount

    class _Sev:  # the part of the baseline block reference_split reads
        levels = [LevelCount(value=v, n=n, percent=None) for v, n in (("I", 5), ("II", 7), ("III", 3), ("IV", 2))]
        n_missing = 1

    class _Baseline:
        severity = _Sev()

    (sp,) = reference_split(_Baseline(), PROTOCOL)  # the protocol's MRMC endpoint: grade III or worse
    assert (sp.cut, sp.positive, sp.negative, sp.missing) == ("III", 5, 12, 1)
    assert reference_split(None, PROTOCOL) == []


def _synth_cohort(tmp_path_factory):
    synth = pytest.importorskip("study.synth")
    out = tmp_path_factory.mktemp("synth")
    synth.make_cohort(out, cases=180, seed=20261121, image_size=256, exclusion_rate=0.5, workers=1)
    return out


@pytest.fixture(scope="module")
def assessed(tmp_path_factory):
    out = _synth_cohort(tmp_path_factory)
    cases = cohort.load_manifest(out / "manifest.csv", image_root=out / "images")
    q = quality.assess_cases(cases, thresholds=PROTOCOL.quality, workers=1, progress=False)
    table, flow = eligibility.decide_eligibility(cases, q, criteria=PROTOCOL.inclusion, models=["m"])
    return cases, q, table, flow.model_dump()


@pytest.mark.slow
def test_planted_failures_precision_recall(assessed):
    """Each planted failure kind is excluded with the right first reason: precision and recall >= 0.95."""
    cases, _, table, flow = assessed
    planted = cases["planted_exclusion"].fillna("").astype(str).tolist()
    first = table["first_reason"].tolist()
    counts = pd.Series(planted).value_counts()
    for kind, reason in EXPECTED_FIRST_REASON.items():
        assert counts.get(kind, 0) >= 15, f"too few planted {kind} cases to measure"
        tp = sum(p == kind and f == reason for p, f in zip(planted, first))
        predicted = sum(f == reason for f in first)
        precision, recall = tp / max(predicted, 1), tp / counts[kind]
        assert precision >= 0.95 and recall >= 0.95, (kind, precision, recall)
    clean = [f for p, f in zip(planted, first) if not p]
    assert sum(f == "" for f in clean) / len(clean) >= 0.95  # the unplanted cases are included
    assert flow["check"] and flow["received"] == len(cases)


@pytest.mark.slow
def test_logistic_quality_model_on_the_features(assessed):
    cases, q, _, _ = assessed
    labels = ~cases["planted_exclusion"].isin(["blurred", "underexposed", "overexposed", "no_face"])
    model = quality.fit_quality_model(q, labels.to_numpy())
    assert model["cv_auc"] > 0.9 and model["n"] == len(q)
    p = quality.predict_quality(model, q)
    assert ((p > 0.5) == labels.to_numpy()).mean() > 0.9


def test_readers_part_added_later_equals_the_flow_built_with_readings():
    """The workflow's split (eligibility without readings, readers added by the readings step)
    gives the same flow.json, key order included, as building it with the readings at once."""
    cases, q = _tables()
    readings = pd.DataFrame({"reader_id": ["r1", "r2"], "reader_group": ["junior", "senior"], "case_id": ["a", "c"],
                             "grade": ["I", "II"]})
    table, cases_only = eligibility.decide_eligibility(cases, q, criteria=PROTOCOL.inclusion, models=["m"])
    _, at_once = eligibility.decide_eligibility(cases, q, criteria=PROTOCOL.inclusion, readings=readings, models=["m"])
    later = eligibility.add_readers(cases_only, readings, included=table.loc[table["included"], "case_id"])
    assert later.model_dump_json() == at_once.model_dump_json()
    assert json.loads(later.model_dump_json())["analysed"]["readers"] == {"r1": 1, "r2": 0}
    assert cases_only.missing_readings is None and cases_only.analysed.readers == {}
    assert eligibility.add_readers(cases_only, None, included=["a"]) == cases_only


def test_flow_counts_patients_next_to_images():
    """Issue 13 item 4: with patient ids, every stage counts the patients with at least one image there."""
    cases, q = _tables()
    # a, b: patient P1; c: P2; d, e: P3 -> received 3 patients; decodable a, c, d, e (P1, P2, P3);
    # passed quality a, d, e (P1, P3); included a (P1)
    cases["patient_id"] = ["P1", "P1", "P2", "P3", "P3"]
    _, flow = eligibility.decide_eligibility(cases, q, criteria=PROTOCOL.inclusion, models=["m1"])
    pc = flow.patients
    assert (pc.received, pc.decodable, pc.passed_quality, pc.included) == (3, 3, 2, 1)
    assert (pc.images_per_included_patient_min, pc.images_per_included_patient_max) == (1, 1)
    texts = " | ".join(t.text or "" for t in ET.fromstring(flow_svg(flow)).iter() if t.tag.endswith("text"))
    assert "Images received (n = 5 images, 3 patients)" in texts
    assert "Included in the analysis (n = 1 images, 1 patients)" in texts
    # without patient ids the flow says nothing about patients
    _, no_pat = eligibility.decide_eligibility(_tables()[0], q, criteria=PROTOCOL.inclusion, models=["m1"])
    assert no_pat.patients is None
