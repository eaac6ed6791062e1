"""``precomputed`` backend: detections made elsewhere (CenterNet, YOLO, a vendor) as COCO results JSON.

The file is a list of ``{image_id, category_id, bbox: [x, y, w, h], score[, segmentation]}``
(boxes in original pixels). Which case an ``image_id`` is comes from ``images``:

- a mapping in the spec: ``{"<image_id>" or "<file_name>": case_id}``;
- a CSV file with ``case_id`` and ``image_id`` or ``file_name`` columns;
- a COCO instances JSON whose ``images`` carry ``id`` and ``case_id`` or ``file_name``.

A ``file_name`` is matched against the cohort's ``image`` column (the manifest path) or the
image file's name. Without ``images``, each result must carry ``case_id`` or ``file_name``.
``category_id`` ``i`` is ``classes[i - 1]`` unless ``categories`` maps ids to class names.
Polygon segmentations are kept; RLE masks become polygons.

The file is streamed (ijson), never held whole: :func:`load` checks every detection in one
pass, and :meth:`PrecomputedDetector.predict_cases` reads it again keeping only the
detections of the cases asked for, so a predict shard holds its own cases' detections only.
"""

from __future__ import annotations

import csv
import numbers
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from study.detectors import BackendInfo, Detections
from study.detectors.base import CaseLookupDetector
from study.detectors.helpers import mask_to_polygons, verified_file
from study.errors import Problem, StudyError, raise_if
from study.io import read_json


class PrecomputedDetector(CaseLookupDetector):
    """Looks detections up by case instead of running a model (``needs_pixels = False``)."""

    def __init__(self, results: list[dict] | Callable[[], Iterable[dict]], spec, info: BackendInfo, source: str):
        """``results``: the detections (a list), or a function returning a fresh iterable of them
        on every call (:func:`iter_results` of the file: streamed, never held whole)."""
        super().__init__(spec, info)
        self.source = source
        self.results = results
        cats = spec.categories or {i + 1: c for i, c in enumerate(spec.classes)}
        self.category_index = {int(k): spec.classes.index(v) for k, v in cats.items()}
        self._mapping = self._load_mapping()

    # ------------------------------------------------------------------ mapping
    def _load_mapping(self) -> dict[str, str] | None:
        imgs = self.spec.images
        if imgs is None:
            return None
        if isinstance(imgs, dict):
            return {str(k): str(v) for k, v in imgs.items()}
        path = self.spec.path(imgs)
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            key = "image_id" if rows and "image_id" in rows[0] else "file_name"
            if not rows or "case_id" not in rows[0] or key not in rows[0]:
                raise StudyError("needs columns case_id and image_id or file_name", file=str(path))
            return {str(r[key]): str(r["case_id"]) for r in rows}
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise StudyError("expected a COCO instances JSON with an 'images' list", file=str(path))
        out = {}
        for i, im in enumerate(data["images"]):
            if "id" not in im or not ("case_id" in im or "file_name" in im):
                raise StudyError("each image needs 'id' and 'case_id' or 'file_name'", file=str(path), where=f"images[{i}]")
            out[str(im["id"])] = str(im["case_id"]) if "case_id" in im else f"file:{im['file_name']}"
        return out

    def _case_of(self, r: dict, by_file: dict[str, str]) -> str | None:
        if self._mapping is not None:
            key = str(r.get("image_id"))
            target = self._mapping.get(key)
            if target is None and "file_name" in r:
                target = self._mapping.get(str(r["file_name"]))
        else:
            target = str(r["case_id"]) if "case_id" in r else (f"file:{r['file_name']}" if "file_name" in r else None)
        if target is not None and target.startswith("file:"):
            return by_file.get(target[5:], None)
        if target is None:
            return None
        # a mapping value may itself be a file name
        return by_file.get(target, target)

    # ------------------------------------------------------------------ lookup
    def predict_cases(self, cases) -> list[Detections]:
        """Detections for each row of ``cases`` (``case_id``, ``image_path``[, ``image``]), in row order."""
        by_file: dict[str, str] = {}
        for _, row in cases.iterrows():
            cid = str(row["case_id"])
            if "image" in cases.columns and isinstance(row["image"], str):
                by_file[row["image"]] = cid
            if "image_path" in cases.columns and isinstance(row["image_path"], str):
                by_file.setdefault(Path(row["image_path"]).name, cid)
        wanted = {str(c): i for i, c in enumerate(cases["case_id"].astype(str))}
        per_case: dict[str, list[tuple]] = {c: [] for c in wanted}
        problems = []
        results = self.results() if callable(self.results) else self.results
        for j, r in enumerate(results):
            case = self._case_of(r, by_file)
            if case is None:
                if self._mapping is None and not ("case_id" in r or "file_name" in r):
                    problems.append(Problem(self.source, f"[{j}]", "no 'images' mapping in the model spec and the "
                                            "result carries neither case_id nor file_name: cannot tell its case"))
                continue  # an image outside the mapping / cohort: not part of this study
            if case not in wanted:
                continue  # another shard's (or an excluded) case
            try:
                label = self.category_index[int(r["category_id"])]
            except (KeyError, TypeError, ValueError):
                problems.append(Problem(self.source, f"[{j}].category_id",
                                        f"unknown category {r.get('category_id')!r}; known {sorted(self.category_index)}"))
                continue
            polys = None
            seg = r.get("segmentation")
            if isinstance(seg, list):
                polys = [list(map(float, p)) for p in seg]
            elif isinstance(seg, dict) and label in self._polygons:
                from pycocotools import mask as mask_utils

                polys = mask_to_polygons(mask_utils.decode(seg))
            per_case[case].append((r["bbox"], r["score"], label, polys))
            if len(problems) > 50:
                break
        raise_if(problems)
        dets = []
        for c in wanted:
            items = sorted(per_case[c], key=lambda t: -float(t[1]))
            items = [t for t in items if float(t[1]) >= self.spec.score_threshold][: self.spec.max_detections]
            if not items:
                dets.append(Detections.empty())
                continue
            xywh = np.array([t[0] for t in items], dtype=np.float64)
            boxes = np.c_[xywh[:, :2], xywh[:, :2] + xywh[:, 2:]]
            polys = [t[3] for t in items]
            dets.append(Detections(boxes, [t[1] for t in items], [t[2] for t in items],
                                   polys if any(p is not None for p in polys) else None))
        return dets



