"""Provenance: what exactly a study's numbers were computed from.

Collects the sha256 of every input file (manifest, annotations, reference, readings, the
protocol, each model's weights), one digest of all images, the software and library
versions, the resolved configuration and the git commit of the harness, so that anyone can
trace a number in the report back to its inputs (the report's provenance appendix).

Nothing here depends on the time or on the order files are listed in, so the same inputs
give the same provenance (and the same ``results.json``).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from study.errors import Problem, raise_if
from study.io import sha256_bytes, sha256_file
from study.results.provenance import FileRecord, ImagesDigest, ModelFiles, Provenance
from study.results.study import SoftwareVersions

#: distributions whose versions the report lists (import name differs for some)
LIBRARIES = (
    "numpy", "scipy", "pandas", "pyarrow", "scikit-learn", "statsmodels", "krippendorff",
    "torch", "torchvision", "onnxruntime", "pycocotools", "faster-coco-eval",
    "opencv-python-headless", "scikit-image", "pillow", "matplotlib", "seaborn", "jinja2", "weasyprint", "pydantic",
    "snakemake",
)

#: backend -> distributions that run it
BACKEND_PACKAGES = {
    "torchvision": ("torch", "torchvision"),
    "torchscript": ("torch",),
    "detectron2": ("detectron2", "torch"),
    "onnx": ("onnxruntime",),
    "precomputed": (),
}

#: keys of a model spec naming files whose sha256 is recorded
MODEL_FILE_KEYS = ("weights", "file", "config", "spec", "detections", "model_card")

IMAGES_DIGEST_METHOD = (
    "sha256 of the UTF-8 text made of one line '<sha256 of the file>  <path relative to the "
    "images' common folder>' per image, lines sorted by path"
)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def library_versions(names: Iterable[str] = LIBRARIES) -> dict[str, str | None]:
    """Installed version of each distribution (``None`` when not installed), sorted by name."""
    return {n: _version(n) for n in sorted(names)}


def software_versions() -> SoftwareVersions:
    """``{acne_study, python, implementation, platform, libraries}``."""
    from study import __version__

    return SoftwareVersions(
        acne_study=__version__,
        python=platform.python_version(),
        implementation=sys.implementation.name,
        platform=f"{platform.system()} {platform.machine()}",
        libraries=library_versions(),
    )


def git_state(repo_dir: str | os.PathLike[str] | None) -> dict[str, Any]:
    """``{commit, dirty}`` of the git checkout at ``repo_dir``; both ``None`` when it is not one.

    ``dirty`` is True when tracked files differ from the commit (``git status --porcelain
    --untracked-files=no`` prints anything), so a report made from uncommitted code says so.
    """
    if repo_dir is None:
        return {"commit": None, "dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(repo_dir), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=30, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(repo_dir), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(status.strip())}


def images_digest(image_paths: Iterable[str | os.PathLike[str]], *,
                  known: Mapping[str, str] | None = None) -> ImagesDigest:
    """One sha256 standing for every image file, independent of the order given and of where
    the cohort folder sits (paths are taken relative to the images' common folder).

    Parameters
    ----------
    image_paths : iterable of paths
        Every image of the cohort.
    known : mapping path -> sha256, optional
        Hashes already computed (intake's ``image_sha256`` of each case, from the bytes it
        read): those images are not read again; any other image is hashed here.

    Returns
    -------
    ImagesDigest
        ``{n_images, sha256, method}``.
    """
    paths = sorted({Path(p).resolve() for p in image_paths})
    if not paths:
        return ImagesDigest(n_images=0, sha256=None, method=IMAGES_DIGEST_METHOD)
    root = Path(os.path.commonpath([str(p.parent) for p in paths]))
    given = {Path(k).resolve(): v for k, v in (known or {}).items() if v}
    lines = sorted(f"{given.get(p) or sha256_file(p)}  {p.relative_to(root).as_posix()}\n" for p in paths)
    return ImagesDigest(n_images=len(paths), sha256=sha256_bytes("".join(lines).encode("utf-8")),
                        method=IMAGES_DIGEST_METHOD)


def _file_entry(path: str | os.PathLike[str]) -> FileRecord:
    p = Path(path)
    return FileRecord(path=str(p), sha256=sha256_file(p), bytes=p.stat().st_size)


def collect_provenance(
    *,
    config: Mapping[str, Any],
    protocol_path: str | os.PathLike[str],
    inputs: Mapping[str, str | os.PathLike[str] | None],
    image_paths: Iterable[str | os.PathLike[str]],
    models: Iterable[Mapping[str, Any]],
    repo_dir: str | os.PathLike[str] | None,
    image_hashes: Mapping[str, str] | None = None,
) -> Provenance:
    """Everything needed to trace a study's numbers to its inputs.

    Parameters
    ----------
    config : mapping
        The resolved study configuration (recorded as given).
    protocol_path : path
        The protocol YAML.
    inputs : mapping role -> path
        Input files by role (``manifest``, ``annotations``, ``reference``, ``readings``, ...);
        a role mapped to ``None`` is recorded as absent (e.g. a study without readers).
    image_paths : iterable of paths
        Every image of the cohort (summarised by :func:`images_digest`).
    models : iterable of mappings
        Model specs, each with ``id`` and ``backend`` and file keys among
        ``weights, file, config, spec, detections, model_card`` (``file`` holds the weights of
        TorchScript / ONNX models). ``model_id`` or ``model`` (a detections meta JSON) is accepted for ``id``.
    repo_dir : path or None
        The harness's git checkout (for the commit), or None.
    image_hashes : mapping path -> sha256, optional
        The images' sha256 as intake computed them (``cases.parquet`` ``image_sha256``): the
        digest reuses them instead of reading every image again (:func:`images_digest`).

    Returns
    -------
    Provenance
        ``{inputs: {<role>: {path, sha256, bytes} | None}, protocol: {path, sha256, bytes},
        images_digest: {n_images, sha256, method}, models: {<id>: {backend, backend_version,
        files: {<key>: {path, sha256, bytes}}, weights, sha256}}, git_commit, git_dirty,
        software: {acne_study, python, implementation, platform, libraries}, config}``.
        ``models.<id>.weights`` / ``sha256`` repeat the weights entry (architecture contract).

    Raises
    ------
    StudyError
        Listing every input, protocol, model file or image that does not exist.
    """
    problems: list[Problem] = []
    image_paths = list(image_paths)
    models = list(models)
    if not Path(protocol_path).is_file():
        problems.append(Problem(str(protocol_path), "", "protocol file not found"))
    for role, p in sorted(inputs.items()):
        if p is not None and not Path(p).is_file():
            problems.append(Problem(str(p), f"inputs.{role}", "input file not found"))
    models = [{**m, "id": m.get("id", m.get("model_id", m.get("model")))} for m in models]
    for m in models:
        if m["id"] is None:
            problems.append(Problem("models", "", f"model spec without 'id': {dict(m)}"))
        for key in MODEL_FILE_KEYS:
            if m.get(key) is not None and not Path(m[key]).is_file():
                problems.append(Problem(str(m[key]), f"models.{m.get('id')}.{key}", "model file not found"))
    missing_images = [str(p) for p in image_paths if not Path(p).is_file()]
    if missing_images:
        problems.append(Problem(missing_images[0], "images",
                                f"{len(missing_images)} image file(s) not found, e.g. this one"))
    raise_if(problems)

    model_out: dict[str, ModelFiles] = {}
    for m in sorted(models, key=lambda m: str(m["id"])):
        backend = m.get("backend")
        pkgs = BACKEND_PACKAGES.get(str(backend), ())
        files = {k: _file_entry(m[k]) for k in MODEL_FILE_KEYS if m.get(k) is not None}
        weights = files.get("weights") or files.get("file")
        model_out[str(m["id"])] = ModelFiles(
            backend=backend,
            backend_version=", ".join(f"{p} {_version(p)}" for p in pkgs if _version(p)) or None,
            files=files,
            weights=weights.path if weights else None,
            sha256=weights.sha256 if weights else None,
        )

    git = git_state(repo_dir)
    return Provenance(
        inputs={role: (_file_entry(p) if p is not None else None) for role, p in sorted(inputs.items())},
        protocol=_file_entry(protocol_path),
        images_digest=images_digest(image_paths, known=image_hashes),
        models=model_out,
        git_commit=git["commit"],
        git_dirty=git["dirty"],
        software=software_versions(),
        config=dict(config),
    )
