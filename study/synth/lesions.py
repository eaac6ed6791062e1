"""Drawing acne lesions of six classes onto a face, and the annotation of each."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from study.synth.face import Face, shade


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


def blob(img: np.ndarray, cx: float, cy: float, rx: float, ry: float, color, alpha: float, *, soft: float = 0.6,
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
            blob(img, x, y, r * 1.5, r * 1.5, skin * 0.8, 0.6, soft=0.5)
            blob(img, x, y, r, r, (30, 24, 20), 0.95, soft=0.35)
        else:  # closed comedone (whitehead): small pale bump
            blob(img, x, y, r * 1.5, r * 1.5, skin * 0.85, 0.5, soft=0.5)
            blob(img, x, y, r, r, (250, 246, 232), 0.95, soft=0.4)
            blob(img, x - r * 0.3, y - r * 0.3, r * 0.35, r * 0.35, (255, 255, 255), 0.8, soft=0.5)
        h = 2 * r * 1.35
        return Lesion(cls, [x - h / 2, y - h / 2, h, h])
    if cls == "papule":
        r = rng.uniform(4.5, 7.5) * scale
        red = np.array([205, 55, 55], np.float32) if not dark_skin else np.array([120, 30, 35], np.float32)
        blob(img, x, y, r * 1.3, r * 1.3, red * 0.85 + skin * 0.15, 0.45, soft=0.6)
        blob(img, x, y, r, r, red, 0.9, soft=0.45)
        blob(img, x - r * 0.35, y - r * 0.4, r * 0.3, r * 0.25, np.minimum(red + 80, 255), 0.7, soft=0.7)
        h = 2 * r * 1.25
        return Lesion(cls, [x - h / 2, y - h / 2, h, h])
    if cls == "pustule":
        r = rng.uniform(5.5, 8.5) * scale
        red = np.array([215, 50, 45], np.float32) if not dark_skin else np.array([140, 35, 35], np.float32)
        blob(img, x, y, r * 1.35, r * 1.35, red, 0.75, soft=0.45)
        blob(img, x, y, r * 0.62, r * 0.62, (252, 236, 150), 1.0, soft=0.3)
        blob(img, x - r * 0.15, y - r * 0.2, r * 0.25, r * 0.25, (255, 255, 235), 0.9, soft=0.5)
        h = 2 * r * 1.35
        return Lesion(cls, [x - h / 2, y - h / 2, h, h])
    if cls == "nodule":
        r = rng.uniform(9.0, 13.5) * scale
        col = np.array([125, 40, 80], np.float32) if not dark_skin else np.array([70, 20, 45], np.float32)
        ang = rng.uniform(0, np.pi)
        e = rng.uniform(0.85, 1.15)
        blob(img, x, y, r * 1.25 * e, r * 1.25 / e, col * 0.7 + skin * 0.3, 0.6, soft=0.7, angle=ang)
        blob(img, x, y, r * 0.95 * e, r * 0.95 / e, col, 0.85, soft=0.5, angle=ang)
        blob(img, x + r * 0.2, y + r * 0.25, r * 0.5, r * 0.5, col * 0.6, 0.6, soft=0.8)
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
        cv2.polylines(img, [np.round(pts * 16).astype(np.int32)], True, shade(col, 0.6), max(1, int(2 * scale)),
                      lineType=cv2.LINE_AA, shift=4)
        blob(img, x - r * 0.3, y - r * 0.3, r * 0.35, r * 0.22, (255, 235, 245), 0.75, soft=0.8)
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
        cv2.polylines(img, [np.round((pts + sh) * 16).astype(np.int32)], True, shade(skin, 0.45),
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


def place_lesions(img: np.ndarray, rng: np.random.Generator, face: Face, counts: dict[str, int]) -> list[Lesion]:
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


def skin_texture(img: np.ndarray, rng: np.random.Generator, face: Face, disease: str) -> None:
    """Diffuse redness of another facial disease (rosacea: cheeks and nose; seborrhoeic
    dermatitis: yellowish scaly patches by the nose and brows)."""
    if disease == "rosacea":
        for sx in (-1, 1):
            blob(img, face.cx + sx * face.rx * 0.45, face.cy + face.ry * 0.22, face.rx * 0.32, face.ry * 0.2,
                  (220, 70, 80), 0.45, soft=1.2)
        blob(img, face.cx, face.cy + face.ry * 0.2, face.rx * 0.15, face.ry * 0.12, (220, 70, 80), 0.4, soft=1.0)
    elif disease == "seborrheic_dermatitis":
        for sx in (-1, 1):
            blob(img, face.cx + sx * face.rx * 0.22, face.cy + face.ry * 0.28, face.rx * 0.12, face.ry * 0.12,
                  (225, 150, 110), 0.5, soft=1.0)
            for _ in range(12):
                x = face.cx + sx * face.rx * rng.uniform(0.12, 0.32)
                y = face.cy + face.ry * rng.uniform(0.18, 0.38)
                blob(img, x, y, 1.8, 1.4, (245, 235, 200), 0.8, soft=0.5)
