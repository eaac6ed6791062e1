"""Issue 18 item 1, piece by piece: what made degenerate studies crash or report a zero-width
interval as a result (the whole runs are in test_hostile_corpus.py)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO_ROOT

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "report" / "results.json.gz"


def test_estimate_never_keeps_a_zero_width_interval():
    from study.estimate import ZERO_WIDTH_REASON, Estimate

    e = Estimate(0.5, 0.5, 0.5, "Wald, 95%")
    assert (e.estimate, e.ci_low, e.ci_high, e.reason) == (0.5, None, None, ZERO_WIDTH_REASON)
    kept = Estimate.model_validate({"estimate": 1.0, "ci_low": 1.0, "ci_high": 1.0 + 1e-13, "method": "m",
                                    "reason": "one patient"})
    assert kept.ci_low is None and kept.reason == "one patient"
    assert Estimate(0.5, 0.4, 0.6, "m") == Estimate(0.5, 0.4, 0.6, "m", reason=None)


def test_kappa_on_one_case_has_no_interval():
    """Point estimate as scikit-learn's cohen_kappa_score; the ASE is 0, so no interval, with the reason."""
    from sklearn.metrics import cohen_kappa_score

    from study.metrics.intervals import cohen_kappa

    e = cohen_kappa([[0, 1], [0, 0]])
    assert e.estimate == pytest.approx(cohen_kappa_score(["I"], ["II"], labels=["I", "II"]))
    assert e.ci_low is None and e.ci_high is None and "standard error is 0" in e.reason


def test_counting_with_no_case_is_not_estimable():
    from study.metrics.counting import evaluate_counting
    from study.options import CountingOptions
    from study.protocol import load_protocol

    protocol = load_protocol(REPO_ROOT / "protocols" / "chinese-2019.yaml").protocol
    counts = pd.DataFrame({"case_id": pd.Series([], dtype=str),
                           **{f"count_{c}": pd.Series([], dtype=float) for c in protocol.classes}})
    detections = pd.DataFrame({"case_id": pd.Series([], dtype=str), "class": pd.Series([], dtype=str),
                               "score": pd.Series([], dtype=float)})
    result = evaluate_counting(counts, detections, options=CountingOptions.from_protocol(protocol),
                               severity=pd.Series([], dtype=str), patient_of={})
    overall = result.thresholds["0.5"].overall
    assert overall.n == 0 and result.inputs.n_patients == 0
    for est in (overall.mean_bias, overall.sd, overall.mae, overall.rmse, overall.ccc):
        assert est.estimate is None and est.reason


def test_flow_lists_a_reader_with_nothing_analysable():
    from study.eligibility import add_readers
    from study.readings import analysable_readings
    from study.results.flow import Analysed, FailedEligibility, FailedQuality, Flow

    flow = Flow(received=2, not_decodable=0, decodable=2,
                failed_quality=FailedQuality(total=0, by_reason={}, any_reason={}), passed_quality=2,
                failed_eligibility=FailedEligibility(total=0, by_criterion={}, any_criterion={}), included=2,
                criteria=[], analysed=Analysed(models={}, readers={}), missing_readings=None, reader_groups={},
                check=True)
    readings = pd.DataFrame({"reader_id": ["a", "a", "idle", "idle"], "case_id": ["C1", "C2", "C1", "C2"],
                             "reader_group": ["junior"] * 4, "grade": ["I", "II", None, None],
                             "modality": ["unaided"] * 4, "assessable": [True, True, False, False]})
    out = add_readers(flow, analysable_readings(readings), included=["C1", "C2"], all_readings=readings)
    assert out.analysed.readers == {"a": 2, "idle": 0}
    assert out.missing_readings.by_reader == {"a": 0, "idle": 2}
    assert out.reader_groups["idle"] == "junior"


@pytest.fixture(scope="module")
def fixture_results() -> dict:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        return json.load(f)


def test_report_says_no_case_was_included(fixture_results):
    """A flow with no included case: every results section and the summary say so, with the exclusions."""
    from study.report.context import NO_CASE_SECTIONS, build_context

    raw = json.loads(json.dumps(fixture_results))
    flow = raw["flow"]
    flow["failed_eligibility"]["total"] += flow["included"]
    flow["included"] = 0
    ctx = build_context(raw, figures={})
    for key in NO_CASE_SECTIONS:
        assert ctx[key]["available"] is False
        assert ctx[key]["reason"].startswith("Not estimable: no case was included.")
    assert ctx["summary"]["table"] is None
    assert f"All {flow['received']} cases received were excluded" in ctx["summary"]["not_estimable"]
    assert f"{flow['failed_eligibility']['total']} failed the inclusion criteria" in ctx["summary"]["not_estimable"]


def test_table_says_why_an_interval_is_missing():
    from study.estimate import Estimate
    from study.report.format import Table

    t = Table("t", "caption", ["a", "b"])
    t.add([t.ci(Estimate(0.8, None, None, "bootstrap, 95%", reason="one patient")),
           t.ci(Estimate(None, None, None, "Wald, 95%", reason="no cases"))])
    d = t.to_dict()
    assert d["rows"][0][0].startswith("0.800 (no CI)") and d["rows"][0][1].startswith("n/a")
    assert "no CI (interval not estimable): one patient" in d["notes"]
    assert "n/a (not estimable): no cases" in d["notes"]
