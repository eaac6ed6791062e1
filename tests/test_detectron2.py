"""The detectron2 backend equals detectron2's own ``DefaultPredictor``; a tracing export agrees.

Skipped when detectron2 is not installed (it is not on PyPI; see the README's
"Detectron2 backend" section for installing it). The model is a small Mask R-CNN built from
a config with random weights (nothing downloaded), saved with detectron2's
``DetectionCheckpointer``; the reference is ``detectron2.engine.DefaultPredictor`` on the
same config, weights and images.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

pytest.importorskip("detectron2", reason="detectron2 is not installed (it is not on PyPI: install it from its "
                    "repository, see the README's 'Detectron2 backend'); the detectron2 backend is untested here")
torch = pytest.importorskip("torch")

from study.detectors import load_detector  # noqa: E402
from study.modelspec import load_model_spec  # noqa: E402

pytestmark = pytest.mark.detectron2

CLASSES = ["papule", "cyst"]


def _images() -> list[np.ndarray]:
    import cv2

    rng = np.random.default_rng(5)
    out = []
    for h, w in ((120, 150), (120, 150), (100, 90)):
        im = np.zeros((h, w, 3), np.uint8)
        im[:] = (200, 160, 140)
        for _ in range(20):
            col = tuple(int(v) for v in rng.integers(0, 255, 3))
            cv2.circle(im, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(3, 14)), col, -1)
        out.append(cv2.GaussianBlur(im, (5, 5), 1.5))
    return out


@pytest.fixture(scope="module")
def d2_model(tmp_path_factory):
    """A small random-weight Mask R-CNN (ResNet-18 FPN) config + checkpoint, and its model spec."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("d2")
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
    cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.OUT_CHANNELS = 64
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[16], [32], [64], [128], [256]]
    cfg.MODEL.RPN.IN_FEATURES = ["p2", "p3", "p4", "p5", "p6"]
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 300
    cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(CLASSES)
    cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
    cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 2
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 128
    cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
    cfg.MODEL.MASK_ON = True
    cfg.MODEL.ROI_MASK_HEAD.NAME = "MaskRCNNConvUpsampleHead"
    cfg.MODEL.ROI_MASK_HEAD.NUM_CONV = 1
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 32
    cfg.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 14
    cfg.INPUT.MIN_SIZE_TEST = 128
    cfg.INPUT.MAX_SIZE_TEST = 160
    cfg.INPUT.FORMAT = "BGR"
    cfg.MODEL.WEIGHTS = ""
    (d / "cfg.yaml").write_text(cfg.dump(), encoding="utf-8")
    torch.manual_seed(0)
    model = build_model(cfg)
    DetectionCheckpointer(model, save_dir=str(d)).save("model_final")
    spec = {"id": "d2", "backend": "detectron2", "config": "cfg.yaml", "weights": "model_final.pth",
            "classes": CLASSES, "score_threshold": 0.05, "max_detections": 1000, "batch_size": 2,
            "polygon_classes": ["cyst"]}
    (d / "model.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return d


def _match(boxes_a, labels_a, boxes_b, labels_b) -> float:
    """Largest box difference after a one-to-one matching (tied scores may swap rows)."""
    from scipy.optimize import linear_sum_assignment

    assert len(boxes_a) == len(boxes_b)
    cost = np.abs(boxes_a[:, None, :] - boxes_b[None, :, :]).max(axis=2) + 1e6 * (labels_a[:, None] != labels_b[None, :])
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].max()) if len(r) else 0.0


def _reference(d2_model, images):
    """detectron2's own DefaultPredictor (BGR input, as its API expects) on the backend's config."""
    from detectron2.engine import DefaultPredictor

    from study.detectors.detectron2_backend import build_cfg

    cfg = build_cfg(load_model_spec(d2_model / "model.yaml"))
    assert cfg.TEST.DETECTIONS_PER_IMAGE == 1000
    predictor = DefaultPredictor(cfg)
    return [predictor(np.ascontiguousarray(im[:, :, ::-1]))["instances"].to("cpu") for im in images]


def test_detectron2_backend_equals_default_predictor(d2_model):
    images = _images()
    ref = _reference(d2_model, images)
    det = load_detector(load_model_spec(d2_model / "model.yaml"))
    assert det.info.backend_version.startswith("detectron2 ")
    ours = [det.predict([im])[0] for im in images]
    assert sum(len(r) for r in ref) > 10
    for r, o in zip(ref, ours):
        np.testing.assert_array_equal(o.boxes, r.pred_boxes.tensor.double().numpy())
        np.testing.assert_array_equal(o.scores, r.scores.double().numpy())
        np.testing.assert_array_equal(o.labels, r.pred_classes.numpy())
        cyst = o.labels == CLASSES.index("cyst")
        assert o.polygons is not None
        assert all((p is not None) == bool(c) for p, c in zip(o.polygons, cyst))
    # batched (same-size images share a forward pass): equal within float tolerance
    batched = det.predict(images)
    for r, o in zip(ref, batched):
        assert _match(o.boxes, o.labels, r.pred_boxes.tensor.double().numpy(), r.pred_classes.numpy()) <= 1e-3


def test_tracing_export_through_torchscript_backend_gives_the_same_boxes(d2_model):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.export import TracingAdapter
    from detectron2.modeling import build_model

    from study.detectors.detectron2_backend import build_cfg
    from study.detectors.torchscript_backend import d2_preprocess

    images = _images()
    spec = load_model_spec(d2_model / "model.yaml")
    cfg = build_cfg(spec)
    model = build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    model.eval()
    # as detectron2's tools/deploy/export_model.py --export-method tracing does
    x = torch.from_numpy(d2_preprocess(images[0], input_format="BGR", min_size=128, max_size=160))

    def inference(model, inputs):
        inst = model.inference(inputs, do_postprocess=False)[0]
        return [{"instances": inst}]

    adapter = TracingAdapter(model, [{"image": x}], inference)
    with torch.no_grad():
        traced = torch.jit.trace(adapter, adapter.flattened_inputs)
    traced.save(str(d2_model / "model.ts"))
    ts_spec = {"id": "d2ts", "backend": "torchscript", "file": "model.ts", "export_format": "detectron2",
               "input_format": "BGR", "min_size": 128, "max_size": 160, "classes": CLASSES,
               "score_threshold": 0.05, "max_detections": 1000, "polygon_classes": ["cyst"]}
    (d2_model / "ts.yaml").write_text(yaml.safe_dump(ts_spec), encoding="utf-8")
    ours = load_detector(load_model_spec(d2_model / "ts.yaml")).predict(images)
    ref = _reference(d2_model, images)
    for r, o in zip(ref, ours):
        assert len(o) == len(r)
        np.testing.assert_allclose(o.boxes, r.pred_boxes.tensor.double().numpy(), atol=1e-3)
        np.testing.assert_allclose(o.scores, r.scores.double().numpy(), atol=1e-5)
        np.testing.assert_array_equal(o.labels, r.pred_classes.numpy())
