"""Grading schemes: Hayashi count bands, Chinese guideline 2019 type rules, custom rules.

References: Hayashi et al. (2008) bands as used by ACNE04 (Wu et al. 2019: <=5 mild, 6-20
moderate, 21-50 severe, >50 very severe per half face); Chinese acne guideline 2019 (I only
comedones, II papules, III pustules, IV nodules or cysts); the repository's protocols.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study.errors import StudyError
from study.grading import (counts_from_coco, counts_from_detections, grade_from_counts, normalise_grades,
                           reader_grades)
from study.protocol import Grading, load_protocol

ROOT = Path(__file__).resolve().parents[1]
HAYASHI = load_protocol(ROOT / "protocols" / "hayashi-acne04.yaml").protocol
CHINESE = load_protocol(ROOT / "protocols" / "chinese-2019.yaml").protocol


def test_hayashi_band_edges():
    counts = [0, 1, 5, 6, 20, 21, 50, 51, 434]
    df = pd.DataFrame({"case_id": [f"c{i}" for i in range(len(counts))], "count_acne": counts})
    g = grade_from_counts(df, HAYASHI.grading)
    assert g.tolist() == ["mild", "mild", "mild", "moderate", "moderate", "severe", "severe",
                          "very_severe", "very_severe"]
    assert g.index.tolist() == df["case_id"].tolist() and g.name == "grade"


def _chinese(rows):
    cols = ["comedone", "papule", "pustule", "nodule", "cyst", "scar"]
    df = pd.DataFrame(rows, columns=cols).add_prefix("count_")
    df.insert(0, "case_id", range(len(df)))
    return df


def test_chinese_guideline_most_severe_type():
    df = _chinese([
        [0, 0, 0, 0, 0, 0],   # nothing -> I (default)
        [12, 0, 0, 0, 0, 9],  # comedones and scars only -> I (scars do not grade)
        [3, 1, 0, 0, 0, 0],   # a papule -> II
        [3, 5, 1, 0, 0, 0],   # a pustule -> III
        [0, 0, 0, 1, 0, 0],   # a nodule -> IV
        [0, 2, 4, 0, 1, 0],   # a cyst beats pustules -> IV
    ])
    assert grade_from_counts(df, CHINESE.grading).tolist() == ["I", "I", "II", "III", "IV", "IV"]


def test_custom_rules_with_minimum_counts_first_match_wins():
    g = Grading(scheme="type_rules", levels=["clear", "mild", "moderate", "severe"], default="clear",
                rules=[{"level": "severe", "any_of": {"nodule": 1}},
                       {"level": "moderate", "any_of": {"papule": 10, "pustule": 5}},
                       {"level": "mild", "any_of": {"papule": 1, "comedone": 20}}])
    df = pd.DataFrame({"case_id": list("abcdef"),
                       "count_comedone": [0, 25, 0, 0, 0, 100],
                       "count_papule": [0, 0, 9, 10, 0, 0],
                       "count_pustule": [0, 0, 4, 0, 5, 0],
                       "count_nodule": [0, 0, 0, 0, 0, 2]})
    assert grade_from_counts(df, g).tolist() == ["clear", "mild", "mild", "moderate", "moderate", "severe"]


def test_count_bands_default_sums_all_count_columns():
    g = Grading(scheme="count_bands", levels=["low", "high"], bands=[{"level": "low", "max": 3}, {"level": "high"}])
    df = pd.DataFrame({"case_id": [1, 2], "count_a": [1, 2], "count_b": [2, 2]})
    assert grade_from_counts(df, g).tolist() == ["low", "high"]


def test_grade_from_counts_reports_all_problems():
    df = pd.DataFrame({"case_id": ["a", "a", "b"], "count_acne": [1, -2, 2.5]})
    with pytest.raises(StudyError) as e:
        grade_from_counts(df, HAYASHI.grading)
    msg = str(e.value)
    assert "appears more than once" in msg and "-2" in msg and "2.5" in msg
    with pytest.raises(StudyError, match="count_papule"):
        grade_from_counts(pd.DataFrame({"case_id": [1], "count_comedone": [1]}), CHINESE.grading)


def test_counts_from_detections_threshold_and_zero_rows():
    det = pd.DataFrame({"case_id": ["a", "a", "a", "c", "c"],
                        "class": ["papule", "papule", "nodule", "comedone", "papule"],
                        "score": [0.9, 0.5, 0.49, 0.7, 0.1]})
    out = counts_from_detections(det, case_ids=["a", "b", "c"], classes=CHINESE.classes, threshold=0.5)
    assert out["case_id"].tolist() == ["a", "b", "c"]  # b has no detection: kept with zeros
    assert out.columns.tolist() == ["case_id"] + [f"count_{c}" for c in CHINESE.classes]
    assert out["count_papule"].tolist() == [2, 0, 0]  # score == threshold counts
    assert out["count_nodule"].tolist() == [0, 0, 0]
    assert out["count_comedone"].tolist() == [0, 0, 1]
    assert grade_from_counts(out, CHINESE.grading).tolist() == ["II", "I", "I"]


def test_counts_from_detections_errors():
    det = pd.DataFrame({"case_id": ["a", "zz"], "class": ["wart", "papule"], "score": [0.9, None]})
    with pytest.raises(StudyError) as e:
        counts_from_detections(det, case_ids=["a"], classes=CHINESE.classes, threshold=0.5)
    assert len(e.value.problems) == 3


def test_counts_from_coco():
    gt = {"images": [{"id": 1, "case_id": "a"}, {"id": 2, "case_id": "b"}, {"id": 7, "case_id": "c"}],
          "categories": [{"id": 1, "name": "acne"}],
          "annotations": [{"id": i, "image_id": im, "category_id": 1} for i, im in enumerate([1] * 7 + [7] * 60)]}
    out = counts_from_coco(gt, classes=["acne"])
    assert out.to_dict("list") == {"case_id": ["a", "b", "c"], "count_acne": [7, 0, 60]}
    assert grade_from_counts(out, HAYASHI.grading).tolist() == ["moderate", "mild", "very_severe"]
    bad = {"images": [{"id": 1}], "categories": [{"id": 1, "name": "wart"}],
           "annotations": [{"id": 1, "image_id": 9, "category_id": 1}]}
    with pytest.raises(StudyError) as e:
        counts_from_coco(bad, classes=["acne"])
    assert len(e.value.problems) == 3


def test_normalise_grades_aliases_and_errors():
    s = pd.Series(["A", "moderate", "D", None])
    assert normalise_grades(s, HAYASHI.grading, allow_missing=True).tolist() == ["mild", "moderate", "very_severe", None]
    with pytest.raises(StudyError) as e:
        normalise_grades(pd.Series(["E", "mild", None]), HAYASHI.grading)
    assert len(e.value.problems) == 2 and "'E'" in str(e.value)


def test_reader_grades_from_grade_or_counts():
    r = pd.DataFrame({"reader_id": ["r1", "r2", "r1"], "case_id": ["a", "a", "b"],
                      "grade": ["B", None, None], "count_acne": [np.nan, 30, np.nan]})
    assert reader_grades(r, HAYASHI.grading).tolist() == ["moderate", "severe", None]
