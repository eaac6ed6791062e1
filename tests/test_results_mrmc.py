"""The typed ``mrmc`` block (study.results.mrmc): what the producers write validates, and reads back unchanged.

- the report fixture's ``mrmc`` block (written by the real step) validates and serialises to the same JSON;
- ``analyze_mrmc`` results and ``study evaluate mrmc`` output survive a JSON round trip unchanged;
- an unknown key is refused with the field named (no silent extra keys);
- the models give a JSON Schema (for docs/).
"""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import pytest

from study.errors import StudyError
from study.io import dumps_json
from study.metrics.mrmc import analyze_mrmc, load_mrmc_ratings
from study.results.base import NotAssessed
from study.results.mrmc import (
    MRMCAnalysis,
    MRMCBlock,
    MRMCCommandOutput,
    MRMCModelResult,
    parse_mrmc_block,
)

ROOT = Path(__file__).resolve().parent
FIXTURE = ROOT / "fixtures" / "report" / "results.json.gz"
DATA = ROOT / "data" / "mrmc"


def _fixture_block() -> dict:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        return json.load(f)["mrmc"]


def test_fixture_block_validates_and_serialises_unchanged():
    raw = _fixture_block()
    block = parse_mrmc_block(raw)
    assert isinstance(block, MRMCBlock)
    model = block.models["sim-detector"]
    assert isinstance(model, MRMCModelResult)
    assert model.analysis.ai_vs_readers is not None and model.analysis.ai_vs_readers[0].ai_reader == "sim-detector"
    assert model.roc["sim-detector"].fpr[0] == 0
    assert json.loads(dumps_json(block)) == raw


def test_not_assessed_and_absent_blocks():
    block = parse_mrmc_block({"assessed": False, "reason": "no readers"})
    assert isinstance(block, NotAssessed) and block.reason == "no readers"
    assert parse_mrmc_block(None) is None
    raw = _fixture_block()
    raw["models"]["other"] = {"assessed": False, "reason": "one truth only"}
    assert isinstance(parse_mrmc_block(raw).models["other"], NotAssessed)


@pytest.mark.parametrize("path", [
    ("models", "sim-detector", "analysis", "differences", 0),
    ("models", "sim-detector", "analysis", "design"),
    ("models", "sim-detector", "design", "cases_excluded"),
    ("models", "sim-detector", "roc", "senior-1"),
])
def test_an_unknown_key_is_refused_with_its_place(path):
    raw = copy.deepcopy(_fixture_block())
    node = raw
    for p in path:
        node = node[p]
    node["surprise"] = 1
    with pytest.raises(StudyError) as e:
        parse_mrmc_block(raw)
    assert "surprise" in str(e.value) and "Extra inputs are not permitted" in str(e.value)


def test_a_missing_key_is_refused():
    raw = copy.deepcopy(_fixture_block())
    del raw["models"]["sim-detector"]["analysis"]["test"]["p_value"]
    with pytest.raises(StudyError, match="test.p_value"):
        parse_mrmc_block(raw)


def test_analysis_round_trips_through_json():
    ratings = load_mrmc_ratings(DATA / "vandyke.csv")
    for res in (analyze_mrmc(ratings), analyze_mrmc(ratings, method="dbm"), analyze_mrmc(ratings, ai_reader="0")):
        text = dumps_json(res)
        assert dumps_json(MRMCAnalysis.model_validate_json(text)) == text


def test_command_output_validates(tmp_path):
    from study.cli import main

    out = tmp_path / "o.json"
    assert main(["evaluate", "mrmc", "--ratings", str(DATA / "franken.csv"), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    parsed = MRMCCommandOutput.model_validate_json(text)
    assert parsed.input.ratings.path.endswith("franken.csv") and parsed.roc is not None
    assert dumps_json(parsed) == text


def test_option_errors_name_the_flag_and_what_is_expected():
    ratings = load_mrmc_ratings(DATA / "vandyke.csv")
    with pytest.raises(StudyError) as e:
        analyze_mrmc(ratings, confidence=0.3, fom="auc", seed=-1)
    text = str(e.value)
    assert "--confidence: 0.3; expected more than 0.5" in text
    assert "--fom: 'auc'; expected one of 'wilcoxon'" in text
    assert "--seed: -1; expected at least 0" in text


def test_json_schema_is_generated():
    schema = MRMCBlock.model_json_schema()
    assert "MRMCAnalysis" in schema["$defs"] and "models" in schema["properties"]
