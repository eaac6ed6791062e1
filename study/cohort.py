"""Cohort intake: manifest, COCO annotations and reference tables; loading, validation, normalisation.

Every ``validate_*`` function returns ``(result, problems)`` and collects *all* problems of
its input (file, row / JSON path, offending value, what was expected), so ``study check``
can report everything at once. The ``load_*`` functions used by the workflow raise a
:class:`~study.errors.StudyError` carrying those problems, except that images which are
missing or do not decode do not stop the intake: they stay in the cases table with
``decodable = False`` and ``image_error`` saying why, and the STARD flow counts them as
"not decodable" (``study check`` does report them as problems).

Row numbers are the file's line numbers (the header is line 1), so ``row 7`` is what a
spreadsheet or text editor shows.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from study.errors import Problem, StudyError, raise_if
from study.io import sha256_bytes

#: manifest columns that must be present
MANIFEST_REQUIRED = ["case_id", "patient_id", "image"]
#: manifest covariates that must be numbers when given (a blank cell means "not recorded")
MANIFEST_NUMERIC = {"age": (0.0, 130.0)}

_NAN_WORDS = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "-infinity", "+infinity"}


# ============================================================================ CSV tables
def read_csv_table(path: str | os.PathLike, *, required: Iterable[str]) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Read a UTF-8, comma-separated table with one header row, all cells as stripped strings.

    Problems reported (all of them): missing or empty file, non-UTF-8 bytes (with the line),
    a header that looks separated by ``;``, tab or ``|`` instead of commas, duplicate or
    empty column names, missing required columns, rows whose field count differs from the
    header's. Blank lines are ignored.

    Returns
    -------
    (DataFrame | None, list[Problem])
        The table (strings; an extra ``_row`` column holds each row's line number) or
        ``None`` when it cannot be read at all.
    """
    path = Path(path)
    f = str(path)
    required = list(required)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, [Problem(f, "", "file not found")]
    except IsADirectoryError:
        return None, [Problem(f, "", "is a folder; expected a CSV file")]
    if not raw.strip():
        return None, [Problem(f, "", f"empty file; expected a header row with columns {required}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        return None, [Problem(f, f"line {line}", f"not UTF-8 text: byte 0x{raw[e.start]:02x} at offset {e.start}; "
                              "expected a UTF-8 encoded CSV (re-save it as 'CSV UTF-8')")]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as e:
        return None, [Problem(f, "line 1", f"cannot read the header row: {e}")]
    header = [h.strip() for h in header]
    problems: list[Problem] = []
    if len(header) == 1 and len(required) > 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
            if sep in header[0]:
                return None, [Problem(f, "line 1 (header)", f"header {header[0]!r} looks separated by {name}; "
                                      f"expected comma-separated columns {required}")]
    seen: set[str] = set()
    for i, h in enumerate(header):
        if not h:
            problems.append(Problem(f, "line 1 (header)", f"column {i + 1} has no name; every column needs a name"))
        elif h in seen:
            problems.append(Problem(f, "line 1 (header)", f"duplicate column name {h!r}"))
        seen.add(h)
    missing = [c for c in required if c not in header]
    if missing:
        problems.append(Problem(f, "line 1 (header)", f"missing column(s) {missing}; found {header}, "
                                f"expected at least {required}"))
    rows, lines = [], []
    try:
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                problems.append(Problem(f, f"row {reader.line_num}", f"has {len(row)} fields, the header has "
                                        f"{len(header)}; check for an unquoted comma or a missing cell"))
                continue
            rows.append([c.strip() for c in row])
            lines.append(reader.line_num)
    except csv.Error as e:
        problems.append(Problem(f, f"row {reader.line_num}", f"malformed CSV: {e}"))
    if missing or any(p.where.startswith("line 1") for p in problems):
        return None, problems
    df = pd.DataFrame(rows, columns=header, dtype=object) if rows else pd.DataFrame(columns=header, dtype=object)
    df["_row"] = lines
    return df, problems


def parse_number(value: str, *, file: str, where: str, column: str, integer: bool = False,
                 minimum: float | None = None, maximum: float | None = None) -> tuple[float | None, Problem | None]:
    """Parse one numeric cell; NaN / infinity / text / out-of-range give a :class:`Problem`."""
    v = str(value).strip()
    expected = "an integer" if integer else "a number"
    if minimum is not None and maximum is not None:
        expected += f" in [{minimum:g}, {maximum:g}]"
    elif minimum is not None:
        expected += f" >= {minimum:g}"
    if v.lower() in _NAN_WORDS:
        return None, Problem(file, where, f"{column} = {v!r}: NaN or infinity where a number is required; "
                             f"expected {expected}")
    try:
        x = float(v)
    except ValueError:
        return None, Problem(file, where, f"{column} = {v!r} is not a number; expected {expected}")
    if integer and x != int(x):
        return None, Problem(file, where, f"{column} = {v!r} is not a whole number; expected {expected}")
    if (minimum is not None and x < minimum) or (maximum is not None and x > maximum):
        return None, Problem(file, where, f"{column} = {v!r} is out of range; expected {expected}")
    return x, None


