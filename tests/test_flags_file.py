"""The evaluate_detection step's flags file (study.metrics.flags_file): what collect reads back is
exactly detection_flags' matching, the file's bytes depend on the flags alone, and a bad file is
refused naming it."""

from __future__ import annotations

import numpy as np
import pytest

from study.errors import StudyError
from study.metrics.detection import detection_flags
from study.metrics.flags_file import read_flags, write_flags
from study.metrics.subgroup_ap import subgroup_map
from tests.test_detection import _random_coco


def _flags(seed=0):
    gt, dt = _random_coco(np.random.default_rng(seed), n_img=30)
    return detection_flags(gt, dt)


def test_flags_round_trip_exactly(tmp_path):
    flags = _flags()
    write_flags(tmp_path / "m.flags.npz", flags)
    back = read_flags(tmp_path / "m.flags.npz")
    assert back.classes == flags.classes and back.match_rule == flags.match_rule
    assert back.iou_threshold == flags.iou_threshold
    for k in ("image_ids", "dt_img", "dt_cls", "dt_score", "dt_tie", "dt_tp", "dt_fp", "lesions"):
        a, b = getattr(flags, k), getattr(back, k)
        assert a.dtype == b.dtype and np.array_equal(a, b), k
    sub = np.arange(len(flags.image_ids)) % 2 == 0
    assert subgroup_map(back, sub) == subgroup_map(flags, sub)


def test_flags_file_bytes_depend_on_the_flags_only(tmp_path):
    write_flags(tmp_path / "a.npz", _flags(1))
    write_flags(tmp_path / "b.npz", _flags(1))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    write_flags(tmp_path / "c.npz", _flags(2))
    assert (tmp_path / "a.npz").read_bytes() != (tmp_path / "c.npz").read_bytes()


def test_bad_flags_files_are_refused_naming_the_file(tmp_path):
    with pytest.raises(StudyError, match="file not found"):
        read_flags(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(StudyError, match="not a detection flags file") as e:
        read_flags(tmp_path / "junk.npz")
    assert "junk.npz" in str(e.value)
    flags = _flags()
    np.savez(tmp_path / "short.npz", **{k: getattr(flags, k) for k in ("image_ids", "dt_img")})
    with pytest.raises(StudyError, match="missing field"):
        read_flags(tmp_path / "short.npz")
    arrays = {k: getattr(flags, k) for k in ("image_ids", "dt_img", "dt_cls", "dt_score", "dt_tie", "dt_tp", "lesions")}
    arrays.update(dt_fp=flags.dt_fp[:-1], classes=np.asarray(flags.classes), match_rule=np.asarray("iou"),
                  iou_threshold=np.asarray(0.5))
    np.savez(tmp_path / "ragged.npz", **arrays)
    with pytest.raises(StudyError, match="dt_fp has"):
        read_flags(tmp_path / "ragged.npz")
