"""MRMC input checks, design checks, binary figures of merit and ratings built from grades."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from study.errors import StudyError
from study.metrics.mrmc import analyze_mrmc, load_mrmc_ratings, ratings_from_grades
from study.metrics.roc import binary_fom


def _crossed(modalities=("A", "B"), readers=("r1", "r2", "r3"), n0=8, n1=7, seed=0):
    rng = np.random.default_rng(seed)
    truth = np.r_[np.zeros(n0, int), np.ones(n1, int)]
    rows = []
    for m_i, m in enumerate(modalities):
        for rd in readers:
            score = truth * (1 + 0.3 * m_i) + rng.normal(size=truth.size)
            for k, (t, s) in enumerate(zip(truth, score)):
                rows.append((m, rd, f"c{k}", t, round(float(s), 3)))
    return pd.DataFrame(rows, columns=["modality", "reader_id", "case_id", "truth", "rating"])


# ------------------------------------------------------------------ loading
def test_load_reports_every_problem_with_line_and_value(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("modality,reader_id,case_id,truth,rating\n"
                 "A,r1,c1,0,1\n"
                 "A,r1,c2,2,1\n"          # truth not 0/1 (line 3)
                 "A,r1,c3,1,abc\n"        # rating not a number (line 4)
                 "A,r1,c1,0,2\n"          # duplicate (line 5)
                 "A,r2,c3,0,1\n"          # c3 truth 1 on line 4, 0 here
                 "A,,c4,1,\n")            # empty reader and rating (line 7)
    with pytest.raises(StudyError) as e:
        load_mrmc_ratings(p)
    text = str(e.value)
    assert "line 3, column truth: value '2'; expected 0 or 1" in text
    assert "line 4, column rating: value 'abc'" in text
    assert "line 5: duplicate row" in text
    assert "case_id 'c3'" in text and "truth takes values [0, 1]" in text
    assert "line 7, column reader_id: empty value" in text
    assert "line 7, column rating: value ''" in text
    assert all(str(p) in str(pr) for pr in e.value.problems)


def test_load_missing_file_and_columns(tmp_path):
    with pytest.raises(StudyError, match="not found"):
        load_mrmc_ratings(tmp_path / "nope.csv")
    p = tmp_path / "r.csv"
    p.write_text("modality,reader,case_id,truth,score\nA,r1,c1,0,1\n")
    with pytest.raises(StudyError, match=r"missing column\(s\) \['reader_id', 'rating'\]"):
        load_mrmc_ratings(p)


def test_load_keeps_ids_as_text_and_extra_columns(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("modality,reader_id,case_id,truth,rating,lroc_correct_localization\n0,01,007,1,2.5,1\n")
    df = load_mrmc_ratings(p)
    assert df.loc[0, "reader_id"] == "01" and df.loc[0, "case_id"] == "007"
    assert df["truth"].dtype.kind == "i" and df["rating"].dtype.kind == "f"
    assert "lroc_correct_localization" in df.columns


# ------------------------------------------------------------------ design checks
def test_not_fully_crossed_is_refused_with_the_missing_cells():
    df = _crossed()
    df = df[~((df["reader_id"] == "r2") & (df["modality"] == "B") & (df["case_id"].isin(["c1", "c2"])))]
    with pytest.raises(StudyError) as e:
        analyze_mrmc(df)
    text = str(e.value)
    assert "modality 'B', reader 'r2'" in text and "rated 13 of 15 cases" in text
    assert "partially crossed designs are not supported" in text


def test_design_needs_two_readers_and_both_truths():
    df = _crossed(readers=("r1",))
    with pytest.raises(StudyError, match="at least two"):
        analyze_mrmc(df)
    df = _crossed()
    df["truth"] = 1
    with pytest.raises(StudyError, match="at least two cases of each truth"):
        analyze_mrmc(df)


def test_truth_must_be_constant_per_case():
    df = _crossed()
    df.loc[(df["case_id"] == "c0") & (df["modality"] == "B"), "truth"] = 1
    with pytest.raises(StudyError, match="case_id 'c0'.*not constant"):
        analyze_mrmc(df)


def test_bad_options_are_user_errors():
    df = _crossed()
    with pytest.raises(StudyError) as e:
        analyze_mrmc(df, method="dbm", covariance="bootstrap", analysis="xx", confidence=1.5)
    text = str(e.value)
    assert "only 'jackknife' applies" in text and "'xx'" in text and "1.5" in text
    with pytest.raises(StudyError, match="expected at least 100"):
        analyze_mrmc(df, covariance="bootstrap", n_bootstrap=5)
    with pytest.raises(StudyError, match="needs a cut point"):
        analyze_mrmc(df, fom="sensitivity")
    with pytest.raises(StudyError, match="'nobody' is not a reader_id"):
        analyze_mrmc(df, ai_reader="nobody")
    with pytest.raises(StudyError, match="at least two readers besides 'r1'"):
        analyze_mrmc(_crossed(readers=("r1", "r2")), ai_reader="r1")


# ------------------------------------------------------------------ binary FOMs inside OR / DBM
@pytest.mark.parametrize("fom", ["sensitivity", "specificity", "accuracy"])
@pytest.mark.parametrize("method", ["or", "dbm"])
def test_binary_fom_analysis(fom, method):
    df = _crossed(readers=("r1", "r2", "r3", "r4"), n0=20, n1=20, seed=4)
    res = analyze_mrmc(df, method=method, fom=fom, threshold=0.5)
    for rd in ("r1", "r2", "r3", "r4"):
        for m in ("A", "B"):
            sub = df[(df["reader_id"] == rd) & (df["modality"] == m)]
            assert res.readers[rd][m] == pytest.approx(binary_fom(sub["truth"], sub["rating"], threshold=0.5, fom=fom))
    d = res.differences[0]
    assert d.ci_low < d.estimate < d.ci_high and 0 <= d.p_value <= 1
    assert res.fom == fom and res.threshold == 0.5


@pytest.mark.parametrize("covariance", ["bootstrap", "delong"])
def test_other_covariances_run_and_are_close_to_jackknife(covariance):
    df = _crossed(readers=("r1", "r2", "r3", "r4"), n0=40, n1=40, seed=8)
    jk = analyze_mrmc(df).variance_components
    other = analyze_mrmc(df, covariance=covariance, n_bootstrap=300).variance_components
    assert other.covariance_method == covariance
    assert other.var_error == pytest.approx(jk.var_error, rel=0.35)


def test_ai_reader_with_two_modalities_is_left_out_of_the_modality_comparison():
    df = _crossed(readers=("ai", "r1", "r2", "r3"), seed=9)
    res = analyze_mrmc(df, ai_reader="ai")
    assert res.design.readers_in_modality_comparison == ["r1", "r2", "r3"]
    assert set(res.modalities["A"].readers) == {"r1", "r2", "r3"}
    assert [a.modality for a in res.ai_vs_readers] == ["A", "B"]
    kinds = [d.kind for d in res.differences]
    assert kinds == ["modality", "ai_vs_readers", "ai_vs_readers"]
    a = res.ai_vs_readers[0]
    expected = a.ai_fom.estimate - np.mean(list(a.readers.values()))
    assert a.analyses.rrrc.estimate == pytest.approx(expected)


# ------------------------------------------------------------------ ratings from grades
LEVELS = ["mild", "moderate", "severe", "very_severe"]


def _reader_study():
    """12 cases; the model reads all; A and B read cases 0-7; C reads 4-11; D reads 0-2."""
    ref = pd.DataFrame({"case_id": [f"k{i}" for i in range(12)],
                        "grade": ["mild", "moderate", "severe", "mild", "very_severe", "moderate",
                                  "mild", "severe", "mild", "moderate", "severe", "mild"]})
    rows = []
    reads = {"model": range(12), "A": range(8), "B": range(8), "C": range(4, 12), "D": range(3)}
    rng = np.random.default_rng(1)
    for rid, cases in reads.items():
        for i in cases:
            g = LEVELS.index(ref.loc[i, "grade"]) + int(rng.integers(-1, 2))
            rows.append((rid, f"k{i}", LEVELS[min(max(g, 0), 3)]))
    grades = pd.DataFrame(rows, columns=["rater_id", "case_id", "grade"])
    return ref, grades


def test_ratings_from_grades_keeps_the_largest_crossed_block():
    ref, grades = _reader_study()
    table, account = ratings_from_grades(ref, grades, levels=LEVELS, positive_from="moderate", keep=["model"])
    # candidate blocks: {model,A,B}: 3 x 8 = 24 cells; {model,A,B,C}: 4 x 4 = 16; {model,A,B,D}: 4 x 3 = 12
    assert account.raters_kept == ["A", "B", "model"]
    assert set(account.raters_dropped) == {"C", "D"}
    assert account.raters_dropped["C"].cases_read == 8
    assert account.cases_kept == 8 and account.cases_excluded.not_read_by_every_kept_rater == 4
    assert (account.n_positive, account.n_negative) == (5, 3)
    assert len(table) == 24 and set(table["modality"]) == {"grading"}
    # truth = reference grade moderate or worse; rating = ordinal index of the rater's grade
    row = table[(table["reader_id"] == "A") & (table["case_id"] == "k4")].iloc[0]
    assert row["truth"] == 1 and row["rating"] == LEVELS.index(row["grade"])
    assert table[table["case_id"] == "k0"]["truth"].eq(0).all()
    res = analyze_mrmc(table, ai_reader="model")
    assert res.ai_vs_readers[0].ai_reader == "model"
    # the binary endpoint's sensitivity, with the cut point the account gives
    assert account.binary_threshold == 1
    sens = analyze_mrmc(table, ai_reader="model", fom="sensitivity", threshold=account.binary_threshold)
    model = table[table["reader_id"] == "model"]
    pos = model[model["truth"] == 1]
    assert sens.ai_vs_readers[0].ai_fom.estimate == pytest.approx((pos["rating"] >= 1).mean())


def test_ratings_from_grades_uses_scores_and_reports_unknown_grades():
    ref, grades = _reader_study()
    grades["score"] = np.where(grades["rater_id"] == "model", np.linspace(0, 3, len(grades)), np.nan)
    table, account = ratings_from_grades(ref, grades, levels=LEVELS, positive_from="severe", keep=["model"])
    model_rows = table[table["reader_id"] == "model"]
    assert not np.allclose(model_rows["rating"], model_rows["grade"].map(LEVELS.index))
    assert "score" in account.rating and "model" in account.rating
    bad = grades.copy()
    bad.loc[0, "grade"] = "B"
    with pytest.raises(StudyError, match=r"values \['B'\] are not levels"):
        ratings_from_grades(ref, bad.drop(columns="score"), levels=LEVELS, positive_from="severe")
    with pytest.raises(StudyError, match="is not one of the levels"):
        ratings_from_grades(ref, grades, levels=LEVELS, positive_from="huge")


def test_ratings_from_grades_keeps_a_complete_model_and_two_readers_without_being_told():
    """As the workflow calls it (no ``keep``): the block must still allow AI versus >= 2 readers."""
    ref = pd.DataFrame({"case_id": [f"k{i}" for i in range(12)], "grade": (LEVELS * 3)})
    reads = {"model": range(12), "A": range(6), "B": range(6, 12), "C": range(9)}
    grades = pd.DataFrame([(rid, f"k{i}", LEVELS[i % 4]) for rid, cases in reads.items() for i in cases],
                          columns=["rater_id", "case_id", "grade"])
    # {model, C} alone would give 2 x 9 = 18 cells, as many as {model, A, C} = 3 x 6
    table, account = ratings_from_grades(ref, grades, levels=LEVELS, positive_from="severe")
    assert account.raters_kept == ["A", "C", "model"] and account.cases_kept == 6
    dropped = account.model_dump()["raters_dropped"]
    assert dropped == {"B": {"cases_read": 6, "reason": dropped["B"]["reason"]}}
    assert "at least 3 raters" in account.rule
    analyze_mrmc(table, ai_reader="model")
