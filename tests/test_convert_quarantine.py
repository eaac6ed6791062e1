"""``study convert voc|coco|acne04 --drop-implausible`` (issue 18 item 7): boxes that cannot be right (outside the
image, zero or negative size, non-finite numbers) are refused with a message naming the file, the object and what
is wrong, or, with the flag, left out, listed with their reason in conversion.json and counted in the summary line.
The circles converter's quarantine is tested in test_convert.py."""

from __future__ import annotations

import json

from test_convert import ACNE, H, W, _voc_xml, make_acne04

from study.convert.plausible import box_fault


def test_box_fault_names_what_is_wrong():
    assert box_fault([0, 0, 10, 10], width=100, height=80) is None
    assert box_fault([-1, -1, 101, 81], width=100, height=80) is None  # within the 1-pixel tolerance
    assert box_fault([0, 0, float("nan"), 5], width=100, height=80)[0] == "non-finite"
    assert box_fault([0, 0, float("inf"), 5], width=100, height=80)[0] == "non-finite"
    assert box_fault([0, 0, 5], width=100, height=80)[0] == "non-finite"
    assert box_fault([0, 0, True, 5], width=100, height=80)[0] == "non-finite"
    assert box_fault([3, 3, 0, 5], width=100, height=80) == (
        "size", "box [3, 3, 0, 5] has zero or negative size (width 0, height 5)")
    assert box_fault([90, 70, 31, 11], width=100, height=80)[0] == "outside"
    assert box_fault([9000, 7000, 5, 5], width=None, height=None) is None  # the image's size unknown


def _voc_folder(tmp_path):
    xml = tmp_path / "xml"
    xml.mkdir()
    (xml / "a.xml").write_text(_voc_xml("a.jpg", 100, 80, [
        ("papule", 1, 1, 10, 20),          # fine
        ("papule", 9000, 7000, 9010, 7010),  # far outside the image (scaled coordinates)
        ("pustule", 30, 30, 20, 40),       # negative width
        ("pustule", "nan", 5, 10, 10),     # not a finite number
        ("papule", 5, 5, "inf", 10),       # not a finite number
    ]))
    (xml / "b.xml").write_text(_voc_xml("b.jpg", 100, 80, [("pustule", 50, 40, 100, 80)]))
    return xml


def test_voc_refuses_then_quarantines_boxes_that_cannot_be_right(tmp_path, run_cli):
    xml = _voc_folder(tmp_path)
    rc, out, err = run_cli("convert", "voc", xml, "--out", tmp_path / "o1", "--classes", "papule,pustule")
    assert rc == 2 and "Traceback" not in out + err
    for needle in ("a.xml: annotation/object[2]/bndbox: box xmin=9000 ymin=7000 xmax=9010 ymax=7010 lies outside the"
                   + " 100x80 image",
                   "a.xml: annotation/object[3]/bndbox: box xmin=30 ymin=30 xmax=20 ymax=40 has negative size",
                   "a.xml: annotation/object[4]/bndbox: box xmin, ymin, xmax, ymax ['nan', '5', '10', '10'] are not"
                   + " four finite numbers",
                   "a.xml: annotation/object[5]/bndbox: box xmin, ymin, xmax, ymax ['5', '5', 'inf', '10'] are not",
                   "--drop-implausible"):
        assert needle in err, f"{needle}\n{err}"
    assert not (tmp_path / "o1").exists()

    rc, out, err = run_cli("convert", "voc", xml, "--out", tmp_path / "o2", "--classes", "papule,pustule",
                           "--drop-implausible")
    assert rc == 0, err
    assert "study convert voc: 2 cases, 2 boxes, 4 lesion(s) quarantined" in out
    info = json.loads((tmp_path / "o2" / "conversion.json").read_text())
    assert [(q["file"].rsplit("/", 1)[-1], q["object"], q["image"], q["field"]) for q in info["quarantined"]] == [
        ("a.xml", k, "a.jpg", f"annotation/object[{k}]/bndbox") for k in (2, 3, 4, 5)]
    assert "lies outside the 100x80 image" in info["quarantined"][0]["reason"]
    assert "negative size" in info["quarantined"][1]["reason"]
    coco = json.loads((tmp_path / "o2" / "annotations.json").read_text())
    assert [a["bbox"] for a in coco["annotations"]] == [[0, 0, 10, 20], [49, 39, 51, 41]]


