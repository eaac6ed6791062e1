"""Study configuration: loading and validation against ``config/schemas/config.schema.yaml``.

The same JSON schema validates the config inside the Snakefile (``snakemake.utils.validate``)
and here (``study check``, ``study run``), so the two can never disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from study.errors import Problem, StudyError

#: repository root (the package is installed editable from the source tree)
REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO_ROOT / "config" / "schemas" / "config.schema.yaml"
SNAKEFILE = REPO_ROOT / "Snakefile"


def load_schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def validate_config(config: Any, *, source: str = "<config>") -> list[Problem]:
    """Every way ``config`` violates the study config schema, as problems (empty when valid)."""
    import jsonschema

    if not isinstance(config, dict):
        return [Problem(source, "", f"a study config must be a YAML mapping, got {type(config).__name__}")]
    validator = jsonschema.Draft202012Validator(load_schema())
    problems = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        problems.append(Problem(source, where, err.message))
    models = config.get("models")
    if isinstance(models, list):
        seen: dict[str, int] = {}
        for i, m in enumerate(models):
            mid = m.get("id") if isinstance(m, dict) else None
            if isinstance(mid, str) and mid in seen:
                problems.append(Problem(source, f"models.{i}.id", f"model id {mid!r} is used by models.{seen[mid]} "
                                        "too: every model needs its own id (its results are filed under it)"))
            elif isinstance(mid, str):
                seen[mid] = i
    from study.annotators.config import annotator_config_problems

    problems += annotator_config_problems(config, source=source)
    return problems


def load_config(path: str | Path) -> dict:
    """Load a study config YAML and validate it; fill schema defaults.

    Raises
    ------
    StudyError
        Listing every schema violation (file, key path, message).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyError("config file not found", file=str(path)) from None
    except UnicodeDecodeError:
        raise StudyError("config is not UTF-8 text", file=str(path)) from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise StudyError(f"invalid YAML: {e}", file=str(path)) from None
    problems = validate_config(config, source=str(path))
    if problems:
        raise StudyError(problems)
    return with_defaults(config)


def with_defaults(config: dict) -> dict:
    """Return a copy of a valid config with the schema's defaults filled in."""
    out = dict(config)
    out.setdefault("results_dir", f"results/{config['study']}")
    out.setdefault("shards", 2)
    out.setdefault("batch_size", 4)
    return out
