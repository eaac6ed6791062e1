"""The report's figures, drawn from ``results.json`` with matplotlib (seaborn's colour-blind palette) as SVG.

Every figure is a pure function of the numbers in ``results.json`` and is written as a
*deterministic* SVG: ``svg.hashsalt`` fixed (per figure, so that the element ids of two
figures inlined in one HTML page never collide), ``svg.fonttype = 'none'`` (text stays text,
set in DejaVu Sans by the renderer, and searchable in the PDF), and no date in the metadata.
The same results therefore give byte-identical SVG files.

Figures (names are keys of :func:`figure_svgs`, made by :func:`study.report.figure_ids.figure_id`):

- ``flow``: STARD 2015 flow diagram of cases (``study.report.flow_diagram.flow_svg``);
- ``pr__<model>``, ``froc__<model>``: precision-recall curves per class, FROC curve;
- ``count_scatter__<model>``, ``bland_altman__<model>``: predicted against reference lesion
  counts with least-squares lines, and the Bland & Altman (1986) plot of the differences;
- ``confusion``: a confusion-matrix heat map for each model and each reader;
- ``sens_spec``: per grade, sensitivity against specificity of the models and the readers;
- ``forest__<column>``: subgroup forest plot of accuracy with its interval;
- ``mrmc_roc__<model>``: empirical ROC operating points of the algorithm and the readers;
- ``mrmc_design__<analysis>``, ``mrmc_forest__<analysis>``: the U-statistic analyses' reader x case
  design and per-reader differences (:mod:`study.report.figures_mrmc`).
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from study.io import write_text
from study.pseudonyms import pseudonyms, study_pseudonyms
from study.report import format as F
from study.report import selectors as S
from study.report.figure_cache import draw_figures
from study.report.figure_ids import figure_id
from study.report.flow_diagram import flow_view
from study.report.text import neutralise_bidi, report_text
from study.results import Results
from study.results.agreement import RaterAgreement
from study.results.counting import CountingPoints, CountingResult
from study.results.detection import DetectionResult, FrocPoint
from study.results.flow import Flow
from study.results.mrmc import RocCurve

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn (a heavy import)
    from matplotlib.axes import Axes
    from matplotlib.collections import PathCollection
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

FONT = "DejaVu Sans"
#: the longest label a figure prints (longer ones are cut by :func:`_t`)
LABEL_CHARS = 120
TEXT_WIDTH_IN = 6.5  # A4 minus 2 cm margins, rounded down


def _rc() -> dict[RcKeyType, Any]:
    return {
        "svg.fonttype": "none",
        "font.family": "sans-serif",
        "font.sans-serif": [FONT],
        "font.size": 8,
        "axes.titlesize": 8.5,
        "axes.labelsize": 8,
        "legend.fontsize": 7,
        "xtick.labelsize": 7,
        "ytick.labelsize": 7,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "path.simplify": False,
    }


def _t(s: Any) -> str:
    """A label as the figures print it: bounded and with bidi controls shown as codes
    (:func:`study.report.text.report_text`, the rule of the whole report, cut at
    :data:`LABEL_CHARS`), and ``$`` escaped so matplotlib never reads user text as mathtext."""
    return report_text(str(s), max_chars=LABEL_CHARS).replace("$", r"\$")


_DECL = re.compile(r"^\s*<\?xml[^>]*\?>\s*(<!DOCTYPE[^>]*>\s*)?", re.S)


def _scope_ids(svg: str, name: str) -> str:
    """Prefix every element id (and every ``#id`` reference to it) with the figure's name, so
    that several figures inlined in one HTML page never share an id (matplotlib numbers its
    groups ``figure_1``, ``axes_1``, ... in every file), and give the root a readable id."""
    prefix = re.sub(r"[^a-zA-Z0-9_-]", "-", name)
    svg = _DECL.sub("", svg)
    svg = re.sub(r'(\sid=")([^"]+)"', lambda m: f'{m.group(1)}{prefix}--{m.group(2)}"', svg)
    svg = re.sub(r'(href="#)([^"]+)"', lambda m: f'{m.group(1)}{prefix}--{m.group(2)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}--{m.group(1)})", svg)
    return svg.replace("<svg ", f'<svg id="fig-{prefix}" ', 1)


def _to_svg(fig: Figure, *, name: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, dpi=200)
    plt.close(fig)
    # every label went through _t; this catches any text drawn without it (tick labels, legends)
    return _scope_ids(neutralise_bidi(buf.getvalue()), name)


def _draw(name: str, draw: Callable[[], Figure]) -> str:
    import matplotlib.pyplot as plt

    with plt.rc_context({**_rc(), "svg.hashsalt": f"acne-study:{name}"}):
        fig = draw()
        return _to_svg(fig, name=name)


def _palette(n: int) -> list[str]:
    """The colour-blind-safe cycle of seaborn's ``colorblind`` palette (as shipped in matplotlib's
    ``seaborn-v0_8-colorblind`` style, so seaborn itself need not be imported), repeated as needed."""
    import matplotlib.pyplot as plt

    cols = [c["color"] for c in plt.style.library["seaborn-v0_8-colorblind"]["axes.prop_cycle"]]
    return [cols[i % len(cols)] for i in range(max(n, 1))]


#: reader colours in order of use: the seven non-black Okabe-Ito colours (Okabe & Ito 2008, colour-blind safe),
#: then matplotlib's tab10 colours that differ from them; beyond, evenly spaced hues
READER_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
                  "#9467BD", "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF", "#2CA02C", "#D62728")


def rater_colours(rater_ids: Sequence[str], *, models: Sequence[str] = ()) -> dict[str, str]:
    """One colour per rater, the same in every figure: models black, readers :data:`READER_COLOURS` in the sorted
    order of their ids (evenly spaced hues beyond), so no two readers share one."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    readers = sorted({r for r in rater_ids if r not in set(models)})
    out = {m: "#000000" for m in models}
    n_named = len(READER_COLOURS)
    for i, r in enumerate(readers):
        out[r] = READER_COLOURS[i] if i < n_named else to_hex(
            plt.get_cmap("hsv")((i - n_named) / max(1, len(readers) - n_named)))
    return out


