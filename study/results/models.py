"""The ``models`` block of ``results.json``: one ``detections/<model>.meta.json`` per model.

Written by :func:`study.inference.merge_shards` (the shard summaries by
:func:`study.inference.predict_shard`): which backend and files made the detections (weights
sha256, backend version), and what happened to them (dropped detections, warnings, timing).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from study.results.base import ResultModel

__all__ = ["DetectionCounts", "ModelClasses", "ModelMeta", "ShardSummary"]


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
