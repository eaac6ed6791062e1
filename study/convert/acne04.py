"""The ACNE04 release layout (Wu et al., ICCV 2019) -> manifest, COCO, reference and readings.

Layout read (``ROOT``)::

    Classification/JPEGImages/<file>.jpg
    Classification/NNEW_trainval_<k>.txt, NNEW_test_<k>.txt   lines "<file> <grade 0-3> <count>"
    Detection/VOC2007/Annotations/<stem>.xml                     VOC boxes, single class "fore"

and, with ``readers``, the dermatologists' result files, lines ``<idx> <file> <A|B|C|D>``
(reader id = file stem). Grades 0..3 and letters A..D become the Hayashi protocol's level
labels (``protocols/hayashi-acne04.yaml``: mild, moderate, severe, very_severe); the
reference count is ``count_acne``. A case is every image listed in the grade lists; the
manifest's ``fold`` is the cross-validation fold whose ``NNEW_test_<k>`` list holds it.
"""

from __future__ import annotations

import re
from pathlib import Path

from study.convert import Conversion
from study.convert.voc import manifest_and_coco, parse_voc
from study.errors import Problem

#: Hayashi levels (``protocols/hayashi-acne04.yaml`` ``grading.levels``), by ACNE04 grade index
LEVELS = ["mild", "moderate", "severe", "very_severe"]
#: ACNE04 reader letters (``grading.letter_aliases`` of the Hayashi protocol)
LETTERS = {"A": "mild", "B": "moderate", "C": "severe", "D": "very_severe"}
CLASSES = ["acne"]
CLASS_MAP = {"fore": "acne"}
_LIST = re.compile(r"^NNEW_(trainval|test)_(\d+)\.txt$")


def _read_lines(path: Path, problems: list[Problem]) -> list[tuple[int, list[str]]]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        problems.append(Problem(str(path), f"byte {e.start}", "not UTF-8 text"))
        return []
    return [(i, ln.split()) for i, ln in enumerate(text.splitlines(), start=1) if ln.strip()]


def _hayashi(count: int) -> str:
    return LEVELS[0] if count <= 5 else LEVELS[1] if count <= 20 else LEVELS[2] if count <= 50 else LEVELS[3]


