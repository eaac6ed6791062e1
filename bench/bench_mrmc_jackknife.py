"""Benchmark: closed-form jackknife of the Wilcoxon AUC vs. brute-force recomputation.

Run: ``python bench/bench_mrmc_jackknife.py``. A study of 2 modalities x 10 readers x 200 cases
(120 / 80): the closed form (``study.metrics.roc``) against recomputing every
leave-one-case-out AUC with scikit-learn's ``roc_auc_score`` (the peer), same run.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.metrics import roc_auc_score

from study.metrics.roc import fom_parts, jackknife_covariance, jackknife_foms


def main() -> None:
    rng = np.random.default_rng(0)
    truth = rng.permutation(np.r_[np.zeros(120, int), np.ones(80, int)])
    ratings = truth * 1.2 + rng.normal(size=(20, truth.size))
    t0 = time.perf_counter()
    ours = jackknife_foms(fom_parts(ratings, truth))
    jackknife_covariance(ours)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = 2  # the peer is slow: time 2 of the 20 rows and scale up
    peer = np.empty((rows, truth.size))
    for k in range(truth.size):
        keep = np.arange(truth.size) != k
        peer[:, k] = [roc_auc_score(truth[keep], r[keep]) for r in ratings[:rows]]
    t_peer = (time.perf_counter() - t0) * ratings.shape[0] / rows
    assert np.allclose(ours[:rows], peer, atol=1e-12)
    print(f"closed-form jackknife: {t_ours * 1e3:.1f} ms; sklearn leave-one-out (scaled to 20 rows): {t_peer * 1e3:.0f} ms; "
          f"ratio {t_peer / t_ours:.0f}x")


if __name__ == "__main__":
    main()
