"""The errors that matter (issue 17 items 4 and 5): grading errors case by case, errors by group, skin type.

References: statsmodels ``test_proportions_2indep`` (Wald, unpooled) for the skin-type difference
test when every patient contributes one lesion, and a patient bootstrap of the difference for
clustered data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from study.error_analysis import difference_test, error_analysis, fitzpatrick_type
from study.metrics.clustered import clustered_proportion
from study.metrics.counting import evaluate_counting
from study.options import CountingOptions, StatisticsOptions
from study.report.context.errors import error_tables, grading_error_rows
from study.results.detection import ImageLesions

LEVELS = ["I", "II", "III", "IV"]


def test_fitzpatrick_types_are_read_as_roman_numerals():
    assert [fitzpatrick_type(v) for v in (4, "4", "iv", " VI ", 2.0, None, float("nan"))] == \
        ["IV", "IV", "IV", "VI", "II", None, None]


def test_difference_test_equals_statsmodels_wald_with_one_lesion_per_patient():
    """With singleton clusters the ratio-estimator variance is p(1-p)/(K-1): statsmodels' Wald z
    (variance p(1-p)/K) times sqrt of the K/(K-1) factor in each group."""
    from statsmodels.stats.proportion import test_proportions_2indep

    x1, n1, x2, n2 = 41, 50, 27, 45
    a = clustered_proportion(np.r_[np.ones(x1), np.zeros(n1 - x1)], np.ones(n1))
    b = clustered_proportion(np.r_[np.ones(x2), np.zeros(n2 - x2)], np.ones(n2))
    d, p = difference_test(a, b, method="Wald")
    ref = test_proportions_2indep(x1, n1, x2, n2, method="wald", compare="diff")
    p1, p2 = x1 / n1, x2 / n2
    v_sm = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    v_ours = p1 * (1 - p1) / (n1 - 1) + p2 * (1 - p2) / (n2 - 1)
    assert d.estimate == pytest.approx(p1 - p2, abs=1e-12)
    assert (d.estimate / d.se) == pytest.approx(ref.statistic * np.sqrt(v_sm / v_ours), rel=1e-10)
    assert p == pytest.approx(2 * (1 - __import__("scipy").stats.norm.cdf(abs(d.estimate / d.se))), rel=1e-10)


def test_difference_test_se_matches_a_patient_bootstrap_on_clustered_data():
    rng = np.random.default_rng(5)
    groups = []
    for p_true in (0.85, 0.7):
        k = 60
        lesions = rng.integers(1, 12, k)
        p_patient = np.clip(rng.normal(p_true, 0.12, k), 0, 1)  # patients differ: clustering
        found = rng.binomial(lesions, p_patient)
        groups.append((found, lesions))
    a, b = (clustered_proportion(f, n) for f, n in groups)
    d, p = difference_test(a, b, method="Wald")
    reps = []
    for _ in range(3000):
        r = []
        for f, n in groups:
            i = rng.integers(0, len(n), len(n))
            r.append(f[i].sum() / n[i].sum())
        reps.append(r[0] - r[1])
    assert d.se == pytest.approx(np.std(reps, ddof=1), rel=0.1)
    assert p is not None and p < 0.05


def _study():
    """Four cases, one class: a correct case, a two-grade error, a missed grade IV, a one-grade error."""
    cases = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "patient_id": ["p1", "p1", "p2", "p3"],
                          "device": ["cam", "cam", "phone", None], "fitzpatrick": [2, "II", "v", "VI"]})
    quality = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "laplacian_var": [10.0, 200.0, 50.0, 400.0],
                            "dark_fraction": [0.1, 0.0, 0.2, 0.0], "bright_fraction": [0.0] * 4})
    true = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "count_papule": [3, 10, 30, 6]})
    n_det = {"a": 3, "b": 2, "c": 12, "d": 9}
    det = pd.DataFrame([{"case_id": c, "class": "papule", "score": 0.9} for c, k in n_det.items() for _ in range(k)])
    severity = pd.Series(["II", "III", "IV", "II"], index=true["case_id"])
    counting = evaluate_counting(true, det, severity=severity, options=CountingOptions(
        classes=("papule",), thresholds=(0.5,), levels=tuple(LEVELS),
        statistics=StatisticsOptions(n_bootstrap=100, seed=0)))
    grades = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "grade": ["II", "I", "II", "III"]})
    gt = {"images": [{"id": i + 1, "case_id": c} for i, c in enumerate("abcd")]}
    per_image = ImageLesions(image_id=[1, 2, 3, 4], lesions=[3, 10, 30, 6], found=[3, 2, 12, 6],
                             detections=[3, 2, 12, 9])

    class Det:  # only per_image is read
        pass

    d = Det()
    d.per_image = per_image  # type: ignore[attr-defined]
    return error_analysis(cases=cases, quality=quality, counting={"m": counting}, detection={"m": d},
                          grades={"m": grades}, ground_truth=gt, levels=LEVELS,
                          names={"a": "C-1", "b": "C-2", "c": "C-3", "d": "C-4"}, operating_threshold=0.5)


def test_grading_errors_case_by_case_serious_first():
    e = _study()
    me = e.models["m"]
    by_id = {c.case_id: c for c in me.cases}
    assert set(by_id) == {"C-1", "C-2", "C-3", "C-4"}  # pseudonyms only
    assert by_id["C-2"].grade_steps == -2 and by_id["C-2"].serious
    assert by_id["C-3"].grade_steps == -2 and by_id["C-3"].serious  # grade IV missed (and two off)
    assert by_id["C-4"].grade_steps == 1 and not by_id["C-4"].serious
    assert by_id["C-1"].grade_steps == 0 and not by_id["C-1"].serious
    assert by_id["C-3"].reference_counts == {"papule": 30} and by_id["C-3"].model_counts == {"papule": 12}
    assert (by_id["C-4"].detections, by_id["C-4"].lesions, by_id["C-4"].lesions_found) == (9, 6, 6)
    assert by_id["C-3"].fitzpatrick == "V" and by_id["C-1"].fitzpatrick == "II"
    assert [c.case_id for c in grading_error_rows(me.cases)] == ["C-2", "C-3", "C-4"]
    tables = error_tables("m", me, errors_block=e, k=10)
    rows = tables["grading"]["rows"]
    assert [r[0] for r in rows] == ["C-2", "C-3", "C-4"] and rows[0][3] == "yes" and rows[2][3] == "no"
    assert rows[1][4] == "papule 30→12" and rows[1][6] == "12/30"
    assert "not stated" in tables["skin_source"]
    with_assessors = e.model_copy(update={"skin_type_assessors": {"dermatologist": 3}})
    source = error_tables("m", me, errors_block=with_assessors, k=10)["skin_source"]
    assert "configuration does not state" in source and "case by case" in source and "is not stated" not in source
    # no detection flags given (no detections file): the detection-by-skin-type table says why it is absent
    assert me.skin_type_detection is None and "no detection flags" in (me.skin_type_detection_reason or "")
    assert tables["skin_detection"] is None and tables["skin_detection_reason"] == me.skin_type_detection_reason
    assert tables["skin_assessors"] is None and e.skin_type_assessors == {}


def test_groups_by_device_skin_type_and_quality_with_intervals():
    me = _study().models["m"]
    dev = {g.level: g for g in me.groups["device"]}
    assert set(dev) == {"cam", "phone"} and dev["cam"].n_cases == 2 and dev["cam"].n_patients == 1
    assert dev["cam"].grading_accuracy.estimate == 0.5
    assert dev["cam"].lesion_recall.estimate == pytest.approx(5 / 13)
    fz = [g.level for g in me.groups["fitzpatrick"]]
    assert fz == ["II", "V", "VI"]
    q = {g.level: g.n_cases for g in me.groups["quality"]}
    assert sum(q.values()) == 4 and set(q) <= {"low", "middle", "high"}
    s = me.skin_type
    assert s is not None and s.light.level == "I-III" and s.dark.n_cases == 2
    # recall I-III: (3 + 2) / 13; IV-VI: (12 + 6) / 36
    assert s.recall_difference.estimate == pytest.approx(5 / 13 - 18 / 36)
    assert s.mae_difference.estimate == pytest.approx((0 + 8) / 2 - (18 + 3) / 2)


# ----------------------------------------------------------------------------- detection by skin type
def test_skin_type_detection_equals_evaluate_detection_on_each_group():
    """Reference: the study's evaluate_detection run on each group's images alone (its map), and the
    group's patients; the pooled difference is I-III minus IV-VI."""
    from study.error_analysis import skin_type_detection
    from study.metrics.detection import detection_flags, evaluate_detection
    from tests.test_detection import _random_coco

    rng = np.random.default_rng(4)
    gt, dt = _random_coco(rng, n_img=36)
    flags = detection_flags(gt, dt)
    types = ["I", "II", "III", "IV", "V", None]
    fitz = [types[(i // 2) % 6] for i in range(len(flags.image_ids))]
    patient = [f"p{i // 2}" for i in range(len(flags.image_ids))]
    s, reason = skin_type_detection(flags, fitzpatrick=fitz, patient=patient, n_bootstrap=200, seed=3,
                                    confidence=0.95)
    assert reason is None and s is not None
    assert [g.level for g in s.by_type] == ["I", "II", "III", "IV", "V"]  # VI absent, unknown left out
    ids = flags.image_ids
    for g in [*s.by_type, s.light, s.dark]:
        members = {"I-III": ("I", "II", "III"), "IV-VI": ("IV", "V", "VI")}.get(g.level, (g.level,))
        sub = [int(i) for i, f in zip(ids, fitz) if f in members]
        ref = evaluate_detection(gt, dt, image_ids=sub, n_bootstrap=0)
        assert g.map.estimate == pytest.approx(ref.map, abs=1e-12), g.level
        assert g.n_images == len(sub) and g.n_lesions == ref.inputs.n_gt
        assert g.n_patients == len({p for p, f in zip(patient, fitz) if f in members})
        assert g.map.ci_low is not None and g.map.ci_low <= g.map.estimate <= g.map.ci_high
        assert "resampling patients" in g.map.method
    assert s.difference is not None and s.difference.estimate == pytest.approx(s.light.map.estimate
                                                                               - s.dark.map.estimate)
    assert s.p_value is not None and 0 < s.p_value <= 1
    assert s.iou_threshold == 0.5 and "101-point" in s.ap_definition
    # reproducible: the same seed gives the same intervals
    again, _ = skin_type_detection(flags, fitzpatrick=fitz, patient=patient, n_bootstrap=200, seed=3,
                                   confidence=0.95)
    assert again == s
    # one side only: each type still reported, no comparison
    light_only = [f if f in ("I", "II", "III") else None for f in fitz]
    s1, _ = skin_type_detection(flags, fitzpatrick=light_only, patient=patient, n_bootstrap=100, seed=3,
                                confidence=0.95)
    assert s1 is not None and s1.dark is None and s1.difference is None and "not compared" in (s1.reason or "")
    none, why = skin_type_detection(flags, fitzpatrick=[None] * len(ids), patient=patient, n_bootstrap=100,
                                    seed=3, confidence=0.95)
    assert none is None and "no evaluated image" in (why or "")


def test_skin_type_assessors_counted_per_case():
    from study.error_analysis import skin_type_assessors

    cases = pd.DataFrame({"case_id": ["a", "b", "c", "d", "e"], "fitzpatrick": ["II", "4", "", "V", "I"],
                          "skin_type_assessor": ["dermatologist", "self-reported", "dermatologist", "", "dermatologist"]})
    assert skin_type_assessors(cases) == {"dermatologist": 2, "not recorded": 1, "self-reported": 1}
    assert skin_type_assessors(cases, included=["a", "b"]) == {"dermatologist": 1, "self-reported": 1}
    assert skin_type_assessors(cases.drop(columns="skin_type_assessor")) == {}


def test_skin_type_detection_table_of_the_report_fixture():
    """The report's table lists every Fitzpatrick type present, I-III, IV-VI and their difference with its p."""
    from study.report.format import fmt_p
    from study.results import Results
    from tests.test_report import _results

    res = Results.model_validate(_results())
    e = res.errors
    assert e is not None
    m, me = next(iter(sorted(e.models.items())))
    sd = me.skin_type_detection
    assert sd is not None and sd.light is not None and sd.dark is not None
    t = error_tables(m, me, errors_block=e, k=10)["skin_detection"]
    labels = [r[0] for r in t["rows"]]
    assert labels == [g.level for g in sd.by_type] + ["I-III", "IV-VI", "Difference (I-III minus IV-VI)"]
    assert t["rows"][-1][-1].endswith(f"p = {fmt_p(sd.p_value)}")
    assert sum(g.n_images for g in sd.by_type) == sd.light.n_images + sd.dark.n_images
    assert sd.light.n_lesions + sd.dark.n_lesions == sum(g.n_lesions for g in sd.by_type)
