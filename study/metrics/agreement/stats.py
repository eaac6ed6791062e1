"""Vectorised statistics of confusion tables, rating counts and coincidence matrices.

Every function works on stacks (leading axes are replicates or blocks), so the observed
value and all bootstrap replicates of a statistic come from one call.

References
----------
Cohen (1960, 1968); Fleiss JL (1971), Measuring nominal scale agreement among many raters,
Psychol Bull 76:378-382; Krippendorff K (2011), Computing Krippendorff's alpha-reliability
(coincidence matrices, ordinal metric).
"""

from __future__ import annotations

import numpy as np

from study.metrics.intervals import KappaWeights, kappa_stacked

#: the three Cohen's kappas every table reports, by key, with their agreement weights
KAPPA_WEIGHTS: dict[str, KappaWeights] = {"kappa": None, "kappa_linear": "linear", "kappa_quadratic": "quadratic"}


def table_stats(tables: np.ndarray) -> dict[str, np.ndarray]:
    """Every per-rater statistic for a stack of confusion matrices ``(..., K, K)``.

    Rows = reference, columns = rater. Undefined values (zero denominators) are NaN.

    Returns
    -------
    dict
        ``n``, ``accuracy``, ``kappa``, ``kappa_linear``, ``kappa_quadratic`` (shape
        ``tables.shape[:-2]``); ``sensitivity``, ``specificity``, ``ppv``, ``npv``, ``f1``
        (one-versus-rest per level, shape ``(..., K)``); ``macro_f1`` (mean F1 over the
        levels used by the reference or the rater); ``n_errors`` and the shares of errors
        that ``downgrade`` (rater below reference), ``upgrade`` and ``cross_grade``
        (two or more levels apart).
    """
    t = np.asarray(tables, dtype=float)
    k = t.shape[-1]
    n = t.sum(axis=(-2, -1))
    tp = np.diagonal(t, axis1=-2, axis2=-1)
    ref = t.sum(axis=-1)
    rat = t.sum(axis=-2)
    nn = n[..., None]
    fn = ref - tp
    fp = rat - tp
    tn = nn - ref - rat + tp
    i = np.arange(k)
    diff = i[None, :] - i[:, None]  # rater level - reference level
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "n": n,
            "accuracy": tp.sum(axis=-1) / n,
            "sensitivity": tp / ref,
            "specificity": tn / (nn - ref),
            "ppv": tp / rat,
            "npv": tn / (nn - rat),
            "f1": 2 * tp / (2 * tp + fp + fn),
        }
        f1 = out["f1"]
        used = (ref + rat) > 0
        out["macro_f1"] = np.where(used.any(axis=-1), np.nansum(np.where(used, f1, 0.0), axis=-1)
                                   / used.sum(axis=-1), np.nan)
        n_err = n - tp.sum(axis=-1)
        out["n_errors"] = n_err
        out["downgrade"] = (t * (diff < 0)).sum(axis=(-2, -1)) / n_err
        out["upgrade"] = (t * (diff > 0)).sum(axis=(-2, -1)) / n_err
        out["cross_grade"] = (t * (np.abs(diff) >= 2)).sum(axis=(-2, -1)) / n_err
    for name, w in KAPPA_WEIGHTS.items():
        out[name] = kappa_stacked(t, weights=w)
    return out


def fleiss_kappa_from_sums(sums: np.ndarray, m: int) -> np.ndarray:
    """Fleiss' (1971) kappa from summed features ``[n_j (K), sum_j n_ij^2, N]`` (last axis).

    ``P_bar = (sum_i sum_j n_ij^2 - N m) / (N m (m-1))``, ``p_j = sum_i n_ij / (N m)``,
    ``P_e = sum_j p_j^2``, ``kappa = (P_bar - P_e) / (1 - P_e)``.
    """
    s = np.asarray(sums, dtype=float)
    nj, sq, big_n = s[..., :-2], s[..., -2], s[..., -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        p_bar = (sq - big_n * m) / (big_n * m * (m - 1))
        pj = nj / (big_n * m)[..., None]
        pe = (pj ** 2).sum(axis=-1)
        return (p_bar - pe) / (1 - pe)  # type: ignore[no-any-return]


def krippendorff_ordinal_from_coincidences(o: np.ndarray) -> np.ndarray:
    """Krippendorff's alpha (ordinal metric) from coincidence matrices ``(..., K, K)``.

    ``alpha = 1 - (n - 1) sum_ck o_ck d_ck / sum_ck n_c n_k d_ck`` with the ordinal
    ``d_ck = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2`` (Krippendorff 2011).
    """
    o = np.asarray(o, dtype=float)
    k = o.shape[-1]
    nc = o.sum(axis=-1)
    n = nc.sum(axis=-1)
    cs = np.cumsum(nc, axis=-1)
    lo = np.minimum.outer(np.arange(k), np.arange(k))
    hi = np.maximum.outer(np.arange(k), np.arange(k))
    between = np.take(cs, hi, axis=-1) - np.take(cs, lo, axis=-1) + np.take(nc, lo, axis=-1)
    d = (between - (nc[..., :, None] + nc[..., None, :]) / 2) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        d_o = (o * d).sum(axis=(-2, -1))
        d_e = (nc[..., :, None] * nc[..., None, :] * d).sum(axis=(-2, -1)) / (n - 1)
        return 1 - d_o / d_e  # type: ignore[no-any-return]
