"""U-statistic moments of the reader-averaged AUC for any MRMC design (Gallas 2006; Gallas et al. 2009).

The reader-averaged empirical AUC of modality ``A`` weighs each reader by the number of
(non-diseased, diseased) case pairs the reader read, as the FDA's iMRMC does::

    AUC_A = sum_r sum_ij d_A[r,i,j] s_A[r,i,j] / sum_r sum_ij d_A[r,i,j]

where ``s_A[r,i,j]`` is the success of reader ``r`` on the pair (non-diseased ``i``, diseased
``j``) -- 1 when the diseased case is rated higher, 1/2 for a tie, 0 otherwise -- and
``d_A[r,i,j]`` is 1 when the reader read both cases in ``A``. The (co)variance of two such
averages (``A`` and ``B``, possibly the same modality) is a linear combination of eight
second-order product moments ``M1..M8``: ``M1..M4`` pair the same reader (sharing both cases,
the diseased case only, the non-diseased case only, neither), ``M5..M8`` different readers
(same sharing). Each moment is estimated without bias by the average of the product
``s_A s_B`` over the pairs of readings that share exactly those random units (the biased,
"MLE" moments average over the pairs that share at least those units; a fixed 8x8 matrix
maps one onto the other), and its coefficient is the fraction of all pairs of readings
that share exactly those units, as in iMRMC's ``CovMRMC.doAUCcovUstatistics`` (iMRMC 4.0.3,
public domain, US FDA) and its R port ``doAUCmrmc``.

References
----------
Gallas BD (2006). One-shot estimate of MRMC variance: AUC. Acad Radiol 13:353-362.
Gallas BD, Bandos A, Samuelson FW, Wagner RF (2009). A framework for random-effects ROC
analysis: biases with the bootstrap and other variance estimators. Commun Stat Theory
Methods 38:2586-2603 (the moments, the coefficients and the BCK components, Eq. 19).
Gallas BD, Brown DG (2008). Reader studies for validation of CAD systems. Neural Networks
21:387-397 (arbitrary study designs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from study.metrics.mrmc.ustat_sums import AUCSums, placements

__all__ = ["BCK_NAMES", "DENSE_MAX_PAIRS", "AUCKernel", "AUCMoments", "auc_kernel", "auc_moments", "kernel_moments", "kernel_sums",
           "success_matrices"]

#: the dense path (readers x non-diseased x diseased matrices) is used up to this many reader x case pairs
DENSE_MAX_PAIRS = 1_000_000

#: biased -> unbiased sums over pairs of readings (Gallas 2009; iMRMC ``bias2unbias``)
_B = np.array([
    [1, 0, 0, 0, 0, 0, 0, 0],
    [-1, 1, 0, 0, 0, 0, 0, 0],
    [-1, 0, 1, 0, 0, 0, 0, 0],
    [1, -1, -1, 1, 0, 0, 0, 0],
    [-1, 0, 0, 0, 1, 0, 0, 0],
    [1, -1, 0, 0, -1, 1, 0, 0],
    [1, 0, -1, 0, -1, 0, 1, 0],
    [-1, 1, 1, -1, 1, -1, -1, 1],
], dtype=float)

#: BDG moments -> BCK components (Gallas 2009 Eq. 19; iMRMC ``B_alpha``)
_B_ALPHA = np.array([
    [0, 0, 0, 0, 0, 0, 1, -1],
    [0, 0, 0, 0, 0, 1, 0, -1],
    [0, 0, 0, 0, 1, -1, -1, 1],
    [0, 0, 0, 1, 0, 0, 0, -1],
    [0, 0, 1, -1, 0, 0, -1, 1],
    [0, 1, 0, -1, 0, -1, 0, 1],
    [1, -1, -1, 1, -1, 1, 1, -1],
], dtype=float)

#: BDG coefficients -> BCK coefficients (iMRMC ``B_BDG2BCK``)
_B_BDG2BCK = np.array([
    [1, 0, 1, 0, 1, 0, 1, 0],
    [1, 1, 0, 0, 1, 1, 0, 0],
    [1, 0, 0, 0, 1, 0, 0, 0],
    [1, 1, 1, 1, 0, 0, 0, 0],
    [1, 0, 1, 0, 0, 0, 0, 0],
    [1, 1, 0, 0, 0, 0, 0, 0],
    [1, 0, 0, 0, 0, 0, 0, 0],
], dtype=float)

#: the BCK components: non-diseased cases (N), diseased cases (D), readers (R) and their interactions
BCK_NAMES = ("N", "D", "ND", "R", "NR", "DR", "RND")


@dataclass(frozen=True)
class AUCMoments:
    """The moments of the covariance of two reader-averaged AUCs (``A`` and ``B``).

    Attributes
    ----------
    auc_a, auc_b : float
        The reader-averaged AUCs (weights: case pairs read).
    moments, moments_biased, coefficients : ndarray, shape (8,)
        Unbiased (U-statistic) and biased (MLE) moments ``M1..M8``, and their coefficients.
    bck, bck_biased, bck_coefficients : ndarray, shape (7,)
        The same as the seven BCK components ``N, D, ND, R, NR, DR, RND``.
    """

    auc_a: float
    auc_b: float
    moments: np.ndarray
    moments_biased: np.ndarray
    coefficients: np.ndarray
    bck: np.ndarray
    bck_biased: np.ndarray
    bck_coefficients: np.ndarray

    @property
    def covariance(self) -> float:
        """The unbiased (U-statistic) covariance of the two averages (variance when ``A = B``)."""
        return float(self.coefficients @ self.moments)

    @property
    def covariance_mle(self) -> float:
        """The MLE (V-statistic, ideal bootstrap) covariance."""
        return float(self.coefficients @ self.moments_biased)


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


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = num.astype(float).copy()
    ok = den > 0.5  # counts of pairs; iMRMC: denominator > min(weight) / 2
    out[ok] = num[ok] / den[ok]
    return out


def auc_moments(d_a: np.ndarray, x_a: np.ndarray, d_b: np.ndarray, x_b: np.ndarray, *,
                fixed_reader: bool = False) -> AUCMoments:
    """Moments, coefficients and BCK components of ``Cov(AUC_A, AUC_B)``.

    Parameters
    ----------
    d_a, x_a, d_b, x_b : ndarray, shape (readers, non-diseased, diseased)
        Designs and weighted successes from :func:`success_matrices`, on the same readers and
        cases (a reader or case absent from a modality has zero design there).
    fixed_reader : bool
        ``A = B`` is read by one fixed reader (an algorithm): sharing the reader is then no
        source of correlation, and the moments of pairs of different readers (none exist) take
        the values of the same-reader ones, so ``M8`` (the squared mean) is estimated by ``M4``.

    Returns
    -------
    AUCMoments
    """
    return _moments(_sums(x_a, x_b), _sums(d_a, d_b), float(x_a.sum() / d_a.sum()), float(x_b.sum() / d_b.sum()),
                    fixed_reader)


def _moments(numer: np.ndarray, denom: np.ndarray, auc_a: float, auc_b: float, fixed_reader: bool) -> AUCMoments:
    numer_u, denom_u = _B @ numer, _B @ denom
    m_biased = _ratio(numer, denom)
    m = _ratio(numer_u, denom_u)
    if fixed_reader:
        m[4:], m_biased[4:] = m[:4], m_biased[:4]
    coeff = denom_u / denom[7]
    coeff[7] -= 1.0
    bck_coeff = _B_BDG2BCK @ coeff
    bck, bck_b = _B_ALPHA @ m, _B_ALPHA @ m_biased
    unpaired = bck_coeff == 0  # components a design does not pair (iMRMC doAUCmrmcCov)
    bck[unpaired] = 0.0
    bck_b[unpaired] = 0.0
    return AUCMoments(auc_a=auc_a, auc_b=auc_b, moments=m, moments_biased=m_biased, coefficients=coeff, bck=bck,
                      bck_biased=bck_b, bck_coefficients=bck_coeff)


@dataclass(frozen=True)
class AUCKernel:
    """One modality's AUC kernel: ratings and reading masks split by truth, and how its sums are computed.

    ``method="dense"`` builds the ``readers x non-diseased x diseased`` design and success
    matrices (:func:`success_matrices`); ``"sums"`` never does, computing the same sums from
    placement values and dominance counts (:mod:`~study.metrics.mrmc.ustat_sums`) in
    ``O(N log N)`` memory. Both give the same moments (exactly, where the dense sums are exact).

    Attributes
    ----------
    neg, pos : ndarray, shape (readers, non-diseased) and (readers, diseased)
    read_neg, read_pos : ndarray of bool, same shapes
    method : {"dense", "sums"}
    """

    neg: np.ndarray
    pos: np.ndarray
    read_neg: np.ndarray
    read_pos: np.ndarray
    method: Literal["dense", "sums"]

    def matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """The dense ``(d, d s)`` matrices (:func:`success_matrices`)."""
        return success_matrices(self.neg, self.pos, self.read_neg, self.read_pos)

    def pairs(self) -> np.ndarray:
        """Per reader: the number of (non-diseased, diseased) case pairs read (``sum_ij d[r,i,j]``)."""
        return np.asarray(self.read_neg.sum(axis=1) * self.read_pos.sum(axis=1), dtype=float)

    def successes(self) -> np.ndarray:
        """Per reader: ``sum_ij d[r,i,j] s[r,i,j]`` (ties 1/2), from the placement values."""
        out = [placements(self.neg[r], self.pos[r], self.read_neg[r].astype(np.int64),
                          self.read_pos[r].astype(np.int64))[0].sum() for r in range(self.neg.shape[0])]
        return np.asarray(np.array(out, dtype=np.int64) / 2.0)


def auc_kernel(neg: np.ndarray, pos: np.ndarray, read_neg: np.ndarray, read_pos: np.ndarray, *,
               method: Literal["auto", "dense", "sums"] = "auto") -> AUCKernel:
    """An :class:`AUCKernel`; ``auto``: dense up to :data:`DENSE_MAX_PAIRS` reader x case pairs, else sums."""
    if method == "auto":
        method = "dense" if neg.shape[0] * neg.shape[1] * pos.shape[1] <= DENSE_MAX_PAIRS else "sums"
    return AUCKernel(np.asarray(neg, float), np.asarray(pos, float), np.asarray(read_neg, bool),
                     np.asarray(read_pos, bool), method)


def kernel_sums(ka: AUCKernel, kb: AUCKernel) -> tuple[AUCSums, AUCSums]:
    """The (successes, design) :class:`~study.metrics.mrmc.ustat_sums.AUCSums` of two kernels."""
    args = (ka.neg, ka.pos, ka.read_neg, ka.read_pos, kb.neg, kb.pos, kb.read_neg, kb.read_pos)
    return AUCSums(*args, symmetric=ka is kb), AUCSums(*args, design=True, symmetric=ka is kb)


def kernel_moments(ka: AUCKernel, kb: AUCKernel, *, fixed_reader: bool = False) -> AUCMoments:
    """:func:`auc_moments` of two kernels, by the dense matrices when both are dense, else by the sums.

    The sums path: the eight biased sums of iMRMC (``bnumer``, ``bdenom``) as exact integers
    from :meth:`AUCSums.image_sums` (successes times 4; the design as is).
    """
    if ka.method == "dense" and kb.method == "dense":
        d_a, x_a = ka.matrices()
        d_b, x_b = kb.matrices()
        return auc_moments(d_a, x_a, d_b, x_b, fixed_reader=fixed_reader)
    num, den = kernel_sums(ka, kb)
    numer = np.array([float(v) for v in num.image_sums()]) / 4.0
    denom = np.array([float(v) for v in den.image_sums()])
    n_a, n_b = float(ka.pairs().sum()), float(kb.pairs().sum())
    auc_a = float(num.a.place_pos.sum() / 2.0 / n_a)
    auc_b = float(num.b.place_pos.sum() / 2.0 / n_b)
    return _moments(numer, denom, auc_a, auc_b, fixed_reader)
