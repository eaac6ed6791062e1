"""A small synthetic reader study for the reading-tool tests (``study synth`` cohort, a
precomputed "model" made from the annotations, a readers file, a config)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tests.conftest import REPO_ROOT

READERS_CSV = ("reader_id,reader_group,years_of_experience,specialty\n"
               "derm-a,senior,12,dermatology\n"
               "derm-b,junior,2,dermatology\n"
               "gp-c,intermediate,6,general practice\n")


def make_study(root: Path, *, cases: int = 30, seed: int = 5, washout_days: int = 28) -> dict[str, Path]:
    """Write the cohort, the protocol, a precomputed model, readers.csv and config.yaml under ``root``."""
    from study.synth import make_cohort

    cohort = root / "cohort"
    make_cohort(cohort, cases=cases, seed=seed)
    protocol = yaml.safe_load((REPO_ROOT / "protocols" / "chinese-2019.yaml").read_text())
    protocol["statistics"]["bootstrap_replicates"] = 100
    protocol["reader_study"] = {"washout_days": washout_days}
    (root / "protocol.yaml").write_text(yaml.safe_dump(protocol), encoding="utf-8")
    # a "vendor model": the annotated boxes, shifted a little, every fifth dropped, with scores
    gt = json.loads((cohort / "annotations.json").read_text())
    rng = np.random.default_rng(seed)
    file_of = {im["id"]: im["file_name"] for im in gt["images"]}
    dets = [{"file_name": file_of[a["image_id"]], "category_id": a["category_id"],
             "bbox": [a["bbox"][0] + 2, a["bbox"][1] - 1, a["bbox"][2], a["bbox"][3]],
             "score": round(float(rng.uniform(0.3, 1.0)), 3)}
            for k, a in enumerate(gt["annotations"]) if k % 5]
    (root / "dt.json").write_text(json.dumps(dets), encoding="utf-8")
    (root / "readers.csv").write_text(READERS_CSV, encoding="utf-8")
    classes = protocol["classes"]
    cfg = {"study": "rs", "protocol": str(root / "protocol.yaml"), "results_dir": str(root / "results"),
           "cohort": {"manifest": str(cohort / "manifest.csv"), "image_root": str(cohort / "images"),
                      "annotations": str(cohort / "annotations.json"), "reference": str(cohort / "reference.csv")},
           "models": [{"id": "vendor", "backend": "precomputed", "detections": str(root / "dt.json"),
                       "classes": classes, "categories": {str(c["id"]): c["name"] for c in gt["categories"]}}],
           "shards": 1, "readers": {"seed": 3}}
    (root / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return {"root": root, "config": root / "config.yaml", "readers": root / "readers.csv",
            "results": root / "results", "cohort": cohort}


def fake_model_outputs(results: Path, *, cases: list[str], annotations: Path | None = None) -> None:
    """Detections and grades of the aid model ``vendor`` without running the workflow (UI tests):
    the annotated boxes when ``annotations`` is given, else one box per case."""
    (results / "detections").mkdir(parents=True, exist_ok=True)
    (results / "grades").mkdir(parents=True, exist_ok=True)
    if annotations is not None:
        gt = json.loads(annotations.read_text())
        case_of = {im["id"]: str(im["case_id"]) for im in gt["images"]}
        name = {c["id"]: c["name"] for c in gt["categories"]}
        rows = [{"case_id": case_of[a["image_id"]], "image_id": a["image_id"], "class": name[a["category_id"]],
                 "score": 0.9, "x": a["bbox"][0], "y": a["bbox"][1], "w": a["bbox"][2], "h": a["bbox"][3]}
                for a in gt["annotations"]]
    else:
        rows = [{"case_id": c, "image_id": i, "class": "papule", "score": 0.9, "x": 40.0 + i, "y": 50.0,
                 "w": 30.0, "h": 30.0} for i, c in enumerate(cases)]
    pd.DataFrame(rows).to_parquet(results / "detections" / "vendor.parquet")
    pd.DataFrame({"case_id": cases, "grade": ["II"] * len(cases)}).to_parquet(results / "grades" / "vendor.parquet")
