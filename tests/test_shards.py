"""Sharded intake (image probing) and quality gate equal the one-process steps, row for row."""

from __future__ import annotations

import pandas as pd
import pytest

from study import steps
from study.errors import StudyError
from study.shards import merge_shard_tables, shard_bounds
from tests.conftest import REPO_ROOT

PROTOCOL = str(REPO_ROOT / "protocols" / "chinese-2019.yaml")


def test_shard_bounds_partition_rows():
    for n in (0, 1, 7, 100):
        for k in (1, 3, 8):
            bounds = [shard_bounds(n, shard=s, n_shards=k) for s in range(k)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    with pytest.raises(StudyError):
        shard_bounds(5, shard=3, n_shards=3)


def test_merge_refuses_shards_that_do_not_cover_the_table(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pd.DataFrame({"case_id": ["x", "y"], "v": [1, 2]}).to_parquet(a)
    pd.DataFrame({"case_id": ["z"], "v": [3]}).to_parquet(b)
    merged = merge_shard_tables([b, a], key="case_id", order=["x", "y", "z"], what="quality")
    assert merged["case_id"].tolist() == ["x", "y", "z"] and merged["v"].tolist() == [1, 2, 3]
    with pytest.raises(StudyError, match="in no shard"):
        merge_shard_tables([a], key="case_id", order=["x", "y", "z"], what="quality")
    with pytest.raises(StudyError, match="exactly once"):
        merge_shard_tables([a, a, b], key="case_id", order=["x", "y", "z"], what="quality")


def test_sharded_intake_and_quality_equal_the_single_process_steps(tmp_path):
    from study.synth import make_cohort

    cohort = tmp_path / "cohort"
    make_cohort(cohort, cases=10, seed=5, image_size=256, workers=1)
    (cohort / "images" / "C00003.jpg").write_bytes(b"")  # one undecodable image
    r = tmp_path / "r"
    r.mkdir()
    common = dict(protocol=PROTOCOL, manifest=str(cohort / "manifest.csv"), image_root=str(cohort / "images"),
                  annotations=str(cohort / "annotations.json"))
    steps.intake(**common, out_cases=str(r / "cases1.parquet"), out_ground_truth=str(r / "gt1.json"))
    probes = [str(r / f"probe-{k}.parquet") for k in range(3)]
    for k, out in enumerate(probes):
        steps.probe_images(manifest=common["manifest"], image_root=common["image_root"], shard=str(k), n_shards="3",
                           out=out)
    steps.intake(**common, probes=",".join(probes), out_cases=str(r / "cases3.parquet"),
                 out_ground_truth=str(r / "gt3.json"))
    one, three = pd.read_parquet(r / "cases1.parquet"), pd.read_parquet(r / "cases3.parquet")
    pd.testing.assert_frame_equal(one, three)
    assert (r / "gt1.json").read_bytes() == (r / "gt3.json").read_bytes()
    assert not one.loc[one["case_id"] == "C00003", "decodable"].item()

    steps.quality(protocol=PROTOCOL, cases=str(r / "cases1.parquet"), out=str(r / "q1.parquet"), workers="1")
    shards = [str(r / f"q-{k}.parquet") for k in range(3)]
    for k, out in enumerate(shards):
        steps.quality(protocol=PROTOCOL, cases=str(r / "cases1.parquet"), out=out, workers="1", shard=str(k),
                      n_shards="3")
    steps.merge_quality(cases=str(r / "cases1.parquet"), shards=",".join(reversed(shards)), out=str(r / "q3.parquet"))
    pd.testing.assert_frame_equal(pd.read_parquet(r / "q1.parquet"), pd.read_parquet(r / "q3.parquet"))


@pytest.mark.slow
def test_torch_version_without_importing_torch():
    """merge_detections records torch's version for precomputed models without importing torch."""
    import subprocess
    import sys

    code = ("import sys; from study.inference import torch_version; v = torch_version(); "
            "print(v, 'torch' in sys.modules); import torch; assert v == torch.__version__")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(REPO_ROOT)).stdout.split()
    assert out[1] == "False" and out[0]
