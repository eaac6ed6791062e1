"""Assemble ``results.json``: every number the report shows, with its method and provenance.

The layout is documented in ``docs/architecture.md``. Everything here is read from the
step outputs of one run; nothing is computed twice and nothing is typed in. Results are
canonical (sorted keys, no run date or time: the report adds its own date), so the same
inputs give an identical file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from pydantic import BaseModel

from study.coco_stream import streamed_coco
from study.io import read_json
from study.metrics.detection import DetectionFlags
from study.protocol import Protocol, load_protocol
from study.pseudonyms import study_pseudonyms
from study.results import SCHEMA_VERSION, Results
from study.results.agreement import AgreementResult
from study.results.base import NotAssessed
from study.results.counting import CountingResult
from study.results.decisions import AnalysisPlanResults
from study.results.detection import DetectionResult
from study.results.errors import ErrorAnalysis
from study.results.flow import Flow
from study.results.models import ModelMeta
from study.results.mrmc import MRMCBlock, UStatAnalysis, parse_mrmc_block
from study.results.parse import parse_model
from study.results.readers import ReadersBlock
from study.results.reference import AnnotatorsBlock, ReferenceBlock
from study.results.sample_size import SampleSizePlan
from study.results.study import ProtocolRecord, StudyBlock, StudyInformation

__all__ = ["SCHEMA_VERSION", "collect_results", "read_block"]

_M = TypeVar("_M", bound=BaseModel)


def read_block(path: Path, model: type[_M]) -> _M:
    """Read one step output and validate it as ``model``.

    Raises
    ------
    StudyError
        Naming the file and, for each problem, the key path and what is expected.
    """
    return parse_model(model, read_json(path), source=str(path))


def _model_files(entry: dict[str, Any]) -> dict[str, Any]:
    """A config ``models:`` entry as {id, backend, <file role>: absolute path} for provenance."""
    from study.modelspec import load_model_spec

    spec = load_model_spec(entry)
    out: dict[str, Any] = {"id": spec.id, "backend": spec.backend}
    if entry.get("spec"):
        out["spec"] = str(Path(entry["spec"]).resolve())
    for key in ("weights", "file", "config", "detections"):
        value = getattr(spec, key, None)
        if value:
            out[key] = str(spec.path(value))
    return out


def collect_results(config: dict[str, Any], *, results_dir: Path, models: list[str]) -> Results:
    """Build the validated ``results.json`` (:class:`study.results.Results`) for one study run.

    Parameters
    ----------
    config : dict
        The resolved study config (as Snakemake saw it).
    results_dir : Path
        The study's results folder holding every step's outputs.
    models : list of str
        Model ids, in config order.

    Raises
    ------
    StudyError
        When a step output does not have the shape its model declares (file and key named).
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
    # counts per case and the image -> case map are all collect needs of the ground truth: its annotations
    # are streamed, never held whole (about a million at 100,000 cases)
    gt = streamed_coco(r / "ground_truth.json", image_keys=("id", "case_id"),
                       annotation_keys=("image_id", "category_id"))
    counts = grading.counts_from_coco(gt, classes=p.classes)

    study = StudyBlock(
        name=config["study"],
        protocol=ProtocolRecord(name=p.name, title=p.title, version=p.version, path=loaded.path,
                                sha256=loaded.sha256, description=p.description),
        protocol_settings=p,
        software=software_versions(),
        config=config,
        information=StudyInformation.model_validate(config.get("information") or {}),
    )
    cohort = config["cohort"]
    inputs = {role: cohort[role] for role in ("manifest", "annotations", "reference", "readings") if cohort.get(role)}
    for a in cohort.get("annotators") or []:
        inputs[f"annotator {a['id']} annotations"] = a["annotations"]
        if a.get("grades"):
            inputs[f"annotator {a['id']} grades"] = a["grades"]
    inputs["protocol"] = config["protocol"]
    provenance = collect_provenance(
        config=config, protocol_path=config["protocol"], inputs=inputs,
        image_paths=cases["image_path"].tolist() if "image_path" in cases else [],
        # intake hashed every image it read: the digest reuses those hashes instead of re-reading the images
        image_hashes=(dict(zip(cases["image_path"].astype(str), cases["image_sha256"].astype(str)))
                      if {"image_path", "image_sha256"} <= set(cases.columns) else None),
        models=[_model_files(entry) for entry in config["models"]], repo_dir=Path(__file__).resolve().parents[1])
    counting = {m: read_block(r / "metrics" / "counting" / f"{m}.json", CountingResult) for m in models}
    detection = {m: read_block(r / "metrics" / "detection" / f"{m}.json", DetectionResult) for m in models}
    errors = _error_analysis(r, p, cases=cases, counting=counting, detection=detection, ground_truth=gt,
                             information=study.information, eligibility=eligibility)
    agreement: AgreementResult | None = read_block(r / "metrics" / "agreement.json", AgreementResult)
    mrmc = parse_mrmc_block(read_json(r / "metrics" / "mrmc.json"), source=str(r / "metrics" / "mrmc.json"))
    if p.report.pseudonymise_case_ids:
        names = study_pseudonyms(r)
        counting, agreement = pseudonymise(counting, agreement, names=names)
        mrmc = pseudonymise_mrmc(mrmc, names=names)
        study = study.model_copy(update={"case_ids": "pseudonymised"})
    return Results(
        schema_version=SCHEMA_VERSION,
        study=study,
        flow=read_block(r / "flow.json", Flow),
        baseline=compute_baseline(cases, eligibility, counts, reference[["case_id", "grade"]],
                                  levels=p.levels, classes=p.classes),
        detection=detection,
        counting=counting,
        errors=errors,
        models={m: read_block(r / "detections" / f"{m}.meta.json", ModelMeta) for m in models},
        agreement=agreement,
        readers=read_block(r / "readers.json", ReadersBlock) if (r / "readers.json").exists() else None,
        # several annotators (config cohort.annotators): the fuse_reference step's record
        reference=(ReferenceBlock(annotators=read_block(r / "reference-standard" / "annotators.json", AnnotatorsBlock))
                   if cohort.get("annotators") else None),
        mrmc=mrmc,
        analysis_plan=read_block(r / "metrics" / "decisions.json", AnalysisPlanResults),
        # `study plan CONFIG --out <results_dir>` puts the sample-size table here (STARD item 18)
        sample_size=read_block(r / "sample_size.json", SampleSizePlan) if (r / "sample_size.json").exists() else None,
        provenance=provenance,
    )


