"""Converters from other annotation layouts into the project's tables (``study convert``).

Each converter reads its source, collects *every* problem, and only when there is none
writes (atomically) into ``out``: ``manifest.csv`` (``case_id, patient_id, image``, ...),
``annotations.json`` (COCO instances, categories named after protocol classes) and, where
the source has them, ``reference.csv`` and ``readings.csv``, plus ``conversion.json`` (what
was read, what was left out and why). A failed conversion leaves no file behind.

Formats: :mod:`~study.convert.voc` (Pascal VOC XML folders), :mod:`~study.convert.circles`
(centre + radius, e.g. acne04v2), :mod:`~study.convert.coco` (COCO instances with other
class names), :mod:`~study.convert.acne04` (the ACNE04 release layout + reader files). Lesions that
cannot be right (box or centre outside the image, zero or negative size, non-finite numbers,
implausible radius) fail the conversion, or with ``--drop-implausible`` are left out and listed
(``quarantined`` in ``conversion.json``): :mod:`~study.convert.plausible`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from study.errors import Problem, raise_if
from study.io import write_json, write_text

FORMATS = ["voc", "circles", "coco", "acne04"]


@dataclass
class Conversion:
    """What a converter produced, before anything is written."""

    manifest: list[dict[str, Any]]
    coco: dict[str, Any]
    reference: list[dict[str, Any]] | None = None
    readings: list[dict[str, Any]] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="raise")
    w.writeheader()
    for r in rows:
        w.writerow({c: "" if r.get(c) is None else r.get(c) for c in columns})
    return buf.getvalue()


def write_conversion(conv: Conversion, out: str | Path) -> dict[str, str]:
    """Raise on problems; otherwise write the tables into ``out`` and return ``{role: path}``."""
    raise_if(conv.problems)
    out = Path(out)
    files = {}
    cols = list(dict.fromkeys(k for r in conv.manifest for k in r)) or ["case_id", "patient_id", "image"]
    text = {"manifest": csv_text(conv.manifest, cols)}
    if conv.reference is not None:
        rc = list(dict.fromkeys(k for r in conv.reference for k in r)) or ["case_id", "grade"]
        text["reference"] = csv_text(conv.reference, rc)
    if conv.readings is not None:
        text["readings"] = csv_text(conv.readings, ["reader_id", "reader_group", "case_id", "grade"])
    # write the tables first and the index of the conversion last
    for role, t in text.items():
        p = out / f"{role}.csv"
        write_text(p, t)
        files[role] = str(p)
    write_json(out / "annotations.json", conv.coco)
    files["annotations"] = str(out / "annotations.json")
    write_json(out / "conversion.json", {**conv.info, "files": {k: Path(v).name for k, v in files.items()}})
    files["conversion"] = str(out / "conversion.json")
    return files


def coco_document(images: list[dict[str, Any]], boxes: list[tuple[str, str, list[float]]], *,
                  classes: list[str]) -> dict[str, Any]:
    """A COCO instances document from ``images`` (``file_name``, ``width``, ``height``, ``case_id``)
    and ``boxes`` (file_name, class, [x, y, w, h]); ids 1.. in the given order."""
    ids = {im["file_name"]: i + 1 for i, im in enumerate(images)}
    cat = {c: i + 1 for i, c in enumerate(classes)}
    anns = []
    for k, (fn, cls, (x, y, w, h)) in enumerate(boxes, start=1):
        anns.append({"id": k, "image_id": ids[fn], "category_id": cat[cls], "bbox": [x, y, w, h],
                     "area": w * h, "iscrowd": 0})
    return {"images": [{"id": ids[im["file_name"]], **im} for im in images], "annotations": anns,
            "categories": [{"id": i, "name": c, "supercategory": "lesion"} for c, i in cat.items()]}
