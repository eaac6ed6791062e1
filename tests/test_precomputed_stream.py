"""A precomputed model's detections file is streamed, never held whole (issue 16): a predict
shard keeps only its own cases' detections, with the same detections as reading the list."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from study.detectors import load_detector
from study.detectors.precomputed import PrecomputedDetector
from study.errors import StudyError
from study.modelspec import load_model_spec


def _spec(folder: Path, **fields) -> Path:
    path = folder / "v.yaml"
    path.write_text(yaml.safe_dump({"id": "v", "backend": "precomputed", "classes": ["papule", "pustule"],
                                    "detections": "dt.json", **fields}), encoding="utf-8")
    return path


def _detections(n_cases: int, per_case: int) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"image_id": i, "category_id": int(rng.integers(1, 3)), "score": round(float(rng.random()), 4),
             "bbox": [float(x) for x in rng.integers(0, 500, 2)] + [10.0, 12.0],
             "segmentation": [[float(x) for x in rng.integers(0, 500, 16)]]}
            for i in range(n_cases) for _ in range(per_case)]


def test_a_shard_holds_only_its_own_cases_detections(tmp_path):
    n_cases = 400
    dt = _detections(n_cases, 25)
    (tmp_path / "dt.json").write_text(json.dumps(dt), encoding="utf-8")
    spec = load_model_spec(_spec(tmp_path, images={str(i): f"c{i}" for i in range(n_cases)}, score_threshold=0.0))
    shard = pd.DataFrame({"case_id": ["c3", "c250"]})

    tracemalloc.start()
    try:
        with open(tmp_path / "dt.json", encoding="utf-8") as f:
            json.load(f)  # what every shard held before: the whole list
        _, whole = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        det = load_detector(spec)
        got = det.predict_cases(shard)
        _, streamed = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert streamed < whole / 4, f"streamed peak {streamed / 1e6:.1f} MB, whole list {whole / 1e6:.1f} MB"

    in_memory = PrecomputedDetector(dt, spec, det.info, "dt.json").predict_cases(shard)
    assert [len(d) for d in got] == [25, 25]
    for a, b in zip(got, in_memory):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.labels, b.labels)
        assert a.polygons == b.polygons


@pytest.mark.parametrize(("text", "message"), [
    ('{"image_id": 1}', "must be a list"),
    ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}, {"image_id": ', "invalid JSON"),
    ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": NaN}]', "invalid JSON"),
    ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 0.5}, 7]', r"\[0\]\.bbox"),
])
def test_bad_detection_files_are_named_errors_at_load(tmp_path, text, message):
    (tmp_path / "dt.json").write_text(text, encoding="utf-8")
    with pytest.raises(StudyError, match=message) as e:
        load_detector(load_model_spec(_spec(tmp_path, images={"1": "c1"})))
    assert all(p.file.endswith("dt.json") for p in e.value.problems)
