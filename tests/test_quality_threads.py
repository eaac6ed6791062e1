"""The quality gate's workers run OpenCV with one thread (issue 16: sharded jobs and pool workers
already fill the cores; OpenCV's own per-core pool inside each oversubscribed the machine)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

cv2 = pytest.importorskip("cv2")

from study import quality  # noqa: E402
from study.protocol import load_protocol  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
T = load_protocol(REPO / "protocols" / "chinese-2019.yaml").protocol.quality


def _cases(n: int) -> pd.DataFrame:
    return pd.DataFrame({"case_id": [f"C{i}" for i in range(n)], "image_path": [f"/nowhere/{i}.jpg" for i in range(n)],
                         "width": [1024] * n, "height": [1024] * n, "decodable": [True] * n})


@pytest.fixture
def record_threads(tmp_path, monkeypatch):
    """Replace the per-image work by a record of (pid, OpenCV threads) in ``tmp_path``; forked workers inherit it."""
    log = tmp_path / "threads"
    log.mkdir()

    def fake_assess_file(path, *, thresholds, width=None, height=None):
        (log / f"{os.getpid()}-{os.path.basename(path)}").write_text(str(cv2.getNumThreads()))
        f = quality._empty(width or -1, height or -1)
        f["decodable"] = True
        return quality._verdict(f, thresholds)

    monkeypatch.setattr(quality, "assess_file", fake_assess_file)
    before = cv2.getNumThreads()
    cv2.setNumThreads(4)  # what a fresh process on a 4-core machine would use: the workers must not inherit it
    yield log
    cv2.setNumThreads(before)


@pytest.mark.parametrize("workers", [1, 2])
def test_every_image_is_assessed_with_one_opencv_thread(record_threads, workers):
    out = quality.assess_cases(_cases(40), thresholds=T, workers=workers, progress=False, chunk=4)
    assert len(out) == 40
    seen = {p.name: int(p.read_text()) for p in record_threads.iterdir()}
    assert len(seen) == 40
    assert set(seen.values()) == {1}
    pids = {name.split("-")[0] for name in seen}
    if workers == 2:
        assert str(os.getpid()) not in pids  # the pool's processes did the work
    else:
        assert pids == {str(os.getpid())}
    assert cv2.getNumThreads() == 4  # the caller's own setting is restored (serial path) or untouched (pool)
