"""Benchmark: the U-statistic MRMC analyses at 1,000 to 100,000 cases, dense matrices versus sums.

Run: ``python bench/bench_mrmc_scale.py [--sizes 1000 3000 10000 100000] [--dense-max 3000]
[--ratings confidence|grades|continuous]``.

Each size is simulated reading data -- 7 readers reading every case unaided and aided (grades
plus a 0-100 confidence), one model, two images per patient -- run through the study's
U-statistic step (:func:`study.metrics.mrmc.study_ustat.study_ustat`: aided versus unaided and
the model versus the unaided readers, patients resampled) in a child process of its own, so
its peak resident memory (:func:`study.job_usage.job_usage`, as each workflow job logs it) is
the job's. The dense path (readers x non-diseased x diseased matrices,
:data:`~study.metrics.mrmc.ustat_auc.DENSE_MAX_PAIRS` raised) runs up to ``--dense-max``
cases; the sums path (:mod:`~study.metrics.mrmc.ustat_sums`) at every size; the
ratio dense / sums and the growth exponent (least-squares slope of log time and log memory on
log cases) come from the same run. Both paths' results are checked equal where both run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

LEVELS = ["clear", "almost clear", "mild", "moderate", "severe"]
READERS = 7


def simulate(n: int, ratings: str, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    case_ids = np.array([f"c{i:06d}" for i in range(n)])
    latent = rng.normal(size=n)
    grade_idx = np.digitize(latent, [-1.0, -0.2, 0.5, 1.3])
    reference = pd.DataFrame({"case_id": case_ids, "grade": np.array(LEVELS)[grade_idx]})
    parts = []
    for modality, noise in (("unaided", 0.9), ("aided", 0.6)):
        for r in range(READERS):
            seen = latent + rng.normal(scale=noise, size=n) + rng.normal(scale=0.2)
            if ratings == "continuous":
                conf = 100 / (1 + np.exp(-seen))
            else:
                conf = np.clip(np.round(50 + 25 * seen), 0, 100)
            part = {"reader_id": f"R{r}", "case_id": case_ids, "modality": modality,
                    "grade": np.array(LEVELS)[np.digitize(seen, [-1.0, -0.2, 0.5, 1.3])]}
            if ratings != "grades":
                part["confidence"] = conf
            parts.append(pd.DataFrame(part))
    readings = pd.concat(parts, ignore_index=True)
    model = pd.DataFrame({"case_id": case_ids,
                          "grade": np.array(LEVELS)[np.digitize(latent + rng.normal(scale=0.7, size=n),
                                                                [-1.0, -0.2, 0.5, 1.3])]})
    patient_of = {c: f"p{i // 2:06d}" for i, c in enumerate(case_ids)}
    return reference, readings, {"demo-model": model}, patient_of


def child(n: int, path: str, ratings: str) -> None:
    import study.metrics.mrmc.ustat_auc as ustat_auc
    from study.job_usage import job_usage
    from study.metrics.mrmc.study_ustat import study_ustat

    ustat_auc.DENSE_MAX_PAIRS = 10**15 if path == "dense" else -1
    t0 = time.perf_counter()
    reference, readings, models, patient_of = simulate(n, ratings)
    t1 = time.perf_counter()
    res = study_ustat(reference, readings, models, levels=LEVELS, positive_from="moderate", patient_of=patient_of)
    t2 = time.perf_counter()
    aided = res.aided_vs_unaided
    diff = aided.differences[0].unbiased if hasattr(aided, "differences") else None
    print(json.dumps({"n": n, "path": path, "simulate_s": t1 - t0, "analysis_s": t2 - t1,
                      "rss_mb": job_usage("mrmc", wall_s=t2 - t0).self_mb,
                      "auc_diff": None if diff is None else diff.estimate,
                      "var_diff": None if diff is None else diff.variance}))


def _slope(ns: list[int], ys: list[float]) -> float:
    return float(np.polyfit(np.log(ns), np.log(ys), 1)[0]) if len(ns) > 1 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000, 100000])
    ap.add_argument("--dense-max", type=int, default=3000)
    ap.add_argument("--ratings", choices=["confidence", "grades", "continuous"], default="confidence")
    ap.add_argument("--child", nargs=2, metavar=("N", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1], args.ratings)
        return
    rows: dict[tuple[int, str], dict] = {}
    for n in args.sizes:
        for path in ("dense", "sums"):
            if path == "dense" and n > args.dense_max:
                continue
            out = subprocess.run([sys.executable, __file__, "--ratings", args.ratings, "--child", str(n), path],
                                 check=True, capture_output=True, text=True).stdout
            r = rows[n, path] = json.loads(out.strip().splitlines()[-1])
            print(f"{n:>7} cases  {path:>5}: analysis {r['analysis_s']:8.1f} s  peak RSS {r['rss_mb']:7.0f} MB  "
                  f"(simulation {r['simulate_s']:.1f} s)", flush=True)
            if path == "sums" and (n, "dense") in rows:
                d = rows[n, "dense"]
                assert d["auc_diff"] == r["auc_diff"], "dense and sums differ"
                assert abs(d["var_diff"] - r["var_diff"]) <= 1e-12 * abs(d["var_diff"]), "dense and sums differ"
                print(f"{'':>7}        ratio dense/sums: time {d['analysis_s'] / r['analysis_s']:.1f}x, "
                      f"memory {d['rss_mb'] / r['rss_mb']:.1f}x (same results)", flush=True)
    for path in ("dense", "sums"):
        ns = [n for n in args.sizes if (n, path) in rows]
        if len(ns) > 1:
            t = [rows[n, path]["analysis_s"] for n in ns]
            m = [rows[n, path]["rss_mb"] for n in ns]
            print(f"{path}: growth exponent over {ns[0]}..{ns[-1]} cases: time {_slope(ns, t):.2f}, "
                  f"peak memory {_slope(ns, m):.2f}")


if __name__ == "__main__":
    main()
