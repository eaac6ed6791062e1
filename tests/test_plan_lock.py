"""`study lock` and the lock check: locked, not locked, DEVIATION with the changed key; a run never edits a lock."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from study.plan.lock import LOCK_NAME, lock_status

ROOT = Path(__file__).resolve().parents[1]


def _study(tmp_path: Path) -> Path:
    (tmp_path / "protocol.yaml").write_text((ROOT / "protocols" / "chinese-2019.yaml").read_text())
    cfg = {"study": "locktest", "protocol": "protocol.yaml", "results_dir": "out",
           "cohort": {"manifest": "cohort/manifest.csv", "image_root": "cohort/images",
                      "reference": "cohort/reference.csv", "readings": "cohort/readings.csv"},
           "models": [{"id": "demo-frcnn", "spec": str(ROOT / "models" / "demo" / "model.yaml")}]}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _config(path: Path) -> dict:
    from study.config import load_config

    return load_config(path)


def test_lock_then_threshold_change_is_a_deviation_naming_the_key(tmp_path, run_cli):
    cfg_path = _study(tmp_path)
    assert lock_status(_config(cfg_path), workdir=tmp_path).state == "not_locked"
    rc, out, err = run_cli("lock", cfg_path, "--directory", tmp_path)
    assert rc == 0, err
    lock = tmp_path / "out" / LOCK_NAME
    record = json.loads(lock.read_text())
    assert record["inputs"] == {"reference": "not yet present", "readings": "not yet present"}
    assert len(record["protocol_sha256"]) == 64 and record["models"]["demo-frcnn"]["weights"]
    assert "analysis plan locked on" in out
    before = lock.read_bytes()

    status = lock_status(_config(cfg_path), workdir=tmp_path)
    assert status.state == "locked" and status.locked_at == record["locked_at"]
    assert status.statement.startswith(f"Analysis plan locked on {record['locked_at']}")

    # unblinding: the reference and readings appear after the lock; that is no deviation
    (tmp_path / "cohort").mkdir()
    (tmp_path / "cohort" / "reference.csv").write_text("case_id,grade\n")
    assert lock_status(_config(cfg_path), workdir=tmp_path).state == "locked"

    proto = tmp_path / "protocol.yaml"
    proto.write_text(proto.read_text().replace("  operating_threshold: 0.5\n", "  operating_threshold: 0.25\n"))
    status = lock_status(_config(cfg_path), workdir=tmp_path)
    assert status.state == "deviation"
    change = {c.key: (c.old, c.new) for c in status.changes}
    assert change == {"protocol.detection.operating_threshold": (0.5, 0.25)}
    assert status.statement.startswith("DEVIATION") and "protocol.detection.operating_threshold" in status.statement
    assert lock.read_bytes() == before  # checking never edits the lock

    # a lock is never replaced
    rc, _, err = run_cli("lock", cfg_path, "--directory", tmp_path)
    assert rc == 2 and "already locked" in err
    assert lock.read_bytes() == before


def test_a_changed_goal_and_a_changed_reference_file_are_deviations(tmp_path, run_cli):
    cfg_path = _study(tmp_path)
    (tmp_path / "cohort").mkdir()
    ref = tmp_path / "cohort" / "reference.csv"
    ref.write_text("case_id,grade\nc1,I\n")
    assert run_cli("lock", cfg_path, "--directory", tmp_path)[0] == 0
    ref.write_text("case_id,grade\nc1,II\n")
    proto = tmp_path / "protocol.yaml"
    proto.write_text(proto.read_text().replace("comparator: {kind: goal, value: 0.85}",
                                               "comparator: {kind: goal, value: 0.80}", 1))
    keys = [c.key for c in lock_status(_config(cfg_path), workdir=tmp_path).changes]
    assert keys == ["protocol.analysis_plan.endpoints[0].comparator.value", "cohort.reference (sha256)"]


def test_decide_step_writes_the_deviation_into_the_results(tmp_path, run_cli):
    """The decide step (what `study run` runs) reports the lock status; here a protocol without readings."""
    from study.results.decisions import AnalysisPlanResults
    from study.steps import decide

    cfg_path = _study(tmp_path)
    assert run_cli("lock", cfg_path, "--directory", tmp_path)[0] == 0
    proto = tmp_path / "protocol.yaml"
    data = yaml.safe_load(proto.read_text())
    data["detection"]["operating_threshold"] = 0.75
    del data["analysis_plan"]
    proto.write_text(yaml.safe_dump(data))
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        decide(protocol="protocol.yaml", config=json.dumps(_config(cfg_path)), reference="-", readings="-",
               grades="", cases="-", eligibility="-", mrmc="-", out="d.json")
    finally:
        os.chdir(cwd)
    res = AnalysisPlanResults.model_validate_json((tmp_path / "d.json").read_text())
    assert res.lock.state == "deviation"
    keys = {c.key for c in res.lock.changes}
    assert keys == {"protocol.detection.operating_threshold", "protocol.analysis_plan"}


def test_study_plan_writes_the_table_and_the_figure(tmp_path, run_cli):
    cfg_path = _study(tmp_path)
    rc, out, err = run_cli("plan", cfg_path, "--directory", tmp_path, "--out", tmp_path / "plan")
    assert rc == 0, err
    from study.plan import power as pw
    from study.results.sample_size import SampleSizePlan

    res = SampleSizePlan.model_validate_json((tmp_path / "plan" / "sample_size.json").read_text())
    assert (tmp_path / "plan" / "power_curve.png").stat().st_size > 1000
    sens = next(r for r in res.endpoints if r.id == "sensitivity_grade_iii")
    n = pw.exact_goal_sample_size(goal=0.85, expected=0.95, alpha1=0.025, power=0.8)
    assert sens.n_analysed == n and sens.patients == -(-n * 100 // 45)
    assert res.patients_required == max(r.patients for r in res.endpoints if r.patients)
    assert "patients" in out.splitlines()[-2]


def test_lock_and_plan_refuse_a_protocol_without_a_plan(tmp_path, run_cli):
    cfg_path = _study(tmp_path)
    data = yaml.safe_load((tmp_path / "protocol.yaml").read_text())
    del data["analysis_plan"]
    (tmp_path / "protocol.yaml").write_text(yaml.safe_dump(data))
    rc, _, err = run_cli("lock", cfg_path, "--directory", tmp_path)
    assert rc == 2 and "no analysis_plan to lock" in err and not (tmp_path / "out" / LOCK_NAME).exists()
    rc, _, err = run_cli("plan", cfg_path, "--directory", tmp_path, "--out", tmp_path / "plan")
    assert rc == 2 and "no analysis_plan" in err and not (tmp_path / "plan").exists()
