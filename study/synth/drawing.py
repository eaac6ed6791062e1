"""Rendering one case: a face photo with its lesions and planted quality failure, as a JPEG."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from study.synth.face import background, draw_face, no_face_image, photographic
from study.synth.lesions import Lesion, place_lesions, skin_texture
from study.synth.planning import sample_counts
from study.synth.vocabulary import CLASSES

#: JPEG quality used for every image (fixed so output is byte-identical for a seed)
JPEG_QUALITY = 92


def _clip_u8(a: np.ndarray) -> np.ndarray:
    return np.clip(a, 0, 255).astype(np.uint8)


def _apply_exclusion_look(img: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    import cv2

    if kind == "blurred":
        sigma = rng.uniform(7.0, 10.0) * img.shape[0] / 512
        return cv2.GaussianBlur(img, (0, 0), sigma)
    if kind == "underexposed":
        return img * rng.uniform(0.06, 0.12)
    if kind == "overexposed":
        return img * rng.uniform(2.4, 3.2) + 90
    return img


def encode_jpeg(rgb_u8: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", rgb_u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY,
                                                       cv2.IMWRITE_JPEG_OPTIMIZE, 0,
                                                       cv2.IMWRITE_JPEG_PROGRESSIVE, 0])
    if not ok:  # pragma: no cover - OpenCV failure
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


#: face luminance the simulated camera's auto-exposure aims at (never darkens)
_FACE_LUMA_TARGET = 105.0


def render_case(rng: np.random.Generator, patient: dict[str, Any], counts: dict[str, int], *, image_size: int,
                exclusion: str, other_facial_disease: str) -> tuple[np.ndarray, list[Lesion]]:
    """Render one photo (RGB uint8 HxWx3) and its lesions.

    ``patient`` holds the per-patient look (``skin``, ``hair``, ``iris``, ``lip``, ``shirt``,
    ``rx``, ``ry``, ``long_hair``; optional ``lesion_fade`` in [0, 1): how much the lesions
    blend into the skin, for images hard for the model). A ``no_face`` case has no face and no
    lesions.
    """
    if exclusion == "no_face":
        img = no_face_image(rng, image_size)
        return _clip_u8(photographic(img, rng)), []
    img = background(rng, image_size)
    face = draw_face(img, rng, patient)
    if other_facial_disease != "none":
        skin_texture(img, rng, face, other_facial_disease)
    fade = float(patient.get("lesion_fade", 0.0))
    plain = img.copy() if fade > 0 else None
    lesions = place_lesions(img, rng, face, counts)
    if plain is not None:  # a patient hard for the model: lesions blend into the skin
        img = plain + (img - plain) * (1.0 - fade)
    # the camera's auto-exposure meters on the face: dark skin is exposed brighter
    lum = float((img[face.mask] @ np.array([0.299, 0.587, 0.114], np.float32)).mean())
    img = img * float(np.clip(_FACE_LUMA_TARGET / max(lum, 1.0), 1.0, 1.3))
    img = photographic(img, rng)
    img = _apply_exclusion_look(img, rng, exclusion)
    return _clip_u8(img), lesions


class RenderJob(NamedTuple):
    """One case to draw (picklable, for a process pool)."""

    seed: int
    case_index: int
    look: dict[str, Any]
    target_grade: str
    image_size: int
    exclusion: str
    other_facial_disease: str
    lesion_fade: float = 0.0


def render_job(job: RenderJob) -> tuple[bytes, list[Lesion]]:
    """Sample the case's lesion counts and draw it, from the case's own stream ``[seed, 4, index]``.

    Returns the JPEG bytes and the lesions drawn.
    """
    rng = np.random.default_rng([job.seed, 4, job.case_index])
    counts = sample_counts(rng, job.target_grade) if job.exclusion != "no_face" else {k: 0 for k in CLASSES}
    look = {**job.look, "lesion_fade": job.lesion_fade} if job.lesion_fade else job.look
    img, lesions = render_case(rng, look, counts, image_size=job.image_size, exclusion=job.exclusion,
                               other_facial_disease=job.other_facial_disease)
    return encode_jpeg(img), lesions
