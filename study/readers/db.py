"""The reading database: SQLite in WAL mode, every answer committed when submitted.

Tables
------
``meta``      key/value facts of the study (protocol levels and classes, seed, washout, secret)
``readers``   reader id, group, experience, specialty, sha256 of the login token, expiry
``admins``    sha256 of the admin token, expiry
``items``     one row per (reader, session, position): an opaque ``item_id`` (what the
              reader's URLs carry; different for every reader and session) and the case
``views``     when a reader first opened an item (time on case = submission - first view)
``answers``   the current answer per item (grade, confidence, counts, marks, ...)
``audit``     append-only (triggers refuse UPDATE and DELETE): every submission and
              amendment, with who, when, the old and the new value; and washout overrides

Writes use ``BEGIN IMMEDIATE`` and ``synchronous=FULL``: an answer acknowledged to the
browser is on disk, so a server killed with SIGKILL loses nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS readers (
  reader_id TEXT PRIMARY KEY, reader_group TEXT NOT NULL, years_of_experience REAL, specialty TEXT NOT NULL,
  extra TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, expires_at REAL NOT NULL, order_seed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS admins (token_hash TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS cases (case_id TEXT PRIMARY KEY, image_path TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
  item_id TEXT PRIMARY KEY, reader_id TEXT NOT NULL REFERENCES readers, modality TEXT NOT NULL,
  position INTEGER NOT NULL, case_id TEXT NOT NULL REFERENCES cases, UNIQUE (reader_id, modality, position),
  UNIQUE (reader_id, modality, case_id));
CREATE TABLE IF NOT EXISTS views (item_id TEXT PRIMARY KEY REFERENCES items, first_opened REAL NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
  item_id TEXT PRIMARY KEY REFERENCES items, grade TEXT, confidence REAL, counts TEXT NOT NULL, marks TEXT NOT NULL,
  assessable INTEGER NOT NULL, reason TEXT NOT NULL, comment TEXT NOT NULL, seconds REAL NOT NULL,
  submitted_at REAL NOT NULL, amended INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  item_id TEXT, old_value TEXT, new_value TEXT);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;
"""

ANSWER_FIELDS = ("grade", "confidence", "counts", "marks", "assessable", "reason", "comment", "seconds")


def connect(path: str | Path) -> sqlite3.Connection:
    """Open the reading database (WAL journal, synchronous=FULL, foreign keys, 10 s busy timeout)."""
    con = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("PRAGMA foreign_keys=ON")
    return con


#: writers of this process queue here: SQLite admits one writer at a time anyway, and its busy
#: handler waits by sleeping (up to 100 ms a try), which would make the latency's tail long
_WRITE_LOCK = threading.Lock()


@contextmanager
def write(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any error).

    Writers in one process take turns on a lock first; other processes (``study readers
    export``, the workflow) are waited for by SQLite's busy timeout.
    """
    with _WRITE_LOCK:
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def create_schema(con: sqlite3.Connection) -> None:
    con.executescript(SCHEMA)


def get_meta(con: sqlite3.Connection) -> dict[str, Any]:
    """Every ``meta`` value, JSON-decoded."""
    return {r["key"]: json.loads(r["value"]) for r in con.execute("SELECT key, value FROM meta")}


@dataclass(frozen=True)
class Item:
    """One case in one reader's session, as the reader's URLs name it."""

    item_id: str
    reader_id: str
    modality: str
    position: int
    case_id: str


def item_for_reader(con: sqlite3.Connection, item_id: str, reader_id: str) -> Item | None:
    """The item when it is this reader's, else None (another reader's items do not exist for them)."""
    r = con.execute("SELECT * FROM items WHERE item_id = ? AND reader_id = ?", (item_id, reader_id)).fetchone()
    return Item(**dict(r)) if r else None


def session_items(con: sqlite3.Connection, reader_id: str, modality: str) -> list[Item]:
    rows = con.execute("SELECT * FROM items WHERE reader_id = ? AND modality = ? ORDER BY position",
                       (reader_id, modality)).fetchall()
    return [Item(**dict(r)) for r in rows]


def answered_ids(con: sqlite3.Connection, reader_id: str, modality: str) -> set[str]:
    rows = con.execute("SELECT a.item_id FROM answers a JOIN items i USING (item_id) "
                       "WHERE i.reader_id = ? AND i.modality = ?", (reader_id, modality)).fetchall()
    return {r[0] for r in rows}


def next_item(con: sqlite3.Connection, reader_id: str, modality: str) -> Item | None:
    """The reader's first unanswered item of a session, in their randomised order (None: done)."""
    r = con.execute("SELECT i.* FROM items i LEFT JOIN answers a USING (item_id) WHERE i.reader_id = ? "
                    "AND i.modality = ? AND a.item_id IS NULL ORDER BY i.position LIMIT 1",
                    (reader_id, modality)).fetchone()
    return Item(**dict(r)) if r else None


