"""A small synthetic study with a precomputed model (no torch), for the workflow tests that run it several times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT


def study_env() -> dict[str, str]:
    """The environment a test runs `study` / Snakemake in: this checkout first on the paths."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def make_cohort(cohort: Path, *, cases: int = 16, seed: int = 3, pad_annotations_to: int = 0,
                annotators: int = 0, annotator_noise: float = 0.1) -> dict:
    """``study synth`` images (256 px) plus a vendor's detections (the true boxes, score 0.9).

    ``pad_annotations_to``: pad ``annotations.json`` with trailing spaces (valid JSON, same
    content) to at least this many bytes. ``annotators``: also that many annotators' files
    (``study synth --annotators``, in ``cohort/annotators/``).
    """
    extra = ["--annotators", str(annotators), "--annotator-noise", str(annotator_noise)] if annotators else []
    subprocess.run([sys.executable, "-m", "study", "synth", "--cases", str(cases), "--seed", str(seed),
                    "--image-size", "256", "--out", str(cohort), *extra], check=True, capture_output=True,
                   env=study_env())
    coco = json.loads((cohort / "annotations.json").read_text())
    text = json.dumps(coco)
    (cohort / "annotations.json").write_text(text + " " * max(0, pad_annotations_to - len(text)), encoding="utf-8")
    dt = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
          for a in coco["annotations"]]
    (cohort / "dt.json").write_text(json.dumps(dt), encoding="utf-8")
    protocol = yaml.safe_load((REPO_ROOT / "protocols" / "chinese-2019.yaml").read_text())
    protocol["statistics"]["bootstrap_replicates"] = 100
    protocol["quality"].update(min_width=128, min_height=128)
    (cohort / "protocol.yaml").write_text(yaml.safe_dump(protocol), encoding="utf-8")
    return {"classes": protocol["classes"], "categories": {c["id"]: c["name"] for c in coco["categories"]}}


def write_config(path: Path, cohort: Path | str, info: dict, *, study: str = "small", shards: int = 2,
                 annotators: list[dict] | None = None) -> Path:
    """A study config using the cohort of :func:`make_cohort` (``cohort`` relative or absolute), results in ``results``.

    ``annotators``: ``cohort.annotators`` entries, replacing the cohort's annotations and reference files.
    """
    c = str(cohort).rstrip("/")
    reference = ({"annotators": annotators} if annotators else
                 {"annotations": f"{c}/annotations.json", "reference": f"{c}/reference.csv"})
    cfg = {"study": study, "protocol": f"{c}/protocol.yaml", "results_dir": "results", "shards": shards,
           "cohort": {"manifest": f"{c}/manifest.csv", "image_root": f"{c}/images", **reference,
                      "readings": f"{c}/readings.csv"},
           "models": [{"id": "vendor", "backend": "precomputed", "detections": f"{c}/dt.json", "classes": info["classes"],
                       "images": f"{c}/annotations.json", "categories": info["categories"]}]}
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path
