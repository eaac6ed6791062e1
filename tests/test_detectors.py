"""Detector backends: torchvision, TorchScript and ONNX agree; specs and checkpoints are checked.

The reference for the three-way agreement is torchvision's own eager model; the TorchScript
file is ``torch.jit.script`` of it and the ONNX file ``torch.onnx.export`` of it run by
onnxruntime, so the backends are checked against two independent runtimes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from study.detectors import Detections, load_detector  # noqa: E402
from study.detectors.helpers import load_state_dict  # noqa: E402
from study.errors import StudyError  # noqa: E402
from study.modelspec import load_model_spec  # noqa: E402

CLASSES = ["papule", "pustule"]
ARCH = "fasterrcnn_mobilenet_v3_large_320_fpn"
ARCH_KW = {"min_size": 128, "max_size": 160}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine OpenMP barriers make 2 threads slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def synthetic_images(n: int, *, seed: int = 0, shapes=((150, 200),)) -> list[np.ndarray]:
    """Skin-toned RGB images with coloured round 'lesions' (structure the detector can react to)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = shapes[i % len(shapes)]
        im = np.zeros((h, w, 3), np.uint8)
        im[:] = (200, 160, 140)
        for _ in range(25):
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            col = tuple(int(v) for v in rng.integers(0, 255, 3))
            cv2.circle(im, c, int(rng.integers(2, 12)), col, -1)
        out.append(cv2.GaussianBlur(im, (5, 5), 1.5))
    return out


def build_reference_model(images: list[np.ndarray]):
    """A randomly initialised torchvision detector whose BatchNorm statistics are calibrated on
    the images, so that its scores are spread out (no ties) like a trained model's."""
    from torchvision.models import detection

    torch.manual_seed(0)
    model = getattr(detection, ARCH)(weights=None, weights_backbone=None, num_classes=len(CLASSES) + 1, **ARCH_KW)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():  # box regression as small as a trained model's (Detectron2 initialises it at std 0.001)
        model.roi_heads.box_predictor.bbox_pred.weight.normal_(0, 0.001)
        model.roi_heads.box_predictor.bbox_pred.bias.zero_()
    model.eval()
    model.backbone.train()
    with torch.no_grad():
        x = [torch.from_numpy(im).permute(2, 0, 1).float() / 255 for im in images]
        model.backbone(model.transform(x)[0].tensors)
    return model.eval()


def reference_weights(tmp_path_factory) -> Path:
    """The reference model's state dict, built once per test session (shared by the test modules)."""
    path = tmp_path_factory.getbasetemp() / "reference-detector.pt"
    if not path.exists():
        images = synthetic_images(3, shapes=((128, 160), (128, 160), (64, 80)))
        torch.save(build_reference_model(images).state_dict(), path)
    return path


