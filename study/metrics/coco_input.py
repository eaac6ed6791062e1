"""COCO ground truth and detections: strict validation and conversion to arrays.

Ground truth is a COCO *instances* dict (``images``, ``annotations``, ``categories``);
detections a COCO *results* list (``image_id``, ``category_id``, ``bbox`` ``[x, y, w, h]``,
``score``, optional ``segmentation``). Every problem of an input is reported at once, as a
:class:`study.errors.Problem` naming the JSON path, the offending value and what is expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from study.errors import Problem, StudyError

MAX_LISTED_PROBLEMS = 50


class LazySegmentations:
    """``segmentation`` of selected annotations / detections, read only when asked for."""

    def __init__(self, items: list, index: np.ndarray):
        self._items = items
        self._index = np.asarray(index, np.int64)

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int):
        return self._items[int(self._index[i])].get("segmentation") or None

    def __iter__(self):
        for j in self._index.tolist():
            yield self._items[j].get("segmentation") or None


@dataclass
class CocoArrays:
    """Ground truth and detections of the evaluated images and classes, as flat arrays.

    Image indices refer to ``image_ids`` (sorted ascending, as pycocotools orders them);
    class indices to ``classes``. ``*_order`` keeps each row's position in its input file
    (tie-breaking follows input order, as in pycocotools).
    """

    image_ids: np.ndarray
    image_hw: np.ndarray                  # (n_images, 2) height, width (0 if unknown)
    classes: list[str]
    category_ids: list[int]
    gt_img: np.ndarray
    gt_cls: np.ndarray
    gt_box: np.ndarray
    gt_crowd: np.ndarray
    gt_area: np.ndarray                   # the annotation's ``area`` (COCO area ranges); w*h if absent
    gt_seg: "LazySegmentations"           # segmentation objects (None when absent), read lazily
    dt_img: np.ndarray
    dt_cls: np.ndarray
    dt_box: np.ndarray
    dt_score: np.ndarray
    dt_seg: "LazySegmentations"
    dt_order: np.ndarray
    n_dt_truncated: int = 0
    excluded: dict[str, int] = field(default_factory=dict)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) or (isinstance(x, float) and x.is_integer())


def _check_bbox(b: Any, where: str, file: str, out: list[Problem]) -> None:
    if not (isinstance(b, (list, tuple)) and len(b) == 4 and all(_is_num(v) for v in b)):
        out.append(Problem(file, where, f"bbox must be 4 finite numbers [x, y, w, h], got {b!r}"))
    elif b[2] < 0 or b[3] < 0:
        out.append(Problem(file, where, f"bbox has negative size (w={b[2]!r}, h={b[3]!r}); expected w, h >= 0"))


def _check_segmentation(s: Any, where: str, file: str, out: list[Problem]) -> None:
    if isinstance(s, dict):
        if "counts" not in s or "size" not in s:
            out.append(Problem(file, where, "RLE segmentation needs 'counts' and 'size'"))
        return
    if not isinstance(s, list) or not s:
        out.append(Problem(file, where, f"segmentation must be a list of polygons or an RLE dict, got {str(s)[:60]}"))
        return
    for k, poly in enumerate(s):
        if not (isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0 and all(_is_num(v) for v in poly)):
            out.append(Problem(file, f"{where}[{k}]",
                               "polygon must be a flat list of >= 3 (x, y) pairs of finite numbers"))


def validate_ground_truth(gt: Any, *, file: str = "ground truth") -> list[Problem]:
    """Problems of a COCO instances dict (empty list = valid)."""
    p: list[Problem] = []
    if not isinstance(gt, dict):
        return [Problem(file, "(top level)", f"expected a COCO instances object, got {type(gt).__name__}")]
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            p.append(Problem(file, key, f"expected a list, got {type(gt.get(key)).__name__}"))
    if p:
        return p
    img_ids: set = set()
    for i, im in enumerate(gt["images"]):
        w = f"images[{i}]"
        if not isinstance(im, dict) or not _is_int(im.get("id")):
            p.append(Problem(file, f"{w}.id", f"expected an integer image id, got {im.get('id') if isinstance(im, dict) else im!r}"))
            continue
        if im["id"] in img_ids:
            p.append(Problem(file, f"{w}.id", f"duplicate image id {im['id']!r}"))
        img_ids.add(im["id"])
        for k in ("width", "height"):
            if k in im and not (_is_num(im[k]) and im[k] > 0):
                p.append(Problem(file, f"{w}.{k}", f"expected a positive number, got {im[k]!r}"))
    cat_ids: set = set()
    names: set = set()
    for i, c in enumerate(gt["categories"]):
        w = f"categories[{i}]"
        if not isinstance(c, dict) or not _is_int(c.get("id")) or not isinstance(c.get("name"), str):
            p.append(Problem(file, w, f"expected {{id: int, name: str}}, got {c!r}"))
            continue
        if c["id"] in cat_ids:
            p.append(Problem(file, f"{w}.id", f"duplicate category id {c['id']!r}"))
        if c["name"] in names:
            p.append(Problem(file, f"{w}.name", f"duplicate category name {c['name']!r}"))
        cat_ids.add(c["id"])
        names.add(c["name"])
    ann_ids: set = set()
    for i, a in enumerate(gt["annotations"]):
        w = f"annotations[{i}]"
        if not isinstance(a, dict):
            p.append(Problem(file, w, f"expected an object, got {a!r}"))
            continue
        if a.get("image_id") not in img_ids:
            p.append(Problem(file, f"{w}.image_id", f"unknown image id {a.get('image_id')!r} (not in images)"))
        if a.get("category_id") not in cat_ids:
            p.append(Problem(file, f"{w}.category_id", f"unknown category id {a.get('category_id')!r} (not in categories)"))
        if "id" in a:
            if a["id"] in ann_ids:
                p.append(Problem(file, f"{w}.id", f"duplicate annotation id {a['id']!r}"))
            ann_ids.add(a["id"])
        _check_bbox(a.get("bbox"), f"{w}.bbox", file, p)
        if a.get("iscrowd", 0) not in (0, 1, True, False):
            p.append(Problem(file, f"{w}.iscrowd", f"expected 0 or 1, got {a.get('iscrowd')!r}"))
        if "area" in a and not (_is_num(a["area"]) and a["area"] >= 0):
            p.append(Problem(file, f"{w}.area", f"expected a number >= 0, got {a['area']!r}"))
        if a.get("segmentation") not in (None, []):
            _check_segmentation(a["segmentation"], f"{w}.segmentation", file, p)
    return p


def validate_detections(dt: Any, gt: dict, *, file: str = "detections") -> list[Problem]:
    """Problems of a COCO results list against its (valid) ground truth."""
    if not isinstance(dt, list):
        return [Problem(file, "(top level)", f"expected a COCO results list, got {type(dt).__name__}")]
    img_ids = {im["id"] for im in gt["images"]}
    cat_ids = {c["id"] for c in gt["categories"]}
    p: list[Problem] = []
    for i, d in enumerate(dt):
        w = f"[{i}]"
        if not isinstance(d, dict):
            p.append(Problem(file, w, f"expected an object, got {d!r}"))
            continue
        if d.get("image_id") not in img_ids:
            p.append(Problem(file, f"{w}.image_id", f"unknown image id {d.get('image_id')!r} (not in the ground truth)"))
        if d.get("category_id") not in cat_ids:
            p.append(Problem(file, f"{w}.category_id", f"unknown category id {d.get('category_id')!r} (not in the ground truth)"))
        s = d.get("score")
        if not _is_num(s):
            p.append(Problem(file, f"{w}.score", f"expected a finite number, got {s!r}"))
        _check_bbox(d.get("bbox"), f"{w}.bbox", file, p)
        if d.get("segmentation") is not None:
            _check_segmentation(d["segmentation"], f"{w}.segmentation", file, p)
    return p


def _raise(problems: list[Problem]) -> None:
    if not problems:
        return
    if len(problems) > MAX_LISTED_PROBLEMS:
        n = len(problems)
        problems = problems[:MAX_LISTED_PROBLEMS] + [
            Problem(problems[0].file, "", f"... and {n - MAX_LISTED_PROBLEMS} more problems")]
    raise StudyError(problems)


@dataclass
class RawCoco:
    """Columns of the annotations and detections in file order (built once, reused)."""

    a_img: np.ndarray
    a_cat: np.ndarray
    a_box: np.ndarray
    a_crowd: np.ndarray
    a_area: np.ndarray
    d_img: np.ndarray
    d_cat: np.ndarray
    d_box: np.ndarray
    d_score: np.ndarray


def _int_column(values: list) -> np.ndarray | None:
    x = np.array(values)
    if len(values) == 0:
        return np.zeros(0, np.int64)
    return x.astype(np.int64) if x.dtype.kind in "iu" else None


def extract_raw(gt: Any, dt: Any) -> RawCoco | None:
    """Columns of a well-formed pair, or ``None`` when anything is off (then validate in detail)."""
    try:
        anns = gt["annotations"]
        if not isinstance(anns, list) or not isinstance(dt, list):
            return None
        a_img = _int_column([a["image_id"] for a in anns])
        a_cat = _int_column([a["category_id"] for a in anns])
        a_box = np.array([a["bbox"] for a in anns], dtype=float).reshape(-1, 4)
        crowd = np.array([a.get("iscrowd", 0) for a in anns])
        a_area = np.array([a.get("area", np.nan) for a in anns], dtype=float)
        d_img = _int_column([d["image_id"] for d in dt])
        d_cat = _int_column([d["category_id"] for d in dt])
        d_box = np.array([d["bbox"] for d in dt], dtype=float).reshape(-1, 4)
        scores = [d["score"] for d in dt]
        if any(type(v) is bool for v in scores):
            return None
        d_score = np.array(scores, dtype=float)
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
    if a_img is None or a_cat is None or d_img is None or d_cat is None:
        return None
    if len(a_box) != len(anns) or len(d_box) != len(dt) or (len(crowd) and not np.isin(crowd, [0, 1]).all()):
        return None
    return RawCoco(a_img, a_cat, a_box, crowd.astype(bool), a_area, d_img, d_cat, d_box, d_score)


def _fast_ok_detections(raw: RawCoco, img_ids: np.ndarray, cat_ids: np.ndarray, dt: list) -> bool:
    """Cheap vectorised screen; the detailed validator runs only when it fails."""
    return bool(np.isfinite(raw.d_box).all() and (raw.d_box[:, 2:] >= 0).all() and np.isfinite(raw.d_score).all()
                and np.isin(raw.d_img, img_ids).all() and np.isin(raw.d_cat, cat_ids).all()
                and all(d.get("segmentation") is None for d in dt))


def fast_ok_images_categories(ims: list[Any], cats: list[Any]) -> tuple[list[int], list[int]] | None:
    """Cheap screen of a COCO file's images and categories: unique integer ids, finite positive sizes,
    unique text names. Their ids when it passes, else ``None`` (the detailed validator then names the
    problem). Raises ``TypeError`` / ``KeyError`` / ``ValueError`` on malformed items (callers treat those as
    a failed screen)."""
    img_ids = [im["id"] for im in ims]
    if not all(type(i) is int for i in img_ids) or len(set(img_ids)) != len(img_ids):
        return None
    for k in ("width", "height"):
        v = np.array([im.get(k, 1) for im in ims], dtype=float)
        if not (np.isfinite(v).all() and (v > 0).all()):
            return None
    cat_ids = [c["id"] for c in cats]
    names = [c["name"] for c in cats]
    if (not all(type(i) is int for i in cat_ids) or not all(isinstance(x, str) for x in names)
            or len(set(cat_ids)) != len(cat_ids) or len(set(names)) != len(names)):
        return None
    return img_ids, cat_ids


def _fast_ok_ground_truth(gt: Any, raw: RawCoco) -> bool:
    """Cheap screen of a COCO instances dict (segmentations excepted); the detailed validator
    runs only when it fails, so both give the same verdict."""
    try:
        if not isinstance(gt, dict) or not all(isinstance(gt.get(k), list) for k in ("images", "annotations", "categories")):
            return False
        ims, anns, cats = gt["images"], gt["annotations"], gt["categories"]
        ids = fast_ok_images_categories(ims, cats)
        if ids is None:
            return False
        img_ids, cat_ids = ids
        if not anns:
            return True
        if not np.isin(raw.a_img, img_ids).all() or not np.isin(raw.a_cat, cat_ids).all():
            return False
        ann_ids = [a["id"] for a in anns if "id" in a]
        if len(set(ann_ids)) != len(ann_ids):
            return False
        box = raw.a_box
        if not np.isfinite(box).all() or (box[:, 2:] < 0).any():
            return False
        area = raw.a_area[~np.isnan(raw.a_area)]
        return bool(np.isfinite(area).all() and (area >= 0).all())
    except (TypeError, ValueError, KeyError):
        return False


def check_coco_pair(gt: Any, dt: Any, *, gt_file: str = "ground truth", dt_file: str = "detections") -> RawCoco | None:
    """Validate a ground-truth / detections pair; raise :class:`StudyError` listing all problems.

    Returns the extracted columns (for :func:`to_arrays`) when the fast screens passed.
    """
    raw = extract_raw(gt, dt) if isinstance(gt, dict) else None
    if raw is not None and _fast_ok_ground_truth(gt, raw):
        p: list[Problem] = []
        for i, a in enumerate(gt["annotations"]):
            if a.get("segmentation") not in (None, []):
                _check_segmentation(a["segmentation"], f"annotations[{i}].segmentation", gt_file, p)
        _raise(p)
        img_ids = np.array([im["id"] for im in gt["images"]], np.int64)
        cat_ids = np.array([c["id"] for c in gt["categories"]], np.int64)
        if _fast_ok_detections(raw, img_ids, cat_ids, dt):
            return raw
    else:
        _raise(validate_ground_truth(gt, file=gt_file))
    _raise(validate_detections(dt, gt, file=dt_file))
    return None


def load_coco_pair(gt_path: str | Path, dt_path: str | Path) -> tuple[dict, list]:
    """Read and validate a COCO ground truth file and a COCO results file.

    Raises
    ------
    StudyError
        Missing / unreadable files, or any invalid entry (all problems listed, each with its
        JSON path, value and expectation).
    """
    from study.io import read_json

    gt = read_json(gt_path)
    dt = read_json(dt_path)
    check_coco_pair(gt, dt, gt_file=str(gt_path), dt_file=str(dt_path))
    return gt, dt


def to_arrays(gt: dict, dt: list, *, classes: list[str] | None, image_ids: Iterable | None,
              max_detections: int, source: str = "options", raw: RawCoco | None = None) -> CocoArrays:
    """Arrays of the evaluated images and classes (inputs must be validated).

    Detections beyond ``max_detections`` per image and class (lowest scores) are dropped,
    as COCOeval does with ``maxDets``; the number dropped is kept in ``n_dt_truncated``.
    """
    cats = sorted(gt["categories"], key=lambda c: c["id"])
    by_name = {c["name"]: int(c["id"]) for c in cats}
    if classes is None:
        classes = [c["name"] for c in cats]
    unknown = [c for c in classes if c not in by_name]
    if unknown:
        raise StudyError(f"classes {unknown} are not categories of the ground truth "
                         f"(categories: {list(by_name)})", file=source, where="classes")
    cat_ids = [by_name[c] for c in classes]
    cls_of_cat = {cid: k for k, cid in enumerate(cat_ids)}

    all_imgs = {int(im["id"]): im for im in gt["images"]}
    if image_ids is None:
        ids = np.array(sorted(all_imgs), dtype=np.int64)
    else:
        ids_list = [int(i) for i in image_ids]
        missing = [i for i in ids_list if i not in all_imgs]
        if missing:
            raise StudyError(f"image ids {missing[:10]} are not images of the ground truth", file=source,
                             where="image_ids")
        ids = np.array(sorted(set(ids_list)), dtype=np.int64)
    hw = np.array([[all_imgs[i].get("height", 0) or 0, all_imgs[i].get("width", 0) or 0] for i in ids.tolist()],
                  dtype=float).reshape(-1, 2)
    excluded = {"gt_other_images": 0, "gt_other_classes": 0, "dt_other_images": 0, "dt_other_classes": 0}

    def locate(img_ids_in: np.ndarray) -> np.ndarray:
        if not len(ids):
            return np.full(len(img_ids_in), -1, np.int64)
        p_ = np.clip(np.searchsorted(ids, img_ids_in), 0, len(ids) - 1)
        return np.where(ids[p_] == img_ids_in, p_, -1)

    anns = gt["annotations"]
    if raw is None:
        raw = extract_raw(gt, dt)
    if raw is None:  # validated but irregular (e.g. float ids): one more careful pass
        raw = RawCoco(
            a_img=np.array([int(a["image_id"]) for a in anns], np.int64).reshape(-1),
            a_cat=np.array([int(a["category_id"]) for a in anns], np.int64).reshape(-1),
            a_box=np.array([a["bbox"] for a in anns], float).reshape(-1, 4),
            a_crowd=np.array([bool(a.get("iscrowd", 0)) for a in anns], bool).reshape(-1),
            a_area=np.array([a.get("area", np.nan) for a in anns], float).reshape(-1),
            d_img=np.array([int(d["image_id"]) for d in dt], np.int64).reshape(-1),
            d_cat=np.array([int(d["category_id"]) for d in dt], np.int64).reshape(-1),
            d_box=np.array([d["bbox"] for d in dt], float).reshape(-1, 4),
            d_score=np.array([float(d["score"]) for d in dt], float).reshape(-1))
    cat_lut_ids = np.array(sorted(cls_of_cat), np.int64)
    cat_lut_cls = np.array([cls_of_cat[c] for c in cat_lut_ids.tolist()], np.int64)

    def cat_to_cls(c: np.ndarray) -> np.ndarray:
        if not len(cat_lut_ids):
            return np.full(len(c), -1, np.int64)
        p_ = np.clip(np.searchsorted(cat_lut_ids, c), 0, len(cat_lut_ids) - 1)
        return np.where(cat_lut_ids[p_] == c, cat_lut_cls[p_], -1)

    a_img = locate(raw.a_img)
    a_cls = cat_to_cls(raw.a_cat)
    a_box, a_crowd = raw.a_box, raw.a_crowd
    a_area = np.where(np.isnan(raw.a_area), a_box[:, 2] * a_box[:, 3], raw.a_area)
    excluded["gt_other_images"] = int((a_img < 0).sum())
    excluded["gt_other_classes"] = int(((a_img >= 0) & (a_cls < 0)).sum())
    kept = np.flatnonzero((a_img >= 0) & (a_cls >= 0))
    gi, gc, gb, gcr, gar = a_img[kept], a_cls[kept], a_box[kept], a_crowd[kept], a_area[kept]
    gs = LazySegmentations(anns, kept)

    di = locate(raw.d_img)
    dc = cat_to_cls(raw.d_cat)
    keep = (di >= 0) & (dc >= 0)
    excluded["dt_other_images"] = int((di < 0).sum())
    excluded["dt_other_classes"] = int(((di >= 0) & (dc < 0)).sum())
    box, score = raw.d_box, raw.d_score
    order = np.arange(len(dt))
    di, dc, box, score, order = di[keep], dc[keep], box[keep], score[keep], order[keep]

    # maxDets: per image and class keep the max_detections highest scores (input order on ties)
    n_trunc = 0
    if len(di):
        o = np.lexsort((order, -score, dc, di))
        grp = di[o] * len(classes) + dc[o]
        start = np.r_[True, grp[1:] != grp[:-1]]
        first = np.maximum.accumulate(np.where(start, np.arange(len(o)), 0))
        within = np.arange(len(o)) - first
        drop = o[within >= max_detections]
        if len(drop):
            n_trunc = len(drop)
            m = np.ones(len(di), bool)
            m[drop] = False
            di, dc, box, score, order = di[m], dc[m], box[m], score[m], order[m]
    return CocoArrays(
        image_ids=ids, image_hw=hw, classes=list(classes), category_ids=cat_ids,
        gt_img=gi, gt_cls=gc, gt_box=gb, gt_crowd=gcr, gt_area=gar, gt_seg=gs,
        dt_img=di, dt_cls=dc, dt_box=box, dt_score=score,
        dt_seg=LazySegmentations(dt, order),
        dt_order=order, n_dt_truncated=n_trunc, excluded=excluded)