def _minus(text: str) -> str:
    """``text`` with the hyphen-minus of negative numbers as a real minus sign (U+2212)."""
    return text.replace("-", "\u2212")


def _subplots(*, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """A figure with one axes (constrained layout)."""
    import matplotlib.pyplot as plt

    return plt.subplots(layout="constrained", figsize=figsize)


def _subplot_grid(nrows: int, ncols: int, *, figsize: tuple[float, float], sharex: bool = False,
                  sharey: bool = False) -> tuple[Figure, list[list[Axes]]]:
    """A figure with ``nrows`` rows of ``ncols`` axes (constrained layout), as nested lists."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, layout="constrained", figsize=figsize, squeeze=False, sharex=sharex,
                             sharey=sharey)
    return fig, axes.tolist()


# ----------------------------------------------------------------------------- flow
def flow_figure(flow: Flow) -> str:
    """STARD 2015 flow diagram drawn with matplotlib (the report shows :func:`flow_svg`)."""
    view = flow_view(flow)

    def draw() -> Figure:
        from matplotlib.patches import FancyBboxPatch

        stages = view.stages
        rows = len(stages)
        fig_h = 1.0 + 1.05 * rows
        fig, ax = _subplots(figsize=(TEXT_WIDTH_IN, fig_h))
        ax.set_xlim(0, 10)
        ax.set_ylim(0, rows * 1.6)
        ax.axis("off")

        def box(x: float, y: float, w: float, h: float, text: str, *, bold: bool = False,
                fc: str = "#f2f2f2") -> None:
            ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="square,pad=0.02",
                                        fc=fc, ec="#333333", lw=0.8))
            ax.text(x, y, text, ha="center", va="center", fontsize=7.5,
                    fontweight="bold" if bold else "normal", wrap=False)

        y = rows * 1.6 - 0.7
        prev = None
        for st in stages:
            label = f"{_t(st.label)}\nn = {st.n}"
            box(3.0, y, 4.2, 0.75, label, bold=True, fc="#e8eef7")
            if prev is not None:
                ax.annotate("", xy=(3.0, y + 0.38), xytext=(3.0, prev - 0.38),
                            arrowprops={"arrowstyle": "-|>", "lw": 0.8, "color": "#333333"})
            ex = st.excluded
            if ex is not None:
                lines = [f"{_t(ex.label)}" + (f": n = {ex.n}" if ex.n is not None else "")]
                lines += [f"  {_t(r)}: {n}" for r, n in ex.reasons][:6]
                h = 0.22 * len(lines) + 0.25
                ey = y + 0.8
                ax.add_patch(FancyBboxPatch((5.6, ey - h / 2), 4.3, h, boxstyle="square,pad=0.02",
                                            fc="#fbeaea", ec="#333333", lw=0.8))
                ax.text(5.7, ey, "\n".join(lines), ha="left", va="center", fontsize=7)
                ax.annotate("", xy=(5.6, ey), xytext=(3.0, ey),
                            arrowprops={"arrowstyle": "-|>", "lw": 0.8, "color": "#333333"})
            prev = y
            y -= 1.6
        return fig

    return _draw(figure_id("flow"), draw)


# ----------------------------------------------------------------------------- detection
def pr_figure(model: str, det: DetectionResult) -> str | None:
    """Precision-recall curve of each class (and of any lesion), AP in the legend."""
    curves = [(c, v) for c, v in S.detection_classes(det) if v.pr_curve.recall]
    if not curves:
        return None

    def draw() -> Figure:

        fig, ax = _subplots(figsize=(4.6, 3.2))
        cols = _palette(len(curves))
        for (cls, v), col in zip(curves, cols):
            ap = v.ap_ci.estimate if v.ap_ci.estimate is not None else v.ap
            lab = f"{_t(cls)} (AP {F.fmt(ap)})" if ap is not None else _t(cls)
            ax.plot(v.pr_curve.recall, [math.nan if p is None else p for p in v.pr_curve.precision], color=col,
                    lw=1.2, label=lab, ls="--" if cls == F.ANY_LESION else "-", drawstyle="steps-post")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("Recall (sensitivity per lesion)")
        ax.set_ylabel("Precision")
        ax.set_title(f"Precision-recall, {_t(model)}, IoU {F.fmt(det.iou_threshold, 2)}")
        ax.legend(loc="lower left", frameon=False)
        ax.grid(alpha=0.3, lw=0.5)
        return fig

    return _draw(figure_id("pr", model), draw)


def froc_plot_data(det: DetectionResult) -> tuple[list[tuple[float, float | None]], list[FrocPoint]]:
    """The FROC curve and pre-specified points drawn on the log axis: zero false positives per image has no
    place on it, so those points are left out (not moved to a small positive rate)."""
    froc = det.froc
    curve = [(x, y) for x, y in zip(froc.curve.fp_per_image, froc.curve.sensitivity) if x is not None and x > 0]
    return curve, [p for p in froc.points if p.fp_per_image > 0]


def froc_figure(model: str, det: DetectionResult) -> str | None:
    """FROC: lesion sensitivity against mean false positives per image (log x axis)."""
    froc = det.froc
    curve, pts = froc_plot_data(det)
    if not curve and not pts:
        return None

    def draw() -> Figure:

        fig, ax = _subplots(figsize=(4.6, 3.0))
        if curve:
            ax.plot([x for x, _ in curve], [math.nan if y is None else y for _, y in curve], lw=1.2,
                    color=_palette(1)[0], drawstyle="steps-post", label="FROC")
        if pts:
            ax.plot([p.fp_per_image for p in pts],
                    [math.nan if p.sensitivity.estimate is None else p.sensitivity.estimate for p in pts], "o",
                    ms=3.5, color="black", label="pre-specified FP rates")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("Mean false positives per image")
        ax.set_ylabel("Lesion sensitivity")
        avg = froc.average.estimate
        ax.set_title(f"FROC, {_t(model)}" + (f" (average sensitivity {F.fmt(avg)})" if avg is not None else ""))
        ax.legend(loc="lower right", frameon=False)
        ax.grid(alpha=0.3, lw=0.5, which="both")
        return fig

    return _draw(figure_id("froc", model), draw)


# ----------------------------------------------------------------------------- counting
def count_scatter_figure(model: str, cnt: CountingResult) -> str | None:
    """Predicted against reference count per image at each score threshold, with the fitted line."""
    series = S.count_series(cnt)
    if not series:
        return None

    def draw() -> Figure:

        n = len(series)
        fig, axes = _subplot_grid(1, n, figsize=(min(TEXT_WIDTH_IN, 2.3 * n), 2.4), sharex=True, sharey=True)
        hi = max(max(s.true + s.pred + [1]) for s in series)
        for ax, s in zip(axes[0], series):
            ax.scatter(s.true, s.pred, s=6, alpha=0.6, color=_palette(1)[0], lw=0, rasterized=True)
            ax.plot([0, hi], [0, hi], color="grey", lw=0.7, ls=":", label="identity")
            fit = s.fit
            if fit.slope is not None and fit.intercept is not None:
                ax.plot([0, hi], [fit.intercept, fit.intercept + fit.slope * hi], color="#d55e00", lw=1,
                        label=f"y = {fit.slope:.2f}x {'+' if fit.intercept >= 0 else '-'} "
                              f"{abs(fit.intercept):.2f}" + (f", r = {fit.r:.2f}" if fit.r is not None else ""))
            ax.set_title(f"score ≥ {_t(s.threshold)}")
            ax.set_xlabel("Reference count")
            ax.legend(loc="upper left", frameon=False, fontsize=6)
        axes[0][0].set_ylabel("Predicted count")
        fig.suptitle(f"Lesion counts per image, {_t(model)}", fontsize=8.5)
        return fig

    return _draw(figure_id("count_scatter", model), draw)


def bland_altman_figure(model: str, cnt: CountingResult) -> str | None:
    """Bland & Altman (1986): difference (predicted - reference) against the mean of the two."""
    series = S.count_series(cnt)
    if not series:
        return None

    def draw() -> Figure:

        n = len(series)
        fig, axes = _subplot_grid(1, n, figsize=(min(TEXT_WIDTH_IN, 2.3 * n), 2.4), sharey=True)
        for ax, s in zip(axes[0], series):
            mean = [(a + b) / 2 for a, b in zip(s.true, s.pred)]
            diff = [b - a for a, b in zip(s.true, s.pred)]
            ax.scatter(mean, diff, s=6, alpha=0.6, color=_palette(1)[0], lw=0, rasterized=True)
            ba = s.bland_altman
            # labels sit just above (upper limit, bias) or below (lower limit) their line, inside the axes
            for v, ls, name, va in ((ba.bias, "-", "bias", "bottom"),
                                    (ba.loa_low.estimate if ba.loa_low else None, "--", "lower LoA", "top"),
                                    (ba.loa_high.estimate if ba.loa_high else None, "--", "upper LoA", "bottom")):
                if v is not None:
                    ax.axhline(v, color="#d55e00", lw=0.8, ls=ls)
                    ax.annotate(_minus(f"{name} {v:.2f}"), xy=(0.99, v), xycoords=ax.get_yaxis_transform(),
                                xytext=(0, 1.5 if va == "bottom" else -1.5), textcoords="offset points",
                                ha="right", va=va, fontsize=5.5, color="#d55e00",
                                bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
            ax.axhline(0, color="grey", lw=0.5, ls=":")
            ax.set_title(f"score ≥ {_t(s.threshold)}")
            ax.set_xlabel("Mean of the two counts")
        axes[0][0].set_ylabel("Predicted \u2212 reference")
        fig.suptitle(f"Bland-Altman, {_t(model)} (bias and 95% limits of agreement)", fontsize=8.5)
        return fig

    return _draw(figure_id("bland_altman", model), draw)


# ----------------------------------------------------------------------------- agreement
def confusion_figure(levels: Sequence[str], raters: Mapping[str, RaterAgreement]) -> str | None:
    """A heat map of the confusion matrix (rows reference, columns rater) per model and reader."""
    ordered = S.raters_in_order(raters)
    if not ordered or not levels:
        return None

    def draw() -> Figure:
        import numpy as np

        ncol = min(3, len(ordered))
        nrow = math.ceil(len(ordered) / ncol)
        fig, grid = _subplot_grid(nrow, ncol, figsize=(TEXT_WIDTH_IN, 2.05 * nrow))
        axes = [ax for row in grid for ax in row]
        k = len(levels)
        for ax, (rid, r) in zip(axes, ordered):
            cm = np.asarray(r.confusion_matrix, dtype=float)
            rowsum = cm.sum(axis=1, keepdims=True)
            share = np.divide(cm, rowsum, out=np.zeros_like(cm), where=rowsum > 0)
            ax.pcolormesh(np.arange(k + 1), np.arange(k + 1), share, cmap="Blues", vmin=0, vmax=1,
                          edgecolors="white", linewidth=0.5)
            for i in range(k):
                for j in range(k):
                    ax.text(j + 0.5, i + 0.5, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.6 else "#111111")
            ax.set_xlim(0, k)
            ax.set_ylim(k, 0)
            ax.set_aspect("equal")
            ax.set_xticks(np.arange(k) + 0.5, [_t(x) for x in levels])
            ax.set_yticks(np.arange(k) + 0.5, [_t(x) for x in levels])
            for sp in ax.spines.values():
                sp.set_visible(False)
            kind = "model" if r.kind == "model" else f"reader, {r.group or 'no group'}"
            ax.set_title(f"{_t(rid)} ({_t(kind)})", fontsize=7.5)
            ax.set_xlabel("Rater grade", fontsize=7)
            ax.set_ylabel("Reference grade", fontsize=7)
            ax.tick_params(length=0)
        for ax in axes[len(ordered):]:
            ax.axis("off")
        return fig

    return _draw("confusion", draw)


def sens_spec_figure(levels: Sequence[str], raters: Mapping[str, RaterAgreement], *,
                     colours: Mapping[str, str] | None = None) -> str | None:
    """Per grade: sensitivity (y) against specificity (x, reversed) of each model and reader (one colour per
    reader, :func:`rater_colours`)."""
    ordered = S.raters_in_order(raters)
    if not ordered or not levels:
        return None
    if not any(r.per_grade[lv].sensitivity.estimate is not None and r.per_grade[lv].specificity.estimate is not None
               for _, r in ordered for lv in levels if lv in r.per_grade):
        return None  # e.g. one grade in the reference: no grade has both positives and negatives

    def draw() -> Figure:

        n = len(levels)
        fig, axes = _subplot_grid(1, n, figsize=(TEXT_WIDTH_IN, 2.6), sharey=True)
        cols = dict(colours) if colours is not None else rater_colours(
            [rid for rid, _ in ordered], models=[rid for rid, r in ordered if r.kind == "model"])
        handles: dict[str, PathCollection] = {}
        pts = [(r.per_grade[lv].sensitivity.estimate, r.per_grade[lv].specificity.estimate)
               for _, r in ordered for lv in levels]
        se_min = min([a for a, _ in pts if a is not None] or [0.0])
        sp_min = min([b for _, b in pts if b is not None] or [0.0])
        for ax, lv in zip(axes[0], levels):
            for rid, r in ordered:
                pg = r.per_grade[lv]
                se, sp = pg.sensitivity.estimate, pg.specificity.estimate
                if se is None or sp is None:
                    continue
                if r.kind == "model":
                    h = ax.scatter([sp], [se], marker="*", s=80, color="black", zorder=3)
                    handles.setdefault(f"model {rid}", h)
                else:
                    h = ax.scatter([sp], [se], marker="o", s=18, color=cols[rid], alpha=0.85)
                    handles.setdefault(f"{rid} ({r.group or 'no group'})", h)
            ax.set_title(f"grade {_t(lv)}")
            ax.set_xlim(1.0 + 0.02, max(0.0, sp_min - 0.1))
            ax.set_ylim(max(0.0, se_min - 0.1), 1.0 + 0.02)
            ax.set_xlabel("Specificity")
            ax.grid(alpha=0.3, lw=0.5)
        axes[0][0].set_ylabel("Sensitivity")
        if handles:
            fig.legend([handles[k] for k in handles], [_t(k) for k in handles], loc="outside lower center",
                       ncol=min(4, len(handles)), frameon=False, fontsize=6)
        return fig

    return _draw("sens_spec", draw)


def forest_figure(column: str, rows: Sequence[S.SubgroupRow], *, colours: Mapping[str, str] | None = None) -> str | None:
    """Subgroup forest plot: accuracy with its interval for each subgroup value and rater."""
    shown = [(r, est) for r in rows if (est := r.accuracy.estimate) is not None]  # with the estimate
    if not shown:
        return None

    def draw() -> Figure:

        fig, ax = _subplots(figsize=(TEXT_WIDTH_IN * 0.8, 0.5 + 0.17 * len(shown)))
        cols = dict(colours) if colours is not None else rater_colours(
            [r.rater for r, _ in shown], models=[r.rater for r, _ in shown if r.kind == "model"])
        ys = list(range(len(shown)))[::-1]
        for y, (r, est) in zip(ys, shown):
            a = r.accuracy
            lo = a.ci_low if a.ci_low is not None else est
            hi = a.ci_high if a.ci_high is not None else est
            ax.plot([lo, hi], [y, y], color=cols[r.rater], lw=1)
            ax.plot([est], [y], "s" if r.kind == "model" else "o", color=cols[r.rater], ms=3.5)
        ax.set_yticks(ys)
        ax.set_yticklabels([f"{_t(r.value)} · {_t(r.rater)} (n={r.n})" for r, _ in shown], fontsize=6.5)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("Accuracy (exact grade agreement with the reference)")
        ax.set_title(f"Subgroups by {_t(column)}")
        ax.grid(axis="x", alpha=0.3, lw=0.5)
        return fig

    return _draw(figure_id("forest", column), draw)


def mrmc_roc_figure(model: str, roc: Mapping[str, RocCurve], *, colours: Mapping[str, str] | None = None) -> str | None:
    """Empirical ROC curves (operating points joined) of the algorithm and each reader (rater id -> curve)."""
    curves = [(rid, pts) for rid, v in sorted(roc.items()) if (pts := S.roc_points(v)) is not None]
    if not curves:
        return None

    def draw() -> Figure:

        fig, ax = _subplots(figsize=(3.6, 3.2))
        cols = dict(colours) if colours is not None else rater_colours([rid for rid, _ in curves], models=[model])
        for rid, (fpr, tpr) in curves:
            col = cols.get(rid, "#000000")
            is_ai = rid == model
            ax.plot(fpr, tpr, marker="*" if is_ai else "o", ms=6 if is_ai else 3, lw=1.4 if is_ai else 0.8,
                    color="black" if is_ai else col, label=_t(rid) + (" (algorithm)" if is_ai else ""))
        ax.plot([0, 1], [0, 1], color="grey", lw=0.5, ls=":")
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("Sensitivity")
        ax.set_title(f"Empirical ROC, {_t(model)} and readers")
        ax.legend(loc="lower right", frameon=False, fontsize=6)
        return fig

    return _draw(figure_id("mrmc_roc", model), draw)


# ----------------------------------------------------------------------------- examples
def example_figures(points: Mapping[str, CountingPoints], *, results_dir: str | os.PathLike[str], show: bool,
                    worst_cases: int, operating_threshold: float, names: Mapping[str, str] | None = None,
                    max_side: int = 384) -> dict[str, str]:
    """Example images with the reference boxes (solid) and the model's boxes at the operating
    threshold (dashed): only when ``show`` (the protocol's ``report.show_example_images``; faces
    are personal data, so it is off by default). The cases shown are those with the largest count
    error (as in the failure analysis), captioned by pseudonym, never by case id.

    Parameters
    ----------
    points : the per-case counts of each model (``counting.<model>.points``).
    results_dir : the study's results folder: ``cases.parquet``, ``ground_truth.json`` and
        ``detections/<model>.parquet`` are read from it.
    show, worst_cases, operating_threshold : the protocol's settings.
    names : case id -> pseudonym of every case, when the points carry pseudonyms (a
        pseudonymised results.json); ``None`` when they carry the case ids.
    max_side : images are downscaled to this many pixels and embedded in the SVG.
    """
    if not show:
        return {}
    import pandas as pd
    from PIL import Image

    from study.cohort.images import read_rgb
    from study.errors import StudyError
    from study.io import read_json

    rd = Path(results_dir)
    k = min(4, worst_cases or 4)
    thr = float(operating_threshold)
    cases = pd.read_parquet(rd / "cases.parquet", columns=["case_id", "image_path"])
    path_of = dict(zip(cases["case_id"].astype(str), cases["image_path"].astype(str)))
    gt = read_json(rd / "ground_truth.json")  # COCO ground truth (validated when the study ran)
    image_of: dict[str, int] = {str(im["case_id"]): im["id"] for im in (gt["images"] if "images" in gt else [])}
    gt_boxes: dict[int, list[list[float]]] = {}
    for a in gt["annotations"] if "annotations" in gt else []:
        gt_boxes.setdefault(a["image_id"], []).append(a["bbox"])
    if names is None:  # the points carry the original case ids
        pseudo = pseudonyms({str(c) for pts in points.values() for c in pts.case_id})
        original = {c: c for c in pseudo}
    else:  # the points carry pseudonyms (results.json pseudonymised)
        pseudo = dict(names)
        original = {v: k for k, v in names.items()}
    out: dict[str, str] = {}
    for m, pts in sorted(points.items()):
        ths = sorted(pts.predicted, key=lambda t: abs(float(t) - thr))
        det_path = rd / "detections" / f"{m}.parquet"
        if not ths or not det_path.exists():
            continue
        pred, true = pts.predicted[ths[0]], pts.true
        ids = [original[str(c)] for c in pts.case_id]
        order = sorted(range(len(ids)), key=lambda i: (-abs(float(pred[i]) - float(true[i])), pseudo[ids[i]]))[:k]
        chosen = [ids[i] for i in order if ids[i] in path_of]
        det = pd.read_parquet(det_path)
        det = det[(det["score"] >= thr) & det["case_id"].astype(str).isin(chosen)]
        for cid in chosen:
            name = figure_id("example", m, pseudo[cid])

            def draw(cid: str = cid) -> Figure:
                import matplotlib.pyplot as plt
                from matplotlib.patches import Rectangle

                # the pixels the model saw (any pixel format as 8-bit RGB, EXIF orientation applied)
                rgb = read_rgb(path_of[cid])
                if rgb is None:
                    raise StudyError("cannot read the example image (missing or not a decodable image file)",
                                     file=path_of[cid])
                im = Image.fromarray(rgb)
                scale = min(1.0, max_side / max(im.size))
                small = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))
                fig, ax = plt.subplots(figsize=(3.1, 3.1 * small.height / small.width))
                ax.imshow(small, extent=(0, im.width, im.height, 0), interpolation="bilinear")
                boxes = gt_boxes[image_of[cid]] if cid in image_of and image_of[cid] in gt_boxes else []
                for x, y, w, h in boxes:
                    ax.add_patch(Rectangle((x, y), w, h, fill=False, ec="#00a651", lw=0.8))
                for r in det[det["case_id"].astype(str) == cid].itertuples(index=False):
                    ax.add_patch(Rectangle((r.x, r.y), r.w, r.h, fill=False, ec="#ff7f0e", lw=0.8, ls="--"))
                ax.set_axis_off()
                ax.set_title(f"{pseudo[cid]}: reference (solid) vs {_t(m)} (dashed)", fontsize=7)
                return fig

            out[name] = _draw(name, draw)
    return out


# ----------------------------------------------------------------------------- all
def study_rater_colours(r: Results) -> dict[str, str]:
    """:func:`rater_colours` over every rater of the study (agreement raters and MRMC curves): the one mapping
    all figures use."""
    ids: set[str] = set(r.model_ids)
    if r.agreement is not None:
        ids |= set(r.agreement.raters)
    for roc in S.mrmc_rocs(r.mrmc).values():
        ids |= set(roc)
    return rater_colours(sorted(ids), models=r.model_ids)


def figure_svgs(results: Results | Mapping[str, Any], *, cache_dir: str | os.PathLike[str] | None = None,
                workers: int | None = None) -> dict[str, str]:
    """Every figure the results support, as SVG text, in report order (absent data = no figure).

    Figures are drawn in parallel processes (at most ``workers``, default one per usable core)
    and, with ``cache_dir``, reused from an earlier render when their inputs and the drawing
    code did not change (:func:`study.report.figure_cache.draw_figures`).
    """
    from study.report.figure_list import figure_jobs

    return draw_figures(figure_jobs(results), cache_dir=cache_dir, workers=workers)


def study_example_figures(results: Results, *, results_dir: str | os.PathLike[str]) -> dict[str, str]:
    """:func:`example_figures` with the study's own protocol settings."""
    ps = results.study.protocol_settings
    if not ps.report.show_example_images:
        return {}
    names = study_pseudonyms(results_dir) if results.study.case_ids == "pseudonymised" else None
    return example_figures({m: c.points for m, c in results.counting.items()}, results_dir=results_dir,
                           show=ps.report.show_example_images, worst_cases=ps.report.worst_cases,
                           operating_threshold=ps.detection.operating_threshold, names=names)


def make_figures(results: Results | Mapping[str, Any], *, out_dir: str | Path) -> dict[str, Path]:
    """Write every figure as ``<out_dir>/<name>.svg`` (atomically) and return name -> path."""
    out_dir = Path(out_dir)
    paths = {}
    for name, svg in figure_svgs(results).items():
        p = out_dir / f"{name}.svg"
        write_text(p, svg)
        paths[name] = p
    return paths
