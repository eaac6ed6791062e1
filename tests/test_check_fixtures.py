"""Builders shared by the intake tests: a small, valid study made with OpenCV (no tests here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def draw_face(size: int = 320, *, seed: int = 0, skin=(225, 180, 150), background=(150, 120, 90)) -> np.ndarray:
    """A drawn, face-like RGB photo: skin-toned oval, eyes with irises, brows, nose, mouth, noisy background."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.empty((size, size, 3), np.float32)
    img[:] = background
    img += rng.normal(0, 10, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    c = (size // 2 + int(rng.integers(-5, 6)), size // 2 + int(rng.integers(-5, 6)))
    ax = (int(size * 0.28), int(size * 0.36))
    cv2.ellipse(img, c, ax, 0, 0, 360, skin, -1)
    ey, ex = c[1] - int(ax[1] * 0.25), int(ax[0] * 0.4)
    for s in (-1, 1):
        cv2.ellipse(img, (c[0] + s * ex, ey), (int(ax[0] * 0.22), int(ax[1] * 0.08)), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(img, (c[0] + s * ex, ey), int(ax[1] * 0.06), (20, 30, 40), -1)
        cv2.line(img, (c[0] + s * ex - int(ax[0] * 0.25), ey - int(ax[1] * 0.18)),
                 (c[0] + s * ex + int(ax[0] * 0.25), ey - int(ax[1] * 0.2)), (70, 50, 40), max(2, size // 100))
    cv2.line(img, (c[0], ey + 10), (c[0] - 10, c[1] + int(ax[1] * 0.2)), (190, 140, 110), 3)
    cv2.ellipse(img, (c[0], c[1] + int(ax[1] * 0.5)), (int(ax[0] * 0.35), int(ax[1] * 0.08)), 0, 0, 360,
                (160, 60, 60), -1)
    skin_noise = rng.normal(0, 6, img.shape)
    img = np.clip(img + skin_noise, 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(img, (3, 3), 0)


def write_jpeg(path: Path, rgb: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    path.write_bytes(buf.tobytes())


CLASSES = ["comedone", "papule", "pustule", "nodule", "cyst", "scar"]


def make_study(tmp: Path, *, n: int = 4, size: int = 320) -> dict[str, Path]:
    """A valid chinese-2019 study of ``n`` cases under ``tmp``; returns the paths by role."""
    tmp = Path(tmp)
    images = tmp / "images"
    for i in range(n):
        write_jpeg(images / f"C{i + 1}.jpg", draw_face(size, seed=i))
    man = ["case_id,patient_id,image,age,sex,fitzpatrick,site,device,diagnosis,other_facial_disease"]
    for i in range(n):
        man.append(f"C{i + 1},P{i + 1},C{i + 1}.jpg,{25 + i},F,III,site-A,phone-1,acne,none")
    (tmp / "manifest.csv").write_text("\n".join(man) + "\n", encoding="utf-8")
    coco = {
        "images": [{"id": 10 + i, "file_name": f"C{i + 1}.jpg", "width": size, "height": size} for i in range(n)],
        "categories": [{"id": 100 + k, "name": c} for k, c in enumerate(CLASSES)],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 100, "bbox": [50, 60, 10, 12]},
            {"id": 2, "image_id": 10, "category_id": 101, "bbox": [100, 100, 14, 14]},
            {"id": 3, "image_id": 11, "category_id": 104, "bbox": [120, 130, 20, 20],
             "segmentation": [[120, 130, 140, 130, 140, 150, 120, 150]]},
        ],
    }
    (tmp / "annotations.json").write_text(json.dumps(coco), encoding="utf-8")
    ref = ["case_id,grade,count_comedone"] + [f"C{i + 1},{['I', 'II', 'IV', 'I'][i % 4]},{i}" for i in range(n)]
    (tmp / "reference.csv").write_text("\n".join(ref) + "\n", encoding="utf-8")
    rd = ["reader_id,reader_group,case_id,grade"]
    for r, g in (("j1", "junior"), ("s1", "senior")):
        for i in range(n):
            rd.append(f"{r},{g},C{i + 1},{['I', 'II', 'III', 'IV'][(i + len(r)) % 4]}")
    (tmp / "readings.csv").write_text("\n".join(rd) + "\n", encoding="utf-8")
    shutil.copy(REPO / "protocols" / "chinese-2019.yaml", tmp / "protocol.yaml")
    (tmp / "dt.json").write_text("[]", encoding="utf-8")
    cfg = {
        "study": "t", "protocol": str(tmp / "protocol.yaml"),
        "cohort": {"manifest": str(tmp / "manifest.csv"), "image_root": str(images),
                   "annotations": str(tmp / "annotations.json"), "reference": str(tmp / "reference.csv"),
                   "readings": str(tmp / "readings.csv")},
        "models": [{"id": "vendor", "backend": "precomputed", "detections": str(tmp / "dt.json"), "classes": CLASSES}],
    }
    import yaml

    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return {"root": tmp, "images": images, "manifest": tmp / "manifest.csv", "annotations": tmp / "annotations.json",
            "reference": tmp / "reference.csv", "readings": tmp / "readings.csv", "protocol": tmp / "protocol.yaml",
            "config": tmp / "config.yaml"}
