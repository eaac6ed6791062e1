"""A small study on a real one-node SLURM cluster through `study run --profile slurm` (issue 16, item 5).

The test starts munged, slurmctld and slurmd from Debian's packages in a temporary folder
(tests/slurm/cluster.py; `.ci/run` installs slurm-wlm and munge), runs the same small study
(precomputed detections) locally and through the shipped SLURM profile, and compares the
two results.json files byte for byte. The cluster has no accounting database, so job
states come from squeue (`--slurm-status-command squeue`). It skips, saying why, where the
cluster cannot run (no packages, not root, a real SLURM configuration present, no plugin).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.slurm.cluster import OneNodeCluster, why_not_available
from tests.small_study import make_cohort, study_env, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = why_not_available()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm is not installed "
                        "(pip install 'acne-study[test]')")
    c = OneNodeCluster(tmp_path_factory.mktemp("slurm"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


def test_study_on_slurm_equals_the_local_run(cluster, tmp_path):
    info = make_cohort(tmp_path / "cohort", cases=12)
    # both runs in one folder with one config (every path in results.json is the same): the
    # local run's results are moved aside and Snakemake's records removed before the SLURM run
    work = tmp_path / "study"
    work.mkdir()
    config = write_config(work / "config.yaml", tmp_path / "cohort", info)
    runs = {}
    for where in ("local", "slurm"):
        argv = [sys.executable, "-m", "study", "run", str(config)]
        if where == "slurm":
            argv += ["--profile", "slurm", "--", "--slurm-status-command", "squeue",
                     "--slurm-init-seconds-before-status-checks", "5"]
        proc = subprocess.run(argv, cwd=work, env=study_env() | cluster.env, capture_output=True,
                              text=True, timeout=1500)
        log = work / "results" / "logs" / "workflow.log"
        assert proc.returncode == 0, proc.stderr[-3000:] + (log.read_text()[-3000:] if log.exists() else "")
        runs[where] = (work / "results" / "results.json").read_bytes()
        if where == "local":
            (work / "results").rename(tmp_path / "local-results")
            shutil.rmtree(work / ".snakemake")
    slurm_log = (work / "results" / "logs" / "workflow.log").read_text()
    assert "submitted with SLURM jobid" in slurm_log  # the jobs really went through SLURM
    # byte for byte (results.json holds no timing); on failure, name where they differ
    assert runs["slurm"] == runs["local"], "\n".join(_differences(json.loads(runs["local"]), json.loads(runs["slurm"])))


def _differences(a, b, path: str = "") -> list[str]:
    """Paths (``/key/[i]``) at which two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in (
            _differences(a[k], b[k], f"{path}/{k}") if k in a and k in b else [f"{path}/{k}"])]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}/[{i}]")]
    return [] if a == b else [path]
