"""Batched, sharded, resumable prediction with a progress bar.

``predict_shard`` runs one model on one shard of the cases and writes that shard's
detections table (Parquet, atomically); ``merge_shards`` joins the shards into the model's
detections table, a COCO results JSON and a meta JSON (weights sha256, backend version).

How it is fast: a thread pool decodes images (``cv2.imread`` releases the GIL) ahead of the
model, so the next batch is ready when the current forward pass ends. How it is
reproducible: shards are contiguous chunks of the cases sorted by ``case_id``; a batch only
holds images of one size (a detector pads a batch to its largest image, so mixing sizes
would make an image's boxes depend on its neighbours); CPU runs use deterministic
algorithms with a fixed thread count and seed. How it is resumable: a shard file carries a
fingerprint of the spec, the model files and its cases; a finished shard with the same
fingerprint is not redone.

Shard table columns: ``case_id, class, score, x, y, w, h`` (COCO xywh, original pixels),
``segmentation`` (JSON list of polygons or null); rows ordered by case_id, then score
(descending), then model order.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from study.errors import Problem, StudyError, raise_if
from study.io import atomic_path, sha256_bytes, sha256_file, write_json, write_parquet
from study.results.models import ModelCard, ModelClasses, ModelMeta, ShardSummary

COLUMNS = ["case_id", "class", "score", "x", "y", "w", "h", "segmentation"]
_META_KEY = b"acne_study.predict"


# --------------------------------------------------------------------------- images
def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to an RGB ``uint8`` HxWx3 array (:func:`study.cohort.images.read_rgb`: OpenCV,
    EXIF orientation applied; grey, 16-bit, palette, RGBA and CMYK files converted to 8-bit RGB)."""
    from study.cohort.images import read_rgb

    im = read_rgb(path)
    if im is None:
        raise StudyError("cannot read the image (missing or not a decodable image file)", file=str(path))
    return im


def _lower_thread_priority() -> None:
    """Let decoding threads yield the CPU to the model's threads (Linux: nice is per thread).

    Decoding only has to stay ahead of the model; on a busy machine it should not take
    cores from the forward pass, whose OpenMP threads wait for each other.
    """
    import threading

    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


