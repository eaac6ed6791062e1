"""Predict throughput: the harness (files on disk -> detections table) against forward passes alone.

    python bench/bench_predict.py [--images 32] [--size 512] [--batch-size 4] [--rounds 7] [--threads N]

Builds a detector (the demo architecture ``acne_small_frcnn`` when
``study.detectors.small_archs`` provides it, else torchvision's
``fasterrcnn_mobilenet_v3_large_320_fpn``; random weights with BatchNorm statistics
calibrated on the images), writes synthetic JPEG photos, then measures in one run,
interleaved over ``--rounds`` rounds:

- limit: the model's forward passes alone, in batches of ``--batch-size``, over the same
  images already decoded and converted to tensors in memory;
- harness: ``study.inference.predict_shard`` from the JPEG files to the Parquet
  detections table (decoding in threads, class mapping, table, atomic write), with the
  model already loaded.

Prints images/s of both (median over rounds) and ``ratio = harness / limit`` (target >= 0.90)
as the median of the per-round ratios: each round runs both back to back, so a change in the
machine's load between rounds cancels out (on a shared machine it changes a lot).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def synthetic_photos(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        im = np.empty((size, size, 3), np.uint8)
        im[:] = rng.integers(150, 220, 3)
        for _ in range(40):
            col = tuple(int(v) for v in rng.integers(0, 255, 3))
            cv2.circle(im, (int(rng.integers(0, size)), int(rng.integers(0, size))), int(rng.integers(3, 15)), col, -1)
        im = cv2.GaussianBlur(im, (5, 5), 1.5)
        noise = rng.normal(0, 6, im.shape)
        out.append(np.clip(im + noise, 0, 255).astype(np.uint8))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--workers", type=int, default=2, help="decoding threads")
    ap.add_argument("--threads", type=int, help="torch intra-op threads for both (default: torch's)")
    args = ap.parse_args(argv)

    import cv2
    import pandas as pd
    import torch
    import yaml

    from study.detectors import load_detector
    from study.detectors.torchvision_backend import images_to_tensors
    from study.inference import configure_torch, predict_shard
    from study.modelspec import load_model_spec

    try:
        from study.detectors.small_archs import ARCHITECTURES
        arch = "acne_small_frcnn" if "acne_small_frcnn" in ARCHITECTURES else None
    except ImportError:
        arch = None
    kwargs = {"min_size": args.size, "max_size": args.size}
    if arch is None:
        arch = "fasterrcnn_mobilenet_v3_large_320_fpn"
    classes = ["comedone", "papule", "pustule", "nodule", "cyst", "scar"]

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        photos = synthetic_photos(args.images, args.size)
        rows = []
        for i, im in enumerate(photos):
            p = d / f"img{i:04d}.jpg"
            cv2.imwrite(str(p), cv2.cvtColor(im, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
            rows.append({"case_id": f"c{i:04d}", "image_path": str(p)})
        cases = pd.DataFrame(rows)

        # a model with spread-out scores: random weights, BatchNorm statistics from the photos
        spec_fields = {"id": "bench", "backend": "torchvision", "architecture": arch, "architecture_kwargs": kwargs,
                       "weights": "w.pt", "classes": classes, "score_threshold": 0.05, "batch_size": args.batch_size}
        from study.detectors.torchvision_backend import build_model

        from study.modelspec import ModelSpec

        torch.manual_seed(0)
        model = build_model(ModelSpec.model_validate(spec_fields))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        model.eval()
        model.backbone.train()
        with torch.no_grad():
            model.backbone(model.transform(images_to_tensors(photos[:8], "cpu"))[0].tensors)
        model.eval()
        torch.save(model.state_dict(), d / "w.pt")
        (d / "model.yaml").write_text(yaml.safe_dump(spec_fields))
        spec = load_model_spec(d / "model.yaml")

        t = time.perf_counter()
        det = load_detector(spec)
        load_s = time.perf_counter() - t
        threads = configure_torch(device="cpu", threads=args.threads)
        tensors = images_to_tensors(photos, det.device)
        batches = [tensors[i:i + args.batch_size] for i in range(0, len(tensors), args.batch_size)]
        det.forward_tensors(batches[0])  # warm-up

        def limit() -> float:
            t0 = time.perf_counter()
            n = 0
            for b in batches:
                out = det.forward_tensors(b)
                n += sum(len(o["boxes"]) for o in out)
            return time.perf_counter() - t0

        def harness(k: int) -> tuple[float, dict]:
            t0 = time.perf_counter()
            s = predict_shard(spec, cases, shard=0, n_shards=1, out=d / f"out{k}.parquet", progress=False,
                              workers=args.workers, detector=det, threads=args.threads)
            return time.perf_counter() - t0, s

        lim, har = [], []
        summary = None
        for k in range(args.rounds):
            lim.append(limit())
            h, summary = harness(k)
            har.append(h)
        n = len(photos)
        lim_ips = n / statistics.median(lim)
        har_ips = n / statistics.median(har)
        print(f"model {arch} ({args.size}x{args.size} JPEG, batch {args.batch_size}, {threads} torch threads, "
              f"{args.workers} decode threads), {n} images, {summary['n_detections']} detections, "
              f"model load {load_s:.2f} s")
        print(f"limit   (forward passes on decoded tensors): {lim_ips:7.2f} images/s  rounds {[round(x, 2) for x in lim]} s")
        print(f"harness (files -> detections table)        : {har_ips:7.2f} images/s  rounds {[round(x, 2) for x in har]} s")
        paired = statistics.median(lo / hi for lo, hi in zip(lim, har))
        print(f"ratio harness/limit = {paired:.3f}  (median of the per-round ratios; target >= 0.90); "
              f"ratio of the medians {har_ips / lim_ips:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
