"""FROC: hand-worked readouts and the windowed patient bootstrap against a plain per-replicate loop."""

from __future__ import annotations

import numpy as np
import pytest

from study.metrics.bootstrap import resampling_weights
from study.metrics.froc import (FrocData, bootstrap_sensitivities, bootstrap_sensitivities_reference, evaluate_froc,
                                froc_curve, sensitivity_at)

RATES = (0.125, 0.25, 0.5, 1, 2, 4, 8)


def _hand_case():
    # 2 images (each its own patient), 2 lesions each = 4 lesions.
    # image 0: 0.9 TP, 0.8 FP, 0.6 TP; image 1: 0.7 FP, 0.5 TP, 0.4 FP.
    score = [0.9, 0.8, 0.6, 0.7, 0.5, 0.4]
    tp = [1, 0, 1, 0, 1, 0]
    fp = [0, 1, 0, 1, 0, 1]
    patient = [0, 0, 0, 1, 1, 1]
    return FrocData.build(score, tp, fp, patient, n_gt_patient=[2, 2], n_img_patient=[1, 1])


def test_hand_worked_curve_and_readout():
    # sorted: .9 TP, .8 FP, .7 FP, .6 TP, .5 TP, .4 FP
    # cumulative FP 0,1,2,2,2,3 -> FP/image 0,.5,1,1,1,1.5 ; TP 1,1,1,2,3,3 -> sensitivity .25,.25,.25,.5,.75,.75
    data = _hand_case()
    c = froc_curve(data)
    np.testing.assert_allclose(c["fp_per_image"], [0, 0, .5, 1, 1, 1, 1.5])
    np.testing.assert_allclose(c["sensitivity"], [0, .25, .25, .25, .5, .75, .75])
    # f = 1/8, 1/4: FP budget 0.25, 0.5 of 2 images -> 0 FPs -> keep .9 only -> .25
    # f = 1/2: budget 1 FP -> keep down to .8 -> .25 ; f = 1: budget 2 -> down to .5 -> .75 ; f >= 2: all -> .75
    np.testing.assert_allclose(sensitivity_at(data, RATES), [.25, .25, .25, .75, .75, .75, .75])
    out = evaluate_froc(data, fp_rates=RATES)
    # average = (3 * .25 + 4 * .75) / 7 = 3.75 / 7
    assert out.average.estimate == pytest.approx(3.75 / 7)
    assert [p.fp_per_image for p in out.points] == list(RATES)


def test_tied_scores_enter_together():
    # one image, 3 lesions: .9 TP, then .5 TP and .5 FP tied.
    # budget 0.5 FP: the tied pair cannot be split -> keep .9 only -> 1/3 ; budget 1 FP -> all -> 2/3
    data = FrocData.build([0.9, 0.5, 0.5], [1, 1, 0], [0, 0, 1], [0, 0, 0], n_gt_patient=[3], n_img_patient=[1])
    np.testing.assert_allclose(sensitivity_at(data, (0.5, 1.0)), [1 / 3, 2 / 3])


def test_budget_below_first_point_reads_zero():
    # the highest-scoring detection is a FP: with budget 0.125 FP/image on 1 image nothing can be kept
    data = FrocData.build([0.9, 0.8], [0, 1], [1, 0], [0, 0], n_gt_patient=[1], n_img_patient=[1])
    np.testing.assert_allclose(sensitivity_at(data, (0.125, 1.0)), [0.0, 1.0])


@pytest.mark.parametrize("seed", [0, 1])
def test_windowed_bootstrap_equals_plain_loop(seed):
    rng = np.random.default_rng(seed)
    n_pat, n_img = 60, 150
    img_pat = rng.integers(0, n_pat, n_img)
    n_det = 3000
    img = rng.integers(0, n_img, n_det)
    tp = rng.random(n_det) < 0.6
    score = np.where(tp, rng.beta(5, 2, n_det), rng.beta(2, 4, n_det)).round(3)  # ties
    n_gt_img = np.bincount(img[tp], minlength=n_img) + rng.integers(0, 3, n_img)
    data = FrocData.build(score, tp, ~tp, img_pat[img], n_gt_patient=np.bincount(img_pat, weights=n_gt_img, minlength=n_pat),
                          n_img_patient=np.bincount(img_pat, minlength=n_pat))
    blocks = list(resampling_weights(n_pat, n_replicates=300, rng=np.random.default_rng(seed)))
    fast = bootstrap_sensitivities(data, RATES, blocks)
    ref = bootstrap_sensitivities_reference(data, RATES, blocks)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12)
    # percentile interval brackets the point estimate
    out = evaluate_froc(data, fp_rates=RATES, weight_blocks=blocks, n_bootstrap=300)
    for p in out.points:
        s = p.sensitivity
        assert s.ci_low <= s.estimate <= s.ci_high
        assert "patients" in s.method


def test_narrow_windows_widen_until_exact():
    # margin 1 and 4 replicates per window: most windows miss at first and must widen
    from study.metrics.froc import _readout

    rng = np.random.default_rng(3)
    n = 2000
    tp = rng.random(n) < 0.5
    pat = rng.integers(0, 40, n)
    data = FrocData.build(rng.random(n).round(2), tp, ~tp, pat, n_gt_patient=np.bincount(pat[tp], minlength=40) + 1,
                          n_img_patient=np.ones(40))
    blocks = list(resampling_weights(40, n_replicates=64, rng=np.random.default_rng(1)))
    fpc = np.r_[0.0, np.cumsum(data.fp)]
    fast = _readout(data, np.vstack(blocks), RATES, fpc, data.valid_cut, rows_per_window=4, margin=1)
    np.testing.assert_allclose(fast, bootstrap_sensitivities_reference(data, RATES, blocks), atol=1e-12, rtol=0)
