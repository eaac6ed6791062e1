"""``study readers init``: the reading database of a study, its readers, orders and tokens."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from study.errors import StudyError
from study.readers import db
from study.readers.roster import load_roster
from study.readers.tokens import hash_token, new_token

DAY = 86400.0


@dataclass(frozen=True)
class StudyPaths:
    """Where a study's reading tool finds its things (all absolute)."""

    config: dict
    workdir: Path
    results_dir: Path
    database: Path
    protocol: Path


def study_paths(config_path: str | os.PathLike, *, workdir: str | os.PathLike | None = None) -> StudyPaths:
    """Resolve the config's results folder, protocol and reading database (relative to ``workdir``).

    The database is ``readers.database`` when given, else ``cohort.readings`` when that
    names a database (``.sqlite``/``.db``), else ``<results_dir>/readers.sqlite``.
    """
    from study.config import load_config
    from study.workflow import results_dir_of

    cfg = load_config(Path(config_path))
    wd = Path(workdir or os.getcwd()).resolve()

    def absolute(p: str) -> Path:
        return Path(p) if Path(p).is_absolute() else wd / p

    results = results_dir_of(cfg, wd)
    readers = cfg.get("readers") or {}
    from study.readings import is_reading_database

    readings = cfg["cohort"].get("readings")
    if readers.get("database"):
        database = absolute(readers["database"])
    elif readings and is_reading_database(readings):
        database = absolute(readings)  # the study reads its readings straight from the database
    else:
        database = results / "readers.sqlite"
    return StudyPaths(cfg, wd, results, database, absolute(cfg["protocol"]))


def included_cases(paths: StudyPaths) -> pd.DataFrame:
    """The study's included cases (``case_id``, ``image_path``), in manifest order.

    From the run's ``eligibility.parquet`` and ``cases.parquet`` when the study has run
    that far; otherwise intake, the quality gate and the inclusion criteria are computed
    here, in memory (nothing is written to the results folder).
    """
    from study import cohort
    from study.eligibility import decide_eligibility
    from study.protocol import load_protocol
    from study.quality import assess_cases

    res = paths.results_dir
    if (res / "eligibility.parquet").exists() and (res / "cases.parquet").exists():
        cases = pd.read_parquet(res / "cases.parquet")
        el = pd.read_parquet(res / "eligibility.parquet")
    else:
        p = load_protocol(paths.protocol).protocol
        c = paths.config["cohort"]
        root = Path(c["image_root"]) if Path(c["image_root"]).is_absolute() else paths.workdir / c["image_root"]
        manifest = Path(c["manifest"]) if Path(c["manifest"]).is_absolute() else paths.workdir / c["manifest"]
        cases = cohort.load_manifest(manifest, image_root=root)
        quality = assess_cases(cases, thresholds=p.quality, workers=1, progress=False)
        el, _ = decide_eligibility(cases, quality, criteria=p.inclusion)
    keep = set(el.loc[el["included"], "case_id"].astype(str))
    out = cases[cases["case_id"].astype(str).isin(keep)][["case_id", "image_path"]].astype(str)
    if out.empty:
        raise StudyError("the study has no included cases to read", file=str(paths.database))
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class InitResult:
    """What ``init`` made: the database and the one-time tokens (shown once, stored hashed)."""

    database: Path
    reader_tokens: dict[str, str]
    admin_token: str
    n_cases: int
    sessions: list[str]


def init_database(config_path: str | os.PathLike, *, readers_csv: str | os.PathLike,
                  workdir: str | os.PathLike | None = None, now: float | None = None) -> InitResult:
    """Create the reading database of a study.

    Every reader gets a login token (256 random bits; only its sha256 is stored) valid for
    ``readers.token_days`` days, and for each session (``unaided``, then ``aided`` when the
    protocol's ``reader_study.aided_session``) a random order of the study's included cases,
    drawn with ``numpy.random.default_rng([readers.seed, reader index, session index])``
    (the seed is recorded in ``meta``, the index in ``readers.order_seed``). Each (reader,
    session, case) gets its own opaque item id, so no URL reveals a case id or a file name
    and no reader can open another reader's items.

    Raises
    ------
    StudyError
        When the database exists already (its readings would be lost), the readers file is
        invalid (duplicate ids, unknown groups, ...), or the study has no included cases.
    """
    from study.protocol import load_protocol

    paths = study_paths(config_path, workdir=workdir)
    if paths.database.exists():
        raise StudyError("the reading database exists already; refusing to overwrite its readings (move it away "
                         "to start a new one)", file=str(paths.database))
    proto = load_protocol(paths.protocol).protocol
    rs = proto.reader_study
    roster = load_roster(readers_csv, groups=rs.reader_groups)
    cases = included_cases(paths)
    rcfg = paths.config.get("readers") or {}
    seed = int(rcfg.get("seed", 1))
    token_days = int(rcfg.get("token_days", 90))
    sessions = ["unaided"] + (["aided"] if rs.aided_session else [])
    models = [m["id"] for m in paths.config["models"]]
    aid_model = rcfg.get("aid_model", models[0])
    if aid_model not in models:
        raise StudyError(f"readers.aid_model {aid_model!r} is not one of the study's models {models}",
                         file=str(config_path))
    now = time.time() if now is None else now
    meta = {"study": paths.config["study"], "levels": proto.levels, "classes": proto.classes, "seed": seed,
            "sessions": sessions, "washout_days": rs.washout_days, "aid_model": aid_model, "created_at": now,
            "secret": secrets.token_hex(32), "results_dir": str(paths.results_dir),
            "operating_threshold": proto.detection.operating_threshold}
    tokens = {r.reader_id: new_token() for r in roster}
    admin = new_token()
    paths.database.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.database.with_name(paths.database.name + f".init-{os.getpid()}")
    con = db.connect(tmp)
    try:
        db.create_schema(con)
        with db.write(con):
            import json
            con.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
            con.executemany("INSERT INTO cases VALUES (?, ?)", list(zip(cases["case_id"], cases["image_path"])))
            con.execute("INSERT INTO admins VALUES (?, ?)", (hash_token(admin), now + token_days * DAY))
            ids = cases["case_id"].tolist()
            for i, r in enumerate(roster):
                con.execute("INSERT INTO readers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (r.reader_id, r.reader_group, r.years_of_experience, r.specialty, json.dumps(r.extra),
                             hash_token(tokens[r.reader_id]), now + token_days * DAY, i))
                for s, modality in enumerate(sessions):
                    order = np.random.default_rng([seed, i, s]).permutation(len(ids))
                    con.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?)",
                                    [(secrets.token_hex(8), r.reader_id, modality, pos, ids[k])
                                     for pos, k in enumerate(order)])
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    os.replace(tmp, paths.database)
    return InitResult(paths.database, tokens, admin, len(ids), sessions)
