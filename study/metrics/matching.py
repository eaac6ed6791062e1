"""Greedy one-to-one matching of detections to ground-truth lesions, fully vectorised.

The rule is COCO's (Lin et al. 2014; ``pycocotools.cocoeval.COCOeval.evaluateImg``): within
one group (an image, or an image and a class), detections are taken in descending score
(ties keep their input order) and each is matched to the still unmatched ground truth of
highest similarity at or above the threshold (IoU ties go to the later ground truth, as in
pycocotools). A detection that finds no ordinary ground truth but overlaps a *crowd* region
(``iscrowd=1``; overlap = intersection / detection area) is *ignored*: neither true nor
false positive. Crowd regions can absorb any number of detections.

Because the rule is greedy in score order, the true/false-positive status of every
detection with score >= t does not depend on detections below t: one matching pass gives
the operating point at every score threshold (precision-recall and FROC curves, counts).

Implementation: candidate pairs (same group, similarity >= threshold) are built with array
arithmetic; the greedy rule is then resolved in "waves": a detection is decided as soon as
it is the highest-ranked undecided claimant of every ground truth it could take. Such
detections cannot interact, so each wave is one vectorised step; the number of waves is the
longest chain of detections competing for shared lesions (a handful in practice).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: pycocotools compares IoU against ``min(t, 1 - 1e-10)``
_COCO_IOU_CAP = 1 - 1e-10


@dataclass(frozen=True)
class MatchResult:
    """Outcome of :func:`greedy_match`, arrays aligned with the inputs.

    Attributes
    ----------
    tp : bool array (n_det,)
        Detection matched an ordinary ground truth.
    ignored : bool array (n_det,)
        Detection unmatched but covering a crowd region (neither TP nor FP).
    matched_gt : int array (n_det,)
        Index of the matched ground truth, -1 if none.
    similarity : float array (n_det,)
        Similarity (IoU, or minus the centre distance) of the match; NaN if none.
    gt_matched_det : int array (n_gt,)
        Index of the detection that took each ground truth, -1 if none (crowd: always -1).
    """

    tp: np.ndarray
    ignored: np.ndarray
    matched_gt: np.ndarray
    similarity: np.ndarray
    gt_matched_det: np.ndarray

    @property
    def fp(self) -> np.ndarray:
        return ~self.tp & ~self.ignored


def score_rank(scores: np.ndarray) -> np.ndarray:
    """Rank of each detection in descending score, ties in input order (mergesort, as COCO)."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="mergesort")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


# --------------------------------------------------------------------------- pairs
def group_pairs(gt_group: np.ndarray, dt_group: np.ndarray, *, chunk: int = 4_000_000):
    """Yield ``(dt_index, gt_index)`` arrays of every same-group pair, in chunks.

    Groups are integer keys (e.g. image index, or ``image * n_classes + class``).
    """
    gt_group = np.asarray(gt_group, dtype=np.int64)
    dt_group = np.asarray(dt_group, dtype=np.int64)
    g_order = np.argsort(gt_group, kind="stable")
    d_order = np.argsort(dt_group, kind="stable")
    keys = np.union1d(gt_group, dt_group)
    g_lo = np.searchsorted(gt_group[g_order], keys, "left")
    g_hi = np.searchsorted(gt_group[g_order], keys, "right")
    d_lo = np.searchsorted(dt_group[d_order], keys, "left")
    d_hi = np.searchsorted(dt_group[d_order], keys, "right")
    n_g, n_d = g_hi - g_lo, d_hi - d_lo
    keep = (n_g > 0) & (n_d > 0)
    g_lo, n_g, d_lo, n_d = g_lo[keep], n_g[keep], d_lo[keep], n_d[keep]
    sizes = n_g * n_d
    # split groups into chunks of at most ~chunk pairs
    cum = np.cumsum(sizes)
    starts = [0]
    while starts[-1] < len(sizes):
        base = cum[starts[-1] - 1] if starts[-1] > 0 else 0
        nxt = int(np.searchsorted(cum, base + chunk, "right"))
        starts.append(max(nxt, starts[-1] + 1))
    for a, b in zip(starts[:-1], starts[1:]):
        s = sizes[a:b]
        total = int(s.sum())
        if total == 0:
            continue
        grp = np.repeat(np.arange(b - a), s)
        within = np.arange(total) - np.repeat(np.cumsum(s) - s, s)
        ng = n_g[a:b][grp]
        d_pos = d_lo[a:b][grp] + within // ng
        g_pos = g_lo[a:b][grp] + within % ng
        yield d_order[d_pos], g_order[g_pos]


