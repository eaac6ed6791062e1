"""The model card of a model spec: validated fields, and training patients checked against the cohort.

A cohort patient among the model's training patients is an error naming the model spec and how
many patients overlap, in ``study check`` and in the steps of ``study run`` (predict, merge).
"""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
import yaml

from study.errors import StudyError
from study.model_card import hash_patient_id
from study.modelspec import load_model_spec
from tests.conftest import REPO_ROOT
from test_check_fixtures import make_study

CLASSES = ["comedone", "papule"]


def _spec(tmp_path, card):
    (tmp_path / "dt.json").write_text("[]", encoding="utf-8")
    return load_model_spec({"id": "vendor", "backend": "precomputed", "detections": "dt.json", "classes": CLASSES,
                            "card": card}, base_dir=tmp_path)


def test_hash_is_sha256_of_the_utf8_id():
    # reference: hashlib's sha256 of the id's UTF-8 bytes, as `printf %s P1 | sha256sum` prints it
    assert hash_patient_id("Pé1") == hashlib.sha256("Pé1".encode()).hexdigest()


@pytest.mark.parametrize("fmt", ["ids", "sha256"])
def test_overlap_is_an_error_naming_the_spec_and_the_count(tmp_path, fmt):
    train = ["P1", "P2", "X9", "X10"]
    lines = train if fmt == "ids" else [hash_patient_id(p) for p in train]
    (tmp_path / "train.txt").write_text("# training patients\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    spec = _spec(tmp_path, {"training_patients": {"file": "train.txt", "format": fmt}})
    with pytest.raises(StudyError) as e:
        spec.checked_card(["P1", "P2", "P3"])
    msg = str(e.value)
    assert "model vendor" in msg and "2 of the cohort's 3 patients" in msg and "4 training patients" in msg
    assert "'P1'" not in msg and "'P2'" not in msg  # which patients is not printed
    card = spec.checked_card(["P3", "P4"])
    assert card is not None and card.training_patients is not None
    tp = card.training_patients
    assert (tp.n_training_patients, tp.n_cohort_patients, tp.n_overlap, tp.format) == (4, 2, 0, fmt)
    assert tp.file_sha256 == hashlib.sha256((tmp_path / "train.txt").read_bytes()).hexdigest()


def test_bad_hash_line_and_unknown_card_key_are_errors(tmp_path):
    (tmp_path / "train.txt").write_text("abc\n", encoding="utf-8")
    spec = _spec(tmp_path, {"training_patients": {"file": "train.txt", "format": "sha256"}})
    with pytest.raises(StudyError, match="line 1.*64-hex-digit"):
        spec.checked_card(["P1"])
    with pytest.raises(StudyError, match="card.*weights_hash"):
        _spec(tmp_path, {"weights_hash": "x"})
    with pytest.raises(StudyError, match="card.training_patients.file.*file not found"):
        _spec(tmp_path, {"training_patients": {"file": "missing.txt"}})


def test_no_card_gives_none_and_a_card_without_a_list_records_none(tmp_path):
    assert _spec(tmp_path, None).checked_card(["P1"]) is None
    card = _spec(tmp_path, {"architecture": "Faster R-CNN"}).checked_card(["P1"])
    assert card is not None and card.architecture == "Faster R-CNN" and card.training_patients is None
    assert card.version is None and card.training_data.size is None


def test_demo_model_has_a_card():
    spec = load_model_spec(REPO_ROOT / "models" / "demo" / "model.yaml")
    card = spec.checked_card(["P0001"])
    assert card is not None
    for field in ("version", "architecture", "input_size", "preprocessing", "patient_separation",
                  "threshold_rationale"):
        assert getattr(card, field), field
    assert card.training_data.description and card.training_data.size and card.operating_threshold == 0.5


def test_study_check_reports_training_patients_in_the_cohort(tmp_path, run_cli):
    s = make_study(tmp_path)
    (tmp_path / "train.txt").write_text("\n".join(hash_patient_id(p) for p in ("P2", "P4", "Q7")) + "\n",
                                        encoding="utf-8")
    cfg = yaml.safe_load(s["config"].read_text(encoding="utf-8"))
    cfg["models"][0]["card"] = {"training_patients": {"file": str(tmp_path / "train.txt"), "format": "sha256"}}
    s["config"].write_text(yaml.safe_dump(cfg), encoding="utf-8")
    rc, out, err = run_cli("check", s["config"])
    assert rc == 2, out + err
    assert "model vendor" in err and "2 of the cohort's 4 patients are among the 3 training patients" in err


def test_run_steps_check_every_patient_of_the_cohort(tmp_path):
    """The patients the predict and merge steps of `study run` check the card against: every case's."""
    from study import steps

    cases = pd.DataFrame({"case_id": ["C1", "C2", "C3"], "patient_id": ["P1", "P1", None]})
    assert steps._cohort_patients(cases) == ["C3", "P1"]
    (tmp_path / "train.txt").write_text("P1\n", encoding="utf-8")
    spec = _spec(tmp_path, {"training_patients": {"file": "train.txt"}})
    with pytest.raises(StudyError, match="1 of the cohort's 2 patients"):
        spec.checked_card(steps._cohort_patients(cases))


def test_predict_step_of_study_run_stops_before_predicting(tmp_path):
    """`study run`'s predict step (study.steps.predict) refuses a model trained on a cohort patient."""
    import json

    from study import steps

    (tmp_path / "dt.json").write_text("[]", encoding="utf-8")
    (tmp_path / "train.txt").write_text("P2\n", encoding="utf-8")
    pd.DataFrame({"case_id": ["C1", "C2"], "patient_id": ["P1", "P2"]}).to_parquet(tmp_path / "cases.parquet")
    entry = {"id": "vendor", "backend": "precomputed", "detections": str(tmp_path / "dt.json"),
             "classes": ["comedone"], "card": {"training_patients": {"file": str(tmp_path / "train.txt")}}}
    with pytest.raises(StudyError, match="1 of the cohort's 2 patients are among the 1 training patients"):
        steps.predict(protocol=str(REPO_ROOT / "protocols" / "chinese-2019.yaml"),
                      cases=str(tmp_path / "cases.parquet"), eligibility=str(tmp_path / "missing.parquet"),
                      quality=str(tmp_path / "missing.parquet"), model=json.dumps(entry), shard="0", n_shards="1",
                      out=str(tmp_path / "out.parquet"))
    assert not (tmp_path / "out.parquet").exists()


def test_training_patients_file_is_an_input_of_the_model_steps(tmp_path):
    """The workflow's model steps take the card's training-patients file as input (study/model_card.py
    card_input_files, used by workflow/rules/common.smk model_files): editing the list re-runs the check."""
    from study.model_card import card_input_files

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.yaml").write_text(yaml.safe_dump(
        {"id": "x", "backend": "precomputed", "detections": "dt.json", "classes": ["a"],
         "card": {"training_patients": {"file": "train.txt"}}}), encoding="utf-8")
    assert card_input_files({"id": "x", "spec": "m/model.yaml"}, base_dir=tmp_path) == [str(tmp_path / "m" / "train.txt")]
    assert card_input_files({"id": "x", "card": {"training_patients": {"file": "/abs/t.txt"}}}) == ["/abs/t.txt"]
    assert card_input_files({"id": "x", "spec": "m/model.yaml", "card": {}}, base_dir=tmp_path) == []
    assert card_input_files({"id": "x", "spec": "missing.yaml"}, base_dir=tmp_path) == []
    assert card_input_files({"id": "demo", "spec": str(REPO_ROOT / "models" / "demo" / "model.yaml")}) == []
