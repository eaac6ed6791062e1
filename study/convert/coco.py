"""COCO instances with the source's own category names -> the project's manifest + COCO.

Categories are renamed onto protocol classes (``class_map``; equal names map to
themselves); every annotation is then validated like ``study check`` does
(:func:`study.cohort.validate_annotations`: unknown images/classes, negative or
out-of-image boxes, polygons for polygon classes). A box that cannot be right (missing or
non-finite coordinate, zero or negative size, past the image border:
:func:`study.convert.plausible.box_fault`) fails the conversion naming the annotation, or with
``drop_implausible=True`` (``--drop-implausible``) is left out and listed in ``conversion.json``
(``quarantined``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from study.cohort import validate_annotations
from study.convert import Conversion
from study.convert.plausible import _finite, box_fault, quarantine
from study.errors import Problem, StudyError
from study.io import read_json


def convert_coco(src: str | Path, *, classes: list[str], class_map: dict[str, str] | None = None,
                 polygon_classes: list[str] = (), images: str | Path | None = None,
                 drop_implausible: bool = False) -> Conversion:
    """Convert a COCO instances file; manifest ``case_id`` = file stem of each image; boxes that cannot be
    right are quarantined (``info.quarantined``: annotation index, image, reason) when ``drop_implausible``,
    problems otherwise."""
    f = str(src)
    class_map = dict(class_map or {})
    conv = Conversion(manifest=[], coco={}, info={"format": "coco", "source": f, "class_map": class_map})
    try:
        data = read_json(src)
    except StudyError as e:
        conv.problems += e.problems
        return conv
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations", "categories")):
        conv.problems.append(Problem(f, "(top level)", "expected a COCO object with 'images', 'annotations' and "
                                     "'categories' lists"))
        return conv
    data = dict(data)
    data["categories"] = [dict(c, name=class_map.get(c.get("name"), c.get("name"))) if isinstance(c, dict) else c
                          for c in data["categories"]]
    mapping: dict[str, str] = {}
    seen: dict[str, str] = {}
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or not im.get("file_name"):
            continue  # reported by validate_annotations
        fn = str(im["file_name"])
        cid = Path(fn).stem
        if cid in seen and seen[cid] != fn:
            conv.problems.append(Problem(f, f"images[{i}].file_name", f"{fn!r} gives case_id {cid!r}, already used "
                                         f"by {seen[cid]!r}"))
            continue
        seen[cid] = fn
        mapping[fn] = cid
        if images is not None and not (Path(images) / fn).is_file():
            conv.problems.append(Problem(f, f"images[{i}].file_name", f"image {fn!r} not found in {str(images)!r}"))
    data["annotations"] = _without_wrong_boxes(data, conv, file=f, drop=drop_implausible)
    doc, probs = validate_annotations(data, cases=mapping, classes=classes, polygon_classes=polygon_classes, source=f)
    conv.problems += probs
    if doc is None:
        return conv
    doc.pop("unannotated_cases", None)
    conv.coco = doc
    conv.manifest = [{"case_id": im["case_id"], "patient_id": im["case_id"], "image": im["file_name"]}
                     for im in doc["images"]]
    conv.info.update(images=len(doc["images"]), boxes=len(doc["annotations"]),
                     patient_id="unknown in COCO; set to case_id")
    conv.info.setdefault("quarantined", [])
    return conv


def _without_wrong_boxes(data: dict[str, Any], conv: Conversion, *, file: str, drop: bool) -> list[Any]:
    """``data["annotations"]`` without the boxes that cannot be right on their (known, well-sized) image; each
    one left out goes through :func:`study.convert.plausible.quarantine` (a problem unless ``drop``). The
    rest, and annotations of unknown images, are left to :func:`study.cohort.validate_annotations`."""
    sizes = {im.get("id"): (str(im.get("file_name")), float(im["width"]), float(im["height"]))
             for im in data["images"] if isinstance(im, dict) and _finite(im.get("width")) and _finite(im.get("height"))
             and im["width"] > 0 and im["height"] > 0}
    quarantined = conv.info.setdefault("quarantined", [])
    kept = []
    for i, a in enumerate(data["annotations"]):
        if isinstance(a, dict) and a.get("image_id") in sizes:
            fn, w, h = sizes[a["image_id"]]
            fault = box_fault(a.get("bbox"), width=w, height=h)
            if fault is not None:
                quarantine(quarantined, conv.problems, drop=drop, file=file, where=f"annotations[{i}].bbox", image=fn,
                           annotation=i, reason=fault[1],
                           expected="expected 4 finite numbers [x, y, width, height], width and height > 0, inside "
                                    "the image")
                continue
        kept.append(a)
    return kept
