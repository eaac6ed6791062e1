"""A compact console view of a Snakemake run: steps done of total, the current step, elapsed time.

Snakemake writes several hundred lines for a study; :class:`WorkflowProgress` reads them
line by line (they all go to the run's log file as well) and shows a person only what they
need: a progress line that redraws itself on a terminal, or one line per finished step when the output is not a
terminal (a CI log, a pipe). It recognises Snakemake 9's own lines:

- ``N of M steps (P%) done``: a step finished;
- ``rule NAME:`` / ``localrule NAME:``: a step started;
- ``Nothing to be done ...``: every output is up to date.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

_DONE = re.compile(r"^(\d+) of (\d+) steps \((?:\d+(?:\.\d+)?)%\) done")
_START = re.compile(r"^(?:local)?rule (\w+):\s*$")
_FINISHED = re.compile(r"^Finished jobid: \d+ \(Rule: (\w+)\)")
_NOTHING = "Nothing to be done"


@dataclass
class WorkflowProgress:
    """Turn Snakemake's log lines into a short display on ``stream``.

    Parameters
    ----------
    stream : text stream
        Where the display goes (stderr).
    interactive : bool, optional
        Draw a progress bar that redraws itself (a terminal); default: ``stream.isatty()``.
    """

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    interactive: bool | None = None
    done: int = 0
    total: int | None = None
    running: list[str] = field(default_factory=list)
    nothing_to_do: bool = False
    started: float = field(default_factory=time.monotonic)
    last_finished: str | None = None
    _drawn: int = 0

    def __post_init__(self) -> None:
        if self.interactive is None:
            self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())

    def elapsed(self) -> str:
        s = int(time.monotonic() - self.started)
        return f"{s // 60}:{s % 60:02d}"

    def _columns(self) -> int:
        import shutil

        return max(40, shutil.get_terminal_size((100, 24)).columns - 1)

    def feed(self, line: str) -> None:
        """Read one line of Snakemake's output."""
        text = line.strip()
        if m := _START.match(text):
            self.running.append(m.group(1))
            self._show()
        elif m := _FINISHED.match(text):
            if m.group(1) in self.running:
                self.running.remove(m.group(1))
            self.last_finished = m.group(1)
        elif m := _DONE.match(text):
            self.done, self.total = int(m.group(1)), int(m.group(2))
            self._show(finished=self.last_finished)
        elif text.startswith(_NOTHING):
            self.nothing_to_do = True

    def _show(self, finished: str | None = None) -> None:
        current = ", ".join(dict.fromkeys(self.running)) or "-"
        if self.interactive:
            width = 24
            filled = int(width * self.done / self.total) if self.total else 0
            bar = "#" * filled + "." * (width - filled)
            total = self.total if self.total is not None else "?"
            text = f"[{self.elapsed():>6}] [{bar}] {self.done}/{total} steps  running: {current}"
            self.stream.write("\r" + text[:self._columns()].ljust(self._drawn) + "\x1b[K")
            self.stream.flush()
            self._drawn = min(len(text), self._columns())
        elif finished is not None:
            total = self.total if self.total is not None else "?"
            print(f"[{self.elapsed():>6}] {self.done:>3}/{total} steps done ({finished})", file=self.stream,
                  flush=True)

    def close(self) -> None:
        """End the display with a one-line summary."""
        if self.interactive and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0
        if self.nothing_to_do:
            print("Nothing to be done: every output is up to date.", file=self.stream, flush=True)
