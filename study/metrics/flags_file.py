"""The evaluate step's per-detection flags on disk (``metrics/detection/<model>.flags.npz``).

The detection step matches every detection to the reference once; the errors block (detection
mAP by skin type, in the collect step) needs that matching again, image by image. Re-matching in
collect meant reading the ground truth and the detections a second time: at 100,000 cases about a
million of each, which pushed collect past 2 GB. The step writes the flags
(:class:`study.metrics.detection.DetectionFlags`, a few numeric columns per detection) and collect
reads them back.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from study.errors import StudyError
from study.io import write_bytes
from study.metrics.detection import DetectionFlags

_ARRAYS = ("image_ids", "dt_img", "dt_cls", "dt_score", "dt_tie", "dt_tp", "dt_fp", "lesions")
_TEXT = ("classes", "match_rule")


def write_flags(path: str | os.PathLike, flags: DetectionFlags) -> None:
    """Write ``flags`` as an uncompressed ``.npz`` (no pickles), atomically and byte-reproducibly."""
    arrays = {k: np.ascontiguousarray(getattr(flags, k)) for k in _ARRAYS}
    arrays["classes"] = np.asarray(list(flags.classes), dtype=str)
    arrays["match_rule"] = np.asarray(flags.match_rule, dtype=str)
    arrays["iou_threshold"] = np.asarray(flags.iou_threshold, dtype=float)
    buf = io.BytesIO()
    # np.savez stamps each member with the current time; a fixed stamp keeps the file's bytes a
    # function of the flags alone (Snakemake compares checksums of small files)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, arrays[name], allow_pickle=False)
            z.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    write_bytes(path, buf.getvalue())


def read_flags(path: str | os.PathLike) -> DetectionFlags:
    """Read a file of :func:`write_flags`.

    Raises
    ------
    StudyError
        When the file is missing, not such a file, or its columns disagree in length (file and field named).
    """
    path = Path(path)
    if not path.is_file():
        raise StudyError("file not found (written by the evaluate_detection step)", file=str(path))
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise StudyError(f"not a detection flags file (.npz): {e}", file=str(path)) from None
    missing = [k for k in (*_ARRAYS, *_TEXT, "iou_threshold") if k not in data]
    if missing:
        raise StudyError(f"missing field(s) {', '.join(missing)}; expected the evaluate_detection step's flags",
                         file=str(path))
    n_det = len(data["dt_img"])
    for k in ("dt_cls", "dt_score", "dt_tie", "dt_tp", "dt_fp"):
        if len(data[k]) != n_det:
            raise StudyError(f"field {k} has {len(data[k])} values, dt_img {n_det}: one per detection expected",
                             file=str(path))
    if data["lesions"].shape != (len(data["image_ids"]), len(data["classes"])):
        raise StudyError(f"field lesions has shape {data['lesions'].shape}, expected (images, classes) = "
                         f"({len(data['image_ids'])}, {len(data['classes'])})", file=str(path))
    return DetectionFlags(
        image_ids=data["image_ids"], classes=[str(c) for c in data["classes"]],
        iou_threshold=float(data["iou_threshold"]), match_rule=str(data["match_rule"]),
        dt_img=data["dt_img"], dt_cls=data["dt_cls"], dt_score=data["dt_score"], dt_tie=data["dt_tie"],
        dt_tp=data["dt_tp"].astype(bool), dt_fp=data["dt_fp"].astype(bool), lesions=data["lesions"])
