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
