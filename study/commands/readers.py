"""``study readers {init,serve,export}``: run the reader study itself.

    study readers init CONFIG --readers READERS.csv [--base-url URL] [--links-out FILE]
    study readers serve CONFIG [--host 127.0.0.1] [--port 8765] [--allow-early-aided]
    study readers export CONFIG --out readings.csv [--marks-out marks.json]

``init`` creates the reading database (``readers.database`` of the config, default
``<results_dir>/readers.sqlite``) and prints each reader's personal login link and the admin
link once (only the tokens' hashes are stored). ``serve`` runs the web app on localhost
unless told otherwise. ``export`` writes the study's readings format; a config may also
point ``cohort.readings`` at the database directly.
"""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("readers", help="run the reader study: reading database, web app, export",
                              description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(p))
    i = sub.add_parser("init", help="create the reading database and the readers' login links")
    i.add_argument("config")
    i.add_argument("--readers", required=True, help="readers CSV: reader_id, reader_group [, years_of_experience, "
                   "specialty, ...]")
    i.add_argument("--base-url", default="http://127.0.0.1:8765", help="where the app will be served (for the links)")
    i.add_argument("--links-out", help="also write the links to this CSV (keep it private)")
    i.set_defaults(func=_init)
    s = sub.add_parser("serve", help="serve the reading web app")
    s.add_argument("config")
    s.add_argument("--host", default="127.0.0.1", help="interface to bind (default: localhost only)")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--allow-early-aided", action="store_true",
                   help="open the aided session before the washout ends (demonstrations only; recorded in the audit)")
    s.set_defaults(func=_serve)
    e = sub.add_parser("export", help="write the readings CSV (and lesion marks JSON) from the database")
    e.add_argument("config")
    e.add_argument("--out", required=True)
    e.add_argument("--marks-out", help="lesion marks JSON (default: next to --out, <name>.marks.json)")
    e.set_defaults(func=_export)


def _init(args) -> int:
    import csv
    import os

    from study.readers.setup import init_database

    r = init_database(args.config, readers_csv=args.readers)
    base = args.base_url.rstrip("/")
    rows = [("reader", rid, f"{base}/login/{tok}") for rid, tok in r.reader_tokens.items()]
    rows.append(("admin", "", f"{base}/admin/login/{r.admin_token}"))
    if args.links_out:
        fd = os.open(args.links_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows([("role", "reader_id", "link"), *rows])
    print(f"reading database: {r.database} ({len(r.reader_tokens)} readers, {r.n_cases} cases, sessions: "
          f"{', '.join(r.sessions)})", file=sys.stderr)
    print("login links (shown once; only their hashes are stored):", file=sys.stderr)
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(("role", "reader_id", "link"))
    w.writerows(rows)
    return 0


def _serve(args) -> int:
    import uvicorn

    from study.readers.app import create_app
    from study.readers.setup import study_paths

    app = create_app(study_paths(args.config).database, allow_early_aided=args.allow_early_aided)
    print(f"serving the reading tool on http://{args.host}:{args.port}/ (Ctrl-C stops)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def _export(args) -> int:
    from pathlib import Path

    from study.readers.export import export_readings
    from study.readers.setup import study_paths

    out = Path(args.out)
    marks = Path(args.marks_out) if args.marks_out else out.with_name(out.stem + ".marks.json")
    n = export_readings(study_paths(args.config).database, out=out, marks_out=marks)
    print(f"{n} readings -> {out}; lesion marks -> {marks}", file=sys.stderr)
    return 0