def convert_acne04(root: str | Path, *, readers: list[str | Path] = (), drop_implausible: bool = False) -> Conversion:
    """Convert an ACNE04 release tree (see the module docstring).

    Returns
    -------
    Conversion
        ``manifest`` (``case_id`` = file stem, ``patient_id`` = case_id (ACNE04 has no patient
        ids), ``image``, ``fold``), COCO boxes of class ``acne``, ``reference``
        (``case_id, grade, count_acne``), ``readings`` (``reader_id, reader_group, case_id,
        grade``) when reader files are given, ``info`` (counts; grades that disagree with
        Hayashi's bands for their count; images without lesion boxes; box count vs list
        count differences; ``quarantined``: the boxes that cannot be right, left out when
        ``drop_implausible``, problems otherwise, as in :func:`study.convert.voc.parse_voc`) and the problems.
    """
    root = Path(root)
    conv = Conversion(manifest=[], coco={}, info={"format": "acne04", "source": str(root)})
    P = conv.problems
    img_dir = root / "Classification" / "JPEGImages"
    ann_dir = root / "Detection" / "VOC2007" / "Annotations"
    cls_dir = root / "Classification"
    for d, what in ((img_dir, "the images"), (ann_dir, "the VOC annotations")):
        if not d.is_dir():
            P.append(Problem(str(d), "", f"folder not found; expected {what} of the ACNE04 release layout"))
    lists = sorted(p for p in cls_dir.glob("NNEW_*.txt") if _LIST.match(p.name)) if cls_dir.is_dir() else []
    if cls_dir.is_dir() and not lists:
        P.append(Problem(str(cls_dir), "", "no NNEW_trainval_<k>.txt / NNEW_test_<k>.txt grade lists"))
    if P:
        return conv
    # ---- grade lists
    grade: dict[str, tuple[int, int, str]] = {}   # file -> (grade index, count, where first seen)
    fold: dict[str, int] = {}
    for lp in lists:
        kind, k = _LIST.match(lp.name).groups()
        for ln, parts in _read_lines(lp, P):
            where = f"line {ln}"
            if len(parts) != 3:
                P.append(Problem(str(lp), where, f"{' '.join(parts)!r}; expected '<file> <grade 0-3> <count>'"))
                continue
            fn, g, c = parts
            if not (g.isdigit() and int(g) < 4):
                P.append(Problem(str(lp), where, f"grade {g!r} for {fn!r}; expected 0, 1, 2 or 3"))
                continue
            if not c.isdigit():
                P.append(Problem(str(lp), where, f"lesion count {c!r} for {fn!r}; expected a whole number >= 0"))
                continue
            if fn in grade and grade[fn][:2] != (int(g), int(c)):
                P.append(Problem(str(lp), where, f"{fn!r} has grade {g} count {c} here but grade {grade[fn][0]} "
                                 f"count {grade[fn][1]} at {grade[fn][2]}"))
                continue
            grade.setdefault(fn, (int(g), int(c), f"{lp.name} line {ln}"))
            if kind == "test":
                if fn in fold and fold[fn] != int(k):
                    P.append(Problem(str(lp), where, f"{fn!r} is in the test lists of folds {fold[fn]} and {k}"))
                fold.setdefault(fn, int(k))
    files = sorted(grade)
    for fn in files:
        if not (img_dir / fn).is_file():
            P.append(Problem(str(img_dir), fn, f"image {fn!r} is listed in the grade lists ({grade[fn][2]}) but not "
                             "found in Classification/JPEGImages"))
    unlisted = sorted(p.name for p in img_dir.iterdir() if p.is_file() and p.name not in grade)
    # ---- boxes
    recs, no_xml, count_diff = [], [], []
    stems = {Path(fn).stem: fn for fn in files}
    for fn in files:
        xml = ann_dir / f"{Path(fn).stem}.xml"
        if not xml.is_file():
            no_xml.append(fn)
            recs.append({"file_name": fn, "width": None, "height": None, "boxes": [], "xml": str(xml)})
            continue
        rec, probs = parse_voc(xml, classes=CLASSES, class_map=CLASS_MAP, drop_implausible=drop_implausible)
        P.extend(probs)
        if rec:
            if rec["file_name"] != fn:
                if Path(rec["file_name"]).stem != Path(fn).stem:
                    P.append(Problem(str(xml), "annotation/filename", f"<filename> {rec['file_name']!r} does not "
                                     f"match the image {fn!r} this file is named after"))
                    continue
                rec["file_name"] = fn
            rec["xml"] = str(xml)
            recs.append(rec)
            if len(rec["boxes"]) != grade[fn][1]:
                count_diff.append({"image": fn, "boxes": len(rec["boxes"]), "count": grade[fn][1]})
    orphans = sorted(p.name for p in ann_dir.glob("*.xml") if p.stem not in stems)
    sizes_missing = [r for r in recs if r["width"] is None]
    if sizes_missing:
        from study.cohort import probe_image

        for r in sizes_missing:
            info = probe_image(img_dir / r["file_name"])
            r["width"], r["height"] = info["width"], info["height"]
    conv.manifest, conv.coco = manifest_and_coco(recs,
                                                 classes=CLASSES, images=None, problems=P)
    for row in conv.manifest:
        row["fold"] = fold.get(row["image"], "")
    # images without an XML are not lesion-annotated: keep them as cases, out of the COCO images
    if no_xml:
        drop = {im["id"] for im in conv.coco["images"] if im["file_name"] in set(no_xml)}
        conv.coco["images"] = [im for im in conv.coco["images"] if im["id"] not in drop]
    conv.reference = [{"case_id": Path(fn).stem, "grade": LEVELS[grade[fn][0]], "count_acne": grade[fn][1]}
                      for fn in files]
    mismatch = [{"image": fn, "grade": LEVELS[grade[fn][0]], "count": grade[fn][1], "hayashi": _hayashi(grade[fn][1])}
                for fn in files if LEVELS[grade[fn][0]] != _hayashi(grade[fn][1])]
    # ---- readers
    if readers:
        conv.readings = []
        for rp in map(Path, readers):
            rid = rp.stem
            if not rp.is_file():
                P.append(Problem(str(rp), "", "reader file not found"))
                continue
            seen: dict[str, int] = {}
            for ln, parts in _read_lines(rp, P):
                where = f"line {ln}"
                if len(parts) != 3:
                    P.append(Problem(str(rp), where, f"{' '.join(parts)!r}; expected '<idx> <file> <A|B|C|D>'"))
                    continue
                _, fn, letter = parts
                if letter not in LETTERS:
                    P.append(Problem(str(rp), where, f"grade {letter!r} for {fn!r}; expected one of A, B, C, D"))
                    continue
                if fn not in grade:
                    P.append(Problem(str(rp), where, f"reading of unknown image {fn!r} (not in the grade lists)"))
                    continue
                if fn in seen:
                    P.append(Problem(str(rp), where, f"reader {rid!r} has two readings of {fn!r} (lines {seen[fn]} "
                                     f"and {ln}); expected one per image"))
                    continue
                seen[fn] = ln
                conv.readings.append({"reader_id": rid, "reader_group": "", "case_id": Path(fn).stem,
                                      "grade": LETTERS[letter]})
    conv.info.update(
        image_root=str(img_dir.resolve()), cases=len(files), boxes=len(conv.coco.get("annotations", [])),
        folds=sorted(set(fold.values())), images_not_in_lists=unlisted, cases_without_annotation_file=no_xml,
        annotation_files_without_case=orphans, box_count_differs_from_list_count=count_diff,
        grade_differs_from_hayashi_band=mismatch, quarantined=[q for r in recs for q in r.get("quarantined", [])],
        readers={Path(r).stem: sum(1 for x in (conv.readings or []) if x["reader_id"] == Path(r).stem) for r in readers},
        patient_id="ACNE04 has no patient ids; set to case_id", class_map=CLASS_MAP)
    return conv
