"""Draw the report's figures: in parallel processes, and only those whose inputs changed.

A figure is a :class:`FigureJob`: its name, a module-level drawing function (for example
:func:`study.report.figures.pr_figure`) and the arguments it is drawn from (typed results
models). :func:`draw_figures` draws a list of jobs and returns name -> SVG text in the jobs'
order:

- **Cache.** With ``cache_dir``, a figure is stored as ``<cache_dir>/<key>.svg`` where the key
  is the sha256 of the figure's name, its function, its arguments (as canonical JSON) and the
  code version (:func:`code_version`: the source of the report's drawing modules and the
  versions of matplotlib and numpy). A figure whose key is in the cache is read back, not
  drawn; a changed input or a changed drawing code gives a new key and a new drawing. Entries
  no longer used by this render are removed, so the cache holds one report's figures.
- **Parallel.** Figures that must be drawn are drawn in worker processes
  (:class:`concurrent.futures.ProcessPoolExecutor`), at most one per CPU core this process may
  use; with one core, or one figure to draw, they are drawn here.

Every figure is a deterministic SVG (see :mod:`study.report.figures`), so a cached, a
parallel and a sequential drawing are byte-identical, and so is the PDF made from them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from study.io import write_text

__all__ = ["FigureJob", "code_version", "draw_figures", "figure_key", "usable_cores"]

#: the modules whose source decides what a figure looks like (all in this package)
DRAWING_MODULES = ("figures.py", "figures_mrmc.py", "figure_list.py", "flow_diagram.py", "selectors.py", "format.py",
                   "figure_ids.py", "figure_cache.py")


@dataclass(frozen=True)
class FigureJob:
    """One figure to draw: ``draw(*args, **kwargs)`` returns its SVG text, or None when the data
    do not support it. ``draw`` is a module-level function; ``args`` and ``kwargs`` are results
    data (typed results models, dataclasses, strings, numbers, lists and dicts of them)."""

    name: str
    draw: Callable[..., str | None]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def _plain(obj: Any) -> Any:
    """``obj`` as plain JSON data: pydantic models by their JSON dump, dataclasses, mappings and
    sequences field by field."""
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"a figure's input must be results data, got {type(obj).__name__}")


@lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 of the report's drawing code (:data:`DRAWING_MODULES`) and the matplotlib and
    numpy versions (read from the installed packages' metadata, without importing them): a change
    in any of them redraws every figure."""
    from importlib.metadata import version

    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in DRAWING_MODULES:
        h.update(name.encode())
        h.update((here / name).read_bytes())
    h.update(f"matplotlib {version('matplotlib')}; numpy {version('numpy')}".encode())
    return h.hexdigest()


def figure_key(job: FigureJob) -> str:
    """The cache key of ``job``: sha256 of its name, drawing function, inputs (canonical JSON)
    and :func:`code_version`."""
    payload = json.dumps({"name": job.name, "draw": f"{job.draw.__module__}.{job.draw.__qualname__}",
                          "args": _plain(job.args),
                          "kwargs": _plain(dict(job.kwargs)), "code": code_version()},
                         sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, where the system has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _run(job: FigureJob) -> str | None:
    return job.draw(*job.args, **job.kwargs)


#: the jobs being drawn by a pool of forked workers (they inherit this list, so the jobs' inputs,
#: pydantic models of generic classes that pickle cannot name, are never pickled)
_FORKED_JOBS: list[FigureJob] = []


def _run_forked(i: int) -> str | None:
    return _run(_FORKED_JOBS[i])


def _draw_all(jobs: Sequence[FigureJob], workers: int) -> list[str | None]:
    """Draw ``jobs``: in forked worker processes when ``workers`` > 1, there are several jobs and
    the platform can fork; here otherwise."""
    workers = min(workers, len(jobs))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [_run(j) for j in jobs]
    import matplotlib.pyplot  # noqa: F401  (imported once here; the forked workers inherit it)

    global _FORKED_JOBS
    _FORKED_JOBS = list(jobs)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_run_forked, range(len(jobs))))
    finally:
        _FORKED_JOBS = []


def draw_figures(jobs: Iterable[FigureJob], *, cache_dir: str | os.PathLike[str] | None = None,
                 workers: int | None = None) -> dict[str, str]:
    """Draw every figure of ``jobs`` (name -> SVG, in the jobs' order; jobs that return None
    are left out), reusing cached drawings.

    Parameters
    ----------
    jobs : the figures (:class:`FigureJob`), in report order; names must be unique.
    cache_dir : folder of the figure cache (created when needed); None draws every figure.
    workers : processes drawing at once; default :func:`usable_cores`; 1 draws in this process.
    """
    jobs = list(jobs)
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"figure names must be unique, got {names}")
    n_workers = usable_cores() if workers is None else int(workers)
    if n_workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    cache = Path(cache_dir) if cache_dir is not None else None
    keys = {j.name: figure_key(j) for j in jobs} if cache is not None else {}
    svgs: dict[str, str | None] = {}
    todo: list[FigureJob] = []
    for j in jobs:
        hit = cache / f"{keys[j.name]}.svg" if cache is not None else None
        if hit is not None and hit.is_file():
            svgs[j.name] = hit.read_text(encoding="utf-8")
        else:
            todo.append(j)
    for j, svg in zip(todo, _draw_all(todo, n_workers)):
        svgs[j.name] = svg
        if cache is not None:
            # a figure the data do not support is cached as an empty file
            write_text(cache / f"{keys[j.name]}.svg", svg or "")
    if cache is not None and cache.is_dir():
        used = {f"{k}.svg" for k in keys.values()}
        for p in cache.glob("*.svg"):
            if p.name not in used:
                p.unlink(missing_ok=True)
    return {j.name: s for j in jobs if (s := svgs[j.name])}
