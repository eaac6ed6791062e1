"""Agreement between annotators: Fleiss' kappa, pairwise Cohen's kappa, pairwise lesion F1.

Intervals: patient bootstrap (a patient's cases resampled together), BCa with the patient
jackknife (:func:`study.metrics.clustered.bca_estimate`). Formulas: Fleiss (1971) Psychol Bull
76:378-382 (as ``statsmodels.stats.inter_rater.fleiss_kappa``); Cohen (1960) Educ Psychol Meas
20:37-46 (as ``sklearn.metrics.cohen_kappa_score``); lesion F1 of a pair = 2 matched / (lesions
of one + lesions of the other), greedy one-to-one matching of the same class at IoU >= 0.5
(:func:`study.annotators.lesions.matched_pairs`), summed over cases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from study.estimate import Estimate
from study.metrics.agreement.stats import fleiss_kappa_from_sums
from study.metrics.intervals import kappa_stacked


def _bootstrap(stat, per_case: dict[str, np.ndarray], patients: np.ndarray, *, replicates: int, seed: int,
               confidence: float) -> Estimate:
    """Patient-bootstrap BCa estimate of ``stat(arrays)``; ``per_case`` arrays have one row per case."""
    from study.metrics.clustered import bca_estimate

    uniq, idx = np.unique(patients, return_inverse=True)
    sums = {k: np.zeros((len(uniq),) + v.shape[1:]) for k, v in per_case.items()}
    for k, v in per_case.items():
        np.add.at(sums[k], idx, v)
    point = stat({k: v.sum(axis=0) for k, v in sums.items()})
    rng = np.random.default_rng(seed)
    reps = np.empty(replicates)
    for b in range(replicates):  # one replicate at a time: memory does not grow with replicates x patients
        w = np.bincount(rng.integers(0, len(uniq), size=len(uniq)), minlength=len(uniq))
        reps[b] = stat({k: np.tensordot(w, v, axes=1) for k, v in sums.items()})
    total = {k: v.sum(axis=0) for k, v in sums.items()}
    jack = np.array([stat({k: total[k] - v[i] for k, v in sums.items()}) for i in range(len(uniq))])
    est = bca_estimate(point, reps, jack, confidence=confidence, n_replicates=replicates)
    return est.model_copy(update={"n": int(len(patients)), "n_clusters": int(len(uniq)),
                                  "method": est.method})


def grade_agreement(grades: Mapping[str, Mapping[str, str]], *, case_ids: Sequence[str], levels: Sequence[str],
                    patient_of: Mapping[str, str], replicates: int, seed: int, confidence: float) -> dict[str, Any]:
    """Fleiss' kappa over all annotators and Cohen's kappa of each pair, with patient-bootstrap intervals.

    Returns
    -------
    dict
        ``fleiss`` (Estimate), ``pairwise`` ({"a|b": Estimate}), ``n_cases``, ``n_patients``.
    """
    ann = list(grades)
    rank = {g: i for i, g in enumerate(levels)}
    k, m = len(levels), len(ann)
    codes = np.array([[rank[grades[a][c]] for a in ann] for c in case_ids], dtype=int).reshape(len(case_ids), m)
    table = np.zeros((len(case_ids), k))
    for j in range(m):
        np.add.at(table, (np.arange(len(case_ids)), codes[:, j]), 1)
    patients = np.array([patient_of.get(c, c) for c in case_ids])
    # per case: category counts, the sum of their squares and 1 (summed over cases: Fleiss' sufficient sums)
    features = np.column_stack([table, (table * table).sum(axis=1), np.ones(len(case_ids))])
    fleiss = _bootstrap(lambda s: float(fleiss_kappa_from_sums(s["features"], m)) if s["features"][-1] > 0
                        else float("nan"), {"features": features}, patients,
                        replicates=replicates, seed=seed, confidence=confidence)
    fleiss = fleiss.model_copy(update={"definition": "Fleiss' kappa over all annotators (Fleiss 1971)"})
    pairwise = {}
    for (i, a), (j, b) in combinations(enumerate(ann), 2):
        conf = np.zeros((len(case_ids), k, k))
        conf[np.arange(len(case_ids)), codes[:, i], codes[:, j]] = 1
        e = _bootstrap(lambda s: float(kappa_stacked(s["conf"])) if s["conf"].sum() > 0 else float("nan"),
                       {"conf": conf}, patients, replicates=replicates, seed=seed, confidence=confidence)
        pairwise[f"{a}|{b}"] = e.model_copy(update={"definition": "Cohen's kappa, unweighted (Cohen 1960)"})
    return {"fleiss": fleiss, "pairwise": pairwise, "n_cases": len(case_ids),
            "n_patients": int(len(set(patients.tolist())))}


def lesion_agreement(lesions: Mapping[str, Mapping[str, Sequence[dict[str, Any]]]], *, case_ids: Sequence[str],
                     patient_of: Mapping[str, str], replicates: int, seed: int, confidence: float,
                     iou_threshold: float = 0.5) -> dict[str, Estimate]:
    """Pairwise lesion F1 at ``iou_threshold`` ({"a|b": Estimate}), patient-bootstrap intervals.

    ``lesions``: annotator id -> (case id -> annotations with ``bbox``, ``category_id``).
    """
    from study.annotators.lesions import matched_pairs

    ann = list(lesions)
    patients = np.array([patient_of.get(c, c) for c in case_ids])
    out = {}
    for a, b in combinations(ann, 2):
        rows = np.array([[matched_pairs(lesions[a].get(c, []), lesions[b].get(c, []), iou_threshold=iou_threshold),
                          len(lesions[a].get(c, [])), len(lesions[b].get(c, []))] for c in case_ids], dtype=float)
        rows = rows.reshape(len(case_ids), 3)

        def f1(s: dict[str, np.ndarray]) -> float:
            tp, na, nb = s["x"]
            return float(2 * tp / (na + nb)) if na + nb > 0 else float("nan")

        e = _bootstrap(f1, {"x": rows}, patients, replicates=replicates, seed=seed, confidence=confidence)
        out[f"{a}|{b}"] = e.model_copy(update={
            "definition": f"lesion F1 at IoU >= {iou_threshold:g}: 2 x lesions matched one-to-one (same class) / "
                          "(lesions of one + lesions of the other), summed over cases",
            "k": int(rows[:, 0].sum())})
    return out
