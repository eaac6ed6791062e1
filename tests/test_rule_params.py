"""The protocol values each workflow step reads: digests per step and the view refusing undeclared fields."""

from __future__ import annotations

import pytest
import yaml

from study.rule_params import STEP_PROTOCOL_FIELDS, protocol_digests, protocol_for_step
from tests.conftest import REPO_ROOT

PROTOCOL = REPO_ROOT / "protocols" / "chinese-2019.yaml"


def _write(tmp_path, change=None):
    p = yaml.safe_load(PROTOCOL.read_text())
    if change:
        change(p)
    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(p), encoding="utf-8")
    return path


def test_digest_changes_only_for_steps_reading_the_changed_value(tmp_path):
    base = protocol_digests(_write(tmp_path))
    changed = protocol_digests(_write(tmp_path, lambda p: p["statistics"].update(bootstrap_replicates=999)))
    differ = {s for s in STEP_PROTOCOL_FIELDS if base[s] != changed[s]}
    # fuse_reference's patient-bootstrap intervals of the annotators' agreement read the statistics too
    assert differ == {"evaluate_detection", "evaluate_counting", "evaluate_agreement", "evaluate_mrmc", "fuse_reference"}
    # the reference standard's fusion rules re-run only the fusion
    fused = protocol_digests(_write(tmp_path, lambda p: p.update(reference_standard={"fusion": {"rule": "consensus"}})))
    assert {s for s in STEP_PROTOCOL_FIELDS if base[s] != fused[s]} == {"fuse_reference"}
    # the file's layout (key order, comments) is not a value: same digests
    p = yaml.safe_load(PROTOCOL.read_text())
    path = tmp_path / "reordered.yaml"
    path.write_text("# a comment\n" + yaml.safe_dump(dict(reversed(list(p.items())))), encoding="utf-8")
    assert protocol_digests(path) == base


def test_view_refuses_fields_the_step_does_not_declare(tmp_path):
    path = _write(tmp_path)
    q = protocol_for_step(path, "quality")
    assert q.quality.face_required in (True, False)
    with pytest.raises(AttributeError, match="does not declare"):
        _ = q.statistics
    readings = protocol_for_step(path, "readings")
    assert readings.levels == ["I", "II", "III", "IV"]  # a property reading grading, which it declares
    with pytest.raises(AttributeError, match="'grading'"):
        _ = protocol_for_step(path, "quality").levels
    with pytest.raises(AttributeError, match="read-only"):
        q.quality = None  # type: ignore[misc]
    with pytest.raises(KeyError):
        protocol_for_step(path, "no_such_step")


def test_resources_grow_with_the_cohort_the_shard_and_the_attempt():
    from study.resources import STEP_COSTS, rule_resources

    small = rule_resources("evaluate_detection", n_cases=1_000)
    big = rule_resources("evaluate_detection", n_cases=100_000)
    assert big["mem_mb"] > small["mem_mb"] and big["runtime"] >= small["runtime"]
    # a sharded step's job holds one shard's cases
    assert STEP_COSTS["quality"].sharded
    assert rule_resources("quality", n_cases=100_000, n_shards=10) == rule_resources("quality", n_cases=10_000)
    retry = rule_resources("evaluate_detection", n_cases=100_000, attempt=2)
    assert retry["mem_mb"] > big["mem_mb"] and retry["runtime"] > big["runtime"]
    assert rule_resources("predict", n_cases=10, gpu=True)["gpu"] == 1
    with pytest.raises(KeyError):
        rule_resources("no_such_step", n_cases=1)