def write_spec(folder: Path, **fields) -> Path:
    path = folder / f"{fields['id']}.yaml"
    path.write_text(yaml.safe_dump(fields), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The same detector as a state dict, a TorchScript file and an ONNX file, with model specs."""
    d = tmp_path_factory.mktemp("models")
    images = synthetic_images(3, shapes=((128, 160), (128, 160), (64, 80)))
    (d / "w.pt").write_bytes(reference_weights(tmp_path_factory).read_bytes())
    common = dict(classes=CLASSES, score_threshold=0.05, max_detections=1000, batch_size=2)
    tv = write_spec(d, id="tv", backend="torchvision", architecture=ARCH, architecture_kwargs=ARCH_KW,
                    weights="w.pt", **common)
    # export the model exactly as the torchvision backend builds it (per-image cap lifted)
    det = load_detector(load_model_spec(tv))
    scripted = torch.jit.script(det.model)
    scripted.save(str(d / "m.ts"))
    x = [torch.from_numpy(images[0]).permute(2, 0, 1).float() / 255]
    torch.onnx.export(det.model, (x,), str(d / "m.onnx"), opset_version=17, dynamo=False,
                      input_names=["images"], output_names=["boxes", "labels", "scores"],
                      dynamic_axes={"images": [1, 2], "boxes": [0], "labels": [0], "scores": [0]})
    ts = write_spec(d, id="ts", backend="torchscript", file="m.ts", export_format="torchvision", **common)
    ox = write_spec(d, id="ox", backend="onnx", file="m.onnx", export_format="torchvision", **common)
    return {"dir": d, "images": images, "specs": {"torchvision": tv, "torchscript": ts, "onnx": ox}}


def match(a: Detections, b: Detections) -> tuple[float, float]:
    """One-to-one match of two detection sets (same labels); max box and score differences."""
    from scipy.optimize import linear_sum_assignment

    assert len(a) == len(b), (len(a), len(b))
    cost = np.abs(a.boxes[:, None, :] - b.boxes[None, :, :]).max(axis=2)
    cost += 1e6 * (a.labels[:, None] != b.labels[None, :])
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].max()), float(np.abs(a.scores[r] - b.scores[c]).max())


def test_torchvision_torchscript_onnx_give_the_same_boxes(exported):
    images = exported["images"]
    results = {name: load_detector(load_model_spec(p)).predict(images) for name, p in exported["specs"].items()}
    ref = results["torchvision"]
    assert sum(len(d) for d in ref) > 50  # the comparison is not vacuous
    for name in ("torchscript", "onnx"):
        for i, (a, b) in enumerate(zip(ref, results[name])):
            box_diff, score_diff = match(a, b)
            assert box_diff <= 1e-3, f"{name} image {i}: boxes differ by {box_diff} px"
            assert score_diff <= 1e-5, f"{name} image {i}: scores differ by {score_diff}"


def test_batched_prediction_equals_one_image_at_a_time_within_tolerance(exported):
    det = load_detector(load_model_spec(exported["specs"]["torchvision"]))
    images = exported["images"]
    together = det.predict(images)  # mixed sizes: grouped by shape inside
    alone = [det.predict([im])[0] for im in images]
    for a, b in zip(together, alone):
        box_diff, _ = match(a, b)
        assert box_diff <= 1e-3


def test_more_than_100_detections_per_image_are_kept(exported, tmp_path):
    """torchvision's default cap is 100; acne photos can carry hundreds of lesions."""
    spec = load_model_spec(exported["specs"]["torchvision"])
    det = load_detector(spec)
    assert det.model.roi_heads.detections_per_img == 1000
    spec0 = load_model_spec({**spec.model_dump(exclude_unset=True), "score_threshold": 0.0}, base_dir=spec.base_dir)
    n = [len(d) for d in load_detector(spec0).predict(exported["images"][:1])]
    assert n[0] > 100
    # a TorchScript file's own cap is replaced by the spec's
    ts = load_model_spec(exported["specs"]["torchscript"])
    ts = load_model_spec({**ts.model_dump(exclude_unset=True), "max_detections": 777}, base_dir=ts.base_dir)
    assert load_detector(ts).module.roi_heads.detections_per_img == 777


def test_weights_sha256_is_verified(exported):
    spec = load_model_spec(exported["specs"]["torchvision"])
    bad = {**spec.model_dump(exclude_unset=True), "weights_sha256": "0" * 64}
    with pytest.raises(StudyError, match="sha256"):
        load_detector(load_model_spec(bad, base_dir=spec.base_dir))


class _Evil:  # an object torch.save can only store as pickled code
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_checkpoint_needing_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": _Evil()}, path)
    with pytest.raises(StudyError, match="refusing to load .*pickled Python code"):
        load_state_dict(path)


def test_state_dict_wrapped_by_detectron2_checkpointer_is_unwrapped(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save({"model": {"w": torch.ones(2)}, "iteration": 5}, path)
    assert list(load_state_dict(path)) == ["w"]


# --------------------------------------------------------------------------- specs
def test_spec_lists_every_problem(tmp_path):
    p = write_spec(tmp_path, id="x", backend="torchvision", classes=["papule"], config="c.yaml", colour="red")
    with pytest.raises(StudyError) as e:
        load_model_spec(p)
    text = str(e.value)
    assert "colour" in text and "unknown key" in text


def test_backend_specific_keys_and_required_files(tmp_path):
    p = write_spec(tmp_path, id="x", backend="torchscript", classes=["papule"], file="nope.ts", config="c.yaml")
    with pytest.raises(StudyError, match="'config' is not used by backend 'torchscript'"):
        load_model_spec(p)
    p = write_spec(tmp_path, id="y", backend="torchscript", classes=["papule"], file="nope.ts")
    with pytest.raises(StudyError, match="file not found"):
        load_model_spec(p)


def test_unmapped_model_class_is_a_clear_error(exported):
    p = exported["specs"]["torchvision"]
    with pytest.raises(StudyError) as e:
        load_model_spec(p, protocol_classes=["comedone", "papule"])
    assert "'pustule' is not a protocol class" in str(e.value) and "class_map" in str(e.value)
    spec = load_model_spec({"id": "m", "spec": str(p), "class_map": {"pustule": "comedone"}},
                           protocol_classes=["comedone", "papule"])
    assert spec.mapped_classes() == ["papule", "comedone"]
    assert spec.output_classes() == ["comedone", "papule"]
    assert spec.base_dir == Path(p).parent.resolve()


def test_config_entry_may_not_contradict_the_spec_file(exported):
    p = exported["specs"]["torchvision"]
    with pytest.raises(StudyError, match="differs"):
        load_model_spec({"id": "m", "spec": str(p), "backend": "onnx"})


def test_detectron2_export_needs_its_resize_settings(tmp_path):
    (tmp_path / "m.ts").write_bytes(b"x")
    p = write_spec(tmp_path, id="d", backend="torchscript", classes=["papule"], file="m.ts", export_format="detectron2")
    with pytest.raises(StudyError, match="min_size and max_size"):
        load_model_spec(p)


def test_missing_detectron2_gives_an_install_hint(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_d2(name, *a, **k):
        if name == "detectron2" or name.startswith("detectron2."):
            raise ImportError("No module named 'detectron2'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_d2)
    (tmp_path / "cfg.yaml").write_text("MODEL: {}\n")
    torch.save({"w": torch.zeros(1)}, tmp_path / "m.pth")
    spec = load_model_spec(write_spec(tmp_path, id="d2", backend="detectron2", classes=["papule"], config="cfg.yaml",
                                      weights="m.pth"))
    with pytest.raises(StudyError, match="not on PyPI.*pip install"):
        load_detector(spec)


# --------------------------------------------------------------------------- precomputed
def test_precomputed_maps_images_classes_and_threshold(tmp_path):
    import pandas as pd

    results = [
        {"image_id": 7, "category_id": 1, "bbox": [10, 20, 5, 6], "score": 0.9},
        {"image_id": 7, "category_id": 2, "bbox": [1, 2, 3, 4], "score": 0.01},   # below threshold
        {"image_id": 8, "category_id": 2, "bbox": [0, 0, 2, 2], "score": 0.5,
         "segmentation": [[0, 0, 2, 0, 2, 2]]},
        {"image_id": 99, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.7},   # not in this cohort
    ]
    (tmp_path / "dt.json").write_text(json.dumps(results))
    (tmp_path / "gt.json").write_text(json.dumps({"images": [{"id": 7, "file_name": "a/one.jpg"},
                                                             {"id": 8, "file_name": "two.jpg"}]}))
    spec = load_model_spec(write_spec(tmp_path, id="v", backend="precomputed", classes=["papule", "pustule"],
                                      detections="dt.json", images="gt.json", score_threshold=0.05))
    det = load_detector(spec)
    cases = pd.DataFrame({"case_id": ["c1", "c2", "c3"], "image": ["a/one.jpg", "two.jpg", "three.jpg"],
                          "image_path": ["/x/a/one.jpg", "/x/two.jpg", "/x/three.jpg"]})
    out = det.predict_cases(cases)
    assert [len(d) for d in out] == [1, 1, 0]
    np.testing.assert_allclose(out[0].boxes, [[10, 20, 15, 26]])
    assert out[1].labels.tolist() == [1] and out[1].polygons == [[[0.0, 0.0, 2.0, 0.0, 2.0, 2.0]]]


def test_precomputed_unknown_category_and_bad_boxes_are_listed(tmp_path):
    import pandas as pd

    (tmp_path / "dt.json").write_text(json.dumps([
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, -1, 2], "score": 0.5},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 2]},
    ]))
    spec = load_model_spec(write_spec(tmp_path, id="v", backend="precomputed", classes=["papule"],
                                      detections="dt.json", images={"1": "c1"}))
    with pytest.raises(StudyError) as e:
        load_detector(spec)
    assert len(e.value.problems) == 2
    (tmp_path / "dt.json").write_text(json.dumps([{"image_id": 1, "category_id": 5, "bbox": [0, 0, 1, 2], "score": 1}]))
    with pytest.raises(StudyError, match="unknown category 5"):
        load_detector(spec).predict_cases(pd.DataFrame({"case_id": ["c1"]}))


