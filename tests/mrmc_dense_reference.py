"""The dense (case x case) U-statistic sums of the MRMC AUC analysis, kept as a test reference.

A verbatim copy of ``success_matrices`` / ``_sums`` (study/metrics/mrmc/ustat_auc.py) and of the
patient covariance (study/metrics/mrmc/ustat_patients.py) as they were before the sums path
(study/metrics/mrmc/ustat_sums.py) replaced them for large studies: O(readers x N0 x N1) memory.
The dense code was itself pinned to the FDA iMRMC 4.0.3 outputs (tests/test_mrmc_ustat.py).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from study.metrics.mrmc.ustat_patients import PatientCovariance


def success_matrices(neg: np.ndarray, pos: np.ndarray, read_neg: np.ndarray,
                     read_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per reader: the design ``d[r,i,j]`` and the weighted successes ``d s`` of each case pair.

    Parameters
    ----------
    neg, pos : ndarray, shape (readers, non-diseased) and (readers, diseased)
        Ratings (any value where not read).
    read_neg, read_pos : ndarray of bool, same shapes
        Whether the reader read the case.
    """
    diff = pos[:, None, :] - neg[:, :, None]
    s = np.where(diff > 0, 1.0, np.where(diff == 0, 0.5, 0.0))
    d = (read_neg[:, :, None] & read_pos[:, None, :]).astype(float)
    return d, d * s



def _sums(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """The eight biased sums over pairs of readings (iMRMC ``bnumer`` / ``bdenom``)."""
    a_j, b_j = xa.sum(axis=1), xb.sum(axis=1)  # (r, diseased): summed over non-diseased
    a_i, b_i = xa.sum(axis=2), xb.sum(axis=2)  # (r, non-diseased)
    a_r, b_r = a_i.sum(axis=1), b_i.sum(axis=1)
    return np.array([
        (xa * xb).sum(), (a_j * b_j).sum(), (a_i * b_i).sum(), (a_r * b_r).sum(),
        (xa.sum(axis=0) * xb.sum(axis=0)).sum(), (a_j.sum(axis=0) * b_j.sum(axis=0)).sum(),
        (a_i.sum(axis=0) * b_i.sum(axis=0)).sum(), a_r.sum() * b_r.sum(),
    ])



def _blocks(n_vars: int, equalities: tuple[tuple[int, int], ...]) -> list[int]:
    parent = list(range(n_vars))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for a, b in equalities:
        parent[find(a)] = find(b)
    return [find(i) for i in range(n_vars)]



def _no_shared_patient(xa: np.ndarray, xb: np.ndarray, n_slots: int, same_reader: bool) -> float:
    """Sum of ``xa[r, *p] xb[r', *p']`` over cells whose patients are all different (inclusion-exclusion).

    ``n_slots`` patient indices per cell (1: a reading; 2: an AUC image pair); ``same_reader``:
    ``r = r'`` (else every pair of readers).
    """
    slots_a, slots_b = list(range(n_slots)), list(range(n_slots, 2 * n_slots))
    events = tuple((a, b) for a in slots_a for b in slots_b)
    letters = "abcdefgh"
    total = 0.0
    for size in range(len(events) + 1):
        for subset in combinations(events, size):
            block = _blocks(2 * n_slots, subset)
            sa = "r" + "".join(letters[block[i]] for i in slots_a)
            sb = ("r" if same_reader else "s") + "".join(letters[block[i]] for i in slots_b)
            total += (-1) ** size * float(np.einsum(f"{sa},{sb}->", xa, xb, optimize=True))
    return total



def _classes(xa: np.ndarray, xb: np.ndarray, n_slots: int, fixed_reader: bool = False) -> np.ndarray:
    """Sums over pairs of cells sharing: nothing, the reader only, a patient only, both.

    ``fixed_reader``: one fixed reader (an algorithm); sharing it is no source of correlation,
    so every pair that shares no patient counts as sharing nothing.
    """
    axes = tuple(range(1, xa.ndim))
    total_free = float(xa.sum() * xb.sum())
    none_free = _no_shared_patient(xa, xb, n_slots, same_reader=False)
    if fixed_reader:
        return np.array([none_free, 0.0, total_free - none_free, 0.0])
    total_same = float((xa.sum(axis=axes) * xb.sum(axis=axes)).sum())
    none_same = _no_shared_patient(xa, xb, n_slots, same_reader=True)
    both = total_same - none_same
    return np.array([none_free - none_same, none_same, total_free - none_free - both, both])



def _covariance(num: np.ndarray, den: np.ndarray, n: float) -> PatientCovariance:
    m_none = num[0] / den[0] if den[0] > 0 else 0.0
    terms = (num[1:] - den[1:] * m_none) / n
    return PatientCovariance(float(terms.sum()), terms)



def auc_patient_covariance(d_a: np.ndarray, x_a: np.ndarray, d_b: np.ndarray, x_b: np.ndarray,
                           neg_patient: np.ndarray, pos_patient: np.ndarray, n_patients: int, *,
                           fixed_reader: bool = False) -> PatientCovariance:
    """``Cov(AUC_A, AUC_B)`` resampling patients.

    Parameters
    ----------
    d_a, x_a, d_b, x_b : ndarray, shape (readers, non-diseased, diseased)
        Designs and weighted successes (:func:`study.metrics.mrmc.ustat_auc.success_matrices`).
    neg_patient, pos_patient : ndarray of int
        The patient index of each non-diseased and diseased image.
    n_patients : int
    fixed_reader : bool
        ``A = B`` is read by one fixed reader (an algorithm).
    """
    one_neg = np.eye(n_patients)[neg_patient]
    one_pos = np.eye(n_patients)[pos_patient]

    def to_patients(x: np.ndarray) -> np.ndarray:
        return np.einsum("ip,rij,jq->rpq", one_neg, x, one_pos, optimize=True)

    num = _classes(to_patients(x_a), to_patients(x_b), 2, fixed_reader)
    den = _classes(to_patients(d_a), to_patients(d_b), 2, fixed_reader)
    return _covariance(num, den, float(d_a.sum() * d_b.sum()))



def binary_patient_covariance(d_a: np.ndarray, k_a: np.ndarray, d_b: np.ndarray, k_b: np.ndarray,
                              patient: np.ndarray, n_patients: int, *, fixed_reader: bool = False) -> PatientCovariance:
    """``Cov(mean_A, mean_B)`` of a binary kernel (readers x images) resampling patients."""
    one = np.eye(n_patients)[patient]
    num = _classes((d_a * k_a) @ one, (d_b * k_b) @ one, 1, fixed_reader)
    den = _classes(d_a @ one, d_b @ one, 1, fixed_reader)
    return _covariance(num, den, float(d_a.sum() * d_b.sum()))
