"""Each ``study step`` logs its peak memory (VmHWM) and CPU time (getrusage(2)) (issue 16: Snakemake's
benchmark files sample every 30 s after the first 30 s and miss peaks between samples)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from study.job_usage import JobUsage, job_usage, parse_usage_line, usage_line

_ALLOCATE = """
import subprocess, sys, time
import numpy as np
from study.job_usage import job_usage, usage_line
a = np.ones(300 * 2**20, np.uint8); del a                        # 300 MiB touched, then freed
subprocess.run([sys.executable, "-c", "import numpy as np; np.ones(200 * 2**20, np.uint8)"], check=True)
t0 = time.process_time()
while time.process_time() - t0 < 0.3:
    pass
print(usage_line(job_usage("probe", wall_s=1.0)))
"""


# The probe is started straight from a process holding 800 MiB, as pytest holds ~1.7 GB late in a
# full run (CI of 2026-12-02 read 1772 MB: Linux keeps the parent's resident set in ru_maxrss over exec).
_LARGE_PARENT = """
import subprocess, sys
import numpy as np
held = np.ones(800 * 2**20, np.uint8)
sys.stdout.write(subprocess.run([sys.executable, "-c", sys.argv[1]], capture_output=True, text=True,
                                check=True).stdout)
"""


def test_peak_memory_of_the_process_and_its_child_is_what_they_touched():
    """Reference: the sizes of the arrays the process and its child allocate and touch, not the
    resident set of the process that started it."""
    out = subprocess.run([sys.executable, "-c", _LARGE_PARENT, _ALLOCATE], capture_output=True, text=True,
                         check=True).stdout
    u = parse_usage_line(out.strip().splitlines()[-1])
    assert u is not None and u.step == "probe"
    assert 300 <= u.self_mb < 300 + 400  # the array, plus the interpreter and numpy
    assert 200 <= u.child_mb < 200 + 200
    assert u.cpu_s >= 0.3 and u.wall_s == 1.0


def test_usage_line_round_trips():
    u = JobUsage(step="evaluate_detection", self_mb=1366.9, child_mb=0.0, cpu_s=47.95, wall_s=37.5)
    assert parse_usage_line(usage_line(u)) == u
    assert parse_usage_line("rule quality:") is None


def test_study_step_writes_its_usage_to_stderr(tmp_path, capsys):
    from study.cli import main

    pd.DataFrame({"case_id": ["a", "b"]}).to_parquet(tmp_path / "cases.parquet")
    for k, ids in enumerate((["a"], ["b"])):
        pd.DataFrame({"case_id": ids, "quality_pass": [True]}).to_parquet(tmp_path / f"s{k}.parquet")
    code = main(["step", "merge_quality", f"cases={tmp_path / 'cases.parquet'}",
                 f"shards={tmp_path / 's0.parquet'},{tmp_path / 's1.parquet'}", f"out={tmp_path / 'q.parquet'}"])
    assert code == 0
    lines = [parse_usage_line(x) for x in capsys.readouterr().err.splitlines()]
    usage = [u for u in lines if u is not None]
    assert len(usage) == 1 and usage[0].step == "merge_quality"
    assert usage[0].self_mb == pytest.approx(job_usage("x", wall_s=0).self_mb, rel=0.5)
    assert pd.read_parquet(tmp_path / "q.parquet")["case_id"].tolist() == ["a", "b"]