def map_grade(value: str, *, levels: list[str], aliases: Mapping[str, str] | None,
              file: str, where: str) -> tuple[str | None, Problem | None]:
    """Map a grade cell onto a protocol level (accepting ``letter_aliases``)."""
    v = str(value).strip()
    if v in levels:
        return v, None
    if aliases and v in aliases:
        return aliases[v], None
    accepted = list(levels) + [a for a in (aliases or {}) if a not in levels]
    if not v:
        return None, Problem(file, where, f"grade is empty; expected one of {accepted}")
    return None, Problem(file, where, f"grade {v!r} is not one of the protocol's levels; expected one of {accepted}")


# ============================================================================ images
def resolve_image(image: str, *, image_root: Path) -> tuple[Path | None, str | None]:
    """Resolve a manifest ``image`` cell under ``image_root``; refuse paths that escape it.

    Returns ``(path, None)`` or ``(None, reason)`` (absolute path, ``..`` component, or a
    symlink whose target lies outside the root).
    """
    if not image:
        return None, "empty"
    p = Path(image)
    if p.is_absolute() or image.startswith(("/", "\\")) or (len(image) > 1 and image[1] == ":"):
        return None, f"image path {image!r} is absolute; expected a path relative to the image root {str(image_root)!r}"
    if ".." in Path(image.replace("\\", "/")).parts:
        return None, f"image path {image!r} contains '..'; expected a path inside the image root {str(image_root)!r}"
    root = image_root.resolve()
    full = root / p
    real = full.resolve()
    if not real.is_relative_to(root):
        return None, (f"image path {image!r} resolves to {str(real)!r} (through a symbolic link), outside the "
                      f"image root {str(root)!r}; expected files inside the root")
    return full, None


