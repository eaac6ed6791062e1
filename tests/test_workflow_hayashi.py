"""The second source study end to end: ACNE04-like data (single class, Hayashi grading).

A synthetic cohort is written in the ACNE04 release layout (VOC boxes of class ``fore``,
``NNEW_*`` grade lists, reader files with letters A-D), converted with
``study convert acne04``, and run through the whole workflow with the Hayashi protocol and
the demo detector, its six classes mapped onto the single class ``acne`` (scars dropped).
Checks the Hayashi grading, the counting tables by severity group (the ACNE04 study's
Table 3) and the AP50 against pycocotools on the run's own files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO_ROOT, pycocotools_eval

pytestmark = pytest.mark.slow
LETTERS = "ABCD"
HAYASHI = ["mild", "moderate", "severe", "very_severe"]
CHINESE = ["I", "II", "III", "IV"]


def _band(count: int) -> int:
    return 0 if count <= 5 else 1 if count <= 20 else 2 if count <= 50 else 3


def _acne04_tree(synth_dir: Path, root: Path, tmp: Path) -> list[Path]:
    """Write the synthetic cohort (non-scar lesions as 'fore') in the ACNE04 release layout."""
    coco = json.loads((synth_dir / "annotations.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    images = root / "Classification" / "JPEGImages"
    xmls = root / "Detection" / "VOC2007" / "Annotations"
    images.mkdir(parents=True)
    xmls.mkdir(parents=True)
    boxes: dict[int, list] = {im["id"]: [] for im in coco["images"]}
    for a in coco["annotations"]:
        if names[a["category_id"]] != "scar":
            boxes[a["image_id"]].append(a["bbox"])
    lines, band_of = [], {}
    for im in coco["images"]:
        shutil.copy(synth_dir / "images" / im["file_name"], images / im["file_name"])
        objs = "".join(
            f"<object><name>fore</name><bndbox><xmin>{round(x) + 1}</xmin><ymin>{round(y) + 1}</ymin>"
            f"<xmax>{round(x + w)}</xmax><ymax>{round(y + h)}</ymax></bndbox></object>"
            for x, y, w, h in boxes[im["id"]])
        (xmls / f"{Path(im['file_name']).stem}.xml").write_text(
            f"<annotation><filename>{im['file_name']}</filename><size><width>{im['width']}</width>"
            f"<height>{im['height']}</height><depth>3</depth></size>{objs}</annotation>", encoding="utf-8")
        n = len(boxes[im["id"]])
        band_of[Path(im["file_name"]).stem] = _band(n)
        lines.append(f"{im['file_name']} {_band(n)} {n}")
    (root / "Classification" / "NNEW_test_0.txt").write_text("\n".join(lines) + "\n")
    # readers: each synthetic reader's error (their Chinese grade minus the reference's) applied
    # to the Hayashi grade, so juniors still err more and mostly by one grade
    ref = pd.read_csv(synth_dir / "reference.csv", dtype=str).set_index("case_id")["grade"]
    readings = pd.read_csv(synth_dir / "readings.csv", dtype=str)
    files = []
    for reader, rows in readings.groupby("reader_id"):
        out = []
        for i, r in enumerate(rows.itertuples(), start=1):
            shift = CHINESE.index(r.grade) - CHINESE.index(ref[r.case_id])
            g = min(3, max(0, band_of[r.case_id] + shift))
            out.append(f"{i} {r.case_id}.jpg {LETTERS[g]}")
        path = tmp / f"{reader}.txt"
        path.write_text("\n".join(out) + "\n")
        files.append(path)
    return files


@pytest.fixture(scope="module")
def hayashi_run(tmp_path_factory):
    from study.synth import make_cohort

    tmp = tmp_path_factory.mktemp("hayashi")
    make_cohort(tmp / "synth", cases=30, seed=5, exclusion_rate=0.0)
    readers = _acne04_tree(tmp / "synth", tmp / "ACNE04", tmp)
    study = str(Path(sys.executable).parent / "study")
    conv = subprocess.run([study, "convert", "acne04", str(tmp / "ACNE04"), "--out", str(tmp / "tables"),
                           "--readers", *map(str, readers)], capture_output=True, text=True, timeout=300)
    assert conv.returncode == 0, conv.stderr
    info = json.loads((tmp / "tables" / "conversion.json").read_text())
    protocol = yaml.safe_load((REPO_ROOT / "protocols" / "hayashi-acne04.yaml").read_text())
    protocol["statistics"]["bootstrap_replicates"] = 200
    (tmp / "protocol.yaml").write_text(yaml.safe_dump(protocol))
    to_acne = {c: "acne" for c in ["comedone", "papule", "pustule", "nodule", "cyst"]}
    cfg = {
        "study": "acne04-like",
        "protocol": str(tmp / "protocol.yaml"),
        "results_dir": str(tmp / "results"),
        "cohort": {"manifest": str(tmp / "tables" / "manifest.csv"), "image_root": info["image_root"],
                   "annotations": str(tmp / "tables" / "annotations.json"),
                   "reference": str(tmp / "tables" / "reference.csv"),
                   "readings": str(tmp / "tables" / "readings.csv")},
        "models": [{"id": "demo-frcnn", "spec": str(REPO_ROOT / "models" / "demo" / "model.yaml"),
                    "class_map": {**to_acne, "scar": None}}],
        "shards": 2,
    }
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
    run = subprocess.run([study, "run", str(tmp / "config.yaml"), "--cores", "2"], cwd=tmp, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    return tmp, json.loads((tmp / "results" / "results.json").read_text())


def test_hayashi_levels_and_counting_by_severity(hayashi_run):
    tmp, res = hayashi_run
    assert res["agreement"]["levels"] == HAYASHI
    counting = res["counting"]["demo-frcnn"]
    assert set(counting["thresholds"]) == {"0.25", "0.5", "0.75"}
    ref = pd.read_parquet(tmp / "results" / "reference.parquet")
    for t, block in counting["thresholds"].items():
        assert block["overall"]["n"] == len(ref)
        by = block["by_severity"]
        assert sum(by[lv]["n"] for lv in HAYASHI if lv in by) == len(ref)
    # the model's grade is the Hayashi band of its count at the operating threshold
    grades = pd.read_parquet(tmp / "results" / "grades" / "demo-frcnn.parquet")
    assert set(grades["grade"]) <= set(HAYASHI)
    assert all(HAYASHI[_band(int(n))] == g for n, g in zip(grades["count_acne"], grades["grade"]))
    # readers converted from letters appear as raters
    assert {"junior-1", "senior-1"} <= set(res["agreement"]["raters"])


def test_single_class_ap50_matches_pycocotools(hayashi_run):
    tmp, res = hayashi_run
    r = tmp / "results"
    gt = json.loads((r / "ground_truth.json").read_text())
    dt = json.loads((r / "detections" / "demo-frcnn.coco.json").read_text())
    assert {c["name"] for c in gt["categories"]} == {"acne"}
    ev = pycocotools_eval(gt, dt, max_dets=1000, summarize=True)
    ours = res["detection"]["demo-frcnn"]["classes"]["acne"]["ap"]
    ours = ours["estimate"] if isinstance(ours, dict) else ours
    assert ours == pytest.approx(ev.stats[1], abs=1e-9)
    assert (r / "report.pdf").read_bytes().startswith(b"%PDF")
