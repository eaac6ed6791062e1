"""Pascal VOC XML folders -> manifest + COCO annotations.

VOC boxes are 1-based and inclusive (``xmin = 1`` is the first pixel column); they become
COCO ``[x, y, w, h]`` with ``x = xmin - 1``, ``y = ymin - 1``, ``w = xmax - xmin + 1``,
``h = ymax - ymin + 1``, the convention of Detectron2's VOC loader
(``detectron2/data/datasets/pascal_voc.py``: ``bbox[0] -= 1.0; bbox[1] -= 1.0``).
XML is parsed with the standard library (expat limits entity expansion since 2.4.1).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from study.convert import Conversion, coco_document
from study.errors import Problem

#: tolerance (pixels) for boxes reaching past the image border
TOLERANCE = 1.0


def _num(el: Any, tag: str) -> float | None:
    t = el.findtext(tag) if el is not None else None
    try:
        return float(t) if t is not None else None
    except ValueError:
        return None


def parse_voc(path: Path, *, classes: list[str], class_map: dict[str, str]) -> tuple[dict[str, Any] | None, list[Problem]]:
    """One VOC XML file -> ``{"file_name", "width", "height", "boxes": [(class, [x, y, w, h])]}``."""
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
        if bb is None or any(v is None or v != v for v in vals):
            problems.append(Problem(f, f"{where}/bndbox", f"box {vals!r}; expected numeric xmin, ymin, xmax, ymax"))
            continue
        x0, y0, x1, y1 = vals
        w, h = x1 - x0 + 1, y1 - y0 + 1
        if w <= 0 or h <= 0:
            problems.append(Problem(f, f"{where}/bndbox", f"box xmin={x0:g} ymin={y0:g} xmax={x1:g} ymax={y1:g} "
                                    "has negative size; expected xmax >= xmin and ymax >= ymin"))
            continue
        if W is not None and (x0 - 1 < -TOLERANCE or y0 - 1 < -TOLERANCE or x1 > W + TOLERANCE or y1 > H + TOLERANCE):
            problems.append(Problem(f, f"{where}/bndbox", f"box xmin={x0:g} ymin={y0:g} xmax={x1:g} ymax={y1:g} lies "
                                    f"outside the {W:g}x{H:g} image"))
            continue
        boxes.append((cls, [x0 - 1, y0 - 1, w, h]))
    if problems:
        return None, problems
    return {"file_name": fn, "width": int(W), "height": int(H), "boxes": boxes}, []


def convert_voc(src: str | Path, *, classes: list[str], class_map: dict[str, str] | None = None,
                images: str | Path | None = None) -> Conversion:
    """Convert a folder of VOC XML files.

    Parameters
    ----------
    src : folder holding ``*.xml`` (one per image).
    classes : the protocol's classes (output categories, in order).
    class_map : VOC object name -> class (e.g. ``{"fore": "acne"}``).
    images : the image folder, to check that every annotated image exists (optional).

    Returns
    -------
    Conversion
        ``manifest`` rows (``case_id`` = file stem, ``patient_id`` = case_id, ``image`` =
        file name), the COCO document, and the problems found.
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
        rec, probs = parse_voc(p, classes=classes, class_map=class_map)
        conv.problems += probs
        if rec:
            rec["xml"] = str(p)
            recs.append(rec)
    conv.manifest, conv.coco = manifest_and_coco(recs, classes=classes, images=images, problems=conv.problems)
    conv.info.update(images=len(recs), boxes=sum(len(r["boxes"]) for r in recs), class_map=class_map,
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