def probe_image(path: str | os.PathLike) -> dict[str, Any]:
    """Read an image file once: sha256, size, and whether it fully decodes.

    The decode is done by Pillow in draft (reduced) mode, which still reads the whole
    compressed stream, so truncated JPEG / PNG files are caught ("image file is truncated").

    Returns
    -------
    dict
        ``width``, ``height`` (original pixels; -1 when unknown), ``image_sha256``,
        ``image_bytes``, ``image_format``, ``decodable`` (bool), ``image_error`` ("" when fine).
    """
    from PIL import Image, UnidentifiedImageError

    out: dict[str, Any] = {"width": -1, "height": -1, "image_sha256": "", "image_bytes": 0,
                           "image_format": "", "decodable": False, "image_error": ""}
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        out["image_error"] = "image file not found"
        return out
    except IsADirectoryError:
        out["image_error"] = "image path is a folder, not a file"
        return out
    except OSError as e:
        out["image_error"] = f"cannot read image file: {e.strerror}"
        return out
    out["image_sha256"] = sha256_bytes(data)
    out["image_bytes"] = len(data)
    if not data:
        out["image_error"] = "image file is empty (0 bytes)"
        return out
    try:
        with Image.open(io.BytesIO(data)) as im:
            out["width"], out["height"] = int(im.size[0]), int(im.size[1])
            out["image_format"] = str(im.format or "")
            im.draft("L", (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
            im.load()
    except UnidentifiedImageError:
        out["image_error"] = "not an image (the file's content is not a format Pillow or OpenCV can read)"
        return out
    except Image.DecompressionBombError as e:
        out["image_error"] = f"image refused as a decompression bomb ({e})"
        return out
    except (OSError, ValueError, SyntaxError) as e:
        out["image_error"] = f"image does not decode ({out['image_format'] or 'unknown format'}: {e})"
        return out
    if out["width"] < 1 or out["height"] < 1:
        out["image_error"] = f"image has size {out['width']}x{out['height']}"
        return out
    out["decodable"] = True
    return out


# ============================================================================ manifest
def validate_manifest(path: str | os.PathLike, *, image_root: str | os.PathLike,
                      probe: bool = True) -> tuple[pd.DataFrame | None, list[Problem], list[Problem]]:
    """Validate a manifest CSV and its images.

    Returns
    -------
    (DataFrame | None, structural problems, image problems)
        Structural problems (missing/duplicate ``case_id``, no image, a path escaping the
        image root, bad covariates) make the manifest unusable; image problems (file
        missing, empty, not an image, truncated) only make those cases "not decodable".
    """
    f = str(path)
    image_root = Path(image_root)
    df, problems = read_csv_table(path, required=MANIFEST_REQUIRED)
    if df is None:
        return None, problems, []
    if not image_root.is_dir():
        problems.append(Problem(str(image_root), "image_root", "image root folder not found; expected the folder "
                                "the manifest's image paths are relative to"))
    first_case: dict[str, int] = {}
    first_image: dict[str, tuple[str, int]] = {}
    paths: list[str] = []
    for rec in df.to_dict("records"):
        row = f"row {rec['_row']}"
        cid = rec["case_id"]
        if not cid:
            problems.append(Problem(f, row, "case_id is empty; every case needs a unique case_id"))
        elif cid in first_case:
            problems.append(Problem(f, row, f"duplicate case_id {cid!r} (first at row {first_case[cid]}); "
                                    "expected one row per case"))
        else:
            first_case[cid] = rec["_row"]
        if not rec["patient_id"]:
            problems.append(Problem(f, row, f"case {cid!r}: patient_id is empty; expected the patient's id "
                                    "(use the case_id when each case is its own patient)"))
        img = rec["image"]
        full = None
        if not img:
            problems.append(Problem(f, row, f"case {cid!r} has no image (empty 'image' cell); expected a path "
                                    "relative to the image root"))
        else:
            if img in first_image:
                other, r0 = first_image[img]
                problems.append(Problem(f, row, f"case {cid!r}: image {img!r} is also the image of case {other!r} "
                                        f"(row {r0}); annotations link to cases by image, so each case needs its own"))
            else:
                first_image[img] = (cid, rec["_row"])
            full, why = resolve_image(img, image_root=image_root)
            if why:
                problems.append(Problem(f, row, f"case {cid!r}: {why}"))
        paths.append(str(full.resolve() if full is not None and full.exists() else (full or "")))
        for col, (lo, hi) in MANIFEST_NUMERIC.items():
            if col in rec and rec[col] != "":
                _, p = parse_number(rec[col], file=f, where=f"{row}, column {col}", column=col, minimum=lo, maximum=hi)
                if p:
                    problems.append(p)
    df["image_path"] = paths
    image_problems: list[Problem] = []
    if probe:
        infos = []
        for rec, p in zip(df.to_dict("records"), paths):
            if not p:
                infos.append({"decodable": False, "image_error": "no usable image path"})
                continue
            info = probe_image(p)
            infos.append(info)
            if not info["decodable"]:
                image_problems.append(Problem(f, f"row {rec['_row']}", f"case {rec['case_id']!r}: image "
                                              f"{rec['image']!r}: {info['image_error']}; expected a readable "
                                              "JPEG/PNG/TIFF photo"))
        info_df = pd.DataFrame(infos, index=df.index)
        for col in ("width", "height", "image_sha256", "image_bytes", "image_format", "decodable", "image_error"):
            df[col] = info_df[col] if col in info_df else None
        df["width"] = pd.to_numeric(df["width"], errors="coerce").fillna(-1).astype("int64")
        df["height"] = pd.to_numeric(df["height"], errors="coerce").fillna(-1).astype("int64")
        df["image_bytes"] = pd.to_numeric(df["image_bytes"], errors="coerce").fillna(0).astype("int64")
        df["decodable"] = df["decodable"].fillna(False).astype(bool)
        df["image_error"] = df["image_error"].fillna("").astype(str)
        df["image_sha256"] = df["image_sha256"].fillna("").astype(str)
        df["image_format"] = df["image_format"].fillna("").astype(str)
    return df, problems, image_problems


def load_manifest(path: str | os.PathLike, *, image_root: str | os.PathLike) -> pd.DataFrame:
    """Load and validate a manifest CSV (``case_id``, ``patient_id``, ``image``, covariates).

    Parameters
    ----------
    path : path of the manifest CSV (UTF-8, comma-separated, one header row).
    image_root : folder the ``image`` paths are relative to.

    Returns
    -------
    DataFrame
        The manifest's columns (strings; ``age`` as float, NaN when blank) plus
        ``row`` (line number in the manifest), ``image_path`` (absolute), ``width``,
        ``height`` (-1 when unknown), ``image_sha256``, ``image_bytes``, ``image_format``,
        ``decodable`` (bool) and ``image_error`` ("" or why the image cannot be used).

    Raises
    ------
    StudyError
        With every structural problem (see :func:`validate_manifest`); undecodable or
        missing image files do not raise.
    """
    df, problems, _ = validate_manifest(path, image_root=image_root)
    raise_if(problems)
    assert df is not None
    df = df.rename(columns={"_row": "row"})
    for col in MANIFEST_NUMERIC:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col].replace("", None), errors="coerce").astype(float)
    return df.reset_index(drop=True)