# --------------------------------------------------------------------------- the protocol
def test_every_backend_has_every_member_of_the_protocol(exported, tmp_path):
    """classes, needs_pixels, info, predict and predict_cases on every backend; the member a
    backend does not use is a clear error, not a missing attribute."""
    import pandas as pd

    from study.detectors import BACKENDS, Detector, backend_class

    for name in BACKENDS:
        cls = backend_class(name)
        assert isinstance(cls.needs_pixels, bool), name
        assert callable(cls.predict) and callable(cls.predict_cases), name
        assert not getattr(cls, "__abstractmethods__", None), name
    for name, path in exported["specs"].items():
        det = load_detector(load_model_spec(path))
        assert isinstance(det, Detector) and det.needs_pixels and det.info.backend == name
        with pytest.raises(StudyError, match="from pixels"):
            det.predict_cases(pd.DataFrame({"case_id": ["c1"]}))
    (tmp_path / "dt.json").write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 2], "score": 1}]))
    spec = load_model_spec(write_spec(tmp_path, id="v", backend="precomputed", classes=["papule"],
                                      detections="dt.json", images={"1": "c1"}))
    det = load_detector(spec)
    assert isinstance(det, Detector) and not det.needs_pixels
    assert backend_class(spec.backend).needs_pixels is False
    with pytest.raises(StudyError, match="looked up by case"):
        det.predict(exported["images"])


