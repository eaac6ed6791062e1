"""The JSON Schema of ``results.json``, generated from :class:`study.results.Results`.

The schema describes the file as written (pydantic's serialization mode: optional estimate
fields may be absent, numbers are JSON numbers), carries ``$id``, a title and the
``schema_version`` it describes, and is committed as ``docs/results.schema.json``; a test
checks that the committed file equals the generated one, so the two never drift. Regenerate
it with ``study schema --out docs/results.schema.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from study.results import SCHEMA_VERSION, Results

__all__ = ["SCHEMA_ID", "SCHEMA_PATH", "results_schema", "schema_text", "write_schema"]

#: where the schema is committed, relative to the repository root
SCHEMA_PATH = Path("docs") / "results.schema.json"
SCHEMA_ID = f"urn:acne-study:results-schema:v{SCHEMA_VERSION}"


def results_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``results.json`` at :data:`study.results.SCHEMA_VERSION`."""
    body = Results.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "acne-study results.json",
        "x-schema-version": SCHEMA_VERSION,
        **{k: v for k, v in body.items() if k != "title"},
    }


def schema_text() -> str:
    """The schema as canonical JSON text (sorted keys, two-space indent, final newline)."""
    return json.dumps(results_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schema(path: str | os.PathLike[str]) -> Path:
    """Write the schema to ``path`` (atomically) and return the path."""
    from study.io import write_text

    out = Path(path)
    write_text(out, schema_text())
    return out
