"""The committed demo detector (models/demo/): architecture, spec, weights, model card, accuracy.

The accuracy check runs the committed weights on a freshly synthesised cohort the model
never saw (seed 4242) and scores it with pycocotools (an independent AP implementation).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "models" / "demo"
CLASSES = ["comedone", "papule", "pustule", "nodule", "cyst", "scar"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: several times faster than two on a shared, loaded 2-core machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load((DEMO / "model.yaml").read_text())


@pytest.fixture(scope="module")
def metrics() -> dict:
    return json.loads((DEMO / "metrics.json").read_text())


@pytest.fixture(scope="module")
def model(spec):
    import torch

    from study.detectors.small_archs import ARCHITECTURES

    m = ARCHITECTURES[spec["architecture"]](num_classes=len(spec["classes"]) + 1, **spec["architecture_kwargs"])
    state = torch.load(DEMO / spec["weights"], map_location="cpu", weights_only=True)
    m.load_state_dict(state, strict=True)
    return m.eval()


def test_architecture_contract():
    import torch

    from study.detectors.small_archs import ARCHITECTURES

    torch.manual_seed(0)
    m = ARCHITECTURES["acne_small_frcnn"](num_classes=7).eval()
    assert m.roi_heads.detections_per_img == 1000
    assert m.transform.min_size == (512,) and m.transform.max_size == 512
    with torch.inference_mode():
        out = m([torch.rand(3, 512, 512), torch.rand(3, 300, 400)])
    assert len(out) == 2
    for o in out:
        assert set(o) == {"boxes", "labels", "scores"}
        assert o["boxes"].shape[1] == 4
        if len(o["labels"]):
            assert int(o["labels"].min()) >= 1 and int(o["labels"].max()) <= 6


def test_spec_format(spec):
    assert spec["id"] == "demo-frcnn" and spec["backend"] == "torchvision"
    assert spec["architecture"] == "acne_small_frcnn" and spec["architecture_kwargs"] == {}
    assert spec["classes"] == CLASSES and spec["class_map"] == {}
    assert spec["device"] == "cpu" and spec["max_detections"] == 1000
    assert 0 < spec["score_threshold"] < 1 and spec["batch_size"] >= 1


def test_weights_file_hash_and_size(spec, metrics):
    from study.io import sha256_file

    w = DEMO / spec["weights"]
    assert w.stat().st_size < 25 * 2**20
    sha = sha256_file(w)
    assert spec["weights_sha256"] == sha == metrics["weights_sha256"]
    assert metrics["weights_bytes"] == w.stat().st_size


def test_model_card_quotes_the_run(metrics):
    card = (DEMO / "MODEL_CARD.md").read_text()
    assert metrics["weights_sha256"] in card
    assert f"{metrics['ap50_any_lesion']:.3f}" in card
    for cls, ap in metrics["ap50_per_class"].items():
        assert re.search(rf"{cls}\s*\|\s*{ap:.3f}", card), cls
    assert metrics["ap50_any_lesion"] >= 0.5


def test_weights_load_into_the_architecture(model):
    n = sum(p.numel() for p in model.parameters())
    assert n > 100_000


def test_accuracy_on_an_unseen_cohort(model, tmp_path):
    """AP50 for "any lesion" >= 0.5 on 8 fresh synthetic photos (pycocotools, maxDets 1000)."""
    import contextlib
    import io

    import cv2
    import torch
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from study.synth import make_cohort

    make_cohort(tmp_path, cases=8, seed=4242, exclusion_rate=0.0)
    gt = json.loads((tmp_path / "annotations.json").read_text())
    dets = []
    with torch.inference_mode():
        for im in gt["images"]:
            rgb = cv2.imread(str(tmp_path / "images" / im["file_name"]))[..., ::-1].copy()
            o = model([torch.from_numpy(rgb).permute(2, 0, 1).float() / 255])[0]
            for b, s in zip(o["boxes"].tolist(), o["scores"].tolist()):
                if s >= 0.05:
                    dets.append({"image_id": im["id"], "category_id": 1, "score": s,
                                 "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]})
    gt["categories"] = [{"id": 1, "name": "lesion"}]
    for a in gt["annotations"]:
        a["category_id"] = 1
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt
        cg.createIndex()
        ev = COCOeval(cg, cg.loadRes(dets), "bbox")
        ev.params.maxDets = [1, 100, 1000]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[1] >= 0.5, ev.stats[1]
    assert len(gt["annotations"]) > 20 and np.isfinite(ev.stats[1])
