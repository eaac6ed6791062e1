"""Time the study report: figures, HTML, layout and PDF, for the demo-sized fixture or a real run.

    python bench/bench_report.py                      # tests/fixtures/report/results.json.gz (160 cases, 7 readers)
    python bench/bench_report.py demo-out/results     # a real study's results folder

Prints wall-clock and CPU seconds per stage (the machine is shared, so CPU time is the
steadier number), then the whole ``study report RESULTS_DIR`` command run as a subprocess,
with the CPU seconds of that process AND its children (the figure workers), measured:

- cold: an empty figure cache (every figure drawn, in parallel processes);
- warm: the same command again (figures read from ``RESULTS_DIR/figures/.cache``); the two
  PDFs must be byte-identical;
- peer: the same report rendered without figures by a subprocess of the same kind, in the
  same run; the ratios say what the figures cost.

Target: the whole demo report renders in at most 20 s of CPU.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "report" / "results.json.gz"
TARGET_S = 20.0


def _load(arg: str | None) -> tuple[dict, str]:
    if arg is None:
        with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
            return json.load(f), str(FIXTURE)
    p = Path(arg)
    p = p / "results.json" if p.is_dir() else p
    return json.loads(p.read_text(encoding="utf-8")), str(p)


class _Clock:
    def __init__(self):
        self.w, self.c = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        w, c = time.perf_counter(), time.process_time()
        out = (w - self.w, c - self.c)
        self.w, self.c = w, c
        return out


#: the peer: the same report, rendered by the same code without figures
_PEER = """
import sys
from pathlib import Path
from study.io import read_json
from study.report.render import render
Path(sys.argv[2]).write_bytes(render(read_json(sys.argv[1]), figures={}).pdf)
"""


def _child(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; its wall seconds and the CPU seconds (user + system) of it and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str]) -> int:
    os.environ.setdefault("SOURCE_DATE_EPOCH", "1763683200")
    results, source = _load(argv[1] if len(argv) > 1 else None)
    print(f"results: {source}")
    clock = _Clock()
    from weasyprint import HTML

    from study.report import figures as F
    from study.report.render import DEFAULT_ASSETS, local_assets_fetcher, render_html
    w_imp, c_imp = clock.lap()
    svgs = F.figure_svgs(results, workers=1)
    w_fig, c_fig = clock.lap()
    html = render_html(results, figures=svgs)
    w_html, c_html = clock.lap()
    doc = HTML(string=html, base_url=DEFAULT_ASSETS.as_uri() + "/", url_fetcher=local_assets_fetcher([DEFAULT_ASSETS])).render()
    w_lay, c_lay = clock.lap()
    pdf = doc.write_pdf()
    w_pdf, c_pdf = clock.lap()
    print(f"{'stage':<22}{'wall s':>9}{'cpu s':>9}")
    for name, w, c in (("imports", w_imp, c_imp), (f"figures ({len(svgs)}, 1 process)", w_fig, c_fig), ("html", w_html, c_html),
                       (f"layout ({len(doc.pages)} pages)", w_lay, c_lay), (f"pdf ({len(pdf) // 1024} KiB)", w_pdf, c_pdf)):
        print(f"{name:<22}{w:>9.2f}{c:>9.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        rd = Path(tmp)
        (rd / "results.json").write_text(json.dumps(results), encoding="utf-8")
        cold_w, cold_c = _child([sys.executable, "-m", "study", "report", str(rd), "--out", str(rd / "cold.pdf")])
        warm_w, warm_c = _child([sys.executable, "-m", "study", "report", str(rd), "--out", str(rd / "warm.pdf")])
        peer_w, peer_c = _child([sys.executable, "-c", _PEER, str(rd / "results.json"), str(rd / "peer.pdf")])
        same = (rd / "cold.pdf").read_bytes() == (rd / "warm.pdf").read_bytes()
    print("whole `study report` (CPU of the process and its children):")
    print(f"{'run':<44}{'wall s':>9}{'cpu s':>9}{'x peer':>8}")
    for name, w, c in (("cold (figures drawn, parallel)", cold_w, cold_c),
                       ("warm (figures from the cache)", warm_w, warm_c),
                       ("peer: same report without figures", peer_w, peer_c)):
        print(f"{name:<44}{w:>9.2f}{c:>9.2f}{c / max(peer_c, 1e-9):>8.2f}")
    print(f"cold and warm PDFs byte-identical: {same}")
    try:
        load = os.getloadavg()[0]
        print(f"load average (1 min) during the run: {load:.1f} on {os.cpu_count()} cores")
    except OSError:
        pass
    print(f"{'OK' if cold_c <= TARGET_S else 'SLOW'}: {cold_c:.1f} s CPU for the whole report "
          f"(cold; target <= {TARGET_S:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
