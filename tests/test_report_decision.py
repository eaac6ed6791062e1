"""Page one of the report (the decision on the analysis plan), the hypotheses, the estimands and the
sample-size paragraph, built from results.json without rendering a PDF (the PDF is read back with
pdftotext on real runs in tests/test_workflow_e2e.py)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from study.report.format import fmt_ci

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "report" / "results.json.gz"


def _results() -> dict:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        return json.load(f)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _page_one(html: str) -> str:
    """The decision section of the HTML (what the PDF prints on page 2, right after the title page)."""
    start = html.index('<section id="sec-decision"')
    return _text(html[start:html.index("</section>", start)])


def test_page_one_states_each_primary_decision_and_the_secondary_adjusted_p():
    from study.report.context import build_context
    from study.report.format import DASH
    from study.results.decisions import AnalysisPlanResults

    r = _results()
    plan = AnalysisPlanResults.model_validate(r["analysis_plan"])
    ctx = build_context(r, figures={})["decision"]
    assert ctx["planned"] and ctx["lock"]["label"] == "NOT LOCKED"
    primary = [d for d in plan.endpoints if d.role == "primary"]
    rows = ctx["primary"]["rows"]
    assert len(rows) == len(primary) == 2
    for d, row in zip(primary, rows):
        assert row[0].startswith(d.id) and row[1] == d.criterion
        assert row[2].startswith(fmt_ci(d.estimate))
        assert row[3] == {"met": "MET", "not met": "NOT MET", "not estimable": "NOT ESTIMABLE"}[d.decision]
    secondary = [d for d in plan.endpoints if d.role == "secondary"]
    assert [row[0].split(":")[0] for row in ctx["secondary"]["rows"]] == [d.id for d in secondary]
    for d, row in zip(secondary, ctx["secondary"]["rows"]):
        if d.p_adjusted is None:  # e.g. aided versus unaided in a study without an aided session
            assert d.decision == "not estimable" and row[4] == DASH
        else:
            assert row[4] == (f"{d.p_adjusted:.3f}" if d.p_adjusted >= 0.001 else "< 0.001")
    # exploratory endpoints stay off page one, and are in the body labelled exploratory
    exploratory = [d.id for d in plan.endpoints if d.role == "exploratory"]
    assert exploratory and ctx["n_exploratory"] == len(exploratory)
    on_page_one = " ".join(c for t in (ctx["primary"], ctx["secondary"]) for row in t["rows"] for c in row)
    assert not any(e in on_page_one for e in exploratory)
    body = build_context(r, figures={})["endpoints"]["table"]["rows"]
    assert {row[0].split(":")[0]: row[1] for row in body if row[1] == "exploratory"} == dict.fromkeys(exploratory,
                                                                                                      "exploratory")


def test_without_a_plan_page_one_says_no_decision_is_made():
    from study.report.render import render_html

    r = _results()
    r["analysis_plan"] = {"planned": False, "lock": {"state": "not_locked", "lock_file": "results/plan-lock.json",
                                                     "statement": "The analysis plan was not locked."}}
    html = render_html(r, figures={})
    page = _page_one(html)
    assert "No analysis plan was pre-specified" in page and "makes no decision" in page
    assert "MET" not in page.replace("NOT LOCKED", "")
    text = _text(html)
    assert "No formal hypothesis was recorded (the protocol has no analysis_plan)" in text
    assert "None: the protocol has no analysis_plan" in text
    # a results.json from before the decide step: no claim either way
    del r["analysis_plan"]
    assert "holds no analysis_plan block" in _page_one(render_html(r, figures={}))


def test_a_deviation_lists_each_changed_key_with_old_and_new_value():
    from study.report.render import render_html

    r = _results()
    r["analysis_plan"]["lock"] = {
        "state": "deviation", "lock_file": "x", "locked_at": "2026-11-30T08:00:00Z", "protocol_sha256": "ab" * 32,
        "changes": [{"key": "protocol.detection.operating_threshold", "old": 0.5, "new": 0.25}],
        "statement": "DEVIATION from the analysis plan locked on 2026-11-30T08:00:00Z (sha256 abababababab…): "
                     "changed after the lock: protocol.detection.operating_threshold."}
    page = _page_one(render_html(r, figures={}))
    assert "DEVIATION. DEVIATION from the analysis plan locked on 2026-11-30T08:00:00Z" in page
    assert "protocol.detection.operating_threshold 0.5 0.25" in page


def test_hypotheses_estimands_and_multiplicity_are_written_from_the_plan():
    from study.report.context import build_context

    r = _results()
    ctx = build_context(r, figures={})
    hyp = ctx["introduction"]["hypotheses"]["plan"]
    confirmatory = [d for d in r["analysis_plan"]["endpoints"] if d["role"] != "exploratory"]
    assert len(hyp["endpoints"]) == len(confirmatory) and "analysis_plan" in hyp["source"]
    for d, text in zip(confirmatory, hyp["endpoints"]):
        assert text.startswith(f"{d['id']} ({d['role']}): {d['hypothesis']}") and d["criterion"] in text
    assert r["analysis_plan"]["multiplicity"] in hyp["intro"]
    assert ctx["introduction"]["hypotheses"]["investigators"] is None  # the fixture's study supplies none
    plan = ctx["methods"]["plan"]
    assert r["analysis_plan"]["multiplicity"] in plan["text"]
    est = plan["estimands"]
    assert est["columns"] == ["Endpoint", "Role", "Population", "Variable", "Summary measure"]
    first = r["analysis_plan"]["endpoints"][0]["estimand"]
    assert est["rows"][0][2:] == [first["population"], first["variable"], first["summary_measure"]]
    assert any(first["intercurrent_events"] in n for n in est["notes"])


def test_sample_size_paragraph_is_the_study_plan_table_when_results_carry_it(tmp_path):
    """STARD 18: with `study plan`'s block in results.json the methods show its numbers; else the investigators'."""
    from study.plan.model import AnalysisPlan
    from study.plan.sample_size import plan_sample_size
    from study.report.context import build_context

    r = _results()
    assert build_context(r, figures={})["methods"]["sample_size"]["table"] is None
    plan = AnalysisPlan.model_validate(r["study"]["protocol_settings"]["analysis_plan"])
    ss = plan_sample_size(plan, protocol="chinese-2019")
    r["sample_size"] = ss.model_dump(mode="json")
    s = build_context(r, figures={})["methods"]["sample_size"]
    assert s["items"][0]["text"] == ss.statement
    rows = {row[0].split(" ")[0]: row for row in s["table"]["rows"]}
    for e in ss.endpoints:
        assert rows[e.id][3] == (str(e.patients) if e.patients is not None else "–")
        assert rows[e.id][4] == (str(e.images) if e.images is not None else "–")


@pytest.mark.parametrize("state,label", [("locked", "LOCKED"), ("not_locked", "NOT LOCKED")])
def test_lock_label(state, label):
    from study.report.context.decision import lock_context
    from study.results.decisions import LockStatus

    ctx = lock_context(LockStatus(state=state, lock_file="x", statement="s"))
    assert ctx["label"] == label and ctx["changes"] is None


def test_a_primary_not_reached_in_the_fixed_sequence_says_why_on_page_one():
    """A co-primary whose own bound clears the goal but which comes after a failed endpoint in the fixed
    sequence reads NOT MET; page one's note under the primary table says it was not reached."""
    from study.report.context import build_context

    r = _results()
    reason = "not reached: sensitivity_grade_iii, earlier in the fixed sequence, was not met"
    spec = next(e for e in r["analysis_plan"]["endpoints"] if e["id"] == "specificity_grade_iii")
    spec["reason"] = reason
    ctx = build_context(r, figures={})["decision"]
    assert f"specificity_grade_iii: {reason}." in ctx["primary"]["notes"]


def test_aided_versus_unaided_endpoint_is_named_for_the_readers_aided_by_the_model():
    """The readers' aided-versus-unaided endpoint names the readers aided by the model, not the model's own
    figure of merit."""
    from study.report.context import build_context

    r = _results()
    ctx = build_context(r, figures={})["decision"]
    row = next(row for row in ctx["secondary"]["rows"] if row[0].startswith("aided_vs_unaided:"))
    assert ", readers aided by sim-detector versus unaided" in row[0] and " of sim-detector" not in row[0]
