"""What the backends share: the state every detector keeps, and the member it does not use.

A pixel backend (:class:`PixelDetector`) computes detections from images and refuses
``predict_cases``; a lookup backend (:class:`CaseLookupDetector`) finds them by case and
refuses ``predict``. Either way every backend has every member of
:class:`study.detectors.Detector`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from study.detectors import BackendInfo, Detections
from study.detectors.helpers import polygon_labels
from study.errors import StudyError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from study.modelspec import ModelSpec


class BackendDetector(ABC):
    """A loaded model: its spec, the model's ``classes``, provenance ``info`` and the labels
    whose masks become polygons."""

    needs_pixels: ClassVar[bool]

    def __init__(self, spec: ModelSpec, info: BackendInfo) -> None:
        self.spec = spec
        self.classes: list[str] = list(spec.classes)
        self.info = info
        self._polygons = polygon_labels(spec)

    @abstractmethod
    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detections for each image (RGB ``uint8`` HWC), boxes in its original pixels."""

    @abstractmethod
    def predict_cases(self, cases: pd.DataFrame) -> list[Detections]:
        """Detections for each row of ``cases``, in row order."""


class PixelDetector(BackendDetector):
    """A backend that runs a model on the images."""

    needs_pixels: ClassVar[bool] = True

    def predict_cases(self, cases: pd.DataFrame) -> list[Detections]:
        raise StudyError(f"the {self.info.backend} backend computes detections from pixels: give it images "
                         "(predict), not cases (study.inference.predict_shard reads the images)",
                         file=f"model {self.spec.id}", where="backend")


class CaseLookupDetector(BackendDetector):
    """A backend that looks detections made elsewhere up by case."""

    needs_pixels: ClassVar[bool] = False

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]:
        raise StudyError(f"{self.info.backend} detections are looked up by case, not computed from pixels "
                         "(use study.inference.predict_shard)", file=f"model {self.spec.id}", where="backend")
