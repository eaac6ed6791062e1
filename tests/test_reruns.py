"""Re-runs redo only what changed (issue 16, item 3).

A small study with a precomputed model is run once; then each change is made and
Snakemake's dry run says which jobs it would re-run (the jobs of its "Job stats" table):

- touching every input without changing it (one of them larger than Snakemake's default
  1 MB checksum limit) re-runs nothing;
- changing the bootstrap replicates re-runs the evaluation, collect and report only;
- changing one reading re-runs readings, agreement, MRMC, collect and report only;
- changing a quality threshold does not re-run intake;
- changing only the protocol's report settings re-runs collect and report only.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from study.config import SNAKEFILE
from tests.small_study import make_cohort, study_env, write_config

pytestmark = pytest.mark.slow

# `decide` (the analysis plan's decisions on the endpoints) is part of the evaluation and reads the readings
EVALUATION = {"evaluate_detection", "evaluate_counting", "evaluate_agreement", "evaluate_mrmc", "decide", "collect",
              "report", "all"}
ONE_READING = {"readings", "evaluate_agreement", "evaluate_mrmc", "decide", "collect", "report", "all"}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("reruns")
    # the annotations padded past Snakemake's default checksum limit (1 MB)
    info = make_cohort(root / "cohort", pad_annotations_to=1_200_000)
    write_config(root / "config.yaml", "cohort", info, study="reruns")
    for f in ("protocol.yaml", "dt.json"):  # the tests touch and edit them at the study's top
        (root / "cohort" / f).rename(root / f)
    cfg = yaml.safe_load((root / "config.yaml").read_text())
    cfg["protocol"] = "protocol.yaml"
    cfg["models"][0]["detections"] = "dt.json"
    (root / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "study", "run", "config.yaml"], cwd=root, capture_output=True,
                         text=True, env=study_env(), timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return root


def would_rerun(root: Path) -> set[str]:
    """The rules Snakemake's dry run would run (its "Job stats" table)."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--configfile",
                           "config.yaml", "--dry-run"], cwd=root, capture_output=True, text=True, env=study_env(),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return set()
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+\s*$", table, flags=re.M)}


def _edit(path: Path, change) -> str:
    before = path.read_text(encoding="utf-8")
    path.write_text(change(before), encoding="utf-8")
    return before


def _protocol_change(**sections):
    def change(text: str) -> str:
        p = yaml.safe_load(text)
        for section, values in sections.items():
            p.setdefault(section, {}).update(values)
        return yaml.safe_dump(p)
    return change


def test_untouched_content_reruns_nothing_at_any_size(study):
    assert (study / "cohort" / "annotations.json").stat().st_size > 1_000_000  # over Snakemake's default limit
    for f in ["protocol.yaml", "dt.json", "cohort/manifest.csv", "cohort/annotations.json", "cohort/reference.csv",
              "cohort/readings.csv"]:
        os.utime(study / f)
    assert would_rerun(study) == set()


def test_bootstrap_replicates_rerun_evaluation_and_report_only(study):
    before = _edit(study / "protocol.yaml", _protocol_change(statistics={"bootstrap_replicates": 150}))
    try:
        assert would_rerun(study) == EVALUATION
    finally:
        (study / "protocol.yaml").write_text(before, encoding="utf-8")


def test_one_reading_reruns_readings_agreement_mrmc_collect_report_only(study):
    path = study / "cohort" / "readings.csv"

    def change(text: str) -> str:
        rows = list(csv.reader(text.splitlines()))
        g = rows[0].index("grade")
        rows[1][g] = "IV" if rows[1][g] != "IV" else "I"
        return "\n".join(",".join(r) for r in rows) + "\n"

    before = _edit(path, change)
    try:
        assert would_rerun(study) == ONE_READING
    finally:
        path.write_text(before, encoding="utf-8")


def test_quality_threshold_does_not_rerun_intake(study):
    before = _edit(study / "protocol.yaml", _protocol_change(quality={"laplacian_var_min": 0.5}))
    try:
        rerun = would_rerun(study)
    finally:
        (study / "protocol.yaml").write_text(before, encoding="utf-8")
    assert {"quality", "eligibility", "predict", "collect", "report"} <= rerun
    assert "intake" not in rerun and "reference" not in rerun


def test_report_settings_rerun_collect_and_report_only(study):
    before = _edit(study / "protocol.yaml", _protocol_change(report={"worst_cases": 3}))
    try:
        assert would_rerun(study) == {"decide", "collect", "report", "all"}  # decide reads the whole protocol
    finally:
        (study / "protocol.yaml").write_text(before, encoding="utf-8")


def test_every_job_records_time_and_peak_memory(study):
    import csv as csv_

    bench = study / "results" / "benchmarks"
    names = {p.stem.split("-")[0] for p in bench.glob("*.tsv")}
    assert {"probe_images", "intake", "quality", "merge_quality", "eligibility", "reference", "readings", "predict",
            "merge_detections", "grade_model", "evaluate_detection", "evaluate_counting", "evaluate_agreement",
            "evaluate_mrmc", "collect", "report"} <= names
    with open(bench / "intake.tsv", newline="") as f:
        row = next(csv_.DictReader(f, delimiter="\t"))
    assert float(row["max_rss"]) > 50 and float(row["s"]) > 0


def test_rules_declare_cluster_resources_and_a_gpu_for_cuda_models(study, tmp_path):
    """Dry run of the whole study (forced): each job's resources, from the cohort's 16 cases."""
    cfg = yaml.safe_load((study / "config.yaml").read_text())
    cfg["models"][0]["device"] = "cuda"
    (study / "config-cuda.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--configfile",
                           "config-cuda.yaml", "--dry-run", "--forceall"], cwd=study, capture_output=True, text=True,
                          env=study_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = re.split(r"\n\s*(?:local)?rule ", proc.stdout + proc.stderr)  # grouped jobs are indented
    by_rule = {}
    for j in jobs[1:]:
        name = j.split(":", 1)[0]
        m = re.search(r"resources: (.*)", j)
        by_rule.setdefault(name, m.group(1) if m else "")
    from study.resources import rule_resources

    want = rule_resources("evaluate_detection", n_cases=16)
    assert f"mem_mb={want['mem_mb']}" in by_rule["evaluate_detection"]
    assert f"runtime={want['runtime']}" in by_rule["evaluate_detection"]
    assert "gpu=1" in by_rule["predict"]
    assert "gpu=1" not in by_rule["quality"]
