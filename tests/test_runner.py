"""``study run`` as a person uses it: its own options, a compact console, recovery after a crash,
stopping on SIGINT/SIGTERM, and never a report path that does not exist."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.conftest import REPO_ROOT

STUDY = str(Path(sys.executable).parent / "study")

#: Snakemake 9's own lines for a two-step run (copied from a real run)
SNAKEMAKE_LINES = """\
Building DAG of jobs...
Job stats:
job      count
-----  -------
a            1
all          1
total        2

Select jobs to execute...
[Tue Dec  1 03:07:32 2026]
localrule a:
    output: a.txt
    jobid: 1
[Tue Dec  1 03:07:33 2026]
Finished jobid: 1 (Rule: a)
1 of 2 steps (50%) done
[Tue Dec  1 03:07:33 2026]
localrule all:
    input: a.txt
    jobid: 0
[Tue Dec  1 03:07:33 2026]
Finished jobid: 0 (Rule: all)
2 of 2 steps (100%) done
Complete log(s): /tmp/x.snakemake.log
"""


def test_split_passthrough_hands_only_what_follows_the_separator():
    from study.cli import split_passthrough

    assert split_passthrough(["run", "c.yaml", "--cores", "1", "--", "--dry-run", "-p"]) == (
        ["run", "c.yaml", "--cores", "1"], ["--dry-run", "-p"])
    assert split_passthrough(["run", "c.yaml", "--directory", "x"]) == (["run", "c.yaml", "--directory", "x"], [])
    assert split_passthrough(["check", "c.yaml", "--", "x"]) == (["check", "c.yaml", "--", "x"], [])


def test_unknown_option_before_separator_is_an_error_not_a_snakemake_argument(tmp_path):
    proc = subprocess.run([STUDY, "run", "c.yaml", "--dry-run"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unrecognized arguments: --dry-run" in proc.stderr
    assert not (tmp_path / ".snakemake").exists()


def test_progress_display_one_line_per_finished_step():
    from study.progress import WorkflowProgress

    out = io.StringIO()
    progress = WorkflowProgress(stream=out, interactive=False)
    for line in SNAKEMAKE_LINES.splitlines(keepends=True):
        progress.feed(line)
    progress.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("1/2 steps done (a)") and lines[1].endswith("2/2 steps done (all)")
    assert (progress.done, progress.total) == (2, 2)


def test_progress_display_says_nothing_to_be_done():
    from study.progress import WorkflowProgress

    out = io.StringIO()
    progress = WorkflowProgress(stream=out, interactive=False)
    progress.feed("Nothing to be done (all requested files are present and up to date).\n")
    progress.close()
    assert out.getvalue() == "Nothing to be done: every output is up to date.\n"


def test_run_lock_refuses_a_second_run_in_the_same_directory(tmp_path):
    from study.errors import StudyError
    from study.workflow import run_lock

    with run_lock(tmp_path):
        with pytest.raises(StudyError, match=rf"another `study run` \(pid {os.getpid()}\) is running"):
            with run_lock(tmp_path):
                pass
    with run_lock(tmp_path):  # released when the first run ended
        pass


def _tiny_study(root: Path) -> Path:
    protocol = yaml.safe_load((REPO_ROOT / "protocols" / "chinese-2019.yaml").read_text())
    protocol["statistics"]["bootstrap_replicates"] = 100
    (root / "protocol.yaml").write_text(yaml.safe_dump(protocol), encoding="utf-8")
    cohort = root / "cohort"
    cfg = {
        "study": "tiny", "protocol": str(root / "protocol.yaml"), "results_dir": str(root / "results"),
        "cohort": {"manifest": str(cohort / "manifest.csv"), "image_root": str(cohort / "images"),
                   "annotations": str(cohort / "annotations.json"), "reference": str(cohort / "reference.csv"),
                   "readings": str(cohort / "readings.csv"), "synth": {"cases": 30, "seed": 3}},
        "models": [{"id": "demo-frcnn", "spec": str(REPO_ROOT / "models" / "demo" / "model.yaml")}],
    }
    (root / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return root / "config.yaml"


def test_stale_lock_is_cleared_with_a_message_and_a_dry_run_prints_no_report_path(tmp_path):
    config = _tiny_study(tmp_path)
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text(str(tmp_path / "cohort" / "manifest.csv") + "\n")  # as a killed run leaves it
    proc = subprocess.run([STUDY, "run", str(config), "--", "--dry-run"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "clearing a stale lock" in proc.stderr
    assert not list(locks.glob("*.lock"))
    assert proc.stdout.strip() == ""  # no report path: the dry run wrote no report
    assert (tmp_path / "results" / "logs" / "workflow.log").stat().st_size > 0


def test_unlock_command(tmp_path):
    config = _tiny_study(tmp_path)
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("x\n")
    proc = subprocess.run([STUDY, "unlock", str(config)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("unlocked ") and "report" not in proc.stdout
    assert not list(locks.glob("*.lock"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_run_and_its_jobs_within_seconds(tmp_path, sig):
    config = _tiny_study(tmp_path)
    proc = subprocess.Popen([STUDY, "run", str(config), "--cores", "1"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    log = tmp_path / "results" / "logs" / "workflow.log"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until a job (the cohort generator) is running
        if log.exists() and "rule synth" in log.read_text(errors="replace"):
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the run never started a job")
    time.sleep(1.0)
    family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    assert len(family) >= 3  # study, snakemake, the job
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == 128 + sig
    assert "Traceback" not in err and f"stopped by {signal.Signals(sig).name}" in err
    time.sleep(0.5)
    alive = [p for p in family if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes left behind: {alive}"
    results = tmp_path / "results"
    for finished in ("results.json", "report.pdf", "report.html"):
        assert not (results / finished).exists()
