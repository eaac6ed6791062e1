"""U-statistic MRMC analysis of any design (``study.metrics.mrmc.ustat``, ``study evaluate mrmc --method ustat``).

References: iMRMC 4.0.3's own example (tests/data/mrmc/imrmc_example.csv and the output of iMRMC
4.0.3 in its R package tests, US FDA, public domain); a brute-force enumeration of pairs of
readings (the definition of the U-statistic moments, written independently of the vectorised
code); scikit-learn's ``roc_auc_score`` for the per-reader AUCs; statsmodels' two-way ANOVA
for the binary-endpoint variance on fully crossed data.
"""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pandas as pd
import pytest

from study.errors import StudyError
from study.metrics.mrmc.ustat import analyze_ustat
from study.metrics.mrmc.ustat_design import build_ustat_design, crossing_of

REL = 1e-6


@pytest.fixture(scope="module")
def imrmc():
    from tests.conftest import REFERENCE_DATA

    df = pd.read_csv(REFERENCE_DATA / "mrmc" / "imrmc_example.csv")
    return analyze_ustat(df)


def test_imrmc_example_modality_a(imrmc):
    """iMRMC 4.0.3 on its example: testA AUC, variance, BDG df, p, 95% CI; the normal approximation."""
    e = imrmc.modalities["testA"].unbiased
    assert e.estimate == pytest.approx(0.704375, rel=REL)
    assert e.variance == pytest.approx(0.00631393024, rel=REL)
    assert e.df == pytest.approx(6.80522151, rel=REL)
    assert e.p_value == pytest.approx(0.0422189226, rel=REL)
    assert e.ci_low == pytest.approx(0.509942789, rel=REL)
    assert e.ci_high == pytest.approx(0.898807211, rel=REL)
    assert e.p_value_normal == pytest.approx(0.010110093, rel=REL)
    assert e.ci_normal == pytest.approx([0.548635785, 0.860114215], rel=REL)


def test_imrmc_example_modality_b(imrmc):
    e = imrmc.modalities["testB"].unbiased
    assert e.estimate == pytest.approx(0.7585, rel=REL)
    assert e.variance == pytest.approx(0.00237205276, rel=REL)
    assert e.df == pytest.approx(27.4083876, rel=REL)
    assert e.p_value == pytest.approx(1.33400151e-05, rel=REL)


def test_imrmc_example_difference(imrmc):
    (d,) = imrmc.differences
    assert d.comparison == "testA - testB"
    e = d.unbiased
    assert e.estimate == pytest.approx(-0.054125, rel=REL)
    assert e.variance == pytest.approx(0.00498950905, rel=REL)
    assert e.df == pytest.approx(7.35006973, rel=REL)
    assert e.p_value == pytest.approx(0.468575984, rel=REL)
    assert e.ci_low == pytest.approx(-0.221153679, rel=REL)
    assert e.ci_high == pytest.approx(0.112903679, rel=REL)
    assert e.df_hillis == pytest.approx(7.43533593, rel=REL)


def test_imrmc_example_design(imrmc):
    d = imrmc.design
    assert d.n_cases == 80 and d.n_cases_negative == 40 and d.n_cases_positive == 40 and d.n_readings == 800
    assert {m.crossing for m in d.by_modality.values()} == {"fully crossed"}
    assert set(d.by_modality["testA"].matrix["reader1"]) == {"1"}


