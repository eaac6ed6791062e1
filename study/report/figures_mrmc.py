"""The figures of the U-statistic MRMC analyses (``results.mrmc.ustat``), as SVG.

- ``mrmc_design__<analysis>``: the reader x case design, one heat-map per modality (a row per
  reader, a column per case, non-diseased cases first; a cell is coloured when that reader read
  that case in that modality);
- ``mrmc_forest__<analysis>``: each reader's difference of figures of merit between the two
  modalities (e.g. aided - unaided) and the reader-averaged difference with its interval.

``<analysis>`` is ``readers`` for the readers aided versus unaided and ``model__<model id>`` for
a model standalone versus the unaided readers (:func:`ustat_figure_key`). Drawn with the
helpers of :mod:`study.report.figures` (deterministic SVG, colour-blind palette).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from study.report.figure_cache import FigureJob, draw_figures
from study.report.figure_ids import figure_id
from study.report.figures import (
    TEXT_WIDTH_IN,
    _draw,
    _palette,
    _subplot_grid,
    _subplots,
    _t,
)
from study.results.base import NotAssessed
from study.results.mrmc import (
    MRMCUStatStudy,
    UStatAnalysis,
    UStatDesign,
    UStatDifference,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["mrmc_design_figure", "mrmc_forest_figure", "ustat_analyses", "ustat_figure_jobs", "ustat_figure_key",
           "ustat_figures"]

READERS_KEY = "readers"


def ustat_figure_key(model: str | None) -> str:
    """The ``<analysis>`` part of a U-statistic figure id: ``readers`` or ``model__<model>``."""
    return READERS_KEY if model is None else figure_id("model", model)


def ustat_analyses(ustat: MRMCUStatStudy | None) -> dict[str, UStatAnalysis | NotAssessed]:
    """The study's U-statistic analyses keyed as in the figure ids, readers aided versus unaided first."""
    if ustat is None:
        return {}
    out: dict[str, UStatAnalysis | NotAssessed] = {ustat_figure_key(None): ustat.aided_vs_unaided}
    out.update({ustat_figure_key(m): a for m, a in sorted(ustat.models.items())})
    return out


def mrmc_design_figure(key: str, design: UStatDesign) -> str | None:
    """Reader x case heat-map per modality: which reader read which case (non-diseased cases, then diseased)."""
    if not design.by_modality or not design.cases:
        return None
    truth = design.case_truth
    order = sorted(range(len(design.cases)), key=lambda i: (truth[i] if truth else "0", i))
    n_neg = truth.count("0") if truth else None
    mods = list(design.by_modality)

    def draw() -> Figure:
        import numpy as np
        from matplotlib.colors import ListedColormap

        neg_col, _, pos_col = _palette(3)  # blue, (green), orange
        cmap = ListedColormap(["#f2f2f2", neg_col, pos_col])
        heights = [max(len(design.by_modality[m].matrix), 1) for m in mods]
        fig, axes = _subplot_grid(len(mods), 1, figsize=(TEXT_WIDTH_IN, 0.45 + sum(0.16 * h + 0.35 for h in heights)))
        for ax, m in zip((row[0] for row in axes), mods):
            md = design.by_modality[m]
            readers = list(md.matrix)
            grid = np.zeros((len(readers), len(order)))
            for j, r in enumerate(readers):
                row = md.matrix[r]
                for col, i in enumerate(order):
                    if row[i] == "1":
                        grid[j, col] = 2 if truth and truth[i] == "1" else 1
            ax.imshow(grid, aspect="auto", cmap=cmap, vmin=0, vmax=2, interpolation="nearest")
            ax.set_yticks(range(len(readers)))
            ax.set_yticklabels([_t(r) for r in readers], fontsize=6)
            ax.set_xticks([])
            if n_neg is not None and 0 < n_neg < len(order):
                ax.axvline(n_neg - 0.5, color="black", lw=0.6)
            ax.set_title(f"{_t(m)}: {md.n_readers} readers, {md.n_cases} cases, {md.n_readings} readings "
                         f"({_t(md.crossing)})", fontsize=7.5)
            for s in ax.spines.values():
                s.set_visible(False)
        last = axes[-1][0]
        last.set_xlabel(f"Cases ({len(order)}): non-diseased (blue) left of the line, diseased (orange) right; "
                        "grey = not read" if n_neg is not None else f"Cases ({len(order)}); grey = not read",
                        fontsize=7)
        return fig

    return _draw(figure_id("mrmc_design", key), draw)


def mrmc_forest_figure(key: str, diff: UStatDifference, *, label: str = "AUC", confidence: float = 0.95) -> str | None:
    """Forest plot: each reader's difference ``modalities[0] - modalities[1]`` and the reader-averaged one with its CI."""
    points = [(r, v) for r, v in sorted(diff.readers.items()) if v is not None]
    avg = diff.unbiased
    if not points and avg.estimate is None:
        return None

    def draw() -> Figure:
        fig, ax = _subplots(figsize=(TEXT_WIDTH_IN * 0.75, 0.8 + 0.17 * (len(points) + 2)))
        col = _palette(1)[0]
        n = len(points)
        ys = list(range(n + 1, 1, -1))
        for y, (_r, v) in zip(ys, points):
            ax.plot([v], [y], "o", color=col, ms=3.5)
        if avg.estimate is not None:
            lo = avg.ci_low if avg.ci_low is not None else avg.estimate
            hi = avg.ci_high if avg.ci_high is not None else avg.estimate
            ax.plot([lo, hi], [0, 0], color="black", lw=1.2)
            ax.plot([avg.estimate], [0], "D", color="black", ms=5)
        ax.axvline(0, color="grey", lw=0.6, ls=":")
        ax.set_yticks(ys + [0])
        ax.set_yticklabels([_t(r) for r, _ in points] + [f"Reader average ({100 * confidence:g}% CI)"
                                                         if avg.ci_low is not None else "Reader average"], fontsize=6.5)
        ax.set_xlabel(f"{_t(label)} difference, {_t(diff.comparison)}")
        ax.set_title(f"Per-reader differences, {_t(diff.comparison)}")
        ax.grid(axis="x", alpha=0.3, lw=0.5)
        return fig

    return _draw(figure_id("mrmc_forest", key), draw)


def ustat_figure_jobs(ustat: MRMCUStatStudy | None) -> list[FigureJob]:
    """Every U-statistic MRMC figure the results may support, as jobs for
    :func:`study.report.figure_cache.draw_figures` (the design of each analysis, and the
    per-reader forest plot of its first difference with reader values)."""
    jobs: list[FigureJob] = []
    for key, a in ustat_analyses(ustat).items():
        if isinstance(a, NotAssessed):
            continue
        jobs.append(FigureJob(figure_id("mrmc_design", key), mrmc_design_figure, (key, a.design)))
        for d in a.differences:
            if any(v is not None for v in d.readers.values()):
                jobs.append(FigureJob(figure_id("mrmc_forest", key), mrmc_forest_figure, (key, d),
                                      {"label": a.fom.upper() if a.fom == "auc" else a.fom,
                                       "confidence": a.confidence_level}))
                break
    return jobs


def ustat_figures(ustat: MRMCUStatStudy | None) -> dict[str, str]:
    """Every U-statistic MRMC figure the results support (figure id -> SVG), drawn here."""
    return draw_figures(ustat_figure_jobs(ustat), workers=1)
