"""The ``models`` block of ``results.json``: one ``detections/<model>.meta.json`` per model.

Written by :func:`study.inference.merge_shards` (the shard summaries by
:func:`study.inference.predict_shard`): which backend and files made the detections (weights
sha256, backend version), and what happened to them (dropped detections, warnings, timing).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from study.results.base import ResultModel

__all__ = ["DataDescription", "DetectionCounts", "ModelCard", "ModelClasses", "ModelMeta", "ShardSummary",
           "TrainingPatientsCheck"]


class DataDescription(ResultModel):
    """Data a model was trained or tuned on, as its developer describes it (each field optional)."""

    description: str | None = None
    size: str | None = Field(None, description="e.g. '12 000 images of 3 100 patients'")
    sites: str | None = None
    dates: str | None = None


class TrainingPatientsCheck(ResultModel):
    """The check that no patient of the cohort was among the model's training patients."""

    file: str = Field(description="the training-patients file as the model card names it")
    file_sha256: str
    format: Literal["ids", "sha256"] = Field(description="one patient id per line, or the sha256 of each id's "
                                                         "UTF-8 text as hex")
    n_training_patients: int
    n_cohort_patients: int = Field(description="distinct patient ids of the cohort's manifest")
    n_overlap: int = Field(description="cohort patients found among the training patients (a run stops when "
                                       "this is not 0)")


class ModelCardText(ResultModel):
    """The fields a model card's developer writes, shared by the spec's ``card:``
    (``study.model_card.ModelCardSpec``) and the card recorded in results.json (:class:`ModelCard`).

    Every field is optional: what the developer did not supply is printed "not supplied" and
    counted as not reported in the checklists (CLAIM 2024, STARD 2015). The weights' sha256 is
    not part of the card: the run computes it (``weights_sha256`` and ``provenance``).
    """

    version: str | None = None
    architecture: str | None = None
    input_size: str | None = None
    preprocessing: str | None = None
    training_data: DataDescription = Field(default_factory=DataDescription)
    tuning_data: DataDescription = Field(default_factory=DataDescription)
    patient_separation: str | None = Field(None, description="statement of how test patients were kept out of "
                                                             "training")
    operating_threshold: float | None = None
    threshold_rationale: str | None = None


class ModelCard(ModelCardText):
    """The model card of a model spec (``card:``) as recorded: what the model is, what it was trained on,
    and the check of its training patients against the cohort."""

    training_patients: TrainingPatientsCheck | None = None


class DetectionCounts(ResultModel):
    """What a model was run on and what was kept of its detections (a shard, or all shards).

    No timing and nothing else that differs between two runs of the same inputs: how long a run
    took is in the run log ``detections/<model>.timing.json`` (not part of results.json).
    """

    model: str
    n_images: int
    n_detections: int
    n_dropped_outside_face: int = Field(description="box centre outside the case's face box (face_filter)")
    n_dropped_unmapped_class: int = Field(description="model class mapped to no protocol class")
    n_cases_without_face_box: int
    face_filter: bool
    warnings: list[str]


class ShardSummary(DetectionCounts):
    """One shard of one model's predictions (``predict_shard``'s summary, without the backend)."""

    shard: int = Field(description="0-based shard index")
    n_shards: int
    fingerprint: str = Field(description="sha256 of the spec, model files, cases and face boxes of the shard")
    batch_size: int
    n_images_with_exactly_100: int = Field(description="sign of a model still capped at COCO's 100 detections")


class ModelClasses(ResultModel):
    """The model's own classes, the classes its detections use, and their COCO category ids."""

    model: list[str]
    output: list[str]
    category_ids: dict[str, int]


class ModelMeta(DetectionCounts):
    """``detections/<model>.meta.json``: provenance and counts of one model's merged detections."""

    backend: str
    backend_version: str
    torch_version: str
    acne_study_version: str
    device: str
    weights: str | None = Field(description="the weights file (TorchScript / ONNX: the model file)")
    weights_sha256: str | None
    files: dict[str, str] = Field(description="file role -> sha256")
    # free-form: the model spec as given (study.modelspec.ModelSpec.to_dict, plus base_dir); its
    # keys depend on the backend and are validated by ModelSpec itself when it is loaded
    spec: dict[str, Any]
    classes: ModelClasses
    shards: list[ShardSummary]
    card: ModelCard | None = Field(None, exclude_if=lambda v: v is None,
                                   description="the spec's model card (left out when the spec has none)")