def _partially_crossed(seed: int, *, n_readers=4, n_neg=5, n_pos=4, keep=0.7, shift=1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    case_eff = rng.normal(size=n_neg + n_pos)
    for m, mod in enumerate(("A", "B")):
        for r in range(n_readers):
            for c in range(n_neg + n_pos):
                if rng.random() > keep:
                    continue
                truth = int(c >= n_neg)
                rating = np.round(truth * shift + 0.7 * case_eff[c] + 0.3 * m + rng.normal(), 1)  # ties happen
                rows.append((mod, f"r{r}", f"c{c}", truth, rating))
    return pd.DataFrame(rows, columns=["modality", "reader_id", "case_id", "truth", "rating"])


def _brute_force_cov(df: pd.DataFrame, ma: str, mb: str, *, fixed_reader: bool = False) -> tuple[float, float, float]:
    """Cov(AUC_A, AUC_B) by enumerating every pair of kernel terms (r, i, j), (r', i', j').

    Unbiased moments: mean of s s' over the pairs sharing exactly the same reader / non-diseased /
    diseased units; coefficients: the fraction of all pairs that share them (Gallas 2009).
    ``fixed_reader``: the reader is fixed (an algorithm), sharing it correlates nothing.
    """
    def terms(mod):
        g = df[df.modality == mod]
        out = []
        for r, gr in g.groupby("reader_id"):
            neg, pos = gr[gr.truth == 0], gr[gr.truth == 1]
            for (_, n), (_, p) in itertools.product(neg.iterrows(), pos.iterrows()):
                s = 1.0 if p.rating > n.rating else 0.5 if p.rating == n.rating else 0.0
                out.append((r, n.case_id, p.case_id, s))
        return out

    ta, tb = terms(ma), terms(mb)
    sums: dict[tuple[bool, bool, bool], list[float]] = {}
    for (r, i, j, s), (r2, i2, j2, s2) in itertools.product(ta, tb):
        sums.setdefault((r == r2 and not fixed_reader, i == i2, j == j2), []).append(s * s2)
    n_pairs = len(ta) * len(tb)
    mean_a = np.mean([t[3] for t in ta])
    mean_b = np.mean([t[3] for t in tb])
    # Cov = sum_k c_k M_k - M_none: c_k the fraction of pairs sharing pattern k, M_none estimates mean_a mean_b
    none = sums[(False, False, False)]
    cov = sum(len(v) / n_pairs * np.mean(v) for v in sums.values()) - np.mean(none)
    return float(cov), float(mean_a), float(mean_b)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_moments_match_brute_force_enumeration_on_partially_crossed_data(seed):
    df = _partially_crossed(seed)
    res = analyze_ustat(df)
    var_a, auc_a, _ = _brute_force_cov(df, "A", "A")
    var_b, _, _ = _brute_force_cov(df, "B", "B")
    cov_ab, _, _ = _brute_force_cov(df, "A", "B")
    assert res.modalities["A"].unbiased.estimate == pytest.approx(auc_a, abs=1e-12)
    assert res.modalities["A"].unbiased.variance == pytest.approx(var_a, abs=1e-12)
    assert res.modalities["B"].unbiased.variance == pytest.approx(var_b, abs=1e-12)
    assert res.differences[0].unbiased.variance == pytest.approx(var_a + var_b - 2 * cov_ab, abs=1e-12)
    assert res.design.by_modality["A"].crossing == "partially crossed"


def test_reader_weighting_by_case_pairs_read():
    """Reader-averaged AUC = sum_r N0_r N1_r AUC_r / sum_r N0_r N1_r (per-reader AUC: scikit-learn)."""
    from sklearn.metrics import roc_auc_score

    df = _partially_crossed(7, n_readers=5, n_neg=8, n_pos=7, keep=0.6)
    res = analyze_ustat(df).modalities["A"]
    num = den = 0.0
    for r, g in df[df.modality == "A"].groupby("reader_id"):
        w = (g.truth == 0).sum() * (g.truth == 1).sum()
        auc = roc_auc_score(g.truth, g.rating)
        assert res.readers[r] == pytest.approx(auc, abs=1e-12)
        assert res.reader_weights[r] == pytest.approx(w / sum((gg.truth == 0).sum() * (gg.truth == 1).sum()
                                                               for _, gg in df[df.modality == "A"].groupby("reader_id")))
        num, den = num + w * auc, den + w
    assert res.unbiased.estimate == pytest.approx(num / den, abs=1e-12)


def _split_plot(seed: int, *, groups=2, readers_per_group=3, cases_per_group=20, modality_shift=0.0,
                reader_sd=0.3, case_sd=0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        cases = [(f"g{g}c{c}", int(c % 2)) for c in range(cases_per_group)]
        case_eff = {cid: rng.normal(scale=case_sd) for cid, _ in cases}
        for r in range(readers_per_group):
            rid = f"g{g}r{r}"
            reff = rng.normal(scale=reader_sd)
            for m, mod in enumerate(("unaided", "aided")):
                for cid, t in cases:
                    rows.append((mod, rid, cid, t, t * 1.2 + m * modality_shift + reff + case_eff[cid] + rng.normal()))
    return pd.DataFrame(rows, columns=["modality", "reader_id", "case_id", "truth", "rating"])


def test_split_plot_design_is_recognised_and_analysed():
    df = _split_plot(0)
    res = analyze_ustat(df)
    assert res.design.by_modality["unaided"].crossing == "split-plot"
    assert res.design.n_readings == len(df)
    d = res.differences[0].unbiased
    assert d.df_hillis is None  # not fully crossed
    assert d.ci_low is not None and d.ci_low < d.estimate < d.ci_high
    assert set(res.differences[0].readers) == set(df.reader_id)


def test_crossing_of():
    full = np.ones((3, 4), dtype=bool)
    split = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]], dtype=bool)
    partial = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=bool)
    assert crossing_of(full) == "fully crossed"
    assert crossing_of(split) == "split-plot"
    assert crossing_of(partial) == "partially crossed"


