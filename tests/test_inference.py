"""Sharded, resumable inference: stable shards, resume, face filtering, merge, kill-and-resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from study.errors import StudyError  # noqa: E402
from study.inference import iter_batches, merge_shards, predict_shard, shard_cases  # noqa: E402
from study.modelspec import load_model_spec  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_detectors import ARCH, ARCH_KW, CLASSES, reference_weights, synthetic_images, write_spec  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Six PNG images (two sizes), a manifest and a torchvision model spec."""
    d = tmp_path_factory.mktemp("cohort")
    images = synthetic_images(6, seed=3, shapes=((128, 160), (64, 80)))
    (d / "images").mkdir()
    rows = []
    for i, im in enumerate(images):
        name = f"images/case{i:02d}.png"
        cv2.imwrite(str(d / name), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
        rows.append({"case_id": f"case{i:02d}", "image": name, "image_path": str(d / name)})
    cases = pd.DataFrame(rows).iloc[::-1].reset_index(drop=True)  # manifest order != case_id order
    cases.drop(columns="image_path").to_csv(d / "manifest.csv", index=False)
    (d / "w.pt").write_bytes(reference_weights(tmp_path_factory).read_bytes())
    spec_path = write_spec(d, id="tv", backend="torchvision", architecture=ARCH, architecture_kwargs=ARCH_KW,
                           weights="w.pt", classes=CLASSES, score_threshold=0.2, batch_size=2)
    return {"dir": d, "cases": cases, "spec_path": spec_path, "images": images}


def test_shards_partition_the_cases_stably():
    cases = pd.DataFrame({"case_id": [f"c{i}" for i in range(11)]})
    shuffled = cases.sample(frac=1, random_state=1)
    parts = [shard_cases(cases, shard=k, n_shards=3)["case_id"].tolist() for k in range(3)]
    again = [shard_cases(shuffled, shard=k, n_shards=3)["case_id"].tolist() for k in range(3)]
    assert parts == again
    assert sorted(sum(parts, [])) == sorted(cases["case_id"]) and [len(p) for p in parts] == [3, 4, 4]
    with pytest.raises(StudyError):
        shard_cases(cases, shard=3, n_shards=3)


def test_iter_batches_keeps_order_and_one_shape_per_batch(cohort):
    paths = sorted(cohort["cases"]["image_path"])  # sizes alternate: 128x160, 64x80, ...
    paths = paths[0::2] + paths[1::2]  # three big, then three small
    seen = []
    for idx, ims in iter_batches(paths, batch_size=2, workers=2):
        assert len(ims) <= 2 and len({im.shape for im in ims}) == 1
        seen += idx
    assert seen == list(range(6))


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(StudyError, match="x.png"):
        list(iter_batches([str(bad)], batch_size=1))


def test_predict_shard_writes_a_table_and_resumes(cohort, tmp_path):
    spec = load_model_spec(cohort["spec_path"], protocol_classes=["comedone", "papule", "pustule"])
    out = tmp_path / "shard-0-of-2.parquet"
    s = predict_shard(spec, cohort["cases"], shard=0, n_shards=2, out=out, progress=False)
    df = pd.read_parquet(out)
    assert list(df.columns) == ["case_id", "class", "score", "x", "y", "w", "h", "segmentation"]
    assert s["n_images"] == 3 and s["n_detections"] == len(df) > 0 and not s["resumed"]
    assert set(df["case_id"]) <= {"case00", "case01", "case02"}
    assert df["score"].min() >= 0.2 and (df["w"] > 0).all()
    assert df["case_id"].is_monotonic_increasing
    mtime = out.stat().st_mtime_ns
    again = predict_shard(spec, cohort["cases"], shard=0, n_shards=2, out=out, progress=False)
    assert again["resumed"] and out.stat().st_mtime_ns == mtime
    changed = load_model_spec({**spec.model_dump(exclude_unset=True), "max_detections": 10}, base_dir=spec.base_dir)
    s3 = predict_shard(changed, cohort["cases"], shard=0, n_shards=2, out=out, progress=False)
    assert not s3["resumed"] and s3["n_detections"] <= 30 < s["n_detections"]


def test_face_filter_drops_detections_outside_the_face_and_counts_them(cohort, tmp_path):
    spec = load_model_spec(cohort["spec_path"])
    cases = cohort["cases"]
    full = predict_shard(spec, cases, shard=0, n_shards=1, out=tmp_path / "a.parquet", progress=False)
    df = pd.read_parquet(tmp_path / "a.parquet")
    faces = pd.DataFrame({"case_id": cases["case_id"], "face_x0": 0.0, "face_y0": 0.0, "face_x1": 50.0,
                          "face_y1": 1000.0})
    faces.loc[faces["case_id"] == "case05", ["face_x0", "face_y0", "face_x1", "face_y1"]] = np.nan  # no face found
    s = predict_shard(spec, cases, shard=0, n_shards=1, out=tmp_path / "b.parquet", face_boxes=faces,
                      face_filter=True, progress=False)
    kept = pd.read_parquet(tmp_path / "b.parquet")
    cx = df["x"] + df["w"] / 2
    expected_drop = int(((cx > 50) & (df["case_id"] != "case05")).sum())
    assert expected_drop > 0
    assert s["n_dropped_outside_face"] == expected_drop
    assert s["n_detections"] == full["n_detections"] - expected_drop == len(kept)
    assert s["n_cases_without_face_box"] == 1


def test_class_mapped_to_null_is_dropped_and_counted(cohort, tmp_path):
    spec = load_model_spec({"id": "tv", "spec": str(cohort["spec_path"]), "class_map": {"pustule": None}},
                           protocol_classes=["papule"])
    s = predict_shard(spec, cohort["cases"], shard=0, n_shards=1, out=tmp_path / "s.parquet", progress=False)
    df = pd.read_parquet(tmp_path / "s.parquet")
    assert set(df["class"]) <= {"papule"} and s["n_dropped_unmapped_class"] > 0


def test_merge_shards_with_and_without_ground_truth(cohort, tmp_path):
    spec = load_model_spec(cohort["spec_path"])
    paths = [tmp_path / f"shard-{k}-of-2.parquet" for k in range(2)]
    for k, p in enumerate(paths):
        predict_shard(spec, cohort["cases"], shard=k, n_shards=2, out=p, progress=False)
    gt = {"images": [{"id": 100 + i, "file_name": f"x{i}.png", "case_id": f"case{i:02d}"} for i in range(6)],
          "categories": [{"id": 5, "name": "pustule"}, {"id": 9, "name": "papule"}], "annotations": []}
    meta = merge_shards(paths[::-1], spec=spec, ground_truth=gt, out_table=tmp_path / "d.parquet",
                        out_coco_json=tmp_path / "d.json", out_meta=tmp_path / "d.meta.json")
    table = pd.read_parquet(tmp_path / "d.parquet")
    results = json.loads((tmp_path / "d.json").read_text())
    assert len(results) == len(table) == meta.n_detections and meta.n_images == 6
    assert (table["image_id"] == table["case_id"].str[-2:].astype(int) + 100).all()
    assert {r["category_id"] for r in results} <= {5, 9}
    r0, t0 = results[0], table.iloc[0]
    assert r0["bbox"] == [t0["x"], t0["y"], t0["w"], t0["h"]] and r0["score"] == t0["score"]
    on_disk = json.loads((tmp_path / "d.meta.json").read_text())
    assert on_disk["weights_sha256"] == meta.weights_sha256 and on_disk["backend"] == "torchvision"
    assert on_disk["backend_version"] and on_disk["torch_version"] == torch.__version__
    # without ground truth: image ids follow the manifest order (case05 first in this manifest)
    merge_shards(paths, spec=spec, ground_truth=None, out_table=tmp_path / "e.parquet",
                 out_coco_json=tmp_path / "e.json", out_meta=tmp_path / "e.meta.json")
    e = pd.read_parquet(tmp_path / "e.parquet")
    ids = dict(zip(e["case_id"], e["image_id"]))
    assert all(ids[c] == 6 - int(c[-2:]) for c in ids)
    with pytest.raises(StudyError, match="complete run"):
        merge_shards(paths[:1], spec=spec, ground_truth=None, out_table=tmp_path / "f.parquet",
                     out_coco_json=tmp_path / "f.json", out_meta=tmp_path / "f.meta.json")


def test_merge_streams_the_coco_json_and_reads_a_streamed_ground_truth(cohort, tmp_path, monkeypatch):
    """The COCO results file is written in blocks: its bytes are json.dumps of the whole list (the reference,
    compact separators), whatever the block size; a streamed ground truth file gives the same outputs as the dict."""
    import study.inference as inf
    from study.coco_stream import streamed_coco

    spec = load_model_spec(cohort["spec_path"])
    paths = [tmp_path / f"shard-{k}-of-2.parquet" for k in range(2)]
    for k, p in enumerate(paths):
        predict_shard(spec, cohort["cases"], shard=k, n_shards=2, out=p, progress=False)
    gt = {"images": [{"id": 100 + i, "file_name": f"x{i}.png", "case_id": f"case{i:02d}"} for i in range(6)],
          "categories": [{"id": 5, "name": "pustule"}, {"id": 9, "name": "papule"}],
          "annotations": [{"id": 1, "image_id": 100, "category_id": 5, "bbox": [1, 2, 3, 4]}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt), encoding="utf-8")
    outputs = {}
    for name, block, truth in (("dict", 4096, gt), ("streamed", 2, streamed_coco(tmp_path / "gt.json",
                                                                                  image_keys=("id", "case_id"),
                                                                                  annotation_keys=()))):
        monkeypatch.setattr(inf, "_COCO_BLOCK", block)
        merge_shards(paths, spec=spec, ground_truth=truth, out_table=tmp_path / f"{name}.parquet",
                     out_coco_json=tmp_path / f"{name}.json", out_meta=tmp_path / f"{name}.meta.json")
        outputs[name] = (tmp_path / f"{name}.json").read_bytes()
        text = outputs[name].decode("utf-8")
        if block == 2:
            assert len(json.loads(text)) > 4  # several blocks written
        assert text == json.dumps(json.loads(text), separators=(",", ":"), allow_nan=False) + "\n"
    assert outputs["dict"] == outputs["streamed"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "dict.parquet"), pd.read_parquet(tmp_path / "streamed.parquet"))