def _problems_of(j: int, r: object, source: str) -> list[Problem]:
    """What is wrong with result ``j`` of a COCO results list (empty when it is fine)."""
    if not isinstance(r, dict):
        return [Problem(source, f"[{j}]", f"expected an object, got {type(r).__name__}")]
    problems = [Problem(source, f"[{j}]", f"missing {key!r}") for key in ("category_id", "bbox", "score") if key not in r]
    b = r.get("bbox")
    if b is not None and not (isinstance(b, list) and len(b) == 4 and all(isinstance(v, numbers.Real) for v in b)
                              and b[2] >= 0 and b[3] >= 0):
        problems.append(Problem(source, f"[{j}].bbox", f"expected [x, y, w, h] numbers with w, h >= 0, got {b!r}"))
    s = r.get("score")
    if s is not None and not (isinstance(s, numbers.Real) and np.isfinite(s)):
        problems.append(Problem(source, f"[{j}].score", f"expected a finite number, got {s!r}"))
    return problems


def _validate(results: Iterable[object], source: str) -> None:
    """Check every result (the first 50 problems listed); raises StudyError."""
    if isinstance(results, (dict, str, bytes)):
        raise StudyError("a COCO results JSON must be a list of detections", file=source)
    problems: list[Problem] = []
    for j, r in enumerate(results):
        problems += _problems_of(j, r, source)
        if len(problems) > 50:
            problems.append(Problem(source, "", "(more problems not listed)"))
            break
    raise_if(problems)


def iter_results(path: str | Path) -> Iterator[dict]:
    """The detections of a COCO results JSON file, one at a time (ijson, C backend where
    installed), with the file never read whole; numbers come as ``int`` / ``float``.

    Raises
    ------
    StudyError
        When the file is not a JSON list, is not UTF-8 JSON, or ends early (file and byte named).
    """
    from study.coco_stream import iter_items

    path = Path(path)
    if path.is_file():
        with open(path, "rb") as f:
            head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if not head.startswith(b"["):
            raise StudyError("a COCO results JSON must be a list of detections", file=str(path))
    yield from iter_items(path, "item")  # "file not found" and invalid JSON (byte named) raised there


def load(spec) -> PrecomputedDetector:
    """Check every detection of the results JSON (all problems listed, the file streamed) and
    return a detector that streams it again for the cases it is asked about."""
    from study import __version__

    path, digest = verified_file(spec, "detections", expected_sha256=spec.weights_sha256)
    _validate(iter_results(path), str(path))  # one streamed pass; predict_cases streams again for its cases
    files = {"detections": digest}
    if isinstance(spec.images, str):
        from study.io import sha256_file

        files["images"] = sha256_file(spec.path(spec.images))
    return PrecomputedDetector(lambda: iter_results(path), spec, BackendInfo(
        backend="precomputed", backend_version=f"acne-study {__version__}", weights=str(path), weights_sha256=digest,
        files=files, device="none"), str(path))
