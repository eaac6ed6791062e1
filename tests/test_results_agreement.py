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
