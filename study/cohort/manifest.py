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
#: the values a ``fitzpatrick`` cell may hold (case-insensitive; blank means "not recorded")
FITZPATRICK_VALUES = ("I", "II", "III", "IV", "V", "VI", "1", "2", "3", "4", "5", "6")
#: longest ``skin_type_assessor`` text accepted (who assigned the skin type: "dermatologist", "self-reported")
ASSESSOR_MAX_CHARS = 100


def check_skin_type(rec: dict, *, file: str) -> list[Problem]:
    """Problems of one manifest row's ``fitzpatrick`` and ``skin_type_assessor`` cells.

    ``fitzpatrick`` must be I-VI or 1-6 (any case) or blank; ``skin_type_assessor`` (optional,
    free text naming who assigned the skin type) must be at most :data:`ASSESSOR_MAX_CHARS`
    printable characters and needs a skin type in the same row.
    """
    row = f"row {rec['_row']}"
    out = []
    fz = str(rec.get("fitzpatrick", "") or "")
    if fz and fz.upper() not in FITZPATRICK_VALUES:
        out.append(Problem(file, f"{row}, column fitzpatrick", f"case {rec['case_id']!r}: fitzpatrick = {fz!r} is not "
                           "a Fitzpatrick skin type; expected I, II, III, IV, V or VI (or 1-6), or blank when not "
                           "recorded"))
    who = str(rec.get("skin_type_assessor", "") or "")
    if who:
        if len(who) > ASSESSOR_MAX_CHARS or not who.isprintable():
            out.append(Problem(file, f"{row}, column skin_type_assessor",
                               f"case {rec['case_id']!r}: skin_type_assessor = {who[:40]!r}{'…' if len(who) > 40 else ''}"
                               f" ({len(who)} characters); expected a short printable text such as 'dermatologist' or "
                               f"'self-reported' (at most {ASSESSOR_MAX_CHARS} characters)"))
        if not fz:
            out.append(Problem(file, f"{row}, column skin_type_assessor",
                               f"case {rec['case_id']!r}: skin_type_assessor = {who!r} but fitzpatrick is blank; "
                               "expected the skin type that was assigned, or a blank assessor"))
    return out


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
        problems.extend(check_skin_type(rec, file=f))
    df["image_path"] = paths
    image_problems: list[Problem] = []
    if probe:
        info_df = probe_manifest_images(df)
        image_problems = image_problems_of(df, info_df, file=f)
        df = attach_probes(df, info_df)
    return df, problems, image_problems


#: the columns :func:`probe_manifest_images` adds (what intake learns by reading each image once)
PROBE_COLUMNS = ["width", "height", "image_sha256", "image_bytes", "image_format", "decodable", "image_error"]


def probe_manifest_images(df: pd.DataFrame) -> pd.DataFrame:
    """Probe the image of each row of a validated manifest (:func:`validate_manifest` with ``probe=False``).

    Returns
    -------
    DataFrame
        Index of ``df``; ``_row`` (the manifest line) and :data:`PROBE_COLUMNS`
        (see :func:`study.cohort.images.probe_image`). A row without a usable image path
        is not decodable ("no usable image path").
    """
    infos = []
    for image_path in df["image_path"]:
        if not image_path:
            infos.append({"decodable": False, "image_error": "no usable image path"})
        else:
            infos.append(probe_image(image_path))
    out = pd.DataFrame(infos, index=df.index, columns=PROBE_COLUMNS)
    out.insert(0, "_row", df["_row"].to_numpy())
    out["width"] = pd.to_numeric(out["width"], errors="coerce").fillna(-1).astype("int64")
    out["height"] = pd.to_numeric(out["height"], errors="coerce").fillna(-1).astype("int64")
    out["image_bytes"] = pd.to_numeric(out["image_bytes"], errors="coerce").fillna(0).astype("int64")
    out["decodable"] = out["decodable"].astype("boolean").fillna(False).astype(bool)
    for col in ("image_error", "image_sha256", "image_format"):
        out[col] = out[col].fillna("").astype(str)
    return out


def image_problems_of(df: pd.DataFrame, probes: pd.DataFrame, *, file: str) -> list[Problem]:
    """One problem per row whose image does not decode (these cases become "not decodable")."""
    out = []
    for (row, cid, image), (dec, err) in zip(df[["_row", "case_id", "image"]].itertuples(index=False),
                                             probes[["decodable", "image_error"]].itertuples(index=False)):
        if not dec:
            out.append(Problem(file, f"row {row}", f"case {cid!r}: image {image!r}: {err}; expected a readable "
                               "JPEG/PNG/TIFF photo"))
    return out


def attach_probes(df: pd.DataFrame, probes: pd.DataFrame) -> pd.DataFrame:
    """The manifest with the probe columns of its rows (matched on ``_row``, the manifest line).

    Raises
    ------
    StudyError
        When the probes do not cover the manifest's rows exactly (probes of another manifest).
    """
    from study.errors import StudyError

    by_row = probes.drop_duplicates("_row").set_index("_row")
    missing = sorted(set(df["_row"]) - set(by_row.index))
    if missing or len(by_row) != len(probes) or len(by_row) != len(df):
        raise StudyError(f"the image probes do not match the manifest's rows (rows {missing[:5]} unprobed, "
                         f"{len(probes)} probes for {len(df)} rows); expected the probes of this manifest: re-run them",
                         file="image probes")
    out = df.copy()
    for col in PROBE_COLUMNS:
        out[col] = by_row.loc[df["_row"], col].to_numpy()
    return out


def load_manifest(path: str | os.PathLike, *, image_root: str | os.PathLike,
                  probes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Load and validate a manifest CSV (``case_id``, ``patient_id``, ``image``, covariates).

    Parameters
    ----------
    path : path of the manifest CSV (UTF-8, comma-separated, one header row).
    image_root : folder the ``image`` paths are relative to.
    probes : the manifest's images already probed (:func:`probe_manifest_images` of its rows,
        possibly computed in shards); by default every image is probed here.

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
    df, problems, _ = validate_manifest(path, image_root=image_root, probe=probes is None)
    raise_if(problems)
    assert df is not None
    if probes is not None:
        df = attach_probes(df, probes)
    df = df.rename(columns={"_row": "row"})
    for col in MANIFEST_NUMERIC:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col].replace("", None), errors="coerce").astype(float)
    return df.reset_index(drop=True)
