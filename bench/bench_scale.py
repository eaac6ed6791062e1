"""Benchmark: whole studies of 1,000 and 10,000 cases (100,000 with --100k), wall time and per-step peak memory.

    python bench/bench_scale.py [--sizes 1000,10000] [--100k] [--work DIR] [--cores 2] [--shards 2]

Cohorts are built cheaply: 40 synthetic 1024x1024 face photos (``study synth``, 25% planted
exclusions) are hard-linked under one name per case, their annotations, reference grades and
readings (7 simulated readers) replicated per case, and a vendor's precomputed detections
derived from the annotations (boxes shifted, every fifth lesion missed, one false positive
per image, scores from a seeded generator). Each size runs ``study run`` with the shipped
protocol (chinese-2019: 2,000 bootstrap replicates) on ``--cores`` cores.

Per step, the peak resident memory (the largest over the step's jobs of the step's own
process peak, by the kernel's accounting, which each ``study step`` and ``study report`` writes to its
log: ``study.job_usage``; or of Snakemake's sampled ``max_rss`` of the job's processes when
that is larger), the summed job wall time and the summed job CPU time (user + system seconds
by getrusage, child processes included, which other load on the machine inflates far less
than wall time) are printed per size, with the growth exponent ``b`` of ``peak ~ N^b`` (and
of time and CPU time) fitted by least squares on log-log (b < 1: sublinear). Snakemake's own
record samples every 30 s after a job's first 30 s, so it misses peaks and CPU between
samples; both peaks are printed for the largest jobs. Child processes (the report's forked
figure workers, ``git`` run by collect's provenance) are listed with their own peak. The peer measured in the same run is the
smallest size: each larger size's wall time is printed as a ratio to the linear projection
from it (ratio < 1: better than linear). The machine's load average is printed before and
after each run (other load on the machine slows the wall time; peak memory is not
affected). The quality gate's cost per image per core is printed from its jobs' summed wall
time (each job is one single-threaded process).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BASE_CASES = 40


def build_base(work: Path) -> Path:
    from study.synth import make_cohort

    base = work / "base"
    if not (base / "manifest.csv").exists():
        print(f"making {BASE_CASES} synthetic 1024x1024 photos ...", file=sys.stderr)
        make_cohort(base, cases=BASE_CASES, seed=1, image_size=1024, exclusion_rate=0.25, workers=2)
    return base


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames or []), list(r)


def _write_csv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)


def build_cohort(base: Path, out: Path, n: int, *, seed: int = 0) -> Path:
    """An ``n``-case cohort replicating the base cohort (hard-linked images, replicated tables)."""
    if (out / "config.yaml").exists():
        return out / "config.yaml"
    rng = np.random.default_rng(seed)
    images = out / "cohort" / "images"
    images.mkdir(parents=True, exist_ok=True)
    header, base_rows = _read_csv(base / "manifest.csv")
    coco = json.loads((base / "annotations.json").read_text())
    anns_of: dict[int, list[dict]] = {}
    for a in coco["annotations"]:
        anns_of.setdefault(a["image_id"], []).append(a)
    base_images = coco["images"]
    ref_header, ref_rows = _read_csv(base / "reference.csv")
    ref_of = {r["case_id"]: r for r in ref_rows}
    rd_header, rd_rows = _read_csv(base / "readings.csv")
    readings_of: dict[str, list[dict]] = {}
    for r in rd_rows:
        readings_of.setdefault(r["case_id"], []).append(r)

    manifest, reference, readings, out_images, out_anns, dets = [], [], [], [], [], []
    ann_id = 0
    for i in range(n):
        b = base_rows[i % BASE_CASES]
        bim = base_images[i % BASE_CASES]
        cid = f"S{i:06d}"
        name = f"{cid}.jpg"
        dst = images / name
        if not dst.exists():
            os.link(base / "images" / b["image"], dst)
        manifest.append({**b, "case_id": cid, "patient_id": f"P{i // 2:06d}", "image": name})
        reference.append({**ref_of[b["case_id"]], "case_id": cid})
        readings += [{**r, "case_id": cid} for r in readings_of.get(b["case_id"], [])]
        image_id = i + 1
        out_images.append({**bim, "id": image_id, "file_name": name, "case_id": cid})
        for k, a in enumerate(anns_of.get(bim["id"], [])):
            ann_id += 1
            out_anns.append({**a, "id": ann_id, "image_id": image_id})
            if k % 5 == 4:
                continue  # a missed lesion
            x, y, w, h = a["bbox"]
            dx, dy = rng.normal(0, 0.1 * w), rng.normal(0, 0.1 * h)
            dets.append({"case_id": cid, "category_id": a["category_id"], "bbox": [x + dx, y + dy, w, h],
                         "score": float(rng.uniform(0.3, 1.0))})
        dets.append({"case_id": cid, "category_id": 1, "bbox": [10.0, 10.0, 20.0, 20.0],
                     "score": float(rng.uniform(0.05, 0.6))})  # a false positive
    c = out / "cohort"
    _write_csv(c / "manifest.csv", header, manifest)
    _write_csv(c / "reference.csv", ref_header, reference)
    _write_csv(c / "readings.csv", rd_header, readings)
    (c / "annotations.json").write_text(json.dumps({**coco, "images": out_images, "annotations": out_anns}))
    (c / "detections.json").write_text(json.dumps(dets))
    import yaml

    protocol = yaml.safe_load((REPO / "protocols" / "chinese-2019.yaml").read_text())
    cfg = {"study": f"scale-{n}", "protocol": str(REPO / "protocols" / "chinese-2019.yaml"),
           "results_dir": str(out / "results"),
           "cohort": {"manifest": str(c / "manifest.csv"), "image_root": str(images),
                      "annotations": str(c / "annotations.json"), "reference": str(c / "reference.csv"),
                      "readings": str(c / "readings.csv")},
           "models": [{"id": "vendor", "backend": "precomputed", "detections": str(c / "detections.json"),
                       "classes": protocol["classes"],
                       "categories": {cat["id"]: cat["name"] for cat in coco["categories"]}}]}
    (out / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return out / "config.yaml"


def step_of(bench_file: Path) -> str:
    """``quality-0.tsv`` -> ``quality``; ``predict-vendor-1.tsv`` -> ``predict``."""
    return bench_file.stem.split("-")[0]


#: ``study step`` names whose rule (and benchmark file) is named differently
_RULE_OF_STEP = {"grade": "grade_model", "merge": "merge_detections"}


def read_usage(results: Path) -> dict[str, dict[str, float]]:
    """Per step, from the line each ``study step`` writes to its job's log (``study.job_usage``:
    ``VmHWM`` and getrusage(2)): the largest peak of the step's own process (``self_mb``), of a child
    process (``child_mb``) and the summed CPU seconds (``cpu_s``) of its jobs."""
    from study.job_usage import parse_usage_line

    out: dict[str, dict[str, float]] = {}
    for f in sorted((results / "logs").glob("*.log")):
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            u = parse_usage_line(line)
            if u is not None:
                s = out.setdefault(_RULE_OF_STEP.get(u.step, u.step), {"self_mb": 0.0, "child_mb": 0.0, "cpu_s": 0.0})
                s["self_mb"] = max(s["self_mb"], u.self_mb)
                s["child_mb"] = max(s["child_mb"], u.child_mb)
                s["cpu_s"] += u.cpu_s
    return out


def read_benchmarks(results: Path) -> dict[str, dict[str, float]]:
    """Per step: the largest peak memory (MB) of its jobs, their summed wall and CPU seconds and job count.

    Peak memory is the larger of the step's own process peak by the kernel (exact, from its
    log: :func:`read_usage`) and Snakemake's sampled ``max_rss`` of the job's processes; CPU
    time is getrusage's where the log has it (Snakemake's is sampled and undercounts)."""
    usage = read_usage(results)
    out: dict[str, dict[str, float]] = {}
    for f in sorted((results / "benchmarks").glob("*.tsv")):
        with open(f, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if not rows:
            continue
        row = rows[-1]
        s = out.setdefault(step_of(f), {"peak_mb": 0.0, "seconds": 0.0, "cpu_s": 0.0, "jobs": 0})
        rss = float(row["max_rss"]) if row.get("max_rss") not in (None, "", "NA", "-") else float("nan")
        cpu = float(row["cpu_time"]) if row.get("cpu_time") not in (None, "", "NA", "-") else float("nan")
        s["peak_mb"] = max(s["peak_mb"], rss)
        s["seconds"] += float(row["s"])
        s["cpu_s"] += cpu
        s["jobs"] += 1
    for step, s in out.items():
        u = usage.get(step)
        s["sampled_mb"] = s["peak_mb"]
        s["self_mb"] = u["self_mb"] if u else float("nan")
        s["child_mb"] = u["child_mb"] if u else float("nan")
        if u:
            s["peak_mb"] = max(s["peak_mb"], u["self_mb"])
            s["cpu_s"] = u["cpu_s"]
    return out


def fit_exponent(sizes: list[int], values: list[float]) -> float:
    """``b`` of ``value ~ N^b`` by least squares on log-log (NaN with fewer than two sizes)."""
    pts = [(n, v) for n, v in zip(sizes, values) if v and v > 0 and np.isfinite(v)]
    if len(pts) < 2:
        return float("nan")
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000", help="comma-separated cohort sizes")
    ap.add_argument("--100k", dest="hundred_k", action="store_true", help="add a 100,000-case study")
    ap.add_argument("--work", help="working folder (kept; cohorts are re-used when present)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--shards", type=int, default=2)
    args = ap.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s} | ({100_000} if args.hundred_k else set()))
    work = Path(args.work) if args.work else Path(os.environ.get("TMPDIR", "/tmp")) / "bench-scale"
    work.mkdir(parents=True, exist_ok=True)
    base = build_base(work)
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")

    walls: dict[int, float] = {}
    steps: dict[int, dict[str, dict[str, float]]] = {}
    for n in sizes:
        t0 = time.perf_counter()
        config = build_cohort(base, work / f"n{n}", n)
        build_s = time.perf_counter() - t0
        results = work / f"n{n}" / "results"
        shutil.rmtree(results, ignore_errors=True)
        shutil.rmtree(work / f"n{n}" / ".snakemake", ignore_errors=True)
        import yaml

        cfg = yaml.safe_load(config.read_text())
        cfg["shards"] = args.shards
        config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        load0 = os.getloadavg()
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "study", "run", str(config), "--cores", str(args.cores)],
                              cwd=work / f"n{n}", env=env, capture_output=True, text=True)
        walls[n] = time.perf_counter() - t0
        load1 = os.getloadavg()
        if proc.returncode != 0:
            print(f"{n} cases: the study failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        steps[n] = read_benchmarks(results)
        worst = max(steps[n].items(), key=lambda kv: kv[1]["peak_mb"])
        print(f"{n:>7} cases: wall {walls[n]:7.1f} s ({walls[n] / 60:.2f} min; cohort built in {build_s:.0f} s), "
              f"largest job peak {worst[1]['peak_mb']:.0f} MB ({worst[0]}); load average "
              f"{load0[0]:.1f} before, {load1[0]:.1f} after, on {os.cpu_count()} cores", flush=True)
        gate = steps[n].get("quality")
        if gate:  # each quality job is one process with one OpenCV thread: its wall time is one core's time
            print(f"{'':>15}quality gate: {gate['jobs']:.0f} single-threaded jobs, {gate['seconds']:.1f} s summed wall "
                  f"= {1000 * gate['seconds'] / n:.2f} ms per 1024x1024 image per core (process start-up and "
                  f"I/O included; target <= 8 ms); CPU {1000 * gate['cpu_s'] / n:.2f} ms per image", flush=True)

    names = sorted({s for per in steps.values() for s in per}, key=lambda s: -max(
        steps[n].get(s, {}).get("peak_mb", 0) for n in sizes))
    head = "".join(f"{f'{n} peak MB':>14}{f'{n} s':>10}{f'{n} cpu s':>12}" for n in sizes)
    print(f"\n{'step':<20}{head}{'exp(mem)':>10}{'exp(time)':>10}{'exp(cpu)':>10}")
    for s in names:
        cells = "".join(f"{steps[n].get(s, {}).get('peak_mb', float('nan')):>14.0f}"
                        f"{steps[n].get(s, {}).get('seconds', float('nan')):>10.1f}"
                        f"{steps[n].get(s, {}).get('cpu_s', float('nan')):>12.1f}" for n in sizes)
        bm = fit_exponent(sizes, [steps[n].get(s, {}).get("peak_mb", float("nan")) for n in sizes])
        bt = fit_exponent(sizes, [steps[n].get(s, {}).get("seconds", float("nan")) for n in sizes])
        bc = fit_exponent(sizes, [steps[n].get(s, {}).get("cpu_s", float("nan")) for n in sizes])
        print(f"{s:<20}{cells}{bm:>10.2f}{bt:>10.2f}{bc:>10.2f}")
    totals = "".join(f"{'':>14}{sum(v['seconds'] for v in steps[n].values()):>10.1f}"
                     f"{sum(v['cpu_s'] for v in steps[n].values()):>12.1f}" for n in sizes)
    print(f"{'all jobs (sum)':<20}{totals}")
    for n in sizes:
        top = sorted(steps[n].items(), key=lambda kv: -kv[1]["peak_mb"])[:5]
        print(f"{n} cases, largest jobs: " + "; ".join(
            f"{name} {v['self_mb']:.0f} MB by the kernel, {v['sampled_mb']:.0f} MB sampled by Snakemake"
            for name, v in top))
        for name, v in steps[n].items():
            if v.get("child_mb", 0) > 0:
                print(f"{n} cases, {name}: largest child process {v['child_mb']:.0f} MB (a forked child's peak counts "
                      f"the pages it shares with its parent), the step's own process {v['self_mb']:.0f} MB")
    n0 = sizes[0]
    for n in sizes[1:]:
        linear = walls[n0] * n / n0
        print(f"wall at {n} cases vs the linear projection from {n0} ({linear:.0f} s): {walls[n] / linear:.2f}x")
    print(f"wall-time exponent: {fit_exponent(sizes, [walls[n] for n in sizes]):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
