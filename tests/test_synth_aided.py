"""``study synth --aided-session``: the same readers read again helped by a simulated aid."""

from __future__ import annotations

import pandas as pd

from study import synth
from study.metrics.mrmc.study_ustat import study_ustat
from study.results.mrmc import UStatAnalysis
from study.synth.aided import simulate_aided_readings
from study.synth.readers import DEFAULT_READERS, simulate_readings
from study.synth.vocabulary import LEVELS


def _reference(n: int = 300) -> dict[str, str]:
    return {f"c{i}": LEVELS[i % len(LEVELS)] for i in range(n)}


def _unaided(reference):
    counts = {cid: {} for cid in reference}
    return simulate_readings(reference, counts, seed=5, readers=DEFAULT_READERS)


def _accuracy(rows, reference) -> float:
    return sum(r["grade"] == reference[r["case_id"]] for r in rows) / len(rows)


def test_aided_readers_err_less_without_automation_bias():
    ref = _reference()
    unaided = _unaided(ref)
    aided = simulate_aided_readings(ref, unaided, seed=5, readers=DEFAULT_READERS, aid_error=0.0)
    assert _accuracy(aided, ref) > _accuracy(unaided, ref) + 0.05


def test_automation_bias_follows_the_aids_errors():
    ref = _reference()
    unaided = _unaided(ref)
    always_wrong = simulate_aided_readings(ref, unaided, seed=5, readers=DEFAULT_READERS, aid_error=1.0,
                                           automation_bias=1.0)
    assert _accuracy(always_wrong, ref) == 0.0
    none = simulate_aided_readings(ref, unaided, seed=5, readers=DEFAULT_READERS, aid_error=1.0, automation_bias=0.0)
    assert _accuracy(none, ref) > 0.8


def test_some_readers_read_only_part_of_the_cases_aided():
    ref = _reference()
    unaided = _unaided(ref)
    aided = simulate_aided_readings(ref, unaided, seed=5, readers=DEFAULT_READERS, partial_readers=2,
                                    partial_share=0.5)
    n_un = pd.Series([r["reader_id"] for r in unaided]).value_counts()
    n_ai = pd.Series([r["reader_id"] for r in aided]).value_counts()
    partial = [rid for rid, *_ in DEFAULT_READERS[-2:]]
    full = [rid for rid, *_ in DEFAULT_READERS[:-2]]
    assert all(n_ai[r] == n_un[r] for r in full)
    assert all(0.3 * n_un[r] < n_ai[r] < 0.7 * n_un[r] for r in partial)


def test_make_cohort_writes_both_sessions_with_confidence(tmp_path):
    s = synth.make_cohort(tmp_path, cases=24, seed=4, image_size=128, exclusion_rate=0.0, aided_session=True)
    rd = pd.read_csv(tmp_path / "readings.csv")
    assert set(rd.modality) == {"unaided", "aided"}
    assert s["aided_readings"] == int((rd.modality == "aided").sum()) > 0
    assert rd.confidence.between(0, 100).all()
    # confidence refines the grade: its bins are the grades
    order = rd.grade.map({lv: i for i, lv in enumerate(LEVELS)})
    assert (rd.confidence // (100 / len(LEVELS)) == order).all()
    assert not rd.duplicated(["reader_id", "case_id", "modality"]).any()
    # the study's U-statistic analysis reads it as aided versus unaided
    ref = pd.read_csv(tmp_path / "reference.csv")[["case_id", "grade"]]
    res = study_ustat(ref, rd, {}, levels=LEVELS, positive_from=LEVELS[1])
    assert isinstance(res.aided_vs_unaided, UStatAnalysis)
    assert res.rating["aided"] == "confidence (0-100)"
    assert res.readings_used == len(rd)


def test_without_the_flag_readings_are_unchanged(tmp_path):
    synth.make_cohort(tmp_path, cases=6, seed=4, image_size=128, exclusion_rate=0.0)
    assert list(pd.read_csv(tmp_path / "readings.csv").columns) == ["reader_id", "reader_group", "case_id", "grade"]