@pytest.mark.slow
def test_killed_predict_run_resumes_to_identical_detections(cohort, tmp_path):
    """Kill `study predict` (SIGKILL) after some parts are done; the re-run equals an uninterrupted run."""
    from study.cli import main

    d = cohort["dir"]
    args = ["predict", "--model", str(cohort["spec_path"]), "--manifest", str(d / "manifest.csv"),
            "--part-size", "1", "--threads", "1", "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "ref" / "dt.json")]) == 0

    out = tmp_path / "run" / "dt.json"
    parts = out.with_name("dt.json.parts")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "study"] + args + ["--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.is_dir() and len(list(parts.glob("part-*.parquet"))) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(parts.glob("part-*.parquet")))
    assert 2 <= done < 6 and not out.exists()

    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{done} of 6 parts resumed" in r.stderr
    assert out.read_bytes() == (tmp_path / "ref" / "dt.json").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(out.with_name("dt.parquet")),
                                  pd.read_parquet(tmp_path / "ref" / "dt.parquet"))
    assert not parts.exists()


def test_precomputed_vendor_results_become_a_shard_table(tmp_path):
    """A vendor's COCO results (image ids -> file names via its own GT) through the same machinery."""
    results = [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.8},
               {"image_id": 2, "category_id": 2, "bbox": [5, 6, 7, 8], "score": 0.6,
                "segmentation": [[5, 6, 12, 6, 12, 14]]},
               {"image_id": 2, "category_id": 1, "bbox": [0, 0, 2, 2], "score": 0.9}]
    (tmp_path / "vendor.json").write_text(json.dumps(results))
    (tmp_path / "vendor_gt.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "b.jpg"},
                                                                    {"id": 2, "file_name": "a.jpg"}]}))
    spec = load_model_spec(write_spec(tmp_path, id="vendor", backend="precomputed", classes=["spot", "bump"],
                                      class_map={"spot": "papule", "bump": "pustule"}, detections="vendor.json",
                                      images="vendor_gt.json"), protocol_classes=["papule", "pustule"])
    cases = pd.DataFrame({"case_id": ["k1", "k2"], "image": ["a.jpg", "b.jpg"]})
    s = predict_shard(spec, cases, shard=0, n_shards=1, out=tmp_path / "v.parquet", progress=False)
    df = pd.read_parquet(tmp_path / "v.parquet")
    assert s["n_detections"] == 3 and s["backend"]["backend"] == "precomputed"
    assert df[["case_id", "class", "score"]].values.tolist() == [["k1", "papule", 0.9], ["k1", "pustule", 0.6],
                                                                  ["k2", "papule", 0.8]]
    assert df.iloc[1][["x", "y", "w", "h"]].tolist() == [5, 6, 7, 8]
    merge_shards([tmp_path / "v.parquet"], spec=spec, ground_truth=None, out_table=tmp_path / "m.parquet",
                 out_coco_json=tmp_path / "m.json", out_meta=tmp_path / "m.meta.json")
    coco = json.loads((tmp_path / "m.json").read_text())
    assert [r.get("segmentation") for r in coco] == [None, [[5.0, 6.0, 12.0, 6.0, 12.0, 14.0]], None]
    assert [r["image_id"] for r in coco] == [1, 1, 2] and [r["category_id"] for r in coco] == [1, 2, 1]


