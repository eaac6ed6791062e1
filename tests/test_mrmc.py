"""MRMC analysis against published references.

References (none written by this project):
- Iowa OR-DBM MRMC 2.51 printout on the Van Dyke data
  (``tests/data/mrmc/vandyke_iowa_ordbm_output.txt``): every number it prints is pinned
  here to the digits printed.
- RJafroc / Chakraborty's RJafrocBook, chapter "Significance testing using the DBM method"
  (printed R output for dataset02 = Van Dyke): DBM RRRC/FRRC/RRFC F, ddf, p and CIs.
- RJafrocBook, chapter "Standalone CAD vs. radiologists", Table 2 (Wilcoxon row, dataset09 =
  the ROC form of datasetCadLroc) and Table 3: 1T-RRRC and 1T-RRFC results.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from study.metrics.mrmc import analyze_mrmc, load_mrmc_ratings

DATA = Path(__file__).resolve().parent / "data" / "mrmc"  # sources and licences: tests/data/README.md


def _need(name: str) -> Path:
    p = DATA / name
    if not p.exists():
        pytest.skip(f"reference data {p} is absent (tests/data/mrmc)")
    return p


def printed(value: float, text: str) -> None:
    """Assert ``value`` rounds to the printed ``text`` (half a unit of its last digit)."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    tol = 0.5 * 10 ** -decimals * (1 + 1e-9) + 1e-15
    assert abs(value - float(text)) <= tol, f"{value!r} does not print as {text}"


@pytest.fixture(scope="module")
def vandyke():
    return load_mrmc_ratings(_need("vandyke.csv"))


@pytest.fixture(scope="module")
def vd_or(vandyke):
    return analyze_mrmc(vandyke, method="or")


@pytest.fixture(scope="module")
def vd_dbm(vandyke):
    return analyze_mrmc(vandyke, method="dbm")


# ------------------------------------------------------------------ Iowa: estimates
IOWA_AUC = {  # reader -> (treatment 1, treatment 2)
    "0": ("0.91964573", "0.94782609"),
    "1": ("0.85877617", "0.90531401"),
    "2": ("0.90386473", "0.92173913"),
    "3": ("0.97310789", "0.99935588"),
    "4": ("0.82979066", "0.92995169"),
}


def test_iowa_design_and_reader_aucs(vd_or):
    d = vd_or.design
    assert (d.n_modalities, d.n_readers, d.n_cases) == (2, 5, 114)
    assert (d.n_cases_negative, d.n_cases_positive) == (69, 45)
    for reader, (a1, a2) in IOWA_AUC.items():
        printed(vd_or.readers[reader]["0"], a1)
        printed(vd_or.readers[reader]["1"], a2)
    printed(vd_or.modalities["0"].fom.estimate, "0.89703704")
    printed(vd_or.modalities["1"].fom.estimate, "0.94083736")
    printed(vd_or.differences[0].estimate, "-0.04380032")
    assert vd_or.differences[0].modalities == ["0", "1"]


def test_iowa_anova_and_variance_components(vd_or):
    a = vd_or.anova
    printed(a.ss_t, "0.00479617")
    printed(a.ss_r, "0.01534480")
    printed(a.ss_tr, "0.00220412")
    printed(a.ms_t, "0.00479617")
    printed(a.ms_r, "0.00383620")
    printed(a.ms_tr, "0.00055103")
    assert (a.df_t, a.df_r, a.df_tr) == (1, 4, 4)
    printed(a.ms_r_by_modality["0"], "0.00308263")
    printed(a.ms_r_by_modality["1"], "0.00130460")
    vc = vd_or.variance_components
    printed(vc.var_r, "0.00153500")
    printed(vc.var_tr, "0.00020040")
    printed(vc.cov1, "0.00034661")
    printed(vc.cov2, "0.00034407")
    printed(vc.cov3, "0.00023903")
    printed(vc.var_error, "0.00080229")
    printed(vc.corr1, "0.43203138")
    printed(vc.corr2, "0.42886683")
    printed(vc.corr3, "0.29793328")
    dv = vd_or.dbm_variance_components
    printed(dv.var_r, "0.00153500")
    printed(dv.var_c, "0.02724923")
    printed(dv.var_tr, "0.00020040")
    printed(dv.var_tc, "0.01197530")
    printed(dv.var_rc, "0.01226473")
    printed(dv.var_trc_error, "0.03997160")


