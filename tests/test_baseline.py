"""Baseline table: checked against Python's ``statistics`` module (an independent
implementation of mean, sample SD, median and type-7 quartiles) and hand counts."""

from __future__ import annotations

import statistics

import pandas as pd
import pytest

from study.baseline import compute_baseline
from study.errors import StudyError

LEVELS = ["I", "II", "III", "IV"]
CLASSES = ["comedone", "papule"]


def _tables():
    cases = pd.DataFrame({
        "case_id": [f"c{i}" for i in range(8)],
        "patient_id": [f"p{i // 2}" for i in range(8)],
        "age": [18, 22, 35, None, 41, 29, 63, 17],
        "sex": ["F", "M", "F", "F", None, "M", "F", "M"],
        "fitzpatrick": ["III", "II", "IV", "III", "VI", "I", "II", "V"],
        "site": ["A", "A", "B", "B", "A", "B", "A", "A"],
    })
    elig = pd.DataFrame({"case_id": cases["case_id"], "included": [True] * 7 + [False]})
    counts = pd.DataFrame({"case_id": cases["case_id"], "count_comedone": [3, 0, 5, 2, 9, 1, 0, 4],
                           "count_papule": [0, 2, 1, 0, 3, 0, 0, 7]})
    ref = pd.DataFrame({"case_id": cases["case_id"], "grade": ["I", "II", "II", "I", "III", "I", "I", "IV"]})
    return cases, elig, counts, ref


def test_baseline_matches_statistics_module():
    cases, elig, counts, ref = _tables()
    b = compute_baseline(cases, elig, counts, ref, levels=LEVELS, classes=CLASSES).model_dump()
    assert b["n_cases"] == 7
    ages = [18, 22, 35, 41, 29, 63]  # included, non-missing
    age = b["age"]
    assert age["n"] == 6 and age["n_missing"] == 1
    assert age["mean"] == pytest.approx(statistics.mean(ages))
    assert age["sd"] == pytest.approx(statistics.stdev(ages))
    assert age["median"] == pytest.approx(statistics.median(ages))
    q1, _, q3 = statistics.quantiles(ages, n=4, method="inclusive")  # = Hyndman & Fan type 7
    assert (age["q1"], age["q3"]) == (pytest.approx(q1), pytest.approx(q3))
    assert (age["min"], age["max"]) == (18, 63)

    sex = {lv["value"]: lv["n"] for lv in b["sex"]["levels"]}
    assert sex == {"F": 4, "M": 2} and b["sex"]["n_missing"] == 1
    assert [lv["value"] for lv in b["fitzpatrick"]["levels"]] == ["I", "II", "III", "IV", "VI"]  # natural order
    assert b["fitzpatrick"]["levels"][2]["percent"] == pytest.approx(100 * 2 / 7)
    assert b["not_recorded"] == ["device"] and b["device"] is None

    sev = {lv["value"]: lv["n"] for lv in b["severity"]["levels"]}
    assert sev == {"I": 4, "II": 2, "III": 1, "IV": 0}

    com = b["lesions_per_image"]["classes"]["comedone"]
    inc = [3, 0, 5, 2, 9, 1, 0]
    assert com["total"] == sum(inc)
    assert com["mean"] == pytest.approx(statistics.mean(inc))
    assert com["sd"] == pytest.approx(statistics.stdev(inc))
    assert com["images_with"] == 5
    assert b["lesions_per_image"]["all"]["total"] == sum(inc) + sum([0, 2, 1, 0, 3, 0, 0])
    by_sev = b["lesions_per_image"]["by_severity"]
    assert by_sev["I"]["n_images"] == 4
    assert by_sev["I"]["mean"]["comedone"] == pytest.approx(statistics.mean([3, 2, 1, 0]))
    assert by_sev["IV"] == {"n_images": 0, "mean": {"comedone": None, "papule": None}}


def test_baseline_lists_every_problem():
    cases, elig, counts, ref = _tables()
    bad_ref = ref.assign(grade=ref["grade"].replace({"II": "2"}))
    bad_counts = counts[counts["case_id"] != "c2"]
    with pytest.raises(StudyError) as e:
        compute_baseline(cases, elig, bad_counts, bad_ref, levels=LEVELS, classes=CLASSES)
    msg = str(e.value)
    assert "'2'" in msg and "c2" in msg
    with pytest.raises(StudyError) as e:
        compute_baseline(pd.concat([cases, cases.iloc[:1]]), elig.drop(columns="included"), counts, ref,
                         levels=LEVELS, classes=CLASSES)
    assert "repeated case_id" in str(e.value) and "included" in str(e.value)
