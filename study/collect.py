"""Assemble ``results.json``: every number the report shows, with its method and provenance.

The layout is documented in ``docs/architecture.md``. Everything here is read from the
step outputs of one run; nothing is computed twice and nothing is typed in. Results are
canonical (sorted keys, no run date or time: the report adds its own date), so the same
inputs give an identical file.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from study.io import read_json
from study.protocol import load_protocol

SCHEMA_VERSION = 1


def _model_files(entry: dict) -> dict:
    """A config ``models:`` entry as {id, backend, <file role>: absolute path} for provenance."""
    from study.modelspec import load_model_spec

    spec = load_model_spec(entry)
    out: dict = {"id": spec.id, "backend": spec.backend}
    if entry.get("spec"):
        out["spec"] = str(Path(entry["spec"]).resolve())
    for key in ("weights", "file", "config", "detections"):
        value = getattr(spec, key, None)
        if value:
            out[key] = str(spec.path(value))
    return out


def collect_results(config: dict, *, results_dir: Path, models: list[str]) -> dict:
    """Build the ``results.json`` mapping for one study run.

    Parameters
    ----------
    config : dict
        The resolved study config (as Snakemake saw it).
    results_dir : Path
        The study's results folder holding every step's outputs.
    models : list of str
        Model ids, in config order.
    """
    from study import grading
    from study.baseline import compute_baseline
    from study.provenance import collect_provenance, software_versions

    r = Path(results_dir)
    loaded = load_protocol(config["protocol"])
    p = loaded.protocol
    cases = pd.read_parquet(r / "cases.parquet")
    eligibility = pd.read_parquet(r / "eligibility.parquet")
    reference = pd.read_parquet(r / "reference.parquet")
    gt = read_json(r / "ground_truth.json")
    counts = grading.counts_from_coco(gt, classes=p.classes)

    results: dict = {
        "schema_version": SCHEMA_VERSION,
        "study": {
            "name": config["study"],
            "protocol": {"name": p.name, "title": p.title, "version": p.version, "path": loaded.path,
                         "sha256": loaded.sha256, "description": p.description},
            "protocol_settings": p.model_dump(mode="json"),
            "software": software_versions(),
            "config": config,
            "information": config.get("information") or {},
        },
        "flow": read_json(r / "flow.json"),
        "baseline": compute_baseline(cases, eligibility, counts, reference[["case_id", "grade"]],
                                     levels=p.levels, classes=p.classes),
        "detection": {m: read_json(r / "metrics" / "detection" / f"{m}.json") for m in models},
        "counting": {m: read_json(r / "metrics" / "counting" / f"{m}.json") for m in models},
        "models": {m: read_json(r / "detections" / f"{m}.meta.json") for m in models},
        "agreement": read_json(r / "metrics" / "agreement.json"),
        "mrmc": read_json(r / "metrics" / "mrmc.json"),
        "analysis_plan": read_json(r / "metrics" / "decisions.json"),
        # `study plan CONFIG --out <results_dir>` puts the sample-size table here (STARD item 18)
        "sample_size": read_json(r / "sample_size.json") if (r / "sample_size.json").exists() else None,
    }
    cohort = config["cohort"]
    inputs = {role: cohort[role] for role in ("manifest", "annotations", "reference", "readings") if cohort.get(role)}
    inputs["protocol"] = config["protocol"]
    results["provenance"] = collect_provenance(
        config=config, protocol_path=config["protocol"], inputs=inputs,
        image_paths=cases["image_path"].tolist() if "image_path" in cases else [],
        models=[_model_files(entry) for entry in config["models"]], repo_dir=Path(__file__).resolve().parents[1])
    return results