# ------------------------------------------------------------------ Iowa: analysis 1 (RRRC)
def test_iowa_or_rrrc(vd_or):
    assert vd_or.analysis == "rrrc"
    t = vd_or.test
    assert t.statistic_name == "F" and t.ndf == 1
    printed(t.statistic, "4.46")
    printed(t.p_value, "0.0517")
    printed(t.ddf, "15.26")
    printed(t.error_term, "0.00107626")
    # the digits (Iowa's full-precision values, as in RJafroc)
    printed(t.statistic, "4.456319")
    printed(t.ddf, "15.25967")
    printed(t.p_value, "0.05166569")
    d = vd_or.differences[0]
    printed(d.estimate, "-0.04380")
    printed(d.se, "0.02075")
    printed(d.df, "15.26")
    printed(d.statistic, "-2.11")
    printed(d.p_value, "0.0517")
    printed(d.ci_low, "-0.08796")
    printed(d.ci_high, "0.00036")
    printed(d.ci_low, "-0.0879595")
    printed(d.ci_high, "0.0003588544")
    m = vd_or.analyses["rrrc"].modalities
    for key, (auc, se, df, lo, hi, cov2) in {
        "0": ("0.89703704", "0.03317360", "12.74", "0.82522360", "0.96885048", "0.00048396"),
        "1": ("0.94083736", "0.02156637", "12.71", "0.89413783", "0.98753689", "0.00020419"),
    }.items():
        printed(m[key].estimate, auc)
        printed(m[key].se, se)
        printed(m[key].df, df)
        printed(m[key].ci_low, lo)
        printed(m[key].ci_high, hi)
        printed(m[key].cov2, cov2)


# ------------------------------------------------------------------ Iowa: analysis 2 (FRRC)
def test_iowa_or_frrc(vd_or):
    f = vd_or.analyses["frrc"]
    t = f.test
    assert t.statistic_name == "chi-square" and t.ndf == 1
    printed(t.statistic, "5.47595")
    printed(t.p_value, "0.0193")
    d = f.differences[0]
    printed(d.estimate, "-0.04380")
    printed(d.se, "0.01872")
    printed(d.statistic, "-2.34")
    printed(d.p_value, "0.0193")
    printed(d.ci_low, "-0.08049")
    printed(d.ci_high, "-0.00711")
    assert d.statistic_name == "z" and d.df is None
    for key, (auc, se, lo, hi, var, cov2) in {
        "0": ("0.89703704", "0.02428971", "0.84943008", "0.94464399", "0.00101410", "0.00048396"),
        "1": ("0.94083736", "0.01677632", "0.90795637", "0.97371835", "0.00059047", "0.00020419"),
    }.items():
        m = f.modalities[key]
        printed(m.estimate, auc)
        printed(m.se, se)
        printed(m.ci_low, lo)
        printed(m.ci_high, hi)
        printed(m.var_error, var)
        printed(m.cov2, cov2)
    rows = {r.reader: r for r in f.single_reader_differences}
    for reader, (diff, se, z, p, lo, hi, var, cov1) in {
        "0": ("-0.02818", "0.02551", "-1.10", "0.2693", "-0.07818", "0.02182", "0.00069890", "0.00037347"),
        "1": ("-0.04654", "0.02630", "-1.77", "0.0768", "-0.09809", "0.00501", "0.00110605", "0.00076016"),
        "2": ("-0.01787", "0.03121", "-0.57", "0.5668", "-0.07904", "0.04330", "0.00084234", "0.00035532"),
        "3": ("-0.02625", "0.01729", "-1.52", "0.1290", "-0.06014", "0.00764", "0.00015058", "0.00000108"),
        "4": ("-0.10016", "0.04406", "-2.27", "0.0230", "-0.18651", "-0.01381", "0.00121357", "0.00024304"),
    }.items():
        r = rows[reader]
        printed(r.estimate, diff)
        printed(r.se, se)
        printed(r.statistic, z)
        printed(r.p_value, p)
        printed(r.ci_low, lo)
        printed(r.ci_high, hi)
        printed(r.var_error, var)
        printed(r.cov1, cov1)


# ------------------------------------------------------------------ Iowa: analysis 3 (RRFC)
def test_iowa_or_rrfc(vd_or):
    f = vd_or.analyses["rrfc"]
    t = f.test
    printed(t.statistic, "8.70")
    printed(t.p_value, "0.0420")
    assert (t.ndf, t.ddf) == (1, 4)
    printed(t.error_term, "0.00055103")
    d = f.differences[0]
    printed(d.se, "0.01485")
    assert d.df == 4
    printed(d.statistic, "-2.95")
    printed(d.p_value, "0.0420")
    printed(d.ci_low, "-0.08502")
    printed(d.ci_high, "-0.00258")
    for key, (auc, msr, se, lo, hi) in {
        "0": ("0.89703704", "0.00308263", "0.02482994", "0.82809808", "0.96597599"),
        "1": ("0.94083736", "0.00130460", "0.01615303", "0.89598936", "0.98568536"),
    }.items():
        m = f.modalities[key]
        printed(m.estimate, auc)
        printed(m.ms_r, msr)
        printed(m.se, se)
        assert m.df == 4
        printed(m.ci_low, lo)
        printed(m.ci_high, hi)


def test_single_analysis_option_gives_that_headline(vandyke):
    res = analyze_mrmc(vandyke, analysis="rrfc")
    assert res.analysis == "rrfc" and list(res.analyses) == ["rrfc"]
    printed(res.test.statistic, "8.70")
    printed(res.modalities["0"].fom.ci_low, "0.82809808")


