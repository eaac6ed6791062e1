"""Agreement statistics checked against peer implementations.

Peers: scikit-learn (confusion_matrix, cohen_kappa_score, precision_recall_fscore_support,
f1_score), statsmodels (cohens_kappa, fleiss_kappa, mcnemar, proportion_confint), the
``krippendorff`` package (Castro, alpha with ordinal metric), and hand-checked small tables.
"""

import json

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (cohen_kappa_score, confusion_matrix, f1_score,
                             precision_recall_fscore_support)
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from study.errors import StudyError
from study.io import dumps_json
from study.metrics.agreement import evaluate_agreement, krippendorff_ordinal_from_coincidences, table_stats
from study.options import AgreementOptions, StatisticsOptions

LEVELS = ["I", "II", "III", "IV"]


def options(*, subgroups=(), **statistics) -> AgreementOptions:
    return AgreementOptions(levels=tuple(LEVELS), subgroups=tuple(subgroups), statistics=StatisticsOptions(**statistics))


def make_study(n_cases=240, *, seed=0, crossed=1.0, miss=0.0, imgs_per_patient=2, levels=LEVELS,
               ref_p=(0.4, 0.3, 0.2, 0.1), unused=None):
    rng = np.random.default_rng(seed)
    k = len(levels)
    ref = rng.choice(k, size=n_cases, p=ref_p)
    if unused is not None:
        ref[ref == unused] = 0
    cases = [f"c{i:04d}" for i in range(n_cases)]
    raters = [("ai", "model", None, 0.8), ("ai2", "model", None, 0.7),
              ("j1", "reader", "junior", 0.55), ("j2", "reader", "junior", 0.6),
              ("i1", "reader", "intermediate", 0.7), ("i2", "reader", "intermediate", 0.65),
              ("i3", "reader", "intermediate", 0.75)]
    rows = []
    for rid, kind, grp, acc in raters:
        g = np.where(rng.random(n_cases) < acc, ref, np.clip(ref + rng.choice([-2, -1, 1], size=n_cases), 0, k - 1))
        if unused is not None:
            g[g == unused] = 0
        sel = rng.random(n_cases) < (crossed if kind == "reader" else 1.0)
        for c, gg, s in zip(cases, g, sel):
            if s:
                rows.append((rid, c, levels[gg] if rng.random() >= miss else None, kind, grp))
    ratings = pd.DataFrame(rows, columns=["rater_id", "case_id", "grade", "rater_kind", "reader_group"])
    reference = pd.DataFrame({"case_id": cases, "grade": [levels[i] for i in ref]})
    patient_of = {c: f"p{i // imgs_per_patient}" for i, c in enumerate(cases)}
    cov = pd.DataFrame({"case_id": cases, "sex": rng.choice(["F", "M"], size=n_cases),
                        "fitzpatrick": rng.choice([1.0, 2.0, 3.0, np.nan], size=n_cases)})
    return reference, ratings, patient_of, cov


@pytest.fixture(scope="module")
def crossed_study():
    reference, ratings, patient_of, cov = make_study(crossed=0.6, miss=0.05, seed=3)
    out = evaluate_agreement(reference, ratings, options=options(subgroups=["sex", "fitzpatrick"], n_bootstrap=300,
                                                                 seed=11), patient_of=patient_of, covariates=cov)
    return reference, ratings, patient_of, cov, out


def _pairs(reference, ratings, rid):
    r = ratings[(ratings.rater_id == rid) & ratings.grade.notna()].merge(reference, on="case_id", suffixes=("", "_ref"))
    return r["grade_ref"].to_numpy(), r["grade"].to_numpy()


