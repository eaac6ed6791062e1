"""``torchscript`` backend: a TorchScript file, from torchvision or from Detectron2.

``export_format`` says what the file takes and returns:

- ``torchvision`` (``torch.jit.script`` of a torchvision detector): a list of RGB float CHW
  tensors in [0, 1] in; ``(losses, detections)`` or the detections list out, boxes already in
  original pixels, labels 1-based (label ``i`` = ``classes[i - 1]``).
- ``detectron2`` (Detectron2's ``TracingAdapter`` export, as ``tools/deploy/export_model.py
  --export-method tracing`` writes): one float CHW image in ``input_format`` (BGR or RGB,
  0-255) resized like ``ResizeShortestEdge(min_size, max_size)``; a flat tuple out, the
  ``Instances`` fields in sorted order (``pred_boxes, pred_classes[, pred_masks], scores``),
  boxes in *resized* coordinates. Boxes are rescaled, clipped and empty boxes dropped
  exactly as ``detectron2.modeling.postprocessing.detector_postprocess`` does; labels
  are 0-based (class ``i`` = ``classes[i]``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from study.detectors import BackendInfo, Detections
from study.detectors.base import PixelDetector
from study.detectors.helpers import (
    d2_resize,
    masks_to_polygons,
    paste_mask_in_box,
    run_by_shape,
    verified_file,
)
from study.errors import StudyError


def d2_preprocess(image: np.ndarray, *, input_format: str, min_size: int, max_size: int) -> np.ndarray:
    """RGB uint8 HWC -> the float32 CHW array a Detectron2 export takes (resized, channel order)."""
    im = image if input_format == "RGB" else image[:, :, ::-1]
    im = d2_resize(np.ascontiguousarray(im), min_size=min_size, max_size=max_size)
    return np.ascontiguousarray(im.astype(np.float32).transpose(2, 0, 1))


def d2_postprocess(outputs: Sequence[np.ndarray], *, resized_hw: tuple[int, int], original_hw: tuple[int, int],
                   score_threshold: float, max_detections: int, wanted_polygons: set[int]) -> Detections:
    """Flat Detectron2 export outputs -> :class:`Detections` in original pixels.

    Follows ``detector_postprocess`` (scale by original/resized size in float32, clip to the
    original image, drop empty boxes); masks (``N x 1 x M x M``) are pasted into their boxes.
    """
    outs = [np.asarray(o) for o in outputs]
    # TracingAdapter appends the Instances' image_size (resized h, w) after the sorted fields
    if (len(outs) in (4, 5) and outs[-1].ndim == 1 and outs[-1].shape[0] == 2
            and (len(outs) == 5 or outs[2].ndim != 4)):
        resized_hw = tuple(int(v) for v in outs.pop())
    if len(outs) == 3:
        boxes, classes, scores = outs
        masks = None
    elif len(outs) == 4:
        boxes, classes, masks, scores = outs
    else:
        raise StudyError(f"a Detectron2 export should return (pred_boxes, pred_classes[, pred_masks], scores"
                         f"[, image_size]); "
                         f"got {len(outs)} outputs", where="export_format")
    h, w = original_hw
    rh, rw = resized_hw
    b = boxes.astype(np.float32).reshape(-1, 4).copy()
    sx, sy = np.float32(w / rw), np.float32(h / rh)
    b[:, 0::2] *= sx
    b[:, 1::2] *= sy
    b[:, 0::2] = np.clip(b[:, 0::2], np.float32(0), np.float32(w))
    b[:, 1::2] = np.clip(b[:, 1::2], np.float32(0), np.float32(h))
    keep = ((b[:, 2] - b[:, 0]) > 0) & ((b[:, 3] - b[:, 1]) > 0)
    scores = scores.reshape(-1)
    keep &= scores >= score_threshold
    idx = np.flatnonzero(keep)[:max_detections]
    labels = classes.reshape(-1)[idx].astype(np.int64)
    polys = None
    if masks is not None and wanted_polygons:
        polys = []
        for i, lab in zip(idx, labels):
            if int(lab) in wanted_polygons:
                m = paste_mask_in_box(masks[i, 0], b[i], h, w)
                polys.append(masks_to_polygons([m], [lab], wanted_polygons)[0])
            else:
                polys.append(None)
    return Detections(b[idx].astype(np.float64), scores[idx].astype(np.float64), labels, polys)


class TorchScriptDetector(PixelDetector):
    """A TorchScript detector (see the module docstring)."""

    def __init__(self, module, spec, info: BackendInfo, device):
        super().__init__(spec, info)
        self.module = module
        self.device = device
        self.format = spec.resolved_export_format

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]:
        import torch

        if not len(images):
            return []
        with torch.inference_mode():
            if self.format == "torchvision":
                from study.detectors.torchvision_backend import (
                    images_to_tensors,
                    outputs_to_detections,
                )

                def run(group):
                    out = self.module(images_to_tensors(group, self.device))
                    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], list):
                        out = out[1]  # scripted torchvision detectors return (losses, detections)
                    return [_filter(d, self.spec) for d in outputs_to_detections(out, self._polygons)]

                return run_by_shape(images, run)
            dets = []
            for im in images:
                x = d2_preprocess(im, input_format=self.spec.input_format, min_size=self.spec.min_size,
                                  max_size=self.spec.max_size)
                out = self.module(torch.from_numpy(x).to(self.device))
                if isinstance(out, torch.Tensor):
                    out = (out,)
                dets.append(d2_postprocess([o.detach().cpu().numpy() for o in out], resized_hw=x.shape[1:],
                                           original_hw=im.shape[:2], score_threshold=self.spec.score_threshold,
                                           max_detections=self.spec.max_detections, wanted_polygons=self._polygons))
            return dets


def _filter(d: Detections, spec) -> Detections:
    """Apply the spec's score threshold and cap (a scripted model keeps its own, maybe laxer ones)."""
    keep = np.flatnonzero(d.scores >= spec.score_threshold)[: spec.max_detections]
    return d.select(keep)


def load(spec) -> TorchScriptDetector:
    """Load the TorchScript file (``torch.jit.load``: TorchScript archives hold no pickled Python code)."""
    import torch

    from study.detectors.torchvision_backend import resolve_device, set_limits

    path, digest = verified_file(spec, "file", expected_sha256=spec.weights_sha256)
    device = resolve_device(spec)
    try:
        module = torch.jit.load(str(path), map_location=device)
    except RuntimeError as e:
        raise StudyError(f"not a TorchScript file: {str(e).splitlines()[0]}", file=f"model {spec.id}", where="file") from None
    module.eval()
    if spec.resolved_export_format == "torchvision":
        try:  # scripted torchvision models keep their attributes: lift the per-image cap
            set_limits(module, score_threshold=spec.score_threshold, max_detections=spec.max_detections)
        except StudyError:
            pass  # no cap attribute (e.g. a traced model): its own cap and threshold apply
        except (RuntimeError, AttributeError) as e:
            raise StudyError(f"cannot set the per-image cap / score threshold of {path}: {e}",
                             file=f"model {spec.id}", where="max_detections") from None
    return TorchScriptDetector(module, spec, BackendInfo(
        backend="torchscript", backend_version=f"torch {torch.__version__}", weights=str(path), weights_sha256=digest,
        files={"file": digest}, device=spec.device), device)
