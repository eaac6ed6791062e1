"""Section 4.8's U-statistic part (readers aided versus unaided, each model versus unaided readers) and its figures.

Built from a small simulated study through :func:`study.metrics.mrmc.study_ustat.study_ustat`;
the numbers shown are those of the analysis (checked against iMRMC in tests/test_mrmc_ustat.py).
"""

from __future__ import annotations

import re

from study.metrics.mrmc.study_ustat import study_ustat
from study.report.context.mrmc import mrmc_context
from study.report.figures_mrmc import ustat_figures
from study.results.base import NotAssessed
from study.results.mrmc import MRMCBlock
from tests.test_mrmc_study_ustat import LEVELS, _study


def _block(readings, reference, models) -> MRMCBlock:
    u = study_ustat(reference, readings, models, levels=LEVELS, positive_from="moderate")
    return MRMCBlock(endpoint="reference grade moderate or worse", positive_from="moderate", models={}, ustat=u)


def _cells(ctx: dict) -> str:
    return " | ".join(" ".join([t["caption"], *t["notes"], *(" ".join(r) for r in t["rows"])])
                      for a in ctx["ustat"]["analyses"] for t in a["tables"])


def test_the_section_shows_the_analysis_set_design_per_reader_aucs_and_components():
    reference, readings, models = _study(1)
    missing = readings[readings.case_id != "c0"]  # case c0 left unread by everyone
    block = _block(missing, reference, models)
    figures = ustat_figures(block.ustat)
    ctx = mrmc_context(block, figures)
    u = block.ustat
    assert u is not None and u.cases_with_readings == missing.case_id.nunique()
    n_missing = 60 - u.cases_with_readings
    assert ctx["ustat"]["sentence"].startswith(f"The U-statistic analyses used {u.cases_with_readings} of the 60 "
                                               "included cases")
    assert f"{n_missing} included case" in ctx["ustat"]["sentence"] and "no reader read them" in ctx["ustat"]["sentence"]
    aided, model = ctx["ustat"]["analyses"]
    assert aided["title"] == "Readers aided versus unaided" and aided["not_estimable"] is None
    text = _cells(ctx)
    a = u.aided_vs_unaided
    assert not isinstance(a, NotAssessed)
    for r, v in a.modalities["aided"].readers.items():  # each reader's AUC per modality is in the table
        assert re.search(rf"{r} {v:.3f} {a.modalities['unaided'].readers[r]:.3f}", text), r
    assert "Difference, aided - unaided" in text and "Variance components" in text
    assert any("Gallas BD (2006)" in x for x in aided["references"])
    assert [f for f, _ in aided["figures"]] == ["mrmc_design__readers", "mrmc_forest__readers"]
    assert "mrmc_design__model__m1" in figures and "mrmc_forest__model__m1" not in figures  # no paired readers
    svg = figures["mrmc_design__readers"]
    assert svg.startswith("<svg") and "aided: 5 readers" in svg and "unaided: 5 readers" in svg
    assert model["title"] == "Model m1 standalone versus the unaided readers"


def test_an_analysis_that_cannot_be_made_is_not_estimable_with_its_reason():
    reference, readings, models = _study(5, n_readers=2)
    one = readings[~((readings.modality == "aided") & (readings.reader_id == "r1"))]
    ctx = mrmc_context(_block(one, reference, models), {})
    aided = ctx["ustat"]["analyses"][0]
    assert aided["not_estimable"].startswith("Not estimable: ")
    assert "modality 'aided'" in aided["not_estimable"] and "at least two readers" in aided["not_estimable"]
    no_aided = readings[readings.modality == "unaided"]
    ctx = mrmc_context(_block(no_aided, reference, models), {})
    assert "the readings have no aided session" in ctx["ustat"]["analyses"][0]["not_estimable"]
