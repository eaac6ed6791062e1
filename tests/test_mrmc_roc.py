"""Figures of merit and their covariances, checked against independent computations.

References: scikit-learn (``roc_auc_score``, ``roc_curve``, ``recall_score``,
``accuracy_score``); a brute-force leave-one-case-out recomputation for the jackknife; a
direct O(n0 n1) evaluation of DeLong et al. (1988)'s structural components.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, recall_score, roc_auc_score

from study.metrics.roc import (binary_fom, bootstrap_covariance, delong_covariance, empirical_roc, fom_matrix,
                               fom_parts, jackknife_covariance, jackknife_foms)


def _study(seed=0, n0=30, n1=25, readers=4, levels=None):
    rng = np.random.default_rng(seed)
    truth = rng.permutation(np.r_[np.zeros(n0, int), np.ones(n1, int)])
    latent = truth * 1.2 + rng.normal(size=len(truth))
    ratings = latent[None, :] + rng.normal(scale=0.8, size=(readers, len(truth)))
    if levels:  # ordinal grades with many ties
        ratings = np.digitize(ratings, np.linspace(-1, 2, levels - 1)).astype(float)
    return ratings, truth


@pytest.mark.parametrize("levels", [None, 5])
def test_wilcoxon_auc_matches_sklearn(levels):
    ratings, truth = _study(levels=levels)
    got = fom_matrix(ratings, truth)
    want = [roc_auc_score(truth, r) for r in ratings]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)


@pytest.mark.parametrize("fom", ["wilcoxon", "sensitivity", "specificity", "accuracy"])
@pytest.mark.parametrize("levels", [None, 5])
def test_closed_form_jackknife_equals_brute_force(fom, levels):
    ratings, truth = _study(seed=3, n0=12, n1=9, readers=3, levels=levels)
    thr = 2.0 if levels else 0.5
    parts = fom_parts(ratings, truth, fom=fom, threshold=thr)
    jk = jackknife_foms(parts)
    for k in range(len(truth)):
        keep = np.arange(len(truth)) != k
        np.testing.assert_allclose(jk[:, k], fom_matrix(ratings[:, keep], truth[keep], fom=fom, threshold=thr),
                                   atol=1e-13)


def test_delong_covariance_matches_direct_structural_components():
    ratings, truth = _study(seed=5, levels=6)
    x, y = ratings[:, truth == 0], ratings[:, truth == 1]
    # psi[m, i, j] for every non-diseased i and diseased j (DeLong et al. 1988, section 3)
    psi = (y[:, None, :] > x[:, :, None]) + 0.5 * (y[:, None, :] == x[:, :, None])
    v10 = psi.mean(axis=1)  # per diseased case
    v01 = psi.mean(axis=2)  # per non-diseased case
    want = np.cov(v10) / y.shape[1] + np.cov(v01) / x.shape[1]
    got = delong_covariance(fom_parts(ratings, truth))
    np.testing.assert_allclose(got, want, atol=1e-15)


def test_jackknife_and_bootstrap_agree_with_delong_in_size():
    ratings, truth = _study(seed=7, n0=60, n1=50, readers=3)
    parts = fom_parts(ratings, truth)
    dl = delong_covariance(parts)
    jk = jackknife_covariance(jackknife_foms(parts))
    # jackknife and DeLong variances of the AUC are nearly the same (differ by O(1/n))
    np.testing.assert_allclose(np.diag(jk), np.diag(dl), rtol=0.05)
    bs = bootstrap_covariance(ratings, truth, n_bootstrap=400, seed=1)
    np.testing.assert_allclose(np.diag(bs), np.diag(dl), rtol=0.3)
    again = bootstrap_covariance(ratings, truth, n_bootstrap=400, seed=1)
    np.testing.assert_array_equal(bs, again)  # seeded: reproducible


def test_binary_foms_match_sklearn():
    ratings, truth = _study(seed=11, levels=4)
    r = ratings[0]
    pred = (r >= 2).astype(int)
    assert binary_fom(truth, r, threshold=2, fom="sensitivity") == pytest.approx(recall_score(truth, pred))
    assert binary_fom(truth, r, threshold=2, fom="specificity") == pytest.approx(
        recall_score(truth, pred, pos_label=0))
    assert binary_fom(truth, r, threshold=2, fom="accuracy") == pytest.approx(accuracy_score(truth, pred))
    with pytest.raises(ValueError):
        binary_fom(truth, r, threshold=2, fom="wilcoxon")


def test_empirical_roc_points_and_area():
    truth = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    rating = np.array([1, 2, 2, 2, 3, 4, 1, 1], float)
    roc = empirical_roc(truth, rating)
    assert roc.fpr[0] == 0 and roc.tpr[0] == 0 and roc.fpr[-1] == 1 and roc.tpr[-1] == 1
    assert roc.thresholds[0] is None and roc.thresholds[1:] == [4.0, 3.0, 2.0, 1.0]
    # at threshold 2: positives with rating >= 2 are 3 of 4, negatives 2 of 4
    k = roc.thresholds.index(2.0)
    assert (roc.fpr[k], roc.tpr[k]) == (0.5, 0.75)
    assert roc.auc == pytest.approx(np.trapezoid(roc.tpr, roc.fpr))
    assert roc.auc == pytest.approx(roc_auc_score(truth, rating))
    assert (roc.n_positive, roc.n_negative) == (4, 4)
