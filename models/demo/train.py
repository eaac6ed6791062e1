"""Training recipe of the demo detector (``models/demo/demo-frcnn.pt``).

    .venv/bin/python models/demo/train.py            # train, evaluate, write weights + metrics
    .venv/bin/python models/demo/train.py --eval-only

1. Builds a synthetic TRAINING cohort with :func:`study.synth.make_cohort` (seed 1001,
   no planted exclusions) in ``--work`` (default ``/tmp/acne-demo-train``).
2. Trains ``acne_small_frcnn`` (``study/detectors/small_archs.py``) on CPU from random
   initialisation: fixed seeds, ``torch.use_deterministic_algorithms(True)``, a fixed
   thread count, a fixed number of iterations (AdamW, linear warm-up, cosine
   decay), random 320 px crops, horizontal flips and brightness / contrast jitter.
3. Saves ``torch.save(model.state_dict())`` to ``demo-frcnn.pt`` next to this file,
   writes its sha256 into ``model.yaml``.
4. Evaluates on the demo TEST cohort (what ``config/demo.yaml`` builds: 160 cases,
   seed 7), on the cases without a planted exclusion, with pycocotools (maxDets raised to
   1000): AP50 for "any lesion" (class-agnostic) and per class; times CPU inference.
   Everything is written to ``metrics.json`` next to the weights (quoted by MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLASSES = ["comedone", "papule", "pustule", "nodule", "cyst", "scar"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="/tmp/acne-demo-train", help="where the training and test cohorts are built")
    p.add_argument("--train-cases", type=int, default=400)
    p.add_argument("--train-seed", type=int, default=1001)
    p.add_argument("--test-cases", type=int, default=160)
    p.add_argument("--test-seed", type=int, default=7)
    p.add_argument("--iters", type=int, default=700)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--crop", type=int, default=320)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--threads", type=int, default=1,
                   help="1 is fastest on a shared 2-core machine (no thread contention)")
    p.add_argument("--seed", type=int, default=20261121)
    p.add_argument("--weights", default=str(HERE / "demo-frcnn.pt"))
    p.add_argument("--metrics", default=str(HERE / "metrics.json"))
    p.add_argument("--eval-only", action="store_true")
    return p.parse_args(argv)


def build_cohort(out: Path, *, cases: int, seed: int, exclusion_rate: float) -> dict:
    from study.synth import make_cohort

    marker = out / "summary.json"
    if marker.exists():
        s = json.loads(marker.read_text())
        if s.get("cases") == cases and s.get("seed") == seed and s.get("exclusion_rate") == exclusion_rate:
            return s
    s = make_cohort(out, cases=cases, seed=seed, exclusion_rate=exclusion_rate)
    s["exclusion_rate"] = exclusion_rate
    marker.write_text(json.dumps(s, indent=2))
    return s


def load_targets(cohort: Path):
    """Per image: file path and boxes (x1 y1 x2 y2) with labels 1..6."""
    coco = json.loads((cohort / "annotations.json").read_text())
    by_img = {im["id"]: {"file": cohort / "images" / im["file_name"], "boxes": [], "labels": []} for im in coco["images"]}
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        by_img[a["image_id"]]["boxes"].append([x, y, x + w, y + h])
        by_img[a["image_id"]]["labels"].append(a["category_id"])
    return [by_img[k] for k in sorted(by_img)]


def read_rgb(path: Path) -> np.ndarray:
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].copy()


def sample_batch(rng: np.random.Generator, items, images, *, batch: int, crop: int):
    """Random crops (biased to contain lesions), flips and photometric jitter."""
    import torch

    imgs, targets = [], []
    while len(imgs) < batch:
        k = int(rng.integers(0, len(items)))
        it, img = items[k], images[k]
        H, W = img.shape[:2]
        boxes = np.asarray(it["boxes"], np.float32).reshape(-1, 4)
        labels = np.asarray(it["labels"], np.int64)
        if len(boxes) and rng.random() < 0.85:  # centre the crop near a random lesion
            b = boxes[int(rng.integers(0, len(boxes)))]
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            x0 = int(np.clip(cx - rng.uniform(0.15, 0.85) * crop, 0, W - crop))
            y0 = int(np.clip(cy - rng.uniform(0.15, 0.85) * crop, 0, H - crop))
        else:
            x0, y0 = int(rng.integers(0, W - crop + 1)), int(rng.integers(0, H - crop + 1))
        sub = img[y0:y0 + crop, x0:x0 + crop].astype(np.float32) / 255.0
        bx = boxes - np.array([x0, y0, x0, y0], np.float32)
        # keep lesions whose centre lies in the crop; clip them
        c = (bx[:, :2] + bx[:, 2:]) / 2
        keep = (c[:, 0] >= 0) & (c[:, 0] < crop) & (c[:, 1] >= 0) & (c[:, 1] < crop)
        bx = np.clip(bx[keep], 0, crop)
        lb = labels[keep]
        ok = (bx[:, 2] - bx[:, 0] >= 2) & (bx[:, 3] - bx[:, 1] >= 2)
        bx, lb = bx[ok], lb[ok]
        if rng.random() < 0.5:
            sub = sub[:, ::-1]
            bx = np.stack([crop - bx[:, 2], bx[:, 1], crop - bx[:, 0], bx[:, 3]], axis=1) if len(bx) else bx
        gain = rng.uniform(0.75, 1.25)
        bias = rng.uniform(-0.08, 0.08)
        sub = np.clip((sub - 0.5) * rng.uniform(0.8, 1.2) + 0.5, 0, 1) * gain + bias
        sub = np.clip(sub, 0, 1)
        imgs.append(torch.from_numpy(np.ascontiguousarray(sub.transpose(2, 0, 1))))
        targets.append({"boxes": torch.from_numpy(np.asarray(bx, np.float32).reshape(-1, 4)),
                        "labels": torch.from_numpy(np.asarray(lb, np.int64))})
    return imgs, targets


def train(args) -> dict:
    import torch

    from study.detectors.small_archs import ARCHITECTURES

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    train_dir = Path(args.work) / f"train-{args.train_seed}-{args.train_cases}"
    t0 = time.time()
    build_cohort(train_dir, cases=args.train_cases, seed=args.train_seed, exclusion_rate=0.0)
    t_synth = time.time() - t0
    items = load_targets(train_dir)
    images = [read_rgb(it["file"]) for it in items]
    model = ARCHITECTURES["acne_small_frcnn"](num_classes=len(CLASSES) + 1)
    model.transform.min_size = (args.crop,)  # crops are fed at their own size
    model.transform.max_size = args.crop
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    warm = min(100, args.iters // 10)

    def lr_at(i):
        if i < warm:
            return args.lr * (0.1 + 0.9 * i / warm)
        return args.lr * 0.5 * (1 + math.cos(math.pi * (i - warm) / max(1, args.iters - warm)))

    rng = np.random.default_rng([args.seed, 1])
    t1 = time.time()
    running = None
    for i in range(args.iters):
        for g in opt.param_groups:
            g["lr"] = lr_at(i)
        imgs, targets = sample_batch(rng, items, images, batch=args.batch, crop=args.crop)
        losses = model(imgs, targets)
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        running = float(loss) if running is None else 0.95 * running + 0.05 * float(loss)
        if i % 50 == 0 or i == args.iters - 1:
            el = time.time() - t1
            print(f"iter {i:5d}/{args.iters} loss {running:.3f} "
                  + " ".join(f"{k[5:]}={float(v):.3f}" for k, v in losses.items())
                  + f" lr {lr_at(i):.4f} {el:.0f}s", flush=True)
    t_train = time.time() - t1
    save_state_dict(model.state_dict(), args.weights)
    return {"train_cohort": {"generator": "study.synth.make_cohort", "seed": args.train_seed, "cases": args.train_cases,
                             "exclusion_rate": 0.0, "lesions": json.loads((train_dir / "summary.json").read_text())["lesions"]},
            "recipe": {"iterations": args.iters, "batch": args.batch, "crop": args.crop, "optimizer": "AdamW, weight decay 1e-4, "
                       "grad-norm clip 10", "lr": args.lr, "schedule": f"linear warm-up {warm} iters, cosine decay",
                       "augmentations": "random crops (85% centred near a lesion), horizontal flip, contrast x U(0.8,1.2), "
                       "gain x U(0.75,1.25), bias U(-0.08,0.08)", "torch_seed": args.seed, "threads": args.threads,
                       "deterministic_algorithms": True},
            "timing_s": {"synthesise_train_cohort": round(t_synth, 1), "train": round(t_train, 1)}}


def save_state_dict(state, path) -> None:
    """``torch.save`` into memory, then an atomic write: the zip archive inside a ``.pt`` file
    is named after the file it is saved to, so saving to a temporary file name directly
    would make the bytes (and the sha256) differ between identical trainings."""
    import torch

    from study import io as sio

    buf = io.BytesIO()
    torch.save(state, buf)
    sio.write_bytes(path, buf.getvalue())


def coco_ap50(gt: dict, dets: list[dict]) -> tuple[float, dict[str, float]]:
    """pycocotools bbox AP at IoU 0.5 (maxDets 1000): overall mean over classes and per class."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = json.loads(json.dumps(gt))
        cg.createIndex()
        cd = cg.loadRes(dets) if dets else None
        if cd is None:
            return 0.0, {}
        ev = COCOeval(cg, cd, "bbox")
        ev.params.maxDets = [1, 100, 1000]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"][0, :, :, 0, 2]  # IoU .5, all recalls, classes, area all, maxDets 1000
    per = {}
    for k, cat in enumerate(ev.params.catIds):
        p = prec[:, k]
        name = cg.cats[cat]["name"]
        per[name] = float(p[p > -1].mean()) if (p > -1).any() else float("nan")
    return float(ev.stats[1]), per


