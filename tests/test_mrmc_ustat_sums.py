"""The U-statistic AUC sums without case x case matrices (study/metrics/mrmc/ustat_sums.py).

References: the dense implementation as it was before the sums path (a verbatim copy in
tests/mrmc_dense_reference.py, itself pinned to the FDA iMRMC 4.0.3 outputs by
tests/test_mrmc_ustat.py) and brute-force loops over pairs of readings written here from the
definitions (Gallas 2009's sharing classes; ustat_patients' reader / patient classes).
"""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from study.metrics.mrmc.ustat import analyze_ustat
from study.metrics.mrmc.ustat_auc import auc_kernel, kernel_moments
from study.metrics.mrmc.ustat_patients import kernel_patient_covariance
from study.metrics.mrmc.ustat_sums import AUCSums, dominance_count, placements, within_pairs
from tests.mrmc_dense_reference import _classes, _sums, auc_patient_covariance, success_matrices

RATINGS = {"binary": 2, "grades": 5, "confidence": 101, "continuous": None}


def _h(u: np.ndarray) -> np.ndarray:
    return 2 * (u > 0) + (u == 0)


def _ratings(rng: np.random.Generator, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    k = RATINGS[kind]
    return rng.normal(size=shape) if k is None else rng.integers(0, k, size=shape).astype(float)


def _read_mask(rng: np.random.Generator, design: str, readers: int, cases: int) -> np.ndarray:
    if design == "fully crossed":
        return np.ones((readers, cases), bool)
    if design == "split-plot":
        group = rng.integers(0, 2, cases)
        return np.array([group == (r % 2) for r in range(readers)])
    return rng.random((readers, cases)) < 0.6  # partially crossed


@pytest.mark.parametrize("kind", [*RATINGS, "continuous x grades"])
@pytest.mark.parametrize("histogram", [True, False])
def test_dominance_count_equals_brute_force(kind: str, histogram: bool) -> None:
    rng = np.random.default_rng(7)
    kinds = kind.split(" x ") * (2 if " x " not in kind else 1)
    for _ in range(20):
        n, m = rng.integers(1, 30, 2)
        p1, q1 = _ratings(rng, kinds[0], (n,)), _ratings(rng, kinds[0], (m,))
        p2, q2 = _ratings(rng, kinds[1], (n,)), _ratings(rng, kinds[1], (m,))
        wp, wq = rng.integers(0, 3, n), rng.integers(0, 3, m)
        brute = int((wp[:, None] * wq[None, :] * _h(p1[:, None] - q1[None, :]) * _h(p2[:, None] - q2[None, :])).sum())
        got = dominance_count(p1, p2, wp, q1, q2, wq, max_cells=1 << 22 if histogram else 0)
        assert got == brute


def test_placements_and_within_pairs_equal_brute_force() -> None:
    rng = np.random.default_rng(3)
    neg, pos = rng.integers(0, 4, 9).astype(float), rng.integers(0, 4, 7).astype(float)
    wn, wp = rng.integers(0, 2, 9), rng.integers(0, 2, 7)
    per_pos, per_neg = placements(neg, pos, wn, wp)
    kern = _h(pos[None, :] - neg[:, None])  # (neg, pos)
    assert np.array_equal(per_pos, wp * (wn[:, None] * kern).sum(axis=0))
    assert np.array_equal(per_neg, wn * (wp[None, :] * kern).sum(axis=1))
    ga, gb = rng.integers(0, 4, 11), rng.integers(0, 4, 6)
    ia, ib = within_pairs(ga, gb)
    assert sorted(zip(ia.tolist(), ib.tolist())) == [(i, j) for i in range(11) for j in range(6) if ga[i] == gb[j]]


def _two_modalities(rng: np.random.Generator, kind: str, design: str, readers: int, n0: int, n1: int):
    out = []
    for _ in range(2):
        read = _read_mask(rng, design, readers, n0 + n1)
        out += [_ratings(rng, kind, (readers, n0)), _ratings(rng, kind, (readers, n1)), read[:, :n0], read[:, n0:]]
    return out


def _brute_image_sums(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """Sums of ``xa xb`` over pairs of readings sharing at least: reader+both cases, reader+diseased, reader+non-diseased,
    reader, both cases, diseased, non-diseased, nothing (Gallas 2009), by a loop over all pairs."""
    out = np.zeros(8)
    idx = list(itertools.product(*(range(n) for n in xa.shape)))
    for (r, i, j), (s, k, l) in itertools.product(idx, idx):
        v = xa[r, i, j] * xb[s, k, l]
        same_r = r == s
        conds = [same_r and i == k and j == l, same_r and j == l, same_r and i == k, same_r,
                 i == k and j == l, j == l, i == k, True]
        out += v * np.array(conds, dtype=float)
    return out


@pytest.mark.parametrize("kind", list(RATINGS))
@pytest.mark.parametrize("design", ["fully crossed", "split-plot", "partially crossed"])
def test_image_sums_equal_dense_and_brute_force(kind: str, design: str) -> None:
    rng = np.random.default_rng(11)
    for trial in range(6):
        args = _two_modalities(rng, kind, design, 3, 5 + trial, 4 + trial)
        d_a, x_a = success_matrices(*args[:4])
        d_b, x_b = success_matrices(*args[4:])
        num = np.array(AUCSums(*args).image_sums(), dtype=float) / 4
        den = np.array(AUCSums(*args, design=True).image_sums(), dtype=float)
        np.testing.assert_allclose(num, _sums(x_a, x_b), rtol=1e-12, atol=0)
        same = AUCSums(*args[:4], *args[:4], symmetric=True).image_sums()  # A = B: upper triangles only
        np.testing.assert_allclose(np.array(same, dtype=float) / 4, _sums(x_a, x_a), rtol=1e-12, atol=0)
        np.testing.assert_allclose(den, _sums(d_a, d_b), rtol=1e-12, atol=0)
        if trial == 0:
            np.testing.assert_allclose(num, _brute_image_sums(x_a, x_b), rtol=1e-12)
            np.testing.assert_allclose(den, _brute_image_sums(d_a, d_b), rtol=1e-12)


def _brute_patient_classes(xa: np.ndarray, xb: np.ndarray, neg_p: np.ndarray, pos_p: np.ndarray,
                           fixed: bool) -> np.ndarray:
    """Sums of ``xa xb`` over pairs of AUC terms sharing nothing / the reader only / a patient only / both."""
    out = np.zeros(4)
    idx = list(itertools.product(*(range(n) for n in xa.shape)))
    for (r, i, j), (s, k, l) in itertools.product(idx, idx):
        patient = bool({neg_p[i], pos_p[j]} & {neg_p[k], pos_p[l]})
        reader = r == s and not fixed
        out[2 * patient + reader] += xa[r, i, j] * xb[s, k, l]
    return out


@pytest.mark.parametrize("kind", list(RATINGS))
@pytest.mark.parametrize("design", ["fully crossed", "split-plot", "partially crossed"])
def test_patient_classes_equal_dense_and_brute_force(kind: str, design: str) -> None:
    rng = np.random.default_rng(5)
    for trial in range(4):
        n0, n1 = 5 + trial, 4 + trial
        args = _two_modalities(rng, kind, design, 2 + trial % 2, n0, n1)
        n_p = int(rng.integers(2, n0 + n1))
        neg_p, pos_p = rng.integers(0, n_p, n0), rng.integers(0, n_p, n1)
        d_a, x_a = success_matrices(*args[:4])
        d_b, x_b = success_matrices(*args[4:])
        one_neg, one_pos = np.eye(n_p)[neg_p], np.eye(n_p)[pos_p]

        def to_patients(x: np.ndarray) -> np.ndarray:
            return np.einsum("ip,rij,jq->rpq", one_neg, x, one_pos)

        for fixed in (False, True):
            num = np.array(AUCSums(*args).patient_classes(neg_p, pos_p, n_p, fixed), dtype=float) / 4
            den = np.array(AUCSums(*args, design=True).patient_classes(neg_p, pos_p, n_p, fixed), dtype=float)
            np.testing.assert_allclose(num, _classes(to_patients(x_a), to_patients(x_b), 2, fixed), rtol=1e-12,
                                       atol=1e-12)
            same = AUCSums(*args[:4], *args[:4], symmetric=True).patient_classes(neg_p, pos_p, n_p, fixed)
            np.testing.assert_allclose(np.array(same, dtype=float) / 4,
                                       _classes(to_patients(x_a), to_patients(x_a), 2, fixed), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(den, _classes(to_patients(d_a), to_patients(d_b), 2, fixed), rtol=1e-12,
                                       atol=1e-12)
            if trial == 0:
                np.testing.assert_allclose(num, _brute_patient_classes(x_a, x_b, neg_p, pos_p, fixed), atol=1e-12)
                np.testing.assert_allclose(den, _brute_patient_classes(d_a, d_b, neg_p, pos_p, fixed), atol=1e-12)


@pytest.mark.parametrize("kind", list(RATINGS))
def test_kernel_moments_and_patient_covariance_sums_equal_dense(kind: str) -> None:
    rng = np.random.default_rng(9)
    args = _two_modalities(rng, kind, "partially crossed", 4, 12, 9)
    dense = [auc_kernel(*args[:4], method="dense"), auc_kernel(*args[4:], method="dense")]
    sums = [auc_kernel(*args[:4], method="sums"), auc_kernel(*args[4:], method="sums")]
    for (ia, ib), fixed in (((0, 0), False), ((0, 0), True), ((0, 1), False)):
        md, ms = kernel_moments(dense[ia], dense[ib], fixed_reader=fixed), kernel_moments(sums[ia], sums[ib],
                                                                                             fixed_reader=fixed)
        for field in ("moments", "moments_biased", "coefficients", "bck", "bck_biased", "bck_coefficients"):
            np.testing.assert_allclose(getattr(ms, field), getattr(md, field), rtol=1e-12, atol=1e-15)
        assert ms.auc_a == pytest.approx(md.auc_a, rel=1e-12) and ms.auc_b == pytest.approx(md.auc_b, rel=1e-12)
        n_p = 15
        neg_p, pos_p = rng.integers(0, n_p, 12), rng.integers(0, n_p, 9)
        d_a, x_a = success_matrices(*args[4 * ia:4 * ia + 4])
        d_b, x_b = success_matrices(*args[4 * ib:4 * ib + 4])
        ref = auc_patient_covariance(d_a, x_a, d_b, x_b, neg_p, pos_p, n_p, fixed_reader=fixed)
        got = kernel_patient_covariance(sums[ia], sums[ib], neg_p, pos_p, n_p, fixed_reader=fixed)
        assert got.covariance == pytest.approx(ref.covariance, rel=1e-12, abs=1e-15)
        np.testing.assert_allclose(got.terms, ref.terms, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sums[0].successes(), success_matrices(*args[:4])[1].sum(axis=(1, 2)), rtol=1e-12)


def _ratings_table(rng: np.random.Generator, kind: str, design: str, patients: bool) -> pd.DataFrame:
    n, readers = 40, 5
    truth = (np.arange(n) % 3 == 0).astype(int)
    rows = []
    for m in ("aided", "unaided"):
        read = _read_mask(rng, design, readers, n)
        shift = 0.8 if m == "aided" else 0.4
        scores = _ratings(rng, kind, (readers, n)) + (shift * truth * (RATINGS[kind] or 2) / 2).round()
        for r in range(readers):
            for c in range(n):
                if read[r, c]:
                    rows.append({"modality": m, "reader_id": f"R{r}", "case_id": f"c{c}", "truth": truth[c],
                                 "rating": scores[r, c], "patient_id": f"p{c // 3 if patients else c}"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("kind", list(RATINGS))
@pytest.mark.parametrize("design", ["fully crossed", "split-plot", "partially crossed"])
@pytest.mark.parametrize("patients", [False, True])
def test_analyze_ustat_sums_path_equals_dense_path(kind: str, design: str, patients: bool) -> None:
    rng = np.random.default_rng(len(kind) * 7 + len(design) + patients)
    table = _ratings_table(rng, kind, design, patients)
    dense = analyze_ustat(table, auc_method="dense", patient_column="patient_id" if patients else None)
    sums = analyze_ustat(table, auc_method="sums", patient_column="patient_id" if patients else None)

    def flat(x: object, path: str = "") -> dict[str, object]:
        if isinstance(x, dict):
            return {k: v for key, val in x.items() for k, v in flat(val, f"{path}.{key}").items()}
        if isinstance(x, list):
            return {k: v for i, val in enumerate(x) for k, v in flat(val, f"{path}[{i}]").items()}
        return {path: x}

    fd, fs = flat(dense.model_dump()), flat(sums.model_dump())
    assert fd.keys() == fs.keys()
    for key, v in fd.items():
        if isinstance(v, float):
            assert fs[key] == pytest.approx(v, rel=1e-12, abs=1e-14), key
        else:
            assert fs[key] == v, key


def test_sums_path_never_builds_case_by_case_matrices() -> None:
    """20,000 cases x 3 readers: the dense matrices would take 3 x 10,000 x 10,000 x 8 B = 2.4 GB each."""
    rng = np.random.default_rng(1)
    n0 = n1 = 10_000
    neg, pos = rng.integers(0, 101, (3, n0)).astype(float), rng.integers(20, 101, (3, n1)).astype(float)
    read_n, read_p = np.ones((3, n0), bool), np.ones((3, n1), bool)
    k = auc_kernel(neg, pos, read_n, read_p)
    assert k.method == "sums"
    tracemalloc.start()
    mom = kernel_moments(k, k)
    cov = kernel_patient_covariance(k, k, np.arange(n0) // 2, np.arange(n1) // 2 + n0 // 2, n0 // 2 + n1 // 2)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100e6, f"peak {peak / 1e6:.0f} MB"
    # the reader-averaged AUC from the placements equals the Mann-Whitney U of scipy
    from scipy.stats import mannwhitneyu
    u = np.mean([mannwhitneyu(pos[r], neg[r]).statistic / (n0 * n1) for r in range(3)])
    assert mom.auc_a == pytest.approx(u, rel=1e-12)
    assert cov.covariance > 0
