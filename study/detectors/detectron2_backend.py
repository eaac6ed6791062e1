"""``detectron2`` backend: a Detectron2 (yacs) config plus weights, through detectron2's public API.

Preprocessing equals ``detectron2.engine.DefaultPredictor``: the image is given to the model
in the config's ``INPUT.FORMAT`` (BGR by default; our images arrive RGB), resized with
``T.ResizeShortestEdge([MIN_SIZE_TEST, MIN_SIZE_TEST], MAX_SIZE_TEST)``, as float32 CHW,
with ``height``/``width`` of the original so that boxes (and ``pred_masks``) come back in
original pixels. ``TEST.DETECTIONS_PER_IMAGE`` is the spec's ``max_detections`` and the
heads' test score thresholds its ``score_threshold``. Class ``i`` is ``classes[i]``.

Weights are first opened with ``torch.load(weights_only=True)``: a checkpoint needing pickled
code, and Detectron2's pickle ``.pkl`` format, are refused. detectron2 is imported only
here; without it the error says how to install it.
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

INSTALL_HINT = (
    "the detectron2 backend needs detectron2, which is not on PyPI. Install it from its "
    "repository into this environment, e.g. "
    "pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git' "
    "(a CPU build: FORCE_CUDA=0; see detectron2's INSTALL.md), or export the model to "
    "TorchScript/ONNX and use backend: torchscript / onnx"
)


def _import_detectron2():
    try:
        import detectron2  # noqa: F401
        from detectron2.checkpoint import DetectionCheckpointer
        from detectron2.config import get_cfg
        from detectron2.data import transforms as T
        from detectron2.modeling import build_model
    except ImportError as e:
        raise StudyError(f"{INSTALL_HINT} (import failed: {e})", where="backend") from None
    return detectron2, get_cfg, build_model, DetectionCheckpointer, T


def check_config_file(path, *, model_id: str = "", _seen: tuple = ()) -> None:
    """Refuse a Detectron2 config that YAML's safe loader would not read, with its ``_BASE_`` chain.

    Detectron2's ``CfgNode.merge_from_file`` falls back to ``yaml.unsafe_load`` by default
    (``allow_unsafe=True``), which runs code named by tags such as ``!!python/object/apply``.
    We check every file of the chain with ``yaml.safe_load`` first (so ``study check`` refuses
    it without detectron2 installed) and merge with ``allow_unsafe=False`` too. ``_BASE_``
    must be a local file: no URLs (nothing is downloaded at run time).
    """
    from pathlib import Path

    import yaml

    path = Path(path)
    where = {"file": f"model {model_id}", "where": "config"}
    if path in _seen:
        raise StudyError(f"Detectron2 config {path}: _BASE_ chain loops back to itself", **where)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudyError(f"Detectron2 config not found: {path}", **where) from None
    except yaml.constructor.ConstructorError as e:
        raise StudyError(f"refusing Detectron2 config {path}: it uses a YAML tag that only an unsafe loader "
                         f"accepts ({str(e.problem or e).strip()}), which could run code; use plain YAML", **where) from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise StudyError(f"Detectron2 config {path} is not valid YAML: {e}", **where) from None
    base = data.get("_BASE_") if isinstance(data, dict) else None
    if base is not None:
        if not isinstance(base, str) or "://" in base:
            raise StudyError(f"Detectron2 config {path}: _BASE_ {base!r} must be a local file path "
                             "(nothing is downloaded at run time)", **where)
        b = Path(base).expanduser()
        check_config_file(b if b.is_absolute() else path.parent / b, model_id=model_id, _seen=(*_seen, path))


def _refuse_unsafe_config(spec, cfg_path) -> None:
    if cfg_path.suffix == ".py":
        raise StudyError("LazyConfig (.py) Detectron2 configs are not supported (they are Python code); give a "
                         "yacs .yaml config", file=f"model {spec.id}", where="config")
    check_config_file(cfg_path, model_id=spec.id)


def build_cfg(spec):
    """The Detectron2 ``CfgNode`` for a spec: its config file, weights, device, caps and thresholds.

    Exposed so that a test (or a user) can build detectron2's own ``DefaultPredictor`` on
    exactly the same configuration.
    """
    cfg_path = spec.path(spec.config)
    _refuse_unsafe_config(spec, cfg_path)
    _, get_cfg, _, _, _ = _import_detectron2()
    cfg = get_cfg()
    try:
        cfg.merge_from_file(str(cfg_path), allow_unsafe=False)
    except Exception as e:  # yacs raises KeyError/AssertionError on unknown keys
        raise StudyError(f"cannot merge Detectron2 config {cfg_path}: {type(e).__name__}: {e}",
                         file=f"model {spec.id}", where="config") from None
    cfg.MODEL.WEIGHTS = str(spec.path(spec.weights))
    cfg.MODEL.DEVICE = spec.device
    cfg.TEST.DETECTIONS_PER_IMAGE = int(spec.max_detections)
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = float(spec.score_threshold)
    cfg.MODEL.RETINANET.SCORE_THRESH_TEST = float(spec.score_threshold)
    arch = cfg.MODEL.META_ARCHITECTURE
    n = cfg.MODEL.RETINANET.NUM_CLASSES if arch == "RetinaNet" else cfg.MODEL.ROI_HEADS.NUM_CLASSES
    if int(n) != len(spec.classes):
        raise StudyError(f"the config's {'RETINANET' if arch == 'RetinaNet' else 'ROI_HEADS'}.NUM_CLASSES is {n}, "
                         f"but the spec lists {len(spec.classes)} classes {spec.classes}",
                         file=f"model {spec.id}", where="classes")
    if cfg.INPUT.FORMAT not in ("RGB", "BGR"):
        raise StudyError(f"INPUT.FORMAT {cfg.INPUT.FORMAT!r} is not RGB or BGR", file=f"model {spec.id}", where="config")
    cfg.freeze()
    return cfg


class Detectron2Detector(PixelDetector):
    """A Detectron2 model with ``DefaultPredictor``'s preprocessing, batched."""

    def __init__(self, model, cfg, spec, info: BackendInfo, T):
        super().__init__(spec, info)
        self.model = model
        self.cfg = cfg
        self.input_format = cfg.INPUT.FORMAT
        self.aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST)

    def _inputs(self, images: Sequence[np.ndarray]) -> list[dict]:
        import torch

        inputs = []
        for im in images:
            if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
                raise ValueError(f"expected an RGB uint8 HxWx3 image, got {im.dtype} {im.shape}")
            x = im if self.input_format == "RGB" else np.ascontiguousarray(im[:, :, ::-1])
            h, w = x.shape[:2]
            x = self.aug.get_transform(x).apply_image(x)
            t = torch.as_tensor(x.astype("float32").transpose(2, 0, 1)).to(self.cfg.MODEL.DEVICE)
            inputs.append({"image": t, "height": h, "width": w})
        return inputs

    def predict(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Batched ``DefaultPredictor``: one forward pass per group of same-size images."""
        return run_by_shape(images, self._predict) if len(images) else []

    def _predict(self, images: Sequence[np.ndarray]) -> list[Detections]:
        import torch

        with torch.no_grad():
            outputs = self.model(self._inputs(images))
        dets = []
        for o in outputs:
            inst = o["instances"].to("cpu")
            boxes = inst.pred_boxes.tensor.double().numpy()
            scores = inst.scores.double().numpy()
            labels = inst.pred_classes.numpy().astype(np.int64)
            polys = None
            if inst.has("pred_masks") and self._polygons:
                polys = masks_to_polygons(inst.pred_masks.numpy(), labels, self._polygons)
            d = Detections(boxes, scores, labels, polys)
            dets.append(d.select(np.flatnonzero(d.scores >= self.spec.score_threshold)[: self.spec.max_detections]))
        return dets


def load(spec) -> Detectron2Detector:
    """Build the model from the config and load the (verified, pickle-free) weights."""
    cfg_path, cfg_digest = verified_file(spec, "config")
    _refuse_unsafe_config(spec, cfg_path)  # before detectron2 is imported: `study check` refuses it anyway
    detectron2, _, build_model, DetectionCheckpointer, T = _import_detectron2()
    path, digest = verified_file(spec, "weights", expected_sha256=spec.weights_sha256)
    if path.suffix == ".pkl":
        raise StudyError("Detectron2 .pkl weights are Python pickles and are refused; convert them to a .pth "
                         "state dict (torch.save({'model': model.state_dict()}, 'model.pth')) first",
                         file=f"model {spec.id}", where="weights")
    load_state_dict(path, model_id=spec.id)  # refuses a file that needs pickled code
    cfg = build_cfg(spec)
    if cfg.MODEL.DEVICE.startswith("cuda"):
        from study.detectors.torchvision_backend import resolve_device

        resolve_device(spec)
    model = build_model(cfg)
    model.eval()
    DetectionCheckpointer(model).load(str(path))
    return Detectron2Detector(model, cfg, spec, BackendInfo(
        backend="detectron2", backend_version=f"detectron2 {detectron2.__version__}", weights=str(path),
        weights_sha256=digest, files={"weights": digest, "config": cfg_digest}, device=spec.device), T)
