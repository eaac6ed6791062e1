"""Detector backends behind one small protocol.

DESIGN.md::

    class Detector(Protocol):
        classes: list[str]
        def predict(self, images: Sequence[np.ndarray]) -> list[Detections]

Images go in as RGB ``uint8`` HWC arrays; boxes come out as ``(x0, y0, x1, y1)`` in the
original image's pixels, with scores, class indices into ``classes`` (the *model's* class
names; the spec's ``class_map`` is applied by :mod:`study.inference`) and, for models with
a mask head, polygons.

Every backend also says whether it looks at pixels (``needs_pixels``); one that does not
(``precomputed``) looks detections up by case with ``predict_cases(cases)`` instead, and
:mod:`study.inference` calls whichever the backend's ``needs_pixels`` names.

This module holds the protocol (:class:`Detector`, :class:`Detections`,
:class:`BackendInfo`) and the registry (:data:`BACKENDS`, :func:`backend_class`,
:func:`load_detector`); what backends share is in :mod:`study.detectors.base` and
:mod:`study.detectors.helpers`. Backends import their heavy libraries (torch, onnxruntime,
detectron2) only when loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from study.errors import StudyError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from study.modelspec import ModelSpec

#: backend name -> (module under study.detectors, its detector class); each module defines
#: ``load(spec) -> Detector``
BACKENDS: dict[str, tuple[str, str]] = {
    "torchvision": ("torchvision_backend", "TorchvisionDetector"),
    "torchscript": ("torchscript_backend", "TorchScriptDetector"),
    "onnx": ("onnx_backend", "OnnxDetector"),
    "detectron2": ("detectron2_backend", "Detectron2Detector"),
    "precomputed": ("precomputed", "PrecomputedDetector"),
}


@dataclass
class Detections:
    """Detections on one image.

    Attributes
    ----------
    boxes : ndarray, shape (N, 4), float64
        ``x0, y0, x1, y1`` in original image pixels.
    scores : ndarray, shape (N,), float64
    labels : ndarray, shape (N,), int64
        Indices into the detector's ``classes``.
    polygons : list or None
        Per detection, a list of polygons (each a flat ``[x1, y1, x2, y2, ...]`` list in
        original pixels) or ``None``; ``None`` for the whole image when the model has no masks.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    polygons: list[list[list[float]] | None] | None = field(default=None)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        n = len(self.boxes)
        if len(self.scores) != n or len(self.labels) != n:
            raise ValueError(f"boxes ({n}), scores ({len(self.scores)}) and labels ({len(self.labels)}) differ in length")
        if self.polygons is not None and len(self.polygons) != n:
            raise ValueError(f"{len(self.polygons)} polygon entries for {n} boxes")

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, keep: np.ndarray) -> Detections:
        """The detections where the boolean mask / index array ``keep`` selects."""
        idx = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep, dtype=np.int64)
        polys = None if self.polygons is None else [self.polygons[i] for i in idx]
        return Detections(self.boxes[idx], self.scores[idx], self.labels[idx], polys)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))

    def to_dict(self) -> dict[str, Any]:
        return {"boxes": self.boxes.tolist(), "scores": self.scores.tolist(), "labels": self.labels.tolist(),
                "polygons": self.polygons}


@dataclass(frozen=True)
class BackendInfo:
    """Provenance of a loaded detector: which files (with sha256) and which library version."""

    backend: str
    backend_version: str
    weights: str | None
    weights_sha256: str | None
    files: dict[str, str] = field(default_factory=dict)  # role -> sha256
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "backend_version": self.backend_version, "weights": self.weights,
                "weights_sha256": self.weights_sha256, "files": dict(self.files), "device": self.device}


@runtime_checkable
class Detector(Protocol):
    """What every backend provides (see the module docstring).

    Attributes
    ----------
    classes : the model's class names; ``Detections.labels`` index into them.
    needs_pixels : True when the backend computes detections from images (:meth:`predict`),
        False when it looks them up by case (:meth:`predict_cases`). A class attribute, so
        that it is known before the backend is loaded (:func:`backend_class`).
    info : provenance of the loaded model.
    """

    classes: list[str]
    needs_pixels: ClassVar[bool]
    info: BackendInfo

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]:  # pragma: no cover - protocol
        """Detections for each image (RGB ``uint8`` HWC), boxes in its original pixels."""
        ...

    def predict_cases(self, cases: pd.DataFrame) -> list[Detections]:  # pragma: no cover - protocol
        """Detections for each row of ``cases`` (``case_id``, ``image_path`` [, ``image``]), in row order."""
        ...


def backend_class(backend: str, *, model_id: str = "") -> type[Detector]:
    """The detector class of a backend, without loading a model (nor the backend's heavy libraries).

    Raises
    ------
    StudyError
        When ``backend`` is not one of :data:`BACKENDS`.
    """
    try:
        module, cls = BACKENDS[backend]
    except KeyError:  # pragma: no cover - the spec validator already refuses this
        raise StudyError(f"unknown backend {backend!r}; expected one of {sorted(BACKENDS)}",
                         file=f"model {model_id}", where="backend") from None
    found: type[Detector] = getattr(importlib.import_module(f"study.detectors.{module}"), cls)
    return found


def load_detector(spec: ModelSpec) -> Detector:
    """Build the detector a model spec names.

    The returned object has ``classes``, ``needs_pixels``, ``info`` (:class:`BackendInfo`),
    ``predict(images)`` and ``predict_cases(cases)``.

    Raises
    ------
    StudyError
        When the backend's library is missing (with how to install it), a file is missing,
        its sha256 differs from the spec's, or a checkpoint needs pickled code.
    """
    module = importlib.import_module(backend_class(spec.backend, model_id=spec.id).__module__)
    detector: Detector = module.load(spec)
    return detector
