"""Methods, index tests: the models compared, their backends and the sha256 of their weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from study.report import format as F
from study.report.format import Table
from study.results.models import ModelMeta
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
