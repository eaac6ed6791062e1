"""Synthetic acne cohort generator (``study synth``): demo data and scale tests.

A cohort is a folder with

- ``images/<case_id>.jpg``: face-like photos (a skin-toned face with hair, brows, eyes,
  nose and mouth on a varied background, lighting gradient and sensor noise), with acne
  lesions of six classes drawn so that they look different from each other;
- ``manifest.csv``: ``case_id, patient_id, image, age, sex, fitzpatrick, site, device,
  diagnosis, other_facial_disease, planted_exclusion``;
- ``annotations.json``: COCO instances (boxes for all lesions, polygons for cysts and scars);
- ``reference.csv``: ``case_id, grade, count_<class>...``, the grade from the true counts by
  the Chinese acne guideline 2019 (``protocols/chinese-2019.yaml``);
- ``readings.csv``: ``reader_id, reader_group, case_id, grade`` from simulated dermatologists.

Everything is drawn from :class:`numpy.random.Generator` streams derived from the seed
(one stream per patient and per case, so a case does not depend on how many cases follow
it), and images are encoded with fixed JPEG parameters: the same seed gives byte-identical
files.

Nothing here is clinical data. The lesion frequencies follow the test-set means of the
smartphone reader study (Frontiers in Medicine 2024: per image 3.7 comedones, 1.4 papules,
0.16 pustules, 0.03 nodules, 0.27 cysts, 2.5 scars) with the rarer inflammatory classes
boosted so that every grade I..IV occurs often enough to estimate per-grade statistics.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from study.errors import StudyError

#: lesion classes, in COCO category order (ids 1..6)
CLASSES: list[str] = ["comedone", "papule", "pustule", "nodule", "cyst", "scar"]
#: classes annotated with polygons (``segmentation``) as well as boxes
POLYGON_CLASSES: list[str] = ["cyst", "scar"]
#: grade levels of the Chinese acne guideline 2019, least to most severe
LEVELS: list[str] = ["I", "II", "III", "IV"]
#: planted exclusion kinds, in the order they are assigned
EXCLUSIONS: list[str] = ["blurred", "underexposed", "overexposed", "no_face", "minor", "other_facial_disease"]
FITZPATRICK: list[str] = ["I", "II", "III", "IV", "V", "VI"]
SITES: list[str] = ["site-A", "site-B", "site-C"]
DEVICES: list[str] = ["phone-1", "phone-2", "phone-3"]
OTHER_DISEASES: list[str] = ["rosacea", "seborrheic_dermatitis"]

#: mean skin colour (RGB) per Fitzpatrick type; each face varies around it
_SKIN_RGB: dict[str, tuple[int, int, int]] = {
    "I": (246, 214, 196),
    "II": (234, 190, 160),
    "III": (208, 158, 120),
    "IV": (176, 120, 84),
    "V": (128, 84, 56),
    "VI": (84, 54, 38),
}

#: default simulated readers: (reader_id, group, probability of a grading error, share of the
#: non-core cases read).  Juniors err more than intermediates, intermediates more than seniors.
DEFAULT_READERS: list[tuple[str, str, float, float]] = [
    ("junior-1", "junior", 0.34, 0.6),
    ("junior-2", "junior", 0.30, 0.5),
    ("intermediate-1", "intermediate", 0.20, 0.6),
    ("intermediate-2", "intermediate", 0.17, 0.5),
    ("intermediate-3", "intermediate", 0.15, 1.0),
    ("senior-1", "senior", 0.07, 1.0),
    ("senior-2", "senior", 0.09, 0.5),
]

#: JPEG quality used for every image (fixed so output is byte-identical for a seed)
JPEG_QUALITY = 92


@dataclass
class Lesion:
    """One drawn lesion: its class, bounding box ``[x, y, w, h]`` and polygon (cyst, scar)."""

    cls: str
    bbox: list[float]
    polygon: list[float] | None = None

    @property
    def area(self) -> float:
        if self.polygon:
            xs = np.asarray(self.polygon[0::2])
            ys = np.asarray(self.polygon[1::2])
            return float(0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))
        return float(self.bbox[2] * self.bbox[3])


@dataclass
class Patient:
    """A simulated patient: covariates shared by all their images.

    ``seed`` is a per-patient draw kept in the plan's random stream (removing the draw
    would change every cohort); it is recorded for traceability, not used for drawing.
    """

    patient_id: str
    age: int
    sex: str
    fitzpatrick: str
    site: str
    device: str
    other_facial_disease: str
    seed: int
    case_indices: list[int] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# grading
# --------------------------------------------------------------------------------------


def grade_from_counts(counts: dict[str, int]) -> str:
    """Chinese acne guideline 2019 grade from lesion counts.

    Rules as in ``protocols/chinese-2019.yaml`` (tried from most severe down, first match
    wins): IV if any nodule or cyst, III if any pustule, II if any papule, else I (only
    comedones, or no inflammatory lesion). Scars do not grade.

    References
    ----------
    Chinese Society of Dermatology, Acne Group. Chinese guidelines for the management of
    acne vulgaris (2019 revision). J Clin Dermatol 2019;48:583-588.
    """
    if counts.get("nodule", 0) >= 1 or counts.get("cyst", 0) >= 1:
        return "IV"
    if counts.get("pustule", 0) >= 1:
        return "III"
    if counts.get("papule", 0) >= 1:
        return "II"
    return "I"


def _sample_counts(rng: np.random.Generator, target: str) -> dict[str, int]:
    """Lesion counts for one image whose reference grade is ``target``.

    Comedones and scars follow the smartphone study's means (3.7 and 2.5 per image);
    papules 1.4 per image where present. The defining lesion of a grade is present at
    least once (boosting the rarer pustules, nodules and cysts).
    """
    c = {k: 0 for k in CLASSES}
    c["comedone"] = int(rng.poisson(3.7)) + (1 if target == "I" else 0)
    c["scar"] = int(rng.poisson(2.5))
    lv = LEVELS.index(target)
    if lv >= 1:
        c["papule"] = int(rng.poisson(1.4)) + (1 if target == "II" else int(rng.random() < 0.5))
    if lv >= 2:
        c["pustule"] = int(rng.poisson(0.6)) + (1 if target == "III" else int(rng.random() < 0.4))
    if lv == 3:
        kind = rng.random()
        if kind < 0.35:
            c["nodule"] = 1 + int(rng.poisson(0.4))
        elif kind < 0.8:
            c["cyst"] = 1 + int(rng.poisson(0.4))
        else:
            c["nodule"] = 1 + int(rng.poisson(0.3))
            c["cyst"] = 1 + int(rng.poisson(0.3))
    assert grade_from_counts(c) == target
    return c


# --------------------------------------------------------------------------------------
# drawing
# --------------------------------------------------------------------------------------


def _clip_u8(a: np.ndarray) -> np.ndarray:
    return np.clip(a, 0, 255).astype(np.uint8)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A varied background: two-colour gradient plus a few soft shapes (a room, a wall)."""
    import cv2

    c1 = rng.uniform(30, 230, 3)
    c2 = rng.uniform(30, 230, 3)
    t = np.linspace(0, 1, size, dtype=np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    g = (np.cos(ang) * t[None, :] + np.sin(ang) * t[:, None])
    g = (g - g.min()) / max(float(g.max() - g.min()), 1e-6)
    img = c1[None, None, :] * (1 - g[..., None]) + c2[None, None, :] * g[..., None]
    img = img.astype(np.float32)
    for _ in range(int(rng.integers(1, 5))):
        col = tuple(float(v) for v in rng.uniform(20, 235, 3))
        x0, y0 = (int(v) for v in rng.integers(0, size, 2))
        w, h = (int(v) for v in rng.integers(size // 8, size // 2, 2))
        cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), col, -1)
    k = max(3, (size // 40) | 1)
    return cv2.GaussianBlur(img, (k, k), 0)


@dataclass
class _Face:
    cx: float
    cy: float
    rx: float
    ry: float
    skin: np.ndarray  # RGB float
    mask: np.ndarray  # HxW bool: where lesions may go (cheeks, forehead, chin)


def _shade(c: np.ndarray, f: float) -> tuple[float, float, float]:
    return tuple(float(v) for v in np.clip(np.asarray(c) * f, 0, 255))


def _draw_face(img: np.ndarray, rng: np.random.Generator, patient_rng_vals: dict[str, Any]) -> _Face:
    """Draw a frontal face (Haar-cascade detectable) into ``img`` (float RGB, in place)."""
    import cv2

    size = img.shape[0]
    skin = patient_rng_vals["skin"]
    hair = patient_rng_vals["hair"]
    s = size / 512.0
    cx = size / 2 + rng.uniform(-25, 25) * s
    cy = size / 2 + rng.uniform(-10, 20) * s
    rx = patient_rng_vals["rx"] * s * rng.uniform(0.96, 1.04)
    ry = patient_rng_vals["ry"] * s * rng.uniform(0.96, 1.04)
    ctr = (int(round(cx)), int(round(cy)))

    # neck and shoulders
    neck_col = _shade(skin, 0.85)
    cv2.rectangle(img, (int(cx - rx * 0.45), int(cy)), (int(cx + rx * 0.45), size), neck_col, -1)
    shirt = tuple(float(v) for v in patient_rng_vals["shirt"])
    cv2.ellipse(img, (ctr[0], int(cy + ry * 1.55)), (int(rx * 1.9), int(ry * 0.6)), 0, 180, 360, shirt, -1)
    cv2.rectangle(img, (int(cx - rx * 1.9), int(cy + ry * 1.55)), (int(cx + rx * 1.9), size), shirt, -1)
    # hair behind the head
    cv2.ellipse(img, (ctr[0], int(cy - ry * 0.12)), (int(rx * 1.12), int(ry * 1.0)), 0, 180, 360, tuple(hair), -1)
    if patient_rng_vals["long_hair"]:
        cv2.rectangle(img, (int(cx - rx * 1.12), int(cy - ry * 0.12)), (int(cx + rx * 1.12), int(cy + ry * 0.55)),
                      tuple(hair), -1)
    # ears
    for sx in (-1, 1):
        cv2.ellipse(img, (int(cx + sx * rx * 0.98), int(cy + ry * 0.02)), (int(rx * 0.14), int(ry * 0.2)), 0, 0, 360,
                    _shade(skin, 0.92), -1)
    # face, shaded like a lit rounded surface: brighter centre (forehead, cheeks), darker rim
    fmask = np.zeros(img.shape[:2], np.float32)
    cv2.ellipse(fmask, ctr, (int(rx), int(ry)), 0, 0, 360, 1.0, -1)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    rr = ((xx - cx) / rx) ** 2 + ((yy - cy + ry * 0.1) / ry) ** 2
    lum = 1.12 - 0.32 * np.clip(rr, 0, 1.2) ** 1.5
    # additive sheen (specular light on the forehead, cheeks and nose), stronger on dark skin
    sheen = (58.0 if float(np.mean(skin)) < 90 else 48.0 if float(np.mean(skin)) < 110 else 30.0 if float(np.mean(skin)) < 150 else 8.0)
    sheen_map = sheen * np.exp(-(((xx - cx) / (rx * 0.75)) ** 2 + ((yy - cy + ry * 0.05) / (ry * 0.6)) ** 2))
    face_col = np.asarray(skin, np.float32)[None, None, :] * lum[..., None] + sheen_map[..., None]
    img[:] = img * (1 - fmask[..., None]) + face_col * fmask[..., None]
    # hairline / fringe
    cv2.ellipse(img, (ctr[0], int(cy - ry * 0.62)), (int(rx * 1.02), int(ry * 0.42)), 0, 180, 360, tuple(hair), -1)

    # eyes
    eye_y = cy - ry * 0.08
    eye_dx = rx * 0.40
    ew, eh = rx * 0.22, ry * 0.085
    iris_col = patient_rng_vals["iris"]
    socket = 0.72 if float(np.mean(skin)) > 150 else 0.55
    sclera = tuple(float(v) for v in np.asarray(skin) * 0.45 + np.array([225.0, 222.0, 215.0]) * 0.55)
    for sx in (-1, 1):
        ex = cx + sx * eye_dx
        # eye socket shadow
        cv2.ellipse(img, (int(ex), int(eye_y - eh * 0.3)), (int(ew * 1.35), int(eh * 2.4)), 0, 0, 360,
                    _shade(skin, socket), -1)
        cv2.ellipse(img, (int(ex), int(eye_y)), (int(ew), int(eh)), 0, 0, 360, sclera, -1)
        cv2.circle(img, (int(ex), int(eye_y)), max(2, int(eh * 0.95)), tuple(iris_col), -1)
        cv2.circle(img, (int(ex), int(eye_y)), max(1, int(eh * 0.45)), (15, 12, 10), -1)
        cv2.ellipse(img, (int(ex), int(eye_y)), (int(ew), int(eh)), 0, 180, 360, (40, 30, 25), max(1, int(2 * s)))
        # brow
        by = eye_y - ry * 0.2
        cv2.ellipse(img, (int(ex), int(by + ry * 0.04)), (int(ew * 1.25), int(ry * 0.06)), 0, 190, 350,
                    tuple(_shade(hair, 1.0)), max(2, int(7 * s)))
    # nose: bright bridge, dark nostrils and side shadow
    ny = cy + ry * 0.25
    cv2.line(img, (int(cx), int(eye_y)), (int(cx), int(ny - ry * 0.05)), _shade(skin, 1.08), max(2, int(rx * 0.09)))
    cv2.line(img, (int(cx - rx * 0.1), int(eye_y + ry * 0.05)), (int(cx - rx * 0.12), int(ny)), _shade(skin, 0.8),
             max(1, int(3 * s)))
    cv2.ellipse(img, (int(cx), int(ny)), (int(rx * 0.17), int(ry * 0.06)), 0, 0, 360, _shade(skin, 0.88), -1)
    for sx in (-1, 1):
        cv2.ellipse(img, (int(cx + sx * rx * 0.07), int(ny + ry * 0.015)), (int(rx * 0.045), int(ry * 0.022)), 0, 0,
                    360, _shade(skin, 0.45), -1)
    # mouth
    my = cy + ry * 0.5
    lip = np.array(patient_rng_vals["lip"], dtype=np.float32)
    cv2.ellipse(img, (int(cx), int(my)), (int(rx * 0.3), int(ry * 0.07)), 0, 0, 360, tuple(float(v) for v in lip), -1)
    cv2.line(img, (int(cx - rx * 0.29), int(my)), (int(cx + rx * 0.29), int(my)), _shade(lip, 0.45), max(1, int(3 * s)))

    # where lesions go: inside the face ellipse, below the hairline, away from eyes/nose/mouth
    inside = ((xx - cx) / (rx * 0.9)) ** 2 + ((yy - cy) / (ry * 0.9)) ** 2 <= 1.0
    below_hair = yy > cy - ry * 0.55
    eyes = (np.abs(yy - (eye_y - ry * 0.07)) < ry * 0.2) & (np.abs(np.abs(xx - cx) - eye_dx) < ew * 1.6)
    nose = (np.abs(xx - cx) < rx * 0.22) & (yy > eye_y - ry * 0.1) & (yy < ny + ry * 0.1)
    mouth = (np.abs(xx - cx) < rx * 0.4) & (np.abs(yy - my) < ry * 0.13)
    mask = inside & below_hair & ~eyes & ~nose & ~mouth
    return _Face(cx, cy, rx, ry, np.asarray(skin, dtype=np.float32), mask)


def _blob(img: np.ndarray, cx: float, cy: float, rx: float, ry: float, color, alpha: float, *, soft: float = 0.6,
          angle: float = 0.0) -> None:
    """Alpha-blend a soft-edged ellipse (a dome) of ``color`` into ``img`` in place."""
    h, w = img.shape[:2]
    pad = int(max(rx, ry) * (1 + soft)) + 2
    x0, x1 = max(0, int(cx) - pad), min(w, int(cx) + pad + 1)
    y0, y1 = max(0, int(cy) - pad), min(h, int(cy) + pad + 1)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    ca, sa = math.cos(angle), math.sin(angle)
    dx, dy = xx - cx, yy - cy
    u = (dx * ca + dy * sa) / max(rx, 0.5)
    v = (-dx * sa + dy * ca) / max(ry, 0.5)
    r = np.sqrt(u * u + v * v)
    a = np.clip((1 + soft - r) / soft, 0, 1) if soft > 0 else (r <= 1).astype(np.float32)
    a = (a * alpha)[..., None]
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - a) + np.asarray(color, np.float32)[None, None, :] * a


def _irregular_polygon(rng: np.random.Generator, cx: float, cy: float, r: float, *, n: int, jitter: float,
                       elong: float, angle: float) -> np.ndarray:
    t = np.sort(rng.uniform(0, 2 * np.pi, n)) if jitter > 0.3 else np.linspace(0, 2 * np.pi, n, endpoint=False)
    rad = r * (1 + rng.uniform(-jitter, jitter, n))
    # smooth the radii (circular moving average) so shapes stay blob-like
    rad = (np.roll(rad, 1) + 2 * rad + np.roll(rad, -1)) / 4
    x = rad * np.cos(t) * elong
    y = rad * np.sin(t) / elong
    ca, sa = math.cos(angle), math.sin(angle)
    px = cx + x * ca - y * sa
    py = cy + x * sa + y * ca
    return np.stack([px, py], axis=1)


def _draw_lesion(img: np.ndarray, rng: np.random.Generator, cls: str, x: float, y: float, skin: np.ndarray,
                 scale: float) -> Lesion:
    """Draw one lesion of class ``cls`` centred at (x, y); return its annotation."""
    import cv2

    skin = np.asarray(skin, np.float32)
    dark_skin = float(skin.mean()) < 120
    if cls == "comedone":
        r = rng.uniform(2.6, 4.2) * scale
        if rng.random() < 0.6:  # open comedone (blackhead): dark dot with a faint rim
            _blob(img, x, y, r * 1.5, r * 1.5, skin * 0.8, 0.6, soft=0.5)
            _blob(img, x, y, r, r, (30, 24, 20), 0.95, soft=0.35)
        else:  # closed comedone (whitehead): small pale bump
            _blob(img, x, y, r * 1.5, r * 1.5, skin * 0.85, 0.5, soft=0.5)
            _blob(img, x, y, r, r, (250, 246, 232), 0.95, soft=0.4)
            _blob(img, x - r * 0.3, y - r * 0.3, r * 0.35, r * 0.35, (255, 255, 255), 0.8, soft=0.5)
        h = 2 * r * 1.35
        return Lesion(cls, [x - h / 2, y - h / 2, h, h])
    if cls == "papule":
        r = rng.uniform(4.5, 7.5) * scale
        red = np.array([205, 55, 55], np.float32) if not dark_skin else np.array([120, 30, 35], np.float32)
        _blob(img, x, y, r * 1.3, r * 1.3, red * 0.85 + skin * 0.15, 0.45, soft=0.6)
        _blob(img, x, y, r, r, red, 0.9, soft=0.45)
        _blob(img, x - r * 0.35, y - r * 0.4, r * 0.3, r * 0.25, np.minimum(red + 80, 255), 0.7, soft=0.7)
        h = 2 * r * 1.25
        return Lesion(cls, [x - h / 2, y - h / 2, h, h])
    if cls == "pustule":
        r = rng.uniform(5.5, 8.5) * scale
        red = np.array([215, 50, 45], np.float32) if not dark_skin else np.array([140, 35, 35], np.float32)
        _blob(img, x, y, r * 1.35, r * 1.35, red, 0.75, soft=0.45)
        _blob(img, x, y, r * 0.62, r * 0.62, (252, 236, 150), 1.0, soft=0.3)
        _blob(img, x - r * 0.15, y - r * 0.2, r * 0.25, r * 0.25, (255, 255, 235), 0.9, soft=0.5)
        h = 2 * r * 1.35
        return Lesion(cls, [x - h / 2, y - h / 2, h, h])
    if cls == "nodule":
        r = rng.uniform(9.0, 13.5) * scale
        col = np.array([125, 40, 80], np.float32) if not dark_skin else np.array([70, 20, 45], np.float32)
        ang = rng.uniform(0, np.pi)
        e = rng.uniform(0.85, 1.15)
        _blob(img, x, y, r * 1.25 * e, r * 1.25 / e, col * 0.7 + skin * 0.3, 0.6, soft=0.7, angle=ang)
        _blob(img, x, y, r * 0.95 * e, r * 0.95 / e, col, 0.85, soft=0.5, angle=ang)
        _blob(img, x + r * 0.2, y + r * 0.25, r * 0.5, r * 0.5, col * 0.6, 0.6, soft=0.8)
        h = 2 * r * 1.2
        return Lesion(cls, [x - h * e / 2, y - h / e / 2, h * e, h / e])
    if cls == "cyst":
        r = rng.uniform(10.0, 14.5) * scale
        pts = _irregular_polygon(rng, x, y, r, n=14, jitter=0.12, elong=rng.uniform(1.0, 1.35), angle=rng.uniform(0, np.pi))
        col = np.array([200, 120, 165], np.float32) if not dark_skin else np.array([120, 60, 95], np.float32)
        lay = img.copy()
        cv2.fillPoly(lay, [np.round(pts * 16).astype(np.int32)], tuple(float(v) for v in col), lineType=cv2.LINE_AA,
                     shift=4)
        img[:] = img * 0.2 + lay * 0.8
        # smooth shiny dome: bright highlight and a darker rim
        cv2.polylines(img, [np.round(pts * 16).astype(np.int32)], True, _shade(col, 0.6), max(1, int(2 * scale)),
                      lineType=cv2.LINE_AA, shift=4)
        _blob(img, x - r * 0.3, y - r * 0.3, r * 0.35, r * 0.22, (255, 235, 245), 0.75, soft=0.8)
        return _poly_lesion(cls, pts)
    if cls == "scar":
        r = rng.uniform(5.5, 11.0) * scale
        pts = _irregular_polygon(rng, x, y, r, n=10, jitter=0.45, elong=rng.uniform(1.0, 1.8), angle=rng.uniform(0, np.pi))
        pale = rng.random() < 0.5
        col = np.minimum(skin * 1.18 + 25, 255) if pale else skin * 0.55
        lay = img.copy()
        cv2.fillPoly(lay, [np.round(pts * 16).astype(np.int32)], tuple(float(v) for v in col), lineType=cv2.LINE_AA,
                     shift=4)
        img[:] = img * 0.25 + lay * 0.75
        # depressed (atrophic) edge: a dark line on one side, light on the other
        sh = np.array([0.8, 1.0]) * scale
        cv2.polylines(img, [np.round((pts + sh) * 16).astype(np.int32)], True, _shade(skin, 0.45),
                      max(1, int(1.5 * scale)), lineType=cv2.LINE_AA, shift=4)
        return _poly_lesion(cls, pts)
    raise ValueError(f"unknown lesion class {cls!r}")


def _poly_lesion(cls: str, pts: np.ndarray) -> Lesion:
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return Lesion(cls, [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                  [float(v) for v in pts.reshape(-1)])


#: lesion drawing order (large flat lesions first, small ones on top) and spacing radius at 512 px
_DRAW_ORDER = ["scar", "cyst", "nodule", "papule", "pustule", "comedone"]
_RADIUS = {"comedone": 7, "papule": 11, "pustule": 13, "nodule": 20, "cyst": 21, "scar": 16}


def _place_lesions(img: np.ndarray, rng: np.random.Generator, face: _Face, counts: dict[str, int]) -> list[Lesion]:
    size = img.shape[0]
    scale = size / 512.0
    ys, xs = np.nonzero(face.mask)
    placed: list[tuple[float, float, float]] = []
    lesions: list[Lesion] = []
    for cls in _DRAW_ORDER:
        for _ in range(counts[cls]):
            rad = _RADIUS[cls] * scale
            for _attempt in range(60):
                i = int(rng.integers(0, len(xs)))
                x, y = float(xs[i]) + rng.uniform(-0.5, 0.5), float(ys[i]) + rng.uniform(-0.5, 0.5)
                if all((x - px) ** 2 + (y - py) ** 2 > (rad + pr) ** 2 for px, py, pr in placed):
                    break
            else:
                continue  # face full: the lesion is not drawn and not counted
            placed.append((x, y, rad))
            lesions.append(_draw_lesion(img, rng, cls, x, y, face.skin, scale))
    # clip boxes to the image
    for les in lesions:
        x, y, w, h = les.bbox
        x0, y0 = max(0.0, x), max(0.0, y)
        x1, y1 = min(float(size), x + w), min(float(size), y + h)
        les.bbox = [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]
        if les.polygon:
            les.polygon = [round(min(max(v, 0.0), float(size)), 2) for v in les.polygon]
    return lesions


def _skin_texture(img: np.ndarray, rng: np.random.Generator, face: _Face, disease: str) -> None:
    """Diffuse redness of another facial disease (rosacea: cheeks and nose; seborrhoeic
    dermatitis: yellowish scaly patches by the nose and brows)."""
    if disease == "rosacea":
        for sx in (-1, 1):
            _blob(img, face.cx + sx * face.rx * 0.45, face.cy + face.ry * 0.22, face.rx * 0.32, face.ry * 0.2,
                  (220, 70, 80), 0.45, soft=1.2)
        _blob(img, face.cx, face.cy + face.ry * 0.2, face.rx * 0.15, face.ry * 0.12, (220, 70, 80), 0.4, soft=1.0)
    elif disease == "seborrheic_dermatitis":
        for sx in (-1, 1):
            _blob(img, face.cx + sx * face.rx * 0.22, face.cy + face.ry * 0.28, face.rx * 0.12, face.ry * 0.12,
                  (225, 150, 110), 0.5, soft=1.0)
            for _ in range(12):
                x = face.cx + sx * face.rx * rng.uniform(0.12, 0.32)
                y = face.cy + face.ry * rng.uniform(0.18, 0.38)
                _blob(img, x, y, 1.8, 1.4, (245, 235, 200), 0.8, soft=0.5)


def _photographic(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lighting gradient, colour cast, slight lens softness and sensor noise."""
    import cv2

    size = img.shape[0]
    t = np.linspace(-1, 1, size, dtype=np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    grad = np.cos(ang) * t[None, :] + np.sin(ang) * t[:, None]
    light = 1.0 + rng.uniform(0.05, 0.18) * grad
    cast = rng.uniform(0.94, 1.06, 3).astype(np.float32)
    out = img * light[..., None] * cast[None, None, :] * rng.uniform(0.92, 1.06)
    out = cv2.GaussianBlur(out, (3, 3), 0.6)
    out = out + rng.normal(0, rng.uniform(2.5, 5.0), out.shape).astype(np.float32)
    return out


def _no_face_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A photo with no face in it (a wall, a shelf): background and clutter only."""
    import cv2

    img = _background(rng, size)
    for _ in range(int(rng.integers(3, 8))):
        col = tuple(float(v) for v in rng.uniform(20, 235, 3))
        c = (int(rng.integers(0, size)), int(rng.integers(0, size)))
        ax = (int(rng.integers(size // 16, size // 4)), int(rng.integers(size // 16, size // 4)))
        cv2.ellipse(img, c, ax, float(rng.uniform(0, 180)), 0, 360, col, -1)
    return img


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


def _encode_jpeg(rgb_u8: np.ndarray) -> bytes:
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
    ``rx``, ``ry``, ``long_hair``). A ``no_face`` case has no face and no lesions.
    """
    if exclusion == "no_face":
        img = _no_face_image(rng, image_size)
        return _clip_u8(_photographic(img, rng)), []
    img = _background(rng, image_size)
    face = _draw_face(img, rng, patient)
    if other_facial_disease != "none":
        _skin_texture(img, rng, face, other_facial_disease)
    lesions = _place_lesions(img, rng, face, counts)
    # the camera's auto-exposure meters on the face: dark skin is exposed brighter
    lum = float((img[face.mask] @ np.array([0.299, 0.587, 0.114], np.float32)).mean())
    img = img * float(np.clip(_FACE_LUMA_TARGET / max(lum, 1.0), 1.0, 1.3))
    img = _photographic(img, rng)
    img = _apply_exclusion_look(img, rng, exclusion)
    return _clip_u8(img), lesions


# --------------------------------------------------------------------------------------
# cohort
# --------------------------------------------------------------------------------------


_IRIS = np.array([[70, 45, 25], [95, 65, 35], [60, 90, 130], [70, 100, 70], [40, 30, 20]], np.float32)


def _patient_look(rng: np.random.Generator, fitz: str) -> dict[str, Any]:
    base = np.array(_SKIN_RGB[fitz], np.float32)
    skin = np.clip(base * rng.uniform(0.94, 1.05) + rng.normal(0, 4, 3), 0, 255)
    hair_dark = rng.uniform(15, 60)
    hair = np.array([hair_dark * rng.uniform(1.0, 1.6), hair_dark * rng.uniform(0.8, 1.1), hair_dark * 0.7])
    if rng.random() < 0.2 and fitz in ("I", "II"):
        hair = np.array([rng.uniform(110, 170), rng.uniform(70, 110), rng.uniform(30, 60)])  # light brown / red
    lip = np.clip(skin * np.array([0.85, 0.55, 0.55]) + np.array([20, 0, 0]), 0, 255)
    return {
        "skin": [float(v) for v in skin],
        "hair": [float(v) for v in hair],
        "iris": [float(v) for v in _IRIS[int(rng.integers(0, len(_IRIS)))] * rng.uniform(0.8, 1.1)],
        "lip": [float(v) for v in lip],
        "shirt": [float(v) for v in rng.uniform(20, 230, 3)],
        "rx": float(rng.uniform(118, 135)),
        "ry": float(rng.uniform(155, 175)),
        "long_hair": bool(rng.random() < 0.5),
    }


def _plan(cases: int, seed: int, exclusion_rate: float) -> tuple[list[Patient], list[dict[str, Any]]]:
    """Patients (1-3 images each), case rows and planted exclusions; no drawing yet."""
    rng = np.random.default_rng([seed, 0])
    patients: list[Patient] = []
    sizes: list[int] = []
    while sum(sizes) < cases:
        k = int(rng.choice([1, 2, 3], p=[0.6, 0.28, 0.12]))
        sizes.append(min(k, cases - sum(sizes)))
    n_excl = int(round(cases * exclusion_rate))
    # patient-level exclusions (minor, other disease) take whole patients; image-level ones single cases
    per_kind = {k: n_excl // len(EXCLUSIONS) + (1 if i < n_excl % len(EXCLUSIONS) else 0) for i, k in enumerate(EXCLUSIONS)}
    order = rng.permutation(len(sizes))
    patient_excl: dict[int, str] = {}
    singles = [int(p) for p in order if sizes[p] == 1]
    for kind in ("minor", "other_facial_disease"):
        for _ in range(per_kind[kind]):
            if singles:
                patient_excl[singles.pop()] = kind
    case_rows: list[dict[str, Any]] = []
    idx = 0
    for p, n in enumerate(sizes):
        fitz = FITZPATRICK[int(rng.integers(0, 6))]
        kind = patient_excl.get(p, "")
        age = int(rng.integers(13, 18)) if kind == "minor" else int(np.clip(round(rng.gamma(6.0, 4.2)), 18, 60))
        other = OTHER_DISEASES[int(rng.integers(0, 2))] if kind == "other_facial_disease" else "none"
        pat = Patient(
            patient_id=f"P{p + 1:04d}", age=age, sex=str(rng.choice(["F", "M"], p=[0.6, 0.4])), fitzpatrick=fitz,
            site=SITES[int(rng.integers(0, len(SITES)))], device=DEVICES[int(rng.integers(0, len(DEVICES)))],
            other_facial_disease=other, seed=int(rng.integers(0, 2**31 - 1)),
        )
        for _ in range(n):
            pat.case_indices.append(idx)
            case_rows.append({"index": idx, "patient": p, "planted_exclusion": kind})
            idx += 1
        patients.append(pat)
    # image-level exclusions on cases of patients without a patient-level one
    free = [r["index"] for r in case_rows if not r["planted_exclusion"]]
    free = [free[i] for i in rng.permutation(len(free))]
    for kind in ("blurred", "underexposed", "overexposed", "no_face"):
        for _ in range(per_kind[kind]):
            if free:
                case_rows[free.pop()]["planted_exclusion"] = kind
    # target grades: balanced-ish so every grade occurs often
    grades = rng.choice(LEVELS, size=cases, p=[0.27, 0.28, 0.25, 0.20])
    for r, g in zip(case_rows, grades):
        r["target_grade"] = str(g)
    return patients, case_rows


def simulate_readings(reference: dict[str, str], counts: dict[str, dict[str, int]], *, seed: int,
                      readers: list[tuple[str, str, float, float]] | None = None,
                      core_fraction: float = 0.4) -> list[dict[str, str]]:
    """Simulated dermatologists' grades.

    Every reader grades a core block of cases (``core_fraction`` of them, so a fully
    crossed MRMC analysis is possible); each reader grades each remaining case with their
    ``share`` probability (a partially crossed design, as in ACNE04's reader study), and
    every case is read by at least two readers. A reader errs with their error probability,
    1.5x higher when the grade rests on a single defining lesion (easy to overlook). Errors
    are one grade in 85% of cases and two grades otherwise, and go down (the reader missed
    the most severe lesion) with probability 0.7 where both directions are possible.

    Returns rows ``{reader_id, reader_group, case_id, grade}`` ordered by reader, then case.
    """
    readers = readers or DEFAULT_READERS
    rng = np.random.default_rng([seed, 2])
    case_ids = list(reference)
    n = len(case_ids)
    perm = rng.permutation(n)
    core = set(int(i) for i in perm[: int(round(n * core_fraction))])
    reads: dict[str, set[int]] = {}
    for rid, _g, _p, share in readers:
        reads[rid] = set(core) | {i for i in range(n) if i not in core and rng.random() < share}
    for i in range(n):
        readers_of = [rid for rid in reads if i in reads[rid]]
        while len(readers_of) < 2:
            rid = readers[int(rng.integers(0, len(readers)))][0]
            if rid not in readers_of:
                reads[rid].add(i)
                readers_of.append(rid)
    defining = {"II": "papule", "III": "pustule"}
    rows: list[dict[str, str]] = []
    for rid, group, p_err, _share in readers:
        rr = np.random.default_rng([seed, 3, sum(map(ord, rid))])
        for i in sorted(reads[rid]):
            cid = case_ids[i]
            g = LEVELS.index(reference[cid])
            c = counts[cid]
            single = (c.get(defining.get(reference[cid], ""), 0) == 1
                      or (reference[cid] == "IV" and c.get("nodule", 0) + c.get("cyst", 0) == 1))
            p = min(0.9, p_err * (1.5 if single else 1.0))
            u_err, u_dir, u_mag = rr.random(), rr.random(), rr.random()
            if u_err < p:
                step = 1 if u_mag < 0.85 else 2
                down_ok, up_ok = g - 1 >= 0, g + 1 < len(LEVELS)
                go_down = down_ok and (not up_ok or u_dir < 0.7)
                g = max(0, g - step) if go_down else min(len(LEVELS) - 1, g + step)
            rows.append({"reader_id": rid, "reader_group": group, "case_id": cid, "grade": LEVELS[g]})
    return rows


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in columns})
    return buf.getvalue()


MANIFEST_COLUMNS = ["case_id", "patient_id", "image", "age", "sex", "fitzpatrick", "site", "device", "diagnosis",
                    "other_facial_disease", "planted_exclusion"]


def make_cohort(out_dir: str | Path, *, cases: int, seed: int = 0, image_size: int = 512,
                exclusion_rate: float = 0.15, readers: list[tuple[str, str, float, float]] | None = None,
                workers: int = 1) -> dict[str, Any]:
    """Write a synthetic acne cohort into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Output folder (created); existing cohort files in it are replaced.
    cases : int
        Number of images (cases), >= 1.
    seed : int
        Seed; the same seed (and options) gives byte-identical files.
    image_size : int
        Square image side in pixels (>= 128); lesion sizes scale with it (6-30 px at 512).
    exclusion_rate : float
        Share of cases planted to fail the protocol (0 <= rate < 1), split evenly over
        :data:`EXCLUSIONS`: blurred, underexposed, overexposed, no_face (image-level) and
        minor, other_facial_disease (whole single-image patients).
    readers : list of (reader_id, group, error_probability, share_of_non_core_cases), optional
        Simulated dermatologists; default :data:`DEFAULT_READERS` (2 junior, 3 intermediate,
        2 senior).
    workers : int
        Processes used to draw images (output does not depend on it).

    Returns
    -------
    dict
        ``{"out_dir", "cases", "patients", "seed", "image_size", "grades": {level: n},
        "lesions": {class: n}, "planted_exclusions": {kind: n}, "readers": {reader_id: n_read},
        "files": {role: relative path}}``.
    """
    problems = []
    if not isinstance(cases, int) or cases < 1:
        problems.append(f"--cases must be a positive integer, got {cases!r}")
    if not isinstance(image_size, int) or image_size < 128:
        problems.append(f"image_size must be an integer >= 128, got {image_size!r}")
    if not (0 <= exclusion_rate < 1):
        problems.append(f"exclusion_rate must be in [0, 1), got {exclusion_rate!r}")
    if not isinstance(workers, int) or workers < 1:
        problems.append(f"workers must be a positive integer, got {workers!r}")
    if readers is not None and len(readers) < 1:
        problems.append("readers must list at least one reader")
    if problems:
        from study.errors import Problem
        raise StudyError([Problem("make_cohort", "", m) for m in problems])

    from study import io as sio

    out = Path(out_dir)
    try:
        (out / "images").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StudyError(f"cannot create the cohort folder: {e.strerror}", file=str(out), where="images") from None
    patients, case_rows = _plan(cases, seed, exclusion_rate)
    looks = [_patient_look(np.random.default_rng([seed, 1, p]), pat.fitzpatrick) for p, pat in enumerate(patients)]
    jobs = []
    for r in case_rows:
        pat = patients[r["patient"]]
        jobs.append((seed, r["index"], looks[r["patient"]], r["target_grade"], image_size, r["planted_exclusion"],
                     pat.other_facial_disease))
    if workers > 1:
        from multiprocessing import get_context

        with get_context("spawn").Pool(workers) as pool:
            rendered = pool.map(_render_job, jobs, chunksize=8)
    else:
        rendered = [_render_job(j) for j in jobs]

    manifest, reference, images, annotations = [], [], [], []
    counts_by_case: dict[str, dict[str, int]] = {}
    ann_id = 1
    for r, (jpeg, lesions) in zip(case_rows, rendered):
        pat = patients[r["patient"]]
        cid = f"C{r['index'] + 1:05d}"
        fname = f"{cid}.jpg"
        sio.write_bytes(out / "images" / fname, jpeg)
        manifest.append({"case_id": cid, "patient_id": pat.patient_id, "image": fname, "age": pat.age, "sex": pat.sex,
                         "fitzpatrick": pat.fitzpatrick, "site": pat.site, "device": pat.device, "diagnosis": "acne",
                         "other_facial_disease": pat.other_facial_disease,
                         "planted_exclusion": r["planted_exclusion"]})
        img_id = r["index"] + 1
        images.append({"id": img_id, "file_name": fname, "width": image_size, "height": image_size, "case_id": cid})
        cnt = {k: 0 for k in CLASSES}
        for les in lesions:
            cnt[les.cls] += 1
            a = {"id": ann_id, "image_id": img_id, "category_id": CLASSES.index(les.cls) + 1, "bbox": les.bbox,
                 "area": round(les.area, 2), "iscrowd": 0}
            if les.polygon:
                a["segmentation"] = [les.polygon]
            annotations.append(a)
            ann_id += 1
        counts_by_case[cid] = cnt
        reference.append({"case_id": cid, "grade": grade_from_counts(cnt), **{f"count_{k}": cnt[k] for k in CLASSES}})

    coco = {
        "info": {"description": f"acne-study synthetic cohort (seed {seed}, {cases} cases)", "version": "1"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": c, "supercategory": "acne_lesion"} for i, c in enumerate(CLASSES)],
    }
    readings = simulate_readings({r["case_id"]: r["grade"] for r in reference}, counts_by_case, seed=seed,
                                 readers=readers)
    sio.write_text(out / "manifest.csv", _csv_text(manifest, MANIFEST_COLUMNS))
    sio.write_text(out / "annotations.json", json.dumps(coco, separators=(",", ":"), sort_keys=True) + "\n")
    sio.write_text(out / "reference.csv", _csv_text(reference, ["case_id", "grade"] + [f"count_{k}" for k in CLASSES]))
    sio.write_text(out / "readings.csv", _csv_text(readings, ["reader_id", "reader_group", "case_id", "grade"]))

    summary = {
        "out_dir": str(out),
        "cases": cases,
        "patients": len(patients),
        "seed": seed,
        "image_size": image_size,
        "grades": {g: sum(1 for r in reference if r["grade"] == g) for g in LEVELS},
        "lesions": {c: sum(cnt[c] for cnt in counts_by_case.values()) for c in CLASSES},
        "planted_exclusions": {k: sum(1 for m in manifest if m["planted_exclusion"] == k) for k in EXCLUSIONS},
        "readers": {rid: sum(1 for x in readings if x["reader_id"] == rid) for rid, *_ in (readers or DEFAULT_READERS)},
        "files": {"images": "images", "manifest": "manifest.csv", "annotations": "annotations.json",
                  "reference": "reference.csv", "readings": "readings.csv"},
    }
    return summary


def _render_job(job: tuple) -> tuple[bytes, list[Lesion]]:
    seed, index, look, target, image_size, exclusion, other = job
    rng = np.random.default_rng([seed, 4, index])
    counts = _sample_counts(rng, target) if exclusion != "no_face" else {k: 0 for k in CLASSES}
    img, lesions = render_case(rng, look, counts, image_size=image_size, exclusion=exclusion,
                               other_facial_disease=other)
    return _encode_jpeg(img), lesions