def test_per_rater_against_sklearn_and_statsmodels(crossed_study):
    reference, ratings, _, _, out = crossed_study
    for rid, res in out.raters.items():
        y_ref, y = _pairs(reference, ratings, rid)
        assert res.n_cases == len(y)
        assert res.n_missing == int(ratings[(ratings.rater_id == rid)].grade.isna().sum())
        cm = confusion_matrix(y_ref, y, labels=LEVELS)
        assert res.confusion_matrix == cm.tolist()
        acc = res.accuracy
        k = int(np.trace(cm))
        lo, hi = proportion_confint(k, len(y), method="wilson")
        assert acc.estimate == pytest.approx(k / len(y)) and acc.ci_low == pytest.approx(lo)
        assert acc.method == "Wilson score, 95%"
        assert acc.bootstrap.method == "percentile bootstrap resampling patients, 300 replicates, 95%"
        for key, w in (("kappa", None), ("kappa_linear", "linear"), ("kappa_quadratic", "quadratic")):
            e = getattr(res, key)
            assert e.estimate == pytest.approx(cohen_kappa_score(y_ref, y, labels=LEVELS, weights=w))
            assert e.se > 0 and e.ci_low < e.estimate < e.ci_high
            b = e.bootstrap
            assert b.ci_low < e.estimate < b.ci_high
        p, r, f, _ = precision_recall_fscore_support(y_ref, y, labels=LEVELS, zero_division=np.nan)
        for j, lv in enumerate(LEVELS):
            g = res.per_grade[lv]
            assert g.sensitivity.estimate == pytest.approx(r[j])
            assert g.ppv.estimate == pytest.approx(p[j])
            assert g.f1.estimate == pytest.approx(f[j])
            neg = y_ref != lv
            assert g.specificity.estimate == pytest.approx(np.mean(y[neg] != lv))
            assert g.npv.estimate == pytest.approx(np.mean(y_ref[y != lv] != lv))
        used = [lv for lv in LEVELS if (y_ref == lv).any() or (y == lv).any()]
        assert res.macro_f1.estimate == pytest.approx(f1_score(y_ref, y, labels=used, average="macro"))
        # error directions, counted by hand
        iref = np.array([LEVELS.index(v) for v in y_ref])
        iy = np.array([LEVELS.index(v) for v in y])
        err = iref != iy
        e = res.errors
        assert e.n_errors == int(err.sum())
        assert e.downgrade.estimate == pytest.approx(np.mean(iy[err] < iref[err]))
        assert e.upgrade.estimate == pytest.approx(np.mean(iy[err] > iref[err]))
        assert e.cross_grade.estimate == pytest.approx(np.mean(np.abs(iy[err] - iref[err]) >= 2))


def test_groups_pooled_and_spread(crossed_study):
    _, _, _, _, out = crossed_study
    g = out.groups["intermediate"]
    members = ["i1", "i2", "i3"]
    assert g.readers == members
    pooled = np.sum([out.raters[r].confusion_matrix for r in members], axis=0)
    assert g.confusion_matrix == pooled.tolist()
    assert g.n_readings == int(pooled.sum())
    assert g.accuracy.estimate == pytest.approx(np.trace(pooled) / pooled.sum())
    assert g.kappa_quadratic.method.startswith("percentile bootstrap resampling patients")
    accs = [out.raters[r].accuracy.estimate for r in members]
    assert g.spread.accuracy.min == min(accs) and g.spread.accuracy.max == max(accs)
    assert g.spread.accuracy.median == pytest.approx(np.median(accs))
    assert set(out.groups) == {"junior", "intermediate"}


