"""``torchvision`` backend: a torchvision detection architecture plus a state-dict checkpoint.

``architecture`` is a builder of ``torchvision.models.detection`` (``fasterrcnn_resnet50_fpn``,
``retinanet_resnet50_fpn``, ``fcos_resnet50_fpn``, ``maskrcnn_resnet50_fpn``, ...), called with
``num_classes = len(classes) + 1, weights=None, weights_backbone=None`` (nothing is ever
downloaded), or a key of ``study.detectors.small_archs.ARCHITECTURES``. Model label ``i``
is ``classes[i - 1]`` (0 is the background). The per-image cap and the score threshold
are set from the spec (``max_detections``, ``score_threshold``), never torchvision's 100.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from study.detectors import BackendInfo, Detections
from study.detectors.base import PixelDetector
from study.detectors.helpers import (
    load_state_dict,
    masks_to_polygons,
    run_by_shape,
    verified_file,
)
from study.errors import StudyError


def _small_archs() -> dict:
    import importlib

    try:
        small_archs = importlib.import_module("study.detectors.small_archs")
    except ModuleNotFoundError as e:
        if e.name == "study.detectors.small_archs":
            return {}  # not written / not installed: only torchvision builders
        raise
    return dict(getattr(small_archs, "ARCHITECTURES", {}))


def _torchvision_builders() -> list[str]:
    import torchvision.models.detection as tvd

    names = []
    for n in dir(tvd):
        if n.startswith("_") or not n.islower() or n.startswith("get_"):
            continue
        if callable(getattr(tvd, n)) and any(k in n for k in ("rcnn", "retinanet", "fcos", "ssd", "keypoint")):
            names.append(n)
    return sorted(names)


def build_model(spec):
    """Build the spec's architecture (random init, nothing downloaded), caps and threshold set."""
    import torchvision.models.detection as tvd

    name = spec.architecture
    kwargs = dict(spec.architecture_kwargs)
    num_classes = len(spec.classes) + 1
    small = _small_archs()
    try:
        if name in small:
            model = small[name](num_classes=num_classes, **kwargs)
        elif name in _torchvision_builders():
            kwargs.setdefault("weights", None)
            kwargs.setdefault("weights_backbone", None)
            if kwargs["weights"] is not None or kwargs["weights_backbone"] is not None:
                raise StudyError("architecture_kwargs must not name pretrained weights: nothing is downloaded; "
                                 "put the trained state dict in 'weights'", file=f"model {spec.id}",
                                 where="architecture_kwargs")
            model = getattr(tvd, name)(num_classes=num_classes, **kwargs)
        else:
            raise StudyError(f"unknown architecture {name!r}; expected a torchvision.models.detection builder "
                             f"({', '.join(_torchvision_builders())}) or one of study.detectors.small_archs "
                             f"({', '.join(sorted(small)) or 'none installed'})",
                             file=f"model {spec.id}", where="architecture")
    except TypeError as e:
        raise StudyError(f"architecture {name!r} does not accept these architecture_kwargs: {e}",
                         file=f"model {spec.id}", where="architecture_kwargs") from None
    set_limits(model, score_threshold=spec.score_threshold, max_detections=spec.max_detections)
    return model


def set_limits(model, *, score_threshold: float, max_detections: int) -> None:
    """Set the score threshold and per-image cap on a torchvision-style detector, whatever its head."""
    roi = getattr(model, "roi_heads", None)
    if roi is not None and hasattr(roi, "detections_per_img"):  # Faster / Mask / Keypoint R-CNN
        roi.detections_per_img = int(max_detections)
        roi.score_thresh = float(score_threshold)
    elif hasattr(model, "detections_per_img"):  # RetinaNet, FCOS, SSD
        model.detections_per_img = int(max_detections)
        if hasattr(model, "score_thresh"):
            model.score_thresh = float(score_threshold)
        if hasattr(model, "topk_candidates"):
            model.topk_candidates = max(int(model.topk_candidates), int(max_detections))
    else:
        raise StudyError("the architecture is not a torchvision-style detector (no roi_heads.detections_per_img "
                         "nor detections_per_img): cannot lift the per-image cap", where="architecture")


def resolve_device(spec):
    import torch

    dev = torch.device(spec.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise StudyError(f"device {spec.device!r} asked for, but torch sees no CUDA device; use device: cpu",
                         file=f"model {spec.id}", where="device")
    return dev


def images_to_tensors(images: Sequence[np.ndarray], device) -> list:
    """RGB uint8 HWC arrays -> float CHW tensors in [0, 1] (torchvision's input convention)."""
    import torch

    out = []
    for im in images:
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 HxWx3 image, got {im.dtype} {im.shape}")
        # one contiguous float copy (a strided .float() of the permuted view is ~40x slower)
        t = torch.from_numpy(np.ascontiguousarray(im)).to(device).permute(2, 0, 1)
        t = t.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)
        out.append(t)
    return out


def outputs_to_detections(outputs, wanted_polygons: set[int]) -> list[Detections]:
    """torchvision output dicts (labels 1-based) -> :class:`Detections` (labels 0-based)."""
    dets = []
    for o in outputs:
        boxes = o["boxes"].detach().cpu().double().numpy()
        labels = o["labels"].detach().cpu().numpy().astype(np.int64) - 1
        scores = o["scores"].detach().cpu().double().numpy()
        polys = None
        if "masks" in o and wanted_polygons:
            masks = (o["masks"][:, 0] > 0.5).cpu().numpy()
            polys = masks_to_polygons(masks, labels, wanted_polygons)
        dets.append(Detections(boxes, scores, labels, polys))
    return dets


class TorchvisionDetector(PixelDetector):
    """A torchvision-style detection model in eval mode (see the module docstring)."""

    def __init__(self, model, spec, info: BackendInfo):
        super().__init__(spec, info)
        self.model = model
        self.device = resolve_device(spec)

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]:
        import torch

        def run(group):
            with torch.inference_mode():
                return outputs_to_detections(self.model(images_to_tensors(group, self.device)), self._polygons)

        return run_by_shape(images, run) if len(images) else []

    def forward_tensors(self, tensors):
        """The model's forward pass alone (for benchmarks)."""
        import torch

        with torch.inference_mode():
            return self.model(tensors)


def load(spec) -> TorchvisionDetector:
    """Build the architecture, load the verified state dict, move to the device, eval mode."""
    import torchvision

    path, digest = verified_file(spec, "weights", expected_sha256=spec.weights_sha256)
    state = load_state_dict(path, model_id=spec.id)
    model = build_model(spec)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise StudyError(f"the weights do not fit architecture {spec.architecture!r} with {len(spec.classes)} "
                         f"classes: {str(e).splitlines()[-1].strip()}", file=f"model {spec.id}", where="weights") from None
    if result.missing_keys or result.unexpected_keys:
        miss, unexp = result.missing_keys, result.unexpected_keys
        raise StudyError(
            f"the weights do not fit architecture {spec.architecture!r} with {len(spec.classes)} classes: "
            f"{len(miss)} missing keys (e.g. {miss[:3]}), {len(unexp)} unexpected keys (e.g. {unexp[:3]})",
            file=f"model {spec.id}", where="weights")
    det = TorchvisionDetector(model, spec, BackendInfo(
        backend="torchvision", backend_version=torchvision.__version__, weights=str(path), weights_sha256=digest,
        files={"weights": digest}, device=spec.device))
    model.to(det.device).eval()
    return det
