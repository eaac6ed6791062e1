"""The typed results.json: the committed JSON Schema is the generated one, models refuse unknown
keys, and the report fixture (made by the real steps) validates and round-trips unchanged."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "report" / "results.json.gz"


def _fixture() -> dict:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        return json.load(f)


def test_committed_schema_equals_the_generated_one():
    from study.results.schema import SCHEMA_PATH, schema_text

    committed = (ROOT / SCHEMA_PATH).read_text(encoding="utf-8")
    assert committed == schema_text(), (
        f"{SCHEMA_PATH} is out of date with the models in study/results/; regenerate it with "
        f"`study schema --out {SCHEMA_PATH}` and commit it")


def test_schema_names_its_version():
    from study.results import SCHEMA_VERSION
    from study.results.schema import results_schema

    s = results_schema()
    assert s["$id"].endswith(f"v{SCHEMA_VERSION}") and s["x-schema-version"] == SCHEMA_VERSION
    assert s["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    assert s["additionalProperties"] is False


def test_report_fixture_validates_and_round_trips():
    from study.io import dumps_json
    from study.results import Results

    data = _fixture()
    results = Results.model_validate(data)
    assert dumps_json(results) == dumps_json(data)


def test_report_fixture_is_valid_under_the_json_schema():
    import jsonschema

    from study.results.schema import results_schema

    jsonschema.Draft202012Validator(results_schema()).validate(_fixture())


@pytest.mark.parametrize("block, model", [("flow", "Flow"), ("baseline", "Baseline"), ("study", "StudyBlock"),
                                          ("provenance", "Provenance")])
def test_models_reject_an_unknown_key(block, model):
    import study.results as R

    data = _fixture()[block]
    cls = getattr(R, model)
    cls.model_validate(data)
    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        cls.model_validate({**data, "n_positive": 1})


def test_model_meta_rejects_a_fallback_key():
    from study.results import ModelMeta

    meta = _fixture()["models"]["sim-detector"]
    with pytest.raises(ValidationError):
        ModelMeta.model_validate({**{k: v for k, v in meta.items() if k != "weights_sha256"}, "sha256": "0" * 64})


def test_a_step_output_of_the_wrong_shape_names_file_and_key(tmp_path):
    from study.collect import read_block
    from study.errors import StudyError
    from study.results.flow import Flow

    flow = _fixture()["flow"]
    bad = {**flow, "failed_quality": {**flow["failed_quality"], "total": "many"}}
    bad.pop("included")
    (tmp_path / "flow.json").write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(StudyError) as e:
        read_block(tmp_path / "flow.json", Flow)
    msg = str(e.value)
    assert "flow.json" in msg and "failed_quality.total" in msg and "included" in msg
    assert "study.results.flow.Flow" in msg


def test_schema_command_writes_the_file(tmp_path, run_cli):
    from study.results.schema import schema_text

    rc, out, err = run_cli("schema", "--out", tmp_path / "s.json")
    assert rc == 0, err
    assert out.strip() == str(tmp_path / "s.json")
    assert (tmp_path / "s.json").read_text(encoding="utf-8") == schema_text()


def test_a_malformed_block_in_results_json_is_a_study_error():
    from study.errors import StudyError
    from study.report.context import build_context

    r = _fixture()
    r["flow"] = {k: v for k, v in r["flow"].items() if k != "included"}
    with pytest.raises(StudyError) as e:
        build_context(r, figures={})
    assert "results.json" in str(e.value) and "flow.included" in str(e.value)
