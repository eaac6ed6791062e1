"""The manifest CSV: one row per case (``case_id``, ``patient_id``, ``image``, covariates)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from study.cohort.images import probe_image, resolve_image
from study.cohort.tables import check_case_id, parse_number, read_csv_table
from study.errors import Problem, raise_if

#: manifest columns that must be present
MANIFEST_REQUIRED = ["case_id", "patient_id", "image"]
#: manifest covariates that must be numbers when given (a blank cell means "not recorded")
MANIFEST_NUMERIC = {"age": (0.0, 130.0)}


def validate_manifest(path: str | os.PathLike, *, image_root: str | os.PathLike,
                      probe: bool = True) -> tuple[pd.DataFrame | None, list[Problem], list[Problem]]:
    """Validate a manifest CSV and its images.

    Returns
    -------
    (DataFrame | None, structural problems, image problems)
        Structural problems (missing/duplicate ``case_id``, no image, a path escaping the
        image root, bad covariates) make the manifest unusable; image problems (file
        missing, empty, not an image, truncated) only make those cases "not decodable".
    """
    f = str(path)
    image_root = Path(image_root)
    df, problems = read_csv_table(path, required=MANIFEST_REQUIRED)
    if df is None:
        return None, problems, []
    if df.empty:
        return None, problems + [Problem(f, "", "the manifest has no rows (only its header); expected one row per "
                                         "case")], []
    if not image_root.is_dir():
        problems.append(Problem(str(image_root), "image_root", "image root folder not found; expected the folder "
                                "the manifest's image paths are relative to"))
    first_case: dict[str, int] = {}
    first_image: dict[str, tuple[str, int]] = {}
    paths: list[str] = []
    for rec in df.to_dict("records"):
        row = f"row {rec['_row']}"
        cid = rec["case_id"]
        bad_id = check_case_id(cid, rec["_row"], first_case, file=f, empty="case_id is empty; every case needs a "
                               "unique case_id", expected="expected one row per case")
        if bad_id:
            problems.append(bad_id)
        if not rec["patient_id"]:
            problems.append(Problem(f, row, f"case {cid!r}: patient_id is empty; expected the patient's id "
                                    "(use the case_id when each case is its own patient)"))
        img = rec["image"]
        full = None
        if not img:
            problems.append(Problem(f, row, f"case {cid!r} has no image (empty 'image' cell); expected a path "
                                    "relative to the image root"))
        else:
            if img in first_image:
                other, r0 = first_image[img]
                problems.append(Problem(f, row, f"case {cid!r}: image {img!r} is also the image of case {other!r} "
                                        f"(row {r0}); annotations link to cases by image, so each case needs its own"))
            else:
                first_image[img] = (cid, rec["_row"])
            full, why = resolve_image(img, image_root=image_root)
            if why:
                problems.append(Problem(f, row, f"case {cid!r}: {why}"))
        paths.append(str(full.resolve() if full is not None and full.exists() else (full or "")))
        for col, (lo, hi) in MANIFEST_NUMERIC.items():
            if col in rec and rec[col] != "":
                _, p = parse_number(rec[col], file=f, where=f"{row}, column {col}", column=col, minimum=lo, maximum=hi)
                if p:
                    problems.append(p)
    df["image_path"] = paths
    image_problems: list[Problem] = []
    if probe:
        infos = []
        for rec, image_path in zip(df.to_dict("records"), paths):
            if not image_path:
                infos.append({"decodable": False, "image_error": "no usable image path"})
                continue
            info = probe_image(image_path)
            infos.append(info)
            if not info["decodable"]:
                image_problems.append(Problem(f, f"row {rec['_row']}", f"case {rec['case_id']!r}: image "
                                              f"{rec['image']!r}: {info['image_error']}; expected a readable "
                                              "JPEG/PNG/TIFF photo"))
        info_df = pd.DataFrame(infos, index=df.index)
        for col in ("width", "height", "image_sha256", "image_bytes", "image_format", "decodable", "image_error"):
            df[col] = info_df[col] if col in info_df else None
        df["width"] = pd.to_numeric(df["width"], errors="coerce").fillna(-1).astype("int64")
        df["height"] = pd.to_numeric(df["height"], errors="coerce").fillna(-1).astype("int64")
        df["image_bytes"] = pd.to_numeric(df["image_bytes"], errors="coerce").fillna(0).astype("int64")
        df["decodable"] = df["decodable"].fillna(False).astype(bool)
        df["image_error"] = df["image_error"].fillna("").astype(str)
        df["image_sha256"] = df["image_sha256"].fillna("").astype(str)
        df["image_format"] = df["image_format"].fillna("").astype(str)
    return df, problems, image_problems


def load_manifest(path: str | os.PathLike, *, image_root: str | os.PathLike) -> pd.DataFrame:
    """Load and validate a manifest CSV (``case_id``, ``patient_id``, ``image``, covariates).

    Parameters
    ----------
    path : path of the manifest CSV (UTF-8, comma-separated, one header row).
    image_root : folder the ``image`` paths are relative to.

    Returns
    -------
    DataFrame
        The manifest's columns (strings; ``age`` as float, NaN when blank) plus
        ``row`` (line number in the manifest), ``image_path`` (absolute), ``width``,
        ``height`` (-1 when unknown), ``image_sha256``, ``image_bytes``, ``image_format``,
        ``decodable`` (bool) and ``image_error`` ("" or why the image cannot be used).

    Raises
    ------
    StudyError
        With every structural problem (see :func:`validate_manifest`); undecodable or
        missing image files do not raise.
    """
    df, problems, _ = validate_manifest(path, image_root=image_root)
    raise_if(problems)
    assert df is not None
    df = df.rename(columns={"_row": "row"})
    for col in MANIFEST_NUMERIC:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col].replace("", None), errors="coerce").astype(float)
    return df.reset_index(drop=True)
