"""What one ``study step`` job used: peak memory and CPU time, from the kernel's own accounting.

Snakemake's ``benchmark:`` files sample the job's processes (every second for the first 30 s,
then every 30 s), so a peak between two samples is missed and a job's CPU time is counted only
up to its last sample. The kernel's own accounting has neither gap: ``VmHWM`` of
``/proc/self/status`` is the largest resident set of the process's address space since it
started its program, and getrusage(2)'s ``RUSAGE_CHILDREN`` figures cover every child process
it waited for (figure workers, pools). ``ru_maxrss`` of ``RUSAGE_SELF`` is not used on Linux:
the kernel carries the parent's resident set over ``exec`` (``setmax_mm_hiwater_rss`` of the old
address space in ``exec_mmap``), so a step started straight from a large process (a 1.7 GB
pytest) reported the parent's size as its own. Each ``study step`` and ``study report`` writes the line
of :func:`usage_line` to its log at the end, and ``bench/bench_scale.py`` reads it back with :func:`parse_usage_line`.
"""

from __future__ import annotations

import re
import resource
import sys
from dataclasses import dataclass

_LINE = re.compile(r"^job usage of (?P<step>\S+): peak memory (?P<self_mb>[0-9.]+) MB in this process, "
                   r"(?P<child_mb>[0-9.]+) MB in its largest child process; CPU (?P<cpu_s>[0-9.]+) s "
                   r"\(user \+ system, child processes included\); wall (?P<wall_s>[0-9.]+) s$")


@dataclass(frozen=True)
class JobUsage:
    """Resources of one job.

    Attributes
    ----------
    step : str
        The step's name (``study step NAME``), or ``report`` (``study report``).
    self_mb, child_mb : float
        Peak resident memory (MiB) of the step's process, and of the largest child process it
        waited for (0 without children). The kernel counts in a child the resident set it had
        from this process when forked (shared pages included), so ``child_mb`` is an upper
        bound of what the child added; the job's peak lies between ``max(self_mb, child_mb)``
        and ``self_mb + workers * child_mb``.
    cpu_s : float
        User + system CPU seconds of the process and its waited-for children.
    wall_s : float
        Wall seconds of the step (after the command line was parsed).
    """

    step: str
    self_mb: float
    child_mb: float
    cpu_s: float
    wall_s: float


def _mb(maxrss: int) -> float:
    """``ru_maxrss`` in MiB: kibibytes on Linux, bytes on macOS (getrusage(2) of each)."""
    return maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024


def _own_peak_mb(me: resource.struct_rusage) -> float:
    """Peak resident MiB of this process's own program: ``VmHWM`` (proc(5)) where the system has it,
    else ``ru_maxrss`` (which on Linux also holds the resident set of the process that started it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _mb(me.ru_maxrss)


def job_usage(step: str, *, wall_s: float) -> JobUsage:
    """The resources this process (and its finished children) used so far: ``VmHWM`` and ``getrusage(2)``."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return JobUsage(step=step, self_mb=_own_peak_mb(me), child_mb=_mb(kids.ru_maxrss),
                    cpu_s=me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime, wall_s=float(wall_s))


def usage_line(u: JobUsage) -> str:
    """One log line; :func:`parse_usage_line` reads it back."""
    return (f"job usage of {u.step}: peak memory {u.self_mb:.1f} MB in this process, {u.child_mb:.1f} MB in its "
            f"largest child process; CPU {u.cpu_s:.2f} s (user + system, child processes included); "
            f"wall {u.wall_s:.2f} s")


def parse_usage_line(line: str) -> JobUsage | None:
    """The :class:`JobUsage` of a line written by :func:`usage_line`, or None for any other line."""
    m = _LINE.match(line.strip())
    if m is None:
        return None
    return JobUsage(step=m["step"], self_mb=float(m["self_mb"]), child_mb=float(m["child_mb"]),
                    cpu_s=float(m["cpu_s"]), wall_s=float(m["wall_s"]))
