"""Image-quality gate: each check on drawn faces, a real photo, files, and the process pool."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pandas as pd
import pytest

from study import quality
from study.protocol import load_protocol
from test_check_fixtures import REPO, draw_face, write_jpeg

T = load_protocol(REPO / "protocols" / "chinese-2019.yaml").protocol.quality


@pytest.fixture(scope="module")
def face():
    return draw_face(512, seed=1)


def test_sharp_well_exposed_face_passes(face):
    r = quality.assess_image(face, thresholds=T)
    assert r["quality_pass"], r["quality_reasons"]
    assert r["face_found"] and 0.2 < r["face_fraction"] < 0.8
    # the face box lies on the drawn oval (centre 256 +- 5, half-axes 143 x 184)
    cx, cy = (r["face_x0"] + r["face_x1"]) / 2, (r["face_y0"] + r["face_y1"]) / 2
    assert abs(cx - 256) < 40 and abs(cy - 256) < 60
    assert r["skin_fraction"] > 0.8


def test_real_photo_face_found_where_it_is():
    """scikit-image's astronaut (Eileen Collins, NASA, public domain): her face is at x~165-290, y~55-185."""
    skdata = pytest.importorskip("skimage.data")
    img = skdata.astronaut()
    r = quality.assess_image(img, thresholds=T)
    assert r["face_found"]
    cx, cy = (r["face_x0"] + r["face_x1"]) / 2, (r["face_y0"] + r["face_y1"]) / 2
    assert 200 < cx < 260 and 90 < cy < 150
    assert not r["quality_reasons"] or r["quality_reasons"] == ["face_too_small"]  # a half-body portrait
    # a head-and-shoulders crop of the same photo passes the whole gate
    crop = img[0:300, 80:380]
    assert quality.assess_image(np.ascontiguousarray(crop), thresholds=T.model_copy(update={"min_width": 200,
                                "min_height": 200}))["quality_pass"]


@pytest.mark.parametrize("name,transform,reason", [
    ("blurred", lambda im: cv2.GaussianBlur(im, (0, 0), 8), "blurred"),
    ("dark", lambda im: (im * 0.1).astype(np.uint8), "underexposed"),
    ("bright", lambda im: np.clip(im.astype(float) * 2.5 + 90, 0, 255).astype(np.uint8), "overexposed"),
    ("no_face", lambda im: np.clip(np.full_like(im, 128) + np.random.default_rng(0).normal(0, 12, im.shape), 0, 255)
     .astype(np.uint8), "no_face"),
    ("small", lambda im: cv2.resize(im, (200, 200), interpolation=cv2.INTER_AREA), "low_resolution"),
])
def test_each_failure_has_its_first_reason(face, name, transform, reason):
    r = quality.assess_image(transform(face), thresholds=T)
    assert not r["quality_pass"]
    assert r["quality_first_reason"] == reason, r["quality_reasons"]
    assert r["quality_reasons"][0] == reason


def test_cropped_face(face):
    t = T.model_copy(update={"face_margin_min": 0.05})
    r = quality.assess_image(np.ascontiguousarray(face[:, 100:]), thresholds=t)
    assert r["face_found"] and r["face_margin"] < 0.05
    assert r["quality_reasons"] == ["face_cropped"]
    assert quality.assess_image(face, thresholds=t)["quality_pass"]


def test_occluded_face(face):
    """A medical mask over the lower face halves the skin share of the face box."""
    masked = face.copy()
    masked[int(512 * 0.45):int(512 * 0.9), int(512 * 0.18):int(512 * 0.82)] = (200, 200, 210)
    t = T.model_copy(update={"skin_fraction_min": 0.6})
    r = quality.assess_image(masked, thresholds=t)
    assert r["face_found"] and r["skin_fraction"] < 0.6
    assert r["quality_reasons"] == ["face_occluded"]
    assert quality.assess_image(face, thresholds=t)["quality_pass"]


def test_features_match_their_definitions():
    """Hand-checkable values: Laplacian variance and exposure shares on a known image."""
    img = np.zeros((100, 100, 3), np.uint8)
    img[:, 50:] = 255  # half black, half white, at the analysis size already
    t = T.model_copy(update={"face_required": False, "occlusion_check": False})
    r = quality.assess_image(img, thresholds=t)
    assert r["dark_fraction"] == pytest.approx(0.5) and r["bright_fraction"] == pytest.approx(0.5)
    assert r["mean_value"] == pytest.approx(127.5)
    lap = cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F, ksize=1)
    assert r["laplacian_var"] == pytest.approx(float(lap.var()), rel=1e-5)
    # brenner: only the two columns either side of the edge differ by 255 (two columns apart)
    assert r["brenner"] == pytest.approx(2 * 100 * 255 ** 2 / (100 * 98), rel=1e-6)