def box_iou_pairs(dt_boxes: np.ndarray, gt_boxes: np.ndarray, d: np.ndarray, g: np.ndarray,
                  gt_crowd: np.ndarray | None = None) -> np.ndarray:
    """IoU of boxes ``[x, y, w, h]`` for the pairs ``(d[i], g[i])``, as ``pycocotools.mask.iou``.

    For crowd ground truth the overlap is intersection / detection area (COCO).
    """
    db, gb = dt_boxes[d], gt_boxes[g]
    iw = np.minimum(db[:, 0] + db[:, 2], gb[:, 0] + gb[:, 2]) - np.maximum(db[:, 0], gb[:, 0])
    ih = np.minimum(db[:, 1] + db[:, 3], gb[:, 1] + gb[:, 3]) - np.maximum(db[:, 1], gb[:, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    da = db[:, 2] * db[:, 3]
    union = da + gb[:, 2] * gb[:, 3] - inter
    if gt_crowd is not None:
        union = np.where(gt_crowd[g], da, union)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def center_distance_pairs(dt_boxes: np.ndarray, gt_boxes: np.ndarray, d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Euclidean distance between box centres for the pairs ``(d[i], g[i])``."""
    dc = dt_boxes[d, :2] + dt_boxes[d, 2:] / 2
    gc = gt_boxes[g, :2] + gt_boxes[g, 2:] / 2
    return np.hypot(dc[:, 0] - gc[:, 0], dc[:, 1] - gc[:, 1])


# --------------------------------------------------------------------------- greedy
def greedy_core(n_det: int, n_gt: int, d: np.ndarray, g: np.ndarray, sim: np.ndarray, rank: np.ndarray, *,
                reusable: np.ndarray | None = None, presorted: bool = False):
    """The greedy rule on candidate pairs, in vectorised waves.

    ``reusable`` (per ground truth) marks regions any number of detections may take (COCO
    crowd). Pairs may be given already sorted by ``(g, rank[d])`` (``presorted=True``).
    Returns ``(matched_gt, similarity, gt_matched_det)``.
    """
    matched_gt = np.full(n_det, -1, np.int64)
    similarity = np.full(n_det, np.nan)
    gt_matched_det = np.full(n_gt, -1, np.int64)
    if not len(d):
        return matched_gt, similarity, gt_matched_det
    if not presorted:
        o = np.lexsort((rank[d], g))
        d, g, sim = d[o], g[o], sim[o]
    reuse = np.zeros(n_gt, bool) if reusable is None else np.asarray(reusable, bool)
    any_reuse = bool(reuse.any())
    best_s = np.full(n_det, -np.inf)
    best_g = np.full(n_det, -1, np.int64)
    while len(d):
        r = rank[d]
        first = np.empty(len(d), bool)
        first[0] = True
        np.not_equal(g[1:], g[:-1], out=first[1:])
        first_rank = r[first][np.cumsum(first) - 1]
        contested = first_rank != r
        if any_reuse:
            contested &= ~reuse[g]
        blocked = np.zeros(n_det, bool)
        blocked[d[contested]] = True
        ready = ~blocked[d]
        rd, rg, rs = d[ready], g[ready], sim[ready]
        # per ready detection: highest similarity; ties go to the later (larger-index) gt
        best_s[rd] = -np.inf
        np.maximum.at(best_s, rd, rs)
        eq = rs == best_s[rd]
        best_g[rd] = -1
        np.maximum.at(best_g, rd[eq], rg[eq])
        win = eq & (rg == best_g[rd])  # exactly one pair per ready detection
        wd, wg = rd[win], rg[win]
        matched_gt[wd] = wg
        similarity[wd] = best_s[wd]
        own = ~reuse[wg] if any_reuse else slice(None)
        gt_matched_det[wg[own]] = wd[own]
        decided = np.zeros(n_det, bool)
        decided[wd] = True
        taken = gt_matched_det >= 0
        keep = ~decided[d] & ~taken[g]
        d, g, sim = d[keep], g[keep], sim[keep]
    return matched_gt, similarity, gt_matched_det


def greedy_from_pairs(n_det: int, n_gt: int, d: np.ndarray, g: np.ndarray, sim: np.ndarray,
                      rank: np.ndarray, *, gt_crowd: np.ndarray | None = None,
                      gt_ignore: np.ndarray | None = None) -> MatchResult:
    """Resolve COCO's greedy matching from candidate pairs that already pass the threshold.

    Parameters
    ----------
    n_det, n_gt : int
        Numbers of detections and ground truths.
    d, g, sim : arrays
        Candidate pairs (detection index, ground-truth index, similarity; higher = better).
        Pairs must only join a detection and a ground truth of the same group.
    rank : int array (n_det,)
        Processing order (0 first); only its order within a group matters.
    gt_crowd : bool array (n_gt,), optional
        Crowd regions: taken only by detections left without an ordinary match, any number
        of times.
    gt_ignore : bool array (n_gt,), optional
        Ground truth to ignore (COCO: crowd, or area outside the evaluated range; includes
        the crowd regions). As in pycocotools, a detection prefers an ordinary ground truth;
        one that finds none may take an ignored one (crowd: shared; others: once) and is
        then ignored itself.
    """
    d = np.asarray(d, dtype=np.int64)
    g = np.asarray(g, dtype=np.int64)
    sim = np.asarray(sim, dtype=float)
    rank = np.asarray(rank, dtype=np.int64)
    crowd = np.zeros(n_gt, bool) if gt_crowd is None else np.asarray(gt_crowd, bool)
    ign = crowd if gt_ignore is None else (np.asarray(gt_ignore, bool) | crowd)
    o = np.lexsort((rank[d], g))
    d, g, sim = d[o], g[o], sim[o]
    stage2 = ign[g]
    m1, s1, gm1 = greedy_core(n_det, n_gt, d[~stage2], g[~stage2], sim[~stage2], rank, presorted=True)
    tp = m1 >= 0
    ignored = np.zeros(n_det, bool)
    if stage2.any():
        d2, g2, s2 = d[stage2], g[stage2], sim[stage2]
        free = ~tp[d2]
        m2, s2b, _ = greedy_core(n_det, n_gt, d2[free], g2[free], s2[free], rank, reusable=crowd, presorted=True)
        ignored = m2 >= 0
        s1 = np.where(ignored, s2b, s1)
    return MatchResult(tp=tp, ignored=ignored, matched_gt=m1, similarity=s1, gt_matched_det=gm1)


def sweep_pairs(gt_group, gt_boxes, dt_group, dt_boxes, *, reach: float = 0.0, chunk: int = 4_000_000):
    """Yield ``(dt_index, gt_index)`` chunks of same-group pairs whose x-extents can interact.

    A pair is produced when the ground truth starts before the detection ends (+ ``reach``)
    and could end after it starts (- ``reach``), judged with the widest ground truth of the
    group: a superset of the pairs with positive overlap (``reach=0``) or with centres
    within ``reach`` pixels. A sort + ``searchsorted`` sweep, so sparse images do not pay
    for every GT x detection pair.
    """
    gt_group = np.asarray(gt_group, dtype=np.int64)
    dt_group = np.asarray(dt_group, dtype=np.int64)
    gt_boxes = np.asarray(gt_boxes, float).reshape(-1, 4)
    dt_boxes = np.asarray(dt_boxes, float).reshape(-1, 4)
    if not len(gt_group) or not len(dt_group):
        return
    # per-group widest ground truth
    ug, gi = np.unique(gt_group, return_inverse=True)
    maxw = np.zeros(len(ug))
    np.maximum.at(maxw, gi, gt_boxes[:, 2])
    pos = np.searchsorted(ug, dt_group)
    pos_c = np.minimum(pos, len(ug) - 1)
    has = ug[pos_c] == dt_group
    lo_x = np.min(np.r_[gt_boxes[:, 0], dt_boxes[:, 0]]) - 1.0
    hi_x = np.max(np.r_[gt_boxes[:, 0] + gt_boxes[:, 2], dt_boxes[:, 0] + dt_boxes[:, 2]])
    span = float(hi_x - lo_x + 2 * reach + maxw.max() + 2.0)
    # keys: group rank * span + x; exact in float64 for any realistic sizes
    gkey = gi * span + (gt_boxes[:, 0] - lo_x)
    g_order = np.argsort(gkey, kind="stable")
    gkey_sorted = gkey[g_order]
    base = pos_c * span - lo_x
    d_x0, d_x1 = dt_boxes[:, 0], dt_boxes[:, 0] + dt_boxes[:, 2]
    tol = 1e-6 * (1 + span)
    lo = np.searchsorted(gkey_sorted, base + d_x0 - reach - maxw[pos_c] - tol, "left")
    hi = np.searchsorted(gkey_sorted, base + d_x1 + reach + tol, "right")
    # stay inside the group
    g_lo = np.searchsorted(gkey_sorted, pos_c * span - 0.5, "left")
    g_hi = np.searchsorted(gkey_sorted, (pos_c + 1) * span - 0.5, "left")
    lo = np.maximum(lo, g_lo)
    hi = np.minimum(hi, g_hi)
    cnt = np.where(has, np.maximum(hi - lo, 0), 0)
    dets = np.flatnonzero(cnt)
    cnt, lo = cnt[dets], lo[dets]
    cum = np.cumsum(cnt)
    start = 0
    while start < len(dets):
        base_c = cum[start - 1] if start else 0
        stop = max(int(np.searchsorted(cum, base_c + chunk, "right")), start + 1)
        c = cnt[start:stop]
        total = int(c.sum())
        rep = np.repeat(np.arange(start, stop), c)
        within = np.arange(total) - np.repeat(np.cumsum(c) - c, c)
        yield dets[rep], g_order[lo[rep] + within]
        start = stop


def candidate_pairs(gt_group, gt_boxes, dt_group, dt_boxes, *, threshold: float = 0.5, gt_crowd=None,
                    rule: str = "iou", extra_pairs=None):
    """Same-group pairs ``(d, g, similarity)`` that pass the matching threshold.

    See :func:`greedy_match` for the parameters. Similarity is the IoU (``rule="iou"``) or
    minus the centre distance (``rule="center_distance"``), so higher is always better.
    """
    gt_boxes = np.asarray(gt_boxes, float).reshape(-1, 4)
    dt_boxes = np.asarray(dt_boxes, float).reshape(-1, 4)
    crowd = np.zeros(len(gt_boxes), bool) if gt_crowd is None else np.asarray(gt_crowd, bool)
    if rule not in ("iou", "center_distance"):
        raise ValueError(f"unknown matching rule {rule!r}")
    reach = float(threshold) if rule == "center_distance" else 0.0
    ds, gs, ss = [], [], []
    for d, g in sweep_pairs(gt_group, gt_boxes, dt_group, dt_boxes, reach=reach):
        if rule == "iou":
            sim = box_iou_pairs(dt_boxes, gt_boxes, d, g, crowd)
            if extra_pairs is not None:
                alt, use = extra_pairs(d, g)
                sim = np.where(use, alt, sim)
            ok = sim >= min(threshold, _COCO_IOU_CAP)
        else:
            dist = center_distance_pairs(dt_boxes, gt_boxes, d, g)
            ok = dist <= threshold
            sim = -dist
        ds.append(d[ok]); gs.append(g[ok]); ss.append(sim[ok])
    d = np.concatenate(ds) if ds else np.zeros(0, np.int64)
    g = np.concatenate(gs) if gs else np.zeros(0, np.int64)
    s = np.concatenate(ss) if ss else np.zeros(0)
    return d, g, s


def greedy_match(gt_group, gt_boxes, dt_group, dt_boxes, dt_scores, *, threshold: float = 0.5,
                 gt_crowd=None, rule: str = "iou", extra_pairs=None) -> MatchResult:
    """Match detections to ground truth per group by COCO's greedy rule.

    Parameters
    ----------
    gt_group, dt_group : int arrays
        Group key of each ground truth / detection (image, or image x class).
    gt_boxes, dt_boxes : float arrays (n, 4)
        Boxes ``[x, y, w, h]`` in pixels.
    dt_scores : float array
        Detection scores (higher = more confident).
    threshold : float
        ``rule="iou"``: minimum IoU (compared as ``iou >= min(t, 1 - 1e-10)``, as pycocotools);
        ``rule="center_distance"``: maximum distance between box centres in pixels
        (the nearest unmatched lesion within the distance is taken).
    gt_crowd : bool array, optional
        COCO crowd regions (``iscrowd``), see the module docstring.
    extra_pairs : callable, optional
        ``f(d, g) -> (similarity, use_mask)``: overrides the box IoU for some pairs
        (used for mask IoU of polygon classes).

    Returns
    -------
    MatchResult

    References
    ----------
    Lin T-Y et al. (2014), Microsoft COCO: Common Objects in Context, ECCV; the matching loop
    of ``pycocotools.cocoeval.COCOeval.evaluateImg``.
    """
    n_gt = len(np.asarray(gt_boxes).reshape(-1, 4))
    n_det = len(np.asarray(dt_boxes).reshape(-1, 4))
    d, g, s = candidate_pairs(gt_group, gt_boxes, dt_group, dt_boxes, threshold=threshold, gt_crowd=gt_crowd,
                              rule=rule, extra_pairs=extra_pairs)
    return greedy_from_pairs(n_det, n_gt, d, g, s, score_rank(dt_scores), gt_crowd=gt_crowd)
