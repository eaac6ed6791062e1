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