def test_inter_reader_against_peers(crossed_study):
    reference, ratings, _, _, out = crossed_study
    ir = out.inter_reader
    readers = ir.readers
    assert readers == ["i1", "i2", "i3", "j1", "j2"]
    wide = ratings[ratings.rater_kind == "reader"].pivot(index="case_id", columns="rater_id", values="grade")
    wide = wide.reindex(columns=readers)
    # pairwise kappa on shared cases = sklearn on the shared cases
    for pair in ir.pairwise.pairs:
        both = wide[[pair.reader_a, pair.reader_b]].dropna()
        assert pair.n_cases == len(both)
        assert pair.kappa.estimate == pytest.approx(
            cohen_kappa_score(both.iloc[:, 0], both.iloc[:, 1], labels=LEVELS))
        i, j = readers.index(pair.reader_a), readers.index(pair.reader_b)
        assert ir.pairwise.n_shared[i][j] == ir.pairwise.n_shared[j][i] == len(both)
        assert ir.pairwise.kappa_quadratic[j][i] == pair.kappa_quadratic
    # Fleiss' kappa = statsmodels on the chosen readers and cases
    fl = ir.fleiss
    sub = wide.loc[fl.case_ids, fl.readers]
    assert not sub.isna().any().any() and len(fl.readers) >= 2
    codes = sub.apply(lambda c: c.map(LEVELS.index)).to_numpy()
    counts, _ = aggregate_raters(codes, n_cat=len(LEVELS))
    assert fl.kappa.estimate == pytest.approx(fleiss_kappa(counts, method="fleiss"))
    assert fl.kappa.ci_low < fl.kappa.estimate < fl.kappa.ci_high
    # Krippendorff's ordinal alpha = the krippendorff package on the partially crossed data
    rel = wide.apply(lambda c: c.map(lambda v: np.nan if pd.isna(v) else LEVELS.index(v))).to_numpy(float).T
    ka = krippendorff.alpha(reliability_data=rel, level_of_measurement="ordinal", value_domain=[0, 1, 2, 3])
    assert ir.krippendorff_alpha_ordinal.alpha.estimate == pytest.approx(ka)


def test_krippendorff_with_an_unused_level_equals_package():
    rng = np.random.default_rng(5)
    rel = rng.choice([0, 2, 3], size=(4, 60)).astype(float)
    rel[rng.random(rel.shape) < 0.3] = np.nan
    o = np.zeros((4, 4))
    for u in rel.T:
        v = u[~np.isnan(u)].astype(int)
        if len(v) < 2:
            continue
        nu = np.bincount(v, minlength=4).astype(float)
        o += (np.outer(nu, nu) - np.diag(nu)) / (len(v) - 1)
    ref = krippendorff.alpha(reliability_data=rel, level_of_measurement="ordinal", value_domain=[0, 1, 2, 3])
    assert krippendorff_ordinal_from_coincidences(o) == pytest.approx(ref)


def test_comparisons_model_vs_reader_and_group(crossed_study):
    reference, ratings, _, _, out = crossed_study
    ref = reference.set_index("case_id")["grade"]
    comp = [c for c in out.comparisons if c.model == "ai" and c.versus == "j1"][0]
    m = ratings[(ratings.rater_id == "ai")].set_index("case_id")["grade"]
    r = ratings[(ratings.rater_id == "j1")].set_index("case_id")["grade"]
    shared = m.dropna().index.intersection(r.dropna().index)
    assert comp.n_cases == len(shared)
    mok = (m[shared] == ref[shared]).to_numpy()
    rok = (r[shared] == ref[shared]).to_numpy()
    d = comp.accuracy_difference
    assert d.estimate == pytest.approx(mok.mean() - rok.mean())
    assert d.ci_low < d.estimate < d.ci_high
    q = cohen_kappa_score(ref[shared], m[shared], labels=LEVELS, weights="quadratic") - \
        cohen_kappa_score(ref[shared], r[shared], labels=LEVELS, weights="quadratic")
    assert comp.kappa_quadratic_difference.estimate == pytest.approx(q)
    table = [[int((mok & rok).sum()), int((mok & ~rok).sum())], [int((~mok & rok).sum()), int((~mok & ~rok).sum())]]
    assert comp.mcnemar.p_value == pytest.approx(mcnemar(table, exact=True).pvalue)
    assert comp.mcnemar.model_only_correct == table[0][1]
    grp = [c for c in out.comparisons if c.model == "ai" and c.versus == "junior"][0]
    singles = [c for c in out.comparisons if c.model == "ai" and c.versus in ("j1", "j2")]
    assert grp.versus_kind == "group" and grp.n_cases == sum(c.n_cases for c in singles)
    assert grp.accuracy_difference.estimate == pytest.approx(
        np.mean([c.accuracy_difference.estimate for c in singles]))
    assert grp.mcnemar.p_value is None
    assert len(out.comparisons) == 2 * (5 + 2)


