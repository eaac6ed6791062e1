"""Atomic writes: nothing half-written is left behind, and files get ordinary permissions."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest

from study.io import atomic_path, dumps_json, write_json


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_written_file_has_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644


def test_canonical_json_has_no_nan_and_sorted_keys():
    text = dumps_json({"b": float("nan"), "a": np.float64(1.5), "c": np.arange(2), "d": math.inf})
    assert json.loads(text) == {"a": 1.5, "b": None, "c": [0, 1], "d": None}
    assert text.index('"a"') < text.index('"b"')


def test_write_json_streams_the_same_bytes_as_json_dumps(tmp_path, monkeypatch):
    """Reference: the standard library's ``json.dumps`` with the canonical options, on a nested
    sample with unicode, NaN, numpy values and more pieces than one write block holds."""
    import study.io as sio

    monkeypatch.setattr(sio, "_WRITE_PIECES", 7)  # many blocks even on a small sample
    sample = {"z": [{"case_id": f"C{i}", "bbox": np.arange(4) * 1.5, "score": np.float32(0.25),
                     "flag": np.bool_(i % 2), "ids": (i, i + 1)} for i in range(50)],
              "a": {"nested": {"deeper": [[], {}, [None, True, "é ✓ \"quoted\"\n"]]}, "nan": float("nan")},
              "m": -math.inf, "int": np.int64(7), "s": "plain"}
    write_json(tmp_path / "s.json", sample)
    expected = json.dumps(sio.to_jsonable(sample), indent=2, sort_keys=True, ensure_ascii=False,
                          allow_nan=False) + "\n"
    assert (tmp_path / "s.json").read_bytes() == expected.encode("utf-8")
    assert (tmp_path / "s.json").read_bytes() == dumps_json(sample).encode("utf-8")
    for scalar in ("text", 3, None, []):  # top-level values that are not containers
        write_json(tmp_path / "v.json", scalar)
        assert (tmp_path / "v.json").read_text(encoding="utf-8") == json.dumps(scalar) + "\n"


def test_write_json_leaves_nothing_when_encoding_fails(tmp_path):
    with pytest.raises(TypeError):
        write_json(tmp_path / "bad.json", {"a": [1, 2, object()]})
    assert list(tmp_path.iterdir()) == []
