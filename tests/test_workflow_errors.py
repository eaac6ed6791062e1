"""A user error inside a workflow step: exit 2, the step's message (file, row, value), no
traceback, and nothing that looks like a finished study."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT


@pytest.mark.slow
def test_bad_grade_in_readings_stops_the_study_with_its_message(tmp_path):
    from study.synth import make_cohort

    cohort = tmp_path / "cohort"
    make_cohort(cohort, cases=12, seed=3)
    lines = (cohort / "readings.csv").read_text(encoding="utf-8").splitlines()
    fields = lines[3].split(",")
    fields[-1] = "V"  # not a level of the Chinese 2019 protocol
    lines[3] = ",".join(fields)
    (cohort / "readings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = {
        "study": "bad",
        "protocol": str(REPO_ROOT / "protocols" / "chinese-2019.yaml"),
        "results_dir": "results",
        "cohort": {"manifest": "cohort/manifest.csv", "image_root": "cohort/images",
                   "annotations": "cohort/annotations.json", "reference": "cohort/reference.csv",
                   "readings": "cohort/readings.csv"},
        "models": [{"id": "demo-frcnn", "spec": str(REPO_ROOT / "models" / "demo" / "model.yaml")}],
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    study = str(Path(sys.executable).parent / "study")
    proc = subprocess.run([study, "run", "cfg.yaml", "--cores", "2"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "cohort/readings.csv: row 4" in proc.stderr and "'V'" in proc.stderr
    results = tmp_path / "results"
    for finished in ("readings.parquet", "results.json", "report.pdf", "report.html"):
        assert not (results / finished).exists(), finished
