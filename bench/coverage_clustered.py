"""Coverage of the patient-level (clustered) 95% intervals in simulated clustered studies.

Issue 13 item 5: studies with 1-4 images per patient (uniform), intra-patient correlation
0, 0.3 and 0.7, at 100 and 1,000 patients. For every interval type of the key results --
proportions (accuracy, sensitivity: ratio estimator + Rao-Scott Wilson), kappa (quadratic and
unweighted: cluster-robust linearisation), AUC (Obuchowski 1997, logit), the model-minus-reader
accuracy difference (ratio estimator), the counting bias (cluster-robust CR1 t), the
lesion-level recall and precision at the operating threshold (ratio estimator on per-patient
lesion totals) and the counting agreement -- CCC, Bland-Altman limits, MAE and RMSE
(patient bootstrap-t with a jackknife SE in each replicate, study.metrics.clustered_counting) -- the
script prints the share of intervals that contain the true value, and the same for the
image-level (independence) intervals for contrast. Each patient-level entry must lie in
93-97% (the table marks those outside with '!'); the script exits 1 when one does not.

The true values are computed from one very large simulated population per setting (2 million
images), not typed in.

    .venv/bin/python bench/coverage_clustered.py                # 1,000 studies per cell
    .venv/bin/python bench/coverage_clustered.py --studies 300  # quicker
    .venv/bin/python bench/coverage_clustered.py --counting-only  # CCC, LoA, MAE, RMSE only

Data model (per patient ``u ~ N(0, 1)`` shared, per image ``e ~ N(0, 1)``, latent
``sqrt(rho) u + sqrt(1 - rho) e`` so the latent intra-class correlation is ``rho``):
severity (4 ordered grades from a severity latent), difficulty for the model and for the
reader (separate latents), a score for the binary endpoint (grade >= III) and a count error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from study.metrics.bootstrap import bootstrap_estimate, bootstrap_sums
from study.metrics.clustered import (
    clustered_auc,
    clustered_kappa,
    clustered_mean,
    clustered_paired_difference,
    clustered_proportion,
)
from study.metrics.clustered_counting import patient_bootstrap_counting
from study.metrics.counting import bland_altman, lin_ccc, mean_t_interval
from study.metrics.intervals import binomial_ci, cohen_kappa, kappa_stacked

CUTS = np.array([-0.6, 0.1, 0.8])  # severity latent -> grades 0..3
N_BOOT = 1000  # patient-bootstrap replicates of the bootstrap-t intervals (the study default is 2000)


def simulate(rng: np.random.Generator, n_patients: int, rho: float) -> dict[str, np.ndarray]:
    sizes = rng.integers(1, 5, size=n_patients)
    patient = np.repeat(np.arange(n_patients), sizes)
    n = patient.size

    def latent():
        return np.sqrt(rho) * rng.standard_normal(n_patients)[patient] + np.sqrt(1 - rho) * rng.standard_normal(n)

    sev = latent()
    ref = np.searchsorted(CUTS, sev)
    hard_model, hard_reader = latent(), latent()

    def rate(hard, base_logit):
        p_right = 1 / (1 + np.exp(-(base_logit - 2.0 * hard)))
        right = rng.random(n) < p_right
        step = np.where(rng.random(n) < 0.5, -1, 1)
        return np.where(right, ref, np.clip(ref + step, 0, 3))

    model, reader = rate(hard_model, 2.0), rate(hard_reader, 1.4)
    positive = ref >= 2
    score = 1.2 * positive + 0.8 * latent()
    count_error = 0.5 + 2.0 * latent()
    # lesion counts: reference count from the severity latent; the model finds each lesion with a
    # probability that falls with its difficulty latent, and adds false positives
    true_count = rng.poisson(np.exp(1.3 + 0.5 * sev))
    found = rng.binomial(true_count, 1 / (1 + np.exp(-(1.0 - 1.2 * hard_model))))
    false_pos = rng.poisson(np.exp(-0.2 + 0.5 * hard_model))
    return {"patient": patient, "ref": ref, "model": model, "reader": reader, "positive": positive,
            "score": score, "count_error": count_error, "true_count": true_count, "found": found,
            "false_pos": false_pos, "pred_count": found + false_pos}


def truths(rho: float, seed: int) -> dict[str, float]:
    d = simulate(np.random.default_rng([seed, 99]), 800_000, rho)
    ok_m, ok_r = d["model"] == d["ref"], d["reader"] == d["ref"]
    table = np.zeros((4, 4))
    np.add.at(table, (d["ref"], d["model"]), 1)
    sens = (d["model"][d["ref"] == 3] == 3).mean()
    from sklearn.metrics import roc_auc_score

    sub = np.random.default_rng(1).choice(len(d["score"]), 200_000, replace=False)
    x, y = d["true_count"].astype(float), d["pred_count"].astype(float)
    diff = y - x
    ccc = 2 * np.cov(x, y, bias=True)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    lesion = {"lesion recall": d["found"].sum() / d["true_count"].sum(),
              "lesion precision": d["found"].sum() / d["pred_count"].sum(),
              "CCC": ccc, "LoA low": diff.mean() - 1.96 * diff.std(), "LoA high": diff.mean() + 1.96 * diff.std(),
              "MAE": np.abs(diff).mean(), "RMSE": np.sqrt((diff ** 2).mean())}
    return {**lesion, "accuracy": ok_m.mean(), "sensitivity IV": sens,
            "kappa": float(kappa_stacked(table)), "kappa quadratic": float(kappa_stacked(table, weights="quadratic")),
            "AUC": roc_auc_score(d["positive"][sub], d["score"][sub]),
            "accuracy difference": ok_m.mean() - ok_r.mean(), "counting bias": 0.5}


def counting_intervals(d: dict[str, np.ndarray], *, seed: int, n_bootstrap: int = N_BOOT) -> dict[str, tuple]:
    """(patient-level, image-level) Estimate of CCC, the Bland-Altman limits, MAE and RMSE."""
    # counting agreement: patient bootstrap-t [image level, as the study with statistics.unit: image:
    # Lin's z interval, Bland-Altman's approximate limits, the percentile bootstrap resampling
    # images for MAE and RMSE]
    p = d["patient"]
    x, y = d["true_count"].astype(float), d["pred_count"].astype(float)
    boot = patient_bootstrap_counting(x, y, p, n_bootstrap=n_bootstrap, seed=seed)
    diff = y - x
    reps = bootstrap_sums(np.stack([np.abs(diff), diff ** 2, np.ones_like(diff)], axis=1),
                          n_replicates=n_bootstrap, seed=seed)
    per_image = {"mae": bootstrap_estimate(float(np.abs(diff).mean()), reps[:, 0] / reps[:, 2],
                                           n_replicates=n_bootstrap, confidence=0.95, unit="images"),
                 "rmse": bootstrap_estimate(float(np.sqrt((diff ** 2).mean())), np.sqrt(reps[:, 1] / reps[:, 2]),
                                            n_replicates=n_bootstrap, confidence=0.95, unit="images")}
    ba = bland_altman(x, y)
    return {"CCC": (boot["ccc"], lin_ccc(x, y)), "LoA low": (boot["loa_low"], ba.loa_low),
            "LoA high": (boot["loa_high"], ba.loa_high), "MAE": (boot["mae"], per_image["mae"]),
            "RMSE": (boot["rmse"], per_image["rmse"])}


def one_study(d: dict[str, np.ndarray], *, seed: int) -> dict[str, tuple]:
    """(patient-level Estimate, image-level Estimate) per interval type."""
    p, ref, model, reader = d["patient"], d["ref"], d["model"], d["reader"]
    k = p.max() + 1
    ok_m, ok_r = model == ref, reader == ref
    n_k = np.bincount(p, minlength=k)
    out = {"accuracy": (clustered_proportion(np.bincount(p, weights=ok_m, minlength=k), n_k),
                        binomial_ci(int(ok_m.sum()), len(ok_m)))}
    iv = ref == 3
    out["sensitivity IV"] = (clustered_proportion(np.bincount(p[iv], weights=model[iv] == 3, minlength=k),
                                                  np.bincount(p[iv], minlength=k)),
                             binomial_ci(int((model[iv] == 3).sum()), int(iv.sum())))
    tabs = np.zeros((k, 4, 4))
    np.add.at(tabs, (p, ref, model), 1)
    for name, w in (("kappa", None), ("kappa quadratic", "quadratic")):
        out[name] = (clustered_kappa(tabs, weights=w), cohen_kappa(tabs.sum(axis=0), weights=w))
    out["AUC"] = (clustered_auc(d["score"], d["positive"], p), clustered_auc(d["score"], d["positive"], np.arange(len(p))))
    out["accuracy difference"] = (
        clustered_paired_difference(np.bincount(p, weights=ok_m, minlength=k), np.bincount(p, weights=ok_r, minlength=k),
                                    n_k),
        clustered_paired_difference(ok_m.astype(float), ok_r.astype(float), np.ones(len(p))))
    out["counting bias"] = (clustered_mean(d["count_error"], p), mean_t_interval(d["count_error"]))
    # lesion-level proportions (detection at the operating threshold): per-patient totals
    found, true_c, pred_c = (np.bincount(p, weights=d[c], minlength=k) for c in ("found", "true_count", "pred_count"))
    out["lesion recall"] = (clustered_proportion(found, true_c), binomial_ci(int(found.sum()), int(true_c.sum())))
    out["lesion precision"] = (clustered_proportion(found, pred_c), binomial_ci(int(found.sum()), int(pred_c.sum())))
    out.update(counting_intervals(d, seed=seed))
    return out



def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=1000, help="simulated studies per cell (default 1000)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--counting-only", action="store_true",
                    help="only the counting-agreement intervals (CCC, Bland-Altman limits, MAE, RMSE); same draws")
    args = ap.parse_args(argv)
    study = counting_intervals if args.counting_only else one_study
    t0 = time.perf_counter()
    rhos, sizes = (0.0, 0.3, 0.7), (100, 1000)
    names = None
    rows = []
    bad = 0
    for rho in rhos:
        truth = truths(rho, args.seed)
        for n_pat in sizes:
            rng = np.random.default_rng([args.seed, int(rho * 10), n_pat])
            hits: dict[str, list[list[bool]]] = {}
            for _ in range(args.studies):
                res = study(simulate(rng, n_pat, rho), seed=int(rng.integers(2 ** 32)))
                for name, (pe, ie) in res.items():
                    h = hits.setdefault(name, [[], []])
                    for j, e in enumerate((pe, ie)):
                        # an interval that is not given (not estimable) counts as a miss
                        h[j].append(e.ci_low is not None and e.ci_low <= truth[name] <= e.ci_high)
            names = list(hits)
            rows.append((rho, n_pat, {n: (np.mean(h[0]), np.mean(h[1])) for n, h in hits.items()}))
            # progress on stderr, so that a run stopped early still shows the cells it finished
            print(f"ICC {rho:.1f}, {n_pat} patients ({time.perf_counter() - t0:.0f} s): "
                  + ", ".join(f"{n} {100 * c_p:.1f}%" for n, (c_p, _) in rows[-1][2].items()),
                  file=sys.stderr, flush=True)
    print(f"Coverage of nominal 95% intervals, {args.studies} simulated studies per cell, "
          f"1-4 images per patient (bench/coverage_clustered.py)")
    print("patient-level (clustered) [image-level, independence]; '!' = patient-level outside 93-97%")
    head = f"{'interval':>20} | " + " | ".join(f"ICC {rho:.1f}, {n_pat:>4} pat.".rjust(18) for rho, n_pat, _ in rows)
    print(head)
    print("-" * len(head))
    for n in names:
        cells = []
        for _, _, cov in rows:
            c_p, c_i = cov[n]
            flag = " " if 0.93 <= c_p <= 0.97 else "!"
            bad += flag == "!"
            cells.append(f"{100 * c_p:5.1f}%{flag} [{100 * c_i:5.1f}%]".rjust(18))
        print(f"{n:>20} | " + " | ".join(cells))
    print(f"{bad} patient-level entries outside 93-97%; time {time.perf_counter() - t0:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