def last_answer_time(con: sqlite3.Connection, reader_id: str, modality: str) -> float | None:
    r = con.execute("SELECT MAX(a.submitted_at) FROM answers a JOIN items i USING (item_id) "
                    "WHERE i.reader_id = ? AND i.modality = ?", (reader_id, modality)).fetchone()
    return r[0]


def record_view(con: sqlite3.Connection, item_id: str, *, now: float | None = None) -> float:
    """Record the first time an item was opened (kept across reloads); return it.

    A reload writes nothing. The first view is committed with ``synchronous=NORMAL``: in WAL
    mode that survives a crash or SIGKILL of the server (not a power cut, which could at
    worst restart one case's clock); answers keep ``synchronous=FULL``. This halves the
    fsyncs per case, which bound the throughput under concurrent readers.
    """
    row = con.execute("SELECT first_opened FROM views WHERE item_id = ?", (item_id,)).fetchone()
    if row is not None:
        return float(row[0])
    con.execute("PRAGMA synchronous=NORMAL")
    try:
        with write(con):
            con.execute("INSERT OR IGNORE INTO views (item_id, first_opened) VALUES (?, ?)",
                        (item_id, time.time() if now is None else now))
    finally:
        con.execute("PRAGMA synchronous=FULL")
    return float(con.execute("SELECT first_opened FROM views WHERE item_id = ?", (item_id,)).fetchone()[0])


def get_answer(con: sqlite3.Connection, item_id: str) -> dict[str, Any] | None:
    r = con.execute("SELECT * FROM answers WHERE item_id = ?", (item_id,)).fetchone()
    if r is None:
        return None
    out = dict(r)
    out["counts"] = json.loads(out["counts"])
    out["marks"] = json.loads(out["marks"])
    out["assessable"] = bool(out["assessable"])
    return out


def save_answer(con: sqlite3.Connection, item: Item, answer: dict[str, Any], *, now: float | None = None) -> bool:
    """Store (or amend) the answer to an item and append the change to the audit table.

    ``answer`` holds :data:`ANSWER_FIELDS` except ``seconds``, which is computed here:
    submission time minus the item's first view. Returns True when an earlier answer was
    amended. One transaction: the answer and its audit row are committed together.
    """
    now = time.time() if now is None else now
    with write(con):
        first = con.execute("SELECT first_opened FROM views WHERE item_id = ?", (item.item_id,)).fetchone()
        seconds = max(0.0, now - (first[0] if first else now))
        old = con.execute("SELECT * FROM answers WHERE item_id = ?", (item.item_id,)).fetchone()
        new = dict(answer, counts=json.dumps(answer["counts"], sort_keys=True),
                   marks=json.dumps(answer["marks"]), assessable=int(bool(answer["assessable"])))
        if old is not None:
            new["seconds"] = old["seconds"]  # time on case is the first reading's; amendments do not add
        else:
            new["seconds"] = round(seconds, 3)
        cols = list(ANSWER_FIELDS)
        con.execute(f"INSERT OR REPLACE INTO answers (item_id, {', '.join(cols)}, submitted_at, amended) "
                    f"VALUES (?, {', '.join('?' * len(cols))}, ?, ?)",
                    (item.item_id, *[new[c] for c in cols], now, int(old is not None)))
        old_value = json.dumps({c: old[c] for c in cols}) if old is not None else None
        con.execute("INSERT INTO audit (at, actor, action, item_id, old_value, new_value) VALUES (?, ?, ?, ?, ?, ?)",
                    (now, item.reader_id, "amend" if old is not None else "answer", item.item_id, old_value,
                     json.dumps({c: new[c] for c in cols})))
    return old is not None


def audit(con: sqlite3.Connection, *, actor: str, action: str, value: Any = None) -> None:
    """Append one event (e.g. a washout override) to the audit table."""
    with write(con):
        con.execute("INSERT INTO audit (at, actor, action, new_value) VALUES (?, ?, ?, ?)",
                    (time.time(), actor, action, json.dumps(value)))


def progress(con: sqlite3.Connection) -> list[dict[str, Any]]:
    """Per reader and session: done, remaining, median seconds per case (for the admin page)."""
    rows = con.execute(
        "SELECT r.reader_id, r.reader_group, i.modality, COUNT(i.item_id) AS total, COUNT(a.item_id) AS done "
        "FROM readers r JOIN items i USING (reader_id) LEFT JOIN answers a USING (item_id) "
        "GROUP BY r.reader_id, i.modality ORDER BY r.reader_id, i.modality DESC").fetchall()
    out = []
    for r in rows:
        secs = sorted(x[0] for x in con.execute(
            "SELECT a.seconds FROM answers a JOIN items i USING (item_id) WHERE i.reader_id = ? AND i.modality = ?",
            (r["reader_id"], r["modality"])))
        median = None
        if secs:
            m = len(secs) // 2
            median = secs[m] if len(secs) % 2 else (secs[m - 1] + secs[m]) / 2
        out.append(dict(r, remaining=r["total"] - r["done"], median_seconds=median))
    return out
