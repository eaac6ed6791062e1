"""Report figures drawn in parallel processes and cached by the sha256 of their inputs and code:
a second render draws nothing, a changed input redraws that figure only, a change of drawing
code redraws all, and parallel, sequential and cached drawings are byte-identical (so is the PDF)."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "report" / "results.json.gz"
EPOCH = "1763683200"


def _results() -> dict:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        r = json.load(f)
    # one subgroup column keeps the test quick; every kind of figure stays
    r["agreement"]["subgroups"] = {k: v for k, v in r["agreement"]["subgroups"].items() if k == "sex"}
    return r


@pytest.fixture()
def drawn(monkeypatch):
    """Record the name of every figure drawn by matplotlib in this process."""
    from study.report import figures as F

    names: list[str] = []
    real = F._to_svg  # every matplotlib figure ends here (figures_mrmc binds F._draw at its import)

    def spy(fig, *, name):
        names.append(name)
        return real(fig, name=name)

    monkeypatch.setattr(F, "_to_svg", spy)
    return names


def test_second_render_reuses_cached_figures_and_a_changed_input_redraws_only_its_figures(tmp_path, drawn):
    from study.report.figures import figure_svgs

    r = _results()
    cache = tmp_path / "cache"
    first = figure_svgs(r, cache_dir=cache, workers=1)
    assert sorted(drawn) == sorted(n for n in first if n != "flow")  # the flow diagram is not drawn by matplotlib
    assert len(list(cache.glob("*.svg"))) == len(first)

    drawn.clear()
    assert figure_svgs(r, cache_dir=cache, workers=1) == first
    assert drawn == []  # every figure read back from the cache

    changed = copy.deepcopy(r)
    changed["detection"]["sim-detector"]["iou_threshold"] = 0.3  # in the titles of the PR and FROC figures
    third = figure_svgs(changed, cache_dir=cache, workers=1)
    assert sorted(drawn) == ["froc__sim-detector", "pr__sim-detector"]
    assert "IoU 0.30" in third["pr__sim-detector"] and "IoU 0.30" not in first["pr__sim-detector"]
    assert {k: v for k, v in third.items() if not k.startswith(("pr__", "froc__"))} == \
        {k: v for k, v in first.items() if not k.startswith(("pr__", "froc__"))}
    # the cache keeps only the figures of the last render
    assert len(list(cache.glob("*.svg"))) == len(third)


def test_changed_drawing_code_redraws_every_figure(tmp_path, drawn, monkeypatch):
    from study.report import figure_cache
    from study.report.figures import figure_svgs

    r = _results()
    r["agreement"] = None  # fewer figures: the point is the code version
    first = figure_svgs(r, cache_dir=tmp_path, workers=1)
    drawn.clear()
    monkeypatch.setattr(figure_cache, "code_version", lambda: "another version of the drawing code")
    assert figure_svgs(r, cache_dir=tmp_path, workers=1) == first
    assert sorted(drawn) == sorted(n for n in first if n != "flow")


def test_code_version_follows_the_drawing_source(tmp_path, monkeypatch):
    from study.report import figure_cache

    figure_cache.code_version.cache_clear()
    base = figure_cache.code_version()
    src = Path(figure_cache.__file__).resolve().parent
    for name in figure_cache.DRAWING_MODULES:
        (tmp_path / name).write_bytes((src / name).read_bytes())
    monkeypatch.setattr(figure_cache, "__file__", str(tmp_path / "figure_cache.py"))
    figure_cache.code_version.cache_clear()
    assert figure_cache.code_version() == base
    (tmp_path / "figures.py").write_text((src / "figures.py").read_text() + "\n# changed\n")
    figure_cache.code_version.cache_clear()
    assert figure_cache.code_version() != base
    figure_cache.code_version.cache_clear()


def test_parallel_drawing_equals_sequential_drawing():
    from study.report.figure_cache import draw_figures
    from study.report.figure_list import figure_jobs

    jobs = [j for j in figure_jobs(_results()) if j.name in ("pr__sim-detector", "forest__sex", "mrmc_roc__sim-detector")]
    assert len(jobs) == 3
    parallel = draw_figures(jobs, workers=2)
    assert list(parallel) == [j.name for j in jobs]  # report order kept
    assert parallel == draw_figures(jobs, workers=1)


def test_bad_figure_jobs_are_refused():
    from study.report.figure_cache import FigureJob, draw_figures, figure_key

    job = FigureJob("a", str, ("x",))
    with pytest.raises(ValueError, match="unique"):
        draw_figures([job, job])
    with pytest.raises(ValueError, match="workers"):
        draw_figures([job], workers=0)
    with pytest.raises(TypeError, match="results data"):
        figure_key(FigureJob("b", str, (object(),)))


def test_report_command_caches_figures_and_gives_the_same_pdf(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    r = _results()
    r.update(agreement=None, mrmc=None, detection={})  # a short report: the counting figures and the flow
    (tmp_path / "results.json").write_text(json.dumps(r), encoding="utf-8")
    assert run_cli("report", str(tmp_path), "--out", str(tmp_path / "a.pdf"))[0] == 0
    cached = sorted(p.name for p in (tmp_path / "figures" / ".cache").glob("*.svg"))
    assert len(cached) == len(list((tmp_path / "figures").glob("*.svg"))) > 0
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "figures" / ".cache").glob("*.svg")}
    assert run_cli("report", str(tmp_path), "--out", str(tmp_path / "b.pdf"))[0] == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "figures" / ".cache").glob("*.svg")} == stamps
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()


def test_report_context_and_figure_jobs_do_not_import_pandas():
    """Rendering the report needs no pandas (a second or more of CPU to import): the subgroup order
    comes from study.natural_order, not study.baseline."""
    import subprocess
    import sys

    code = ("import gzip, json, sys\n"
            f"r = json.load(gzip.open({str(FIXTURE)!r}, 'rt'))\n"
            "from study.report.context import build_context\n"
            "from study.report.figure_list import figure_jobs\n"
            "jobs = figure_jobs(r)\n"
            "ctx = build_context(r, figures={})\n"
            "assert ctx['subgroups']['available'] is not False and len(jobs) > 5\n"
            "print('pandas' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"


def test_dense_scatter_layers_are_rasterised():
    """The per-image points of the count scatter and Bland-Altman plots are one embedded PNG
    (matplotlib ``rasterized=True``), not one SVG element per image, while the axes and
    labels stay vector text."""
    from study.report.figure_cache import draw_figures
    from study.report.figure_list import figure_jobs

    jobs = [j for j in figure_jobs(_results()) if j.name.startswith(("count_scatter__", "bland_altman__"))]
    svgs = draw_figures(jobs, workers=1)
    assert len(svgs) == 2
    for name, svg in svgs.items():
        assert svg.count("<image") >= 1 and 'xlink:href="data:image/png;base64,' in svg, name
        assert "<text" in svg, name
