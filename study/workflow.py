"""Running the Snakemake workflow from the ``study`` command (``study run``, ``study demo``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from study.config import SNAKEFILE
from study.errors import Problem, StudyError


def _failed_logs(stderr_text: str, workdir: Path) -> list[Path]:
    """Log files of the jobs Snakemake reports as failed."""
    logs: list[Path] = []
    lines = stderr_text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("Error in rule"):
            for nxt in lines[i + 1 : i + 30]:
                s = nxt.strip()
                if s.startswith("log:"):
                    path = s[len("log:"):].strip().split(" (")[0]
                    p = Path(path)
                    logs.append(p if p.is_absolute() else workdir / p)
                    break
    return logs


def run_snakemake(config_path: Path, *, config: dict, workdir: Path, cores: int = 2,
                  extra: list[str] | None = None, quiet: bool = False) -> Path | None:
    """Run the workflow for ``config_path`` in ``workdir``; return the report PDF's path.

    Snakemake's own progress goes to stderr. When a job fails, the messages of the failed
    steps (their log files hold the ``study step`` error) are raised as a StudyError, so the
    user sees what was wrong with their input rather than a scheduler traceback. Snakemake
    removes the outputs of failed jobs, so nothing half-written looks finished.
    """
    extra = list(extra or [])
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
           "--configfile", str(config_path), "--cores", str(cores), "--rerun-incomplete",
           "--printshellcmds" if not quiet else "--quiet", *extra]
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stderr=subprocess.PIPE, text=True)
    captured: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        captured.append(line)
        sys.stderr.write(line)
    rc = proc.wait()
    if rc != 0:
        text = "".join(captured)
        problems: list[Problem] = []
        for log in _failed_logs(text, workdir):
            try:
                body = log.read_text(encoding="utf-8", errors="replace").strip()
            except FileNotFoundError:
                continue
            msg = [ln for ln in body.splitlines() if ln.strip()]
            problems.append(Problem(str(log), "", "\n    ".join(msg[-15:]) if msg else "(empty log)"))
        if not problems:
            problems.append(Problem("snakemake", "", f"the workflow failed (exit {rc}); see the messages above"))
        raise StudyError(problems)
    if any(a in extra for a in ("-n", "--dry-run", "--dryrun", "--lint", "--summary", "-S")):
        return None
    results = Path(config.get("results_dir", f"results/{config['study']}"))
    pdf = (results if results.is_absolute() else workdir / results) / "report.pdf"
    return pdf