def test_coco_refuses_then_quarantines_boxes_that_cannot_be_right(tmp_path, run_cli):
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
                      {"id": 2, "file_name": "b.jpg", "width": 100, "height": 80}],
           "categories": [{"id": 7, "name": "spot"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 1, 10, 20]},
                           {"id": 2, "image_id": 2, "category_id": 7, "bbox": [9000, 7000, 10, 10]},
                           {"id": 3, "image_id": 2, "category_id": 7, "bbox": [5, 5, 0, 10]},
                           {"id": 4, "image_id": 1, "category_id": 7, "bbox": [5, 5, float("nan"), 10]},
                           {"id": 5, "image_id": 1, "category_id": 7, "bbox": [5, 5, -4, 10]}]}
    src = tmp_path / "coco.json"
    src.write_text(json.dumps(doc))  # NaN as JSON's NaN token, which Python's json reads
    rc, out, err = run_cli("convert", "coco", src, "--out", tmp_path / "o1", "--classes", "papule",
                           "--class-map", "spot=papule")
    assert rc == 2 and "Traceback" not in out + err
    for needle in ("coco.json: annotations[1].bbox: box [9000, 7000, 10, 10] lies outside the 100x80 image",
                   "coco.json: annotations[2].bbox: box [5, 5, 0, 10] has zero or negative size",
                   "coco.json: annotations[3].bbox: box [5, 5, nan, 10] has missing or non-finite coordinates",
                   "coco.json: annotations[4].bbox: box [5, 5, -4, 10] has zero or negative size"):
        assert needle in err, f"{needle}\n{err}"
    assert not (tmp_path / "o1").exists()
    rc, out, err = run_cli("convert", "coco", src, "--out", tmp_path / "o2", "--classes", "papule",
                           "--class-map", "spot=papule", "--drop-implausible")
    assert rc == 0, err
    assert "study convert coco: 2 cases, 1 boxes, 4 lesion(s) quarantined" in out
    info = json.loads((tmp_path / "o2" / "conversion.json").read_text())
    assert [(q["annotation"], q["image"], q["field"]) for q in info["quarantined"]] == [
        (1, "b.jpg", "annotations[1].bbox"), (2, "b.jpg", "annotations[2].bbox"), (3, "a.jpg", "annotations[3].bbox"),
        (4, "a.jpg", "annotations[4].bbox")]
    coco = json.loads((tmp_path / "o2" / "annotations.json").read_text())
    assert [a["bbox"] for a in coco["annotations"]] == [[1, 1, 10, 20]]
    assert len(coco["images"]) == 2  # the image stays, as a case with no lesions


def test_acne04_quarantines_its_voc_boxes(tmp_path, run_cli):
    root = make_acne04(tmp_path / "ACNE04")
    fn, _, _, boxes = ACNE[0]
    (root / "Detection" / "VOC2007" / "Annotations" / "levle0_1.xml").write_text(
        _voc_xml(fn, W, H, [*boxes, ("fore", 60000, 50000, 60010, 50010)]))
    rc, out, err = run_cli("convert", "acne04", root, "--out", tmp_path / "o1")
    assert rc == 2 and "levle0_1.xml: annotation/object[3]/bndbox: box xmin=60000" in err
    rc, out, err = run_cli("convert", "acne04", root, "--out", tmp_path / "o2", "--drop-implausible")
    assert rc == 0, err
    assert "1 lesion(s) quarantined" in out
    info = json.loads((tmp_path / "o2" / "conversion.json").read_text())
    assert [(q["image"], q["object"]) for q in info["quarantined"]] == [(fn, 3)]
