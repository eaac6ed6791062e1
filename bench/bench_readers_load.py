"""Load on the reading tool: 20 concurrent simulated readers submit 1,000 answers over HTTP.

    python bench/bench_readers_load.py [--readers 20] [--answers 1000]

Builds a synthetic study in a temporary folder, creates its reading database, serves it with
``study readers serve`` (uvicorn, one process) on 127.0.0.1, and lets each simulated reader
log in by link and read through its own cases (GET the next case, POST the answer, follow
the redirect) from its own thread. Checks: zero lost (every answer in the database, with
the values sent), zero errors (every POST answered 303). Prints the latency of the answer
POST (p50, p95, max; goal: p95 under 200 ms on this machine) and, as a peer measured in the
same run, the same answers stored directly through ``study.readers.db.save_answer`` from one
process (the same SQLite transaction with ``synchronous=FULL``, no HTTP): the ratio says
what the web layer and concurrency cost on top of the durable write. The server's CPU time
per answered case is printed too: on a shared machine the latency mostly measures the queue
for the CPU, the CPU time does not.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GOAL_P95_MS = 200.0


def _pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readers", type=int, default=20)
    ap.add_argument("--answers", type=int, default=1000)
    args = ap.parse_args()
    per_reader = -(-args.answers // args.readers)

    import httpx

    from study.readers import db
    from study.readers.setup import init_database
    from tests.readers_study import make_study

    tmp = Path(tempfile.mkdtemp(prefix="bench-readers-"))
    try:
        s = make_study(tmp, cases=max(40, int(per_reader * 1.3) + 10), seed=2)
        roster = "reader_id,reader_group\n" + "".join(
            f"r{k:02d},{['junior', 'intermediate', 'senior'][k % 3]}\n" for k in range(args.readers))
        s["readers"].write_text(roster)
        init = init_database(s["config"], readers_csv=s["readers"])
        if init.n_cases < per_reader:
            raise SystemExit(f"only {init.n_cases} included cases for {per_reader} answers per reader")
        peer_db = tmp / "peer.sqlite"
        shutil.copy(init.database, peer_db)

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        log = open(tmp / "server.log", "wb")  # noqa: SIM115 - the server writes it until it stops
        server = subprocess.Popen([sys.executable, "-m", "study", "readers", "serve", str(s["config"]),
                                   "--port", str(port)], env=env, cwd=tmp, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        latencies: list[float] = []
        errors: list[str] = []
        sent: dict[str, tuple[str, float]] = {}
        lock = threading.Lock()
        total = args.answers
        counter = iter(range(total))

        def reader(rid: str, token: str) -> None:
            with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as c:
                c.get(f"/login/{token}")
                for n in range(per_reader):
                    with lock:
                        if next(counter, None) is None:
                            return
                    r = c.get("/session/unaided")
                    if r.status_code != 303:
                        errors.append(f"{rid}: next case gave {r.status_code}")
                        return
                    item = r.headers["location"].rsplit("/", 1)[1]
                    page = c.get(r.headers["location"])
                    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
                    grade, conf = ["I", "II", "III", "IV"][n % 4], float(n % 101)
                    t0 = time.perf_counter()
                    resp = c.post(f"/item/{item}", data={"csrf": csrf, "grade": grade, "confidence": str(conf),
                                                         "count_papule": str(n % 7)},
                                  headers={"Origin": base})
                    dt = time.perf_counter() - t0
                    with lock:
                        latencies.append(dt)
                        sent[item] = (grade, conf)
                        if resp.status_code != 303:
                            errors.append(f"{rid}: answer gave {resp.status_code}: {resp.text[:200]}")

        t0 = time.perf_counter()
        threads = [threading.Thread(target=reader, args=(rid, tok)) for rid, tok in init.reader_tokens.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        import psutil

        cpu = psutil.Process(server.pid).cpu_times()
        server_cpu = cpu.user + cpu.system
        load = os.getloadavg()[0]
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
        log.close()
        server_log = (tmp / "server.log").read_text(errors="replace")
        if "Traceback" in server_log:
            print("server errors:\n" + server_log[-3000:])

        con = db.connect(init.database)
        stored = {r["item_id"]: (r["grade"], r["confidence"]) for r in con.execute("SELECT * FROM answers")}
        lost = [i for i in sent if stored.get(i) != sent[i]]

        # peer: the same answers, stored directly (one process, the same transaction per answer)
        pcon = db.connect(peer_db)
        items = {i.item_id: i for rid in init.reader_tokens for i in db.session_items(pcon, rid, "unaided")}
        direct: list[float] = []
        for item_id, (grade, conf) in sent.items():
            answer = {"grade": grade, "confidence": conf, "counts": {"papule": 1}, "marks": [], "assessable": True,
                      "reason": "", "comment": ""}
            t1 = time.perf_counter()
            db.save_answer(pcon, items[item_id], answer)
            direct.append(time.perf_counter() - t1)

        p50, p95, mx = (_pct(latencies, 50) * 1e3, _pct(latencies, 95) * 1e3, max(latencies) * 1e3)
        d50, d95 = _pct(direct, 50) * 1e3, _pct(direct, 95) * 1e3
        print(f"readers: {args.readers} concurrent, answers submitted: {len(sent)} in {wall:.1f} s "
              f"({len(sent) / wall:.0f} answers/s)")
        print(f"lost: {len(lost)}   errors: {len(errors)}")
        print(f"server CPU: {server_cpu:.1f} s in all ({server_cpu / max(1, len(sent)) * 1e3:.1f} ms per answered case: "
              f"login, next-case redirect, reading page, image-free POST); machine load average {load:.1f} "
              f"on {os.cpu_count()} CPUs")
        for e in errors[:5]:
            print("  ", e)
        print(f"answer POST latency over HTTP: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {mx:.1f} ms "
              f"(goal p95 < {GOAL_P95_MS:.0f} ms: {'met' if p95 < GOAL_P95_MS else 'NOT met'})")
        print(f"peer, direct save_answer (one process): p50 {d50:.2f} ms, p95 {d95:.2f} ms")
        print(f"ratio HTTP / direct: p50 {p50 / d50:.1f}x, p95 {p95 / d95:.1f}x")
        return 0 if not lost and not errors and len(sent) == args.answers else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
