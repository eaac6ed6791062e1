"""One definition of the patient-bootstrap replicates, never held whole (issue 16): the
replicates are made block by block from a saved generator state each time a statistic reads
them, so F1, FROC, presence and segmentation share the same replicates without a copy."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from study.metrics.bootstrap import ReplicateWeights, resampling_weights, units_of
from study.metrics.froc import (
    FrocData,
    bootstrap_sensitivities,
    bootstrap_sensitivities_reference,
    evaluate_froc,
)

RATES = (0.125, 0.25, 0.5, 1, 2, 4, 8)


def _froc_data(n_pat: int, n_det: int, seed: int = 0) -> FrocData:
    rng = np.random.default_rng(seed)
    tp = rng.random(n_det) < 0.6
    score = np.where(tp, rng.beta(5, 2, n_det), rng.beta(2, 4, n_det)).round(3)
    pat = rng.integers(0, n_pat, n_det)
    return FrocData.build(score, tp, ~tp, pat, n_gt_patient=np.bincount(pat[tp], minlength=n_pat) + 1,
                          n_img_patient=np.ones(n_pat))


def test_every_pass_gives_the_blocks_of_resampling_weights_and_leaves_the_generator_alone():
    rng = np.random.default_rng(7)
    before = rng.bit_generator.state
    w = ReplicateWeights(30, n_replicates=600, rng=rng)
    assert rng.bit_generator.state == before
    expected = list(resampling_weights(30, n_replicates=600, rng=np.random.default_rng(7)))
    for _ in range(2):  # the same replicates on every pass
        got = list(w)
        assert len(got) == len(w) == len(expected) == 3
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)
    assert units_of(w) == 30 == units_of(expected)
    assert not ReplicateWeights(30, n_replicates=0, rng=rng) and list(ReplicateWeights(0, n_replicates=5, rng=rng)) == []
    with pytest.raises(ValueError, match="n_replicates"):
        ReplicateWeights(3, n_replicates=-1, rng=rng)


def test_froc_read_block_by_block_equals_the_plain_per_replicate_loop():
    data = _froc_data(50, 1500)
    w = ReplicateWeights(50, n_replicates=300, rng=np.random.default_rng(2), chunk=128)
    np.testing.assert_allclose(bootstrap_sensitivities(data, RATES, w),
                               bootstrap_sensitivities_reference(data, RATES, list(w)), rtol=0, atol=1e-12)
    a = evaluate_froc(data, fp_rates=RATES, weight_blocks=w, n_bootstrap=300)
    b = evaluate_froc(data, fp_rates=RATES, weight_blocks=list(w), n_bootstrap=300)
    assert a == b


def test_froc_bootstrap_never_holds_all_replicates():
    """Peak memory (tracemalloc, which sees numpy's buffers) of the FROC bootstrap stays under
    half of the replicate matrix (4,096 replicates x 4,000 patients, float32: 65.5 MB)."""
    n_pat, n_rep = 4000, 4096
    data = _froc_data(n_pat, 3000, seed=1)
    w = ReplicateWeights(n_pat, n_replicates=n_rep, rng=np.random.default_rng(0))
    full = n_rep * n_pat * 4
    tracemalloc.start()
    try:
        reps = bootstrap_sensitivities(data, (1.0,), w)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reps.shape == (n_rep, 1)
    assert peak < full / 2, f"peak {peak / 1e6:.1f} MB against {full / 1e6:.1f} MB for all replicates"
