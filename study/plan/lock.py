"""The lock of the analysis plan: written once before unblinding, checked by every run.

``study lock CONFIG`` writes ``<results_dir>/plan-lock.json`` (:class:`LockRecord`): the time
(UTC), the sha256 of the protocol file and of its analysis plan, the whole resolved
protocol (so a later change can be listed key by key with its old and new value), the
sha256 of each model's files, the git commit, and the reference and readings files by
hash or as ``"not yet present"``. A lock is never overwritten and never edited by a run.

The ``decide`` step calls :func:`lock_status`: ``locked`` (nothing changed), ``deviation``
(the changed keys, old and new) or ``not_locked``; the report's first page prints it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from study.errors import StudyError
from study.io import sha256_file, write_json
from study.results.decisions import LockChange, LockStatus

__all__ = ["LOCK_NAME", "LockRecord", "lock_path", "lock_status", "make_lock_record", "write_lock"]

LOCK_NAME = "plan-lock.json"
NOT_PRESENT = "not yet present"


class LockRecord(BaseModel):
    """What ``study lock`` writes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = 1
    locked_at: str
    study: str
    protocol_path: str
    protocol_sha256: str
    plan_sha256: str
    protocol_settings: dict[str, Any]
    models: dict[str, dict[str, str]]
    git_commit: str | None
    git_dirty: bool | None
    inputs: dict[str, str]


def lock_path(config: dict, *, workdir: Path) -> Path:
    """Where a study's lock lives: ``<results_dir>/plan-lock.json``."""
    from study.workflow import results_dir_of

    return results_dir_of(config, workdir) / LOCK_NAME


def _canonical_sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _resolve(p: str, workdir: Path) -> Path:
    q = Path(p)
    return q if q.is_absolute() else workdir / q


def _model_hashes(config: dict, workdir: Path) -> dict[str, dict[str, str]]:
    from study.modelspec import load_model_spec

    out: dict[str, dict[str, str]] = {}
    for entry in config.get("models", []):
        spec = load_model_spec(entry, base_dir=workdir)
        files: dict[str, str] = {}
        if entry.get("spec"):
            files["spec"] = sha256_file(_resolve(entry["spec"], workdir))
        for key in ("weights", "file", "config", "detections"):
            value = getattr(spec, key, None)
            if value:
                path = Path(spec.path(value))
                files[key] = sha256_file(path) if path.exists() else NOT_PRESENT
        out[spec.id] = files
    return out


def make_lock_record(config: dict, *, workdir: Path, now: _dt.datetime | None = None) -> LockRecord:
    """The lock record of a study as it stands now (nothing written)."""
    from study.protocol import load_protocol
    from study.provenance import git_state

    loaded = load_protocol(_resolve(config["protocol"], workdir))
    p = loaded.protocol
    inputs = {}
    for role in ("reference", "readings"):
        given = (config.get("cohort") or {}).get(role)
        path = _resolve(given, workdir) if given else None
        inputs[role] = sha256_file(path) if path is not None and path.exists() else NOT_PRESENT
    git = git_state(Path(__file__).resolve().parents[2])
    when = (now or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC)
    settings = p.model_dump(mode="json")
    return LockRecord(locked_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"), study=config["study"], protocol_path=loaded.path,
                      protocol_sha256=loaded.sha256, plan_sha256=_canonical_sha(settings.get("analysis_plan")),
                      protocol_settings=settings, models=_model_hashes(config, workdir),
                      git_commit=git["commit"], git_dirty=git["dirty"], inputs=inputs)


def write_lock(config: dict, *, workdir: Path) -> tuple[Path, LockRecord]:
    """Write the lock once; refuse when one exists (a lock is never replaced)."""
    path = lock_path(config, workdir=workdir)
    if path.exists():
        raise StudyError("the analysis plan of this study is already locked; a lock is never replaced "
                         "(a changed protocol is reported as a DEVIATION by `study run`)", file=str(path))
    record = make_lock_record(config, workdir=workdir)
    if record.protocol_settings.get("analysis_plan") is None:
        raise StudyError("the protocol has no analysis_plan to lock", file=record.protocol_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record.model_dump(mode="json"))
    return path, record


def _diff(old: Any, new: Any, key: str) -> list[LockChange]:
    """Changed leaves (dotted keys, ``[i]`` for list items); a subtree present on one side only is one change."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[LockChange] = []
        for k in sorted(set(old) | set(new)):
            sub = f"{key}.{k}" if key else str(k)
            if k not in old or k not in new:
                out.append(LockChange(key=sub, old=old.get(k), new=new.get(k)))
            else:
                out += _diff(old[k], new[k], sub)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) \
            and any(isinstance(v, (dict, list)) for v in old + new):
        return [c for i, (a, b) in enumerate(zip(old, new)) for c in _diff(a, b, f"{key}[{i}]")]
    return [] if old == new else [LockChange(key=key, old=old, new=new)]


def lock_status(config: dict, *, workdir: Path) -> LockStatus:
    """Compare the study as it stands with its lock (never writes anything).

    Returns
    -------
    LockStatus
        ``not_locked`` without a lock file; ``deviation`` when a protocol key, the protocol
        file, a model file, or a reference / readings file present at the lock changed;
        else ``locked``. ``statement`` is the sentence page one prints.
    """
    path = lock_path(config, workdir=workdir)
    if not path.exists():
        return LockStatus(state="not_locked", lock_file=str(path),
                          statement="The analysis plan was not locked before the analysis (no `study lock` record).")
    try:
        record = LockRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise StudyError(f"the lock record cannot be read: {e}", file=str(path)) from None
    now = make_lock_record(config, workdir=workdir)
    changes = _diff(record.protocol_settings, now.protocol_settings, "protocol")
    if not changes and record.protocol_sha256 != now.protocol_sha256:
        changes.append(LockChange(key="protocol file (sha256; comments or layout only)", old=record.protocol_sha256,
                                  new=now.protocol_sha256))
    changes += _diff(record.models, now.models, "models")
    for role, was in record.inputs.items():
        if was != NOT_PRESENT and now.inputs.get(role) != was:
            changes.append(LockChange(key=f"cohort.{role} (sha256)", old=was, new=now.inputs.get(role)))
    common: dict[str, Any] = {"lock_file": str(path), "locked_at": record.locked_at, "protocol_sha256": record.protocol_sha256,
                  "plan_sha256": record.plan_sha256, "git_commit": record.git_commit, "inputs_at_lock": record.inputs}
    if changes:
        keys = ", ".join(c.key for c in changes)
        return LockStatus(state="deviation", changes=changes, **common,
                          statement=f"DEVIATION from the analysis plan locked on {record.locked_at} "
                                    f"(sha256 {record.protocol_sha256[:12]}…): changed after the lock: {keys}.")
    return LockStatus(state="locked", **common,
                      statement=f"Analysis plan locked on {record.locked_at} (protocol sha256 "
                                f"{record.protocol_sha256[:12]}…, plan sha256 {record.plan_sha256[:12]}…).")