def test_subgroups(crossed_study):
    reference, ratings, _, cov, out = crossed_study
    sg = out.subgroups
    assert set(sg) == {"sex", "fitzpatrick"}
    assert set(sg["fitzpatrick"]) == {"1", "2", "3", "missing"}
    assert sum(out.subgroups_n_cases["sex"].values()) == len(reference)
    f_cases = set(cov.loc[cov.sex == "F", "case_id"])
    y_ref, y = _pairs(reference[reference.case_id.isin(f_cases)], ratings, "ai")
    res = sg["sex"]["F"]["ai"]
    assert res.n_cases == len(y)
    assert res.kappa_quadratic.estimate == pytest.approx(
        cohen_kappa_score(y_ref, y, labels=LEVELS, weights="quadratic"))
    assert res.accuracy.ci_low is not None


def test_json_roundtrip_and_determinism(crossed_study):
    reference, ratings, patient_of, cov, out = crossed_study
    text = dumps_json(out)
    assert json.loads(text)["levels"] == LEVELS
    again = evaluate_agreement(reference, ratings, options=options(subgroups=["sex", "fitzpatrick"], n_bootstrap=300,
                                                                   seed=11), patient_of=patient_of, covariates=cov)
    assert dumps_json(again) == text


def test_empty_category_and_zero_denominators():
    reference, ratings, patient_of, _ = make_study(120, seed=1, unused=2, ref_p=(0.5, 0.3, 0.1, 0.1))
    out = evaluate_agreement(reference, ratings, options=options(n_bootstrap=100), patient_of=patient_of)
    res = out.raters["ai"]
    cm = np.array(res.confusion_matrix)
    assert cm.shape == (4, 4) and cm[2].sum() == 0 and cm[:, 2].sum() == 0
    sens = res.per_grade["III"].sensitivity
    assert sens.estimate is None and "no reference case of grade III" in sens.reason
    assert res.per_grade["III"].ppv.estimate is None
    assert res.per_grade["III"].f1.estimate is None
    assert res.per_grade["III"].specificity.estimate == 1.0
    # the empty middle level still counts in the weighted distances
    y_ref, y = _pairs(reference, ratings, "ai")
    assert res.kappa_linear.estimate == pytest.approx(cohen_kappa_score(y_ref, y, labels=LEVELS, weights="linear"))
    json.loads(dumps_json(out))


def test_grade_outside_levels_is_an_error_listing_all():
    reference, ratings, patient_of, _ = make_study(40, seed=2)
    reference.loc[3, "grade"] = "V"
    ratings.loc[5, "grade"] = "grade 2"
    ratings.loc[7, "rater_kind"] = "robot"
    with pytest.raises(StudyError) as e:
        evaluate_agreement(reference, ratings, options=options(n_bootstrap=100), patient_of=patient_of)
    msg = str(e.value)
    assert "'V'" in msg and "'grade 2'" in msg and "robot" in msg


def test_bad_designs_are_errors():
    reference, ratings, patient_of, _ = make_study(40, seed=2)
    dup = pd.concat([ratings, ratings.iloc[[0]]], ignore_index=True)
    with pytest.raises(StudyError, match="more than once"):
        evaluate_agreement(reference, dup, options=options(n_bootstrap=100))
    extra = pd.concat([ratings, pd.DataFrame([{"rater_id": "ai", "case_id": "nope", "grade": "I",
                                              "rater_kind": "model", "reader_group": None}])], ignore_index=True)
    with pytest.raises(StudyError, match="not in the reference"):
        evaluate_agreement(reference, extra, options=options(n_bootstrap=100))
    po = dict(patient_of)
    po.pop("c0001")
    with pytest.raises(StudyError, match="no patient_id"):
        evaluate_agreement(reference, ratings, options=options(n_bootstrap=100), patient_of=po)


