"""U-statistic variance of a reader-averaged binary endpoint (sensitivity, specificity) for any design.

The endpoint of modality ``A`` is the mean of a kernel ``k_A[r, c]`` (1 when reader ``r`` called
diseased case ``c`` positive, for sensitivity; non-diseased case ``c`` negative, for
specificity) over the readings ``d_A[r, c] = 1``: every reading weighs the same, so a reader
weighs as many cases as it read (iMRMC ``uStat11.jointD``; Gallas and Brown 2008). Its
(co)variance with the mean of modality ``B`` is ``sum_t c_t M_t`` over four product moments
``M_t`` (pairs of readings sharing the reader and the case, the case only, the reader only,
neither), each estimated without bias from the pairs that share exactly those units, with
``c_t`` the fraction of pairs that do (Gallas, Pennello and Myers 2007; Chen, Wunderlich,
Petrick and Gallas 2014).

Non-negative variances on any design
------------------------------------
Written in variance components -- case ``C = M_case - M_none``, reader ``R = M_reader - M_none``,
reader x case ``E = M_both - M_case - M_reader + M_none`` -- the variance of ``A - B`` is
``sum_{t in C, R, E} trace(W_t S_t)``, where ``S_t`` is the 2 x 2 covariance matrix of the
component across the two modalities and ``W_t = [[g_A, -g_AB], [-g_AB, g_B]]`` holds sums of
products of the reading weights (``g_C = sum_c a_c b_c`` with ``a_c`` the weight of case ``c``
in ``A``, and likewise over readers and over readings), a Gram matrix and so positive
semi-definite on every design. The unbiased ``S_t`` can come out indefinite (a negative
component, or a cross-modality covariance beyond the two variances) on small or split-plot
designs, and then the unbiased variance can be negative. Each ``S_t`` is replaced by its
nearest positive semi-definite matrix (eigenvalues below zero set to zero; a 1 x 1 component
is truncated at zero, as Hillis 2007 truncates ``Cov2 - Cov3``): the variance is then a sum
of traces of products of two positive semi-definite matrices, never negative, and equals the
unbiased estimate whenever no component needed changing (``truncated`` names those that did).
A moment a design cannot estimate (no case read by two readers; no reading of the same case
by the same reader in both modalities) has coefficient zero; its component is set so that the
non-estimable part is zero.

References
----------
Gallas BD, Pennello GA, Myers KJ (2007). Multireader multicase variance analysis for binary
data. J Opt Soc Am A 24:B70-B80.
Gallas BD, Brown DG (2008). Reader studies for validation of CAD systems. Neural Networks 21:387-397.
Chen W, Wunderlich A, Petrick N, Gallas BD (2014). Multireader multicase reader studies with
binary agreement data: simulation, analysis, validation, and sizing. J Med Imaging 1:031011.
Hillis SL (2007). A comparison of denominator degrees of freedom methods for multiple observer
ROC analysis. Stat Med 26:596-619.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BINARY_COMPONENTS", "BinaryMoments", "binary_moments", "nonnegative_variance"]

#: the moments, by the units a pair of readings shares
MOMENT_NAMES = ("reader_and_case", "case", "reader", "neither")
#: the variance components
BINARY_COMPONENTS = ("case", "reader", "reader_x_case")


@dataclass(frozen=True)
class BinaryMoments:
    """Moments of ``Cov(mean_A, mean_B)`` for a binary kernel; components and their Gram weights.

    Attributes
    ----------
    mean_a, mean_b : float
    moments, moments_biased, coefficients : ndarray, shape (4,)
        Order :data:`MOMENT_NAMES`.
    components, components_biased, weights : ndarray, shape (3,)
        Case, reader, reader x case components and their weights ``g_t`` (the variance is
        ``weights @ components`` before any truncation).
    n_cases, n_readers : int
        Cases and readers with at least one reading in ``A`` or ``B``.
    """

    mean_a: float
    mean_b: float
    moments: np.ndarray
    moments_biased: np.ndarray
    coefficients: np.ndarray
    components: np.ndarray
    components_biased: np.ndarray
    weights: np.ndarray
    n_cases: int
    n_readers: int

    @property
    def covariance(self) -> float:
        return float(self.coefficients @ self.moments)

    @property
    def covariance_mle(self) -> float:
        return float(self.coefficients @ self.moments_biased)


def _sums(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """Biased sums over pairs of readings sharing (at least) reader and case, case, reader, nothing."""
    return np.array([(xa * xb).sum(), (xa.sum(axis=0) * xb.sum(axis=0)).sum(),
                     (xa.sum(axis=1) * xb.sum(axis=1)).sum(), xa.sum() * xb.sum()], dtype=float)


_TO_UNBIASED = np.array([[1, 0, 0, 0], [-1, 1, 0, 0], [-1, 0, 1, 0], [1, -1, -1, 1]], dtype=float)


def _components(m: np.ndarray, denom_u: np.ndarray) -> np.ndarray:
    """Case, reader and reader x case components; non-estimable moments set so their part is zero."""
    both, case, reader, none = m
    if denom_u[1] == 0:
        case = none
    if denom_u[2] == 0:
        reader = none
    if denom_u[0] == 0:
        both = case + reader - none
    return np.array([case - none, reader - none, both - case - reader + none])


def binary_moments(d_a: np.ndarray, k_a: np.ndarray, d_b: np.ndarray, k_b: np.ndarray, *,
                   fixed_reader: bool = False) -> BinaryMoments:
    """Moments, coefficients and components of ``Cov(mean_A, mean_B)``.

    Parameters
    ----------
    d_a, k_a, d_b, k_b : ndarray, shape (readers, cases)
        Reading masks (0/1) and kernels (0/1) of the two modalities on the same readers and cases.
    fixed_reader : bool
        ``A = B`` is read by one fixed reader (an algorithm): the different-reader moments take
        the same-reader values (the squared mean is estimated from pairs of different cases).
    """
    xa, xb = d_a * k_a, d_b * k_b
    numer, denom = _sums(xa, xb), _sums(d_a, d_b)
    numer_u, denom_u = _TO_UNBIASED @ numer, _TO_UNBIASED @ denom
    m = np.where(denom_u > 0, numer_u / np.where(denom_u > 0, denom_u, 1), 0.0)
    m_b = np.where(denom > 0, numer / np.where(denom > 0, denom, 1), 0.0)
    n_a, n_b = d_a.sum(), d_b.sum()
    coeff = denom_u / (n_a * n_b)
    coeff[3] -= 1.0
    if fixed_reader:
        m[1], m[3], m_b[1], m_b[3] = m[0], m[2], m_b[0], m_b[2]
        denom_u = denom_u.copy()
        denom_u[1], denom_u[3] = denom_u[0], denom_u[2]  # estimable through the same-reader pairs
    # Gram weights of the case, reader and reader x case components (biased sums / N_A N_B)
    weights = np.array([denom[1], denom[2], denom[0]]) / (n_a * n_b)
    either = (d_a + d_b) > 0
    return BinaryMoments(mean_a=float(xa.sum() / n_a), mean_b=float(xb.sum() / n_b), moments=m, moments_biased=m_b,
                         coefficients=coeff, components=_components(m, denom_u),
                         components_biased=_components(m_b, denom_u), weights=weights,
                         n_cases=int(either.any(axis=0).sum()), n_readers=int(either.any(axis=1).sum()))


def _nearest_psd(s: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(s)
    return (vecs * np.clip(vals, 0.0, None)) @ vecs.T


def nonnegative_variance(aa: BinaryMoments, bb: BinaryMoments | None = None, ab: BinaryMoments | None = None, *,
                         biased: bool = False) -> tuple[float, np.ndarray, list[int]]:
    """The variance of ``mean_A`` (or of ``mean_A - mean_B``) from positive semi-definite components.

    Returns
    -------
    variance : float
        Never negative.
    terms : ndarray, shape (3,)
        The case, reader and reader x case terms (``trace(W_t S_t)``), summing to ``variance``.
    truncated : list of int
        Indices of the components changed by the projection.
    """
    def comp(x: BinaryMoments) -> np.ndarray:
        return x.components_biased if biased else x.components

    terms = np.zeros(3)
    truncated: list[int] = []
    for t in range(3):
        if bb is None or ab is None:
            s = max(comp(aa)[t], 0.0)
            if s != comp(aa)[t]:
                truncated.append(t)
            terms[t] = aa.weights[t] * s
            continue
        raw = np.array([[comp(aa)[t], comp(ab)[t]], [comp(ab)[t], comp(bb)[t]]])
        s2 = _nearest_psd(raw)
        if not np.allclose(s2, raw, rtol=0, atol=1e-15):
            truncated.append(t)
        terms[t] = aa.weights[t] * s2[0, 0] + bb.weights[t] * s2[1, 1] - 2 * ab.weights[t] * s2[0, 1]
    return float(max(terms.sum(), 0.0)), terms, truncated
