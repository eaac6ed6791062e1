"""Coverage of the agreement intervals in simulated reader studies.

For a known joint distribution of (reference grade, rater grade) over four ordered levels,
draw many studies of ``n`` cases, compute the 95% intervals exactly as
``study.metrics.agreement`` does, and count how often they contain the true value:

- accuracy: Wilson score (statsmodels ``proportion_confint``);
- Cohen's kappa (unweighted, linear, quadratic): Wald with the ASE of Fleiss, Cohen &
  Everitt (1969) (``study.metrics.intervals.kappa_ase_stacked``);
- per-grade sensitivity: Wilson score on the cases of that reference grade;
- kappa (quadratic) and accuracy: the percentile patient bootstrap
  (``study.metrics.bootstrap.bootstrap_sums``), fewer studies because it is slower;
- a clustered design (two images per patient, the rater's error shared by a patient's two
  images): the patient bootstrap versus the Wilson interval that treats images as independent.

Target (issue 6): 93% to 97% for accuracy, kappa and sensitivity, n = 100 and n = 1,000,
at least 1,000 studies each.

    python bench/coverage_agreement.py [--studies 2000] [--boot-studies 1000] [--replicates 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from statsmodels.stats.proportion import proportion_confint

from study.metrics.bootstrap import bootstrap_sums, percentile_intervals
from study.metrics.intervals import kappa_ase_stacked, kappa_stacked

K = 4
REF_P = np.array([0.4, 0.3, 0.2, 0.1])


def joint(accuracy: float = 0.7) -> np.ndarray:
    """P(reference = i, rater = j): correct with ``accuracy``, else one level off (two off at 10%)."""
    p = np.zeros((K, K))
    for i in range(K):
        p[i, i] = accuracy
        off = [(j, 1.0 if abs(j - i) == 1 else 0.25) for j in range(K) if 0 < abs(j - i) <= 2]
        tot = sum(w for _, w in off)
        for j, w in off:
            p[i, j] = (1 - accuracy) * w / tot
    return REF_P[:, None] * p


def truths(p: np.ndarray) -> dict[str, float]:
    out = {"accuracy": float(np.trace(p))}
    for name, w in (("kappa", None), ("kappa_linear", "linear"), ("kappa_quadratic", "quadratic")):
        out[name] = float(kappa_stacked(p, weights=w))
    for j in range(K):
        out[f"sensitivity_{j}"] = float(p[j, j] / p[j].sum())
    return out


def analytic_coverage(p: np.ndarray, n: int, studies: int, seed: int) -> dict[str, float]:
    """Coverage of Wilson (accuracy, sensitivity) and Wald-ASE (kappas) intervals."""
    rng = np.random.default_rng(seed)
    t = rng.multinomial(n, p.ravel(), size=studies).reshape(studies, K, K)
    truth = truths(p)
    cov: dict[str, float] = {}
    lo, hi = proportion_confint(np.trace(t, axis1=1, axis2=2), n, alpha=0.05, method="wilson")
    cov["accuracy (Wilson)"] = float(np.mean((lo <= truth["accuracy"]) & (truth["accuracy"] <= hi)))
    z = 1.959963984540054
    for name, w in (("kappa", None), ("kappa_linear", "linear"), ("kappa_quadratic", "quadratic")):
        k, se = kappa_ase_stacked(t, weights=w)
        ok = np.isfinite(k)
        inside = (k - z * se <= truth[name]) & (truth[name] <= k + z * se)
        cov[f"{name} (Wald ASE)"] = float(np.mean(inside[ok]))
    for j in range(K):
        m = t[:, j].sum(axis=1)
        ok = m > 0
        lo, hi = proportion_confint(t[ok, j, j], m[ok], alpha=0.05, method="wilson")
        v = truth[f"sensitivity_{j}"]
        cov[f"sensitivity grade {j + 1} (Wilson, prevalence {REF_P[j]:.0%})"] = float(np.mean((lo <= v) & (v <= hi)))
    return cov


def _one_hot_cases(table: np.ndarray) -> np.ndarray:
    cells = np.repeat(np.arange(K * K), table.ravel())
    x = np.zeros((len(cells), K * K))
    x[np.arange(len(cells)), cells] = 1
    return x


def bootstrap_coverage(p: np.ndarray, n: int, studies: int, replicates: int, seed: int) -> dict[str, float]:
    """Coverage of the percentile bootstrap (one patient per case) for accuracy and quadratic kappa."""
    rng = np.random.default_rng(seed)
    truth = truths(p)
    hit = {"accuracy": 0, "kappa_quadratic": 0}
    for s in range(studies):
        t = rng.multinomial(n, p.ravel()).reshape(K, K)
        sums = bootstrap_sums(_one_hot_cases(t), n_replicates=replicates, seed=rng).reshape(-1, K, K)
        acc = np.trace(sums, axis1=1, axis2=2) / n
        kq = kappa_stacked(sums, weights="quadratic")
        for name, v in (("accuracy", acc), ("kappa_quadratic", kq)):
            lo, hi, _ = percentile_intervals(v[:, None])
            hit[name] += int(lo[0] <= truth[name] <= hi[0])
    return {f"{k} (percentile bootstrap)": v / studies for k, v in hit.items()}


def clustered_coverage(n_patients: int, studies: int, replicates: int, seed: int) -> dict[str, float]:
    """Two images per patient sharing the rater's (mis)grading: patient bootstrap vs naive Wilson."""
    rng = np.random.default_rng(seed)
    p = joint(0.7)
    truth = float(np.trace(p))
    hit_boot = hit_wilson = 0
    for _ in range(studies):
        cells = rng.choice(K * K, size=n_patients, p=p.ravel())
        # each patient's two images get the same (reference, rater) cell
        x = np.zeros((n_patients, K * K))
        x[np.arange(n_patients), cells] = 2
        sums = bootstrap_sums(x, n_replicates=replicates, seed=rng).reshape(-1, K, K)
        acc = np.trace(sums, axis1=1, axis2=2) / sums.sum(axis=(1, 2))
        lo, hi, _ = percentile_intervals(acc[:, None])
        hit_boot += int(lo[0] <= truth <= hi[0])
        k = int(2 * np.isin(cells, np.arange(K) * (K + 1)).sum())
        wl, wh = proportion_confint(k, 2 * n_patients, alpha=0.05, method="wilson")
        hit_wilson += int(wl <= truth <= wh)
    return {"accuracy, patient bootstrap": hit_boot / studies,
            "accuracy, Wilson treating images as independent": hit_wilson / studies}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=4000, help="simulated studies for the analytic intervals")
    ap.add_argument("--boot-studies", type=int, default=1000, help="simulated studies for the bootstrap")
    ap.add_argument("--replicates", type=int, default=1000, help="bootstrap replicates per study")
    ap.add_argument("--seed", type=int, default=20261121)
    a = ap.parse_args()
    p = joint(0.7)
    tr = truths(p)
    print("true values: " + ", ".join(f"{k} {v:.4f}" for k, v in tr.items()))
    worst = []
    for n in (100, 1000):
        t0 = time.perf_counter()
        cov = analytic_coverage(p, n, a.studies, a.seed + n)
        cov.update(bootstrap_coverage(p, n, a.boot_studies, a.replicates, a.seed + 7 * n))
        mc = np.sqrt(0.95 * 0.05 / a.boot_studies)
        print(f"\nn = {n} cases: {a.studies} studies (analytic), {a.boot_studies} studies x {a.replicates} "
              f"replicates (bootstrap; Monte Carlo SE ~{mc:.1%}); {time.perf_counter() - t0:.1f} s")
        for k, v in cov.items():
            flag = "ok" if 0.93 <= v <= 0.97 else "OUTSIDE 93-97%"
            print(f"  {k:<58} {v:6.1%}  {flag}")
            worst.append((v, n, k))
    t0 = time.perf_counter()
    cl = clustered_coverage(100, a.boot_studies, a.replicates, a.seed + 1)
    print(f"\nclustered design, 100 patients x 2 images, accuracy ({time.perf_counter() - t0:.1f} s):")
    for k, v in cl.items():
        print(f"  {k:<58} {v:6.1%}")
    bad = [w for w in worst if not 0.93 <= w[0] <= 0.97]
    print(f"\n{len(worst) - len(bad)} of {len(worst)} coverages in 93-97%" + (f"; outside: {bad}" if bad else ""))


if __name__ == "__main__":
    main()
