"""The ``provenance`` block of ``results.json``: what exactly a study's numbers were computed from.

Written by :func:`study.provenance.collect_provenance`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from study.results.base import ResultModel
from study.results.study import SoftwareVersions

__all__ = ["FileRecord", "ImagesDigest", "ModelFiles", "Provenance"]


class FileRecord(ResultModel):
    """One file: where it was, the sha256 of its bytes and its size."""

    path: str
    sha256: str
    bytes: int


class ImagesDigest(ResultModel):
    """One sha256 standing for every image of the cohort (``method`` says how it is made)."""

    n_images: int
    sha256: str | None = Field(description="None when there are no images")
    method: str


class ModelFiles(ResultModel):
    """A model's backend and the sha256 of each file its spec names."""

    backend: str | None
    backend_version: str | None = Field(description="versions of the libraries that run the backend")
    files: dict[str, FileRecord] = Field(description="spec key (weights, file, config, spec, detections, "
                                                     "model_card) -> file")
    weights: str | None = Field(description="path of the weights (or TorchScript / ONNX file)")
    sha256: str | None = Field(description="sha256 of the weights (or TorchScript / ONNX file)")


class Provenance(ResultModel):
    """Input files, images digest, model files, git state, software and the resolved config."""

    inputs: dict[str, FileRecord | None] = Field(description="role -> file (None: the study has no such input)")
    protocol: FileRecord
    images_digest: ImagesDigest
    models: dict[str, ModelFiles]
    git_commit: str | None
    git_dirty: bool | None
    software: SoftwareVersions
    # free-form: the resolved study config as given (validated by config/schemas/config.schema.yaml)
    config: dict[str, Any]
