"""The report's list of figures: each figure the results may support, as a
:class:`~study.report.figure_cache.FigureJob` (its id, its drawing function in
:mod:`study.report.figures` or :mod:`study.report.figures_mrmc`, and the typed results it is
drawn from), in report order. :func:`study.report.figures.figure_svgs` draws them
(:func:`study.report.figure_cache.draw_figures`: in parallel, cached).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from study.report import selectors as S
from study.report.figure_cache import FigureJob
from study.report.figure_ids import figure_id
from study.report.figures import (
    _scope_ids,
    bland_altman_figure,
    confusion_figure,
    count_scatter_figure,
    forest_figure,
    froc_figure,
    mrmc_roc_figure,
    pr_figure,
    sens_spec_figure,
    study_rater_colours,
)
from study.report.figures_mrmc import ustat_figure_jobs
from study.report.flow_diagram import ReferenceSplit, flow_svg, reference_split
from study.results import Results
from study.results.flow import Flow
from study.results.mrmc import MRMCBlock

__all__ = ["figure_jobs"]


def _flow_diagram(flow: Flow, reference: list[ReferenceSplit]) -> str:
    """The STARD flow diagram (:func:`study.report.flow_diagram.flow_svg`) with its ids scoped."""
    return _scope_ids(flow_svg(flow, reference=reference), figure_id("flow"))


def figure_jobs(results: Results | Mapping[str, Any]) -> list[FigureJob]:
    """Every figure the results may support, as jobs for :func:`study.report.figure_cache.draw_figures`,
    in report order (a job whose data are absent draws nothing)."""
    from study.report.context import parse_results

    r = parse_results(results)
    jobs: list[FigureJob] = []

    def put(name: str, draw: Callable[..., str | None], *args: Any, **kwargs: Any) -> None:
        jobs.append(FigureJob(name, draw, args, kwargs))

    if r.flow is not None:
        put(figure_id("flow"), _flow_diagram, r.flow, reference_split(r.baseline, r.study.protocol_settings))
    for m, det in sorted(r.detection.items()):
        put(figure_id("pr", m), pr_figure, m, det)
        put(figure_id("froc", m), froc_figure, m, det)
    for m, cnt in sorted(r.counting.items()):
        put(figure_id("count_scatter", m), count_scatter_figure, m, cnt)
        put(figure_id("bland_altman", m), bland_altman_figure, m, cnt)
    ag = r.agreement
    colours = study_rater_colours(r)
    if ag is not None:
        put(figure_id("confusion"), confusion_figure, list(ag.levels), dict(ag.raters))
        put(figure_id("sens_spec"), sens_spec_figure, list(ag.levels), dict(ag.raters), colours=colours)
        for col, rows in S.subgroup_rows(ag).items():
            put(figure_id("forest", col), forest_figure, col, list(rows), colours=colours)
    for m, roc in S.mrmc_rocs(r.mrmc).items():
        put(figure_id("mrmc_roc", m), mrmc_roc_figure, m, dict(roc), colours=colours)
    jobs += ustat_figure_jobs(r.mrmc.ustat if isinstance(r.mrmc, MRMCBlock) else None)
    return jobs
