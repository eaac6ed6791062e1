"""``onnx`` backend: an exported detector run with onnxruntime (CPU, or CUDA when asked).

``export_format`` as for TorchScript:

- ``torchvision`` (``torch.onnx.export`` of a torchvision detector, one image per call):
  input one RGB float CHW tensor in [0, 1]; outputs ``boxes, labels, scores[, masks]`` with
  boxes in original pixels and 1-based labels.
- ``detectron2`` (a Detectron2 tracing export saved as ONNX): as in
  :mod:`study.detectors.torchscript_backend` (resized input in ``input_format``; flat
  outputs rescaled to original pixels; 0-based classes).

Images are run one at a time (exported detectors take one image); onnxruntime's own
intra-op threads use the cores. An ONNX graph keeps the per-image cap and score threshold
it was exported with (they become constants): export after setting them (torchvision:
``roi_heads.detections_per_img``, never the default 100); the spec's threshold and cap are
applied again on the outputs, but cannot bring back what the graph already dropped.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from study.detectors import BackendInfo, Detections
from study.detectors.base import PixelDetector
from study.detectors.helpers import masks_to_polygons, verified_file
from study.errors import StudyError


class OnnxDetector(PixelDetector):
    """An onnxruntime session wrapped as a :class:`~study.detectors.Detector`."""

    def __init__(self, session, spec, info: BackendInfo):
        super().__init__(spec, info)
        self.session = session
        self.format = spec.resolved_export_format
        self.input_name = session.get_inputs()[0].name
        self.output_names = [o.name for o in session.get_outputs()]

    def _torchvision_outputs(self, outs: list[np.ndarray]) -> Detections:
        named = dict(zip(self.output_names, outs))
        if {"boxes", "labels", "scores"} <= set(named):
            boxes, labels, scores = named["boxes"], named["labels"], named["scores"]
            masks = named.get("masks")
        else:  # unnamed outputs: torchvision's order
            boxes, labels, scores = outs[:3]
            masks = outs[3] if len(outs) > 3 else None
        labels = np.asarray(labels).astype(np.int64) - 1
        polys = None
        if masks is not None and self._polygons:
            polys = masks_to_polygons(np.asarray(masks)[:, 0] > 0.5, labels, self._polygons)
        d = Detections(boxes, scores, labels, polys)
        keep = np.flatnonzero(d.scores >= self.spec.score_threshold)[: self.spec.max_detections]
        return d.select(keep)

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]:
        from study.detectors.torchscript_backend import d2_postprocess, d2_preprocess

        dets = []
        for im in images:
            if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
                raise ValueError(f"expected an RGB uint8 HxWx3 image, got {im.dtype} {im.shape}")
            if self.format == "torchvision":
                x = np.ascontiguousarray(im.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)
                dets.append(self._torchvision_outputs(self.session.run(None, {self.input_name: x})))
            else:
                x = d2_preprocess(im, input_format=self.spec.input_format, min_size=self.spec.min_size,
                                  max_size=self.spec.max_size)
                outs = self.session.run(None, {self.input_name: x})
                dets.append(d2_postprocess(outs, resized_hw=x.shape[1:], original_hw=im.shape[:2],
                                           score_threshold=self.spec.score_threshold,
                                           max_detections=self.spec.max_detections, wanted_polygons=self._polygons))
        return dets


def load(spec) -> OnnxDetector:
    """Open an onnxruntime session on the spec's verified file."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise StudyError("the onnx backend needs onnxruntime: pip install onnxruntime", file=f"model {spec.id}",
                         where="backend") from None
    path, digest = verified_file(spec, "file", expected_sha256=spec.weights_sha256)
    providers = ["CPUExecutionProvider"]
    if spec.device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise StudyError(f"device {spec.device!r} asked for, but this onnxruntime has no CUDA provider "
                             "(pip install onnxruntime-gpu) ; use device: cpu", file=f"model {spec.id}", where="device")
        providers.insert(0, "CUDAExecutionProvider")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types
        raise StudyError(f"onnxruntime cannot load {path}: {str(e).splitlines()[0]}", file=f"model {spec.id}",
                         where="file") from None
    return OnnxDetector(session, spec, BackendInfo(
        backend="onnx", backend_version=f"onnxruntime {ort.__version__}", weights=str(path), weights_sha256=digest,
        files={"file": digest}, device=spec.device))
