"""Running the Snakemake workflow from the ``study`` command (``study run``, ``study demo``, ``study unlock``).

- The console shows a compact progress display (:mod:`study.progress`); Snakemake's whole
  log goes to ``<results_dir>/logs/workflow.log`` (the previous run's is kept as
  ``workflow.previous.log``), and a failed run names that file.
- One ``study run`` at a time per working directory: a run holds an exclusive lock
  (``.snakemake/study-run.lock``, an OS file lock that dies with its process). A Snakemake
  lock found while that lock is free was left by a run that died (kill -9, power loss): it is
  cleared, with a message, before the run starts.
- SIGINT and SIGTERM stop Snakemake and every job it started (they run in their own process
  group) within a few seconds; steps write atomically, so nothing half-written looks finished.
- The report path is printed only when the report exists.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from study.config import SNAKEFILE
from study.errors import Problem, StudyError

#: seconds Snakemake gets to stop its jobs after SIGTERM before the group is killed
STOP_GRACE_S = 5.0
#: Snakemake arguments after which no report is expected
NO_REPORT_ARGS = ("-n", "--dry-run", "--dryrun", "--lint", "--summary", "-S", "--unlock", "--list-rules",
                  "--list", "-l", "--dag", "--rulegraph", "--filegraph", "--until", "-U")


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


def results_dir_of(config: dict, workdir: Path) -> Path:
    """The study's results folder (absolute)."""
    results = Path(config.get("results_dir", f"results/{config['study']}"))
    return results if results.is_absolute() else workdir / results


def _snakemake_cmd(config_path: Path, workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
            "--configfile", str(config_path), *args]


#: the profiles shipped with the workflow (``profiles/<name>/config.yaml`` next to the Snakefile)
PROFILES_DIR = SNAKEFILE.parent / "profiles"


def resolve_profile(name: str) -> Path:
    """The folder of a Snakemake profile: ``name`` as a path, else a shipped profile's name.

    Raises
    ------
    StudyError
        When neither holds a ``config.yaml`` (naming the shipped profiles).
    """
    for candidate in (Path(name), PROFILES_DIR / name):
        if (candidate / "config.yaml").is_file():
            return candidate.resolve()
    shipped = sorted(p.name for p in PROFILES_DIR.iterdir() if (p / "config.yaml").is_file() and p.name != "default")
    raise StudyError(f"{name!r} is neither a folder holding config.yaml nor a shipped profile; "
                     f"expected a path or one of {shipped}", file="--profile")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


@contextlib.contextmanager
def run_lock(workdir: Path) -> Iterator[None]:
    """Hold the working directory's run lock, or fail saying which run holds it.

    An ``fcntl`` lock, so the operating system releases it when its process dies, however
    it dies: a lock that is free means no ``study run`` is running there.
    """
    import fcntl

    lock_dir = workdir / ".snakemake"
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / "study-run.lock"
    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise StudyError(f"another `study run` (pid {holder}) is running in this working directory; "
                             "wait for it to finish or stop it", file=str(workdir)) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def stale_snakemake_locks(workdir: Path) -> list[Path]:
    """Snakemake's lock files in ``workdir`` (meaningful only while :func:`run_lock` is held)."""
    locks = workdir / ".snakemake" / "locks"
    return sorted(locks.glob("*.lock")) if locks.is_dir() else []


def snakemake_processes(workdir: Path) -> list[int]:
    """Process ids of Snakemake processes working in ``workdir`` (e.g. a plain ``snakemake`` a user started)."""
    import psutil

    found = []
    target = str(workdir.resolve())
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info["pid"] == os.getpid() or not any("snakemake" in part for part in cmdline[:3]):
            continue
        if proc.info.get("cwd") == target or target in cmdline:
            found.append(int(proc.info["pid"]))
    return found


