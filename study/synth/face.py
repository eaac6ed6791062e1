"""Drawing a face photo: background, a patient's look, the face, the camera."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: mean skin colour (RGB) per Fitzpatrick type; each face varies around it
_SKIN_RGB: dict[str, tuple[int, int, int]] = {
    "I": (246, 214, 196),
    "II": (234, 190, 160),
    "III": (208, 158, 120),
    "IV": (176, 120, 84),
    "V": (128, 84, 56),
    "VI": (84, 54, 38),
}


def background(rng: np.random.Generator, size: int) -> np.ndarray:
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
class Face:
    cx: float
    cy: float
    rx: float
    ry: float
    skin: np.ndarray  # RGB float
    mask: np.ndarray  # HxW bool: where lesions may go (cheeks, forehead, chin)


def shade(c: np.ndarray, f: float) -> tuple[float, float, float]:
    return tuple(float(v) for v in np.clip(np.asarray(c) * f, 0, 255))


def draw_face(img: np.ndarray, rng: np.random.Generator, patient_rng_vals: dict[str, Any]) -> Face:
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
    neck_col = shade(skin, 0.85)
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
                    shade(skin, 0.92), -1)
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
                    shade(skin, socket), -1)
        cv2.ellipse(img, (int(ex), int(eye_y)), (int(ew), int(eh)), 0, 0, 360, sclera, -1)
        cv2.circle(img, (int(ex), int(eye_y)), max(2, int(eh * 0.95)), tuple(iris_col), -1)
        cv2.circle(img, (int(ex), int(eye_y)), max(1, int(eh * 0.45)), (15, 12, 10), -1)
        cv2.ellipse(img, (int(ex), int(eye_y)), (int(ew), int(eh)), 0, 180, 360, (40, 30, 25), max(1, int(2 * s)))
        # brow
        by = eye_y - ry * 0.2
        cv2.ellipse(img, (int(ex), int(by + ry * 0.04)), (int(ew * 1.25), int(ry * 0.06)), 0, 190, 350,
                    tuple(shade(hair, 1.0)), max(2, int(7 * s)))
    # nose: bright bridge, dark nostrils and side shadow
    ny = cy + ry * 0.25
    cv2.line(img, (int(cx), int(eye_y)), (int(cx), int(ny - ry * 0.05)), shade(skin, 1.08), max(2, int(rx * 0.09)))
    cv2.line(img, (int(cx - rx * 0.1), int(eye_y + ry * 0.05)), (int(cx - rx * 0.12), int(ny)), shade(skin, 0.8),
             max(1, int(3 * s)))
    cv2.ellipse(img, (int(cx), int(ny)), (int(rx * 0.17), int(ry * 0.06)), 0, 0, 360, shade(skin, 0.88), -1)
    for sx in (-1, 1):
        cv2.ellipse(img, (int(cx + sx * rx * 0.07), int(ny + ry * 0.015)), (int(rx * 0.045), int(ry * 0.022)), 0, 0,
                    360, shade(skin, 0.45), -1)
    # mouth
    my = cy + ry * 0.5
    lip = np.array(patient_rng_vals["lip"], dtype=np.float32)
    cv2.ellipse(img, (int(cx), int(my)), (int(rx * 0.3), int(ry * 0.07)), 0, 0, 360, tuple(float(v) for v in lip), -1)
    cv2.line(img, (int(cx - rx * 0.29), int(my)), (int(cx + rx * 0.29), int(my)), shade(lip, 0.45), max(1, int(3 * s)))

    # where lesions go: inside the face ellipse, below the hairline, away from eyes/nose/mouth
    inside = ((xx - cx) / (rx * 0.9)) ** 2 + ((yy - cy) / (ry * 0.9)) ** 2 <= 1.0
    below_hair = yy > cy - ry * 0.55
    eyes = (np.abs(yy - (eye_y - ry * 0.07)) < ry * 0.2) & (np.abs(np.abs(xx - cx) - eye_dx) < ew * 1.6)
    nose = (np.abs(xx - cx) < rx * 0.22) & (yy > eye_y - ry * 0.1) & (yy < ny + ry * 0.1)
    mouth = (np.abs(xx - cx) < rx * 0.4) & (np.abs(yy - my) < ry * 0.13)
    mask = inside & below_hair & ~eyes & ~nose & ~mouth
    return Face(cx, cy, rx, ry, np.asarray(skin, dtype=np.float32), mask)


_IRIS = np.array([[70, 45, 25], [95, 65, 35], [60, 90, 130], [70, 100, 70], [40, 30, 20]], np.float32)


def patient_look(rng: np.random.Generator, fitz: str) -> dict[str, Any]:
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


def photographic(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
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


def no_face_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A photo with no face in it (a wall, a shelf): background and clutter only."""
    import cv2

    img = background(rng, size)
    for _ in range(int(rng.integers(3, 8))):
        col = tuple(float(v) for v in rng.uniform(20, 235, 3))
        c = (int(rng.integers(0, size)), int(rng.integers(0, size)))
        ax = (int(rng.integers(size // 16, size // 4)), int(rng.integers(size // 16, size // 4)))
        cv2.ellipse(img, c, ax, float(rng.uniform(0, 180)), 0, 360, col, -1)
    return img