def iter_batches(paths: Sequence[str], *, batch_size: int, workers: int = 2,
                 prefetch_batches: int = 2) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """Yield ``(indices, images)`` batches of decoded images, in order, decoding ahead in threads.

    A batch holds at most ``batch_size`` consecutive images *of one shape*; up to
    ``prefetch_batches`` batches are decoded while the caller runs the model.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    ahead = max(1, prefetch_batches) * batch_size + max(1, workers)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode",
                            initializer=_lower_thread_priority) as pool:
        pending: collections.deque = collections.deque()
        nxt = 0

        def fill():
            nonlocal nxt
            while nxt < len(paths) and len(pending) < ahead:
                pending.append((nxt, pool.submit(read_image, paths[nxt])))
                nxt += 1

        fill()
        idx: list[int] = []
        ims: list[np.ndarray] = []
        while pending:
            i, fut = pending.popleft()
            fill()
            im = fut.result()
            if ims and (im.shape != ims[0].shape or len(ims) >= batch_size):
                yield idx, ims
                idx, ims = [], []
            idx.append(i)
            ims.append(im)
        if ims:
            yield idx, ims


def configure_torch(*, device: str, threads: int | None = None, seed: int = 0) -> int:
    """Thread count, seed and deterministic algorithms for reproducible CPU inference.

    ``threads`` sets torch's intra-op threads (a Snakemake rule passes its ``threads``);
    ``None`` keeps torch's default (one per core, or ``OMP_NUM_THREADS``). Returns the
    number in force.
    """
    import torch

    if threads is not None and torch.get_num_threads() != int(threads):
        torch.set_num_threads(max(1, int(threads)))
    torch.manual_seed(seed)
    if device == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.get_num_threads()


@contextlib.contextmanager
def torch_runtime(*, device: str, threads: int | None = None, seed: int = 0) -> Iterator[int]:
    """:func:`configure_torch` for the duration of a block; the previous settings are restored after."""
    import torch

    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        yield configure_torch(device=device, threads=threads, seed=seed)
    finally:
        if torch.get_num_threads() != before[0]:
            torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1], warn_only=before[2])


def torch_version() -> str | None:
    """``torch.__version__`` without importing torch (665 MB resident) when no backend has imported it.

    Read from the installed package's ``torch/version.py`` (the file ``torch.__version__``
    comes from); None when torch is not installed.
    """
    import importlib.util
    import sys

    if "torch" in sys.modules:
        return str(sys.modules["torch"].__version__)
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return None
    import ast

    tree = ast.parse(Path(spec.origin).with_name("version.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets):
            return str(ast.literal_eval(node.value))
    return None


# --------------------------------------------------------------------------- shards
def shard_cases(cases: pd.DataFrame, *, shard: int, n_shards: int) -> pd.DataFrame:
    """The rows of one shard: cases sorted by ``case_id`` (as text), then contiguous chunks.

    The split depends only on the set of case ids, so it is stable across runs and machines.
    A ``_position`` column keeps each row's position in ``cases`` (the manifest order).
    """
    if n_shards < 1 or not 0 <= shard < n_shards:
        raise StudyError(f"shard {shard} of {n_shards}: need 0 <= shard < n_shards", where="shard")
    df = cases.reset_index(drop=True).assign(_position=np.arange(len(cases)))
    df["case_id"] = df["case_id"].astype(str)
    df = df.sort_values("case_id", kind="mergesort").reset_index(drop=True)
    n = len(df)
    lo, hi = shard * n // n_shards, (shard + 1) * n // n_shards
    return df.iloc[lo:hi].reset_index(drop=True)


def _check_cases(cases: pd.DataFrame, *, needs_pixels: bool) -> None:
    problems = []
    need = ["case_id"] + (["image_path"] if needs_pixels else [])
    missing = [c for c in need if c not in cases.columns]
    if missing:
        problems.append(Problem("cases", "", f"missing columns {missing}; have {list(cases.columns)}"))
    elif cases["case_id"].astype(str).duplicated().any():
        dup = cases["case_id"].astype(str)[cases["case_id"].astype(str).duplicated()].unique()[:5].tolist()
        problems.append(Problem("cases", "case_id", f"case ids must be unique; repeated: {dup}"))
    raise_if(problems)


def _spec_files(spec) -> dict[str, str]:
    """sha256 of every file the spec names (for the fingerprint)."""
    out = {}
    for key in ("weights", "config", "file", "detections"):
        v = getattr(spec, key)
        if v:
            out[key] = sha256_file(spec.path(v))
    if isinstance(spec.images, str):
        out["images"] = sha256_file(spec.path(spec.images))
    return out


def _face_table(face_boxes: pd.DataFrame | None) -> dict[str, tuple[float, float, float, float]] | None:
    if face_boxes is None:
        return None
    cols = ["face_x0", "face_y0", "face_x1", "face_y1"]
    missing = [c for c in ["case_id"] + cols if c not in face_boxes.columns]
    if missing:
        raise StudyError(f"face boxes need columns case_id, face_x0, face_y0, face_x1, face_y1 (missing {missing})",
                         file="face_boxes")
    out = {}
    for cid, *box in face_boxes[["case_id"] + cols].itertuples(index=False):
        if all(np.isfinite(v) for v in box):
            out[str(cid)] = tuple(float(v) for v in box)
    return out


def _read_meta(path: Path) -> dict | None:
    import pyarrow.parquet as pq

    try:
        md = pq.read_schema(path).metadata or {}
    except Exception:
        return None
    raw = md.get(_META_KEY)
    return json.loads(raw) if raw else None


def _write_table(path: Path, df: pd.DataFrame, meta: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    md = dict(table.schema.metadata or {})
    md[_META_KEY] = json.dumps(meta, sort_keys=True).encode("utf-8")
    table = table.replace_schema_metadata(md)
    with atomic_path(path, suffix=".parquet.tmp") as tmp:
        pq.write_table(table, tmp)


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame({
        "case_id": pd.Series(dtype=str), "class": pd.Series(dtype=str), "score": pd.Series(dtype="float64"),
        "x": pd.Series(dtype="float64"), "y": pd.Series(dtype="float64"), "w": pd.Series(dtype="float64"),
        "h": pd.Series(dtype="float64"), "segmentation": pd.Series(dtype=object)})


def predict_shard(spec, cases: pd.DataFrame, *, shard: int, n_shards: int, out: str | os.PathLike,
                  batch_size: int | None = None, workers: int = 2, progress: bool = True,
                  face_boxes: pd.DataFrame | None = None, face_filter: bool | None = None,
                  threads: int | None = None, detector=None) -> dict[str, Any]:
    """Run one model on one shard of the cases; write that shard's detections table atomically.

    Parameters
    ----------
    spec : ModelSpec
        From :func:`study.modelspec.load_model_spec` (its class mapping already checked).
    cases : DataFrame
        ``case_id`` (unique) and ``image_path`` (absolute, or relative to the working
        directory); ``precomputed`` also uses ``image`` to match file names.
    shard, n_shards : int
        Which contiguous chunk of the cases sorted by ``case_id`` to run (0-based).
    out : path
        The shard's Parquet table. When it exists with the same fingerprint (spec, model
        files' sha256, the shard's cases and face boxes), it is kept and not recomputed.
    batch_size : int, optional
        Images per forward pass (default: the spec's).
    workers : int
        Decoding threads.
    progress : bool
        Show a tqdm progress bar on stderr.
    face_boxes : DataFrame, optional
        The quality step's table (``case_id, face_x0, face_y0, face_x1, face_y1``, original
        pixels, NaN when no face was found).
    face_filter : bool, optional
        Drop detections whose box centre lies outside the case's face box (the ACNE04
        paper's skin mask, approximated by the face box). Default: the spec's ``face_filter``.
        Cases without a face box keep all their detections (counted in the summary).
    threads : int, optional
        torch intra-op threads (default: torch's, i.e. one per core or ``OMP_NUM_THREADS``).
    detector : optional
        An already loaded detector for ``spec`` (from :func:`study.detectors.load_detector`),
        or a zero-argument callable returning one, so that many shards in one process
        load the model once; by default it is loaded here (only when the shard must be run).

    Returns
    -------
    dict
        ``model, shard, n_shards, n_images, n_detections, n_dropped_outside_face,
        n_dropped_unmapped_class, n_cases_without_face_box, face_filter, seconds,
        images_per_second, resumed, fingerprint, batch_size, n_images_with_exactly_100,
        warnings, backend`` (:class:`BackendInfo` dict).
    """
    from study.detectors import backend_class, load_detector

    out = Path(out)
    # known before the model is loaded: a resumed shard never loads it
    needs_pixels = backend_class(spec.backend, model_id=spec.id).needs_pixels
    _check_cases(cases, needs_pixels=needs_pixels)
    part = shard_cases(cases, shard=shard, n_shards=n_shards)
    use_face = spec.face_filter if face_filter is None else bool(face_filter)
    faces = _face_table(face_boxes) if use_face else None
    if use_face and faces is None:
        raise StudyError("face filtering is on, but no face boxes (the quality table) were given", where="face_filter")
    bs = int(batch_size or spec.batch_size)

    fp_src = {
        "spec": {k: v for k, v in spec.to_dict().items() if k not in ("base_dir", "batch_size", "card")},
        "files": _spec_files(spec), "shard": shard, "n_shards": n_shards,
        "cases": part["case_id"].tolist(),
        "images": part["image_path"].astype(str).tolist() if "image_path" in part else None,
        "image_sha256": part["image_sha256"].astype(str).tolist() if "image_sha256" in part else None,
        "faces": [faces.get(c) for c in part["case_id"]] if faces is not None else None,
        # a batch holds images of one size (no padding), yet a batched forward pass can differ from
        # a single one in the last float bits (~1e-4 px); to resume exactly, the batch size counts
        "batch_size": bs,
    }
    fingerprint = sha256_bytes(json.dumps(fp_src, sort_keys=True, default=str).encode())
    if out.is_file():
        meta = _read_meta(out)
        if meta and meta.get("summary", {}).get("fingerprint") == fingerprint:
            return {**meta["summary"], "resumed": True}

    t0 = time.perf_counter()
    if detector is None:
        detector = load_detector(spec)
    elif callable(detector) and not hasattr(detector, "classes"):
        detector = detector()
    runtime = torch_runtime(device=spec.device, threads=threads) if needs_pixels else contextlib.nullcontext()
    mapped = spec.mapped_classes()
    chunks: list[tuple] = []  # per image: case ids, classes, scores, boxes, segmentations
    n_unmapped = n_face = 0
    no_face = 0
    at_100 = 0  # images with exactly 100 detections: the sign of a model still capped at COCO's 100
    mapped_arr = np.array(mapped, dtype=object)
    known = np.array([c is not None for c in mapped], dtype=bool)

    def collect(case_id: str, det) -> None:
        """Map classes, apply the face filter, order by score; vectorised (hundreds of lesions per image)."""
        nonlocal n_unmapped, n_face, no_face, at_100
        at_100 += int(len(det) == 100)
        order = np.argsort(-det.scores, kind="stable")
        labels = det.labels[order]
        keep = known[labels]
        n_unmapped += int((~keep).sum())
        b = det.boxes[order]
        box = faces.get(case_id) if faces is not None else None
        if faces is not None and box is None:
            no_face += 1
        if box is not None:
            cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
            inside = (cx >= box[0]) & (cx <= box[2]) & (cy >= box[1]) & (cy <= box[3])
            n_face += int((keep & ~inside).sum())
            keep &= inside
        sel = order[keep]
        if not len(sel):
            return
        b = det.boxes[sel]
        seg = [None] * len(sel)
        if det.polygons is not None:
            seg = [json.dumps(det.polygons[j]) if det.polygons[j] else None for j in sel]
        chunks.append((np.full(len(sel), case_id, dtype=object), mapped_arr[det.labels[sel]], det.scores[sel],
                       b, np.array(seg, dtype=object)))

    ids = part["case_id"].tolist()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(ids), desc=f"predict {spec.id} shard {shard + 1}/{n_shards}", unit="img",
                   disable=None, leave=False)
    try:
        with runtime:
            if not needs_pixels:
                for cid, det in zip(ids, detector.predict_cases(part)):
                    collect(cid, det)
                if bar is not None:
                    bar.update(len(ids))
            else:
                paths = part["image_path"].astype(str).tolist()
                for idx, ims in iter_batches(paths, batch_size=bs, workers=workers):  # in case order
                    for i, det in zip(idx, detector.predict(ims)):
                        collect(ids[i], det)
                    if bar is not None:
                        bar.update(len(idx))
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    if chunks:
        b = np.concatenate([c[3] for c in chunks])
        df = pd.DataFrame({
            "case_id": pd.Series(np.concatenate([c[0] for c in chunks]), dtype=str),
            "class": pd.Series(np.concatenate([c[1] for c in chunks]), dtype=str),
            "score": np.concatenate([c[2] for c in chunks]),
            "x": b[:, 0], "y": b[:, 1], "w": b[:, 2] - b[:, 0], "h": b[:, 3] - b[:, 1],
            "segmentation": pd.Series(np.concatenate([c[4] for c in chunks]), dtype=object)})
    else:
        df = _empty_table()
    summary = {
        "model": spec.id, "shard": shard, "n_shards": n_shards, "n_images": len(ids), "n_detections": len(df),
        "n_dropped_outside_face": n_face, "n_dropped_unmapped_class": n_unmapped,
        "n_cases_without_face_box": no_face, "face_filter": use_face, "seconds": round(seconds, 3),
        "images_per_second": round(len(ids) / seconds, 3) if seconds > 0 else None, "resumed": False,
        "fingerprint": fingerprint, "backend": detector.info.to_dict(), "batch_size": bs,
        "n_images_with_exactly_100": at_100, "warnings": [],
    }
    if at_100 and spec.max_detections > 100:
        summary["warnings"].append(
            f"{at_100} of {len(ids)} images have exactly 100 detections: the model may still be capped at 100 "
            f"per image (e.g. an exported graph); max_detections is {spec.max_detections}")
    _write_table(out, df, {"summary": summary, "cases": ids, "positions": part["_position"].astype(int).tolist()})
    return summary


# --------------------------------------------------------------------------- merge
def merge_shards(paths: Sequence[str | os.PathLike], *, spec, ground_truth: Mapping[str, Any] | None,
                 out_table: str | os.PathLike, out_coco_json: str | os.PathLike,
                 out_meta: str | os.PathLike, card: ModelCard | None = None) -> ModelMeta:
    """Join a model's shard tables into its detections table, COCO results JSON and meta JSON.

    Parameters
    ----------
    paths : sequence of paths
        Every shard of one run (``shard-<k>-of-<n>.parquet``); all ``n`` must be present.
    spec : ModelSpec
    ground_truth : mapping, optional
        The normalised COCO ground truth (images carry ``case_id``; categories named as the
        protocol's classes); only ``images`` and ``categories`` are read (the step passes
        :func:`study.coco_stream.streamed_coco`). Image and category ids come from it. Without it, image ids are
        1..N in manifest order and category ids 1..K in the order of ``spec.output_classes()``.
    out_table, out_coco_json, out_meta : paths
        Written atomically: Parquet (``case_id, image_id, class, score, x, y, w, h,
        segmentation``), COCO results JSON (``image_id, category_id, bbox, score[,
        segmentation]``), meta JSON (below).

    Returns
    -------
    ModelMeta
        The meta (:class:`study.results.models.ModelMeta`): ``model, backend, backend_version, torch_version, device, weights,
        weights_sha256, files, spec, classes, n_images, n_detections, n_dropped_outside_face,
        n_dropped_unmapped_class, n_cases_without_face_box, face_filter, warnings,
        acne_study_version, shards`` (the shard summaries, without timing: the timing goes to
        :func:`timing_log_path`).
    """
    import study

    if not paths:
        raise StudyError("no shard files to merge", where="shards")
    metas, tables = [], []
    problems = []
    for p in paths:
        meta = _read_meta(Path(p))
        if meta is None:
            problems.append(Problem(str(p), "", "not a shard table written by study.inference.predict_shard"))
            continue
        metas.append(meta)
        tables.append(pd.read_parquet(p))
    raise_if(problems)
    n_shards = {m["summary"]["n_shards"] for m in metas}
    got = sorted(m["summary"]["shard"] for m in metas)
    if len(n_shards) != 1 or got != list(range(next(iter(n_shards)))):
        raise StudyError(f"shards do not form one complete run: have shards {got} of {sorted(n_shards)}", where="shards")
    models = {m["summary"]["model"] for m in metas}
    if models != {spec.id}:
        raise StudyError(f"shards come from models {sorted(models)}, not {spec.id!r}", where="shards")
    digests = {m["summary"]["backend"]["weights_sha256"] for m in metas}
    if len(digests) != 1:
        raise StudyError("shards were made with different model files (weights sha256 differ); re-run them",
                         where="shards")
    order = sorted(range(len(metas)), key=lambda i: metas[i]["summary"]["shard"])
    metas = [metas[i] for i in order]
    tables = [tables[i] for i in order]
    df = pd.concat(tables, ignore_index=True) if tables else _empty_table()
    all_cases = [(pos, c) for m in metas for c, pos in zip(m["cases"], m["positions"])]

    if ground_truth is not None:
        image_of = {}
        for im in ground_truth.get("images", []):
            if "case_id" in im:
                image_of[str(im["case_id"])] = int(im["id"])
        missing = sorted({c for _, c in all_cases} - set(image_of))
        if missing:
            raise StudyError(f"{len(missing)} predicted cases have no image in the ground truth (e.g. {missing[:5]})",
                             file="ground_truth", where="images[].case_id")
        cat_of = {c["name"]: int(c["id"]) for c in ground_truth.get("categories", [])}
    else:
        image_of = {c: i + 1 for i, (_, c) in enumerate(sorted(all_cases))}
        cat_of = {c: i + 1 for i, c in enumerate(spec.output_classes())}
    unknown = sorted(set(df["class"]) - set(cat_of))
    if unknown:
        raise StudyError(f"detected classes {unknown} are not ground-truth categories {sorted(cat_of)}",
                         file="ground_truth", where="categories")

    df.insert(1, "image_id", df["case_id"].map(image_of).astype("int64"))
    write_parquet(out_table, df)
    # compact, and written detection by detection: a results file can hold 10^6 detections. The bytes are
    # those of json.dumps(list_of_all, separators=(",", ":"), allow_nan=False) + "\n".
    with atomic_path(out_coco_json) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write("[")
        sep, block = "", []
        for r in df.itertuples(index=False):
            d = {"image_id": int(r.image_id), "category_id": cat_of[r[2]], "bbox": [r.x, r.y, r.w, r.h],
                 "score": r.score}
            if isinstance(r.segmentation, str) and r.segmentation:  # missing reads back as None or NaN
                d["segmentation"] = json.loads(r.segmentation)
            block.append(json.dumps(d, separators=(",", ":"), allow_nan=False))
            if len(block) >= _COCO_BLOCK:
                f.write(sep + ",".join(block))
                sep = ","
                block.clear()
        if block:
            f.write(sep + ",".join(block))
        f.write("]\n")

    b = metas[0]["summary"]["backend"]
    s = [m["summary"] for m in metas]
    meta = ModelMeta(
        model=spec.id, backend=b["backend"], backend_version=b["backend_version"],
        torch_version=torch_version(), acne_study_version=study.__version__, device=spec.device,
        weights=b["weights"], weights_sha256=b["weights_sha256"], files=b["files"], spec=spec.to_dict(),
        classes=ModelClasses(model=list(spec.classes), output=spec.output_classes(), category_ids=cat_of),
        n_images=sum(x["n_images"] for x in s), n_detections=int(len(df)),
        n_dropped_outside_face=sum(x["n_dropped_outside_face"] for x in s),
        n_dropped_unmapped_class=sum(x["n_dropped_unmapped_class"] for x in s),
        n_cases_without_face_box=sum(x["n_cases_without_face_box"] for x in s),
        face_filter=s[0]["face_filter"],
        warnings=[w for x in s for w in x["warnings"]],
        shards=[ShardSummary.model_validate({k: v for k, v in x.items() if k not in RUN_LOG_KEYS}) for x in s],
        card=card,
    )
    write_json(out_meta, meta)
    write_json(timing_log_path(out_meta, spec.id), {
        "model": spec.id, "seconds": round(sum(x["seconds"] for x in s), 3),
        "shards": [{k: x[k] for k in ("shard", "seconds", "images_per_second", "resumed")} for x in s]})
    return meta


#: detections joined per write of the COCO results JSON by :func:`merge_shards`
_COCO_BLOCK = 4096

#: shard summary keys that differ between runs of the same inputs: kept out of the meta (and so
#: out of results.json) and written to the run log ``detections/<model>.timing.json``
RUN_LOG_KEYS = ("backend", "seconds", "images_per_second", "resumed")


def timing_log_path(out_meta: str | os.PathLike, model_id: str) -> Path:
    """Where :func:`merge_shards` writes a model's timing (next to its meta, not part of results.json)."""
    return Path(out_meta).with_name(f"{model_id}.timing.json")