def test_unreadable_weights_are_not_a_valid_checkpoint_and_never_advise_unsafe_loading(tmp_path):
    """Random bytes, a plain pickle and a truncated file are 'not a valid checkpoint'; a checkpoint whose
    pickle names code is refused as such; torch's advice to set weights_only=False is never passed on."""
    import os
    import pickle

    import torch

    from study.detectors.helpers import load_state_dict
    from study.errors import StudyError

    class Runs:
        def __reduce__(self):
            return (os.system, ("true",))

    (tmp_path / "random.pt").write_bytes(os.urandom(4096))
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps({"a": 1}))
    torch.save({"w": torch.zeros(3)}, tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    torch.save({"a": Runs()}, tmp_path / "code.pt")
    for name in ("random.pt", "plain.pkl", "truncated.pt"):
        with pytest.raises(StudyError) as e:
            load_state_dict(tmp_path / name, model_id="m")
        assert "is not a valid checkpoint" in str(e.value) and "weights_only" not in str(e.value), name
    with pytest.raises(StudyError) as e:
        load_state_dict(tmp_path / "code.pt", model_id="m")
    assert "needs pickled Python code (posix.system)" in str(e.value) and "weights_only" not in str(e.value)
    assert list(load_state_dict(tmp_path / "ok.pt", model_id="m")) == ["w"]
