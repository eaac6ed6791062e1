"""Into the study: a study whose ``cohort.readings`` is the reading database gives the same
results.json as the same study run from the database's exported CSV.

Both runs go through ``study run`` (the whole Snakemake workflow up to results.json) on a
small synthetic cohort with a precomputed model; the readings are answers stored through
the reading tool's own database layer, including aided and not-assessable ones, which the
agreement and MRMC analyses leave out (``study.readings.analysable_readings``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from study.readers import db
from study.readers.export import export_readings
from study.readers.setup import init_database
from tests.readers_study import make_study

pytestmark = pytest.mark.slow


def fill_answers(database: Path, reference: pd.DataFrame, *, seed: int) -> None:
    """Every reader answers every unaided case (grade = reference, one in five off by one);
    derm-a also answers five aided cases; one unaided case of gp-c is not assessable."""
    rng = np.random.default_rng(seed)
    levels = ["I", "II", "III", "IV"]
    ref = reference.set_index("case_id")["grade"]
    con = db.connect(database)
    for rid in ("derm-a", "derm-b", "gp-c"):
        for k, item in enumerate(db.session_items(con, rid, "unaided")):
            g = levels.index(ref[item.case_id])
            if rng.random() < 0.2:
                g = min(3, max(0, g + int(rng.choice([-1, 1]))))
            na = rid == "gp-c" and k == 4
            db.save_answer(con, item, {"grade": None if na else levels[g], "confidence": None if na else
                                       float(25 * g + rng.integers(0, 25)), "counts": {"papule": int(rng.integers(0, 9))},
                                       "marks": [], "assessable": not na, "reason": "blurred" if na else "",
                                       "comment": ""})
    for item in db.session_items(con, "derm-a", "aided")[:5]:
        db.save_answer(con, item, {"grade": "IV", "confidence": 99.0, "counts": {}, "marks": [], "assessable": True,
                                   "reason": "", "comment": ""})


def run_study(root: Path, config: dict, name: str, *, target_file: str = "results.json") -> dict:
    cfg = dict(config, results_dir=str(root / name))
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    target = str(root / name / target_file)
    if target_file != "results.json":
        subprocess.run([sys.executable, "-m", "study", "run", str(path), "--cores", "1", "--", target],
                       check=True, cwd=root, capture_output=True, text=True, timeout=900)
        return {}
    cmd = [sys.executable, "-m", "study", "run", str(path), "--cores", "2", "--", target]
    done = subprocess.run(cmd, check=False, cwd=root, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(Path(target).read_text())


def test_study_from_the_database_equals_the_study_from_its_exported_csv(tmp_path):
    s = make_study(tmp_path, cases=30, seed=21)
    init = init_database(s["config"], readers_csv=s["readers"])
    fill_answers(init.database, pd.read_csv(s["cohort"] / "reference.csv", dtype=str), seed=4)
    export_readings(init.database, out=tmp_path / "readings.csv")
    config = yaml.safe_load(s["config"].read_text())
    from_csv = run_study(tmp_path, {**config, "cohort": {**config["cohort"], "readings": str(tmp_path / "readings.csv")}},
                         "from-csv")
    from_db = run_study(tmp_path, {**config, "cohort": {**config["cohort"], "readings": str(init.database)},
                                   "readers": {**config["readers"], "database": str(init.database)}}, "from-db")
    # what may differ: where the readings came from (path, sha256), the config naming it, and
    # the model's run time (the precomputed model "runs" twice)
    for r in (from_csv, from_db):
        r["provenance"]["inputs"].pop("readings")
        for m in r["models"].values():
            m.pop("seconds", None)
            for shard in m.get("shards", []):
                shard.pop("seconds", None)
                shard.pop("images_per_second", None)
        for k in ("config",):
            r["study"].pop(k)
            r["provenance"].pop(k, None)
    assert from_db == from_csv
    # and the readings were used: three readers, unaided only (derm-a's aided grade IV readings left out)
    agreement = json.dumps(from_db["agreement"])
    assert "derm-a" in agreement and "gp-c" in agreement
    n = len(pd.read_sql_query("SELECT case_id FROM cases", db.connect(init.database)))
    # derm-a's five aided readings are not analysed, nor gp-c's not-assessable one
    assert from_db["flow"]["analysed"]["readers"] == {"derm-a": n, "derm-b": n, "gp-c": n - 1}

    # the reader table: experience and specialty from the database, groups only from the CSV
    from study.io import read_json
    from study.results.readers import ReadersBlock

    db_readers = ReadersBlock.model_validate(read_json(tmp_path / "from-db" / "readers.json"))
    csv_readers = ReadersBlock.model_validate(read_json(tmp_path / "from-csv" / "readers.json"))
    assert [(r.reader_id, r.years_of_experience) for r in db_readers.readers] == \
        [("derm-a", 12.0), ("derm-b", 2.0), ("gp-c", 6.0)]
    assert [r.years_of_experience for r in csv_readers.readers] == [None, None, None]
    assert [r.n_aided for r in db_readers.readers] == [5, 0, 0]

    # an amendment made while the server would still hold it in SQLite's write-ahead log
    # re-runs the readings step on the next run (the workflow tracks the audit table)
    con = db.connect(init.database)
    item = db.session_items(con, "derm-b", "unaided")[0]
    old = db.get_answer(con, item.item_id)
    new_grade = "IV" if old["grade"] != "IV" else "I"
    db.save_answer(con, item, {**old, "grade": new_grade})  # con stays open: the WAL is not checkpointed
    db_config = {**config, "cohort": {**config["cohort"], "readings": str(init.database)},
                 "readers": {**config["readers"], "database": str(init.database)}}
    run_study(tmp_path, db_config, "from-db", target_file="readings.parquet")
    rd = pd.read_parquet(tmp_path / "from-db" / "readings.parquet")
    mine = rd[(rd["reader_id"] == "derm-b") & (rd["case_id"] == item.case_id) & (rd["modality"] == "unaided")]
    assert mine["grade"].tolist() == [new_grade]
    con.close()
