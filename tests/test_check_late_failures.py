"""``study check`` catches what ``study run`` used to fail on late (or run wrongly with).

Each case breaks one thing a hostile tester found passing ``study check``: protocol
cross-field rules (seed, thresholds, match-rule radius, grading-rule order and reach), two
models with one id, and model files that exist but cannot be used. Each must end ``study
check`` with exit 2 and a line naming the file and the key.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from test_check_fixtures import make_study

from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "models" / "demo"
CLASSES = ["comedone", "papule", "pustule", "nodule", "cyst", "scar"]


def _protocol(fn):
    def mutate(s):
        data = yaml.safe_load(s["protocol"].read_text(encoding="utf-8"))
        fn(data)
        s["protocol"].write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return mutate


def _config(fn):
    def mutate(s):
        data = yaml.safe_load(s["config"].read_text(encoding="utf-8"))
        fn(data, s)
        s["config"].write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return mutate


def _torchvision_model(s, *, weights: Path, sha256: str | None = None) -> dict:
    entry = {"id": "frcnn", "backend": "torchvision", "architecture": "acne_small_frcnn", "weights": str(weights),
             "classes": CLASSES, "device": "cpu"}
    if sha256:
        entry["weights_sha256"] = sha256
    return entry


def _with_weights(make_file, *, sha256: str | None = None):
    def fn(cfg, s):
        path = s["root"] / "weights.pt"
        make_file(path)
        cfg["models"].append(_torchvision_model(s, weights=path, sha256=sha256))
    return _config(fn)


def _truncated(path: Path) -> None:
    data = (DEMO / "demo-frcnn.pt").read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _wrong_shape(path: Path) -> None:
    import torch

    sd = torch.load(DEMO / "demo-frcnn.pt", weights_only=True)
    key = next(k for k, v in sd.items() if v.ndim >= 2)
    sd[key] = torch.zeros(*[d + 1 for d in sd[key].shape])
    torch.save(sd, path)


def _garbage_onnx(cfg, s):
    path = s["root"] / "model.onnx"
    path.write_bytes(bytes(range(256)) * 8)
    cfg["models"].append({"id": "onnx-model", "backend": "onnx", "file": str(path), "classes": CLASSES})


def _rules(rules, default="I"):
    return _protocol(lambda d: d["grading"].update(rules=rules, default=default))


# (id, mutation, substrings one line of the output must hold)
LATE = [
    ("negative_seed", _protocol(lambda d: d["statistics"].update(bootstrap_seed=-5)),
     ["protocol.yaml: statistics.bootstrap_seed", "greater than or equal to 0"]),
    ("score_threshold_above_one", _protocol(lambda d: d["detection"].update(score_thresholds=[0.5, 1.5])),
     ["protocol.yaml: detection.score_thresholds", "less than or equal to 1"]),
    ("operating_threshold_not_a_score_threshold",
     _protocol(lambda d: d["detection"].update(score_thresholds=[0.25, 0.75], operating_threshold=0.5)),
     ["protocol.yaml: detection", "operating_threshold 0.5 is not one of score_thresholds"]),
    ("center_distance_without_radius", _protocol(lambda d: d["detection"].update(match_rule="center_distance")),
     ["protocol.yaml: detection", "center_distance needs center_distance_px"]),
    ("rules_out_of_severity_order",
     _rules([{"level": "II", "any_of": {"papule": 1}}, {"level": "IV", "any_of": {"nodule": 1}},
             {"level": "III", "any_of": {"pustule": 1}}]),
     ["protocol.yaml: grading", "rules[1] (level 'IV') comes after rules[0] (level 'II')"]),
    ("rule_that_never_applies",
     _rules([{"level": "IV", "any_of": {"nodule": 1}}, {"level": "III", "any_of": {"pustule": 1}},
             {"level": "II", "any_of": {"pustule": 2}}]),
     ["protocol.yaml: grading", "rules[2] (level 'II'", "can never apply"]),
    ("level_no_rule_reaches",
     _rules([{"level": "IV", "any_of": {"nodule": 1}}, {"level": "III", "any_of": {"pustule": 1}}]),
     ["protocol.yaml: grading", "no rule gives level(s) ['II']"]),
    ("duplicate_model_id", _config(lambda c, s: c["models"].append(dict(c["models"][0]))),
     ["config.yaml: models.1.id", "model id 'vendor' is used by models.0 too"]),
    ("checkpoint_truncated", _with_weights(_truncated),
     ["model frcnn", "weights"]),
    ("checkpoint_sha256_mismatch", _with_weights(lambda p: shutil.copy(DEMO / "demo-frcnn.pt", p), sha256="0" * 64),
     ["model frcnn", "weights_sha256", "sha256 of"]),
    ("state_dict_wrong_shape", _with_weights(_wrong_shape),
     ["model frcnn", "size mismatch"]),
    ("onnx_garbage", _config(_garbage_onnx),
     ["model onnx-model"]),
]


@pytest.mark.parametrize("name,mutate,expected", LATE, ids=[c[0] for c in LATE])
def test_check_catches_what_run_would_fail_on(tmp_path, run_cli, name, mutate, expected):
    s = make_study(tmp_path)
    mutate(s)
    rc, out, err = run_cli("check", s["config"])
    assert rc == 2, f"{name}: exit {rc}\n{out}\n{err}"
    assert "Traceback" not in out + err
    assert any(all(e in line for e in expected) for line in err.splitlines()), \
        f"{name}: no line with all of {expected} in:\n{err}"


def test_shipped_protocols_and_demo_model_pass_the_new_rules(tmp_path, run_cli):
    from study.protocol import load_protocol

    for p in (REPO_ROOT / "protocols").glob("*.yaml"):
        load_protocol(p)
    s = make_study(tmp_path)
    _config(lambda c, s_: c.update(models=[{"id": "demo", "spec": str(DEMO / "model.yaml")}]))(s)
    rc, out, err = run_cli("check", s["config"])
    assert rc == 0, err
