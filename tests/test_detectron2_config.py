"""Detectron2 configs are read safely: a YAML tag that would run code is refused, with or without
detectron2 installed (detectron2's own ``merge_from_file`` falls back to ``yaml.unsafe_load`` by
default; we check every file of the ``_BASE_`` chain with ``yaml.safe_load`` first and merge with
``allow_unsafe=False``). LazyConfig ``.py`` files stay refused."""

from __future__ import annotations

import shutil

import pytest

from study.detectors.detectron2_backend import check_config_file, load
from study.errors import StudyError
from study.modelspec import load_model_spec

from tests.conftest import REPO_ROOT

CODE_TAG = '_BASE_: null\nMODEL: !!python/object/apply:os.system ["touch {marker}"]\n'


def _spec(tmp_path, config_name: str):
    shutil.copy(REPO_ROOT / "models" / "demo" / "demo-frcnn.pt", tmp_path / "w.pth")
    return load_model_spec({"id": "d2", "backend": "detectron2", "config": str(tmp_path / config_name),
                            "weights": str(tmp_path / "w.pth"), "classes": ["acne"]})


def test_code_running_tag_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CODE_TAG.format(marker=marker), encoding="utf-8")
    with pytest.raises(StudyError, match="refusing Detectron2 config .* YAML tag"):
        check_config_file(cfg, model_id="d2")
    assert not marker.exists()


def test_unsafe_base_file_is_refused(tmp_path):
    marker = tmp_path / "PWNED"
    (tmp_path / "base.yaml").write_text(CODE_TAG.format(marker=marker), encoding="utf-8")
    (tmp_path / "cfg.yaml").write_text("_BASE_: base.yaml\nMODEL:\n  DEVICE: cpu\n", encoding="utf-8")
    with pytest.raises(StudyError, match="base.yaml: it uses a YAML tag"):
        check_config_file(tmp_path / "cfg.yaml", model_id="d2")
    assert not marker.exists()


def test_remote_base_and_loops_are_refused(tmp_path):
    (tmp_path / "cfg.yaml").write_text("_BASE_: https://example.org/base.yaml\n", encoding="utf-8")
    with pytest.raises(StudyError, match="must be a local file path"):
        check_config_file(tmp_path / "cfg.yaml")
    (tmp_path / "a.yaml").write_text("_BASE_: b.yaml\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("_BASE_: a.yaml\n", encoding="utf-8")
    with pytest.raises(StudyError, match="loops back"):
        check_config_file(tmp_path / "a.yaml")


def test_plain_config_chain_passes(tmp_path):
    (tmp_path / "base.yaml").write_text("MODEL:\n  META_ARCHITECTURE: GeneralizedRCNN\n", encoding="utf-8")
    (tmp_path / "cfg.yaml").write_text("_BASE_: base.yaml\nMODEL:\n  DEVICE: cpu\n", encoding="utf-8")
    check_config_file(tmp_path / "cfg.yaml")


def test_backend_refuses_unsafe_config_before_importing_detectron2(tmp_path):
    marker = tmp_path / "PWNED"
    (tmp_path / "cfg.yaml").write_text(CODE_TAG.format(marker=marker), encoding="utf-8")
    with pytest.raises(StudyError, match="refusing Detectron2 config"):
        load(_spec(tmp_path, "cfg.yaml"))
    assert not marker.exists()


def test_lazyconfig_python_file_is_refused(tmp_path):
    (tmp_path / "cfg.py").write_text("import os\nos.system('true')\n", encoding="utf-8")
    with pytest.raises(StudyError, match=r"LazyConfig \(\.py\)"):
        load(_spec(tmp_path, "cfg.py"))