def evaluate(args) -> dict:
    import csv

    import torch

    from study.detectors.small_archs import ARCHITECTURES
    from study.io import sha256_file

    torch.set_num_threads(args.threads)
    test_dir = Path(args.work) / f"test-{args.test_seed}-{args.test_cases}"
    from study.synth import make_cohort  # noqa: F401  (the demo builds it with default options)

    build_cohort(test_dir, cases=args.test_cases, seed=args.test_seed, exclusion_rate=0.15)
    manifest = list(csv.DictReader(open(test_dir / "manifest.csv", encoding="utf-8")))
    keep = {m["image"] for m in manifest if not m["planted_exclusion"]}
    gt = json.loads((test_dir / "annotations.json").read_text())
    gt["images"] = [im for im in gt["images"] if im["file_name"] in keep]
    ids = {im["id"] for im in gt["images"]}
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in ids]

    model = ARCHITECTURES["acne_small_frcnn"](num_classes=len(CLASSES) + 1)
    model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    model.eval()
    dets = []
    times = []
    with torch.inference_mode():
        model([torch.zeros(3, 512, 512)])  # warm-up
        for im in gt["images"]:
            x = torch.from_numpy(read_rgb(test_dir / "images" / im["file_name"]).transpose(2, 0, 1).copy()).float() / 255
            t = time.perf_counter()
            out = model([x])[0]
            times.append(time.perf_counter() - t)
            for b, l, s in zip(out["boxes"].tolist(), out["labels"].tolist(), out["scores"].tolist()):
                if s < 0.05:
                    continue
                dets.append({"image_id": im["id"], "category_id": int(l), "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                             "score": float(s)})
    map50, per_class = coco_ap50(gt, dets)
    agn_gt = dict(gt, categories=[{"id": 1, "name": "lesion"}],
                  annotations=[dict(a, category_id=1) for a in gt["annotations"]])
    agn_dt = [dict(d, category_id=1) for d in dets]
    any50, _ = coco_ap50(agn_gt, agn_dt)
    return {
        "test_cohort": {"generator": "study.synth.make_cohort", "seed": args.test_seed, "cases": args.test_cases,
                        "exclusion_rate": 0.15, "evaluated_images": len(gt["images"]),
                        "evaluated_lesions": len(gt["annotations"])},
        "ap50_any_lesion": round(any50, 4),
        "map50": round(map50, 4),
        "ap50_per_class": {k: round(v, 4) for k, v in per_class.items()},
        "score_threshold": 0.05,
        "inference_s_per_image": {"mean": round(float(np.mean(times)), 4), "max": round(float(np.max(times)), 4),
                                  "threads": args.threads},
        "weights": Path(args.weights).name,
        "weights_sha256": sha256_file(args.weights),
        "weights_bytes": Path(args.weights).stat().st_size,
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "torchvision": __import__("torchvision").__version__, "machine": platform.machine()},
    }


def update_model_yaml(sha: str) -> None:
    from study import io as sio

    p = HERE / "model.yaml"
    text = p.read_text(encoding="utf-8")
    lines = [f"weights_sha256: {sha}" if ln.startswith("weights_sha256:") else ln for ln in text.splitlines()]
    sio.write_text(p, "\n".join(lines) + "\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    from study import io as sio

    metrics = {}
    if not args.eval_only:
        metrics.update(train(args))
    elif Path(args.metrics).exists():
        old = json.loads(Path(args.metrics).read_text())
        metrics.update({k: old[k] for k in ("train_cohort", "recipe", "timing_s", "command") if k in old})
    t = time.time()
    metrics.update(evaluate(args))
    metrics.setdefault("timing_s", {})["evaluate"] = round(time.time() - t, 1)
    if not args.eval_only:
        metrics["command"] = "python models/demo/train.py " + " ".join(argv if argv is not None else sys.argv[1:])
    sio.write_json(args.metrics, metrics)
    if Path(args.weights).resolve() == (HERE / "demo-frcnn.pt").resolve():
        update_model_yaml(metrics["weights_sha256"])
    print(json.dumps({k: metrics[k] for k in ("ap50_any_lesion", "map50", "ap50_per_class", "inference_s_per_image",
                                                "weights_sha256", "weights_bytes", "timing_s")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