def test_exactly_100_detections_per_image_raises_a_warning(tmp_path):
    """COCO's default cap of 100 is a silent under-count on acne photos; 100 exactly is flagged."""
    results = [{"image_id": 1, "category_id": 1, "bbox": [i, i, 2, 2], "score": 0.5 + i / 1000} for i in range(100)]
    (tmp_path / "dt.json").write_text(json.dumps(results))
    spec = load_model_spec(write_spec(tmp_path, id="v", backend="precomputed", classes=["papule"],
                                      detections="dt.json", images={"1": "k1"}))
    s = predict_shard(spec, pd.DataFrame({"case_id": ["k1", "k2"]}), shard=0, n_shards=1,
                      out=tmp_path / "v.parquet", progress=False)
    assert s["n_images_with_exactly_100"] == 1 and "capped at 100" in s["warnings"][0]


def test_predict_run_options_are_checked_by_their_types(cohort, tmp_path, run_cli):
    """--batch-size, --workers, --part-size and --threads below 1 are user errors naming the flag."""
    d = cohort["dir"]
    rc, _, err = run_cli("predict", "--model", cohort["spec_path"], "--manifest", d / "manifest.csv",
                         "--out", tmp_path / "dt.json", "--part-size", "0", "--workers", "-1")
    assert rc == 2 and "--part-size" in err and "--workers" in err
    assert not (tmp_path / "dt.json").exists()
