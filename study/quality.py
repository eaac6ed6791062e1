"""Image-quality gate: decodability, resolution, sharpness, exposure, face found, occlusion/cropping.

Modelled on the smartphone study's gate (blurred, badly exposed, no face, occluded photos
excluded). Every feature is computed on a copy downscaled to ``analysis_size`` (longest
side), so the thresholds do not depend on the camera's resolution, and every feature is
saved so a reviewer can see why an image failed.

Features (names are ``quality.parquet`` columns)
------------------------------------------------
- ``laplacian_var``: variance of the Laplacian of the grey image (Pech-Pacheco et al. 2000,
  "Diatom autofocusing in brightfield microscopy"); low = blurred.
- ``tenengrad``: mean squared Sobel gradient magnitude (Tenenbaum 1970; Krotkov 1987); low = blurred.
- ``brenner``: mean squared difference of pixels two columns apart (Brenner et al. 1976);
  reported, not thresholded.
- ``dark_fraction`` / ``bright_fraction`` / ``mean_value``: share of pixels whose HSV value
  channel V = max(R, G, B) is <= ``dark_value`` / >= ``bright_value``, and mean V.
- ``face_found``, ``face_fraction`` (face box area / image area), ``face_x0..face_y1``
  (largest face box, original pixels): scikit-image's LBP cascade detector with the frontal
  face cascade that ships inside scikit-image (trained by OpenCV; Liao et al. 2007 MB-LBP).
  OpenCV 5 no longer ships Haar cascades or ``CascadeClassifier`` in its Python wheels, so
  this is the detector that works offline from an installed package.
- ``face_margin``: smallest distance of the face box to the image border, as a share of
  the image side (0 = touching: the face is cropped).
- ``skin_fraction``: share of the face box's pixels inside the YCrCb skin rule of
  Chai & Ngan (1999) (133 <= Cr <= 173, 77 <= Cb <= 127); low = the face is occluded
  (hands, hair, mask, objects).
- ``colour_fraction``: share of the face box's pixels with colour, i.e. a chroma
  max(|Cr - 128|, |Cb - 128|) above 4 levels (ITU-R BT.601 YCrCb, as OpenCV computes it);
  below 1 % the picture is grey (an ``L`` or ``I;16`` file, or an RGB file whose channels are
  equal), so the skin-colour rule cannot tell skin from an occluder: such an image fails as
  ``grayscale``, never as ``face_occluded``.

Reasons, in the order the first failed one is reported: ``not_decodable``,
``low_resolution``, ``underexposed``, ``overexposed``, ``blurred``, ``no_face``,
``face_too_small``, ``face_cropped``, ``grayscale``, ``face_occluded``. Exposure comes before blur
because a dark photo also has weak gradients.
"""

from __future__ import annotations

import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from study.protocol import QualityThresholds

REASONS = ["not_decodable", "low_resolution", "underexposed", "overexposed", "blurred", "no_face",
           "face_too_small", "face_cropped", "grayscale", "face_occluded"]

FEATURES = ["laplacian_var", "tenengrad", "brenner", "dark_fraction", "bright_fraction", "mean_value",
            "face_found", "face_fraction", "face_margin", "skin_fraction", "colour_fraction"]

#: chroma (levels from the neutral 128 of Cr or Cb) above which a pixel has colour
COLOUR_CHROMA = 4
#: share of the face box's pixels with colour below which the picture is grey (reason ``grayscale``)
COLOUR_FRACTION_MIN = 0.01

_DETECTOR = None


def _detector():
    """The scikit-image LBP frontal-face cascade, loaded once per process."""
    global _DETECTOR
    if _DETECTOR is None:
        try:
            from skimage import data
            from skimage.feature import Cascade
        except ImportError:
            from study.errors import StudyError

            raise StudyError("the face check needs scikit-image (its LBP frontal-face cascade ships inside it): "
                             "pip install scikit-image, or set quality.face_required and occlusion_check to false",
                             file="environment") from None

        _DETECTOR = Cascade(data.lbp_frontal_face_cascade_filename())
    return _DETECTOR


