"""Image-level presence of each lesion class: does the image contain class c?

An image is *truly positive* for class c when its reference marks at least one (non-crowd)
lesion of c, and *called positive* when the model reports at least one detection of c at
or above the operating threshold. The 2x2 table over images gives accuracy, sensitivity,
specificity and F1, as in the per-class table of the smartphone acne study (Frontiers in
Medicine 2024). Proportions get Wilson score intervals (statsmodels); F1, a ratio of
counts, gets a percentile bootstrap over patients.
"""

from __future__ import annotations

import numpy as np

from study.metrics.bootstrap import bootstrap_estimate, units_of
from study.metrics.intervals import binomial_ci
from study.results.detection import PresenceResult, PresenceTable


def presence_table(truth: np.ndarray, called: np.ndarray) -> dict[str, int]:
    """2x2 counts ``{tp, fp, fn, tn}`` of boolean per-image truth and call."""
    truth = np.asarray(truth, bool)
    called = np.asarray(called, bool)
    return {"tp": int((truth & called).sum()), "fp": int((~truth & called).sum()),
            "fn": int((truth & ~called).sum()), "tn": int((~truth & ~called).sum())}


def f1_from_counts(tp, fp, fn):
    """``2 TP / (2 TP + FP + FN)`` (NaN when the denominator is zero); works on arrays."""
    tp, fp, fn = (np.asarray(x, float) for x in (tp, fp, fn))
    den = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), np.nan)


def presence_features(truth: np.ndarray, called: np.ndarray, patient: np.ndarray, n_patients: int) -> np.ndarray:
    """Per-patient sums ``(P, 3)`` of TP, FP, FN images (for bootstrap replicates ``w @ features``)."""
    truth = np.asarray(truth, bool)
    called = np.asarray(called, bool)
    patient = np.asarray(patient)
    return np.stack([np.bincount(patient, weights=truth & called, minlength=n_patients),
                     np.bincount(patient, weights=~truth & called, minlength=n_patients),
                     np.bincount(patient, weights=truth & ~called, minlength=n_patients)], axis=1).astype(np.float32)


def evaluate_presence(truth: np.ndarray, called: np.ndarray, patient: np.ndarray, *, weight_blocks=None,
                      n_bootstrap: int = 0, confidence: float = 0.95, replicate_table: np.ndarray | None = None,
                      unit: str = "patients") -> PresenceResult:
    """Per-image presence metrics of one class.

    Parameters
    ----------
    truth, called : bool arrays (n_images,)
    patient : int array (n_images,)
        Patient index of each image (0..P-1), for the bootstrap of F1.
    weight_blocks : list of (b, P) arrays, optional
        Bootstrap patient draw counts (``study.metrics.bootstrap.resampling_weights``).
    replicate_table : (B, 3) array, optional
        Replicate sums of TP, FP, FN images already computed (``weights @ presence_features``);
        used instead of ``weight_blocks``.

    Returns
    -------
    PresenceResult
        ``accuracy, sensitivity, specificity, ppv, npv`` (Wilson), ``f1`` (patient
        bootstrap), ``table {tp, fp, fn, tn}``, ``n_images``, ``n_images_positive``.
    """
    t = presence_table(truth, called)
    n = sum(t.values())
    point = float(f1_from_counts(t["tp"], t["fp"], t["fn"]))
    reps = np.zeros(0)
    if replicate_table is not None:
        reps = f1_from_counts(replicate_table[:, 0], replicate_table[:, 1], replicate_table[:, 2])
    elif weight_blocks:
        feats = presence_features(truth, called, patient, units_of(weight_blocks))
        s = np.vstack([w @ feats for w in weight_blocks])
        reps = f1_from_counts(s[:, 0], s[:, 1], s[:, 2])
    return PresenceResult(
        accuracy=binomial_ci(t["tp"] + t["tn"], n, confidence=confidence),
        sensitivity=binomial_ci(t["tp"], t["tp"] + t["fn"], confidence=confidence,
                                reason_if_empty="no image contains the class"),
        specificity=binomial_ci(t["tn"], t["tn"] + t["fp"], confidence=confidence,
                                reason_if_empty="every image contains the class"),
        ppv=binomial_ci(t["tp"], t["tp"] + t["fp"], confidence=confidence, reason_if_empty="no image called positive"),
        npv=binomial_ci(t["tn"], t["tn"] + t["fn"], confidence=confidence, reason_if_empty="no image called negative"),
        f1=bootstrap_estimate(point, reps, n_replicates=n_bootstrap, confidence=confidence, unit=unit),
        table=PresenceTable(**t),
        n_images=n,
        n_images_positive=t["tp"] + t["fn"],
    )
