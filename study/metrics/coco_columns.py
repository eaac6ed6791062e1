"""A COCO ground-truth file and a COCO results file read as columns, streamed (bounded memory).

:func:`study.metrics.coco_input.check_coco_pair` and :func:`~study.metrics.coco_input.to_arrays`
work on the whole files as lists of dicts: at 100,000 cases that is about a million
annotations and a million detections, well over a gigabyte of Python objects. The
detection step needs only their columns (:class:`~study.metrics.coco_input.RawCoco`) and the
few segmentations; :func:`load_coco_columns` streams both files (ijson) into those columns
and applies the same fast screens as ``check_coco_pair``'s fast path. Whenever anything is
not regular (a check fails, a value has an unexpected type, a detection carries a mask, a
list is empty), it returns ``None`` and the caller reads the files whole as before, so the
detailed validators report the problems and the results never depend on which path ran.
"""

from __future__ import annotations

import math
import os
from array import array
from pathlib import Path
from typing import Any

import numpy as np

from study.coco_stream import iter_items
from study.errors import StudyError
from study.metrics.coco_input import Problem, RawCoco, _check_segmentation, fast_ok_images_categories

#: placeholder of an annotation or detection without a segmentation (shared: one object)
_NO_SEGMENTATION: dict[str, Any] = {}

_INT64 = (-(2 ** 63), 2 ** 63 - 1)


class _Irregular(Exception):
    """Something the fast path does not accept: read the files whole instead."""


def _int(v: Any) -> int:
    if type(v) is not int or not _INT64[0] <= v <= _INT64[1]:
        raise _Irregular
    return v


def _num(v: Any) -> float:
    if type(v) is int or type(v) is float:
        return float(v)
    raise _Irregular


def _box(b: Any, out: array) -> None:
    if type(b) is not list or len(b) != 4:
        raise _Irregular
    out.extend(_num(v) for v in b)


def _ground_truth(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    images = list(iter_items(path, "images.item"))
    categories = list(iter_items(path, "categories.item"))
    if not images or not categories:
        raise _Irregular
    a_img, a_cat, a_crowd = array("q"), array("q"), array("q")
    a_box, a_area = array("d"), array("d")
    ann_ids: list[Any] = []
    segs: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for i, a in enumerate(iter_items(path, "annotations.item")):
        if type(a) is not dict:
            raise _Irregular
        a_img.append(_int(a["image_id"]) if "image_id" in a else _raise_irregular())
        a_cat.append(_int(a["category_id"]) if "category_id" in a else _raise_irregular())
        _box(a.get("bbox"), a_box)
        crowd = a.get("iscrowd", 0)
        if type(crowd) is not int or crowd not in (0, 1):
            raise _Irregular
        a_crowd.append(crowd)
        area = a.get("area", math.nan)
        a_area.append(area if type(area) is float else _num(area))
        if "id" in a:
            ann_ids.append(a["id"])
        s = a.get("segmentation")
        if s not in (None, []):
            _check_segmentation(s, f"annotations[{i}].segmentation", str(path), problems)
            if problems:
                raise _Irregular
            segs.append({"segmentation": s})
        else:
            segs.append(_NO_SEGMENTATION)
    if not segs or len(set(ann_ids)) != len(ann_ids):
        raise _Irregular
    cols = {"a_img": np.frombuffer(a_img, np.int64).copy(), "a_cat": np.frombuffer(a_cat, np.int64).copy(),
            "a_box": np.frombuffer(a_box, np.float64).reshape(-1, 4).copy(),
            "a_crowd": np.frombuffer(a_crowd, np.int64).astype(bool),
            "a_area": np.frombuffer(a_area, np.float64).copy()}
    return {"images": images, "annotations": segs, "categories": categories}, cols


def _raise_irregular() -> int:
    raise _Irregular


def _detections(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    with open(path, "rb") as f:
        if not f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
            raise _Irregular
    d_img, d_cat = array("q"), array("q")
    d_box, d_score = array("d"), array("d")
    for d in iter_items(path, "item"):
        if type(d) is not dict or d.get("segmentation") is not None:
            raise _Irregular  # a mask: the detailed path keeps every detection's segmentation
        d_img.append(_int(d["image_id"]) if "image_id" in d else _raise_irregular())
        d_cat.append(_int(d["category_id"]) if "category_id" in d else _raise_irregular())
        _box(d.get("bbox"), d_box)
        d_score.append(_num(d.get("score")))
    if not len(d_img):
        raise _Irregular
    cols = {"d_img": np.frombuffer(d_img, np.int64).copy(), "d_cat": np.frombuffer(d_cat, np.int64).copy(),
            "d_box": np.frombuffer(d_box, np.float64).reshape(-1, 4).copy(),
            "d_score": np.frombuffer(d_score, np.float64).copy()}
    return [_NO_SEGMENTATION] * len(cols["d_img"]), cols


def _screens_pass(gt: dict[str, Any], raw: RawCoco) -> bool:
    """The fast screens of ``check_coco_pair`` (``_fast_ok_ground_truth`` and ``_fast_ok_detections``)."""
    try:
        ids = fast_ok_images_categories(gt["images"], gt["categories"])
    except (TypeError, ValueError, KeyError):
        return False
    if ids is None:
        return False
    img_ids, cat_ids = ids
    if not np.isin(raw.a_img, img_ids).all() or not np.isin(raw.a_cat, cat_ids).all():
        return False
    if not np.isfinite(raw.a_box).all() or (raw.a_box[:, 2:] < 0).any():
        return False
    area = raw.a_area[~np.isnan(raw.a_area)]
    if not (np.isfinite(area).all() and (area >= 0).all()):
        return False
    img, cat = np.array(img_ids, np.int64), np.array(cat_ids, np.int64)
    return bool(np.isfinite(raw.d_box).all() and (raw.d_box[:, 2:] >= 0).all() and np.isfinite(raw.d_score).all()
                and np.isin(raw.d_img, img).all() and np.isin(raw.d_cat, cat).all())


def load_coco_columns(gt_path: str | os.PathLike, dt_path: str | os.PathLike
                      ) -> tuple[dict[str, Any], list[dict[str, Any]], RawCoco] | None:
    """Stream a COCO instances file and a COCO results file into validated columns.

    Returns
    -------
    (ground_truth, detections, raw) or None
        ``ground_truth``: ``images`` and ``categories`` as in the file; ``annotations`` one
        entry per annotation holding only its ``segmentation`` (a shared empty dict when it
        has none). ``detections``: one shared empty dict per detection (none has a mask).
        ``raw``: the columns ``check_coco_pair`` would return for the whole files. Pass all
        three to :func:`study.metrics.detection.evaluate_detection` with ``raw=``.
        ``None`` when the files are not regular enough for this path (see the module notes).
    """
    try:
        gt, g = _ground_truth(Path(gt_path))
        dt, d = _detections(Path(dt_path))
    except (_Irregular, KeyError, StudyError):  # StudyError: not JSON to ijson (e.g. NaN tokens json accepts)
        return None
    raw = RawCoco(**g, **d)
    return (gt, dt, raw) if _screens_pass(gt, raw) else None
