"""Several annotators' files made by perturbing a synthetic cohort's true lesions and grades.

``study synth --annotators N --annotator-noise X`` writes ``annotators/<id>.json`` (COCO, every
image listed) and ``annotators/<id>-grades.csv`` (``case_id, grade``) for ids ``A1..AN``, so a
reference standard fused from several annotators (:mod:`study.annotators`) can be run end to
end. Annotator j, with its own random stream (seed, j):

- misses each true lesion with probability ``X``;
- moves each kept box by a normal shift of SD ``X / 4`` of its size in each coordinate (a
  polygon is moved with its box, its size kept);
- adds, with probability ``X`` per image, one spurious box (a box class, size of a random true
  lesion of the image or 8 px, at a uniform place inside the image);
- grades the image from its own lesion counts (the protocol's grading), then, with probability
  ``X``, one level up or down (within the levels).

The same seed, count and noise give byte-identical files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from study.synth.vocabulary import CLASSES, LEVELS, POLYGON_CLASSES, grade_cases


def _perturb(coco: dict[str, Any], *, noise: float, rng: np.random.Generator,
             polygon_classes: set[str]) -> dict[str, Any]:
    cat_name = {c["id"]: c["name"] for c in coco["categories"]}
    box_cats = [c["id"] for c in coco["categories"] if c["name"] not in polygon_classes]
    by_image: dict[int, list] = {im["id"]: [] for im in coco["images"]}
    for a in coco["annotations"]:
        by_image[a["image_id"]].append(a)
    out = []
    for im in coco["images"]:
        W, H = float(im["width"]), float(im["height"])
        anns = by_image[im["id"]]
        for a in anns:
            if rng.random() < noise:
                continue
            x, y, w, h = a["bbox"]
            dx, dy = rng.normal(0, noise / 4 * w), rng.normal(0, noise / 4 * h)
            polygon = cat_name[a["category_id"]] in polygon_classes
            dw = 0.0 if polygon else rng.normal(0, noise / 4 * w)
            dh = 0.0 if polygon else rng.normal(0, noise / 4 * h)
            nw, nh = max(1.0, w + dw), max(1.0, h + dh)
            nx, ny = min(max(0.0, x + dx), W - nw), min(max(0.0, y + dy), H - nh)
            b = {"image_id": im["id"], "category_id": a["category_id"],
                 "bbox": [round(nx, 2), round(ny, 2), round(nw, 2), round(nh, 2)]}
            if polygon:
                sx, sy = nx - x, ny - y
                b["segmentation"] = [[round(v + (sx if i % 2 == 0 else sy), 2) for i, v in enumerate(poly)]
                                     for poly in a["segmentation"]]
            out.append(b)
        if rng.random() < noise:
            size = anns[int(rng.integers(len(anns)))]["bbox"][2:] if anns else [8.0, 8.0]
            w, h = min(float(size[0]), W - 1), min(float(size[1]), H - 1)
            out.append({"image_id": im["id"], "category_id": int(box_cats[int(rng.integers(len(box_cats)))]),
                        "bbox": [round(float(rng.uniform(0, W - w)), 2), round(float(rng.uniform(0, H - h)), 2),
                                 round(w, 2), round(h, 2)]})
    for k, a in enumerate(out, start=1):
        a["id"] = k
    return {"images": coco["images"], "annotations": out, "categories": coco["categories"]}


def make_annotators(out_dir: str | Path, *, n: int, noise: float, seed: int,
                    polygon_classes: tuple[str, ...] = tuple(POLYGON_CLASSES)) -> list[dict[str, str]]:
    """Write ``n`` annotators' files into ``out_dir/annotators/`` from ``out_dir/annotations.json``.

    Returns
    -------
    list of dict
        ``{id, annotations, grades}`` per annotator (paths as written), as a config's
        ``cohort.annotators`` entries would name them.
    """
    if n < 2:
        raise ValueError(f"--annotators {n}: a fused reference needs at least 2 annotators")
    if not 0 <= noise <= 1:
        raise ValueError(f"--annotator-noise {noise}: expected a probability in [0, 1]")
    out = Path(out_dir)
    coco = json.loads((out / "annotations.json").read_text(encoding="utf-8"))
    (out / "annotators").mkdir(parents=True, exist_ok=True)
    case_of = {im["id"]: im["case_id"] for im in coco["images"]}
    name = {c["id"]: c["name"] for c in coco["categories"]}
    entries = []
    for j in range(1, n + 1):
        rng = np.random.default_rng([seed, 7919, j])
        doc = _perturb(coco, noise=noise, rng=rng, polygon_classes=set(polygon_classes))
        counts = {c: {k: 0 for k in CLASSES} for c in case_of.values()}
        for a in doc["annotations"]:
            counts[case_of[a["image_id"]]][name[a["category_id"]]] += 1
        grades = grade_cases(counts)
        rows = ["case_id,grade"]
        for cid in case_of.values():
            g = LEVELS.index(grades[cid])
            if rng.random() < noise:
                g = min(len(LEVELS) - 1, max(0, g + (1 if rng.random() < 0.5 else -1)))
            rows.append(f"{cid},{LEVELS[g]}")
        aid = f"A{j}"
        ann_path, grades_path = out / "annotators" / f"{aid}.json", out / "annotators" / f"{aid}-grades.csv"
        ann_path.write_text(json.dumps(doc, sort_keys=True), encoding="utf-8")
        grades_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        entries.append({"id": aid, "annotations": str(ann_path), "grades": str(grades_path)})
    return entries
