"""Circle annotations (centre ``coordinates`` [x, y] + ``radius``, as in acne04v2) -> COCO boxes.

Input: a COCO-like JSON with ``images`` (``id``, ``file_name``, ``width``, ``height``) and
``annotations`` (``image_id``, ``coordinates`` [x, y], ``radius`` [, ``category_id`` with
``categories``]). A circle becomes the box ``[x - r, y - r, 2r, 2r]`` clipped to the image.

Lesions that cannot be right are problems: a centre outside its image (acne04v2 has an
image whose lesions all lie far outside it, apparently scaled by 100), a non-finite centre
or radius, a radius <= 0 or above ``max_radius_fraction`` of the image's shorter side
(acne04v2 has at least one of thousands of pixels). With ``drop_implausible=True`` they are
quarantined instead: left out, each listed with its reason in ``conversion.json``
(``quarantined``; the radius cases also in ``implausible``, with the limit).
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


def _wrong_circle(xy: list[Any], r: Any, width: int, height: int, limit: float) -> tuple[str, str, str] | None:
    """Why a circle cannot be right, as ``(field, reason, what is expected)``, or ``None`` when plausible."""
    if not all(_num(v) for v in xy):
        return "coordinates", f"centre {xy!r} is not finite on {{image}}", "expected finite numbers"
    if not _num(r):
        return "radius", f"radius {r!r} is not finite on {{image}}", "expected a finite number"
    x, y, rad = float(xy[0]), float(xy[1]), float(r)
    if not (0 <= x <= width and 0 <= y <= height):
        return "coordinates", f"centre ({x:g}, {y:g}) lies outside {{image}}", "expected a centre inside the image"
    if rad <= 0 or rad > limit:
        return "radius", f"implausible radius {rad:g} px on {{image}}", (f"expected 0 < radius <= {limit:g} "
                                                                     "(max_radius_fraction of the shorter side)")
    return None


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
    boxes: list[tuple[str, str, list[float]]] = []
    implausible: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
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
        if not (isinstance(xy, list) and len(xy) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                              for v in xy)):
            conv.problems.append(Problem(f, f"{w}.coordinates", f"coordinates {xy!r}; expected [x, y] (numbers)"))
            continue
        if not (isinstance(r, (int, float)) and not isinstance(r, bool)):
            conv.problems.append(Problem(f, f"{w}.radius", f"radius {r!r}; expected a number"))
            continue
        W, H = im["width"], im["height"]
        limit = max_radius_fraction * min(W, H)
        wrong = _wrong_circle(xy, r, W, H, limit)
        if wrong is not None:
            field_name, reason, expected = wrong
            reason = reason.format(image=f"the {W}x{H} image {im['file_name']!r}")
            quarantined.append({"annotation": i, "image": im["file_name"], "field": field_name,
                                "reason": f"{reason}; {expected}"})
            if field_name == "radius" and math.isfinite(float(r)) and all(_num(v) for v in xy):
                implausible.append({"annotation": i, "image": im["file_name"], "radius": float(r), "limit": limit})
            if not drop_implausible:
                conv.problems.append(Problem(f, f"{w}.{field_name}", f"{reason}; {expected}; fix it or pass "
                                             "--drop-implausible to leave such lesions out (each is listed in "
                                             "conversion.json)"))
            continue
        x, y, r = float(xy[0]), float(xy[1]), float(r)
        x0, y0 = max(0.0, x - r), max(0.0, y - r)
        x1, y1 = min(float(W), x + r), min(float(H), y + r)
        boxes.append((im["file_name"], cls, [x0, y0, x1 - x0, y1 - y0]))
    images_list = [imgs[k] for k in order]
    conv.manifest = [{"case_id": im["case_id"], "patient_id": im["case_id"], "image": im["file_name"]} for im in images_list]
    conv.coco = coco_document(images_list, boxes, classes=classes)
    conv.info.update(images=len(images_list), boxes=len(boxes), implausible=implausible,
                     implausible_dropped=bool(drop_implausible and implausible), quarantined=quarantined,
                     patient_id="unknown in the source; set to case_id")
    return conv
