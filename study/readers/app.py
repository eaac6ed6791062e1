"""The reading tool's web app (Starlette + Jinja2): blinded reading sessions and an admin page.

Access: a reader logs in with their personal link ``/login/<token>``, which sets an
HttpOnly, SameSite=Strict cookie holding the token; every request checks it against the
stored sha256 in constant time (:mod:`study.readers.tokens`). A reader's URLs carry opaque
item ids that exist only for that reader and session; the image is served by item id,
never by path; nothing of the reference standard, other readers or the model (in the
unaided session) reaches the page. Forms carry an anti-forgery token (HMAC of the login)
and cross-origin posts are refused. All user text is escaped by Jinja2's autoescape.
"""

from __future__ import annotations

import mimetypes
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from study.readers import db
from study.readers.forms import parse_answer
from study.readers.tokens import csrf_token, csrf_valid, hash_token, tokens_match

HERE = Path(__file__).parent
DAY = 86400.0
READER_COOKIE, ADMIN_COOKIE = "acne_reader", "acne_admin"


class HTTPProblem(Exception):
    """A refusal with a status and a plain-text message for the browser."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class ReadingTool:
    """The app's state: the database, its meta, and the model output for the aided session."""

    def __init__(self, database: str | Path, *, allow_early_aided: bool = False,
                 clock: Callable[[], float] = time.time):
        self.database = Path(database)
        if not self.database.exists():
            from study.errors import StudyError
            raise StudyError("reading database not found (create it with `study readers init`)",
                             file=str(self.database))
        self.allow_early_aided = allow_early_aided
        self.clock = clock
        self._local = threading.local()
        self.meta = db.get_meta(self.con())
        self._aid: tuple[pd.DataFrame, dict[str, str]] | None = None

    def con(self) -> sqlite3.Connection:
        c = getattr(self._local, "con", None)
        if c is None:
            c = self._local.con = db.connect(self.database)
        return c

    # ------------------------------------------------------------------ access
    def reader_of(self, request: Request) -> tuple[dict[str, Any], str]:
        token = request.cookies.get(READER_COOKIE, "")
        if not token:
            raise HTTPProblem(401, "Not logged in: open your personal login link.")
        return self.reader_by_token(token)

    def reader_by_token(self, token: str) -> tuple[dict[str, Any], str]:
        h = hash_token(token)
        row = self.con().execute("SELECT * FROM readers WHERE token_hash = ?", (h,)).fetchone()
        if row is None or not tokens_match(token, row["token_hash"]):
            raise HTTPProblem(403, "This login link is not valid. Ask the study coordinator for yours.")
        if row["expires_at"] < self.clock():
            raise HTTPProblem(403, "This login link has expired. Ask the study coordinator for a new one.")
        return dict(row), h

    def admin_check(self, token: str) -> str:
        h = hash_token(token or "")
        row = self.con().execute("SELECT * FROM admins WHERE token_hash = ?", (h,)).fetchone()
        if not token or row is None or not tokens_match(token, row["token_hash"]):
            raise HTTPProblem(403, "This is not a valid admin link.")
        if row["expires_at"] < self.clock():
            raise HTTPProblem(403, "This admin link has expired.")
        return h

    def session_state(self, reader_id: str, modality: str) -> tuple[bool, str]:
        """Whether a session is open to a reader, and why not."""
        if modality not in self.meta["sessions"]:
            raise HTTPProblem(404, f"No {modality!r} session in this study.")
        con = self.con()
        if modality == "unaided":
            if "aided" in self.meta["sessions"] and db.answered_ids(con, reader_id, "aided"):
                return False, "The unaided session is closed: you have started the aided session."
            return True, ""
        if db.next_item(con, reader_id, "unaided") is not None:
            return False, "The aided session opens after you finish the unaided session."
        last = db.last_answer_time(con, reader_id, "unaided") or 0.0
        opens = last + self.meta["washout_days"] * DAY
        if self.clock() < opens and not self.allow_early_aided:
            return False, (f"The aided session opens after a washout of {self.meta['washout_days']} days, on "
                           f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(opens))}.")
        if self.aid() is None:
            return False, "The model's output is not available yet (the study has not run the model)."
        return True, ""

    def aid(self) -> tuple[pd.DataFrame, dict[str, str]] | None:
        """The aid model's detections (at the operating threshold) and grades, from the results folder."""
        if self._aid is None:
            res, model = Path(self.meta["results_dir"]), self.meta["aid_model"]
            det, grades = res / "detections" / f"{model}.parquet", res / "grades" / f"{model}.parquet"
            if not (det.exists() and grades.exists()):
                return None
            d = pd.read_parquet(det)
            d = d[d["score"] >= self.meta["operating_threshold"]]
            g = pd.read_parquet(grades)
            self._aid = (d, dict(zip(g["case_id"].astype(str), g["grade"].astype(str))))
        return self._aid