def _resize_longest(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    s = size / max(h, w)
    if s >= 1:
        return img
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


#: scales searched together in one band of the coarse-to-fine face search (:func:`detect_face`)
FACE_BAND_SCALES = 3
#: window growth between scales of the face search
FACE_SCALE_FACTOR = 1.2


def detect_face(gray: np.ndarray, *, size: int = 160, min_fraction: float = 0.0,
                exhaustive: bool = False) -> tuple[float, float, float, float] | None:
    """Largest frontal face in a grey image, as ``(x0, y0, x1, y1)`` in ``gray``'s pixels, or None.

    The search runs on a copy resized to ``size`` (longest side), with scale step 1.2 and
    at least 2 overlapping raw detections required (which removes isolated false hits in
    textured backgrounds). Faces whose side is below ``max(24 px, 0.15 * shorter side,
    0.8 * sqrt(min_fraction) * shorter side)`` are not searched for: they could not pass
    ``face_fraction_min`` anyway, and skipping them keeps the search fast.

    The window sizes are the grid ``min_side * 1.2**k`` of the exhaustive search; by default
    they are searched coarse to fine, :data:`FACE_BAND_SCALES` sizes at a time from the
    largest, and the search stops at the first band with a face: the largest face is found
    after scanning only the few large windows a face photo needs (the small windows hold
    almost all positions). When no band holds a face, every size is scanned at once, as the
    exhaustive search does, so a face whose raw hits are spread over sizes of two bands
    (cropped, partly covered) is still grouped and found: the search finds a face whenever
    the exhaustive one does; the box of a face found in a band can differ slightly.
    ``exhaustive=True`` scans every size at once only (the gate before issue 16;
    ``bench/bench_quality.py`` prints the two's time and pass/fail agreement).
    """
    small = _resize_longest(gray, size)
    sh, sw = small.shape[:2]
    scale = gray.shape[0] / sh
    short = min(sh, sw)
    min_side = int(max(24, 0.15 * short, math.sqrt(max(min_fraction, 0.0)) * 0.8 * short))
    if min_side > short:
        return None
    img = small.astype(np.float64) / 255.0
    if exhaustive:
        bands = [(float(min_side), float(max(sh, sw)))]
    else:
        grid = []
        s = float(min_side)
        while s <= short:
            grid.append(s)
            s *= FACE_SCALE_FACTOR
        bands = [(grid[max(0, hi - FACE_BAND_SCALES)], grid[hi - 1])
                 for hi in range(len(grid), 0, -FACE_BAND_SCALES)]
        if len(bands) > 1:  # nothing in any band: a face whose raw hits span two bands needs them grouped together
            bands.append((float(min_side), float(max(sh, sw))))
    dets: list = []
    for lo, hi in bands:
        max_side = (sh, sw) if hi >= max(sh, sw) else (int(hi) + 1, int(hi) + 1)
        dets = _detector().detect_multi_scale(img=img, scale_factor=FACE_SCALE_FACTOR, step_ratio=1,
                                              min_size=(int(lo), int(lo)), max_size=max_side, min_neighbor_number=2)
        if dets:
            break
    if not dets:
        return None
    d = max(dets, key=lambda d: d["width"] * d["height"])
    x0, y0 = d["c"] * scale, d["r"] * scale
    return (x0, y0, x0 + d["width"] * scale, y0 + d["height"] * scale)


def image_features(rgb: np.ndarray, *, thresholds: QualityThresholds, original_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Quality features of an RGB image (any size; resized to ``analysis_size`` first).

    ``original_size`` = (width, height) of the file when ``rgb`` is already a reduced copy;
    face boxes are returned in original pixels.
    """
    import cv2

    t = thresholds
    H0, W0 = rgb.shape[:2]
    W, H = original_size or (W0, H0)
    small = _resize_longest(rgb, t.analysis_size)
    sh, sw = small.shape[:2]
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    # The derivatives of 8-bit pixels are small integers (|Laplacian| and |Sobel| <= 1020), held
    # exactly in int16; their squares are summed in double by cv2.norm (NORM_L2SQR).
    lap = cv2.Laplacian(gray, cv2.CV_16S, ksize=1)
    _, lap_sd = cv2.meanStdDev(lap)
    gx = cv2.Sobel(gray, cv2.CV_16S, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_16S, 0, 1, ksize=3)
    tenengrad = (cv2.norm(gx, cv2.NORM_L2SQR) + cv2.norm(gy, cv2.NORM_L2SQR)) / gray.size
    if sw > 2:  # sum of squared differences of pixels two columns apart
        brenner = cv2.norm(gray[:, 2:], gray[:, :-2], cv2.NORM_L2SQR) / (sh * (sw - 2))
    else:
        brenner = 0.0
    v = cv2.cvtColor(small, cv2.COLOR_RGB2HSV_FULL)[..., 2]  # HSV value channel V = max(R, G, B)
    n = float(v.size)
    out: dict[str, Any] = {
        "width": int(W), "height": int(H), "analysis_width": int(sw), "analysis_height": int(sh),
        "laplacian_var": float(lap_sd[0, 0]) ** 2,
        "tenengrad": float(tenengrad),
        "brenner": float(brenner),
        "dark_fraction": cv2.countNonZero(cv2.compare(v, t.dark_value, cv2.CMP_LE)) / n,
        "bright_fraction": cv2.countNonZero(cv2.compare(v, t.bright_value, cv2.CMP_GE)) / n,
        "mean_value": float(cv2.mean(v)[0]),
    }
    face = detect_face(gray, size=t.face_detection_size, min_fraction=t.face_fraction_min) if (
        t.face_required or t.occlusion_check) else None
    if face is None:
        out.update(face_found=False, face_fraction=0.0, face_margin=float("nan"), skin_fraction=float("nan"),
                   colour_fraction=float("nan"), face_x0=float("nan"), face_y0=float("nan"), face_x1=float("nan"), face_y1=float("nan"))
        return out
    x0, y0, x1, y1 = face
    x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(sw), x1), min(float(sh), y1)
    margin = min(x0 / sw, y0 / sh, (sw - x1) / sw, (sh - y1) / sh)
    crop = small[int(y0):int(math.ceil(y1)), int(x0):int(math.ceil(x1))]
    ycc = cv2.cvtColor(crop, cv2.COLOR_RGB2YCrCb)
    cr, cb = ycc[..., 1], ycc[..., 2]
    skin = (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127)
    chroma = np.maximum(np.abs(cr.astype(np.int16) - 128), np.abs(cb.astype(np.int16) - 128))
    k = W / sw
    out.update(face_found=True, face_fraction=float((x1 - x0) * (y1 - y0) / (sw * sh)), face_margin=float(margin),
               skin_fraction=float(skin.mean()) if skin.size else 0.0,
               colour_fraction=float((chroma > COLOUR_CHROMA).mean()) if chroma.size else 0.0,
               face_x0=x0 * k, face_y0=y0 * (H / sh), face_x1=x1 * k, face_y1=y1 * (H / sh))
    return out


def decide(features: dict[str, Any], *, thresholds: QualityThresholds) -> list[str]:
    """The quality reasons an image fails, in :data:`REASONS` order (empty = passes)."""
    t = thresholds
    f = features
    if not f.get("decodable", True):
        return ["not_decodable"]
    reasons = []
    if f["width"] < t.min_width or f["height"] < t.min_height:
        reasons.append("low_resolution")
    if f["dark_fraction"] > t.dark_fraction_max or f["mean_value"] < t.mean_value_min:
        reasons.append("underexposed")
    if f["bright_fraction"] > t.bright_fraction_max or f["mean_value"] > t.mean_value_max:
        reasons.append("overexposed")
    if f["laplacian_var"] < t.laplacian_var_min or f["tenengrad"] < t.tenengrad_min:
        reasons.append("blurred")
    if t.face_required:
        if not f["face_found"]:
            reasons.append("no_face")
        elif f["face_fraction"] < t.face_fraction_min:
            reasons.append("face_too_small")
    if t.occlusion_check and f["face_found"]:
        if f["face_margin"] < t.face_margin_min:
            reasons.append("face_cropped")
        if f.get("colour_fraction", 1.0) < COLOUR_FRACTION_MIN:
            reasons.append("grayscale")  # the skin-colour rule cannot be applied to a grey picture
        elif f["skin_fraction"] < t.skin_fraction_min:
            reasons.append("face_occluded")
    return reasons


def assess_image(rgb: np.ndarray, *, thresholds: QualityThresholds, original_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Features and verdict of one RGB uint8 image (H x W x 3).

    Returns
    -------
    dict
        The features of :func:`image_features` plus ``decodable`` (True),
        ``quality_pass`` (bool), ``quality_reasons`` (list of :data:`REASONS`) and
        ``quality_first_reason`` ("" when it passes).
    """
    if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8):
        raise ValueError(f"expected an RGB uint8 array of shape (H, W, 3), got {getattr(rgb, 'shape', None)} "
                         f"{getattr(rgb, 'dtype', type(rgb).__name__)}")
    f = image_features(rgb, thresholds=thresholds, original_size=original_size)
    f["decodable"] = True
    return _verdict(f, thresholds)


def _verdict(f: dict[str, Any], t: QualityThresholds) -> dict[str, Any]:
    reasons = decide(f, thresholds=t)
    f["quality_pass"] = not reasons
    f["quality_reasons"] = reasons
    f["quality_first_reason"] = reasons[0] if reasons else ""
    return f


def _empty(width: int = -1, height: int = -1) -> dict[str, Any]:
    d: dict[str, Any] = {"width": width, "height": height, "analysis_width": 0, "analysis_height": 0}
    for k in FEATURES + ["face_x0", "face_y0", "face_x1", "face_y1"]:
        d[k] = float("nan")
    d["face_found"] = False
    return d


def assess_file(path: str, *, thresholds: QualityThresholds, width: int | None = None, height: int | None = None) -> dict[str, Any]:
    """Decode a file (reduced when it is much larger than ``analysis_size``; any pixel format, see
    :func:`study.cohort.images.read_rgb`) and assess it."""
    from study.cohort.images import read_rgb

    reduce = 1
    if width and height and width > 0 and height > 0:
        reduce = next((r for r in (8, 4, 2) if max(width, height) / r >= thresholds.analysis_size), 1)
    rgb = read_rgb(path, reduce=reduce)
    if rgb is None:
        f = _empty(width or -1, height or -1)
        f["decodable"] = False
        return _verdict(f, thresholds)
    size = (int(width), int(height)) if (width and height and width > 0) else None
    return assess_image(rgb, thresholds=thresholds, original_size=size)


def _one_thread() -> int:
    """Make OpenCV use one thread in this process; return the number it used before.

    The gate runs one image per process at a time: sharded jobs (one per core) and the pool
    of :func:`assess_cases` already fill the cores, and OpenCV's own pool (one thread per
    core by default) inside each of them oversubscribes the machine. numpy's work here is
    element-wise (no BLAS threads) and torch is not imported by the gate.
    """
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    return before


def _worker_init() -> None:
    """Initializer of :func:`assess_cases`'s worker processes."""
    _one_thread()


def _assess_chunk(args: tuple[list[tuple[str, str, int, int, bool]], dict]) -> list[dict[str, Any]]:
    items, tdict = args
    t = QualityThresholds.model_validate(tdict)
    out = []
    for cid, path, w, h, decodable in items:
        if not decodable:
            f = _empty(w, h)
            f["decodable"] = False
            f = _verdict(f, t)
        else:
            f = assess_file(path, thresholds=t, width=w, height=h)
        f["case_id"] = cid
        out.append(f)
    return out


COLUMNS = (["case_id", "decodable", "width", "height", "analysis_width", "analysis_height"] + FEATURES
           + ["face_x0", "face_y0", "face_x1", "face_y1", "quality_pass", "quality_first_reason", "quality_reasons"])


def assess_cases(cases: pd.DataFrame, *, thresholds: QualityThresholds, workers: int = 2, progress: bool = True,
                 chunk: int = 16) -> pd.DataFrame:
    """Assess every case's image (the ``cases.parquet`` table: ``case_id``, ``image_path``
    [, ``width``, ``height``, ``decodable``]) in a pool of ``workers`` processes.

    Each worker (or the calling process when ``workers`` is 1, as in a sharded job) runs
    OpenCV with one thread (:func:`_one_thread`); the caller's setting is restored after.

    Returns
    -------
    DataFrame
        One row per case, in input order, columns :data:`COLUMNS`: ``case_id``,
        ``decodable``, ``width``, ``height`` (original), ``analysis_width``,
        ``analysis_height``, the features, the face box in original pixels (NaN when no
        face), ``quality_pass``, ``quality_first_reason`` and ``quality_reasons`` (list).
    """
    n = len(cases)
    ids = cases["case_id"].astype(str).tolist()
    paths = cases["image_path"].astype(str).tolist()
    ws = cases["width"].tolist() if "width" in cases else [None] * n
    hs = cases["height"].tolist() if "height" in cases else [None] * n
    dec = cases["decodable"].astype(bool).tolist() if "decodable" in cases else [True] * n
    items = [(c, p, int(w) if w is not None and w == w else -1, int(h) if h is not None and h == h else -1, d)
             for c, p, w, h, d in zip(ids, paths, ws, hs, dec)]
    chunks = [items[i:i + chunk] for i in range(0, n, chunk)]
    tdict = thresholds.model_dump()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc="quality", unit="img", file=sys.stderr, disable=None)
    rows: list[dict[str, Any]] = []
    if workers <= 1 or len(chunks) <= 1:
        import cv2

        before = _one_thread()  # the caller's process is the worker (a sharded job runs one per core)
        try:
            for c in chunks:
                rows += _assess_chunk((c, tdict))
                if bar:
                    bar.update(len(c))
        finally:
            cv2.setNumThreads(before)
    else:
        import multiprocessing as mp

        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init) as ex:
            for res in ex.map(_assess_chunk, [(c, tdict) for c in chunks]):
                rows += res
                if bar:
                    bar.update(len(res))
    if bar:
        bar.close()
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["decodable"] = df["decodable"].astype(bool)
    df["quality_pass"] = df["quality_pass"].astype(bool)
    df["face_found"] = df["face_found"].astype(bool)
    for c in ("width", "height", "analysis_width", "analysis_height"):
        df[c] = df[c].astype("int64")
    return df


