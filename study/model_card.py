"""The model card of a model spec (``card:`` in ``MODEL.yaml``) and its training-patient check.

A model card says what a model is and what it learnt from (Mitchell et al. 2019, "Model cards
for model reporting", FAT* '19; CLAIM 2024 items on the model and its data, Tejani et al.,
Radiology: Artificial Intelligence 2024;6:e240300). Fields (all optional; unknown keys are
errors)::

    card:
      version: "1.2.0"
      architecture: Faster R-CNN, ResNet-50 FPN backbone
      input_size: 800-1333 px (shorter side 800)
      preprocessing: RGB, ImageNet mean/std normalisation
      training_data: {description: ..., size: ..., sites: ..., dates: ...}
      tuning_data:   {description: ..., size: ..., sites: ..., dates: ...}
      patient_separation: how test patients were kept out of training (a statement)
      training_patients:                   # checked against the cohort's patient ids
        file: training-patients.txt        # relative to the MODEL.yaml; one entry a line, '#' comments
        format: ids                        # ids | sha256 (hex sha256 of each id's UTF-8 text)
      operating_threshold: 0.5
      threshold_rationale: why this threshold

:func:`check_training_patients` compares the training patients with the cohort's: any overlap is
a :class:`study.errors.StudyError` naming the model spec and how many patients overlap
(``study check`` lists it; ``study run`` stops at the model's first step).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from study.errors import Problem, StudyError
from study.results.models import ModelCard, ModelCardText, TrainingPatientsCheck

__all__ = ["ModelCardSpec", "TrainingPatients", "card_input_files", "check_training_patients", "hash_patient_id",
           "read_training_patients"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class TrainingPatients(BaseModel):
    """``card.training_patients``: the file listing the patients the model was trained on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(..., min_length=1)
    format: Literal["ids", "sha256"] = "ids"


class ModelCardSpec(ModelCardText):
    """``card:`` of a model spec, as written (see the module docstring): the card's text, and the file of
    training patients to check against the cohort."""

    training_patients: TrainingPatients | None = None
    operating_threshold: float | None = Field(None, ge=0, le=1)


def hash_patient_id(patient_id: str) -> str:
    """The hex sha256 of a patient id's UTF-8 text (the ``sha256`` format of a training-patients file)."""
    return hashlib.sha256(str(patient_id).encode("utf-8")).hexdigest()


def read_training_patients(path: Path, *, format: str, source: str) -> set[str]:
    """The entries of a training-patients file: ids, or lower-case sha256 hex digests.

    Blank lines and lines starting with ``#`` are skipped. In the ``sha256`` format every entry
    must be 64 hex digits (a bad line is an error naming the file and line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyError(f"training-patients file not found (model spec {source})", file=str(path),
                         where="card.training_patients.file") from None
    except UnicodeDecodeError:
        raise StudyError("training-patients file is not UTF-8 text", file=str(path)) from None
    out: set[str] = set()
    problems = []
    for i, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if format == "sha256":
            entry = entry.lower()
            if not _HEX64.match(entry):
                problems.append(Problem(str(path), f"line {i}", f"{line.strip()[:80]!r}: expected the 64-hex-digit "
                                        "sha256 of a patient id (card.training_patients.format: sha256)"))
                continue
        out.add(entry)
    if problems:
        raise StudyError(problems)
    return out


def check_training_patients(card: ModelCardSpec | None, *, base_dir: Path, source: str,
                            patient_ids: Iterable[str]) -> ModelCard | None:
    """The card as recorded in results.json, after checking training patients against the cohort.

    Parameters
    ----------
    card : the spec's card (None: no card, returns None).
    base_dir : the folder the training-patients file is relative to (the MODEL.yaml's).
    source : the model spec, as named in messages (its file, or ``model <id>``).
    patient_ids : the cohort's patient ids (every case of the manifest, included or not).

    Raises
    ------
    StudyError
        When any cohort patient is among the training patients: names the model spec, the
        training-patients file and how many patients overlap (not which: ids are not printed).
    """
    if card is None:
        return None
    record = None
    if card.training_patients is not None:
        tp = card.training_patients
        path = Path(tp.file).expanduser()
        path = path if path.is_absolute() else base_dir / path
        train = read_training_patients(path, format=tp.format, source=source)
        cohort = {str(p) for p in patient_ids}
        keys = {hash_patient_id(p) for p in cohort} if tp.format == "sha256" else cohort
        n_overlap = len(keys & train)
        if n_overlap:
            raise StudyError(f"{n_overlap} of the cohort's {len(cohort)} patients are among the "
                             f"{len(train)} training patients of this model ({path}): a model may not be "
                             "tested on patients it was trained on", file=source, where="card.training_patients")
        record = TrainingPatientsCheck(file=tp.file, file_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                                       format=tp.format, n_training_patients=len(train),
                                       n_cohort_patients=len(cohort), n_overlap=0)
    data = card.model_dump(exclude={"training_patients"})
    return ModelCard(**data, training_patients=record)


def card_input_files(entry: dict, *, base_dir: str | Path = ".") -> list[str]:
    """The training-patients file a study config's model entry names (``[]`` when none).

    For the workflow's inputs: a changed list re-runs the steps that check it. ``entry`` is an
    inline spec or ``{id, spec: path, ...}`` (its ``card`` overrides the file's). Unreadable
    specs give ``[]`` here: :func:`study.modelspec.load_model_spec` reports them.
    """
    import yaml

    card, folder = entry.get("card"), Path(base_dir)
    if "spec" in entry:
        path = Path(str(entry["spec"]))
        path = path if path.is_absolute() else Path(base_dir) / path
        if card is None:
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                return []
            card = data.get("card") if isinstance(data, dict) else None
        folder = path.parent
    tp = card.get("training_patients") if isinstance(card, dict) else None
    file = tp.get("file") if isinstance(tp, dict) else None
    if not file:
        return []
    f = Path(str(file)).expanduser()
    return [str(f if f.is_absolute() else folder / f)]
