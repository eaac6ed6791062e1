"""Report figures: deterministic SVG, text kept as text, ids unique across inlined figures,
user text never read as mathtext or markup, figures only where the data exist."""

from __future__ import annotations

import copy
import gzip
import json
import re
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "report" / "results.json.gz"


def _results() -> dict:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        return json.load(f)


def _subset(r: dict) -> dict:
    r = copy.deepcopy(r)
    r["agreement"]["subgroups"] = {k: v for k, v in r["agreement"]["subgroups"].items() if k == "sex"}
    return r


def test_figures_are_deterministic_svg_with_unique_ids(tmp_path):
    from study.report import figures as F

    r = _subset(_results())
    a = F.figure_svgs(r)
    again = json.loads(json.dumps(r))
    assert F.confusion_figure(again["agreement"]) == a["confusion"]
    assert F.count_scatter_figure("sim-detector", again["counting"]["sim-detector"]) == a["count_scatter__sim-detector"]
    assert F.flow_figure(again["flow"]) == F.flow_figure(r["flow"])
    assert {"flow", "pr__sim-detector", "froc__sim-detector", "count_scatter__sim-detector",
            "bland_altman__sim-detector", "confusion", "sens_spec", "forest__sex",
            "mrmc_roc__sim-detector"} <= set(a)
    ids: dict[str, str] = {}
    for name, svg in a.items():
        assert svg.lstrip().startswith("<svg"), name  # no XML declaration: inlinable in HTML
        assert "<dc:date>" not in svg
        for i in re.findall(r'\sid="([^"]+)"', svg):
            assert ids.setdefault(i, name) == name, f"id {i} in both {ids[i]} and {name}"
    assert "<text" in a["confusion"]  # svg.fonttype none: text stays text
    paths = F.make_figures({"agreement": r["agreement"]}, out_dir=tmp_path)
    assert paths["confusion"].read_text(encoding="utf-8") == a["confusion"]


def test_user_text_is_neither_mathtext_nor_markup():
    from study.report.figures import confusion_figure

    r = _results()
    ag = r["agreement"]
    raters = {"$\\frac{1}{2}$ <b>x</b>": {**ag["raters"]["junior-1"], "group": "junior"},
              "sim-detector": ag["raters"]["sim-detector"]}
    svg = confusion_figure({"levels": ag["levels"], "raters": raters})
    assert "$\\frac{1}{2}$ &lt;b&gt;x&lt;/b&gt;" in svg
    assert "<b>" not in svg


def test_no_figure_without_data():
    from study.report.figures import figure_svgs

    assert figure_svgs({"schema_version": 1, "detection": {}, "counting": {}, "agreement": {}, "mrmc": None}) == {}