def _binary_crossed(seed: int, n_readers=6, n_cases=40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    case_eff = rng.normal(scale=1.0, size=n_cases)
    reader_eff = rng.normal(scale=0.6, size=n_readers)
    rows = [("A", f"r{r}", f"c{c}", 1, float(case_eff[c] + reader_eff[r] + rng.normal(scale=0.5) > 0))
            for r in range(n_readers) for c in range(n_cases)]
    rows += [("A", f"r{r}", f"n{c}", 0, 0.0) for r in range(n_readers) for c in range(2)]
    return pd.DataFrame(rows, columns=["modality", "reader_id", "case_id", "truth", "rating"])


def test_binary_variance_equals_two_way_anova_on_fully_crossed_data():
    """Fully crossed: Var(mean) = (MS_C + MS_R - MS_RC) / (r c) from statsmodels' two-way ANOVA."""
    import statsmodels.api as sm
    from statsmodels.formula.api import ols

    df = _binary_crossed(3)
    res = analyze_ustat(df, fom="sensitivity", threshold=0.5).modalities["A"]
    assert res.components.truncated == []
    pos = df[df.truth == 1]
    table = sm.stats.anova_lm(ols("rating ~ C(case_id) + C(reader_id)", data=pos).fit())
    ms = table["mean_sq"]
    r, c = pos.reader_id.nunique(), pos.case_id.nunique()
    expected = (ms["C(case_id)"] + ms["C(reader_id)"] - ms["Residual"]) / (r * c)
    assert res.unbiased.estimate == pytest.approx(pos.rating.mean())
    assert res.unbiased.variance == pytest.approx(expected, rel=1e-10)


def test_binary_variances_never_negative_on_split_plot_designs():
    """Small split-plot studies make the raw unbiased variance negative; the reported one never is."""
    seen_negative = False
    for seed in range(60):
        df = _split_plot(seed, readers_per_group=2, cases_per_group=6, reader_sd=0.0, case_sd=0.0)
        for fom in ("sensitivity", "specificity"):
            res = analyze_ustat(df, fom=fom, threshold=0.6)
            for est in [m.unbiased for m in res.modalities.values()] + [res.differences[0].unbiased]:
                assert est.variance is not None and est.variance >= 0
                if est.variance_untruncated is not None and est.variance_untruncated < 0:
                    seen_negative = True
    assert seen_negative, "no design produced a negative raw estimate: the test would not show anything"


def test_binary_difference_fully_crossed_untruncated_equals_paired_anova():
    """Fully crossed and paired: Var(mean_A - mean_B) is the two-way ANOVA estimate on the differences."""
    import statsmodels.api as sm
    from statsmodels.formula.api import ols

    a = _binary_crossed(11)
    b = _binary_crossed(12).assign(modality="B")
    res = analyze_ustat(pd.concat([a, b]), fom="sensitivity", threshold=0.5)
    d = res.differences[0]
    pos = a[a.truth == 1].merge(b[b.truth == 1], on=["reader_id", "case_id"])
    pos["diff"] = pos.rating_x - pos.rating_y
    ms = sm.stats.anova_lm(ols("diff ~ C(case_id) + C(reader_id)", data=pos).fit())["mean_sq"]
    r, c = pos.reader_id.nunique(), pos.case_id.nunique()
    expected = (ms["C(case_id)"] + ms["C(reader_id)"] - ms["Residual"]) / (r * c)
    raw = d.unbiased.variance_untruncated if d.unbiased.variance_untruncated is not None else d.unbiased.variance
    assert raw == pytest.approx(expected, rel=1e-10)


def test_designs_that_cannot_be_analysed_say_what_is_missing():
    df = _split_plot(1)
    one_reader = df[~((df.modality == "aided") & (df.reader_id != "g0r0"))]
    with pytest.raises(StudyError, match=r"modality 'aided'.*1 reader\(s\).*at least two readers"):
        analyze_ustat(one_reader)
    no_diseased = df[df.truth == 0]
    with pytest.raises(StudyError, match=r"0 diseased case\(s\) \(truth 1\)"):
        analyze_ustat(no_diseased)
    with pytest.raises(StudyError, match="--threshold"):
        analyze_ustat(df, fom="sensitivity")
    dup = pd.concat([df, df.iloc[[0]]])
    with pytest.raises(StudyError, match="duplicate"):
        build_ustat_design(dup)


def test_cli_method_ustat(run_cli, reference_data, tmp_path):
    out = tmp_path / "u.json"
    rc, stdout, err = run_cli("evaluate", "mrmc", "--method", "ustat", "--ratings",
                              reference_data / "mrmc" / "imrmc_example.csv", "--out", out)
    assert rc == 0, err
    assert "testA - testB" in stdout
    data = json.loads(out.read_text())
    assert data["method"] == "ustat"
    assert data["differences"][0]["unbiased"]["df_hillis"] == pytest.approx(7.43533593, rel=REL)
    assert len(data["input"]["ratings"]["sha256"]) == 64
    rc, _, err = run_cli("evaluate", "mrmc", "--method", "ustat", "--ai-reader", "reader1", "--ratings",
                         reference_data / "mrmc" / "imrmc_example.csv", "--out", tmp_path / "x.json")
    assert rc == 2 and "--ai-reader" in err and not (tmp_path / "x.json").exists()


# ----------------------------------------------------------------------------- patients resampled
def test_one_image_per_patient_gives_the_image_level_variance(reference_data):
    df = pd.read_csv(reference_data / "mrmc" / "imrmc_example.csv")
    img = analyze_ustat(df)
    pat = analyze_ustat(df.assign(patient_id=df.case_id))
    assert pat.resampling_unit == "patient" and pat.design.n_patients == 80 and pat.differences[0].mle is None
    for m in ("testA", "testB"):
        assert pat.modalities[m].unbiased.variance == pytest.approx(img.modalities[m].unbiased.variance, rel=1e-12)
    assert pat.differences[0].unbiased.variance == pytest.approx(img.differences[0].unbiased.variance, rel=1e-12)
    terms = pat.differences[0].patient_terms
    assert terms is not None and sum(terms.values()) == pytest.approx(pat.differences[0].unbiased.variance)


def _with_patients(seed: int) -> pd.DataFrame:
    df = _partially_crossed(seed, n_neg=6, n_pos=6, keep=0.8)
    # three images per patient, truths mixed within a patient
    patient = {f"c{c}": f"p{c % 4}" for c in range(12)}
    return df.assign(patient_id=df.case_id.map(patient))


def _brute_force_patient_cov(df: pd.DataFrame, ma: str, mb: str) -> float:
    """Sum over pairs of AUC terms sharing a reader or a patient of (s s' - M_none), over N_A N_B."""
    pat = dict(zip(df.case_id, df.patient_id))

    def terms(mod):
        g = df[df.modality == mod]
        out = []
        for r, gr in g.groupby("reader_id"):
            neg, pos = gr[gr.truth == 0], gr[gr.truth == 1]
            for (_, n), (_, p) in itertools.product(neg.iterrows(), pos.iterrows()):
                s = 1.0 if p.rating > n.rating else 0.5 if p.rating == n.rating else 0.0
                out.append((r, {pat[n.case_id], pat[p.case_id]}, s))
        return out

    ta, tb = terms(ma), terms(mb)
    sharing, none = [], []
    for (r, pa, s), (r2, pb, s2) in itertools.product(ta, tb):
        (sharing if r == r2 or pa & pb else none).append(s * s2)
    return float((sum(sharing) - len(sharing) * np.mean(none)) / (len(ta) * len(tb)))


@pytest.mark.parametrize("seed", [4, 5])
def test_patient_resampling_matches_brute_force_enumeration(seed):
    df = _with_patients(seed)
    res = analyze_ustat(df)
    var_a = _brute_force_patient_cov(df, "A", "A")
    var_b = _brute_force_patient_cov(df, "B", "B")
    cov_ab = _brute_force_patient_cov(df, "A", "B")
    assert res.modalities["A"].unbiased.variance == pytest.approx(var_a, abs=1e-12)
    assert res.differences[0].unbiased.variance == pytest.approx(var_a + var_b - 2 * cov_ab, abs=1e-12)
    # ignoring the patients gives a different (image-level) variance
    assert analyze_ustat(df, patient_column=None).modalities["A"].unbiased.variance != pytest.approx(var_a)


def test_binary_patient_resampling_one_image_per_patient():
    df = _split_plot(2)
    img = analyze_ustat(df, fom="specificity", threshold=0.5)
    pat = analyze_ustat(df.assign(patient_id=df.case_id), fom="specificity", threshold=0.5)
    raw = img.differences[0].unbiased.variance_untruncated or img.differences[0].unbiased.variance
    assert pat.differences[0].unbiased.variance == pytest.approx(raw, rel=1e-10)


def test_a_case_with_two_patients_is_an_error():
    df = _with_patients(4)
    df.loc[df.index[0], "patient_id"] = "someone else"
    with pytest.raises(StudyError, match=r"case_id 'c\d+'.*patient_id takes values"):
        analyze_ustat(df)


def test_cli_says_what_is_missing_for_a_design_that_cannot_be_analysed(run_cli, tmp_path):
    """Issue 14: a modality read by one reader, or no diseased case: exit 2, the message names what is
    missing, and no output file is left."""
    df = _split_plot(1)
    cases = [("one-reader", df[~((df.modality == "aided") & (df.reader_id != "g0r0"))],
              r"modality 'aided'.*1 reader\(s\).*at least two readers"),
             ("no-diseased", df[df.truth == 0], r"0 diseased case\(s\) \(truth 1\)")]
    for name, data, message in cases:
        path, out = tmp_path / f"{name}.csv", tmp_path / f"{name}.json"
        data.to_csv(path, index=False)
        rc, _, err = run_cli("evaluate", "mrmc", "--method", "ustat", "--ratings", path, "--out", out)
        assert rc == 2 and re.search(message, " ".join(err.split())), err
        assert not out.exists()
