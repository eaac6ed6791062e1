"""Report figures: deterministic SVG, text kept as text, ids unique across inlined figures,
user text never read as mathtext or markup, figures only where the data exist."""

from __future__ import annotations

import copy
import gzip
import json
import re
from pathlib import Path

from study.results.agreement import AgreementResult, RaterAgreement
from study.results.counting import CountingPoints

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
    from study.results.counting import CountingResult
    from study.results.flow import Flow

    r = _subset(_results())
    a = F.figure_svgs(r)
    again = json.loads(json.dumps(r))
    ag = AgreementResult.model_validate(again["agreement"])
    assert F.confusion_figure(ag.levels, ag.raters) == a["confusion"]
    assert F.count_scatter_figure("sim-detector", CountingResult.model_validate(again["counting"]["sim-detector"])) \
        == a["count_scatter__sim-detector"]
    assert F.flow_figure(Flow.model_validate(again["flow"])) == F.flow_figure(Flow.model_validate(r["flow"]))
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
    paths = F.make_figures(r, out_dir=tmp_path)
    assert paths["confusion"].read_text(encoding="utf-8") == a["confusion"]


def test_user_text_is_neither_mathtext_nor_markup():
    from study.report.figures import confusion_figure

    r = _results()
    ag = r["agreement"]
    raters = {"$\\frac{1}{2}$ <b>x</b>": {**ag["raters"]["junior-1"], "group": "junior"},
              "sim-detector": ag["raters"]["sim-detector"]}
    svg = confusion_figure(ag["levels"], {rid: RaterAgreement.model_validate(v) for rid, v in raters.items()})
    assert "$\\frac{1}{2}$ &lt;b&gt;x&lt;/b&gt;" in svg
    assert "<b>" not in svg


def test_no_figure_without_data():
    from study.report.figures import figure_svgs

    r = {**_results(), "flow": None, "detection": {}, "counting": {}, "agreement": None, "mrmc": None}
    assert figure_svgs(r) == {}


def _tiny_results_dir(tmp_path):
    """Two drawn 'photos' with reference and model boxes, laid out as a study's results folder."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    rd = tmp_path / "results"
    (rd / "detections").mkdir(parents=True)
    paths = []
    for i in range(2):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(np.full((120, 160, 3), 60 + 80 * i, dtype=np.uint8)).save(p)
        paths.append(str(p))
    pd.DataFrame({"case_id": ["case-a", "case-b"], "image_path": paths}).to_parquet(rd / "cases.parquet")
    gt = {"images": [{"id": 1, "case_id": "case-a"}, {"id": 2, "case_id": "case-b"}],
          "annotations": [{"id": 1, "image_id": 1, "bbox": [10, 10, 20, 20]}, {"id": 2, "image_id": 2, "bbox": [50, 40, 10, 10]}]}
    (rd / "ground_truth.json").write_text(json.dumps(gt))
    pd.DataFrame({"case_id": ["case-a", "case-b"], "image_id": [1, 2], "class": ["papule"] * 2, "score": [0.9, 0.2],
                  "x": [12.0, 1.0], "y": [11.0, 1.0], "w": [18.0, 5.0], "h": [19.0, 5.0]}).to_parquet(
        rd / "detections" / "m.parquet")
    points = {"m": CountingPoints(case_id=["case-a", "case-b"], true=[1, 1], severity=None, predicted={"0.5": [1, 0]},
                                by_class={})}
    return points, rd


def test_example_images_only_when_the_protocol_allows(tmp_path):
    from study.report.context import examples_context
    from study.report.figures import example_figures
    from study.pseudonyms import pseudonyms

    points, rd = _tiny_results_dir(tmp_path)
    figs = example_figures(points, results_dir=rd, show=True, worst_cases=10, operating_threshold=0.5)
    ps = pseudonyms(["case-a", "case-b"])
    assert sorted(figs) == sorted(f"example__m__{ps[c]}" for c in ("case-a", "case-b"))
    svg = figs[f"example__m__{ps['case-a']}"]
    assert "data:image/png;base64," in svg and "case-a" not in svg
    assert examples_context(figs, show_example_images=True)["available"] is True
    assert example_figures(points, results_dir=rd, show=False, worst_cases=10, operating_threshold=0.5) == {}
    ctx = examples_context(figs, show_example_images=False)
    assert ctx["available"] is False and "personal data" in ctx["reason"]


def test_each_reader_keeps_one_colour_and_no_two_readers_share_one():
    """Issue 17 item 8: one palette keyed by reader id; models black; distinct colours even beyond the named ones."""
    from study.report.figures import rater_colours

    ids = [f"reader-{i}" for i in range(25)]
    cols = rater_colours(ids + ["model-a"], models=["model-a"])
    assert cols["model-a"] == "#000000"
    assert len({cols[r] for r in ids}) == len(ids) and "#000000" not in {cols[r] for r in ids}
    assert rater_colours(list(reversed(ids)), models=[]) == {r: cols[r] for r in ids}  # keyed by id, not order


def test_figures_use_the_study_reader_colours_a_real_minus_and_no_zero_fp_point():
    """Each reader's colour (study_rater_colours) is drawn in the sens/spec, forest and MRMC ROC figures; the
    Bland-Altman labels carry U+2212; the FROC curve starts at the first positive false-positive rate."""
    from study.report import figures as F
    from study.report.context import parse_results
    from study.results.detection import DetectionResult

    raw = _subset(_results())
    r = parse_results(raw)
    cols = F.study_rater_colours(r)
    readers = [k for k, v in r.agreement.raters.items() if v.kind != "model"]
    assert len({cols[k] for k in readers}) == len(readers)
    svgs = F.figure_svgs(raw)
    for name in ("sens_spec", "forest__sex", "mrmc_roc__sim-detector"):
        drawn = svgs[name].lower()
        assert all(cols[k].lower() in drawn for k in readers if k in svgs[name] or name != "forest__sex"), name
    ba = svgs["bland_altman__sim-detector"]
    assert "\u2212" in ba and "bias" in ba
    det = raw["detection"]["sim-detector"]
    det["froc"]["curve"]["fp_per_image"][0] = 0.0
    curve, _ = F.froc_plot_data(DetectionResult.model_validate(det))
    assert curve and min(x for x, _ in curve) > 0
    assert len(curve) == sum(1 for x in det["froc"]["curve"]["fp_per_image"] if x is not None and x > 0)
