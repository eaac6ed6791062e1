"""A COCO instances file read in bounded memory: small parts kept, annotations streamed.

``ground_truth.json`` of a 100,000-case cohort holds about a million annotations (boxes and
polygons): as Python dicts that is more than a gigabyte. Steps that only count lesions or
look up an image's case (``collect``, the report's example images) read it through
:func:`streamed_coco` instead of :func:`study.io.read_json`: ``images`` and ``categories``
are kept (one small dict per image), ``annotations`` is re-read from the file (ijson, C
backend where installed) each time it is iterated.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from study.errors import StudyError


def iter_items(path: str | os.PathLike, prefix: str) -> Iterator[Any]:
    """The items under ``prefix`` (ijson syntax, e.g. ``"annotations.item"``) of a JSON file, one at a time.

    Numbers come as ``int`` / ``float``, as :func:`json.load` gives them.

    Raises
    ------
    StudyError
        When the file is missing or is not UTF-8 JSON (file and byte named).
    """
    import ijson

    path = Path(path)
    if not path.is_file():
        raise StudyError("file not found", file=str(path))
    with open(path, "rb") as f:
        try:
            yield from ijson.items(f, prefix, use_float=True)
        except (ijson.JSONError, UnicodeDecodeError) as e:
            text = str(e).strip().splitlines()
            raise StudyError(f"invalid JSON near byte {f.tell()}: {text[0] if text else type(e).__name__}",
                             file=str(path)) from None


class _Annotations:
    """The file's annotations, streamed anew at every iteration, each cut to ``keys``."""

    def __init__(self, path: Path, keys: Sequence[str] | None) -> None:
        self.path, self.keys = path, tuple(keys) if keys is not None else None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        keys = self.keys
        for a in iter_items(self.path, "annotations.item"):
            yield a if keys is None else {k: a[k] for k in keys if k in a}

    def __repr__(self) -> str:
        return f"<annotations streamed from {self.path}>"


class StreamedCoco(Mapping[str, Any]):
    """A read-only COCO instances mapping whose ``annotations`` are streamed from the file.

    ``images`` and ``categories`` are lists (read once); ``annotations`` is an iterable that
    reads the file again each time it is iterated. Other top-level keys are not kept.
    """

    def __init__(self, path: str | os.PathLike, *, image_keys: Sequence[str] | None = None,
                 annotation_keys: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        ik = tuple(image_keys) if image_keys is not None else None
        self._data: dict[str, Any] = {
            "images": [im if ik is None else {k: im[k] for k in ik if k in im}
                       for im in iter_items(self.path, "images.item")],
            "categories": list(iter_items(self.path, "categories.item")),
            "annotations": _Annotations(self.path, annotation_keys),
        }

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def streamed_coco(path: str | os.PathLike, *, image_keys: Sequence[str] | None = None,
                  annotation_keys: Sequence[str] | None = None) -> StreamedCoco:
    """``path`` (COCO instances JSON) as a :class:`StreamedCoco`; ``*_keys`` keep only those keys per item."""
    return StreamedCoco(path, image_keys=image_keys, annotation_keys=annotation_keys)
