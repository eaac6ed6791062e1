"""The generator's within-patient correlation (``study synth --patient-correlation``), and the
done-when item of issue 13: on strongly clustered cohorts of the generator, the image-level
(independence) interval is too narrow and the patient-level one is not.

References: the spread of the estimates over simulated cohorts is the truth the standard errors
are checked against (Monte Carlo); the intra-class correlation is the one-way ANOVA estimator
(Shrout & Fleiss 1979, ICC(1)).
"""

import numpy as np
import pytest

from study.metrics.clustered import clustered_kappa, clustered_proportion
from study.metrics.intervals import binomial_ci, cohen_kappa
from study.synth.planning import correlate_within_patients, plan_cohort, sample_counts
from study.synth.readers import simulate_readings
from study.synth.vocabulary import LEVELS, grade_cases

READERS = [("r1", "x", 0.25, 1.0), ("r2", "x", 0.25, 1.0)]


def _icc1(values, groups):
    """One-way ANOVA ICC(1) with unequal group sizes (n0 of Shrout & Fleiss / Donner 1986)."""
    values, groups = np.asarray(values, float), np.asarray(groups)
    _, g = np.unique(groups, return_inverse=True)
    k = g.max() + 1
    n_i = np.bincount(g)
    means = np.bincount(g, weights=values) / n_i
    grand = values.mean()
    msb = (n_i * (means - grand) ** 2).sum() / (k - 1)
    msw = ((values - means[g]) ** 2).sum() / (len(values) - k)
    n0 = (len(values) - (n_i ** 2).sum() / len(values)) / (k - 1)
    return (msb - msw) / (msb + (n0 - 1) * msw)


def test_correlation_zero_changes_nothing():
    _, rows = plan_cohort(200, 3, 0.1)
    _, same = plan_cohort(200, 3, 0.1)
    correlate_within_patients(same, rho=0.0, seed=3)
    assert rows == same


@pytest.mark.parametrize("rho", [0.3, 0.7])
def test_difficulty_and_severity_are_correlated_within_patients(rho):
    _, rows = plan_cohort(6000, 1, 0.0)
    correlate_within_patients(rows, rho=rho, seed=1)
    patient = [r["patient"] for r in rows]
    assert _icc1([r["difficulty"] for r in rows], patient) == pytest.approx(rho, abs=0.06)
    grade = [LEVELS.index(r["target_grade"]) for r in rows]
    icc_grade = _icc1(grade, patient)
    assert icc_grade == pytest.approx(rho ** 2, abs=0.08)  # two images share the grade with probability rho^2
    _, independent = plan_cohort(6000, 1, 0.0)
    assert abs(_icc1([LEVELS.index(r["target_grade"]) for r in independent], patient)) < 0.05


def _one_cohort(seed, n, rho):
    _, rows = plan_cohort(n, seed, 0.0)
    correlate_within_patients(rows, rho=rho, seed=seed)
    rng = np.random.default_rng([seed, 9])
    ids = [f"C{r['index'] + 1:05d}" for r in rows]
    counts = {cid: sample_counts(rng, r["target_grade"]) for cid, r in zip(ids, rows)}
    grades = grade_cases(counts)
    difficulty = {cid: r["difficulty"] for cid, r in zip(ids, rows)}
    reads = [x for x in simulate_readings(grades, counts, seed=seed, readers=READERS, core_fraction=1.0,
                                          difficulty=difficulty) if x["reader_id"] == "r1"]
    patient_of = dict(zip(ids, (r["patient"] for r in rows)))
    p = np.array([patient_of[x["case_id"]] for x in reads])
    ref = np.array([LEVELS.index(grades[x["case_id"]]) for x in reads])
    rat = np.array([LEVELS.index(x["grade"]) for x in reads])
    return p, ref, rat


@pytest.mark.slow
def test_image_level_interval_too_narrow_patient_level_not_on_strongly_clustered_cohorts():
    """Issue 13 done-when: the generator at patient_correlation 0.9, 250 cohorts of 300 images."""
    acc, kq = [], []
    for seed in range(250):
        p, ref, rat = _one_cohort(seed, 300, 0.9)
        ok = ref == rat
        acc.append((clustered_proportion(np.bincount(p, weights=ok), np.bincount(p)),
                    binomial_ci(int(ok.sum()), len(ok))))
        tabs = np.zeros((p.max() + 1, 4, 4))
        np.add.at(tabs, (p, ref, rat), 1)
        kq.append((clustered_kappa(tabs, weights="quadratic"), cohen_kappa(tabs.sum(axis=0), weights="quadratic")))
    for name, pairs in (("accuracy", acc), ("quadratic kappa", kq)):
        est = np.array([c.estimate for c, _ in pairs])
        spread = est.std(ddof=1)  # the true standard error, by simulation
        if name == "accuracy":
            se_image = np.mean([np.sqrt(b.estimate * (1 - b.estimate) / b.n) for _, b in pairs])
        else:
            se_image = np.mean([b.se for _, b in pairs])
        se_patient = np.mean([c.se for c, _ in pairs])
        print(f"{name}: spread {spread:.4f}, image-level SE {se_image:.4f}, patient-level SE {se_patient:.4f}")
        truth = est.mean()
        cover_image = np.mean([b.ci_low <= truth <= b.ci_high for _, b in pairs])
        cover_patient = np.mean([c.ci_low <= truth <= c.ci_high for c, _ in pairs])
        print(f"{name}: coverage image-level {cover_image:.3f}, patient-level {cover_patient:.3f}")
        assert spread / se_image > 1.1, name  # independence understates the spread
        assert abs(se_patient / spread - 1) < abs(se_image / spread - 1), name  # the clustered SE is nearer
        assert cover_image < cover_patient, name
    # accuracy (the key result): patient-level SE within 10% of the spread, coverage in 93-97%
    est = np.array([c.estimate for c, _ in acc])
    assert np.mean([c.se for c, _ in acc]) / est.std(ddof=1) == pytest.approx(1.0, abs=0.1)
    assert 0.93 <= np.mean([c.ci_low <= est.mean() <= c.ci_high for c, _ in acc]) <= 0.97
    assert np.mean([b.ci_low <= est.mean() <= b.ci_high for _, b in acc]) < 0.93


def test_cli_flag_reaches_the_cohort_and_is_checked(tmp_path, run_cli):
    import csv

    rc, _, err = run_cli("synth", "--cases", "16", "--out", tmp_path / "c", "--seed", "4", "--image-size", "128",
                         "--exclusion-rate", "0", "--patient-correlation", "0.95", "--workers", "1")
    assert rc == 0, err
    man = list(csv.DictReader((tmp_path / "c" / "manifest.csv").read_text().splitlines()))
    ref = {r["case_id"]: r["grade"] for r in csv.DictReader((tmp_path / "c" / "reference.csv").read_text().splitlines())}
    by_patient: dict[str, set] = {}
    for m in man:
        by_patient.setdefault(m["patient_id"], set()).add(ref[m["case_id"]])
    sizes = {p: sum(m["patient_id"] == p for m in man) for p in by_patient}
    multi = [g for p, g in by_patient.items() if sizes[p] >= 2]
    # at 0.95 nearly every patient's images share the target grade (and the counts drawn grade to it)
    assert len(multi) >= 2 and sum(len(g) == 1 for g in multi) >= 0.75 * len(multi)
    rc, _, err = run_cli("synth", "--cases", "4", "--out", tmp_path / "d", "--patient-correlation", "1")
    assert rc == 2 and "--patient-correlation" in err
