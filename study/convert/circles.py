"""Circle annotations (centre ``coordinates`` [x, y] + ``radius``, as in acne04v2) -> COCO boxes.

Input: a COCO-like JSON with ``images`` (``id``, ``file_name``, ``width``, ``height``) and
``annotations`` (``image_id``, ``coordinates`` [x, y], ``radius`` [, ``category_id`` with
``categories``]). A circle becomes the box ``[x - r, y - r, 2r, 2r]`` clipped to the image.

Implausible radii (<= 0, or above ``max_radius_fraction`` of the image's shorter side;
acne04v2 has at least one radius of thousands of pixels) are problems; with
``drop_implausible=True`` they are left out instead and listed in ``conversion.json``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from study.convert import Conversion, coco_document
from study.errors import Problem, StudyError
from study.io import read_json


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))


def convert_circles(src: str | Path, *, classes: list[str], class_map: dict[str, str] | None = None,
                    images: str | Path | None = None, max_radius_fraction: float = 0.1,
                    drop_implausible: bool = False) -> Conversion:
    """Convert a circle-annotation JSON file; see the module docstring.

    Returns
    -------
    Conversion
        Manifest rows (``case_id`` = file stem), COCO boxes, ``info.implausible`` (every
        implausible circle with its image, radius and the limit) and the problems.
    """
    f = str(src)
    class_map = dict(class_map or {})
    conv = Conversion(manifest=[], coco={}, info={"format": "circles", "source": f,
                                                  "max_radius_fraction": max_radius_fraction})
    try:
        data = read_json(src)
    except StudyError as e:
        conv.problems += e.problems
        return conv
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(data.get("annotations"), list):
        conv.problems.append(Problem(f, "(top level)", "expected an object with 'images' and 'annotations' lists"))
        return conv
    cat_names = {c.get("id"): c.get("name") for c in data.get("categories") or [] if isinstance(c, dict)}
    imgs: dict[Any, dict[str, Any]] = {}
    order = []
    seen_case: dict[str, int] = {}
    for i, im in enumerate(data["images"]):
        w = f"images[{i}]"
        if not isinstance(im, dict):
            conv.problems.append(Problem(f, w, f"expected an object, got {im!r}"))
            continue
        fn = str(im.get("file_name") or "").lstrip("/\\")
        W, H = im.get("width"), im.get("height")
        if not fn:
            conv.problems.append(Problem(f, f"{w}.file_name", "missing file_name"))
            continue
        if not (_num(W) and _num(H) and W > 0 and H > 0):
            conv.problems.append(Problem(f, w, f"image {fn!r} size {W!r}x{H!r}; expected positive width and height"))
            continue
        if im.get("id") in imgs:
            conv.problems.append(Problem(f, f"{w}.id", f"duplicate image id {im.get('id')!r}"))
            continue
        cid = Path(fn).stem
        if cid in seen_case:
            conv.problems.append(Problem(f, f"{w}.file_name", f"{fn!r} gives case_id {cid!r}, already used by "
                                         f"images[{seen_case[cid]}]"))
            continue
        seen_case[cid] = i
        if images is not None and not (Path(images) / fn).is_file():
            conv.problems.append(Problem(f, f"{w}.file_name", f"image {fn!r} not found in {str(images)!r}"))
        imgs[im.get("id")] = {"file_name": fn, "width": int(W), "height": int(H), "case_id": cid}
        order.append(im.get("id"))
    boxes, implausible = [], []
    for i, a in enumerate(data["annotations"]):
        w = f"annotations[{i}]"
        if not isinstance(a, dict):
            conv.problems.append(Problem(f, w, f"expected an object, got {a!r}"))
            continue
        im = imgs.get(a.get("image_id"))
        if im is None:
            conv.problems.append(Problem(f, f"{w}.image_id", f"annotation for unknown image id {a.get('image_id')!r}"))
            continue
        if "category_id" in a:
            name = cat_names.get(a["category_id"], a["category_id"])
            cls = class_map.get(str(name), str(name))
        elif len(classes) == 1:
            cls = classes[0]
        else:
            cls = None
        if cls not in classes:
            conv.problems.append(Problem(f, w, f"annotation of unknown class {cls!r}; expected one of {classes} "
                                         "(use --class-map NAME=CLASS)"))
            continue
        xy, r = a.get("coordinates"), a.get("radius")
        if not (isinstance(xy, list) and len(xy) == 2 and all(_num(v) for v in xy)):
            conv.problems.append(Problem(f, f"{w}.coordinates", f"coordinates {xy!r}; expected [x, y] (finite numbers)"))
            continue
        if not _num(r):
            conv.problems.append(Problem(f, f"{w}.radius", f"radius {r!r}; expected a finite number"))
            continue
        x, y, r = float(xy[0]), float(xy[1]), float(r)
        W, H = im["width"], im["height"]
        if not (0 <= x <= W and 0 <= y <= H):
            conv.problems.append(Problem(f, f"{w}.coordinates", f"centre ({x:g}, {y:g}) lies outside the {W}x{H} "
                                         f"image {im['file_name']!r}"))
            continue
        limit = max_radius_fraction * min(W, H)
        if r <= 0 or r > limit:
            rec = {"annotation": i, "image": im["file_name"], "radius": r, "limit": limit}
            implausible.append(rec)
            if not drop_implausible:
                conv.problems.append(Problem(f, f"{w}.radius", f"implausible radius {r:g} px on the {W}x{H} image "
                                             f"{im['file_name']!r}; expected 0 < radius <= {limit:g} "
                                             f"({max_radius_fraction:g} of the shorter side); fix it or pass "
                                             "--drop-implausible"))
            continue
        x0, y0 = max(0.0, x - r), max(0.0, y - r)
        x1, y1 = min(float(W), x + r), min(float(H), y + r)
        boxes.append((im["file_name"], cls, [x0, y0, x1 - x0, y1 - y0]))
    images_list = [imgs[k] for k in order]
    conv.manifest = [{"case_id": im["case_id"], "patient_id": im["case_id"], "image": im["file_name"]} for im in images_list]
    conv.coco = coco_document(images_list, boxes, classes=classes)
    conv.info.update(images=len(images_list), boxes=len(boxes), implausible=implausible,
                     implausible_dropped=bool(drop_implausible and implausible),
                     patient_id="unknown in the source; set to case_id")
    return conv
