"""The typed ``agreement`` block: the report fixture validates and round-trips unchanged, unknown
keys are refused, and what ``evaluate_agreement`` returns is the typed model."""

import gzip
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from study.io import dumps_json
from study.results.agreement import (
    AgreementResult,
    BootstrappedEstimate,
    GroupComparison,
    ReaderComparison,
    StandaloneAgreement,
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "report" / "results.json.gz"


@pytest.fixture(scope="module")
def block() -> dict:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        return json.load(f)["agreement"]


def test_fixture_block_validates_and_round_trips(block):
    ag = AgreementResult.model_validate(block)
    assert json.loads(dumps_json(ag)) == block
    assert isinstance(ag.raters["sim-detector"].accuracy, BootstrappedEstimate)
    assert ag.raters["sim-detector"].group is None  # written as null, kept
    kinds = {type(c) for c in ag.comparisons}
    assert kinds == {ReaderComparison, GroupComparison}


def test_unknown_keys_are_refused(block):
    with pytest.raises(ValidationError, match="extra"):
        AgreementResult.model_validate({**block, "fallback": 1})
    rater = dict(block["raters"]["sim-detector"])
    rater["accuracy"] = {**rater["accuracy"], "value": 0.5}
    with pytest.raises(ValidationError, match="raters.sim-detector.accuracy.value"):
        AgreementResult.model_validate({**block, "raters": {"sim-detector": rater}})
    with pytest.raises(ValidationError):  # a group's estimates have no bootstrap sub-interval
        g = next(iter(block["groups"]))
        bad = {**block["groups"][g], "accuracy": block["raters"]["sim-detector"]["accuracy"]}
        AgreementResult.model_validate({**block, "groups": {g: bad}})


def test_missing_keys_are_refused(block):
    with pytest.raises(ValidationError, match="settings"):
        AgreementResult.model_validate({k: v for k, v in block.items() if k != "settings"})


def test_standalone_file_adds_inputs_and_protocol(block):
    doc = {**block, "input": {"reference": {"path": "ref.csv", "sha256": "0" * 64}}}
    assert "protocol" not in json.loads(dumps_json(StandaloneAgreement.model_validate(doc)))
    with pytest.raises(ValidationError):
        StandaloneAgreement.model_validate({**doc, "protocol": {"name": "p"}})


def test_comparisons_without_shared_cases_round_trip_and_report_dashes():
    from test_agreement import make_study, options

    from study.metrics.agreement import evaluate_agreement
    from study.report.context.comparisons import comparisons_context
    from study.results.agreement import NoSharedCases

    ref, rat, po, _ = make_study(80, seed=5)
    first = set(ref.case_id[:40])
    keep = (((rat.rater_id == "ai") & ~rat.case_id.isin(first)) | (rat.rater_id.isin(["j1", "j2"]) & rat.case_id.isin(first))
            | (rat.rater_id == "i2"))
    out = evaluate_agreement(ref, rat[keep], options=options(n_bootstrap=100), patient_of=po)
    empty = [c for c in out.comparisons if isinstance(c, NoSharedCases)]
    assert {(c.versus, c.versus_kind) for c in empty} == {("j1", "reader"), ("j2", "reader"), ("junior", "group")}
    assert all(c.n_cases == 0 and c.reason for c in empty)
    text = dumps_json(out)
    assert dumps_json(AgreementResult.model_validate_json(text)) == text
    rows = {r[1]: r for r in comparisons_context(out)["table"]["rows"]}
    assert rows["j1 (reader)"][3:] == ["–"] * 5 and rows["junior (group)"][3:] == ["–"] * 5
