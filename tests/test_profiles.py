"""`study run --profile NAME`: the shipped profiles are found, and the profile's cores/jobs are not overridden."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from study import workflow
from study.errors import StudyError


def test_shipped_profiles_resolve_and_name_their_executor():
    for name, executor in (("slurm", "slurm"), ("kubernetes", "kubernetes")):
        path = workflow.resolve_profile(name)
        assert path == workflow.PROFILES_DIR / name
        cfg = yaml.safe_load((path / "config.yaml").read_text())
        assert cfg["executor"] == executor and cfg["jobs"] >= 1 and cfg["restart-times"] >= 1
    with pytest.raises(StudyError, match="neither a folder"):
        workflow.resolve_profile("no-such-profile")


def test_default_workflow_profile_lifts_the_checksum_size_limit():
    cfg = yaml.safe_load((workflow.PROFILES_DIR / "default" / "config.yaml").read_text())
    assert cfg["max-checksum-file-size"].endswith("GB") and int(cfg["max-checksum-file-size"][:-2]) >= 1000


class _FakeSnakemake:
    """Stands in for the Snakemake process: records its command, succeeds at once."""

    commands: list[list[str]] = []

    def __init__(self, cmd, **kwargs):
        self.commands.append(cmd)
        self.stdout = iter(["Nothing to be done.\n"])
        self.pid = 0

    def wait(self):
        return 0

    def poll(self):
        return 0


@pytest.mark.parametrize("argv,cores,profile", [
    ([], "2", None),                                # no profile: study's default of 2 cores
    (["--profile", "slurm"], None, "slurm"),        # the profile's cores and jobs
    (["--profile", "slurm", "--cores", "8"], "8", "slurm"),
])
def test_run_passes_the_profile_and_cores_only_when_asked(tmp_path, monkeypatch, run_cli, argv, cores, profile):
    from tests.conftest import REPO_ROOT

    cfg = yaml.safe_load((REPO_ROOT / "config" / "demo.yaml").read_text())
    cfg["protocol"] = str(REPO_ROOT / "protocols" / "chinese-2019.yaml")
    cfg["results_dir"] = str(tmp_path / "results")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    _FakeSnakemake.commands = []
    monkeypatch.setattr(subprocess, "Popen", _FakeSnakemake)
    rc, _, _ = run_cli("run", str(tmp_path / "c.yaml"), "--directory", str(tmp_path), *argv)
    assert rc == 0
    cmd = _FakeSnakemake.commands[-1]
    assert (cmd[cmd.index("--cores") + 1] if "--cores" in cmd else None) == cores
    assert (cmd[cmd.index("--profile") + 1] if "--profile" in cmd else None) == (
        str(workflow.PROFILES_DIR / profile) if profile else None)
