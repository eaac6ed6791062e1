"""The reading tool without a browser: set-up, blinding and access, validation, audit, export.

The web app is driven in-process through Starlette's TestClient (httpx); the browser tests
(tests/test_readers_browser.py) drive the same app in headless Chromium.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time

import numpy as np
import pandas as pd
import pytest

from study.readers import db
from study.readers.app import create_app
from study.readers.export import readings_table
from study.readers.setup import init_database
from tests.readers_study import fake_model_outputs, make_study

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


class Clock:
    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    s = make_study(tmp_path_factory.mktemp("readers"))
    init = init_database(s["config"], readers_csv=s["readers"])
    return s, init


def client(database, clock=None, **kw):
    from starlette.testclient import TestClient

    app = create_app(database, clock=clock or time.time, **kw)
    return TestClient(app, base_url="http://127.0.0.1:8000", follow_redirects=False)


def login(c, token):
    r = c.get(f"/login/{token}")
    assert r.status_code == 303, r.text
    return c


def open_next(c, modality="unaided"):
    r = c.get(f"/session/{modality}")
    assert r.status_code == 303, r.text
    page = c.get(r.headers["location"])
    assert page.status_code == 200, page.text
    item = r.headers["location"].rsplit("/", 1)[1]
    return item, re.search(r'name="csrf" value="([^"]+)"', page.text).group(1), page.text


def answer(c, item, csrf, **fields):
    data = {"csrf": csrf, "grade": "II", "confidence": "60", **fields}
    return c.post(f"/item/{item}", data=data)


# ----------------------------------------------------------------------------- set-up
def test_tokens_are_random_256_bit_and_only_hashes_stored(study):
    _s, init = study
    con = sqlite3.connect(init.database)
    stored = [r[0] for r in con.execute("SELECT token_hash FROM readers")] + \
             [r[0] for r in con.execute("SELECT token_hash FROM admins")]
    dump = "\n".join(con.iterdump())
    for tok in [*init.reader_tokens.values(), init.admin_token]:
        assert len(tok) >= 43  # token_urlsafe(32): 256 bits, at least the 128 the issue asks for
        assert tok not in dump  # the token itself is nowhere in the database
    assert len(set(stored)) == 4 and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in stored)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_orders_are_seeded_recorded_and_cover_the_included_cases(study):
    _s, init = study
    con = db.connect(init.database)
    meta = db.get_meta(con)
    included = pd.read_sql_query("SELECT case_id FROM cases", con)["case_id"].tolist()
    el_cases = set(included)
    assert len(included) == init.n_cases and 20 <= init.n_cases < 30  # planted exclusions are not read
    for idx, rid in enumerate(["derm-a", "derm-b", "gp-c"]):
        assert con.execute("SELECT order_seed FROM readers WHERE reader_id = ?", (rid,)).fetchone()[0] == idx
        for s_idx, modality in enumerate(["unaided", "aided"]):
            got = [i.case_id for i in db.session_items(con, rid, modality)]
            # re-drawn from the recorded seed, as init documents
            want = [included[k] for k in np.random.default_rng([meta["seed"], idx, s_idx]).permutation(len(included))]
            assert got == want and set(got) == el_cases
    orders = {rid: [i.case_id for i in db.session_items(con, rid, "unaided")] for rid in ["derm-a", "derm-b"]}
    assert orders["derm-a"] != orders["derm-b"]


def test_init_errors_exit_2_and_change_nothing(study, tmp_path, run_cli):
    s, init = study
    before = init.database.read_bytes()
    rc, _, err = run_cli("readers", "init", s["config"], "--readers", s["readers"])
    assert rc == 2 and "exists already" in err and init.database.read_bytes() == before
    bad = tmp_path / "bad.csv"
    bad.write_text("reader_id,reader_group,years_of_experience\nr1,senior,3\nr1,junior,x\nr2,wizard,1\n")
    cfg = tmp_path / "c.yaml"
    conf = __import__("yaml").safe_load(s["config"].read_text())
    conf["readers"] = {"database": str(tmp_path / "new.sqlite")}
    cfg.write_text(__import__("yaml").safe_dump(conf))
    rc, _out, err = run_cli("readers", "init", cfg, "--readers", bad)
    assert rc == 2
    assert "row 3: reader_id 'r1' is listed twice (rows 2 and 3)" in err
    assert "row 4: reader_group 'wizard' of reader 'r2' is not one of the protocol's reader groups" in err
    assert "years_of_experience = 'x' is not a number" in err
    assert not (tmp_path / "new.sqlite").exists() and list(tmp_path.glob("new.sqlite*")) == []


# ----------------------------------------------------------------------------- access and blinding
def test_wrong_and_expired_tokens_are_refused(study):
    _s, init = study
    clock = Clock()
    c = client(init.database, clock)
    r = c.get("/login/" + "x" * 43)
    assert r.status_code == 403 and "not valid" in r.text
    assert c.get("/").status_code == 401
    clock.now += 91 * 86400  # token_days defaults to 90
    r = c.get(f"/login/{init.reader_tokens['derm-a']}")
    assert r.status_code == 403 and "expired" in r.text
    assert c.get(f"/admin/login/{init.admin_token}").status_code == 403


def test_a_reader_sees_nothing_but_their_own_work(study):
    s, init = study
    a = login(client(init.database), init.reader_tokens["derm-a"])
    b = login(client(init.database), init.reader_tokens["derm-b"])
    item, csrf, page = open_next(a)
    con = db.connect(init.database)
    case = con.execute("SELECT case_id, image_path FROM items JOIN cases USING (case_id) WHERE item_id = ?",
                       (item,)).fetchone()
    ref = pd.read_csv(s["cohort"] / "reference.csv", dtype=str).set_index("case_id")["grade"]
    # no case id, no file name, no folder, no model in the unaided page
    assert case["case_id"] not in page and "C000" not in page
    assert "jpg" not in page.lower() and "png" not in page.lower() and str(s["cohort"]) not in page
    assert "overlay" not in page and "detection" not in page.lower() and "model" not in page.lower()
    assert ref[case["case_id"]] in {"I", "II", "III", "IV"}  # (the reference grade exists, but is not shown:)
    assert "reference" not in page.lower()
    img = a.get(f"/image/{item}")
    assert img.status_code == 200 and "content-disposition" not in img.headers
    # reader b cannot see a's case, image or post an answer to it, nor the admin page
    assert b.get(f"/item/{item}").status_code == 404
    assert b.get(f"/image/{item}").status_code == 404
    assert b.post(f"/item/{item}", data={"csrf": csrf, "grade": "I", "confidence": "5"}).status_code == 404
    assert b.get("/admin").status_code == 403 and b.get("/admin/readings.csv").status_code == 403
    assert b.get(f"/admin/login/{init.reader_tokens['derm-b']}").status_code == 403
    # paths are never accepted for images
    assert a.get("/image/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_forged_and_cross_site_posts_are_refused(study):
    _s, init = study
    a = login(client(init.database), init.reader_tokens["gp-c"])
    item, csrf, _ = open_next(a)
    assert a.post(f"/item/{item}", data={"grade": "I", "confidence": "5"}).status_code == 403
    other = login(client(init.database), init.reader_tokens["derm-b"])
    _, csrf_b, _ = open_next(other)
    assert a.post(f"/item/{item}", data={"csrf": csrf_b, "grade": "I", "confidence": "5"}).status_code == 403
    r = a.post(f"/item/{item}", data={"csrf": csrf, "grade": "I", "confidence": "5"},
               headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    con = db.connect(init.database)
    assert db.get_answer(con, item) is None


def test_bad_answers_get_400_with_text_and_change_nothing(study):
    _s, init = study
    a = login(client(init.database), init.reader_tokens["derm-b"])
    item, csrf, _ = open_next(a)
    con = db.connect(init.database)
    n_audit = con.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    for fields, needle in [({"grade": "V"}, "grade 'V' is not one of the protocol's levels"),
                           ({"confidence": "101"}, "confidence = '101' is out of range"),
                           ({"confidence": "-1"}, "confidence = '-1' is out of range"),
                           ({"confidence": ""}, "confidence is required"),
                           ({"count_papule": "2.5"}, "count_papule = '2.5' is out of range"),
                           ({"not_assessable": "1", "grade": ""}, "needs a reason"),
                           ({"marks": "[{\"x\": -3, \"y\": 1}]"}, "marks must be a list")]:
        r = answer(a, item, csrf, **fields)
        assert r.status_code == 400 and needle in r.text, (fields, r.text)
    assert a.get("/item/deadbeefdeadbeef").status_code == 404  # a case not in the study / not theirs
    assert a.get("/session/sideways").status_code == 404
    assert db.get_answer(con, item) is None
    assert con.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == n_audit


def test_user_text_is_escaped(study):
    _s, init = study
    a = login(client(init.database), init.reader_tokens["derm-b"])
    item, csrf, _ = open_next(a)
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    assert answer(a, item, csrf, comment=evil, not_assessable="1", reason=evil, grade="").status_code == 303
    page = a.get(f"/item/{item}").text
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# ----------------------------------------------------------------------------- sessions
def test_amendments_are_audited_and_the_audit_is_append_only(study):
    _s, init = study
    a = login(client(init.database), init.reader_tokens["derm-a"])
    item, csrf, _ = open_next(a)
    assert answer(a, item, csrf, grade="I", confidence="20").status_code == 303
    nxt, _, _ = open_next(a)
    assert nxt != item  # resumes at the next unread case
    page = a.get(f"/item/{item}").text
    assert 'id="amending"' in page and 'value="I" id="grade-1" data-key="1" checked' in page
    assert answer(a, item, csrf, grade="III", confidence="80").status_code == 303
    con = db.connect(init.database)
    rows = con.execute("SELECT actor, action, old_value, new_value FROM audit WHERE item_id = ? ORDER BY id",
                       (item,)).fetchall()
    assert [r["action"] for r in rows] == ["answer", "amend"] and rows[1]["actor"] == "derm-a"
    assert json.loads(rows[1]["old_value"])["grade"] == "I" and json.loads(rows[1]["new_value"])["grade"] == "III"
    assert db.get_answer(con, item)["grade"] == "III"
    for sql in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute(sql)


def test_washout_keeps_the_aided_session_closed_unless_overridden(study, tmp_path):
    s, init = study
    clock = Clock()
    c = login(client(init.database, clock), init.reader_tokens["derm-b"])
    assert "finish the unaided session" in c.get("/session/aided").text
    while True:
        r = c.get("/session/unaided")
        if r.status_code == 200:
            break
        item = r.headers["location"].rsplit("/", 1)[1]
        page = c.get(r.headers["location"]).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        assert answer(c, item, csrf, grade="II", confidence="40").status_code == 303
    assert 'id="complete"' in r.text
    r = c.get("/session/aided")
    assert r.status_code == 403 and "washout of 28 days" in r.text
    clock.now += 29 * 86400
    r = c.get("/session/aided")  # washout over, but the model has not run yet
    assert r.status_code == 403 and "not available" in r.text
    fake_model_outputs(s["results"], cases=pd.read_sql_query("SELECT case_id FROM cases",
                                                             db.connect(init.database))["case_id"].tolist())
    try:
        c2 = login(client(init.database, clock), init.reader_tokens["derm-b"])
        item, csrf, page = open_next(c2, "aided")
        assert 'id="overlay-data"' in page and 'id="model-grade">II<' in page
        # today (washout not over) the aided session is closed, unless the override is given (and audited)
        assert login(client(init.database, Clock()), init.reader_tokens["derm-b"]).get("/session/aided").status_code == 403
        early = login(client(init.database, Clock(), allow_early_aided=True), init.reader_tokens["derm-b"])
        assert early.get("/session/aided").status_code == 303
        assert "finish the unaided session" in login(client(init.database, Clock(), allow_early_aided=True),
                                                     init.reader_tokens["gp-c"]).get("/session/aided").text
        con = db.connect(init.database)
        assert con.execute("SELECT COUNT(*) FROM audit WHERE action LIKE 'washout override%'").fetchone()[0] >= 1
        # the first aided answer closes the unaided session
        assert answer(c2, item, csrf, grade="III", confidence="70").status_code == 303
        r = c2.get("/session/unaided")
        assert r.status_code == 403 and "closed" in r.text
    finally:
        for d in ("detections", "grades"):
            for f in (s["results"] / d).glob("*"):
                f.unlink()


def test_admin_sees_progress_and_downloads_the_readings(study):
    _s, init = study
    adm = client(init.database)
    assert adm.get("/admin").status_code == 403
    assert adm.get(f"/admin/login/{init.admin_token}").status_code == 303
    page = adm.get("/admin").text
    assert "derm-a" in page and "Median seconds per case" in page
    csv = adm.get("/admin/readings.csv")
    assert csv.status_code == 200 and csv.text.startswith("reader_id,reader_group,case_id,modality,grade,confidence")
    df, _ = readings_table(init.database)
    assert len(csv.text.strip().splitlines()) == len(df) + 1


def test_export_writes_the_readings_format_and_it_validates(study, tmp_path, run_cli):
    from study.protocol import load_protocol
    from study.readings import load_readings

    s, init = study
    rc, _out, err = run_cli("readers", "export", s["config"], "--out", tmp_path / "r.csv")
    assert rc == 0, err
    df = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    con = db.connect(init.database)
    n = con.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    assert len(df) == n > 0
    p = load_protocol(s["root"] / "protocol.yaml").protocol
    loaded = load_readings(tmp_path / "r.csv", levels=p.levels, classes=p.classes,
                           cases=pd.read_csv(s["cohort"] / "manifest.csv", dtype=str)["case_id"])
    same = load_readings(init.database, levels=p.levels, classes=p.classes)
    pd.testing.assert_frame_equal(loaded, same)
    assert (tmp_path / "r.marks.json").exists()


def test_reader_table_carries_experience_and_specialty(study):
    """The typed reader table, checked against counts taken straight from the database with SQL."""
    from study.readers.characteristics import readers_block
    from study.readers.export import reader_characteristics
    from study.readings import load_readings

    _s, init = study
    meta = db.get_meta(db.connect(init.database))
    readings = load_readings(init.database, levels=meta["levels"], classes=meta["classes"])
    block = readers_block(readings, characteristics=reader_characteristics(init.database))
    rows = {r.reader_id: r for r in block.readers}
    assert set(rows) == {"derm-a", "derm-b", "gp-c"} and block.source == "reading database"
    assert (rows["derm-a"].years_of_experience, rows["derm-a"].specialty) == (12.0, "dermatology")
    assert (rows["gp-c"].reader_group, rows["gp-c"].specialty) == ("intermediate", "general practice")
    con = sqlite3.connect(init.database)
    for rid, row in rows.items():
        for modality in ("unaided", "aided"):
            n = con.execute("SELECT COUNT(*) FROM answers JOIN items USING (item_id) WHERE reader_id = ? AND "
                            "modality = ?", (rid, modality)).fetchone()[0]
            assert getattr(row, f"n_{modality}") == n
    assert block.to_json_dict()["readers"][0]["reader_id"] == "derm-a"


def test_export_and_check_refuse_what_is_not_a_reading_database(tmp_path, run_cli, study):
    from study.protocol import load_protocol
    from study.readings import validate_readings

    s, _init = study
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    p = load_protocol(s["root"] / "protocol.yaml").protocol
    for path in (junk, tmp_path / "missing.db"):
        df, problems = validate_readings(path, levels=p.levels)
        assert df is None and len(problems) == 1 and str(path) in str(problems[0])
    conf = __import__("yaml").safe_load(s["config"].read_text())
    conf["readers"] = {"database": str(junk)}
    cfg = tmp_path / "c.yaml"
    cfg.write_text(__import__("yaml").safe_dump(conf))
    rc, _out, err = run_cli("readers", "export", cfg, "--out", tmp_path / "r.csv")
    assert rc == 2 and "not a reading database" in err and not (tmp_path / "r.csv").exists()


def test_aided_overlay_shows_the_model_at_its_operating_threshold_only(tmp_path):
    s = make_study(tmp_path, cases=12, seed=9)
    init = init_database(s["config"], readers_csv=s["readers"])
    con = db.connect(init.database)
    cases = pd.read_sql_query("SELECT case_id FROM cases", con)["case_id"].tolist()
    fake_model_outputs(s["results"], cases=cases)
    det = pd.read_parquet(s["results"] / "detections" / "vendor.parquet")
    low = det.assign(score=0.2, x=det["x"] + 500.0)  # below the protocol's operating threshold 0.5
    pd.concat([det, low]).to_parquet(s["results"] / "detections" / "vendor.parquet")
    for item in db.session_items(con, "derm-a", "unaided"):
        db.save_answer(con, item, {"grade": "I", "confidence": 5.0, "counts": {}, "marks": [], "assessable": True,
                                   "reason": "", "comment": ""})
    c = login(client(init.database, allow_early_aided=True), init.reader_tokens["derm-a"])
    item, _, page = open_next(c, "aided")
    overlay = json.loads(re.search(r'id="overlay-data">(.*?)</script>', page).group(1))
    case = db.item_for_reader(con, item, "derm-a").case_id
    want = det[det["case_id"] == case]
    assert [(d["x"], d["score"]) for d in overlay] == list(zip(want["x"].astype(float), want["score"]))


def test_serve_and_export_without_a_database_exit_2(tmp_path, run_cli, study):
    s, _ = study
    conf = __import__("yaml").safe_load(s["config"].read_text())
    conf["readers"] = {"database": str(tmp_path / "none.sqlite")}
    cfg = tmp_path / "c.yaml"
    cfg.write_text(__import__("yaml").safe_dump(conf))
    for argv in (("readers", "serve", cfg, "--port", "1"), ("readers", "export", cfg, "--out", tmp_path / "r.csv")):
        rc, _, err = run_cli(*argv)
        assert rc == 2 and "reading database not found (create it with `study readers init`)" in err
    assert not (tmp_path / "none.sqlite").exists() and not (tmp_path / "r.csv").exists()


def test_readings_step_writes_the_typed_reader_table(study, tmp_path):
    """``study step readings`` from the database: readings.parquet plus readers.json with the
    readers' experience and specialty; from a CSV: groups only."""
    from study import steps
    from study.io import read_json
    from study.readers.export import export_readings
    from study.results.readers import ReadersBlock

    s, init = study
    con = db.connect(init.database)
    for rid in ("derm-a", "derm-b", "gp-c"):  # at least one reading each
        item = db.next_item(con, rid, "unaided")
        if item is not None:
            db.save_answer(con, item, {"grade": "II", "confidence": 50.0, "counts": {}, "marks": [],
                                       "assessable": True, "reason": "", "comment": ""})
    cases = tmp_path / "cases.parquet"
    pd.read_csv(s["cohort"] / "manifest.csv", dtype=str)[["case_id"]].to_parquet(cases)
    protocol = str(s["root"] / "protocol.yaml")
    steps.readings(protocol=protocol, cases=str(cases), readings=str(init.database),
                   out=str(tmp_path / "a.parquet"), out_readers=str(tmp_path / "a.json"))
    block = ReadersBlock.model_validate(read_json(tmp_path / "a.json"))
    rows = {r.reader_id: r for r in block.readers}
    assert rows["derm-a"].years_of_experience == 12.0 and rows["gp-c"].specialty == "general practice"
    assert sum(r.n_unaided + r.n_aided for r in block.readers) == len(pd.read_parquet(tmp_path / "a.parquet"))
    export_readings(init.database, out=tmp_path / "r.csv")
    steps.readings(protocol=protocol, cases=str(cases), readings=str(tmp_path / "r.csv"),
                   out=str(tmp_path / "b.parquet"), out_readers=str(tmp_path / "b.json"))
    csv_block = ReadersBlock.model_validate(read_json(tmp_path / "b.json"))
    assert csv_block.source == "readings file"
    assert {r.reader_id: r.years_of_experience for r in csv_block.readers} == {r: None for r in rows}
    assert [r.n_unaided for r in csv_block.readers] == [r.n_unaided for r in block.readers]
