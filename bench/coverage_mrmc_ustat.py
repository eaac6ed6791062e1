"""Coverage of the U-statistic MRMC intervals of the AUC difference on simulated reader studies.

Ratings follow iMRMC's generalised Roe-Metz model (``sim.gRoeMetz``; Roe and Metz 1997; Gallas
and Hillis 2014): for a non-diseased (diseased) case, ``mu + R + C + RC`` plus a modality-specific
``R_m + C_m + RC_m``, every effect normal and drawn separately for each truth, with iMRMC's
default variances (reader 0.03, case 0.30, reader x case 0.20, each shared and modality-specific)
and ``mu`` 0 (non-diseased) and 1 (diseased) in both modalities: the two modalities have the
same expected AUC, so the true difference is 0. Each study is analysed exactly as
``study evaluate mrmc --method ustat`` does (:func:`study.metrics.mrmc.ustat.analyze_ustat`), and
the 95% interval of ``AUC_A - AUC_B`` (unbiased variance, BDG degrees of freedom) is checked for
containing 0. The MLE-variance interval and the Hillis-df interval (fully crossed only) are
reported alongside.

Designs (both modalities read on the same cases by the same readers):

- fully crossed: 6 readers x 100 cases (50 / 50);
- split-plot: 3 groups of 2 readers, each group reading its own 40 of 120 cases (20 / 20);
- partially crossed: 6 readers, each reading a random 60% of 100 cases;
- clustered: fully crossed, 6 readers x 100 images of 50 patients (two images of one truth per
  patient sharing 70% of the case variance): the intervals with patients resampled (the
  ``patient_id`` column) against those that treat images as independent.

Target (issue 14): 93% to 97% for split-plot and partially crossed designs (and, resampling
patients, for the clustered one).

    python bench/coverage_mrmc_ustat.py [--studies 1000] [--clustered-studies 500] [--seed 2026]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from study.metrics.mrmc.ustat import analyze_ustat

VAR_R, VAR_C, VAR_RC = 0.03, 0.30, 0.20
MU = (0.0, 1.0)


def _case_effect(rng: np.random.Generator, n_c: int, patient: np.ndarray | None) -> np.ndarray:
    if patient is None:
        return rng.normal(0, np.sqrt(VAR_C), n_c)
    shared = rng.normal(0, np.sqrt(0.7 * VAR_C), patient.max() + 1)[patient]
    return shared + rng.normal(0, np.sqrt(0.3 * VAR_C), n_c)


def simulate(rng: np.random.Generator, read: np.ndarray, truth: np.ndarray,
             patient: np.ndarray | None = None) -> pd.DataFrame:
    """One study: ``read[r, c]`` (the same in both modalities), gRoeMetz ratings (case effects shared
    within a ``patient`` when given)."""
    n_r, n_c = read.shape
    rows = []
    shared = {}
    for t in (0, 1):  # effects shared by the modalities, drawn per truth
        shared[t] = (rng.normal(0, np.sqrt(VAR_R), n_r)[:, None] + _case_effect(rng, n_c, patient)[None, :]
                     + rng.normal(0, np.sqrt(VAR_RC), (n_r, n_c)))
    rr, cc = np.nonzero(read)
    for mod in ("A", "B"):
        x = np.empty((n_r, n_c))
        for t in (0, 1):
            own = (rng.normal(0, np.sqrt(VAR_R), n_r)[:, None] + _case_effect(rng, n_c, patient)[None, :]
                   + rng.normal(0, np.sqrt(VAR_RC), (n_r, n_c)))
            cols = truth == t
            x[:, cols] = (MU[t] + shared[t] + own)[:, cols]
        frame = pd.DataFrame({"modality": mod, "reader_id": [f"r{r}" for r in rr], "case_id": [f"c{c}" for c in cc],
                              "truth": truth[cc], "rating": x[rr, cc]})
        if patient is not None:
            frame["patient_id"] = [f"p{p}" for p in patient[cc]]
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def designs(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray] | None]:
    out: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
    truth = np.repeat([0, 1], 50)
    out["fully crossed"] = (np.ones((6, 100), dtype=bool), truth)
    truth_sp = np.tile(np.repeat([0, 1], 20), 3)
    read = np.zeros((6, 120), dtype=bool)
    for g in range(3):
        read[2 * g:2 * g + 2, 40 * g:40 * (g + 1)] = True
    out["split-plot"] = (read, truth_sp)
    out["partially crossed"] = None  # drawn per study
    return out


def clustered(rng: np.random.Generator, studies: int) -> dict[str, object]:
    """Two images per patient: coverage resampling patients versus treating images as independent."""
    truth = np.repeat([0, 1], 50)
    patient = np.arange(100) // 2
    read = np.ones((6, 100), dtype=bool)
    hits = {"patients": 0, "images": 0}
    n = 0
    t0 = time.perf_counter()
    for _ in range(studies):
        df = simulate(rng, read, truth, patient)
        by_patient = analyze_ustat(df).differences[0].unbiased
        by_image = analyze_ustat(df, patient_column=None).differences[0].unbiased
        if None in (by_patient.ci_low, by_patient.ci_high, by_image.ci_low, by_image.ci_high):
            continue
        n += 1
        hits["patients"] += by_patient.ci_low <= 0 <= by_patient.ci_high  # type: ignore[operator]
        hits["images"] += by_image.ci_low <= 0 <= by_image.ci_high  # type: ignore[operator]
    return {"studies": studies, "used": n, "patients": hits["patients"] / n, "images": hits["images"] / n,
            "seconds": time.perf_counter() - t0}


def run(studies: int, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    table = []
    for name, fixed in designs(rng).items():
        hits = {"unbiased": 0, "mle": 0, "hillis": 0, "normal": 0}
        n_hillis = n_undefined = 0
        dfs = []
        t0 = time.perf_counter()
        for _ in range(studies):
            if fixed is None:
                truth = np.repeat([0, 1], 50)
                read = rng.random((6, 100)) < 0.6
            else:
                read, truth = fixed
            d = analyze_ustat(simulate(rng, read, truth)).differences[0]
            u, m = d.unbiased, d.mle
            if u.ci_low is None or u.ci_high is None:
                n_undefined += 1
                continue
            hits["unbiased"] += u.ci_low <= 0 <= u.ci_high
            hits["normal"] += u.ci_normal[0] <= 0 <= u.ci_normal[1]  # type: ignore[operator]
            if m.ci_low is not None and m.ci_high is not None:
                hits["mle"] += m.ci_low <= 0 <= m.ci_high
            if u.ci_hillis is not None:
                n_hillis += 1
                hits["hillis"] += u.ci_hillis[0] <= 0 <= u.ci_hillis[1]  # type: ignore[operator]
            dfs.append(u.df)
        n = studies - n_undefined
        table.append({"design": name, "studies": studies, "undefined": n_undefined,
                      "coverage_bdg": hits["unbiased"] / n, "coverage_mle": hits["mle"] / n,
                      "coverage_normal": hits["normal"] / n,
                      "coverage_hillis": hits["hillis"] / n_hillis if n_hillis else None,
                      "median_df": float(np.median(dfs)), "seconds": time.perf_counter() - t0})
    return table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--studies", type=int, default=1000, help="simulated studies per design (default 1000)")
    ap.add_argument("--clustered-studies", type=int, default=500,
                    help="simulated studies of the clustered design (default 500; each is analysed twice)")
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    table = run(args.studies, args.seed)
    cl = clustered(np.random.default_rng([args.seed, 1]), args.clustered_studies)
    print(f"Coverage of 95% intervals of AUC_A - AUC_B (true difference 0), {args.studies} studies per design")
    print(f"{'design':<18} {'BDG (unbiased)':>14} {'MLE':>7} {'normal':>7} {'Hillis':>7} {'median df':>9} "
          f"{'undef.':>6} {'s':>6}  target 93-97%")
    ok = True
    for row in table:
        cov = float(row["coverage_bdg"])  # type: ignore[arg-type]
        se = np.sqrt(0.95 * 0.05 / int(row["studies"]))  # type: ignore[call-overload]
        hill = "" if row["coverage_hillis"] is None else f"{row['coverage_hillis']:.3f}"
        inside = 0.93 <= cov <= 0.97
        ok &= inside or row["design"] == "fully crossed"
        print(f"{row['design']:<18} {cov:>14.3f} {row['coverage_mle']:>7.3f} {row['coverage_normal']:>7.3f} "
              f"{hill:>7} {row['median_df']:>9.1f} {row['undefined']:>6} {row['seconds']:>6.1f}  "
              f"{'in' if inside else 'OUT'} (MC s.e. {se:.3f})")
    inside = 0.93 <= float(cl["patients"]) <= 0.97  # type: ignore[arg-type]
    ok &= inside
    print(f"clustered, 2 images per patient ({cl['used']} of {cl['studies']} studies, {cl['seconds']:.1f} s): "
          f"patients resampled {cl['patients']:.3f} ({'in' if inside else 'OUT'}), images as independent "
          f"{cl['images']:.3f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
