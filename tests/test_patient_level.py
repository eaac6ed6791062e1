"""Issue 13: patient-level intervals of detection and counting, bounded MRMC / AP intervals, and the
image-level interval shown too narrow on strongly clustered data.

References used here:
- a brute-force reimplementation in this file of the patient bootstrap-t (Efron & Tibshirani
  1993, ch. 12): a loop over replicates recomputing each statistic from the images of the drawn
  patients, with an explicit delete-one-patient jackknife per replicate, for the intervals of
  MAE, RMSE, CCC and the Bland-Altman limits (study.metrics.clustered_counting), with Lin's CCC
  and the Bland-Altman points of study.metrics.counting (pinned to DescTools / the 1986 paper
  in tests/test_counting.py);
- statsmodels' cluster-robust OLS (CR1) standard error of a mean, which the ratio estimator's
  variance of a lesion-level proportion equals (tests/test_clustered.py), for the clustered
  lesion recall and precision of the detection block;
- simulated coverage for the done-when item: on data with strong clustering the Wilson
  (independence) interval covers the truth far less than 95% and the clustered one does not.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.stats import norm

from study.errors import StudyError
from study.metrics.clustered import clustered_proportion
from study.metrics.bootstrap import resampling_weights
from study.metrics.clustered_counting import patient_bootstrap_counting
from study.metrics.counting import bland_altman, evaluate_counting, lin_ccc
from study.metrics.detection import evaluate_detection
from study.metrics.intervals import binomial_ci, bounded_unit_interval
from study.metrics.mrmc.inference import bounded_estimate
from study.options import CountingOptions, StatisticsOptions
from study.results.mrmc import TEstimate


def _clustered_counts(seed=1, n_patients=60):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 5, n_patients)
    pat = np.repeat(np.arange(n_patients), sizes)
    u = rng.normal(size=n_patients)[pat]
    x = np.round(np.exp(2 + 0.5 * u + 0.3 * rng.normal(size=pat.size)))
    y = np.maximum(np.round(x * 1.1 + 3 * u + 2 * rng.normal(size=pat.size)), 0)
    return x, y, pat


def test_counting_bootstrap_points_equal_the_image_level_formulas():
    x, y, pat = _clustered_counts()
    r = patient_bootstrap_counting(x, y, pat, n_bootstrap=200, seed=1)
    ba = bland_altman(x, y)
    assert r["ccc"].estimate == pytest.approx(lin_ccc(x, y).estimate, rel=1e-12)
    assert r["loa_low"].estimate == pytest.approx(ba.loa_low.estimate, rel=1e-12)
    assert r["loa_high"].estimate == pytest.approx(ba.loa_high.estimate, rel=1e-12)
    assert r["mae"].estimate == pytest.approx(np.abs(y - x).mean(), rel=1e-12)
    assert r["rmse"].estimate == pytest.approx(np.sqrt(((y - x) ** 2).mean()), rel=1e-12)
    assert all(e.n == len(x) and e.n_clusters == 60 and "patient bootstrap-t" in e.method
               and "resampling patients" in e.method
               for e in r.values())


def _direct_statistic(name, x, y):
    """The statistic from the image-level counts (not from sums)."""
    d = y - x
    if name == "mae":
        return np.abs(d).mean()
    if name == "rmse":
        return np.sqrt((d ** 2).mean())
    if name == "ccc":
        return 2 * np.mean((x - x.mean()) * (y - y.mean())) / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    return d.mean() + (1.96 if name == "loa_high" else -1.96) * d.std(ddof=1)


_SCALE = {"mae": (np.log, np.exp), "rmse": (np.log, np.exp), "ccc": (np.arctanh, np.tanh),
          "loa_low": (lambda v: v, lambda v: v), "loa_high": (lambda v: v, lambda v: v)}


def _brute_bootstrap_t(x, y, pat, name, *, n_bootstrap, seed, confidence=0.95):
    """Studentised patient bootstrap by brute force (Efron & Tibshirani 1993, ch. 12): for every
    replicate (the draw counts of resampling_weights from default_rng(seed)) the statistic on the
    images of the drawn patients, and the jackknife SE deleting each of the P drawn patients in turn."""
    patients = np.unique(pat)
    images = [np.flatnonzero(pat == p) for p in patients]
    g, g_inv = _SCALE[name]

    def phi(draws):
        idx = np.concatenate([images[i] for i in draws])
        return g(_direct_statistic(name, x[idx], y[idx]))

    def jackknife_se(draws):
        vals = np.array([phi(np.delete(draws, j)) for j in range(len(draws))])
        m = len(draws)
        return np.sqrt((m - 1) / m * ((vals - vals.mean()) ** 2).sum())

    everyone = np.arange(len(patients))
    phi_hat, se_hat = phi(everyone), jackknife_se(everyone)
    weights = np.vstack(list(resampling_weights(len(patients), n_replicates=n_bootstrap,
                                                rng=np.random.default_rng(seed))))
    t = []
    for w in weights:
        draws = np.repeat(everyone, w.astype(int))
        t.append((phi(draws) - phi_hat) / jackknife_se(draws))
    a = (1 - confidence) / 2
    t_lo, t_hi = np.quantile(np.array(t), [a, 1 - a])
    return g_inv(phi_hat - t_hi * se_hat), g_inv(phi_hat - t_lo * se_hat), se_hat


@pytest.mark.parametrize("name", ["mae", "rmse", "ccc", "loa_low", "loa_high"])
def test_counting_bootstrap_t_equals_a_brute_force_loop_over_replicates(name):
    x, y, pat = _clustered_counts(seed=4, n_patients=12)
    lo, hi, se_hat = _brute_bootstrap_t(x, y, pat, name, n_bootstrap=300, seed=5)
    got = patient_bootstrap_counting(x, y, pat, n_bootstrap=300, seed=5, statistics=(name,))[name]
    assert got.ci_low < got.estimate < got.ci_high
    assert got.ci_low == pytest.approx(lo, abs=1e-10, rel=1e-10)
    assert got.ci_high == pytest.approx(hi, abs=1e-10, rel=1e-10)
    assert "patient bootstrap-t" in got.method and "300 replicates, 95%" in got.method
    # the jackknife SE on the transformed scale (log, Fisher z) is recorded; raw-scale limits have se only
    if name.startswith("loa"):
        assert got.se_z is None and got.se == pytest.approx(se_hat, rel=1e-10)
    else:
        assert got.se_z == pytest.approx(se_hat, rel=1e-10)


def test_counting_bootstrap_t_limits_respect_the_bounds():
    """MAE and RMSE limits positive (log scale), CCC limits inside (-1, 1) (Fisher z), also when the
    estimate is close to its bound: near-perfect agreement (6 images off by one) on 10 patients."""
    given = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        pat = np.repeat(np.arange(10), rng.integers(1, 4, 10))
        x = rng.poisson(20, pat.size).astype(float)
        y = x.copy()
        y[rng.choice(pat.size, 6, replace=False)] += rng.choice([-1.0, 1.0], 6)
        r = patient_bootstrap_counting(x, y, pat, n_bootstrap=400, seed=seed)
        for k in ("mae", "rmse"):
            e = r[k]
            assert e.ci_low is None or 0 < e.ci_low <= e.estimate <= e.ci_high, (k, e)
        e = r["ccc"]
        assert e.ci_low is None or -1 < e.ci_low <= e.estimate <= e.ci_high < 1, e
        assert (e.ci_low is None) == (e.reason is not None)
        given += e.ci_low is not None
    assert given >= 4


def test_counting_bootstrap_t_not_estimable_cases():
    x = np.array([3.0, 5.0, 8.0, 2.0, 9.0])
    y = np.array([4.0, 5.0, 6.0, 2.0, 12.0])
    one = patient_bootstrap_counting(x, y, [7, 7, 7, 7, 7], n_bootstrap=100, seed=1)
    assert all(e.ci_low is None and "fewer than two patients" in e.reason and e.n_clusters == 1
               for e in one.values())
    assert one["mae"].estimate == pytest.approx(1.2)
    # perfect agreement: MAE and RMSE 0, CCC 1 sit on the bound of their scale; the limits' SE is 0
    same = patient_bootstrap_counting(x, x, [0, 0, 1, 1, 2], n_bootstrap=100, seed=1)
    assert same["mae"].estimate == 0 and same["mae"].ci_low is None and "bound" in same["mae"].reason
    assert same["ccc"].estimate == 1 and same["ccc"].ci_high is None and "Fisher z" in same["ccc"].reason
    assert same["loa_high"].ci_low is None and "SE" in same["loa_high"].reason
    # two patients: half of the replicates draw one patient twice (jackknife SE 0)
    two = patient_bootstrap_counting(x[:4], y[:4] + [0, 3, 1, 0], [0, 0, 1, 1], n_bootstrap=200, seed=1)
    assert all(e.ci_low is None and "studentised" in e.reason for e in two.values())
    # no spread at all: CCC undefined
    flat = patient_bootstrap_counting(np.full(4, 2.0), np.full(4, 2.0), [0, 1, 2, 3], n_bootstrap=50, seed=1)
    assert flat["ccc"].estimate is None and "undefined" in flat["ccc"].reason
    with pytest.raises(ValueError, match="unknown counting statistics"):
        patient_bootstrap_counting(x, y, [0, 0, 1, 1, 2], n_bootstrap=10, seed=1, statistics=("bias",))


def test_counting_uses_patient_bootstrap_when_the_unit_is_the_patient():
    import pandas as pd

    x, y, pat = _clustered_counts(seed=2, n_patients=40)
    cases = [f"c{i}" for i in range(len(x))]
    true = pd.DataFrame({"case_id": cases, "count_papule": x})
    dets = pd.DataFrame({"case_id": np.repeat(cases, y.astype(int)), "class": "papule", "score": 0.9})
    patient_of = {c: f"p{p}" for c, p in zip(cases, pat)}

    def run(unit):
        opts = CountingOptions(classes=("papule",), thresholds=(0.5,),
                               statistics=StatisticsOptions(n_bootstrap=500, unit=unit))
        return evaluate_counting(true, dets, options=opts, patient_of=patient_of).thresholds["0.5"]

    by_patient, by_image = run("patient"), run("image")
    assert by_patient.overall.ccc.estimate == pytest.approx(by_image.overall.ccc.estimate)
    assert "patient bootstrap-t" in by_patient.overall.ccc.method
    assert "Lin (1989)" in by_image.overall.ccc.method
    assert "bootstrap-t" in by_patient.bland_altman.loa_low.method and by_patient.bland_altman.loa_high.n_clusters == 40
    assert "Bland-Altman (1986)" in by_image.bland_altman.loa_low.method
    # with shared patient effects the patient-level intervals are wider
    for a, b in ((by_patient.overall.ccc, by_image.overall.ccc),
                 (by_patient.bland_altman.loa_high, by_image.bland_altman.loa_high)):
        assert a.ci_high - a.ci_low > b.ci_high - b.ci_low


def _detection_study(seed, n_patients, images_per_patient=3, rho=0.9):
    """COCO ground truth and detections: per image 4 lesions; a patient's images share how easily the
    model finds them (detected with probability depending on a shared patient draw)."""
    rng = np.random.default_rng(seed)
    images, anns, dets, patient_of = [], [], [], {}
    shared = rng.random(n_patients)
    img = 0
    for p in range(n_patients):
        for _ in range(images_per_patient):
            img += 1
            images.append({"id": img, "width": 200, "height": 200, "file_name": f"{img}.jpg"})
            patient_of[img] = f"p{p}"
            q = shared[p] if rng.random() < rho else rng.random()
            for k in range(4):
                box = [10 + 40 * k, 10, 20, 20]
                anns.append({"id": len(anns) + 1, "image_id": img, "category_id": 1, "bbox": box, "area": 400,
                             "iscrowd": 0})
                if rng.random() < q:
                    dets.append({"image_id": img, "category_id": 1, "bbox": box, "score": 0.9})
            dets.append({"image_id": img, "category_id": 1, "bbox": [150, 150, 20, 20], "score": 0.8})
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "papule"}]}
    return gt, dets, patient_of


def test_detection_recall_and_precision_are_clustered_when_the_unit_is_the_patient():
    gt, dets, patient_of = _detection_study(3, 30)
    res = evaluate_detection(gt, dets, patient_of=patient_of, n_bootstrap=0, unit="patient")
    img = evaluate_detection(gt, dets, patient_of=patient_of, n_bootstrap=0, unit="image")
    c, ci = res.classes["papule"], img.classes["papule"]
    # recall: detected lesions per patient over lesions per patient (ratio estimator); its SE is the
    # cluster-robust (CR1) SE of the mean of the per-lesion indicators, as statsmodels computes it
    found = np.zeros(30)
    lesions = np.zeros(30)
    boxes = {(d["image_id"], tuple(d["bbox"])) for d in dets}
    y, groups = [], []
    for a in gt["annotations"]:
        p = int(patient_of[a["image_id"]][1:])
        hit = (a["image_id"], tuple(a["bbox"])) in boxes
        found[p] += hit
        lesions[p] += 1
        y.append(float(hit))
        groups.append(p)
    expected = clustered_proportion(found, lesions)
    assert c.recall.estimate == pytest.approx(expected.estimate) and c.recall.ci_low == pytest.approx(expected.ci_low)
    fit = sm.OLS(np.array(y), np.ones((len(y), 1))).fit(cov_type="cluster", cov_kwds={"groups": np.array(groups)})
    assert c.recall.se == pytest.approx(float(fit.bse[0]), rel=1e-9)
    assert c.recall.n_clusters == 30 and "Obuchowski 1998" in c.recall.method
    assert "Obuchowski 1998" in c.precision.method and c.precision.n_clusters == 30
    assert c.max_recall_ci.n_clusters == 30
    # the image unit keeps Wilson over lesions, and is narrower on these clustered data
    assert ci.recall == binomial_ci(c.tp, c.tp + c.fn)
    assert c.recall.ci_high - c.recall.ci_low > 1.3 * (ci.recall.ci_high - ci.recall.ci_low)
    with pytest.raises(StudyError, match="statistics.unit"):
        evaluate_detection(gt, dets, n_bootstrap=0, unit="patient")


def test_image_level_interval_too_narrow_and_patient_level_not_on_strongly_clustered_data():
    """Done-when of issue 13: same generator, strong clustering (3 images per patient, rho 0.9)."""
    truth = 0.5  # q is uniform(0, 1) for every image, so a lesion is found with probability 1/2
    hits_patient, hits_image = [], []
    for seed in range(150):
        gt, dets, patient_of = _detection_study(100 + seed, 40)
        r = evaluate_detection(gt, dets, patient_of=patient_of, n_bootstrap=0, unit="patient").classes["papule"]
        tp, ngt = r.tp, r.tp + r.fn
        wil = binomial_ci(tp, ngt)
        hits_patient.append(r.recall.ci_low <= truth <= r.recall.ci_high)
        hits_image.append(wil.ci_low <= truth <= wil.ci_high)
    cov_p, cov_i = np.mean(hits_patient), np.mean(hits_image)
    # 150 studies: binomial SE of a 95% coverage is 1.8 points
    print(f"coverage of recall 95% intervals: patient-level {cov_p:.3f}, image-level (Wilson) {cov_i:.3f}")
    assert cov_i < 0.75, cov_i
    assert 0.90 <= cov_p <= 0.99, cov_p


def test_bounded_unit_interval_is_the_logit_interval_when_wald_leaves():
    q = float(norm.ppf(0.975))
    assert bounded_unit_interval(0.6, 0.05, q) == (pytest.approx(0.6 - q * 0.05), pytest.approx(0.6 + q * 0.05), False)
    lo, hi, transformed = bounded_unit_interval(0.97, 0.03, q)
    lg, s = np.log(0.97 / 0.03), 0.03 / (0.97 * 0.03)
    assert transformed and (lo, hi) == (pytest.approx(1 / (1 + np.exp(-(lg - q * s)))),
                                        pytest.approx(1 / (1 + np.exp(-(lg + q * s)))))
    assert 0 < lo < 0.97 < hi < 1
    assert bounded_unit_interval(1.0, 0.0, q) is None and bounded_unit_interval(1.0, 0.01, q) is None
    e = bounded_estimate(TEstimate, 0.99, 0.01, 10.0, 0.05, "OR t interval")
    assert e.ci_high < 1 and "logit" in e.method and e.df == 10.0
    at_one = bounded_estimate(TEstimate, 1.0, 0.0, None, 0.05, "normal")
    assert at_one.ci_low is None and at_one.reason


def test_patient_grade_most_severe_gives_agreement_per_patient():
    """grading.patient_grade: most_severe -- the reference and each rater get the most severe of the
    patient's image grades; accuracy and kappa are then sklearn's on those patient grades (n = patients)."""
    from sklearn.metrics import accuracy_score, cohen_kappa_score

    from study.metrics.agreement import evaluate_agreement
    from study.options import AgreementOptions
    from tests.test_agreement import LEVELS, make_study

    reference, ratings, patient_of, cov = make_study(90, seed=8, imgs_per_patient=3, crossed=0.9)
    opts = AgreementOptions(levels=tuple(LEVELS), subgroups=("sex",), patient_grade="most_severe",
                            statistics=StatisticsOptions(n_bootstrap=200, unit="patient"))
    res = evaluate_agreement(reference, ratings, options=opts, patient_of=patient_of, covariates=cov[["case_id", "sex"]])
    assert res.settings.patient_grade == "most_severe" and res.settings.n_cases == res.settings.n_patients == 30
    rank = {lv: i for i, lv in enumerate(LEVELS)}
    pat = pd.Series(patient_of)
    ref_p = reference.assign(p=reference["case_id"].map(pat), r=reference["grade"].map(rank)).groupby("p")["r"].max()
    for rid in ("ai", "j1"):
        r = ratings[ratings["rater_id"] == rid].assign(p=lambda d: d["case_id"].map(pat),
                                                       r=lambda d: d["grade"].map(rank))
        g = r.groupby("p")["r"].agg(["max", "count"])
        g = g[g["count"] == 3]  # a patient counts for a rater only when all three images were graded
        got = res.raters[rid]
        assert got.n_cases == len(g)
        assert got.accuracy.estimate == pytest.approx(accuracy_score(ref_p[g.index], g["max"]))
        assert got.kappa_quadratic.estimate == pytest.approx(
            cohen_kappa_score(ref_p[g.index], g["max"], weights="quadratic", labels=range(4)))
    assert res.raters["j1"].n_cases < 30  # crossed = 0.9: some patients not fully graded by j1
    assert set(res.subgroups["sex"]) <= {"F", "M", "mixed"} and "mixed" in res.subgroups["sex"]
    with pytest.raises(StudyError, match="patient"):
        evaluate_agreement(reference, ratings, options=opts, patient_of=None)


def test_protocol_patient_grade_reaches_the_options_and_defaults_to_none():
    from study.options import AgreementOptions
    from study.protocol import load_protocol
    from tests.conftest import REPO_ROOT

    p = load_protocol(REPO_ROOT / "protocols" / "chinese-2019.yaml").protocol
    assert AgreementOptions.from_protocol(p).patient_grade == "none"
    assert "patient_grade" not in p.model_dump()["grading"]  # the default leaves the protocol digests unchanged
    g = p.grading.model_copy(update={"patient_grade": "most_severe"})
    assert AgreementOptions.from_protocol(p.model_copy(update={"grading": g})).patient_grade == "most_severe"