def test_one_modality_matches_iowa_single_treatment(vandyke):
    """Part (c) of each Iowa analysis is the single-treatment analysis of that treatment alone."""
    res = analyze_mrmc(vandyke[vandyke["modality"] == "1"])
    assert res.test is None and res.differences == []
    m = res.analyses
    printed(m["rrrc"].modalities["1"].ci_low, "0.89413783")
    printed(m["rrrc"].modalities["1"].ci_high, "0.98753689")
    printed(m["frrc"].modalities["1"].ci_low, "0.90795637")
    printed(m["rrfc"].modalities["1"].ci_high, "0.98568536")


# ------------------------------------------------------------------ DBM (RJafrocBook, dataset02)
def test_dbm_rrrc_frrc_rrfc_match_rjafroc(vd_dbm):
    assert vd_dbm.method == "dbm"
    a = vd_dbm.analyses
    t = a["rrrc"].test
    printed(t.statistic, "4.4563187")
    printed(t.ddf, "15.259675")
    printed(t.p_value, "0.051665686")
    d = a["rrrc"].differences[0]
    printed(d.ci_low, "-0.087959499")
    printed(d.estimate, "-0.043800322")
    printed(d.ci_high, "0.00035885444")
    t = a["frrc"].test
    assert (t.ndf, t.ddf) == (1, 113)
    printed(t.statistic, "5.475953")  # = the OR chi-square when t = 2 (no truncation)
    printed(t.p_value, "0.021034969")
    d = a["frrc"].differences[0]
    printed(d.ci_low, "-0.080883031")
    printed(d.ci_high, "-0.0067176131")
    t = a["rrfc"].test
    printed(t.p_value, "0.041958752")
    d = a["rrfc"].differences[0]
    printed(d.ci_low, "-0.085020224")
    printed(d.ci_high, "-0.0025804202")
    # the DBM variance components are those Iowa prints
    dv = vd_dbm.dbm_variance_components
    printed(dv.var_c, "0.02724923")
    printed(dv.var_trc_error, "0.03997160")
    # DBM single-treatment RRRC intervals equal OR's (Hillis et al. 2005 equivalence)
    printed(a["rrrc"].modalities["0"].ci_low, "0.82522360")
    printed(a["rrrc"].modalities["1"].ci_high, "0.98753689")
    # OR components are reported with DBM output too
    printed(vd_dbm.variance_components.cov2, "0.00034407")


# ------------------------------------------------------------------ AI vs readers (StCadVsRad)
@pytest.fixture(scope="module")
def cad():
    return analyze_mrmc(load_mrmc_ratings(_need("cad_vs_radiologists.csv")), ai_reader="CAD")


def test_cad_vs_radiologists_matches_rjafroc_book(cad):
    """RJafrocBook "Standalone CAD vs radiologists", Tables 2-3, Wilcoxon rows.

    The book reports readers minus CAD; we report AI minus readers, so signs flip.
    """
    (ai,) = cad.ai_vs_readers
    assert ai.ai_reader == "CAD" and ai.modality == "standalone" and len(ai.readers) == 9
    printed(ai.ai_fom.estimate, "0.817")
    printed(ai.readers_fom.estimate, "0.849")
    rr, rf = ai.analyses.rrrc, ai.analyses.rrfc
    printed(-rr.estimate, "0.0317")
    printed(-rr.ci_high, "-0.031")
    printed(-rr.ci_low, "0.094")
    printed(rr.f_statistic, "0.99")
    printed(rr.df, "878")
    printed(rr.p_value, "0.3210")
    printed(-rf.ci_high, "0.009")
    printed(-rf.ci_low, "0.055")
    printed(rf.f_statistic, "10")
    assert rf.df == 8
    printed(rf.p_value, "0.012")
    vc = ai.variance_components
    printed(vc.ms_r, "0.000878")
    printed(vc.cov2, "0.000924")
    printed(vc.var_error, "0.0014")
    # the headline carries the AI comparison when there is one modality
    assert cad.test.p_value == rr.p_value
    assert cad.differences[0].kind == "ai_vs_readers"
    assert "CAD" not in cad.design.readers_in_modality_comparison


def test_franken_variance_components_match_iowa_as_quoted_by_rjafroc():
    """RJafroc (R/UtilORVarComponentsFactorial, source comment) quotes OR-DBM MRMC 2.51 on the
    Franken data: Var(T*R) = -0.00071276, computed without truncating Cov2 - Cov3 at 0
    (RJafroc itself truncates and gets -0.00068389146); we follow Iowa."""
    res = analyze_mrmc(load_mrmc_ratings(_need("franken.csv")))
    vc = res.variance_components
    printed(vc.var_tr, "-0.00071276")
    assert vc.cov2 < vc.cov3  # so the RRRC error term truncates, and says so
    assert any("Cov2 - Cov3" in w for w in res.warnings)
    # with Cov2 - Cov3 truncated at 0, the RRRC error term is MS(T*R) and ddf_H = (t-1)(r-1)
    assert res.test.error_term == pytest.approx(res.anova.ms_tr)
    assert res.test.ddf == pytest.approx(3)
