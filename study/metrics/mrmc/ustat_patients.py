"""Patients, not images, as the random case unit of the U-statistic MRMC variance.

With several images per patient, two readings are correlated when they share the reader or a
*patient* (not only an image). The U-statistic variance generalises directly (Gallas 2006's
one-shot estimate; Obuchowski 1997 for clustered ROC data): for the reader-averaged figure of
merit ``F = sum_k w_k s_k`` over kernel terms ``k`` (an AUC term is a reader and a
(non-diseased, diseased) image pair; a binary term a reading) with ``w_k = 1 / N``,

    Var(F) = sum over pairs of terms (k, k') that share a reader or a patient of w_k w_k' (E[s_k s_k'] - mu^2),

because pairs that share nothing are independent. Each ``E[s_k s_k']`` is estimated by its own
product and ``mu^2`` by the mean product over the pairs that share nothing, which is unbiased:

    Var^ = [sum_{sharing pairs} s_k s_k' - n_sharing * M_none] / N^2.

The sharing pairs split into three classes -- the reader only, a patient only, both -- whose
sums are this module's ``terms`` (they add up to the variance, and feed a Satterthwaite degrees
of freedom over ``readers - 1``, ``patients - 1`` and their product). The sums over pairs that
share no patient are computed on patient-level arrays by inclusion-exclusion over the equalities
between the two terms' patients (an AUC term has two: the non-diseased and the diseased image's).
With one image per patient this is exactly the image-level U-statistic variance (iMRMC).

References
----------
Gallas BD (2006). One-shot estimate of MRMC variance: AUC. Acad Radiol 13:353-362.
Obuchowski NA (1997). Nonparametric analysis of clustered ROC curve data. Biometrics 53:567-578.
Satterthwaite FE (1946). An approximate distribution of estimates of variance components.
Biometrics Bulletin 2:110-114.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from study.metrics.mrmc.ustat_auc import AUCKernel, kernel_sums

__all__ = ["PATIENT_TERMS", "PatientCovariance", "auc_patient_covariance", "binary_patient_covariance",
           "kernel_patient_covariance", "patient_df"]

#: the classes of correlated pairs of terms
PATIENT_TERMS = ("reader", "patient", "reader_x_patient")


@dataclass(frozen=True)
class PatientCovariance:
    """``Cov(F_A, F_B)`` with patients as the case unit: total and its reader / patient / both terms."""

    covariance: float
    terms: np.ndarray

    def __sub__(self, other: PatientCovariance) -> PatientCovariance:
        return PatientCovariance(self.covariance - other.covariance, self.terms - other.terms)

    def __add__(self, other: PatientCovariance) -> PatientCovariance:
        return PatientCovariance(self.covariance + other.covariance, self.terms + other.terms)

    def scaled(self, k: float) -> PatientCovariance:
        return PatientCovariance(k * self.covariance, k * self.terms)


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


def kernel_patient_covariance(ka: AUCKernel, kb: AUCKernel, neg_patient: np.ndarray, pos_patient: np.ndarray,
                              n_patients: int, *, fixed_reader: bool = False) -> PatientCovariance:
    """:func:`auc_patient_covariance` of two AUC kernels, dense when both are, else without ``N x N`` arrays.

    The sums path takes the same four classes of pairs from
    :meth:`~study.metrics.mrmc.ustat_sums.AUCSums.patient_classes` (exact integers: successes
    times 4, the design as is) -- per-patient marginals and within-patient sums, and two
    dominance counts over pairs of images of the same patients.
    """
    if ka.method == "dense" and kb.method == "dense":
        d_a, x_a = ka.matrices()
        d_b, x_b = kb.matrices()
        return auc_patient_covariance(d_a, x_a, d_b, x_b, neg_patient, pos_patient, n_patients,
                                      fixed_reader=fixed_reader)
    num_s, den_s = kernel_sums(ka, kb)
    num = np.array([float(v) for v in num_s.patient_classes(neg_patient, pos_patient, n_patients, fixed_reader)]) / 4.0
    den = np.array([float(v) for v in den_s.patient_classes(neg_patient, pos_patient, n_patients, fixed_reader)])
    return _covariance(num, den, float(ka.pairs().sum()) * float(kb.pairs().sum()))


def _to_patients(x: np.ndarray, patient: np.ndarray, n_patients: int) -> np.ndarray:
    """``x @ one_hot(patient)`` (readers x patients) without the ``cases x patients`` one-hot matrix."""
    out = np.zeros((x.shape[0], n_patients))
    for r, row in enumerate(x):
        out[r] = np.bincount(patient, weights=row, minlength=n_patients)
    return out


def binary_patient_covariance(d_a: np.ndarray, k_a: np.ndarray, d_b: np.ndarray, k_b: np.ndarray,
                              patient: np.ndarray, n_patients: int, *, fixed_reader: bool = False) -> PatientCovariance:
    """``Cov(mean_A, mean_B)`` of a binary kernel (readers x images) resampling patients."""
    patient = np.asarray(patient, dtype=np.int64)
    num = _classes(_to_patients(d_a * k_a, patient, n_patients), _to_patients(d_b * k_b, patient, n_patients), 1,
                   fixed_reader)
    den = _classes(_to_patients(d_a, patient, n_patients), _to_patients(d_b, patient, n_patients), 1, fixed_reader)
    return _covariance(num, den, float(d_a.sum() * d_b.sum()))


def patient_df(cov: PatientCovariance, n_readers: int, n_patients: int) -> float | None:
    """Satterthwaite degrees of freedom over the reader, patient and reader x patient terms.

    Bounded below by ``min(readers, patients) - 1`` (Gaylor and Hopper 1969) and by 2; ``None``
    when the variance is not positive.
    """
    var = cov.covariance
    if not var > 0:
        return None
    if n_readers < 2:  # one fixed reader: the patients are the only random units
        return max(n_patients - 1.0, 2.0)
    dfs = np.array([n_readers - 1.0, n_patients - 1.0, (n_readers - 1.0) * (n_patients - 1.0)])
    denom = float(np.sum(cov.terms ** 2 / dfs))
    df = var ** 2 / denom if denom > 0 else np.inf
    return max(df, float(dfs[:2].min()), 2.0)
