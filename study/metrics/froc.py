"""Free-response ROC (FROC): lesion sensitivity against mean false positives per image.

Definitions (Chakraborty 1989; Bunch et al. 1978; the readout of Setio et al. 2017, LUNA16):

- an operating point is a score threshold ``s``: detections with score >= s are kept;
  ``sensitivity(s)`` = true-positive lesions / all lesions, ``fppi(s)`` = false-positive
  detections / images. Points exist only between distinct scores (tied detections are kept
  or dropped together).
- the sensitivity *at* a false-positive rate ``f`` is that of the most lenient operating
  point with ``fppi <= f`` (a step readout, never interpolated upward; 0 when even the
  strictest non-empty point exceeds ``f``, i.e. the empty point). The FROC *average* is the
  mean over the requested rates (LUNA16's competition performance metric uses 1/8 ... 8).
- confidence intervals: percentile bootstrap resampling *patients* (all images of a drawn
  patient enter with their lesions and false positives), so the clustering of lesions
  within a patient is respected (Davison & Hinkley 1997, section 3.8). In each replicate
  the whole curve is recomputed and read out exactly at every rate.

Vectorisation: a replicate's curve is ``cumsum`` over detections (sorted by score) of the
replicate's weight of the detection's patient. Only a window of positions around where the
replicate's curve crosses ``f`` is needed: the sum before the window is one matrix-vector
product over patients; the window is a (replicates x window) gather + cumsum. Replicates
whose crossing falls outside the window are redone with a wider one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from study.metrics.bootstrap import bootstrap_estimate
from study.results.detection import FrocCurve, FrocPoint, FrocResult

DEFAULT_FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
#: how the detection evaluation matches detections to lesions for the FROC
ANY_LESION_MATCHING = "class-agnostic (any lesion)"
READOUT = ("sensitivity of the most lenient operating point with mean FP per image <= rate (step, "
           "no interpolation); average = mean over the rates")
_EPS = 1e-9


@dataclass
class FrocData:
    """Detections sorted by descending score with their status and patient index."""

    score: np.ndarray
    tp: np.ndarray            # float 0/1
    fp: np.ndarray            # float 0/1
    patient: np.ndarray       # int
    n_gt_patient: np.ndarray  # lesions per patient
    n_img_patient: np.ndarray  # images per patient

    @classmethod
    def build(cls, score, tp, fp, patient, *, n_gt_patient, n_img_patient) -> FrocData:
        score = np.asarray(score, float)
        o = np.argsort(-score, kind="mergesort")
        return cls(score[o], np.asarray(tp, float)[o], np.asarray(fp, float)[o], np.asarray(patient, np.int64)[o],
                   np.asarray(n_gt_patient, float), np.asarray(n_img_patient, float))

    @property
    def valid_cut(self) -> np.ndarray:
        """``valid[k]``: keeping the first ``k`` detections is an operating point (k = 0..N)."""
        n = len(self.score)
        v = np.ones(n + 1, bool)
        if n > 1:
            v[1:n] = self.score[1:] != self.score[:-1]
        return v


def froc_curve(data: FrocData) -> dict:
    """The observed FROC curve at every operating point (including the empty one).

    Returns ``{"threshold", "fp_per_image", "sensitivity"}`` arrays (threshold = lowest
    kept score; ``inf`` for the empty point).
    """
    valid = data.valid_cut
    fpc = np.r_[0.0, np.cumsum(data.fp)]
    tpc = np.r_[0.0, np.cumsum(data.tp)]
    n_img = data.n_img_patient.sum()
    n_gt = data.n_gt_patient.sum()
    thr = np.r_[np.inf, data.score]
    k = np.flatnonzero(valid)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"threshold": thr[k], "fp_per_image": fpc[k] / n_img, "sensitivity": tpc[k] / n_gt}


def _last_valid_at_or_below(valid: np.ndarray) -> np.ndarray:
    idx = np.where(valid, np.arange(len(valid)), 0)
    return np.maximum.accumulate(idx)


def sensitivity_at(data: FrocData, fp_rates) -> np.ndarray:
    """Observed sensitivity at each false-positive rate (step readout, see module docstring)."""
    fpc = np.r_[0.0, np.cumsum(data.fp)]
    tpc = np.r_[0.0, np.cumsum(data.tp)]
    prev = _last_valid_at_or_below(data.valid_cut)
    n_img = data.n_img_patient.sum()
    n_gt = data.n_gt_patient.sum()
    out = []
    for f in fp_rates:
        k = int(np.searchsorted(fpc, f * n_img + _EPS, "right")) - 1
        out.append(tpc[prev[k]] / n_gt if n_gt > 0 else np.nan)
    return np.array(out, float)


def _window_sums(data: FrocData, wt: np.ndarray, a: int, c: int, pf: np.ndarray, pt: np.ndarray):
    """Weighted cumulative FP and TP counts at cut positions a..c for the replicate rows ``wt``."""
    g = wt[:, data.patient[a:c]]
    cf = np.empty((wt.shape[0], c - a + 1))
    ct = np.empty((wt.shape[0], c - a + 1))
    cf[:, 0] = wt @ pf
    ct[:, 0] = wt @ pt
    np.cumsum(g * data.fp[a:c].astype(np.float32), axis=1, out=cf[:, 1:])
    np.cumsum(g * data.tp[a:c].astype(np.float32), axis=1, out=ct[:, 1:])
    cf[:, 1:] += cf[:, :1]
    ct[:, 1:] += ct[:, :1]
    return cf, ct


def _readout(data: FrocData, w: np.ndarray, fp_rates, fpc: np.ndarray, valid: np.ndarray, *,
             rows_per_window: int = 32, margin: int = 128) -> np.ndarray:
    """Sensitivity at each rate for each replicate (row) of the patient-weight matrix ``w``.

    For each rate, the replicate's false-positive budget is mapped onto the observed curve to
    predict where its own curve crosses the budget; replicates are sorted by that prediction
    and handled ``rows_per_window`` at a time with a window of cut positions around their
    predictions. The readout inside a window is exact; a replicate whose crossing is not
    bracketed by its window is redone with a wider one.
    """
    n = len(data.score)
    b, n_pat = w.shape
    n_img = w @ data.n_img_patient.astype(np.float32)
    n_gt = w @ data.n_gt_patient.astype(np.float32)
    out = np.full((b, len(fp_rates)), np.nan)
    n_img_obs = data.n_img_patient.sum()
    for j, f in enumerate(fp_rates):
        lim = f * n_img.astype(float) + _EPS
        k_obs = int(np.searchsorted(fpc, f * n_img_obs + _EPS, "right")) - 1
        fp_before = np.bincount(data.patient[:k_obs], weights=data.fp[:k_obs], minlength=n_pat)
        delta = lim - w @ fp_before.astype(np.float32)
        pred = np.clip(np.searchsorted(fpc, fpc[k_obs] + delta, "right") - 1, 0, n)
        order = np.argsort(pred, kind="stable")
        pos = 0
        pf = np.zeros(n_pat, np.float32)
        pt = np.zeros(n_pat, np.float32)
        for s in range(0, b, rows_per_window):
            todo = order[s:s + rows_per_window]
            a = max(int(pred[todo].min()) - margin, 0)
            c = min(int(pred[todo].max()) + margin, n)
            if a >= pos:  # advance the running prefix counts to position a
                pf += np.bincount(data.patient[pos:a], weights=data.fp[pos:a], minlength=n_pat).astype(np.float32)
                pt += np.bincount(data.patient[pos:a], weights=data.tp[pos:a], minlength=n_pat).astype(np.float32)
                pos = a
                pfa, pta = pf, pt
            else:
                pfa = np.bincount(data.patient[:a], weights=data.fp[:a], minlength=n_pat).astype(np.float32)
                pta = np.bincount(data.patient[:a], weights=data.tp[:a], minlength=n_pat).astype(np.float32)
            while len(todo):
                cf, ct = _window_sums(data, w[todo], a, c, pfa, pta)
                ok = (cf <= lim[todo, None]) & valid[None, a:c + 1]
                has = ok.any(axis=1)
                last = ok.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)
                done = has & ((cf[:, -1] > lim[todo]) | (c == n))
                rows = todo[done]
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[rows, j] = ct[done, last[done]] / n_gt[rows]
                todo = todo[~done]
                if len(todo):  # widen (rare); the full range always resolves
                    width = c - a
                    a = max(a - 2 * width - margin, 0)
                    c = min(c + 2 * width + margin, n)
                    pfa = np.bincount(data.patient[:a], weights=data.fp[:a], minlength=n_pat).astype(np.float32)
                    pta = np.bincount(data.patient[:a], weights=data.tp[:a], minlength=n_pat).astype(np.float32)
    out[n_gt <= 0] = np.nan
    return out


def bootstrap_sensitivities(data: FrocData, fp_rates, weight_blocks) -> np.ndarray:
    """Replicate sensitivities (B x rates) for the given patient-weight blocks, read out block by
    block (the readout of a replicate is exact and does not depend on the others), so that the
    weights of all replicates are never held at once."""
    fpc = np.r_[0.0, np.cumsum(data.fp)]
    rates = tuple(fp_rates)
    out = [_readout(data, np.asarray(w, np.float32), rates, fpc, data.valid_cut) for w in weight_blocks]
    return np.vstack(out) if out else np.full((0, len(rates)), np.nan)


def bootstrap_sensitivities_reference(data: FrocData, fp_rates, weight_blocks) -> np.ndarray:
    """Same as :func:`bootstrap_sensitivities`, replicate by replicate over the full curve (for tests)."""
    rows = []
    for w in weight_blocks:
        for r in np.asarray(w, float):
            wd = r[data.patient]
            fpc = np.r_[0.0, np.cumsum(wd * data.fp)]
            tpc = np.r_[0.0, np.cumsum(wd * data.tp)]
            prev = _last_valid_at_or_below(data.valid_cut)
            ni, ng = r @ data.n_img_patient, r @ data.n_gt_patient
            vals = []
            for f in fp_rates:
                k = int(np.searchsorted(fpc, f * ni + _EPS, "right")) - 1
                vals.append(tpc[prev[k]] / ng if ng > 0 else np.nan)
            rows.append(vals)
    return np.array(rows, float).reshape(-1, len(tuple(fp_rates)))


def evaluate_froc(data: FrocData, *, fp_rates=DEFAULT_FP_RATES, weight_blocks=None, n_bootstrap: int = 0,
                  confidence: float = 0.95, max_curve_points: int = 512, unit: str = "patients",
                  matching: str = ANY_LESION_MATCHING) -> FrocResult:
    """FROC points, average and curve with patient-bootstrap intervals.

    Parameters
    ----------
    data : FrocData
        Detections with their TP/FP status at the matching threshold (ignored ones: both 0).
    fp_rates : sequence of float
        Mean false positives per image at which the sensitivity is read.
    weight_blocks : list of (b, P) arrays or ReplicateWeights, optional
        Patient draw counts of the bootstrap replicates (``study.metrics.bootstrap``), read
        one block at a time.
    n_bootstrap : int
        Number of replicates in ``weight_blocks`` (for the method name).
    matching : str
        How the TP/FP status was obtained (recorded with the result).

    Returns
    -------
    FrocResult
        ``points: [{fp_per_image, sensitivity: estimate}]``, ``average: estimate``,
        ``curve: {fp_per_image[], sensitivity[], threshold[]}`` (thinned to at most
        ``max_curve_points`` vertices), ``n_lesions``, ``n_images``, ``readout``, ``matching``.
    """
    fp_rates = tuple(float(f) for f in fp_rates)
    point = sensitivity_at(data, fp_rates)
    reps = (bootstrap_sensitivities(data, fp_rates, weight_blocks) if weight_blocks
            else np.full((0, len(fp_rates)), np.nan))
    pts = [FrocPoint(fp_per_image=f, sensitivity=bootstrap_estimate(point[j], reps[:, j], n_replicates=n_bootstrap,
                                                                    confidence=confidence, unit=unit))
           for j, f in enumerate(fp_rates)]
    avg = bootstrap_estimate(float(np.mean(point)), reps.mean(axis=1), n_replicates=n_bootstrap,
                             confidence=confidence, unit=unit)
    curve = froc_curve(data)
    m = len(curve["threshold"])
    if m > max_curve_points:
        keep = np.unique(np.linspace(0, m - 1, max_curve_points).round().astype(int))
        curve = {k: v[keep] for k, v in curve.items()}
    return FrocResult(
        points=pts,
        average=avg,
        curve=FrocCurve(fp_per_image=curve["fp_per_image"].tolist(), sensitivity=curve["sensitivity"].tolist(),
                        threshold=curve["threshold"].tolist()),
        n_lesions=int(data.n_gt_patient.sum()),
        n_images=int(data.n_img_patient.sum()),
        readout=READOUT,
        matching=matching,
    )
