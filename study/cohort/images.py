"""Manifest images: resolving a path under the image root, probing a file once, decoding it to 8-bit RGB.

:func:`read_rgb` is the one decoder of the pixels the study looks at (the quality gate and its
face check, prediction, the example figures), so all of them see the same picture whatever the
file's pixel format: OpenCV's ``IMREAD_COLOR`` turns 8-bit grey (``L``), 16-bit grey
(``I;16``) and 16-bit RGB PNG into 8-bit RGB by keeping the high byte (``v >> 8``, libpng's
``png_set_strip_16``), expands a palette (``P``), drops an alpha channel (``RGBA``, ``LA``),
converts CMYK/YCCK JPEG (libjpeg-turbo and OpenCV's inverted-CMYK rule, as Pillow's
``convert("RGB")`` within a grey level or two) and applies the EXIF orientation. Whether a
picture has colour at all is a question for the quality gate (``study.quality``: reason
``grayscale``), not for the decoder.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from study.io import sha256_bytes

#: the OpenCV decode flag that reduces a picture ``r`` times while decoding (JPEG: in the DCT), by ``r``
_REDUCED = {1: "IMREAD_COLOR", 2: "IMREAD_REDUCED_COLOR_2", 4: "IMREAD_REDUCED_COLOR_4", 8: "IMREAD_REDUCED_COLOR_8"}


def decode_rgb(data: bytes | np.ndarray, *, reduce: int = 1) -> np.ndarray | None:
    """Decode an encoded image (the file's bytes) to an RGB ``uint8`` HxWx3 array, or None when it
    does not decode. ``reduce`` (1, 2, 4 or 8) shrinks it that many times while decoding.
    The conversions of every pixel format are listed in the module's docstring."""
    import cv2

    if reduce not in _REDUCED:
        raise ValueError(f"reduce must be one of {sorted(_REDUCED)}, got {reduce!r}")
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else data
    if buf.size == 0:
        return None
    bgr = cv2.imdecode(buf, getattr(cv2, _REDUCED[reduce]))
    if bgr is None or bgr.size == 0:
        return None
    if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:  # IMREAD_COLOR promises 8-bit BGR
        raise ValueError(f"OpenCV returned {bgr.dtype} {bgr.shape} for IMREAD_COLOR; expected uint8 (H, W, 3)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_rgb(path: str | os.PathLike[str], *, reduce: int = 1) -> np.ndarray | None:
    """:func:`decode_rgb` of the file at ``path``; None when it is missing or does not decode."""
    p = Path(path)
    if not p.is_file():
        return None
    return decode_rgb(np.fromfile(str(p), dtype=np.uint8), reduce=reduce)


def resolve_image(image: str, *, image_root: Path) -> tuple[Path | None, str | None]:
    """Resolve a manifest ``image`` cell under ``image_root``; refuse paths that escape it.

    Returns ``(path, None)`` or ``(None, reason)`` (absolute path, ``..`` component, or a
    symlink whose target lies outside the root).
    """
    if not image:
        return None, "empty"
    p = Path(image)
    if p.is_absolute() or image.startswith(("/", "\\")) or (len(image) > 1 and image[1] == ":"):
        return None, f"image path {image!r} is absolute; expected a path relative to the image root {str(image_root)!r}"
    if ".." in Path(image.replace("\\", "/")).parts:
        return None, f"image path {image!r} contains '..'; expected a path inside the image root {str(image_root)!r}"
    root = image_root.resolve()
    full = root / p
    real = full.resolve()
    if not real.is_relative_to(root):
        return None, (f"image path {image!r} resolves to {str(real)!r} (through a symbolic link), outside the "
                      f"image root {str(root)!r}; expected files inside the root")
    return full, None


def probe_image(path: str | os.PathLike) -> dict[str, Any]:
    """Read an image file once: sha256, size, and whether it fully decodes.

    The decode is done by Pillow in draft (reduced) mode, which still reads the whole
    compressed stream, so truncated JPEG / PNG files are caught ("image file is truncated").

    Returns
    -------
    dict
        ``width``, ``height`` (original pixels; -1 when unknown), ``image_sha256``,
        ``image_bytes``, ``image_format``, ``decodable`` (bool), ``image_error`` ("" when fine).
    """
    from PIL import Image, UnidentifiedImageError

    out: dict[str, Any] = {"width": -1, "height": -1, "image_sha256": "", "image_bytes": 0,
                           "image_format": "", "decodable": False, "image_error": ""}
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        out["image_error"] = "image file not found"
        return out
    except IsADirectoryError:
        out["image_error"] = "image path is a folder, not a file"
        return out
    except OSError as e:
        out["image_error"] = f"cannot read image file: {e.strerror}"
        return out
    out["image_sha256"] = sha256_bytes(data)
    out["image_bytes"] = len(data)
    if not data:
        out["image_error"] = "image file is empty (0 bytes)"
        return out
    from PIL import ImageFile

    # A truncated file must not pass: Pillow's global LOAD_TRUNCATED_IMAGES (which other
    # libraries in this process, e.g. weasyprint, switch on at import) is forced off here.
    tolerant, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        with Image.open(io.BytesIO(data)) as im:
            out["width"], out["height"] = int(im.size[0]), int(im.size[1])
            out["image_format"] = str(im.format or "")
            im.draft("L", (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
            im.load()
    except UnidentifiedImageError:
        out["image_error"] = "not an image (the file's content is not a format Pillow or OpenCV can read)"
        return out
    except Image.DecompressionBombError as e:
        out["image_error"] = f"image refused as a decompression bomb ({e})"
        return out
    except (OSError, ValueError, SyntaxError) as e:
        out["image_error"] = f"image does not decode ({out['image_format'] or 'unknown format'}: {e})"
        return out
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = tolerant
    if out["width"] < 1 or out["height"] < 1:
        out["image_error"] = f"image has size {out['width']}x{out['height']}"
        return out
    out["decodable"] = True
    return out
