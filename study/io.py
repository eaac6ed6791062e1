"""Small I/O helpers shared by every step: atomic writes, canonical JSON, hashing.

Every output of a step is written to a temporary file in the same folder and renamed into
place, so an interrupted or failed run never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, dataclasses, paths and NaN into plain JSON values.

    NaN and infinities become ``None`` (JSON has no NaN), so a reader never meets an
    invalid JSON token.
    """
    import dataclasses

    from pydantic import BaseModel

    if isinstance(obj, BaseModel):  # typed results (study.results) and Estimate
        return to_jsonable(obj.model_dump(mode="python"))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if hasattr(obj, "to_dict"):
            return to_jsonable(obj.to_dict())
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


#: options of the canonical JSON (:func:`dumps_json`, :func:`write_json`)
_JSON_OPTIONS: dict[str, Any] = {"indent": 2, "sort_keys": True, "ensure_ascii": False, "allow_nan": False}
#: encoder pieces joined per write by :func:`write_json` (a piece is a token or a few characters)
_WRITE_PIECES = 8192


def dumps_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, two-space indent, UTF-8, no NaN."""
    return json.dumps(to_jsonable(obj), **_JSON_OPTIONS) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as canonical JSON (byte-identical to :func:`dumps_json`), atomically.

    The text is streamed to the file from :meth:`json.JSONEncoder.iterencode` in blocks
    of :data:`_WRITE_PIECES` pieces, so a large document (``ground_truth.json`` of a
    100,000-case cohort) is never held as one string beside the objects it encodes.
    """
    encoder = json.JSONEncoder(**_JSON_OPTIONS)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        block: list[str] = []
        for piece in encoder.iterencode(to_jsonable(obj)):
            block.append(piece)
            if len(block) >= _WRITE_PIECES:
                f.write("".join(block))
                block.clear()
        block.append("\n")
        f.write("".join(block))


def read_json(path: str | os.PathLike) -> Any:
    from study.errors import StudyError

    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise StudyError("file not found", file=str(path)) from None
    except UnicodeDecodeError as e:
        raise StudyError(f"not UTF-8 text (byte {e.start})", file=str(path)) from None
    except json.JSONDecodeError as e:
        raise StudyError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}", file=str(path)) from None


def write_parquet(path: str | os.PathLike, df) -> None:
    """Write a pandas DataFrame as Parquet, atomically, without the pandas index."""
    with atomic_path(path, suffix=".parquet.tmp") as tmp:
        df.to_parquet(tmp, index=False)


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
