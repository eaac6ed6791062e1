"""Cohort intake: manifest, images, COCO normalisation, reference; the workflow's intake step."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from study import cohort
from study.errors import StudyError
from study.protocol import load_protocol
from test_check_fixtures import CLASSES, REPO, make_study

PROTOCOL = load_protocol(REPO / "protocols" / "chinese-2019.yaml").protocol


def test_load_manifest_adds_image_facts(tmp_path):
    s = make_study(tmp_path)
    df = cohort.load_manifest(s["manifest"], image_root=s["images"])
    assert df["case_id"].tolist() == ["C1", "C2", "C3", "C4"]
    assert df["row"].tolist() == [2, 3, 4, 5]
    assert df["width"].tolist() == [320] * 4 and df["height"].tolist() == [320] * 4
    assert df["decodable"].all() and (df["image_error"] == "").all()
    p = s["images"] / "C2.jpg"
    assert df.loc[1, "image_path"] == str(p.resolve())
    assert df.loc[1, "image_sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert df["age"].dtype == float and df["age"].tolist() == [25.0, 26.0, 27.0, 28.0]


def test_undecodable_images_flow_through_intake(tmp_path):
    s = make_study(tmp_path)
    (s["images"] / "C2.jpg").write_bytes(b"")
    (s["images"] / "C3.jpg").unlink()
    df = cohort.load_manifest(s["manifest"], image_root=s["images"])  # does not raise
    assert df["decodable"].tolist() == [True, False, False, True]
    assert df.loc[1, "image_error"] == "image file is empty (0 bytes)"
    assert df.loc[2, "image_error"] == "image file not found"


def test_structural_manifest_problems_raise_all_at_once(tmp_path):
    s = make_study(tmp_path)
    lines = s["manifest"].read_text().splitlines()
    lines[2] = lines[2].replace("C2,", "C1,", 1)
    lines[3] = lines[3].replace(",27,", ",abc,")
    s["manifest"].write_text("\n".join(lines) + "\n")
    with pytest.raises(StudyError) as e:
        cohort.load_manifest(s["manifest"], image_root=s["images"])
    msgs = [str(p) for p in e.value.problems]
    assert len(msgs) == 2
    assert "row 3: duplicate case_id 'C1'" in msgs[0] and "row 4, column age: age = 'abc' is not a number" in msgs[1]


def test_annotations_normalised_to_protocol_and_manifest(tmp_path):
    s = make_study(tmp_path, n=5)
    # categories listed in another order with other ids; one image not annotated
    doc = json.loads(s["annotations"].read_text())
    doc["categories"] = list(reversed(doc["categories"]))
    s["annotations"].write_text(json.dumps(doc))
    cases = cohort.load_manifest(s["manifest"], image_root=s["images"])
    gt = cohort.load_annotations(s["annotations"], cases=cases, classes=PROTOCOL.classes,
                                 polygon_classes=PROTOCOL.polygon_classes)
    assert [c["name"] for c in gt["categories"]] == PROTOCOL.classes
    assert [c["id"] for c in gt["categories"]] == list(range(1, len(CLASSES) + 1))
    assert [im["id"] for im in gt["images"]] == [1, 2, 3, 4, 5]
    assert [im["case_id"] for im in gt["images"]] == ["C1", "C2", "C3", "C4", "C5"]
    names = {c["id"]: c["name"] for c in gt["categories"]}
    assert [(a["image_id"], names[a["category_id"]]) for a in gt["annotations"]] == [(1, "comedone"), (1, "papule"),
                                                                                      (2, "cyst")]
    assert gt["annotations"][2]["segmentation"] == [[120, 130, 140, 130, 140, 150, 120, 150]]
    assert gt["unannotated_cases"] == []
    # an independent reader of COCO (pycocotools) accepts the document
    from pycocotools.coco import COCO

    c = COCO()
    c.dataset = {k: v for k, v in gt.items() if k != "unannotated_cases"}
    c.createIndex()
    assert len(c.getAnnIds(imgIds=[1])) == 2 and c.loadCats(5)[0]["name"] == "cyst"


def test_images_missing_from_coco_are_unannotated(tmp_path):
    s = make_study(tmp_path)
    doc = json.loads(s["annotations"].read_text())
    doc["images"] = doc["images"][:2]
    s["annotations"].write_text(json.dumps(doc))
    cases = cohort.load_manifest(s["manifest"], image_root=s["images"])
    gt = cohort.load_annotations(s["annotations"], cases=cases, classes=PROTOCOL.classes,
                                 polygon_classes=PROTOCOL.polygon_classes)
    assert gt["unannotated_cases"] == ["C3", "C4"]
    empty = cohort.empty_ground_truth(cases, classes=PROTOCOL.classes)
    assert empty["images"] == [] and empty["unannotated_cases"] == ["C1", "C2", "C3", "C4"]


def test_reference_with_aliases_and_counts(tmp_path):
    p = tmp_path / "ref.csv"
    p.write_text("case_id,grade,count_acne\na,A,3\nb,moderate,12\nc,D,70\n")
    hay = load_protocol(REPO / "protocols" / "hayashi-acne04.yaml").protocol
    ref = cohort.load_reference(p, levels=hay.levels, aliases=hay.grading.letter_aliases, cases=["a", "b", "c"],
                                classes=hay.classes)
    assert ref["grade"].tolist() == ["mild", "moderate", "very_severe"]
    assert ref["count_acne"].tolist() == [3, 12, 70]
    with pytest.raises(StudyError, match="reference for unknown case 'c'"):
        cohort.load_reference(p, levels=hay.levels, aliases=hay.grading.letter_aliases, cases=["a", "b"])


def test_workflow_intake_step_writes_cases_and_ground_truth(tmp_path):
    steps = pytest.importorskip("study.steps")
    s = make_study(tmp_path)
    steps.intake(protocol=str(s["protocol"]), manifest=str(s["manifest"]), image_root=str(s["images"]),
                 out_cases=str(tmp_path / "r" / "cases.parquet"), out_ground_truth=str(tmp_path / "r" / "gt.json"),
                 annotations=str(s["annotations"]))
    cases = pd.read_parquet(tmp_path / "r" / "cases.parquet")
    assert {"case_id", "patient_id", "image_path", "width", "height", "image_sha256", "decodable"} <= set(cases.columns)
    gt = json.loads((tmp_path / "r" / "gt.json").read_text())
    assert len(gt["annotations"]) == 3


def test_excel_style_csv_with_bom_and_crlf(tmp_path):
    s = make_study(tmp_path)
    text = s["manifest"].read_text(encoding="utf-8")
    s["manifest"].write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    df = cohort.load_manifest(s["manifest"], image_root=s["images"])
    assert df.columns[0] == "case_id" and df["case_id"].tolist() == ["C1", "C2", "C3", "C4"]


def test_truncated_image_is_refused_even_after_weasyprint_made_pillow_tolerant(tmp_path):
    """weasyprint sets PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True at import; intake must not follow it."""
    import numpy as np
    from PIL import Image, ImageFile

    from study.cohort.images import probe_image

    path = tmp_path / "x.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        info = probe_image(path)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before
    assert not info["decodable"] and "does not decode" in info["image_error"]


def test_fitzpatrick_and_skin_type_assessor_are_validated(tmp_path):
    s = make_study(tmp_path)
    lines = s["manifest"].read_text().splitlines()
    lines[0] += ",skin_type_assessor"
    lines[1] = lines[1].replace(",III,", ",iv,") + ",dermatologist"
    lines[2] = lines[2].replace(",III,", ",7,") + ",self-reported"
    lines[3] = lines[3].replace(",III,", ",,") + ",dermatologist"
    lines[4] = lines[4].replace(",III,", ",Type 3,") + ","
    s["manifest"].write_text("\n".join(lines) + "\n")
    with pytest.raises(StudyError) as e:
        cohort.load_manifest(s["manifest"], image_root=s["images"])
    msgs = [str(p) for p in e.value.problems]
    assert len(msgs) == 3, msgs
    assert "row 3, column fitzpatrick: case 'C2': fitzpatrick = '7' is not a Fitzpatrick skin type" in msgs[0]
    assert "row 4, column skin_type_assessor: case 'C3'" in msgs[1] and "fitzpatrick is blank" in msgs[1]
    assert "row 5, column fitzpatrick: case 'C4': fitzpatrick = 'Type 3'" in msgs[2]
    assert all(str(s["manifest"]) in m for m in msgs)
    # valid: Roman (any case), 1-6, blank with a blank assessor; the assessor is kept as a column
    lines[2] = lines[2].replace(",7,", ",6,")
    lines[3] = lines[3].rsplit(",", 1)[0] + ","
    lines[4] = lines[4].replace(",Type 3,", ",II,")
    s["manifest"].write_text("\n".join(lines) + "\n")
    df = cohort.load_manifest(s["manifest"], image_root=s["images"])
    assert df["skin_type_assessor"].tolist() == ["dermatologist", "self-reported", "", ""]
