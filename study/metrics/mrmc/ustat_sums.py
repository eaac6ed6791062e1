"""The U-statistic MRMC AUC sums without the case x case success matrices (O(N log N) memory and time).

The moments of :mod:`~study.metrics.mrmc.ustat_auc` and the patient terms of
:mod:`~study.metrics.mrmc.ustat_patients` are sums over pairs of readings of products of two
success kernels ``s(x, y) = 1`` if ``y > x``, ``1/2`` if ``y = x``, ``0`` otherwise (Gallas 2006;
Gallas et al. 2009). With ``x[r,i,j] = read(r,i) read(r,j) s(neg[r,i], pos[r,j])`` they reduce to:

- **marginals** -- the placement values (DeLong et al. 1988): for each diseased case the
  (weighted) number of non-diseased cases it beats, ties 1/2, and vice versa, by a sort and
  ``searchsorted`` per reader (``O(N log N)``); summed per patient for the patient terms;
- **within-patient sums** -- ``sum`` of ``x[r,i,j]`` over the image pairs of one patient;
- **products of two kernels on the same case pair** (``sum_ij x_a[r,i,j] x_b[s,i,j]``: the
  moments ``M1`` / ``M5``; with patients, over pairs of images of the same patients) -- a
  two-dimensional dominance count: a diseased point ``(pos_a, pos_b)`` against a non-diseased
  point ``(neg_a, neg_b)`` scores ``h(pos_a - neg_a) h(pos_b - neg_b)`` with ``h = 2 s``. It is
  counted on a two-dimensional histogram with cumulative sums when the ratings take few
  distinct values (grades, a 0-100 confidence), and otherwise by a divide-and-conquer
  (merge-sort order) dominance count over the points sorted on the first coordinate,
  ``O(N log^2 N)`` (Bentley 1980).

Every count is an exact integer (``4 s_a s_b`` and ``2 s`` are integers), so the sums equal the
dense ones exactly wherever those are exact in floating point; above ``2**62`` Python integers
take over from ``int64``.

References
----------
Gallas BD (2006). One-shot estimate of MRMC variance: AUC. Acad Radiol 13:353-362.
Gallas BD, Bandos A, Samuelson FW, Wagner RF (2009). Commun Stat Theory Methods 38:2586-2603.
DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Comparing the areas under two or more correlated
receiver operating characteristic curves: a nonparametric approach. Biometrics 44:837-845.
Bentley JL (1980). Multidimensional divide-and-conquer. Commun ACM 23:214-229.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

__all__ = ["HISTOGRAM_CELLS", "AUCSums", "dominance_count", "placements", "within_pairs"]

#: the two-dimensional histogram path is used up to this many cells (distinct values of one coordinate x other)
HISTOGRAM_CELLS = 1 << 22

_I64_SAFE = 1 << 62


def _dot(u: np.ndarray, v: np.ndarray) -> int:
    """Exact ``sum(u * v)`` of two integer arrays (int64 when it cannot overflow, else Python integers)."""
    if u.size == 0:
        return 0
    bound = int(np.abs(u).max()) * int(np.abs(v).max()) * u.size
    if bound < _I64_SAFE:
        return int(np.dot(u.astype(np.int64).ravel(), v.astype(np.int64).ravel()))
    return int(sum(int(a) * int(b) for a, b in zip(u.ravel().tolist(), v.ravel().tolist())))


def _isum(u: np.ndarray) -> int:
    return int(u.astype(np.int64).sum())


def within_pairs(group_a: np.ndarray, group_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs ``(i, j)`` with ``group_a[i] == group_b[j]`` (``sum_g n_a(g) n_b(g)`` of them)."""
    group_a, group_b = np.asarray(group_a, np.int64), np.asarray(group_b, np.int64)
    order_b = np.argsort(group_b, kind="stable")
    sorted_b = group_b[order_b]
    start = np.searchsorted(sorted_b, group_a, side="left")
    count = np.searchsorted(sorted_b, group_a, side="right") - start
    ia = np.repeat(np.arange(len(group_a)), count)
    offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    return ia, order_b[np.repeat(start, count) + offset]


