"""Methods, index tests: the models compared, their backends, the sha256 of their weights and their model cards."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from study.report import format as F
from study.report.format import Table
from study.results.models import DataDescription, ModelCard, ModelMeta
from study.results.provenance import ModelFiles, Provenance


def _weights_sha256(files: ModelFiles | None, meta: ModelMeta | None) -> str:
    """The weights' sha256: the provenance record's (the file as found when the results were
    collected), else the one the run itself recorded (a precomputed model: its detections file)."""
    if files is not None and files.sha256:
        return files.sha256
    if meta is not None and meta.weights_sha256:
        return meta.weights_sha256
    if files is not None and "detections" in files.files:
        return f"none: precomputed detections, file sha256 {files.files['detections'].sha256}"
    return "not recorded"


def index_tests_table(model_ids: Sequence[str], *, models: Mapping[str, ModelMeta],
                      provenance: Provenance | None) -> dict[str, Any] | None:
    """The table of index tests (STARD 10a): model id, backend, backend version, weights sha256.

    Parameters
    ----------
    model_ids : the models of the study, in report order.
    models : the ``models`` block (``detections/<model>.meta.json`` of each model).
    provenance : the ``provenance`` block (its ``models`` hash each model's files), if any.

    The backend version is that of the installed libraries recorded in provenance, else the
    one the run recorded in the model's meta.
    """
    if not model_ids:
        return None
    t = Table("tab-models", "Index tests: models, their weights and backends",
              ["Model id", "Backend", "Backend version", "Weights sha256"])
    for m in model_ids:
        files = provenance.models[m] if provenance is not None and m in provenance.models else None
        meta = models[m] if m in models else None
        backend = (files.backend if files is not None else None) or (meta.backend if meta is not None else None)
        version = ((files.backend_version if files is not None else None)
                   or (meta.backend_version if meta is not None else None))
        t.add([m, backend or F.DASH, version or F.DASH, _weights_sha256(files, meta)])
    return t.to_dict()


#: what the report prints for a model-card field the developer did not supply (the checklists
#: count such a field as not reported)
NOT_SUPPLIED = "not supplied"


def _given(value: object) -> str:
    return NOT_SUPPLIED if value in (None, "") else str(value)


def _data_rows(label: str, d: DataDescription) -> list[list[str]]:
    return [[f"{label}: {k}", _given(getattr(d, k))] for k in ("description", "size", "sites", "dates")]


def _training_patients(card: ModelCard) -> str:
    tp = card.training_patients
    if tp is None:
        return NOT_SUPPLIED
    what = "patient ids" if tp.format == "ids" else "sha256 hashes of patient ids"
    return (f"{tp.n_training_patients} training {what} ({tp.file}, sha256 {tp.file_sha256}) compared with the "
            f"cohort's {tp.n_cohort_patients} patients: {tp.n_overlap} in both")


def model_card_table(model_id: str, *, card: ModelCard | None, weights_sha256: str,
                     protocol_threshold: float) -> dict[str, Any]:
    """The model card of one model as a two-column table (CLAIM 2024 model and data items).

    Parameters
    ----------
    model_id : the model.
    card : its card from results.json (``models.<id>.card``); None when the spec has none:
        the table then says the card is "not supplied" in one row.
    weights_sha256 : the weights' sha256 the run computed (never taken from the card).
    protocol_threshold : the protocol's ``detection.operating_threshold`` (what this study applied).
    """
    t = Table(f"tab-model-card-{model_id}", f"Model card of {model_id}", ["Field", "Value"])
    if card is None:
        t.add(["Model card (architecture, input, training and tuning data, training patients, threshold, version)",
               f"{NOT_SUPPLIED}: the model spec has no card"])
        t.add(["Weights sha256 (computed by the run)", weights_sha256])
        return t.to_dict()
    c = card
    t.add(["Version", _given(c.version)])
    t.add(["Architecture", _given(c.architecture)])
    t.add(["Input size", _given(c.input_size)])
    t.add(["Preprocessing", _given(c.preprocessing)])
    for row in _data_rows("Training data", c.training_data) + _data_rows("Tuning data", c.tuning_data):
        t.add(row)
    t.add(["Test patients kept out of training", _given(c.patient_separation)])
    t.add(["Training patients checked against this cohort", _training_patients(c)])
    threshold = _given(None if c.operating_threshold is None else F.fmt(c.operating_threshold, 2))
    if c.operating_threshold is not None and c.operating_threshold != protocol_threshold:
        threshold += f" (this study applied the protocol's {F.fmt(protocol_threshold, 2)})"
    t.add(["Operating threshold", threshold])
    t.add(["Why this threshold", _given(c.threshold_rationale)])
    t.add(["Weights sha256 (computed by the run)", weights_sha256])
    return t.to_dict()


def model_card_tables(model_ids: Sequence[str], *, models: Mapping[str, ModelMeta], provenance: Provenance | None,
                      protocol_threshold: float) -> list[dict[str, Any]]:
    """One :func:`model_card_table` per model, in report order."""
    out = []
    for m in model_ids:
        meta = models[m] if m in models else None
        files = provenance.models[m] if provenance is not None and m in provenance.models else None
        out.append(model_card_table(m, card=meta.card if meta is not None else None,
                                    weights_sha256=_weights_sha256(files, meta), protocol_threshold=protocol_threshold))
    return out