def _problem_response(e: HTTPProblem) -> Response:
    return PlainTextResponse(e.message + "\n", status_code=e.status)


def create_app(database: str | Path, *, allow_early_aided: bool = False,
               clock: Callable[[], float] = time.time) -> Starlette:
    """The reading tool as an ASGI app (serve it with uvicorn: ``study readers serve``)."""
    tool = ReadingTool(database, allow_early_aided=allow_early_aided, clock=clock)
    if allow_early_aided:
        db.audit(tool.con(), actor="server", action="washout override (--allow-early-aided)")
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    levels, classes = tool.meta["levels"], tool.meta["classes"]

    async def in_db(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(connection, ...)`` in a worker thread with that thread's own connection
        (a connection is never shared between threads)."""
        return await run_in_threadpool(lambda: fn(tool.con(), *args, **kwargs))

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        resp = templates.TemplateResponse(request, name, {"study": tool.meta["study"], **ctx}, status_code=status)
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "same-origin"  # (no-referrer would make browsers send Origin: null)
        resp.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; style-src 'self' "
                                                   "'unsafe-inline'; frame-ancestors 'none'; form-action 'self'")
        return resp

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return origin is None
        return origin.split("://", 1)[-1] == request.headers.get("host", "")

    async def login(request: Request) -> Response:
        _reader, _ = await run_in_threadpool(tool.reader_by_token, request.path_params["token"])
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(READER_COOKIE, request.path_params["token"], httponly=True, samesite="strict",
                        max_age=int(90 * DAY))
        return resp

    async def home(request: Request) -> Response:
        reader, _ = await run_in_threadpool(tool.reader_of, request)

        def sessions() -> list[dict[str, Any]]:
            out = []
            for m in tool.meta["sessions"]:
                items = db.session_items(tool.con(), reader["reader_id"], m)
                done = len(db.answered_ids(tool.con(), reader["reader_id"], m))
                is_open, why = tool.session_state(reader["reader_id"], m)
                out.append({"modality": m, "done": done, "total": len(items), "open": is_open, "why": why})
            return out

        return page(request, "home.html", reader=reader, sessions=await run_in_threadpool(sessions))

    async def session(request: Request) -> Response:
        reader, _ = await run_in_threadpool(tool.reader_of, request)
        modality = request.path_params["modality"]
        is_open, why = await run_in_threadpool(tool.session_state, reader["reader_id"], modality)
        if not is_open:
            return PlainTextResponse(why + "\n", status_code=403)
        item = await in_db(db.next_item, reader["reader_id"], modality)
        if item is None:
            return page(request, "done.html", reader=reader, modality=modality)
        return RedirectResponse(f"/item/{item.item_id}", status_code=303)

    def own_item(reader: dict[str, Any], item_id: str) -> db.Item:
        item = db.item_for_reader(tool.con(), item_id, reader["reader_id"])
        if item is None:
            raise HTTPProblem(404, "No such case in your reading list.")
        return item

    def reading_context(reader: dict[str, Any], h: str, item: db.Item) -> dict[str, Any]:
        is_open, why = tool.session_state(reader["reader_id"], item.modality)
        if not is_open:
            raise HTTPProblem(403, why)
        db.record_view(tool.con(), item.item_id, now=tool.clock())
        items = db.session_items(tool.con(), reader["reader_id"], item.modality)
        answered = db.answered_ids(tool.con(), reader["reader_id"], item.modality)
        overlay, model_grade = [], None
        if item.modality == "aided":
            aid = tool.aid()
            assert aid is not None  # session_state refuses the aided session without it
            d = aid[0][aid[0]["case_id"].astype(str) == item.case_id]
            overlay = [{"x": float(r.x), "y": float(r.y), "w": float(r.w), "h": float(r.h), "class": str(r["class"]),
                        "score": round(float(r.score), 2)} for _, r in d.iterrows()]
            model_grade = aid[1].get(item.case_id)
        return {"reader": reader, "item": item, "position": item.position + 1, "total": len(items),
                "done": len(answered), "answer": db.get_answer(tool.con(), item.item_id), "levels": levels,
                "classes": classes, "csrf": csrf_token(tool.meta["secret"], h), "overlay": overlay,
                "model_grade": model_grade,
                "answered": [(i.position + 1, i.item_id) for i in items if i.item_id in answered]}

    async def read_item(request: Request) -> Response:
        reader, h = await run_in_threadpool(tool.reader_of, request)
        item = await run_in_threadpool(own_item, reader, request.path_params["item_id"])
        ctx = await run_in_threadpool(reading_context, reader, h, item)
        return page(request, "read.html", problems=[], **ctx)

    async def submit_item(request: Request) -> Response:
        reader, h = await run_in_threadpool(tool.reader_of, request)
        item = await run_in_threadpool(own_item, reader, request.path_params["item_id"])
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not same_origin(request) or not csrf_valid(tool.meta["secret"], h, fields.get("csrf", "")):
            return PlainTextResponse("Refused: the form's anti-forgery token is missing or wrong (reload the page).\n",
                                     status_code=403)
        is_open, why = await run_in_threadpool(tool.session_state, reader["reader_id"], item.modality)
        if not is_open:
            return PlainTextResponse(why + "\n", status_code=403)
        answer, problems = parse_answer(fields, levels=levels, classes=classes)
        if problems:
            return PlainTextResponse("Not saved:\n" + "".join(f"- {p}\n" for p in problems), status_code=400)
        await in_db(db.save_answer, item, answer, now=tool.clock())
        return RedirectResponse(f"/session/{item.modality}", status_code=303)

    async def image(request: Request) -> Response:
        reader, _ = await run_in_threadpool(tool.reader_of, request)
        item = await run_in_threadpool(own_item, reader, request.path_params["item_id"])
        row = await in_db(lambda con: con.execute("SELECT image_path FROM cases WHERE case_id = ?",
                                                  (item.case_id,)).fetchone())
        path = Path(row["image_path"])
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        # no filename: the response names neither the file nor the case
        return FileResponse(path, media_type=media, headers={"Cache-Control": "private, no-store"})

    async def admin_login(request: Request) -> Response:
        await run_in_threadpool(tool.admin_check, request.path_params["token"])
        resp = RedirectResponse("/admin", status_code=303)
        resp.set_cookie(ADMIN_COOKIE, request.path_params["token"], httponly=True, samesite="strict",
                        max_age=int(90 * DAY))
        return resp

    async def admin(request: Request) -> Response:
        await run_in_threadpool(tool.admin_check, request.cookies.get(ADMIN_COOKIE, ""))
        rows = await in_db(db.progress)
        return page(request, "admin.html", rows=rows)

    async def admin_readings(request: Request) -> Response:
        from study.readers.export import readings_table

        await run_in_threadpool(tool.admin_check, request.cookies.get(ADMIN_COOKIE, ""))
        df, _ = await run_in_threadpool(readings_table, tool.database)
        return Response(df.to_csv(index=False, lineterminator="\n"), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="readings.csv"',
                                 "Cache-Control": "no-store"})

    def guarded(fn: Callable) -> Callable:
        async def run(request: Request) -> Response:
            try:
                return await fn(request)
            except HTTPProblem as e:
                return _problem_response(e)
        return run

    routes = [
        Route("/login/{token}", guarded(login)),
        Route("/", guarded(home)),
        Route("/session/{modality}", guarded(session)),
        Route("/item/{item_id}", guarded(read_item), methods=["GET"]),
        Route("/item/{item_id}", guarded(submit_item), methods=["POST"]),
        Route("/image/{item_id}", guarded(image)),
        Route("/admin/login/{token}", guarded(admin_login)),
        Route("/admin", guarded(admin)),
        Route("/admin/readings.csv", guarded(admin_readings)),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes)