def unlock(config_path: Path, *, workdir: Path) -> None:
    """Remove Snakemake's locks for this study (``snakemake --unlock``)."""
    proc = subprocess.run(_snakemake_cmd(config_path, workdir, "--unlock"), cwd=workdir, env=_env(),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise StudyError([Problem("snakemake --unlock", "", (proc.stderr.strip() or proc.stdout.strip())[-2000:])])


def _stop(proc: subprocess.Popen[str], sig: int) -> None:
    """Stop Snakemake and its jobs: ``sig`` to the process group, then SIGKILL after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM if sig == signal.SIGINT else sig)
    deadline = time.monotonic() + STOP_GRACE_S
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group (jobs included)
    proc.wait()


class Interrupted(Exception):
    """The run was stopped by a signal; ``code`` is the exit status to end with (128 + signal)."""

    def __init__(self, sig: int):
        self.sig = sig
        self.code = 128 + sig
        super().__init__(f"stopped by {signal.Signals(sig).name}")


def run_snakemake(config_path: Path, *, config: dict, workdir: Path, cores: int | None = 2,
                  extra: list[str] | None = None, quiet: bool = False, verbose: bool = False,
                  profile: Path | None = None) -> Path | None:
    """Run the workflow for ``config_path`` in ``workdir``; return the report PDF's path.

    Parameters
    ----------
    config_path : Path
        The study config file Snakemake reads.
    config : dict
        The same config, parsed (for the results folder).
    workdir : Path
        Working directory relative paths are resolved in.
    cores : int or None
        Cores Snakemake may use; ``None`` leaves them to the profile (its ``cores``/``jobs``).
    extra : list of str, optional
        Extra Snakemake arguments (what follows ``--`` on the command line).
    quiet : bool
        No progress display.
    verbose : bool
        Show Snakemake's own log instead of the compact display.
    profile : Path, optional
        A Snakemake profile folder (:func:`resolve_profile`), e.g. the SLURM one.

    Returns
    -------
    Path or None
        The report's path; ``None`` when no report exists after the run (a dry run, lint, a
        target short of the report), so a caller never prints a path that does not exist.

    Raises
    ------
    StudyError
        The workflow failed: the failed steps' own messages (their log files hold the
        ``study step`` error) and the path of the whole log.
    Interrupted
        SIGINT or SIGTERM stopped the run (its jobs are stopped too).
    """
    from study.progress import WorkflowProgress

    extra = list(extra or [])
    results = results_dir_of(config, workdir)
    log_path = results / "logs" / "workflow.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with run_lock(workdir):
        stale = stale_snakemake_locks(workdir)
        if stale and (others := snakemake_processes(workdir)):
            raise StudyError(f"Snakemake (pid {', '.join(map(str, others))}) is running in this working directory; "
                             "wait for it to finish or stop it", file=str(workdir))
        # rotated only once this run may start: a refused run must not move the running one's log
        if log_path.exists():
            log_path.replace(log_path.with_name("workflow.previous.log"))
        if stale:
            print(f"study: clearing a stale lock left in {workdir / '.snakemake' / 'locks'} by a run that ended "
                  "without cleaning up", file=sys.stderr)
            unlock(config_path, workdir=workdir)
        cores_args = ["--cores", str(cores)] if cores is not None else []
        profile_args = ["--profile", str(profile)] if profile is not None else []
        cmd = _snakemake_cmd(config_path, workdir, *profile_args, *cores_args, "--rerun-incomplete",
                             "--printshellcmds", *extra)
        progress = WorkflowProgress(stream=sys.stderr) if not (quiet or verbose) else None
        received: list[int] = []

        def on_signal(signum: int, frame: object) -> None:
            received.append(signum)
            raise Interrupted(signum)

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        proc = subprocess.Popen(cmd, cwd=workdir, env=_env(), stderr=subprocess.STDOUT, stdout=subprocess.PIPE,
                                text=True, start_new_session=True)
        captured: list[str] = []
        try:
            with open(log_path, "w", encoding="utf-8") as log:
                assert proc.stdout is not None
                for line in proc.stdout:
                    captured.append(line)
                    log.write(line)
                    if progress is not None:
                        progress.feed(line)
                    elif verbose:
                        sys.stderr.write(line)
            rc = proc.wait()
        except Interrupted:
            _stop(proc, received[0])
            if progress is not None:
                progress.close()
            print(f"study: stopped by {signal.Signals(received[0]).name}; the log is {log_path}", file=sys.stderr)
            raise
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        if progress is not None:
            progress.close()
    if rc != 0:
        text = "".join(captured)
        problems: list[Problem] = []
        for failed in _failed_logs(text, workdir):
            try:
                body = failed.read_text(encoding="utf-8", errors="replace").strip()
            except FileNotFoundError:
                continue
            msg = [ln for ln in body.splitlines() if ln.strip()]
            problems.append(Problem(str(failed), "", "\n    ".join(msg[-15:]) if msg else "(empty log)"))
        if not problems:
            tail = [ln.rstrip() for ln in captured if ln.strip()][-12:]
            problems.append(Problem("snakemake", "", f"the workflow failed (exit {rc}):\n    " + "\n    ".join(tail)))
        problems.append(Problem(str(log_path), "", "Snakemake's whole log of this run"))
        raise StudyError(problems)
    if any(a in extra for a in NO_REPORT_ARGS):
        return None
    pdf = results / "report.pdf"
    if not pdf.is_file():  # e.g. Snakemake was given a target short of the report
        print(f"study: no report was written by this run (Snakemake's arguments: {' '.join(extra) or 'none'}); "
              f"the log is {log_path}", file=sys.stderr)
        return None
    return pdf
