"""Model specs (``MODEL.yaml``): which backend runs a model, on which files, with which classes.

A model spec names its backend and files, its classes and how they map onto the protocol's
classes. It is either a ``MODEL.yaml`` file or an entry of a study config's ``models:`` list
(an inline spec, or ``{id, spec: path/to/MODEL.yaml}`` whose other keys override the file's).
File paths inside a spec are relative to the folder of the ``MODEL.yaml`` (for an inline
spec: to ``base_dir``, by default the working directory).

Fields (unknown keys are errors)::

    id: demo-frcnn
    backend: torchvision            # detectron2 | torchscript | torchvision | onnx | precomputed
    architecture: acne_small_frcnn  # torchvision: builder name or a key of small_archs.ARCHITECTURES
    architecture_kwargs: {}         # passed to the builder
    weights: demo-frcnn.pt          # state dict, torch.load(weights_only=True)
    weights_sha256: <hex>           # verified on load when given
    classes: [comedone, papule]     # torchvision: label i -> classes[i-1]; detectron2: class i -> classes[i]
    class_map: {}                   # model class -> protocol class (null = drop that class, counted)
    device: cpu
    score_threshold: 0.05
    max_detections: 1000
    batch_size: 4
    config: cfg.yaml                # detectron2
    file: model.ts                  # torchscript / onnx
    export_format: torchvision      # torchscript / onnx: torchvision | detectron2 (flat tuple, resized coords)
    input_format: RGB               # torchscript / onnx detectron2 exports: RGB | BGR
    min_size: 800                   # torchscript / onnx detectron2 exports (INPUT.MIN_SIZE_TEST)
    max_size: 1333                  #                                       (INPUT.MAX_SIZE_TEST)
    detections: results.json        # precomputed: COCO results JSON
    images: {}                      # precomputed: image_id or file_name -> case_id (mapping or CSV/JSON file)
    categories: {}                  # precomputed: category_id -> model class name (default: id i -> classes[i-1])
    polygon_classes: []             # protocol classes whose masks become polygons (default: the protocol's)
    face_filter: false              # drop detections whose centre lies outside the face box (quality step)
    card: {}                        # optional model card: architecture, data, training patients, threshold
                                    # (fields in study/model_card.py)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from study.errors import Problem, StudyError, validation_problems
from study.model_card import ModelCardSpec, check_training_patients
from study.results.models import ModelCard

BACKENDS = ("detectron2", "torchscript", "torchvision", "onnx", "precomputed")

#: keys each backend needs (besides id, backend, classes)
_REQUIRED = {
    "torchvision": ("architecture", "weights"),
    "detectron2": ("config", "weights"),
    "torchscript": ("file",),
    "onnx": ("file",),
    "precomputed": ("detections",),
}
#: keys that only make sense for some backends
_ONLY_FOR = {
    "architecture": ("torchvision",),
    "architecture_kwargs": ("torchvision",),
    "weights": ("torchvision", "detectron2"),
    "config": ("detectron2",),
    "file": ("torchscript", "onnx"),
    "export_format": ("torchscript", "onnx"),
    "input_format": ("torchscript", "onnx"),
    "min_size": ("torchscript", "onnx"),
    "max_size": ("torchscript", "onnx"),
    "detections": ("precomputed",),
    "images": ("precomputed",),
    "categories": ("precomputed",),
}


class ModelSpec(BaseModel):
    """One model to validate. See the module docstring for the fields.

    After :func:`load_model_spec`, :attr:`base_dir` is the folder relative paths resolve
    against and :attr:`protocol_classes` the protocol's classes the mapping was checked
    against (``None`` when no protocol was given).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$")
    backend: Literal["detectron2", "torchscript", "torchvision", "onnx", "precomputed"]
    classes: list[str] = Field(..., min_length=1)
    class_map: dict[str, str | None] = Field(default_factory=dict)
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?)$")
    score_threshold: float = Field(0.05, ge=0, le=1)
    max_detections: int = Field(1000, ge=1)
    batch_size: int = Field(4, ge=1)
    polygon_classes: list[str] | None = None
    face_filter: bool = False
    # torchvision
    architecture: str | None = None
    architecture_kwargs: dict[str, Any] = Field(default_factory=dict)
    # torchvision, detectron2
    weights: str | None = None
    weights_sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    # detectron2
    config: str | None = None
    # torchscript, onnx
    file: str | None = None
    export_format: Literal["torchvision", "detectron2"] | None = None
    input_format: Literal["RGB", "BGR"] = "RGB"
    min_size: int | None = Field(None, ge=1)
    max_size: int | None = Field(None, ge=1)
    # precomputed
    detections: str | None = None
    images: dict[str, str] | str | None = None
    categories: dict[int, str] | None = None
    # any backend: what the model is and what it was trained on (study/model_card.py)
    card: ModelCardSpec | None = None

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _protocol_classes: list[str] | None = PrivateAttr(default=None)
    _source: str = PrivateAttr(default="")

    @field_validator("images", mode="before")
    @classmethod
    def _image_keys_as_text(cls, v):
        # YAML reads `{1: case-001}` with an integer key; image ids and case ids are compared as text
        if isinstance(v, dict):
            return {str(k): str(x) for k, x in v.items()}
        return v

    @model_validator(mode="after")
    def _check(self) -> "ModelSpec":
        errors = []
        if len(set(self.classes)) != len(self.classes):
            errors.append(f"classes must be unique, got {self.classes}")
        for key in _REQUIRED[self.backend]:
            if getattr(self, key) in (None, ""):
                errors.append(f"backend {self.backend!r} needs {key!r}")
        for key, backends in _ONLY_FOR.items():
            if key in self.model_fields_set and self.backend not in backends:
                errors.append(f"{key!r} is not used by backend {self.backend!r} (only by {', '.join(backends)})")
        unknown = sorted(set(self.class_map) - set(self.classes))
        if unknown:
            errors.append(f"class_map keys {unknown} are not model classes {self.classes}")
        if self.categories:
            bad = sorted({v for v in self.categories.values()} - set(self.classes))
            if bad:
                errors.append(f"categories name {bad}, not among classes {self.classes}")
        if self.backend in ("torchscript", "onnx") and self.resolved_export_format == "detectron2":
            if self.min_size is None or self.max_size is None:
                errors.append("a detectron2 export needs min_size and max_size (INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST)")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    # ------------------------------------------------------------------ derived
    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @property
    def source(self) -> str:
        """The spec as messages name it: its MODEL.yaml, or ``model <id>`` for an inline spec."""
        return self._source or f"model {self.id}"

    def checked_card(self, patient_ids: "Iterable[str]") -> "ModelCard | None":
        """The card as results.json records it, its training patients checked against ``patient_ids``.

        Raises :class:`study.errors.StudyError` when a cohort patient was a training patient
        (:func:`study.model_card.check_training_patients`).
        """
        return check_training_patients(self.card, base_dir=self._base_dir, source=self.source,
                                       patient_ids=patient_ids)

    @property
    def protocol_classes(self) -> list[str] | None:
        return None if self._protocol_classes is None else list(self._protocol_classes)

    @property
    def resolved_export_format(self) -> str | None:
        """``export_format``, defaulting to ``detectron2`` when min/max size are given."""
        if self.backend not in ("torchscript", "onnx"):
            return None
        if self.export_format:
            return self.export_format
        return "detectron2" if (self.min_size or self.max_size) else "torchvision"

    def path(self, value: str) -> Path:
        """Resolve a file named in the spec against :attr:`base_dir`."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self._base_dir / p

    def mapped_classes(self) -> list[str | None]:
        """Protocol class for each model class, in model order (``None`` = dropped)."""
        return [self.class_map[c] if c in self.class_map else c for c in self.classes]

    def output_classes(self) -> list[str]:
        """Classes the detections table uses: the protocol's when known, else the mapped ones."""
        if self._protocol_classes is not None:
            return list(self._protocol_classes)
        out: list[str] = []
        for c in self.mapped_classes():
            if c is not None and c not in out:
                out.append(c)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The spec as given (JSON-able), plus ``base_dir``."""
        d = self.model_dump(mode="json", exclude_unset=False)
        d["base_dir"] = str(self._base_dir)
        return d


# --------------------------------------------------------------------------- loading
def _problems(file: str, err: ValidationError) -> list[Problem]:
    return validation_problems(file, err, unknown_key_hint="see the MODEL.yaml fields in study/modelspec.py")


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudyError("model spec file not found", file=str(path)) from None
    except UnicodeDecodeError:
        raise StudyError("model spec is not UTF-8 text", file=str(path)) from None
    except yaml.YAMLError as e:
        raise StudyError(f"invalid YAML: {e}", file=str(path)) from None
    if not isinstance(data, dict):
        raise StudyError(f"a model spec must be a YAML mapping, got {type(data).__name__}", file=str(path))
    return data


def load_model_spec(entry_or_path: "dict | str | Path | ModelSpec", *, protocol_classes: list[str] | None = None,
                    polygon_classes: list[str] | None = None, base_dir: "str | Path | None" = None) -> ModelSpec:
    """Load and validate a model spec; check its class mapping against the protocol.

    Parameters
    ----------
    entry_or_path : dict, str, Path or ModelSpec
        A ``MODEL.yaml`` path; an inline spec mapping; or ``{id, spec: path, ...}`` whose other
        keys override the file's (``spec`` is relative to ``base_dir``).
    protocol_classes : list of str, optional
        The protocol's classes. Every model class must map (by ``class_map`` or by equal
        name) onto one of them, or be mapped to ``null`` (dropped on purpose).
    polygon_classes : list of str, optional
        The protocol's polygon classes; the default for the spec's ``polygon_classes``.
    base_dir : str or Path, optional
        Folder an inline spec's files and a ``spec:`` path are relative to (default: cwd).

    Raises
    ------
    StudyError
        Listing every problem: unknown keys, missing files for the backend, unmapped classes.
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if isinstance(entry_or_path, ModelSpec):
        data, source, spec_dir = entry_or_path.model_dump(exclude_unset=True), f"model {entry_or_path.id}", entry_or_path.base_dir
    elif isinstance(entry_or_path, (str, Path)):
        path = Path(entry_or_path)
        path = path if path.is_absolute() else base / path
        data, source, spec_dir = _read_yaml(path), str(path), path.parent
    elif isinstance(entry_or_path, dict):
        data = dict(entry_or_path)
        if "spec" in data:
            ref = Path(str(data.pop("spec")))
            path = ref if ref.is_absolute() else base / ref
            file_data = _read_yaml(path)
            if "backend" in data and "backend" in file_data and data["backend"] != file_data["backend"]:
                raise StudyError(f"backend {data['backend']!r} in the study config differs from "
                                 f"{file_data['backend']!r} in the spec file", file=str(path), where="backend")
            data = {**file_data, **data}
            source, spec_dir = str(path), path.parent
        else:
            source, spec_dir = f"model {data.get('id', '?')}", base
    else:
        raise StudyError(f"a model spec must be a mapping or a path, got {type(entry_or_path).__name__}",
                         file="models")
    try:
        spec = ModelSpec.model_validate(data)
    except ValidationError as e:
        raise StudyError(_problems(source, e)) from None
    spec._base_dir = Path(spec_dir).resolve()
    spec._source = source

    problems = []
    if protocol_classes is not None:
        pcs = list(protocol_classes)
        for model_cls, target in zip(spec.classes, spec.mapped_classes()):
            if target is not None and target not in pcs:
                how = f"class_map sends it to {target!r}" if model_cls in spec.class_map else "no class_map entry"
                problems.append(Problem(source, f"classes: {model_cls}",
                                        f"model class {model_cls!r} is not a protocol class ({how}); "
                                        f"map it in class_map to one of {pcs} (or to null to drop it)"))
        spec._protocol_classes = pcs
    if spec.polygon_classes is None and polygon_classes is not None:
        spec = spec.model_copy(update={"polygon_classes": list(polygon_classes)})
        spec._base_dir = Path(spec_dir).resolve()
        spec._protocol_classes = list(protocol_classes) if protocol_classes is not None else None
        spec._source = source
    if spec.polygon_classes and protocol_classes is not None:
        bad = sorted(set(spec.polygon_classes) - set(protocol_classes))
        if bad:
            problems.append(Problem(source, "polygon_classes", f"{bad} are not protocol classes {list(protocol_classes)}"))
    for key in ("weights", "config", "file", "detections"):
        value = getattr(spec, key)
        if value and not spec.path(value).is_file():
            problems.append(Problem(source, key, f"file not found: {spec.path(value)}"))
    if isinstance(spec.images, str) and not spec.path(spec.images).is_file():
        problems.append(Problem(source, "images", f"file not found: {spec.path(spec.images)}"))
    if spec.card is not None and spec.card.training_patients is not None:
        tp = spec.path(spec.card.training_patients.file)
        if not tp.is_file():
            problems.append(Problem(source, "card.training_patients.file", f"file not found: {tp}"))
    if problems:
        raise StudyError(problems)
    return spec