def _detection_flags(r: Path, *, detection: dict[str, DetectionResult]) -> dict[str, DetectionFlags]:
    """Each model's per-detection flags, as its evaluate_detection step matched them
    (``metrics/detection/<model>.flags.npz``; a model without that file gets none, and the errors block
    says why)."""
    from study.metrics.flags_file import read_flags

    out = {}
    for m in detection:
        path = r / "metrics" / "detection" / f"{m}.flags.npz"
        if path.exists():
            out[m] = read_flags(path)
    return out


def _error_analysis(r: Path, p: Protocol, *, cases: pd.DataFrame, counting: dict[str, CountingResult],
                    detection: dict[str, DetectionResult], ground_truth: Mapping[str, Any],
                    information: StudyInformation, eligibility: pd.DataFrame) -> ErrorAnalysis:
    """The ``errors`` block from the run's step outputs (case ids always as pseudonyms)."""
    from study.error_analysis import error_analysis

    included = eligibility.loc[eligibility["included"].astype(bool), "case_id"].astype(str).tolist()
    flags = _detection_flags(r, detection=detection)

    quality = pd.read_parquet(r / "quality.parquet") if (r / "quality.parquet").exists() else None
    grades = {m: pd.read_parquet(r / "grades" / f"{m}.parquet") for m in counting
              if (r / "grades" / f"{m}.parquet").exists()}
    return error_analysis(cases=cases, quality=quality, counting=counting, detection=detection, grades=grades,
                          ground_truth=ground_truth, levels=p.levels, names=study_pseudonyms(r),
                          operating_threshold=p.detection.operating_threshold,
                          confidence=p.statistics.confidence_level,
                          skin_type_assessed_by=information.skin_type_assessment, flags=flags,
                          included=included)


def pseudonymise(counting: dict[str, CountingResult], agreement: AgreementResult | None, *,
                 names: Mapping[str, str]) -> tuple[dict[str, CountingResult], AgreementResult | None]:
    """The blocks with every stored case id replaced by its pseudonym (``names``: case id -> pseudonym).

    The case ids results.json stores are the counting points (per model) and the cases of the
    readers' Fleiss kappa; the per-case order is kept, so every list still lines up.
    """
    out = {m: c.model_copy(update={"points": c.points.model_copy(
        update={"case_id": [names[i] for i in c.points.case_id]})}) for m, c in counting.items()}
    if agreement is not None:
        ir = agreement.inter_reader
        fleiss = ir.fleiss.model_copy(update={"case_ids": [names[i] for i in ir.fleiss.case_ids]})
        agreement = agreement.model_copy(update={"inter_reader": ir.model_copy(update={"fleiss": fleiss})})
    return out, agreement


def pseudonymise_mrmc(mrmc: MRMCBlock | NotAssessed | None, *, names: Mapping[str, str]) -> MRMCBlock | NotAssessed | None:
    """The MRMC block with the case ids of its U-statistic designs (``design.cases``) replaced by pseudonyms."""
    if not isinstance(mrmc, MRMCBlock) or mrmc.ustat is None:
        return mrmc

    def one(a: UStatAnalysis | NotAssessed) -> UStatAnalysis | NotAssessed:
        if isinstance(a, NotAssessed):
            return a
        return a.model_copy(update={"design": a.design.model_copy(update={"cases": [names[c] for c in a.design.cases]})})

    u = mrmc.ustat
    ustat = u.model_copy(update={"aided_vs_unaided": one(u.aided_vs_unaided),
                                 "models": {m: one(a) for m, a in u.models.items()}})
    return mrmc.model_copy(update={"ustat": ustat})