# ============================================================================ annotations (COCO)
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
        if ok:
            anns.append({"image_id": iid, "category_id": cat, "bbox": [x, y, bw, bh],
                         "segmentation": seg if name in polygon_classes else None,
                         "score": a.get("score")})
    if problems:
        return None, problems

    # normalise: image id = position of the case in the manifest + 1; categories in protocol order
    new_img = {iid: position[cid] + 1 for iid, cid in img_case.items()}
    new_cat = {cid: classes.index(n) + 1 for cid, n in cat_name.items()}
    rev = {v: k for k, v in by_image.items()}
    images = []
    for iid, cid in sorted(img_case.items(), key=lambda t: new_img[t[0]]):
        wh = img_size.get(iid, (None, None))
        images.append({"id": new_img[iid], "file_name": rev[cid], "case_id": cid,
                       "width": int(wh[0]) if wh[0] else None, "height": int(wh[1]) if wh[1] else None})
    out_anns = []
    for k, a in enumerate(sorted(anns, key=lambda a: new_img[a["image_id"]]), start=1):
        x, y, bw, bh = a["bbox"]
        d = {"id": k, "image_id": new_img[a["image_id"]], "category_id": new_cat[a["category_id"]],
             "bbox": [x, y, bw, bh], "area": bw * bh, "iscrowd": 0}
        if a["segmentation"] is not None:
            d["segmentation"] = a["segmentation"]
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


# ============================================================================ reference
def _known_cases(cases: Any) -> set[str] | None:
    if cases is None:
        return None
    if isinstance(cases, pd.DataFrame):
        return set(cases["case_id"].astype(str))
    return {str(c) for c in cases}


def count_columns(columns: Iterable[str], *, classes: list[str] | None, file: str) -> tuple[list[str], list[Problem]]:
    """The ``count_<class>`` columns of a table; unknown classes are problems."""
    cols = [c for c in columns if c.startswith("count_")]
    problems = []
    if classes is not None:
        for c in cols:
            if c[len("count_"):] not in classes:
                problems.append(Problem(file, "line 1 (header)", f"column {c!r} counts an unknown class "
                                        f"{c[6:]!r}; expected count_<class> for a class in {classes}"))
    return cols, problems


def validate_reference(path: str | os.PathLike, *, levels: list[str], aliases: Mapping[str, str] | None = None,
                       cases: Any = None, classes: list[str] | None = None) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Validate a reference CSV (``case_id``, ``grade`` [, ``count_<class>``]); all problems at once."""
    f = str(path)
    df, problems = read_csv_table(path, required=["case_id", "grade"])
    if df is None:
        return None, problems
    known = _known_cases(cases)
    counts, p = count_columns(df.columns, classes=classes, file=f)
    problems += p
    seen: dict[str, int] = {}
    grades, cnt_vals = [], {c: [] for c in counts}
    for rec in df.to_dict("records"):
        row = f"row {rec['_row']}"
        cid = rec["case_id"]
        if not cid:
            problems.append(Problem(f, row, "case_id is empty"))
        elif cid in seen:
            problems.append(Problem(f, row, f"duplicate case_id {cid!r} (first at row {seen[cid]}); expected one "
                                    "reference grade per case"))
        else:
            seen[cid] = rec["_row"]
        if cid and known is not None and cid not in known:
            problems.append(Problem(f, row, f"reference for unknown case {cid!r}; expected a case_id of the manifest"))
        g, p = map_grade(rec["grade"], levels=levels, aliases=aliases, file=f, where=f"{row}, case {cid!r}")
        grades.append(g)
        if p:
            problems.append(p)
        for c in counts:
            v, p = parse_number(rec[c], file=f, where=row, column=c, integer=True, minimum=0)
            cnt_vals[c].append(v)
            if p:
                problems.append(p)
    if problems:
        return None, problems
    out = pd.DataFrame({"case_id": df["case_id"].astype(str), "grade": grades})
    for c in counts:
        out[c] = pd.array([int(v) for v in cnt_vals[c]], dtype="int64")
    return out, []


def load_reference(path: str | os.PathLike, *, levels: list[str], aliases: Mapping[str, str] | None = None,
                   cases: Any = None, classes: list[str] | None = None) -> pd.DataFrame:
    """Load the reference standard grades.

    Parameters
    ----------
    path : reference CSV: ``case_id``, ``grade`` [, ``count_<class>``].
    levels : the protocol's grade levels; ``aliases`` maps accepted alternative labels onto them.
    cases : manifest DataFrame (or iterable of case ids); reference rows for other cases are errors.
    classes : protocol classes; ``count_<x>`` for an unknown ``x`` is an error (None: not checked).

    Returns
    -------
    DataFrame
        ``case_id``, ``grade`` (a protocol level), ``count_<class>`` (int64) as given.
    """
    df, problems = validate_reference(path, levels=levels, aliases=aliases, cases=cases, classes=classes)
    raise_if(problems)
    return df  # type: ignore[return-value]