def _stencil(gray: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """3x3 correlation in float64 with OpenCV's default border (reflect-101 = numpy's "reflect")."""
    p = np.pad(gray.astype(np.float64), 1, mode="reflect")
    h, w = gray.shape
    return sum(kernel[i, j] * p[i:i + h, j:j + w] for i in range(3) for j in range(3))


@pytest.mark.parametrize("kind", ["noise", "face"])
def test_sharpness_and_exposure_equal_float64_definitions(kind, face):
    """Issue 16 computes the derivatives in int16 and sums squares with cv2.norm; the values
    must equal the textbook definitions in float64 (Pech-Pacheco 2000 Laplacian variance,
    Tenenbaum 1970 Tenengrad with the 3x3 Sobel kernels, Brenner 1976, V = max(R, G, B)),
    including saturated extremes (|Sobel| = 1020)."""
    rng = np.random.default_rng(3)
    if kind == "noise":
        img = (rng.integers(0, 2, (300, 257, 3)) * 255).astype(np.uint8)  # black/white noise: largest derivatives
    else:
        img = face
    t = T.model_copy(update={"face_required": False, "occlusion_check": False})
    r = quality.assess_image(img, thresholds=t)
    gray = cv2.cvtColor(quality._resize_longest(img, t.analysis_size), cv2.COLOR_RGB2GRAY)
    lap = _stencil(gray, np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]]))
    sx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    gx, gy = _stencil(gray, sx), _stencil(gray, sx.T)
    g = gray.astype(np.float64)
    assert r["laplacian_var"] == pytest.approx(lap.var(), rel=1e-12)
    assert r["tenengrad"] == pytest.approx(np.mean(gx ** 2) + np.mean(gy ** 2), rel=1e-12)
    assert r["brenner"] == pytest.approx(np.mean((g[:, 2:] - g[:, :-2]) ** 2), rel=1e-12)
    small = quality._resize_longest(img, t.analysis_size)
    assert r["mean_value"] == pytest.approx(small.max(axis=2).mean(), rel=1e-12)
    if kind == "noise":
        assert np.abs(gx).max() == 1020 and np.abs(lap).max() == 1020  # the int16 range is exercised


def test_assess_cases_files_pool_and_undecodable(tmp_path):
    paths = []
    for i in range(6):
        p = tmp_path / f"c{i}.jpg"
        write_jpeg(p, draw_face(1024, seed=i))
        paths.append(str(p))
    (tmp_path / "bad.jpg").write_bytes(b"")
    cases = pd.DataFrame({"case_id": [f"c{i}" for i in range(6)] + ["bad"], "image_path": paths + [str(tmp_path / "bad.jpg")],
                          "width": [1024] * 6 + [-1], "height": [1024] * 6 + [-1], "decodable": [True] * 6 + [False]})
    one = quality.assess_cases(cases, thresholds=T, workers=1, progress=False, chunk=2)
    two = quality.assess_cases(cases, thresholds=T, workers=2, progress=False, chunk=2)
    pd.testing.assert_frame_equal(one, two)
    assert list(one.columns) == quality.COLUMNS
    assert one["quality_pass"].tolist() == [True] * 6 + [False]
    assert one.loc[6, "quality_reasons"] == ["not_decodable"]
    # face boxes in original pixels (the file was decoded at 1/2 scale)
    assert (one.loc[:5, "face_x1"] > 600).all() and (one.loc[:5, "width"] == 1024).all()
    assert one.loc[:5, "analysis_width"].tolist() == [512] * 6


def test_decide_order_and_unrequired_face():
    f = {"width": 1000, "height": 1000, "dark_fraction": 0.9, "bright_fraction": 0.0, "mean_value": 10.0,
         "laplacian_var": 0.1, "tenengrad": 1.0, "face_found": False, "face_fraction": 0.0,
         "face_margin": math.nan, "skin_fraction": math.nan}
    assert quality.decide(f, thresholds=T) == ["underexposed", "blurred", "no_face"]
    half_face = T.model_copy(update={"face_required": False, "occlusion_check": False})
    assert quality.decide(f, thresholds=half_face) == ["underexposed", "blurred"]


def test_coarse_to_fine_face_search_agrees_with_the_exhaustive_one(tmp_path):
    """The default coarse-to-fine search finds the face the exhaustive search (the gate before
    issue 16) finds, on synthetic face photos (faces, planted no-face/occluded/blurred cases),
    drawn faces and the astronaut photo; the boxes overlap closely."""
    from study.synth import make_cohort

    make_cohort(tmp_path, cases=16, seed=2, image_size=512, exclusion_rate=0.4, workers=1)
    images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2GRAY) for p in sorted((tmp_path / "images").iterdir())]
    images += [cv2.cvtColor(draw_face(512, seed=s), cv2.COLOR_RGB2GRAY) for s in (1, 2, 3)]
    skdata = pytest.importorskip("skimage.data")
    images.append(cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2GRAY))
    found = 0
    for g in images:
        fast = quality.detect_face(g, size=T.face_detection_size, min_fraction=T.face_fraction_min)
        full = quality.detect_face(g, size=T.face_detection_size, min_fraction=T.face_fraction_min, exhaustive=True)
        assert (fast is None) == (full is None)
        if fast is not None:
            found += 1
            ix = max(0.0, min(fast[2], full[2]) - max(fast[0], full[0]))
            iy = max(0.0, min(fast[3], full[3]) - max(fast[1], full[1]))
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
            assert ix * iy / (area(fast) + area(full) - ix * iy) > 0.6
    assert found >= 10  # most of the photos have a face: the comparison is not vacuous
