"""Helpers the backends share: verified files, safe checkpoints, Detectron2 resizing, masks to polygons,
batching by image shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from study.errors import StudyError

if TYPE_CHECKING:  # pragma: no cover
    from study.modelspec import ModelSpec

T = TypeVar("T")


def verified_file(spec: ModelSpec, key: str, *, expected_sha256: str | None = None) -> tuple[Path, str]:
    """Path of the spec's file ``key`` and its sha256, checked against ``expected_sha256``."""
    from study.io import sha256_file

    value = getattr(spec, key)
    path = spec.path(value)
    if not path.is_file():
        raise StudyError(f"file not found: {path}", file=f"model {spec.id}", where=key)
    digest = sha256_file(path)
    if expected_sha256 and digest.lower() != expected_sha256.lower():
        raise StudyError(f"sha256 of {path} is {digest}, but the spec's weights_sha256 is {expected_sha256}: "
                         "the file is not the one the spec was written for", file=f"model {spec.id}",
                         where="weights_sha256")
    return path, digest


def load_state_dict(path: Path, *, model_id: str = "") -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)``; refuse files that need pickled code.

    A Detectron2 ``DetectionCheckpointer`` file (``{"model": state_dict, ...}``) and a
    Lightning-style ``{"state_dict": ...}`` are unwrapped.
    """
    import pickle
    import re

    import torch

    where = {"file": f"model {model_id}", "where": "weights"}
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's own text advises weights_only=False, which would run the file's code: never passed on
        code = re.search(r"GLOBAL ([\w.]+)", str(e))
        if code:
            raise StudyError(
                f"refusing to load {path}: it needs pickled Python code ({code.group(1)}), which could run "
                "arbitrary code. Save a plain state dict instead: torch.save(model.state_dict(), path)",
                **where) from None
        raise StudyError(f"{path} is not a valid checkpoint: not a PyTorch state-dict file (as written by "
                         "torch.save(model.state_dict(), path))", **where) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StudyError(f"{path} is not a valid checkpoint: it cannot be read ({first[:200]}); the file may be "
                         "truncated or damaged", **where) from None
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise StudyError(f"{path} does not hold a state dict (got {type(obj).__name__})",
                         file=f"model {model_id}", where="weights")
    return obj


def resized_shape(h: int, w: int, *, min_size: int, max_size: int) -> tuple[int, int]:
    """Output ``(height, width)`` of Detectron2's ``ResizeShortestEdge`` at test time.

    Re-implements ``detectron2.data.transforms.ResizeShortestEdge.get_output_shape``
    (shortest edge to ``min_size``, longest edge capped at ``max_size``, rounded half up),
    so traced Detectron2 exports get exactly the input their ``DefaultPredictor`` would.
    """
    scale = min_size * 1.0 / min(h, w)
    if h < w:
        newh, neww = float(min_size), scale * w
    else:
        newh, neww = scale * h, float(min_size)
    if max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def d2_resize(image: np.ndarray, *, min_size: int, max_size: int) -> np.ndarray:
    """Resize like Detectron2's ``ResizeTransform.apply_image`` on ``uint8``: PIL bilinear."""
    from PIL import Image

    h, w = image.shape[:2]
    newh, neww = resized_shape(h, w, min_size=min_size, max_size=max_size)
    if (newh, neww) == (h, w):
        return image
    return np.asarray(Image.fromarray(image).resize((neww, newh), Image.Resampling.BILINEAR))


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer contours of a binary mask as flat COCO polygons ``[x1, y1, x2, y2, ...]``.

    Uses OpenCV's border following (Suzuki & Abe 1985); polygons with fewer than 3 points
    are dropped, as pycocotools cannot rasterise them.
    """
    import cv2

    m = np.ascontiguousarray(mask.astype(np.uint8))
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        if len(c) >= 3:
            out.append([float(v) for v in c.reshape(-1)])
    return out


def paste_mask_in_box(mask: np.ndarray, box: np.ndarray, height: int, width: int, *, threshold: float = 0.5) -> np.ndarray:
    """Paste an ``M x M`` mask probability map into its box of an ``height x width`` image.

    Bilinear resize of the mask to the box (rounded outwards), thresholded; an approximation
    of Detectron2's ``paste_masks_in_image`` (which samples with ``grid_sample``).
    """
    import cv2

    out = np.zeros((height, width), dtype=bool)
    x0, y0, x1, y1 = box
    ix0, iy0 = int(np.floor(x0)), int(np.floor(y0))
    ix1, iy1 = int(np.ceil(x1)), int(np.ceil(y1))
    bw, bh = max(ix1 - ix0, 1), max(iy1 - iy0, 1)
    resized = cv2.resize(mask.astype(np.float32), (bw, bh), interpolation=cv2.INTER_LINEAR) >= threshold
    cx0, cy0 = max(ix0, 0), max(iy0, 0)
    cx1, cy1 = min(ix0 + bw, width), min(iy0 + bh, height)
    if cx1 > cx0 and cy1 > cy0:
        out[cy0:cy1, cx0:cx1] = resized[cy0 - iy0:cy1 - iy0, cx0 - ix0:cx1 - ix0]
    return out


def polygon_labels(spec: ModelSpec) -> set[int]:
    """Indices into ``spec.classes`` whose (mapped) class is one of ``spec.polygon_classes``.

    Masks become polygons only for these, so a box-only class never pays for contour tracing.
    """
    wanted = set(spec.polygon_classes or [])
    return {i for i, c in enumerate(spec.mapped_classes()) if c is not None and c in wanted}


def masks_to_polygons(masks: Sequence[Any] | np.ndarray, labels: np.ndarray,
                      wanted: set[int]) -> list[list[list[float]] | None]:
    """Polygons for the detections whose label is in ``wanted``; ``None`` for the others."""
    out: list[list[list[float]] | None] = []
    for i, lab in enumerate(labels):
        out.append(mask_to_polygons(np.asarray(masks[i])) if int(lab) in wanted else None)
    return out


def run_by_shape(images: Sequence[np.ndarray], run: Callable[[list[np.ndarray]], Sequence[T]]) -> list[T]:
    """Call ``run(list_of_images)`` once per image shape and return results in input order.

    Detectors pad a batch to its largest image, so mixing sizes in one forward pass would
    make an image's detections depend on the other images in the batch.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, im in enumerate(images):
        groups.setdefault(tuple(im.shape), []).append(i)
    out: dict[int, T] = {}
    for idx in groups.values():
        for i, r in zip(idx, run([images[i] for i in idx])):
            out[i] = r
    return [out[i] for i in range(len(images))]
