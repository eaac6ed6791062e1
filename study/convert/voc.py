"""Pascal VOC XML folders -> manifest + COCO annotations.

VOC boxes are 1-based and inclusive (``xmin = 1`` is the first pixel column); they become
COCO ``[x, y, w, h]`` with ``x = xmin - 1``, ``y = ymin - 1``, ``w = xmax - xmin + 1``,
``h = ymax - ymin + 1``, the convention of Detectron2's VOC loader
(``detectron2/data/datasets/pascal_voc.py``: ``bbox[0] -= 1.0; bbox[1] -= 1.0``).
XML is parsed with the standard library (expat limits entity expansion since 2.4.1).

A box that cannot be right (missing or non-finite coordinate, zero or negative size, past the
image border by more than one pixel: :func:`study.convert.plausible.box_fault`) fails the
conversion, naming the XML file and the object; with ``drop_implausible=True``
(``--drop-implausible``) it is left out and listed in ``conversion.json`` (``quarantined``).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from study.convert import Conversion, coco_document
from study.convert.plausible import TOLERANCE, box_fault, quarantine
from study.errors import Problem

__all__ = ["TOLERANCE", "convert_voc", "manifest_and_coco", "parse_voc"]


def _num(el: Any, tag: str) -> float | None:
    t = el.findtext(tag) if el is not None else None
    try:
        return float(t) if t is not None else None
    except ValueError:
        return None


def parse_voc(path: Path, *, classes: list[str], class_map: dict[str, str],
              drop_implausible: bool = False) -> tuple[dict[str, Any] | None, list[Problem]]:
    """One VOC XML file -> ``{"file_name", "width", "height", "boxes": [(class, [x, y, w, h])], "quarantined"}``.

    ``quarantined`` lists the boxes that cannot be right (each with ``file``, ``object`` (1-based),
    ``image``, ``field`` and ``reason``); they are problems unless ``drop_implausible``, and never boxes.
    """
    f = str(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        return None, [Problem(f, f"line {e.position[0]}", f"not well-formed XML: {e}")]
    except OSError as e:
        return None, [Problem(f, "", f"cannot read: {e.strerror}")]
    if root.tag != "annotation":
        return None, [Problem(f, root.tag, f"root element <{root.tag}>; expected a Pascal VOC <annotation>")]
    problems = []
    fn = (root.findtext("filename") or "").strip()
    if not fn:
        problems.append(Problem(f, "annotation/filename", "missing <filename>; expected the image's file name"))
    size = root.find("size")
    W, H = _num(size, "width"), _num(size, "height")
    if W is None or H is None or W <= 0 or H <= 0:
        problems.append(Problem(f, "annotation/size", f"image size {W!r}x{H!r}; expected positive <width> and <height>"))
        W = H = None
    boxes = []
    quarantined: list[dict[str, Any]] = []
    for i, obj in enumerate(root.findall("object")):
        where = f"annotation/object[{i + 1}]"
        name = (obj.findtext("name") or "").strip()
        cls = class_map.get(name, name)
        if cls not in classes:
            problems.append(Problem(f, f"{where}/name", f"unknown class {name!r}; expected one of {classes}"
                                    + (f" or a mapped name {sorted(class_map)}" if class_map else "")
                                    + " (use --class-map NAME=CLASS)"))
            continue
        bb = obj.find("bndbox")
        vals = [_num(bb, t) for t in ("xmin", "ymin", "xmax", "ymax")]
        if bb is None or any(v is None or not math.isfinite(v) for v in vals):
            box: list[Any] = ["missing" if bb is None else bb.findtext(t) for t in ("xmin", "ymin", "xmax", "ymax")]
            quarantine(quarantined, problems, drop=drop_implausible, file=f, where=f"{where}/bndbox", image=fn,
                       object=i + 1, reason=f"box xmin, ymin, xmax, ymax {box!r} are not four finite numbers ({name!r})",
                       expected="expected numeric xmin, ymin, xmax, ymax")
            continue
        x0, y0, x1, y1 = (float(v) for v in vals if v is not None)
        fault = box_fault([x0 - 1, y0 - 1, x1 - x0 + 1, y1 - y0 + 1], width=W, height=H)
        if fault is not None:
            corners = f"box xmin={x0:g} ymin={y0:g} xmax={x1:g} ymax={y1:g}"
            reason, expected = ((f"{corners} has negative size", "expected xmax >= xmin and ymax >= ymin")
                                if fault[0] == "size" else
                                (f"{corners} lies outside the {W:g}x{H:g} image",
                                 f"expected 1 <= x <= {W:g} and 1 <= y <= {H:g} (1-based, inclusive)"))
            quarantine(quarantined, problems, drop=drop_implausible, file=f, where=f"{where}/bndbox", image=fn,
                       object=i + 1, reason=f"{reason} ({name!r})", expected=expected)
            continue
        boxes.append((cls, [x0 - 1, y0 - 1, x1 - x0 + 1, y1 - y0 + 1]))
    if problems:
        return None, problems
    assert W is not None and H is not None  # a missing size is a problem above
    return {"file_name": fn, "width": int(W), "height": int(H), "boxes": boxes, "quarantined": quarantined}, []


def convert_voc(src: str | Path, *, classes: list[str], class_map: dict[str, str] | None = None,
                images: str | Path | None = None, drop_implausible: bool = False) -> Conversion:
    """Convert a folder of VOC XML files.

    Parameters
    ----------
    src : folder holding ``*.xml`` (one per image).
    classes : the protocol's classes (output categories, in order).
    class_map : VOC object name -> class (e.g. ``{"fore": "acne"}``).
    images : the image folder, to check that every annotated image exists (optional).
    drop_implausible : leave out (quarantine) the boxes that cannot be right instead of failing.

    Returns
    -------
    Conversion
        ``manifest`` rows (``case_id`` = file stem, ``patient_id`` = case_id, ``image`` =
        file name), the COCO document, ``info.quarantined`` (the boxes left out, each with its
        file, object, image and reason) and the problems found.
    """
    src = Path(src)
    class_map = dict(class_map or {})
    conv = Conversion(manifest=[], coco={}, info={"format": "voc", "source": str(src)})
    if not src.is_dir():
        conv.problems.append(Problem(str(src), "", "folder not found; expected a folder of Pascal VOC *.xml files"))
        return conv
    files = sorted(src.glob("*.xml"))
    if not files:
        conv.problems.append(Problem(str(src), "", "no *.xml files in this folder"))
        return conv
    recs = []
    for p in files:
        rec, probs = parse_voc(p, classes=classes, class_map=class_map, drop_implausible=drop_implausible)
        conv.problems += probs
        if rec:
            rec["xml"] = str(p)
            recs.append(rec)
    conv.manifest, conv.coco = manifest_and_coco(recs, classes=classes, images=images, problems=conv.problems)
    conv.info.update(images=len(recs), boxes=sum(len(r["boxes"]) for r in recs), class_map=class_map,
                     quarantined=[q for r in recs for q in r["quarantined"]],
                     patient_id="unknown in VOC; set to case_id")
    return conv


def manifest_and_coco(recs: list[dict[str, Any]], *, classes: list[str], images: str | Path | None,
                      problems: list[Problem]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Manifest rows and COCO from parsed records; duplicate case ids / missing images are problems."""
    seen: dict[str, str] = {}
    manifest, imgs, boxes = [], [], []
    for r in recs:
        fn = r["file_name"]
        cid = Path(fn).stem
        if cid in seen:
            problems.append(Problem(r.get("xml", fn), "filename", f"image {fn!r} gives case_id {cid!r}, already "
                                    f"used by {seen[cid]!r}; expected one annotation file per image"))
            continue
        seen[cid] = r.get("xml", fn)
        if images is not None and not (Path(images) / fn).is_file():
            problems.append(Problem(r.get("xml", fn), "filename", f"image {fn!r} not found in {str(images)!r}"))
        manifest.append({"case_id": cid, "patient_id": cid, "image": fn})
        imgs.append({"file_name": fn, "width": r["width"], "height": r["height"], "case_id": cid})
        boxes += [(fn, c, b) for c, b in r["boxes"]]
    return manifest, coco_document(imgs, boxes, classes=classes)
