"""``study predict``: run one model on a folder of images or a manifest; write COCO results JSON.

    study predict --model MODEL.yaml (--images DIR | --manifest CSV) --out DT.json

Besides ``DT.json`` (COCO results: ``image_id, category_id, bbox, score[, segmentation]``)
it writes ``DT.parquet`` (the detections table) and ``DT.meta.json`` (weights sha256,
backend and version, torch version, device, spec). Work is done in parts of
``--part-size`` images kept in ``DT.json.parts/``: an interrupted run, re-run with the same
arguments, does not redo finished parts, and gives the same detections as an
uninterrupted run. The final files are written atomically; the parts folder is then removed.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path

from pydantic import PositiveInt

from study.options import _Options

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


class RunOptions(_Options):
    """How ``study predict`` runs (not what it computes); the ranges live in these types only."""

    batch_size: PositiveInt | None = None  # None: the spec's
    workers: PositiveInt = 2
    part_size: PositiveInt = 64
    threads: PositiveInt | None = None  # None: torch's


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="run one model on images; write COCO results JSON",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="MODEL.yaml", help="model spec")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", metavar="DIR", help="folder of images (searched recursively); case_id = path without suffix")
    src.add_argument("--manifest", metavar="CSV", help="manifest CSV with case_id and image columns")
    p.add_argument("--image-root", metavar="DIR", help="folder the manifest's image paths are relative to "
                   "(default: the manifest's folder)")
    p.add_argument("--out", required=True, metavar="DT.json", help="COCO results JSON to write")
    p.add_argument("--protocol", metavar="P", help="protocol YAML: check the class mapping against its classes")
    p.add_argument("--ground-truth", metavar="GT.json", help="COCO ground truth: take image and category ids from "
                   "it (images matched by case_id or file_name)")
    p.add_argument("--batch-size", type=int, help="images per forward pass (default: the spec's)")
    p.add_argument("--workers", type=int, default=2, help="image decoding threads (default 2)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's, one per core)")
    p.add_argument("--part-size", type=int, default=64, help="images per resumable part (default 64)")
    p.add_argument("--device", help="override the spec's device (cpu, cuda, cuda:1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _cases_from_dir(root: Path):
    import pandas as pd

    from study.errors import StudyError

    if not root.is_dir():
        raise StudyError("not a folder", file=str(root))
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise StudyError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found", file=str(root))
    rel = [f.relative_to(root).as_posix() for f in files]
    ids = [r.rsplit(".", 1)[0] for r in rel]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise StudyError(f"two images share a name without suffix (case ids must be unique): {dup[:5]}", file=str(root))
    return pd.DataFrame({"case_id": ids, "image": rel, "image_path": [str(f.resolve()) for f in files]})


def _cases_from_manifest(path: Path, image_root: Path | None):
    import pandas as pd

    from study.errors import Problem, StudyError, raise_if

    try:
        df = pd.read_csv(path, dtype={"case_id": str, "image": str}, keep_default_na=False)
    except FileNotFoundError:
        raise StudyError("manifest not found", file=str(path)) from None
    missing = [c for c in ("case_id", "image") if c not in df.columns]
    if missing:
        raise StudyError(f"missing columns {missing}; have {list(df.columns)}", file=str(path))
    root = image_root or path.parent
    df["image_path"] = [str((root / p).resolve()) for p in df["image"]]
    problems = [Problem(str(path), f"row {i + 2}", f"image not found: {p}")
                for i, p in enumerate(df["image_path"]) if not Path(p).is_file()]
    dup = df["case_id"][df["case_id"].duplicated()].tolist()
    if dup:
        problems.append(Problem(str(path), "case_id", f"case ids must be unique; repeated: {dup[:5]}"))
    raise_if(problems[:50])
    return df


def _ground_truth_with_cases(gt: dict, cases, path: str) -> dict:
    """Give each GT image the case_id it is (by its own case_id or by file_name)."""
    from study.errors import StudyError

    by_file = {}
    for cid, image in zip(cases["case_id"], cases["image"]):
        by_file[image] = cid
        by_file.setdefault(Path(image).name, cid)
    images = []
    for im in gt.get("images", []):
        im = dict(im)
        if "case_id" not in im:
            fn = str(im.get("file_name", ""))
            cid = by_file.get(fn, by_file.get(Path(fn).name))
            if cid is not None:
                im["case_id"] = cid
        images.append(im)
    if not images:
        raise StudyError("ground truth has no images", file=path)
    return {**gt, "images": images}


def run(args) -> int:
    from study.inference import merge_shards, predict_shard
    from study.io import read_json
    from study.modelspec import load_model_spec
    from study.options import override

    protocol_classes = polygon_classes = None
    if args.protocol:
        from study.protocol import load_protocol

        proto = load_protocol(args.protocol).protocol
        protocol_classes, polygon_classes = proto.classes, proto.polygon_classes
    spec = load_model_spec(args.model, protocol_classes=protocol_classes, polygon_classes=polygon_classes)
    if args.device:
        spec = load_model_spec({**spec.model_dump(exclude_unset=True), "device": args.device},
                               protocol_classes=protocol_classes, polygon_classes=polygon_classes, base_dir=spec.base_dir)
    run_opts = override(RunOptions(), batch_size=args.batch_size, workers=args.workers, part_size=args.part_size,
                        threads=args.threads)
    if args.images:
        cases = _cases_from_dir(Path(args.images))
    else:
        cases = _cases_from_manifest(Path(args.manifest), Path(args.image_root) if args.image_root else None)
    gt = None
    if args.ground_truth:
        gt = _ground_truth_with_cases(read_json(args.ground_truth), cases, args.ground_truth)

    out = Path(args.out)
    parts_dir = out.with_name(out.name + ".parts")
    n_parts = max(1, math.ceil(len(cases) / run_opts.part_size))
    from study.detectors import load_detector

    loaded = []

    def detector():  # loaded once, and only when a part must be computed
        if not loaded:
            loaded.append(load_detector(spec))
        return loaded[0]

    paths = []
    total = {"n_images": 0, "resumed_parts": 0}
    for k in range(n_parts):
        part = parts_dir / f"part-{k:05d}-of-{n_parts:05d}.parquet"
        s = predict_shard(spec, cases, shard=k, n_shards=n_parts, out=part, batch_size=run_opts.batch_size,
                          workers=run_opts.workers, progress=not args.no_progress, threads=run_opts.threads,
                          detector=detector)
        total["n_images"] += s["n_images"]
        total["resumed_parts"] += int(s["resumed"])
        paths.append(part)
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    meta = merge_shards(paths, spec=spec, ground_truth=gt, out_table=out.with_name(stem + ".parquet"),
                        out_coco_json=out, out_meta=out.with_name(stem + ".meta.json"))
    shutil.rmtree(parts_dir, ignore_errors=True)
    for w in meta.warnings:
        print(f"study predict: warning: {w}", file=sys.stderr)
    print(f"{meta.n_images} images, {meta.n_detections} detections "
          f"({total['resumed_parts']} of {n_parts} parts resumed) -> {out}", file=sys.stderr)
    print(out)
    return 0
