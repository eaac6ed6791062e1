"""Bench: 2,000 patient-bootstrap replicates of every agreement statistic, 10,000 cases x 8 raters.

Target (issue 6): at most 10 s on this machine for the whole ``evaluate_agreement`` call
(2 models + 6 readers in 3 groups, fully crossed; per-rater accuracy, three kappas, per-grade
sensitivity/specificity/PPV/NPV/F1, macro F1, error directions, groups, 15 reader pairs,
Fleiss' kappa, Krippendorff's alpha, 12 model-vs-reader and 6 model-vs-group differences).

Peer measured in the same run: the textbook loop (draw patients with numpy, case weights =
draw counts, then scikit-learn ``confusion_matrix`` + ``cohen_kappa_score`` x3 with ``sample_weight`` per
rater and replicate) on a
few replicates, extrapolated to 2,000 x 8 raters; it computes fewer statistics than ours.

    python bench/bench_agreement_bootstrap.py [--cases 10000] [--replicates 2000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from study.metrics.agreement import evaluate_agreement
from study.options import AgreementOptions, StatisticsOptions

LEVELS = ["I", "II", "III", "IV"]


def make(n_cases: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ref = rng.choice(4, size=n_cases, p=[0.4, 0.3, 0.2, 0.1])
    cases = np.array([f"c{i}" for i in range(n_cases)])
    patient = np.array([f"p{i}" for i in (np.arange(n_cases) * 2) // 3])  # ~1.5 images per patient
    raters = [("ai", "model", None, 0.8), ("ai2", "model", None, 0.75)] + [
        (f"{g}{i}", "reader", g, acc) for g, acc in (("junior", 0.55), ("intermediate", 0.65), ("senior", 0.75))
        for i in range(2)]
    frames = []
    for rid, kind, grp, acc in raters:
        g = np.where(rng.random(n_cases) < acc, ref, np.clip(ref + rng.choice([-2, -1, 1], size=n_cases), 0, 3))
        frames.append(pd.DataFrame({"rater_id": rid, "case_id": cases, "grade": np.array(LEVELS)[g],
                                    "rater_kind": kind, "reader_group": grp}))
    reference = pd.DataFrame({"case_id": cases, "grade": np.array(LEVELS)[ref]})
    return reference, pd.concat(frames, ignore_index=True), dict(zip(cases, patient))


def naive_seconds_per_replicate_rater(reference, ratings, patient_of, n_rep: int = 10) -> float:
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    rng = np.random.default_rng(1)
    r = ratings[ratings.rater_id == "ai"]
    y_ref = reference["grade"].to_numpy()
    y = r["grade"].to_numpy()
    pcodes, puniq = pd.factorize(pd.Series(reference["case_id"]).map(patient_of))
    t = time.perf_counter()
    for _ in range(n_rep):
        w = np.bincount(rng.integers(0, len(puniq), size=len(puniq)), minlength=len(puniq))[pcodes]
        confusion_matrix(y_ref, y, labels=LEVELS, sample_weight=w)
        for wt in (None, "linear", "quadratic"):
            cohen_kappa_score(y_ref, y, labels=LEVELS, weights=wt, sample_weight=w)
    return (time.perf_counter() - t) / n_rep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--replicates", type=int, default=2000)
    a = ap.parse_args()
    reference, ratings, patient_of = make(a.cases)
    n_raters = ratings.rater_id.nunique()
    t = time.perf_counter()
    options = AgreementOptions(levels=tuple(LEVELS), statistics=StatisticsOptions(n_bootstrap=a.replicates,
                                                                                  seed=20261121))
    out = evaluate_agreement(reference, ratings, options=options, patient_of=patient_of)
    ours = time.perf_counter() - t
    per = naive_seconds_per_replicate_rater(reference, ratings, patient_of)
    naive = per * a.replicates * n_raters
    print(f"cases={a.cases} patients={out.settings.n_patients} raters={n_raters} replicates={a.replicates}")
    print(f"evaluate_agreement (every statistic, all replicates): {ours:.2f} s  (target <= 10 s: "
          f"{'OK' if ours <= 10 else 'MISSED'})")
    print(f"peer: resample + sklearn confusion_matrix + 3 x cohen_kappa_score per replicate and rater: "
          f"{per * 1000:.1f} ms -> {naive:.0f} s extrapolated for {a.replicates} x {n_raters}")
    print(f"speed-up vs peer: {naive / ours:.0f}x")
    k = out.raters["ai"].kappa_quadratic
    print(f"check: ai quadratic kappa {k.estimate:.4f}, Wald ({k.ci_low:.4f}, {k.ci_high:.4f}), "
          f"bootstrap ({k.bootstrap.ci_low:.4f}, {k.bootstrap.ci_high:.4f})")


if __name__ == "__main__":
    main()
