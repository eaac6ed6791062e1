"""Issue 13: patient-level intervals of detection and counting, bounded MRMC / AP intervals, and the
image-level interval shown too narrow on strongly clustered data.

References used here:
- ``scipy.stats.bootstrap(method="BCa")`` resampling patient indices (its jackknife leaves one
  patient out) for the patient-bootstrap BCa intervals of MAE, RMSE, CCC and the Bland-Altman
  limits (study.metrics.clustered_counting), with Lin's CCC and the Bland-Altman points of
  study.metrics.counting (pinned to DescTools / the 1986 paper in tests/test_counting.py);
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
from scipy.stats import bootstrap, norm

from study.errors import StudyError
from study.metrics.clustered import clustered_proportion
from study.metrics.clustered_counting import (
    COUNT_STATISTICS,
    count_sums,
    patient_bootstrap_counting,
)
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
    assert all(e.n == len(x) and e.n_clusters == 60 and "BCa" in e.method and "patients" in e.method
               for e in r.values())


@pytest.mark.parametrize("name", ["mae", "rmse", "ccc", "loa_low", "loa_high"])
def test_counting_bca_matches_scipy_bootstrap_over_patients(name):
    x, y, pat = _clustered_counts(seed=4)
    sums = count_sums(x, y, pat, int(pat.max()) + 1)
    f = COUNT_STATISTICS[name]
    ref = bootstrap((np.arange(len(sums)),), lambda idx: f(sums[idx].sum(axis=0)), vectorized=False,
                    n_resamples=4000, method="BCa", random_state=np.random.default_rng(9)).confidence_interval
    got = patient_bootstrap_counting(x, y, pat, n_bootstrap=4000, seed=3, statistics=(name,))[name]
    width = ref.high - ref.low
    # two independent sets of 4000 replicates: the limits agree to a few percent of the width
    assert got.ci_low == pytest.approx(ref.low, abs=0.06 * width)
    assert got.ci_high == pytest.approx(ref.high, abs=0.06 * width)


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
    assert "BCa bootstrap resampling patients" in by_patient.overall.ccc.method
    assert "Lin (1989)" in by_image.overall.ccc.method
    assert "BCa" in by_patient.bland_altman.loa_low.method and by_patient.bland_altman.loa_high.n_clusters == 40
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