def fit_quality_model(features: pd.DataFrame, labels, *, columns: list[str] | None = None, seed: int = 0) -> dict[str, Any]:
    """Optional: a logistic model of "acceptable quality" on the features, from a labelled calibration set.

    Standardised features -> L2 logistic regression (scikit-learn), with 5-fold
    cross-validated ROC AUC reported so the model's worth is visible before it is used.

    Returns
    -------
    dict
        ``columns``, ``model`` (the fitted sklearn Pipeline), ``coefficients`` (per
        standardised feature), ``intercept``, ``cv_auc`` (mean over folds), ``n``, ``n_pass``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    columns = columns or ["laplacian_var", "tenengrad", "brenner", "dark_fraction", "bright_fraction",
                          "mean_value", "face_fraction", "skin_fraction"]
    X = features[columns].astype(float).fillna(0.0).to_numpy(copy=True)
    X[:, :3] = np.log1p(np.clip(X[:, :3], 0, None))  # gradient energies span orders of magnitude
    y = np.asarray(labels).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    k = int(min(5, np.bincount(y, minlength=2).min()))
    cv_auc = float("nan")
    if k >= 2:
        cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        cv_auc = float(cross_val_score(model, X, y, cv=cv, scoring="roc_auc").mean())
    model.fit(X, y)
    lr = model[-1]
    return {"columns": columns, "model": model, "coefficients": dict(zip(columns, lr.coef_[0].tolist())),
            "intercept": float(lr.intercept_[0]), "cv_auc": cv_auc, "n": int(len(y)), "n_pass": int(y.sum())}


def predict_quality(model: dict[str, Any], features: pd.DataFrame) -> np.ndarray:
    """Probability of acceptable quality from a model of :func:`fit_quality_model`."""
    X = features[model["columns"]].astype(float).fillna(0.0).to_numpy(copy=True)
    X[:, :3] = np.log1p(np.clip(X[:, :3], 0, None))
    return model["model"].predict_proba(X)[:, 1]
