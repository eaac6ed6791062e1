"""``study convert``: VOC, circles, COCO and the ACNE04 release layout (tree made here)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from test_check_fixtures import REPO, draw_face, write_jpeg


def _voc_xml(filename: str, w: int, h: int, boxes: list[tuple[str, int, int, int, int]]) -> str:
    objs = "".join(
        f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
        f"<bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
        for n, a, b, c, d in boxes)
    return (f"<annotation><folder>VOC2007</folder><filename>{filename}</filename>"
            f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size><segmented>0</segmented>"
            f"{objs}</annotation>")


# ACNE04-like cases: file, grade index, count, boxes (VOC, 1-based inclusive)
ACNE = [
    ("levle0_1.jpg", 0, 2, [("fore", 10, 20, 29, 49), ("fore", 100, 100, 109, 111)]),
    ("levle1_7.jpg", 1, 7, [("fore", 5 + 20 * k, 30, 14 + 20 * k, 39) for k in range(7)]),
    ("levle2_3.jpg", 2, 22, [("fore", 40, 40, 49, 49)] * 0 + [("fore", 3 + 9 * k, 150, 10 + 9 * k, 157) for k in range(22)]),
    ("levle3_2.jpg", 3, 55, []),  # no XML file for this one
]
W, H = 240, 200


def make_acne04(root: Path) -> Path:
    """A small ACNE04 release tree in its real layout."""
    cls = root / "Classification"
    ann = root / "Detection" / "VOC2007" / "Annotations"
    ann.mkdir(parents=True)
    for i, (fn, g, c, boxes) in enumerate(ACNE):
        write_jpeg(cls / "JPEGImages" / fn, draw_face(W, seed=i)[:H])
        if boxes:
            (ann / f"{Path(fn).stem}.xml").write_text(_voc_xml(fn, W, H, boxes), encoding="utf-8")
    write_jpeg(cls / "JPEGImages" / "levle0_99.jpg", draw_face(W, seed=9)[:H])  # in no list
    line = {fn: f"{fn} {g} {c}" for fn, g, c, _ in ACNE}
    (cls / "NNEW_trainval_0.txt").write_text("\n".join(line[f] for f in ("levle0_1.jpg", "levle1_7.jpg")) + "\n")
    (cls / "NNEW_test_0.txt").write_text("\n".join(line[f] for f in ("levle2_3.jpg", "levle3_2.jpg")) + "\n")
    (cls / "NNEW_trainval_1.txt").write_text("\n".join(line[f] for f in ("levle2_3.jpg", "levle3_2.jpg")) + "\n")
    (cls / "NNEW_test_1.txt").write_text("\n".join(line[f] for f in ("levle0_1.jpg", "levle1_7.jpg")) + "\n")
    return root


def _readers(tmp: Path) -> list[Path]:
    a = tmp / "expert1.txt"
    a.write_text("1 levle0_1.jpg A\n2 levle1_7.jpg C\n3 levle3_2.jpg D\n")
    b = tmp / "junior2.txt"
    b.write_text("1 levle2_3.jpg B\n2 levle0_1.jpg A\n")
    return [a, b]


def test_acne04_release_layout(tmp_path, run_cli):
    root = make_acne04(tmp_path / "ACNE04")
    readers = _readers(tmp_path)
    out = tmp_path / "out"
    rc, stdout, err = run_cli("convert", "acne04", root, "--out", out, "--readers", *readers)
    assert rc == 0, err
    man = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert man["case_id"].tolist() == ["levle0_1", "levle1_7", "levle2_3", "levle3_2"]
    assert man["image"].tolist() == [fn for fn, *_ in ACNE]
    assert man["fold"].tolist() == ["1", "1", "0", "0"]
    ref = pd.read_csv(out / "reference.csv", dtype=str)
    assert ref["grade"].tolist() == ["mild", "moderate", "severe", "very_severe"]
    assert ref["count_acne"].tolist() == ["2", "7", "22", "55"]
    coco = json.loads((out / "annotations.json").read_text())
    assert [c["name"] for c in coco["categories"]] == ["acne"]
    assert len(coco["annotations"]) == 2 + 7 + 22
    first = coco["annotations"][0]
    assert first["bbox"] == [9, 19, 20, 30]  # VOC (10, 20, 29, 49) 1-based inclusive -> COCO x, y, w, h
    assert {im["file_name"] for im in coco["images"]} == {"levle0_1.jpg", "levle1_7.jpg", "levle2_3.jpg"}
    rd = pd.read_csv(out / "readings.csv", dtype=str, keep_default_na=False)
    assert rd[["reader_id", "case_id", "grade"]].values.tolist() == [
        ["expert1", "levle0_1", "mild"], ["expert1", "levle1_7", "severe"], ["expert1", "levle3_2", "very_severe"],
        ["junior2", "levle2_3", "moderate"], ["junior2", "levle0_1", "mild"]]
    info = json.loads((out / "conversion.json").read_text())
    assert info["images_not_in_lists"] == ["levle0_99.jpg"]
    assert info["cases_without_annotation_file"] == ["levle3_2.jpg"]
    assert info["readers"] == {"expert1": 3, "junior2": 2}
    assert info["grade_differs_from_hayashi_band"] == []

    # the converted tables pass `study check` with the Hayashi protocol
    cfg = {"study": "acne04", "protocol": str(REPO / "protocols" / "hayashi-acne04.yaml"),
           "cohort": {"manifest": str(out / "manifest.csv"), "image_root": info["image_root"],
                      "annotations": str(out / "annotations.json"), "reference": str(out / "reference.csv"),
                      "readings": str(out / "readings.csv")},
           "models": [{"id": "vendor", "backend": "precomputed", "detections": str(tmp_path / "dt.json"),
                       "classes": ["acne"]}]}
    (tmp_path / "dt.json").write_text("[]")
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(cfg))
    rc, stdout, err = run_cli("check", tmp_path / "study.yaml")
    assert rc == 0, err


def test_acne04_converter_levels_match_the_hayashi_protocol():
    from study.convert.acne04 import LETTERS, LEVELS
    from study.protocol import load_protocol

    g = load_protocol(REPO / "protocols" / "hayashi-acne04.yaml").protocol.grading
    assert LEVELS == g.levels and LETTERS == g.letter_aliases


def test_acne04_problems_write_nothing(tmp_path, run_cli):
    root = make_acne04(tmp_path / "ACNE04")
    (root / "Classification" / "NNEW_test_1.txt").write_text("levle0_1.jpg 7 2\nlevle1_7.jpg 1\n")
    (root / "Detection" / "VOC2007" / "Annotations" / "levle1_7.xml").write_text(
        _voc_xml("levle1_7.jpg", W, H, [("fore", 30, 30, 20, 40), ("lesion", 1, 1, 5, 5)]))
    bad_reader = tmp_path / "r1.txt"
    bad_reader.write_text("1 levle0_1.jpg A\n2 levle0_1.jpg B\n3 nosuch.jpg C\n4 levle1_7.jpg E\n")
    out = tmp_path / "out"
    rc, stdout, err = run_cli("convert", "acne04", root, "--out", out, "--readers", bad_reader)
    assert rc == 2
    assert "Traceback" not in stdout + err
    for needle in ("NNEW_test_1.txt: line 1: grade '7' for 'levle0_1.jpg'; expected 0, 1, 2 or 3",
                   "NNEW_test_1.txt: line 2: 'levle1_7.jpg 1'; expected '<file> <grade 0-3> <count>'",
                   "levle1_7.xml: annotation/object[1]/bndbox: box xmin=30 ymin=30 xmax=20 ymax=40 has negative size",
                   "levle1_7.xml: annotation/object[2]/name: unknown class 'lesion'",
                   "r1.txt: line 2: reader 'r1' has two readings of 'levle0_1.jpg'",
                   "r1.txt: line 3: reading of unknown image 'nosuch.jpg'",
                   "r1.txt: line 4: grade 'E' for 'levle1_7.jpg'; expected one of A, B, C, D"):
        assert needle in err, f"{needle}\n{err}"
    assert not out.exists() or not any(out.iterdir())


def test_voc_folder(tmp_path, run_cli):
    xml = tmp_path / "xml"
    xml.mkdir()
    (xml / "a.xml").write_text(_voc_xml("a.jpg", 100, 80, [("papule", 1, 1, 10, 20), ("pustule", 50, 40, 100, 80)]))
    (xml / "b.xml").write_text(_voc_xml("b.jpg", 100, 80, []))
    out = tmp_path / "out"
    rc, _, err = run_cli("convert", "voc", xml, "--out", out, "--protocol", REPO / "protocols" / "chinese-2019.yaml")
    assert rc == 0, err
    coco = json.loads((out / "annotations.json").read_text())
    assert [a["bbox"] for a in coco["annotations"]] == [[0, 0, 10, 20], [49, 39, 51, 41]]
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert [names[a["category_id"]] for a in coco["annotations"]] == ["papule", "pustule"]
    assert pd.read_csv(out / "manifest.csv")["case_id"].tolist() == ["a", "b"]
    # a box past the border and a malformed file are both reported; nothing written
    (xml / "b.xml").write_text(_voc_xml("b.jpg", 100, 80, [("papule", 90, 70, 120, 80)]))
    (xml / "c.xml").write_text("<annotation><filename>c.jpg</filename>")
    rc, _, err = run_cli("convert", "voc", xml, "--out", tmp_path / "out2", "--classes", "papule,pustule")
    assert rc == 2
    assert "b.xml: annotation/object[1]/bndbox: box xmin=90 ymin=70 xmax=120 ymax=80 lies outside the 100x80 image" in err
    assert "c.xml: line 1: not well-formed XML" in err
    assert not (tmp_path / "out2").exists()


def _circles(tmp_path: Path, radius_bad: float) -> Path:
    doc = {"images": [{"id": 1, "file_name": "/x1.jpg", "width": 400, "height": 300},
                      {"id": 2, "file_name": "x2.jpg", "width": 400, "height": 300}],
           "annotations": [{"id": 1, "image_id": 1, "coordinates": [100, 50], "radius": 10},
                           {"id": 2, "image_id": 1, "coordinates": [5, 290], "radius": 8},
                           {"id": 3, "image_id": 2, "coordinates": [200, 150], "radius": radius_bad}],
           "info": {"version": "test"}}
    p = tmp_path / "circles.json"
    p.write_text(json.dumps(doc))
    return p


def test_circles_to_boxes_and_implausible_radii(tmp_path, run_cli):
    src = _circles(tmp_path, 2500)
    rc, _, err = run_cli("convert", "circles", src, "--out", tmp_path / "o1", "--classes", "acne")
    assert rc == 2
    assert "circles.json: annotations[2].radius: implausible radius 2500 px on the 400x300 image 'x2.jpg'" in err
    assert not (tmp_path / "o1").exists()
    rc, out, err = run_cli("convert", "circles", src, "--out", tmp_path / "o2", "--classes", "acne", "--drop-implausible")
    assert rc == 0, err
    coco = json.loads((tmp_path / "o2" / "annotations.json").read_text())
    assert [a["bbox"] for a in coco["annotations"]] == [[90, 40, 20, 20], [0, 282, 13, 16]]  # clipped at the left border
    info = json.loads((tmp_path / "o2" / "conversion.json").read_text())
    assert info["implausible"] == [{"annotation": 2, "image": "x2.jpg", "radius": 2500.0, "limit": 30.0}]
    assert "1 implausible" in out
    assert pd.read_csv(tmp_path / "o2" / "manifest.csv")["image"].tolist() == ["x1.jpg", "x2.jpg"]


def test_coco_with_class_map(tmp_path, run_cli):
    doc = {"images": [{"id": 5, "file_name": "p.jpg", "width": 50, "height": 50}],
           "categories": [{"id": 1, "name": "blackhead"}, {"id": 2, "name": "papule"}],
           "annotations": [{"id": 1, "image_id": 5, "category_id": 1, "bbox": [1, 1, 5, 5]},
                           {"id": 2, "image_id": 5, "category_id": 2, "bbox": [10, 10, 5, 5]}]}
    src = tmp_path / "c.json"
    src.write_text(json.dumps(doc))
    proto = REPO / "protocols" / "chinese-2019.yaml"
    rc, _, err = run_cli("convert", "coco", src, "--out", tmp_path / "bad", "--protocol", proto)
    assert rc == 2 and "categories[0].name: unknown class 'blackhead'" in err
    rc, _, err = run_cli("convert", "coco", src, "--out", tmp_path / "ok", "--protocol", proto,
                         "--class-map", "blackhead=comedone")
    assert rc == 0, err
    coco = json.loads((tmp_path / "ok" / "annotations.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert [names[a["category_id"]] for a in coco["annotations"]] == ["comedone", "papule"]
    assert coco["images"][0]["case_id"] == "p"


def test_circles_quarantine_lesions_outside_their_image(tmp_path, run_cli):
    """An acne04v2-like image whose lesions all lie far outside it (coordinates scaled by 100), and a
    non-finite radius: refused with a located message, or quarantined with --drop-implausible."""
    doc = {"images": [{"id": 1, "file_name": "ok.jpg", "width": 400, "height": 300},
                      {"id": 2, "file_name": "scaled.jpg", "width": 400, "height": 300}],
           "annotations": [{"id": 1, "image_id": 1, "coordinates": [100, 50], "radius": 10},
                           {"id": 2, "image_id": 2, "coordinates": [12000, 9000], "radius": 8},
                           {"id": 3, "image_id": 2, "coordinates": [25000, 3000], "radius": 6},
                           {"id": 4, "image_id": 1, "coordinates": [50, 50], "radius": float("inf")}]}
    src = tmp_path / "circles.json"
    src.write_text(json.dumps(doc).replace("Infinity", "1e999"))
    rc, _, err = run_cli("convert", "circles", src, "--out", tmp_path / "o1", "--classes", "acne")
    assert rc == 2
    assert "circles.json: annotations[1].coordinates: centre (12000, 9000) lies outside the 400x300 image 'scaled.jpg'" in err
    assert "annotations[3].radius: radius inf is not finite" in err
    assert not (tmp_path / "o1").exists()
    rc, out, err = run_cli("convert", "circles", src, "--out", tmp_path / "o2", "--classes", "acne",
                           "--drop-implausible")
    assert rc == 0, err
    info = json.loads((tmp_path / "o2" / "conversion.json").read_text())
    assert [(q["annotation"], q["image"], q["field"]) for q in info["quarantined"]] == [
        (1, "scaled.jpg", "coordinates"), (2, "scaled.jpg", "coordinates"), (3, "ok.jpg", "radius")]
    assert all(q["reason"] for q in info["quarantined"])
    assert "quarantined: 3 lesion(s)" in out
    coco = json.loads((tmp_path / "o2" / "annotations.json").read_text())
    assert len(coco["annotations"]) == 1 and len(coco["images"]) == 2  # the image stays, as a case with no lesions
