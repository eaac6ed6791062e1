"""Pixel formats (issue 18 item 6): grey (L), 16-bit grey (I;16), 16-bit RGB PNG, palette (P), RGBA and CMYK
JPEG files of one drawn face are read as 8-bit RGB by intake (probe), the quality gate (with its face check),
prediction and the example figures (one decoder, ``study.cohort.images.read_rgb``), and get the quality verdict
of the RGB file of the same picture. A grey picture fails as ``grayscale`` (the skin-colour occlusion rule cannot
be applied without colour), never as ``face_occluded``.

References: Pillow writes the files and, for the palette and CMYK files, gives the expected RGB pixels
(``Image.convert("RGB")``); 16-bit values are expected as ``v >> 8`` (libpng's ``png_set_strip_16``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from test_check_fixtures import REPO, draw_face

from study import quality
from study.cohort.images import decode_rgb, probe_image, read_rgb
from study.inference import read_image
from study.protocol import load_protocol

T = load_protocol(REPO / "protocols" / "chinese-2019.yaml").protocol.quality


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The same face in every format; ``*_ref`` files are the 8-bit RGB versions of the same pictures."""
    d = tmp_path_factory.mktemp("formats")
    face = draw_face(512, seed=1)
    gray = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    low = np.random.default_rng(0).integers(0, 256, gray.shape, dtype=np.uint16)  # the low byte: noise below 8 bits
    out = {name: d / name for name in ("rgb_ref.png", "gray_ref.png", "rgb.jpg", "l.png", "i16.png", "i16_1024.png",
                                        "rgb16.png", "p.png", "rgba.png", "cmyk.jpg")}
    Image.fromarray(face).save(out["rgb_ref.png"])
    Image.fromarray(np.dstack([gray] * 3)).save(out["gray_ref.png"])  # an RGB file of a grey picture
    Image.fromarray(face).save(out["rgb.jpg"], quality=95)
    Image.fromarray(gray).save(out["l.png"])
    Image.fromarray((gray.astype(np.uint16) << 8) | low).save(out["i16.png"])
    big = cv2.resize(gray, (1024, 1024), interpolation=cv2.INTER_NEAREST)  # decoded reduced (1/2) by the gate
    Image.fromarray(big.astype(np.uint16) << 8 | 0x7F).save(out["i16_1024.png"])
    assert Image.open(out["i16.png"]).mode == "I;16"
    ok, buf = cv2.imencode(".png", cv2.cvtColor((face.astype(np.uint16) << 8) | 0xA5, cv2.COLOR_RGB2BGR))
    assert ok
    out["rgb16.png"].write_bytes(buf.tobytes())
    Image.fromarray(face).quantize(256).save(out["p.png"])
    alpha = np.full(gray.shape, 255, np.uint8)
    Image.fromarray(np.dstack([face, alpha])).save(out["rgba.png"])
    Image.fromarray(face).convert("CMYK").save(out["cmyk.jpg"], quality=95)
    assert Image.open(out["cmyk.jpg"]).mode == "CMYK" and Image.open(out["p.png"]).mode == "P"
    return out


def test_every_format_decodes_to_the_expected_8bit_rgb(files):
    face = np.asarray(Image.open(files["rgb_ref.png"]))
    gray3 = np.asarray(Image.open(files["gray_ref.png"]))
    exact = {"l.png": gray3, "i16.png": gray3, "rgb16.png": face, "rgba.png": face,
             "p.png": np.asarray(Image.open(files["p.png"]).convert("RGB"))}
    for name, expected in exact.items():
        got = read_rgb(files[name])
        assert got is not None and got.dtype == np.uint8 and got.shape == (512, 512, 3), name
        np.testing.assert_array_equal(got, expected, err_msg=name)
        np.testing.assert_array_equal(read_image(files[name]), expected, err_msg=f"prediction's reader, {name}")
    # CMYK JPEG: as Pillow converts it, within compression and rounding
    cmyk = read_rgb(files["cmyk.jpg"]).astype(int)
    assert np.abs(cmyk - np.asarray(Image.open(files["cmyk.jpg"]).convert("RGB"), dtype=int)).mean() < 2.0
    half = read_rgb(files["i16_1024.png"], reduce=2)
    assert half.shape == (512, 512, 3) and np.abs(half.astype(int) - gray3).max() <= 1
    assert decode_rgb(b"not an image") is None and read_rgb(files["l.png"].with_name("missing.png")) is None
    with pytest.raises(ValueError, match="reduce"):
        decode_rgb(b"x", reduce=3)


def test_intake_reads_every_format(files):
    for name, path in files.items():
        p = probe_image(path)
        assert p["decodable"] and p["image_error"] == "", (name, p["image_error"])
        assert (p["width"], p["height"]) == ((1024, 1024) if name == "i16_1024.png" else (512, 512))


@pytest.mark.parametrize("name,reference", [
    ("rgb16.png", "rgb_ref.png"), ("p.png", "rgb_ref.png"), ("rgba.png", "rgb_ref.png"), ("cmyk.jpg", "rgb.jpg"),
    ("l.png", "gray_ref.png"), ("i16.png", "gray_ref.png"), ("i16_1024.png", "gray_ref.png"),
])
def test_quality_verdict_is_that_of_the_rgb_picture(files, name, reference):
    ref = quality.assess_file(str(files[reference]), thresholds=T, width=512, height=512)
    size = 1024 if name == "i16_1024.png" else 512
    got = quality.assess_file(str(files[name]), thresholds=T, width=size, height=size)
    assert got["quality_reasons"] == ref["quality_reasons"]
    assert got["face_found"] == ref["face_found"] and got["face_found"]
    for f in ("mean_value", "dark_fraction", "skin_fraction", "colour_fraction"):
        assert got[f] == pytest.approx(ref[f], abs=0.02 * max(1.0, abs(ref[f]))), f
    if reference == "gray_ref.png":
        assert got["quality_reasons"] == ["grayscale"] and "face_occluded" not in got["quality_reasons"]
        assert got["colour_fraction"] < quality.COLOUR_FRACTION_MIN
    else:
        assert got["quality_pass"] and got["colour_fraction"] > 0.5


def test_grayscale_only_replaces_the_colour_check():
    """A grey picture still fails the checks that do not need colour (here: underexposed), and passes when the
    protocol does not check occlusion; an occluded colour face still fails as face_occluded."""
    face = draw_face(512, seed=1)
    gray3 = np.dstack([cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)] * 3)
    dark = quality.assess_image((gray3 * 0.1).astype(np.uint8), thresholds=T)
    assert dark["quality_reasons"][0] == "underexposed"
    no_occlusion = T.model_copy(update={"occlusion_check": False})
    assert quality.assess_image(gray3, thresholds=no_occlusion)["quality_pass"]
    masked = face.copy()
    masked[230:460, 92:420] = (200, 200, 210)
    r = quality.assess_image(masked, thresholds=T.model_copy(update={"skin_fraction_min": 0.6}))
    assert r["quality_reasons"] == ["face_occluded"] and r["colour_fraction"] > quality.COLOUR_FRACTION_MIN
