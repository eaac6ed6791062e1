"""Readings: partially crossed designs, letter aliases, and the errors a reader table can hold."""

from __future__ import annotations

import pytest

from study.errors import StudyError
from study.protocol import load_protocol
from study.readings import load_readings
from test_check_fixtures import REPO

HAY = load_protocol(REPO / "protocols" / "hayashi-acne04.yaml").protocol


def _load(path, **kw):
    return load_readings(path, levels=HAY.levels, aliases=HAY.grading.letter_aliases, **kw)


def test_partially_crossed_with_aliases_and_counts(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("reader_id,case_id,grade,count_acne\nr1,a,A,3\nr1,b,C,\nr2,b,severe,30\n")
    df = _load(p, cases=["a", "b", "c"], classes=HAY.classes)
    assert df["grade"].tolist() == ["mild", "severe", "severe"]
    assert df["reader_group"].tolist() == ["", "", ""]
    assert df["count_acne"].tolist()[0] == 3 and df["count_acne"].isna().tolist() == [False, True, False]
    assert list(df.columns[:4]) == ["reader_id", "reader_group", "case_id", "grade"]


def test_every_problem_listed(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("reader_id,reader_group,case_id,grade\n"
                 "r1,junior,a,A\n"
                 "r1,junior,a,B\n"      # second reading of a by r1
                 "r1,senior,b,B\n"      # r1 in two groups
                 "r2,senior,zz,B\n"     # unknown case
                 ",senior,b,F\n")       # no reader, bad grade
    with pytest.raises(StudyError) as e:
        _load(p, cases=["a", "b"])
    text = "\n".join(map(str, e.value.problems))
    for needle in ("row 3: reader 'r1' has two readings of case 'a' (rows 2 and 3)",
                   "row 4: reader 'r1' is in group 'senior' here but in group 'junior' at row 2",
                   "row 5: reading of unknown case 'zz' by reader 'r2'",
                   "row 6: reader_id is empty",
                   "row 6, reader '', case 'b': grade 'F' is not one of the protocol's levels"):
        assert needle in text, needle
    assert len(e.value.problems) == 5


# ----------------------------------------------------------------------------- reading-tool columns
CN = load_protocol(REPO / "protocols" / "chinese-2019.yaml").protocol


def test_modality_confidence_seconds_assessable_are_read_and_aided_readings_not_analysed(tmp_path):
    from study.readings import analysable_readings

    p = tmp_path / "r.csv"
    p.write_text("reader_id,case_id,modality,grade,confidence,seconds,assessable,count_papule\n"
                 "r1,a,unaided,II,70,12.5,true,3\n"
                 "r1,a,aided,III,90,8,true,\n"          # the same case in the aided session: legal
                 "r1,b,,I,,,,\n"                        # no modality = unaided; empty assessable = true
                 "r2,b,unaided,,,4,false,\n")           # not assessable: no grade needed
    df = load_readings(p, levels=CN.levels, classes=CN.classes, cases=["a", "b"])
    assert df["modality"].tolist() == ["unaided", "aided", "unaided", "unaided"]
    assert df["assessable"].tolist() == [True, True, True, False]
    assert df["confidence"].tolist()[:2] == [70.0, 90.0] and df["confidence"].isna().tolist()[2:] == [True, True]
    assert df["seconds"].tolist()[0] == 12.5 and df["grade"].tolist()[3] is None
    used = analysable_readings(df)
    assert list(zip(used["reader_id"], used["case_id"], used["grade"])) == [("r1", "a", "II"), ("r1", "b", "I")]


def test_reading_tool_columns_bad_values_are_located(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("reader_id,case_id,modality,grade,confidence,seconds,assessable\n"
                 "r1,a,assisted,II,50,1,true\n"
                 "r1,b,unaided,II,101,1,true\n"
                 "r1,c,unaided,II,50,-2,maybe\n"
                 "r1,c,unaided,II,50,1,true\n"
                 "r2,a,aided,,50,1,true\n")
    with pytest.raises(StudyError) as e:
        load_readings(p, levels=CN.levels, cases=["a", "b", "c"])
    text = "\n".join(map(str, e.value.problems))
    for needle in ("row 2: modality 'assisted' is not one of ['unaided', 'aided']",
                   "row 3: confidence = '101' is out of range; expected a number in [0, 100]",
                   "row 4: seconds = '-2' is out of range",
                   "row 4: assessable = 'maybe'; expected true or false",
                   "row 5: reader 'r1' has two readings of case 'c' (rows 4 and 5) in the unaided session",
                   "row 6, reader 'r2', case 'a': grade is empty"):
        assert needle in text, needle