def placements(neg: np.ndarray, pos: np.ndarray, w_neg: np.ndarray, w_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Doubled placement values of one reader: ``2 sum_i w_neg[i] s(neg[i], pos[j])`` per diseased ``j``, and vice versa.

    Returns ``(per_pos, per_neg)`` as int64, already multiplied by the case's own weight
    (DeLong et al. 1988's ``V10`` / ``V01`` numerators, ties counted 1/2, times 2).
    """
    keep_n, keep_p = w_neg > 0, w_pos > 0
    xs, ys = np.sort(neg[keep_n]), np.sort(pos[keep_p])
    per_pos = np.searchsorted(xs, pos, "left") + np.searchsorted(xs, pos, "right")
    per_neg = (2 * len(ys) - np.searchsorted(ys, neg, "left") - np.searchsorted(ys, neg, "right"))
    return per_pos.astype(np.int64) * w_pos, per_neg.astype(np.int64) * w_neg


def _ranks(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    values, inv = np.unique(np.concatenate([p, q]), return_inverse=True)
    return inv[: len(p)], inv[len(p):], len(values)


def _strict_count(p1: np.ndarray, p2: np.ndarray, wp: np.ndarray, q1: np.ndarray, q2: np.ndarray,
                  wq: np.ndarray) -> int:
    """``sum wp wq [p1 > q1][p2 > q2]`` for coordinates where no ``p`` equals a ``q`` (divide and conquer)."""
    n_p, n = len(p1), len(p1) + len(q1)
    x = np.concatenate([p1, q1])
    y = np.concatenate([p2, q2])
    w = np.concatenate([wp, wq]).astype(np.int64)
    is_p = np.arange(n) < n_p
    order = np.argsort(x, kind="stable")
    y, w, is_p = y[order], w[order], is_p[order]
    span = int(y.max() - y.min()) + 2
    y = y - y.min()
    idx = np.arange(n)
    total = 0
    b = 1
    while b < n:
        block = idx // (2 * b)
        left = ((idx // b) & 1) == 0
        q_sel = left & ~is_p
        p_sel = ~left & is_p
        if q_sel.any() and p_sel.any():
            keys = block[q_sel].astype(np.int64) * span + y[q_sel]
            o = np.argsort(keys, kind="stable")
            keys = keys[o]
            cw = np.concatenate([[0], np.cumsum(w[q_sel][o])])
            pk = block[p_sel].astype(np.int64) * span
            hi = np.searchsorted(keys, pk + y[p_sel], "left")
            lo = np.searchsorted(keys, pk, "left")
            total += _dot(cw[hi] - cw[lo], w[p_sel])
        b *= 2
    return total


def dominance_count(p1: np.ndarray, p2: np.ndarray, wp: np.ndarray, q1: np.ndarray, q2: np.ndarray,
                    wq: np.ndarray, *, max_cells: int = HISTOGRAM_CELLS) -> int:
    """``sum_{a,b} wp[a] wq[b] h(p1[a] - q1[b]) h(p2[a] - q2[b])`` with ``h(u) = 2 [u > 0] + [u = 0]``, exactly.

    ``wp``, ``wq`` are non-negative integer weights. A 2-D histogram with cumulative sums
    (``O(N + K1 K2)``) when the distinct values ``K1 x K2`` are at most ``max_cells`` and at most
    ``max(4096, 32 N)``, else up to four strict dominance counts (one per coordinate with ties
    between the two sets of points) by divide and conquer (Bentley 1980), ``O(N log^2 N)``.
    """
    kp, kq = wp > 0, wq > 0
    p1, p2, wp = p1[kp], p2[kp], wp[kp].astype(np.int64)
    q1, q2, wq = q1[kq], q2[kq], wq[kq].astype(np.int64)
    if len(wp) == 0 or len(wq) == 0:
        return 0
    r1p, r1q, k1 = _ranks(p1, q1)
    r2p, r2q, k2 = _ranks(p2, q2)
    if k1 * k2 <= min(max_cells, max(4096, 32 * (len(wp) + len(wq)))):
        hq = np.bincount(r1q * k2 + r2q, weights=wq, minlength=k1 * k2).astype(np.int64).reshape(k1, k2)
        hp = np.bincount(r1p * k2 + r2p, weights=wp, minlength=k1 * k2).astype(np.int64).reshape(k1, k2)
        c = np.cumsum(hq, axis=0)
        g = c.copy()
        g[1:] += c[:-1]  # sum over l of h(k - l) hq[l]: 2 below k, 1 at k
        c = np.cumsum(g, axis=1)
        g = c.copy()
        g[:, 1:] += c[:, :-1]
        return _dot(hp, g)
    # h(u) = [u > 0] + [u >= 0]; on doubled ranks p > q is 2p > 2q + 1 and p >= q is 2p > 2q - 1; without a tie
    # between a p and a q in a coordinate both are the same count (continuous ratings: one count, times 4)
    shifts1 = (1, -1) if np.isin(r1p, r1q).any() else (1,)
    shifts2 = (1, -1) if np.isin(r2p, r2q).any() else (1,)
    total = 0
    for s1 in shifts1:
        for s2 in shifts2:
            total += _strict_count(2 * r1p, 2 * r2p, wp, 2 * r1q + s1, 2 * r2q + s2, wq)
    return total * (3 - len(shifts1)) * (3 - len(shifts2))


@dataclass(frozen=True)
class _Side:
    """One modality's ratings and reading masks (int weights), split by truth: ``(readers, cases)``."""

    neg: np.ndarray
    pos: np.ndarray
    w_neg: np.ndarray
    w_pos: np.ndarray
    place_pos: np.ndarray = field(init=False)
    place_neg: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        pp, pn = zip(*(placements(self.neg[r], self.pos[r], self.w_neg[r], self.w_pos[r])
                       for r in range(self.neg.shape[0])))
        object.__setattr__(self, "place_pos", np.array(pp, dtype=np.int64).reshape(self.pos.shape))
        object.__setattr__(self, "place_neg", np.array(pn, dtype=np.int64).reshape(self.neg.shape))


@dataclass
class AUCSums:
    """Doubled / quadrupled integer sums of two modalities' AUC kernels (``A``, ``B``) on the same readers and cases.

    Parameters
    ----------
    neg_a, pos_a, read_neg_a, read_pos_a, neg_b, pos_b, read_neg_b, read_pos_b : ndarray
        Ratings and reading masks, shape ``(readers, non-diseased)`` / ``(readers, diseased)``.
    design : bool
        Count the design ``d`` (every kernel 1) instead of the successes: the ratings are then
        replaced by a constant, so every kernel is a tie (``h = 1``) and the quadrupled sums of
        successes are the sums of the design.
    symmetric : bool
        ``A`` and ``B`` are the same kernel: the reader x reader matrices of dominance counts are
        symmetric, and only their upper triangles are counted.
    """

    neg_a: np.ndarray
    pos_a: np.ndarray
    read_neg_a: np.ndarray
    read_pos_a: np.ndarray
    neg_b: np.ndarray
    pos_b: np.ndarray
    read_neg_b: np.ndarray
    read_pos_b: np.ndarray
    design: bool = False
    symmetric: bool = False
    _matrices: dict[str, list[list[int]]] = field(default_factory=dict, repr=False)
    _marginals: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    _pairs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    _patients: tuple[np.ndarray, np.ndarray, int] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        def side(neg: np.ndarray, pos: np.ndarray, rn: np.ndarray, rp: np.ndarray) -> _Side:
            if self.design:
                neg, pos = np.zeros(neg.shape), np.zeros(pos.shape)
            return _Side(np.asarray(neg, float), np.asarray(pos, float), np.asarray(rn).astype(np.int64),
                         np.asarray(rp).astype(np.int64))
        self.a = side(self.neg_a, self.pos_a, self.read_neg_a, self.read_pos_a)
        self.b = side(self.neg_b, self.pos_b, self.read_neg_b, self.read_pos_b)

    # -- image level (iMRMC's eight biased sums) -------------------------------------------------------
    def _pair_matrix(self, key: str, fn: Callable[[int, int], int], readers: int) -> list[list[int]]:
        if key not in self._matrices:
            if self.symmetric:  # A = B: every pair matrix is symmetric (swap the two terms of each pair)
                upper = {(r, s): fn(r, s) for r in range(readers) for s in range(r, readers)}
                self._matrices[key] = [[upper[min(r, s), max(r, s)] for s in range(readers)] for r in range(readers)]
            else:
                self._matrices[key] = [[fn(r, s) for s in range(readers)] for r in range(readers)]
        return self._matrices[key]

    def _same_free(self, matrix: list[list[int]]) -> tuple[int, int]:
        return sum(matrix[r][r] for r in range(len(matrix))), sum(sum(row) for row in matrix)

    def _d1_image(self, r: int, s: int) -> int:
        a, b = self.a, self.b
        return dominance_count(a.pos[r], b.pos[s], a.w_pos[r] * b.w_pos[s], a.neg[r], b.neg[s], a.w_neg[r] * b.w_neg[s])

    def _marginal(self, u: np.ndarray, v: np.ndarray) -> tuple[int, int]:
        same = sum(_dot(u[r], v[r]) for r in range(u.shape[0]))
        return same, _dot(u.sum(axis=0), v.sum(axis=0))

    def image_sums(self) -> list[int]:
        """The eight biased sums ``sum x_a x_b`` over pairs of readings sharing (at least) reader and both cases,
        reader and the diseased case, reader and the non-diseased case, the reader, both cases, the diseased
        case, the non-diseased case, nothing (iMRMC ``bnumer``), times ``4`` unless ``design``."""
        readers = self.a.neg.shape[0]
        m1, m5 = self._same_free(self._pair_matrix("d1_image", self._d1_image, readers))
        m2, m6 = self._marginal(self.a.place_pos, self.b.place_pos)
        m3, m7 = self._marginal(self.a.place_neg, self.b.place_neg)
        ta = [_isum(self.a.place_pos[r]) for r in range(readers)]
        tb = [_isum(self.b.place_pos[r]) for r in range(readers)]
        m4 = sum(x * y for x, y in zip(ta, tb))
        m8 = sum(ta) * sum(tb)
        return [m1, m2, m3, m4, m5, m6, m7, m8]

    # -- patient level (study.metrics.mrmc.ustat_patients) ------------------------------------------------
    def patient_classes(self, neg_patient: np.ndarray, pos_patient: np.ndarray, n_patients: int,
                        fixed_reader: bool = False) -> list[int]:
        """Sums over pairs of (reader, image pair) terms sharing nothing, the reader only, a patient only, both.

        The same four classes as ``ustat_patients._classes`` on the patient-level arrays, each sum
        over pairs sharing no patient taken by inclusion-exclusion over the equalities between the
        two terms' patients (``a0, a1`` the non-diseased and diseased patient of the first term,
        ``b0, b1`` of the second), times ``4`` unless ``design``.
        """
        self._patients = (np.asarray(neg_patient, np.int64), np.asarray(pos_patient, np.int64), int(n_patients))
        readers = self.a.neg.shape[0]
        ta = [_isum(self.a.place_pos[r]) for r in range(readers)]
        tb = [_isum(self.b.place_pos[r]) for r in range(readers)]
        total_free = sum(ta) * sum(tb)
        none_free = self._no_shared_patient(same_reader=False)
        if fixed_reader:
            return [none_free, 0, total_free - none_free, 0]
        total_same = sum(x * y for x, y in zip(ta, tb))
        none_same = self._no_shared_patient(same_reader=True)
        both = total_same - none_same
        return [none_free - none_same, none_same, total_free - none_free - both, both]

    def _by_patient(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Per reader x patient: ``R`` (non-diseased marginal), ``C`` (diseased marginal), ``D`` (within patient)."""
        if name not in self._marginals:
            assert self._patients is not None
            neg_p, pos_p, n_p = self._patients
            out = []
            for sd in (self.a, self.b):
                if name == "R":
                    rows = [np.bincount(neg_p, weights=sd.place_neg[r], minlength=n_p) for r in range(sd.neg.shape[0])]
                elif name == "C":
                    rows = [np.bincount(pos_p, weights=sd.place_pos[r], minlength=n_p) for r in range(sd.neg.shape[0])]
                else:
                    i, j = within_pairs(neg_p, pos_p)
                    rows = []
                    for r in range(sd.neg.shape[0]):
                        diff = sd.pos[r, j] - sd.neg[r, i]
                        h = (diff > 0).astype(np.int64) + (diff >= 0)
                        rows.append(np.bincount(neg_p[i], weights=h * sd.w_neg[r, i] * sd.w_pos[r, j], minlength=n_p))
                out.append(np.array(rows, dtype=np.float64).reshape(sd.neg.shape[0], n_p).round().astype(np.int64))
            self._marginals[name] = (out[0], out[1])
        return self._marginals[name]

    def _d1_patient(self, r: int, s: int) -> int:
        """``sum_{p,q} X_a[r,p,q] X_b[s,p,q]``: image pairs whose non-diseased images share a patient and so do the diseased."""
        a, b = self.a, self.b
        ni, ni2, pj, pj2 = self._pairs["d1"]
        return dominance_count(a.pos[r, pj], b.pos[s, pj2], a.w_pos[r, pj] * b.w_pos[s, pj2],
                               a.neg[r, ni], b.neg[s, ni2], a.w_neg[r, ni] * b.w_neg[s, ni2])

    def _d2_patient(self, r: int, s: int) -> int:
        """``sum_{p,q} X_a[r,p,q] X_b[s,q,p]``: the first term's non-diseased image shares a patient with the second's
        diseased one, and vice versa; kernel ``h(pos_a - neg_a) h(pos_b - neg_b)`` as a dominance of
        ``(pos_a, -neg_b)`` over ``(neg_a, -pos_b)``."""
        a, b = self.a, self.b
        ui, uj, vj, vi = self._pairs["d2"]
        return dominance_count(a.pos[r, vj], -b.neg[s, vi], a.w_pos[r, vj] * b.w_neg[s, vi],
                               a.neg[r, ui], -b.pos[s, uj], a.w_neg[r, ui] * b.w_pos[s, uj])

    def _pattern(self, labels: tuple[int, ...], same_reader: bool) -> int:
        """The sum over patient indices of ``X_a[a0, a1] X_b[b0, b1]`` with the equalities ``labels`` (canonical)."""
        readers = self.a.neg.shape[0]

        if labels == (0, 1, 2, 3):
            ta = [_isum(self.a.place_pos[r]) for r in range(readers)]
            tb = [_isum(self.b.place_pos[r]) for r in range(readers)]
            return sum(x * y for x, y in zip(ta, tb)) if same_reader else sum(ta) * sum(tb)
        if labels in ((0, 1, 0, 1), (0, 1, 1, 0)):
            assert self._patients is not None
            neg_p, pos_p, _ = self._patients
            if labels == (0, 1, 0, 1):
                if "d1" not in self._pairs:
                    self._pairs["d1"] = (*within_pairs(neg_p, neg_p), *within_pairs(pos_p, pos_p))
                matrix = self._pair_matrix("d1_patient", self._d1_patient, readers)
            else:
                if "d2" not in self._pairs:
                    self._pairs["d2"] = (*within_pairs(neg_p, pos_p), *within_pairs(pos_p, neg_p))
                matrix = self._pair_matrix("d2_patient", self._d2_patient, readers)
            return self._same_free(matrix)[0 if same_reader else 1]
        if labels not in _MARGINAL_PATTERNS:
            raise ValueError(f"unexpected patient equality pattern {labels}")
        # the rest pair marginals: which of X_a's indices are free (summed) decides R, C or D
        a_kind = "D" if labels[0] == labels[1] else ("R" if labels[0] in labels[2:] and labels[1] not in labels[2:]
                                                      else "C")
        b_kind = "D" if labels[2] == labels[3] else ("R" if labels[2] in labels[:2] and labels[3] not in labels[:2]
                                                      else "C")
        u = self._by_patient(a_kind)[0]
        v = self._by_patient(b_kind)[1]
        same, free = self._marginal(u, v)
        return same if same_reader else free

    def _no_shared_patient(self, *, same_reader: bool) -> int:
        slots_a, slots_b = (0, 1), (2, 3)
        events = tuple((x, y) for x in slots_a for y in slots_b)
        total = 0
        for size in range(len(events) + 1):
            for subset in combinations(events, size):
                total += (-1) ** size * self._pattern(_canonical(subset), same_reader)
        return total


#: the equality patterns of ``(a0, a1, b0, b1)`` that reduce to a product of per-patient marginals
_MARGINAL_PATTERNS = {(0, 1, 0, 2), (0, 1, 2, 1), (0, 1, 2, 0), (0, 1, 1, 2), (0, 1, 0, 0), (0, 1, 1, 1),
                      (0, 0, 0, 1), (0, 0, 1, 0), (0, 0, 0, 0)}


def _canonical(equalities: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    parent = list(range(4))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for x, y in equalities:
        parent[find(x)] = find(y)
    roots = [find(i) for i in range(4)]
    relabel: dict[int, int] = {}
    return tuple(relabel.setdefault(r, len(relabel)) for r in roots)
