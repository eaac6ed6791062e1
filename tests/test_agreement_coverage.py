"""Coverage of the 95% intervals in simulated studies (reduced version of bench/coverage_agreement.py).

The simulation draws studies from a known joint distribution of (reference, rater) grades and
checks that the intervals computed by the project contain the true accuracy, kappa and
sensitivity in 93% to 97% of the studies (issue 6), for 100 and 1,000 cases.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from coverage_agreement import analytic_coverage, bootstrap_coverage, clustered_coverage, joint  # noqa: E402


@pytest.mark.parametrize("n", [100, 1000])
def test_wilson_and_wald_ase_cover_95(n):
    cov = analytic_coverage(joint(0.7), n, studies=2000, seed=20261121 + n)
    print(n, cov)
    assert len(cov) == 8
    for name, v in cov.items():
        assert 0.93 <= v <= 0.97, (n, name, v)


@pytest.mark.slow
def test_patient_bootstrap_covers_95_and_naive_wilson_does_not_under_clustering():
    cov = bootstrap_coverage(joint(0.7), 100, studies=1000, replicates=400, seed=3)
    print(cov)
    for name, v in cov.items():
        assert 0.93 <= v <= 0.97, (name, v)
    cl = clustered_coverage(60, studies=400, replicates=300, seed=4)
    print(cl)
    assert cl["accuracy, Wilson treating images as independent"] < 0.90  # why we resample patients
    assert cl["accuracy, patient bootstrap"] > 0.91
