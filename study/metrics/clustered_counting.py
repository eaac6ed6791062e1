"""Counting agreement with the patient as the unit of analysis: patient-bootstrap BCa intervals.

When a patient contributes several images, the images' counting errors are not independent,
and Lin's (1989) CCC interval, the Bland-Altman (1986) limit intervals and the percentile
bootstrap over images are too narrow. Here every statistic is a smooth function of seven
per-patient sums of the paired counts ``(x = reference, y = predicted, d = y - x)``::

    n, sum x, sum y, sum x^2, sum y^2, sum x y, sum |d|

so the patient bootstrap (resampling patients with replacement; Davison & Hinkley 1997,
section 3.8, "two-stage sampling" with the first stage resampled) needs only the replicate
sums of those columns (:func:`study.metrics.bootstrap.bootstrap_sums`), and the jackknife of
the BCa acceleration only the totals minus one patient's sums. The intervals are the
bias-corrected and accelerated bootstrap intervals of
:func:`study.metrics.clustered.bca_interval` (Efron 1987), which follow the statistic's range
(a CCC interval stays inside [-1, 1]).

Statistics (moments with denominator ``n``, as :func:`study.metrics.counting.lin_ccc`):

- ``mae = sum |d| / n``, ``rmse = sqrt(sum d^2 / n)``;
- ``ccc = 2 s_xy / (s_x^2 + s_y^2 + (mean_x - mean_y)^2)`` (Lin 1989);
- Bland-Altman limits ``mean(d) -/+ 1.96 SD(d)`` (SD with ``n - 1``; Bland & Altman 1986).

Coverage in simulated clustered studies: ``bench/coverage_clustered.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from study.estimate import Estimate
from study.metrics.bootstrap import bootstrap_sums
from study.metrics.clustered import bca_interval, bca_method

__all__ = ["COUNT_STATISTICS", "count_sums", "patient_bootstrap_counting"]

#: columns of the per-patient sums
N, SX, SY, SXX, SYY, SXY, SAD = range(7)


def count_sums(true: np.ndarray, predicted: np.ndarray, patient: np.ndarray, n_patients: int) -> np.ndarray:
    """Per-patient sums ``(n, x, y, x^2, y^2, x y, |d|)`` of the paired counts, shape ``(P, 7)``.

    The counts are shifted by the mean reference count first (every statistic here is
    unchanged by a common shift) so that float32 replicate sums keep their precision.
    """
    x = np.asarray(true, float)
    y = np.asarray(predicted, float)
    shift = float(x.mean()) if x.size else 0.0
    xs, ys = x - shift, y - shift
    cols = (np.ones_like(x), xs, ys, xs * xs, ys * ys, xs * ys, np.abs(y - x))
    return np.stack([np.bincount(patient, weights=c, minlength=n_patients) for c in cols], axis=1)


def _moments(s: np.ndarray) -> tuple[np.ndarray, ...]:
    with np.errstate(invalid="ignore", divide="ignore"):
        n = s[..., N]
        mx, my = s[..., SX] / n, s[..., SY] / n
        vx = s[..., SXX] / n - mx ** 2
        vy = s[..., SYY] / n - my ** 2
        cxy = s[..., SXY] / n - mx * my
    return n, mx, my, vx, vy, cxy


def _mae(s: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return s[..., SAD] / s[..., N]


def _rmse(s: np.ndarray) -> np.ndarray:
    _, mx, my, vx, vy, cxy = _moments(s)
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.maximum(vx + vy - 2 * cxy + (my - mx) ** 2, 0.0))


def _ccc(s: np.ndarray) -> np.ndarray:
    _, mx, my, vx, vy, cxy = _moments(s)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * cxy / (vx + vy + (mx - my) ** 2)


def _loa(sign: float) -> Callable[[np.ndarray], np.ndarray]:
    def limit(s: np.ndarray) -> np.ndarray:
        n, mx, my, vx, vy, cxy = _moments(s)
        with np.errstate(invalid="ignore", divide="ignore"):
            var_d = np.maximum(vx + vy - 2 * cxy, 0.0) * n / (n - 1)
            return (my - mx) + sign * 1.96 * np.sqrt(var_d)
    return limit


#: name -> statistic of the (..., 7) sums
COUNT_STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mae": _mae, "rmse": _rmse, "ccc": _ccc, "loa_low": _loa(-1.0), "loa_high": _loa(1.0)}


def patient_bootstrap_counting(true: np.ndarray, predicted: np.ndarray, patient: np.ndarray, *,
                               n_bootstrap: int, seed: int, confidence: float = 0.95,
                               statistics: tuple[str, ...] = tuple(COUNT_STATISTICS)) -> dict[str, Estimate]:
    """Patient-bootstrap BCa intervals of MAE, RMSE, CCC and the Bland-Altman limits.

    Parameters
    ----------
    true, predicted : array_like, shape (n,)
        Reference and predicted count per image.
    patient : array_like of int, shape (n,)
        Patient index (0..P-1) of each image.
    n_bootstrap, seed, confidence :
        Replicates (patients resampled with replacement), seed, two-sided level.
    statistics : names from :data:`COUNT_STATISTICS`.

    Returns
    -------
    dict name -> Estimate
        ``estimate`` on the observed data; BCa limits (Efron 1987; Efron & Tibshirani 1993,
        eq. 14.15) from the replicates and the leave-one-patient-out jackknife; ``se`` the SD of
        the replicates; ``n`` images and ``n_clusters`` patients. Not estimable (with the
        reason) with fewer than two patients, or when the replicates carry no spread.
    """
    pat = np.unique(np.asarray(patient), return_inverse=True)[1].ravel()
    n_img = int(pat.size)
    n_pat = int(pat.max()) + 1 if n_img else 0
    name = bca_method(n_bootstrap, confidence)
    sums = count_sums(np.asarray(true, float), np.asarray(predicted, float), pat, n_pat)
    total = sums.sum(axis=0)
    out: dict[str, Estimate] = {}
    if n_pat < 2:
        for key in statistics:
            point = float(COUNT_STATISTICS[key](total)) if n_img > 1 else None
            out[key] = Estimate(point if point is not None and np.isfinite(point) else None, None, None, name,
                                reason="fewer than two patients: no patient bootstrap", n=n_img, n_clusters=n_pat)
        return out
    reps = bootstrap_sums(sums, n_replicates=n_bootstrap, seed=seed)
    jack = total[None, :] - sums
    for key in statistics:
        f = COUNT_STATISTICS[key]
        point = float(f(total))
        if not np.isfinite(point):
            out[key] = Estimate(None, None, None, name, reason="undefined on the observed data (no spread)",
                                n=n_img, n_clusters=n_pat)
            continue
        r = f(reps)
        fin = r[np.isfinite(r)]
        if fin.size < 2 or float(fin.max() - fin.min()) <= 1e-12 * max(1.0, abs(point)):
            out[key] = Estimate(point, None, None, name, reason="every bootstrap replicate equals the estimate: "
                                "no interval from the bootstrap", n=n_img, n_clusters=n_pat)
            continue
        lo, hi = bca_interval(point, fin, f(jack), confidence=confidence)
        reason = None if lo is not None else "BCa acceleration undefined (all jackknife values equal)"
        out[key] = Estimate(point, lo, hi, name, se=float(fin.std(ddof=1)), reason=reason, n=n_img,
                            n_clusters=n_pat, n_undefined=int(r.size - fin.size) or None)
    return out