def test_patient_bootstrap_keeps_a_patients_images_together():
    # every patient has two identical images: each replicate's table has even cells
    reference, ratings, patient_of, _ = make_study(60, seed=4)
    ref2 = pd.concat([reference, reference.assign(case_id=reference.case_id + "b")], ignore_index=True)
    rat2 = pd.concat([ratings, ratings.assign(case_id=ratings.case_id + "b")], ignore_index=True)
    po = {**{c: c for c in reference.case_id}, **{c + "b": c for c in reference.case_id}}
    from study.metrics import agreement as ag

    data = ag.data.prepare(ref2, rat2, levels=LEVELS, patient_of=po)
    design = ag.design.BootstrapDesign(data)
    r = data.raters["ai"]
    design.block("x", r.cases, data.ref[r.cases], r.codes)
    boot = design.run(n_replicates=50, seed=0)
    assert np.all(boot.boot_tables % 2 == 0)
    assert data.n_patients == 60


def test_table_stats_vectorised_equals_per_table():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 9, size=(5, 3, 4, 4))
    s = table_stats(t)
    one = table_stats(t[2, 1])
    for k, v in one.items():
        np.testing.assert_allclose(s[k][2, 1], v)


def test_patient_bootstrap_equals_explicit_resampling_loop():
    # peer: the textbook loop (draw patients with replacement, stack their cases, sklearn
    # confusion_matrix) with the same random draws gives the same replicate tables
    reference, ratings, patient_of, _ = make_study(90, seed=8, imgs_per_patient=3)
    from study.metrics import agreement as ag

    data = ag.data.prepare(reference, ratings, levels=LEVELS, patient_of=patient_of)
    design = ag.design.BootstrapDesign(data)
    r = data.raters["i1"]
    design.block("x", r.cases, data.ref[r.cases], r.codes)
    boot = design.run(n_replicates=40, seed=123)
    draws = np.random.default_rng(123).integers(0, data.n_patients, size=(40, data.n_patients))
    cases_of = [np.flatnonzero(data.patient == p) for p in range(data.n_patients)]
    rated = np.full(len(data.case_ids), -1)
    rated[r.cases] = r.codes
    for b in range(40):
        idx = np.concatenate([cases_of[p] for p in draws[b]])
        idx = idx[rated[idx] >= 0]
        cm = confusion_matrix(data.ref[idx], rated[idx], labels=range(4))
        np.testing.assert_array_equal(boot.boot_tables[b, 0], cm)


def test_clopper_pearson_and_confidence_level_are_named():
    reference, ratings, patient_of, _ = make_study(60, seed=9)
    out = evaluate_agreement(reference, ratings, options=options(n_bootstrap=100, confidence=0.9,
                                                                 binomial_interval="clopper_pearson"),
                             patient_of=patient_of)
    res = out.raters["ai"]
    assert res.accuracy.method == "Clopper-Pearson exact, 90%"
    k = res.accuracy.k
    lo, hi = proportion_confint(k, res.n_cases, alpha=0.1, method="beta")
    assert (res.accuracy.ci_low, res.accuracy.ci_high) == (pytest.approx(lo), pytest.approx(hi))
    assert res.kappa.method == "Wald, ASE of Fleiss, Cohen & Everitt (1969), 90%"
    assert res.kappa.bootstrap.method == "percentile bootstrap resampling patients, 100 replicates, 90%"
    assert res.per_grade["I"].sensitivity.method == "Clopper-Pearson exact, 90%"
