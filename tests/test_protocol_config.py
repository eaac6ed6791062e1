"""Protocol and study-config loading: the shipped files are valid; mistakes are named."""

from __future__ import annotations

import copy

import pytest
import yaml

from study.config import load_config, validate_config
from study.errors import StudyError
from study.protocol import load_protocol, parse_protocol
from tests.conftest import REPO_ROOT

PROTOCOLS = sorted((REPO_ROOT / "protocols").glob("*.yaml"))


@pytest.mark.parametrize("path", PROTOCOLS, ids=lambda p: p.name)
def test_shipped_protocols_load(path):
    loaded = load_protocol(path)
    assert len(loaded.sha256) == 64
    assert loaded.protocol.levels == loaded.protocol.grading.levels


def test_chinese_and_hayashi_levels():
    assert load_protocol(REPO_ROOT / "protocols/chinese-2019.yaml").protocol.levels == ["I", "II", "III", "IV"]
    h = load_protocol(REPO_ROOT / "protocols/hayashi-acne04.yaml").protocol
    assert h.levels == ["mild", "moderate", "severe", "very_severe"]
    assert [b.max for b in h.grading.bands] == [5, 20, 50, None]


def _raw(name="chinese-2019.yaml"):
    return yaml.safe_load((REPO_ROOT / "protocols" / name).read_text())


def _messages(data):
    with pytest.raises(StudyError) as e:
        parse_protocol(data, source="p.yaml")
    return [str(p) for p in e.value.problems]


def test_unknown_key_is_named():
    data = _raw()
    data["detection"]["iou_treshold"] = 0.5
    msgs = _messages(data)
    assert any("detection.iou_treshold" in m and "unknown key" in m for m in msgs)


def test_all_problems_reported_at_once():
    data = _raw()
    data["detection"]["iou_threshold"] = 1.5
    data["statistics"]["confidence_level"] = "high"
    data["colour"] = "red"
    msgs = _messages(data)
    assert len(msgs) == 3, msgs


def test_grading_rule_with_unknown_class():
    data = _raw()
    data["grading"]["rules"][0]["any_of"] = {"nodules": 1}
    assert any("nodules" in m for m in _messages(data))


def test_bands_must_increase_and_cover_levels():
    data = _raw("hayashi-acne04.yaml")
    data["grading"]["bands"][1]["max"] = 3
    assert any("increase" in m for m in _messages(data))
    data = _raw("hayashi-acne04.yaml")
    data["grading"]["bands"] = data["grading"]["bands"][:3]
    assert any("every level" in m for m in _messages(data))


def test_mrmc_endpoint_must_be_a_level():
    data = _raw()
    data["statistics"]["mrmc_positive_from"] = "V"
    assert any("mrmc_positive_from" in m for m in _messages(data))


def test_missing_protocol_file(tmp_path):
    with pytest.raises(StudyError, match="not found"):
        load_protocol(tmp_path / "nope.yaml")


def test_demo_config_is_valid():
    cfg = load_config(REPO_ROOT / "config/demo.yaml")
    assert cfg["shards"] >= 1 and cfg["models"][0]["id"] == "demo-frcnn"


def test_config_problems_named(tmp_path):
    cfg = yaml.safe_load((REPO_ROOT / "config/demo.yaml").read_text())
    bad = copy.deepcopy(cfg)
    bad["shards"] = 0
    bad["models"][0]["backend"] = "caffe"
    del bad["cohort"]["manifest"]
    problems = validate_config(bad, source="c.yaml")
    text = "\n".join(map(str, problems))
    assert "shards" in text and "caffe" in text and "manifest" in text
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(bad))
    with pytest.raises(StudyError):
        load_config(p)


def test_study_run_bad_config_exits_2_without_traceback(tmp_path, run_cli):
    p = tmp_path / "c.yaml"
    p.write_text("study: x\nprotocol: 3\n")
    rc, out, err = run_cli("run", p)
    assert rc == 2
    assert "Traceback" not in err and "cohort" in err


def test_step_unknown_argument(run_cli):
    rc, _, err = run_cli("step", "quality", "protocol=p", "bogus=1")
    assert rc == 2 and "bogus" in err
