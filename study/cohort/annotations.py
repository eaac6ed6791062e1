"""COCO instances annotations: validation against the manifest and the protocol's classes."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

import pandas as pd

from study.errors import Problem, StudyError, raise_if


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))


def _cases_index(cases: Any) -> tuple[dict[str, str], dict[str, tuple[int, int]], list[str]]:
    """image -> case_id, case_id -> (width, height), case order, from a manifest DataFrame or mapping."""
    if isinstance(cases, pd.DataFrame):
        order = cases["case_id"].astype(str).tolist()
        by_image = dict(zip(cases["image"].astype(str), order))
        sizes = {}
        if {"width", "height"} <= set(cases.columns):
            for cid, w, h in zip(order, cases["width"], cases["height"]):
                if pd.notna(w) and pd.notna(h) and int(w) > 0 and int(h) > 0:
                    sizes[cid] = (int(w), int(h))
        return by_image, sizes, order
    by_image = {str(k): str(v) for k, v in dict(cases).items()}
    return by_image, {}, list(by_image.values())


def validate_annotations(data_or_path: Any, *, cases: Any, classes: list[str], polygon_classes: Iterable[str] = (),
                         source: str | None = None) -> tuple[dict | None, list[Problem]]:
    """Validate a COCO instances document against the manifest and the protocol's classes.

    Checks (all reported): top-level structure; image ids unique integers; every image's
    ``file_name`` is a manifest ``image``; sizes positive; categories named after protocol
    classes; every annotation refers to a known image and category, has a finite ``bbox``
    ``[x, y, w, h]`` with positive size lying inside its image (1 px tolerance), and a
    polygon ``segmentation`` for polygon classes.

    Returns
    -------
    (dict | None, list[Problem])
        The normalised document (see :func:`load_annotations`) or ``None`` on problems.
    """
    if isinstance(data_or_path, (str, os.PathLike)):
        f = source or str(data_or_path)
        from study.io import read_json
        try:
            data = read_json(data_or_path)
        except StudyError as e:
            return None, e.problems
    else:
        f = source or "<annotations>"
        data = data_or_path
    problems: list[Problem] = []
    if not isinstance(data, dict):
        return None, [Problem(f, "(top level)", f"expected a COCO object with 'images', 'annotations', "
                              f"'categories', got {type(data).__name__}")]
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            problems.append(Problem(f, key, f"missing or not a list (got {type(data.get(key)).__name__}); "
                                    "a COCO instances file needs 'images', 'annotations' and 'categories' lists"))
    if problems:
        return None, problems
    by_image, sizes, order = _cases_index(cases)
    position = {cid: i for i, cid in enumerate(order)}
    polygon_classes = set(polygon_classes)

    # categories
    cat_name: dict[int, str] = {}
    for i, c in enumerate(data["categories"]):
        w = f"categories[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or isinstance(c.get("id"), bool):
            problems.append(Problem(f, w, f"category {c!r} needs an integer 'id' and a 'name'"))
            continue
        name = c.get("name")
        if c["id"] in cat_name:
            problems.append(Problem(f, f"{w}.id", f"duplicate category id {c['id']}"))
        elif name not in classes:
            problems.append(Problem(f, f"{w}.name", f"unknown class {name!r}; expected one of the protocol's "
                                    f"classes {classes}"))
        else:
            cat_name[c["id"]] = name
    names = list(cat_name.values())
    dup_names = sorted({n for n in names if names.count(n) > 1})
    if dup_names:
        problems.append(Problem(f, "categories", f"class name(s) {dup_names} used by more than one category id"))

    # images
    img_case: dict[int, str] = {}
    img_size: dict[int, tuple[float, float]] = {}
    case_img: dict[str, int] = {}
    for i, im in enumerate(data["images"]):
        w = f"images[{i}]"
        if not isinstance(im, dict):
            problems.append(Problem(f, w, f"expected an object, got {im!r}"))
            continue
        iid = im.get("id")
        if not isinstance(iid, int) or isinstance(iid, bool):
            problems.append(Problem(f, f"{w}.id", f"image id {iid!r} is not an integer"))
            continue
        if iid in img_case:
            problems.append(Problem(f, f"{w}.id", f"duplicate image id {iid}"))
            continue
        fn = im.get("file_name")
        if fn not in by_image:
            problems.append(Problem(f, f"{w}.file_name", f"annotations for unknown image {fn!r}: no manifest case "
                                    "has this 'image'; expected file_name to equal a manifest image path"))
            continue
        cid = by_image[fn]
        if cid in case_img:
            problems.append(Problem(f, f"{w}.file_name", f"image {fn!r} listed twice (ids {case_img[cid]} and {iid})"))
            continue
        wh = sizes.get(cid)
        iw, ih = im.get("width"), im.get("height")
        if iw is not None or ih is not None:
            if not (_is_num(iw) and _is_num(ih) and iw > 0 and ih > 0):
                problems.append(Problem(f, w, f"width/height {iw!r}x{ih!r}; expected positive numbers"))
                continue
            if wh and (int(iw), int(ih)) != wh:
                problems.append(Problem(f, w, f"image {fn!r} size {iw}x{ih} differs from the image file's "
                                        f"{wh[0]}x{wh[1]}"))
            wh = wh or (float(iw), float(ih))
        img_case[iid] = cid
        case_img[cid] = iid
        if wh:
            img_size[iid] = wh

    # annotations
    anns: list[dict] = []
    seen_ann: set = set()
    for i, a in enumerate(data["annotations"]):
        w = f"annotations[{i}]"
        if not isinstance(a, dict):
            problems.append(Problem(f, w, f"expected an object, got {a!r}"))
            continue
        if "id" in a:
            if a["id"] in seen_ann:
                problems.append(Problem(f, f"{w}.id", f"duplicate annotation id {a['id']!r}"))
            seen_ann.add(a["id"])
        iid, cat = a.get("image_id"), a.get("category_id")
        ok = True
        if iid not in img_case:
            problems.append(Problem(f, f"{w}.image_id", f"annotation for unknown image id {iid!r}; expected an id "
                                    "listed in 'images' whose file_name is a manifest image"))
            ok = False
        if cat not in cat_name:
            problems.append(Problem(f, f"{w}.category_id", f"annotation of unknown class (category_id {cat!r}); "
                                    f"expected a category named after one of {classes}"))
            ok = False
        bbox = a.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_num(v) for v in bbox)):
            problems.append(Problem(f, f"{w}.bbox", f"bbox {bbox!r}; expected 4 finite numbers [x, y, width, height]"))
            continue
        x, y, bw, bh = (float(v) for v in bbox)
        if bw <= 0 or bh <= 0:
            problems.append(Problem(f, f"{w}.bbox", f"box {bbox!r} has non-positive size (width {bw:g}, height "
                                    f"{bh:g}); expected width > 0 and height > 0"))
            ok = False
        if iid in img_size:
            W, H = img_size[iid]
            tol = 1.0
            if x < -tol or y < -tol or x + bw > W + tol or y + bh > H + tol:
                problems.append(Problem(f, f"{w}.bbox", f"box {bbox!r} lies outside its {W}x{H} image "
                                        f"(x {x:g}..{x + bw:g}, y {y:g}..{y + bh:g})"))
                ok = False
        seg = a.get("segmentation")
        name = cat_name.get(cat)
        if name in polygon_classes:
            good = (isinstance(seg, list) and seg and all(isinstance(poly, list) and len(poly) >= 6
                    and len(poly) % 2 == 0 and all(_is_num(v) for v in poly) for poly in seg))
            if not good:
                problems.append(Problem(f, f"{w}.segmentation", f"class {name!r} is a polygon class; expected a "
                                        "list of polygons [[x1, y1, x2, y2, x3, y3, ...]], got "
                                        f"{str(seg)[:80]!r}"))
                ok = False
        if ok:  # a tuple, not a dict: at 100,000 images there are over a million of them
            anns.append((iid, cat, x, y, bw, bh, seg if name in polygon_classes else None))
    if problems:
        return None, problems
    data = None  # the parsed file: only the annotations' polygons are still needed, and anns holds them

    # normalise: image id = position of the case in the manifest + 1; categories in protocol order
    new_img = {iid: position[cid] + 1 for iid, cid in img_case.items()}
    new_cat = {cid: classes.index(n) + 1 for cid, n in cat_name.items()}
    rev = {v: k for k, v in by_image.items()}
    images = []
    for iid, cid in sorted(img_case.items(), key=lambda t: new_img[t[0]]):
        wh = img_size.get(iid, (None, None))
        images.append({"id": new_img[iid], "file_name": rev[cid], "case_id": cid,
                       "width": int(wh[0]) if wh[0] else None, "height": int(wh[1]) if wh[1] else None})
    ordered = sorted(anns, key=lambda t: new_img[t[0]])
    del anns
    out_anns = []
    for k in range(len(ordered)):
        iid, cat, x, y, bw, bh, seg = ordered[k]
        ordered[k] = None  # one copy of each annotation at a time
        d = {"id": k + 1, "image_id": new_img[iid], "category_id": new_cat[cat],
             "bbox": [x, y, bw, bh], "area": bw * bh, "iscrowd": 0}
        if seg is not None:
            d["segmentation"] = seg
        out_anns.append(d)
    annotated = set(img_case.values())
    doc = {"images": images, "annotations": out_anns,
           "categories": [{"id": i + 1, "name": c, "supercategory": "lesion"} for i, c in enumerate(classes)],
           "unannotated_cases": [c for c in order if c not in annotated]}
    return doc, []


def load_annotations(path: str | os.PathLike, *, cases: Any, classes: list[str],
                     polygon_classes: Iterable[str] = ()) -> dict:
    """Load COCO instances annotations and normalise them onto the manifest and protocol.

    Parameters
    ----------
    path : COCO instances JSON; images link to cases by ``file_name`` == manifest ``image``.
    cases : the manifest DataFrame (``case_id``, ``image`` [, ``width``, ``height``]) or a
        mapping ``image -> case_id``.
    classes : the protocol's classes, in protocol order.
    polygon_classes : classes whose annotations must carry polygons.

    Returns
    -------
    dict
        COCO document: ``images`` (``id`` = 1-based position of the case in the manifest,
        ``file_name``, ``case_id``, ``width``, ``height``), ``annotations`` (ids 1..M,
        ``bbox`` [x, y, w, h] in original pixels, ``area``, ``iscrowd`` 0, ``segmentation``
        for polygon classes), ``categories`` (ids 1..K in protocol order) and
        ``unannotated_cases`` (manifest cases whose image is not listed in the file).

    Raises
    ------
    StudyError
        With every problem found (see :func:`validate_annotations`).
    """
    doc, problems = validate_annotations(path, cases=cases, classes=list(classes), polygon_classes=polygon_classes)
    raise_if(problems)
    return doc  # type: ignore[return-value]


def empty_ground_truth(cases: pd.DataFrame, *, classes: list[str]) -> dict:
    """A COCO document with no images annotated (the study has no lesion annotations)."""
    return {"images": [], "annotations": [],
            "categories": [{"id": i + 1, "name": c, "supercategory": "lesion"} for i, c in enumerate(classes)],
            "unannotated_cases": cases["case_id"].astype(str).tolist()}
