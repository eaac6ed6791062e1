"""Time the study report: figures, HTML, layout and PDF, for the demo-sized fixture or a real run.

    python bench/bench_report.py                      # tests/fixtures/report/results.json.gz (160 cases, 7 readers)
    python bench/bench_report.py demo-out/results     # a real study's results folder

Prints wall-clock and CPU seconds per stage (the machine is shared, so CPU time is the
steadier number), the whole ``render_report`` call, and, as a peer measured in the same run,
the same report rendered without figures (the ratio says what the figures cost).
Target: the demo report renders in at most 20 s.
"""

from __future__ import annotations

import gzip
import json
import os
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


def main(argv: list[str]) -> int:
    os.environ.setdefault("SOURCE_DATE_EPOCH", "1763683200")
    results, source = _load(argv[1] if len(argv) > 1 else None)
    print(f"results: {source}")
    clock = _Clock()
    from weasyprint import HTML

    from study.report import figures as F
    from study.report.render import local_assets_fetcher, DEFAULT_ASSETS, render_html, render_report
    w_imp, c_imp = clock.lap()
    svgs = F.figure_svgs(results)
    w_fig, c_fig = clock.lap()
    html = render_html(results, figures=svgs)
    w_html, c_html = clock.lap()
    doc = HTML(string=html, base_url=DEFAULT_ASSETS.as_uri() + "/", url_fetcher=local_assets_fetcher([DEFAULT_ASSETS])).render()
    w_lay, c_lay = clock.lap()
    pdf = doc.write_pdf()
    w_pdf, c_pdf = clock.lap()
    print(f"{'stage':<22}{'wall s':>9}{'cpu s':>9}")
    for name, w, c in (("imports", w_imp, c_imp), (f"figures ({len(svgs)})", w_fig, c_fig), ("html", w_html, c_html),
                       (f"layout ({len(doc.pages)} pages)", w_lay, c_lay), (f"pdf ({len(pdf) // 1024} KiB)", w_pdf, c_pdf)):
        print(f"{name:<22}{w:>9.2f}{c:>9.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        clock.lap()
        render_report(results, out_pdf=Path(tmp) / "r.pdf", out_html=Path(tmp) / "r.html")
        w_all, c_all = clock.lap()
        doc2 = HTML(string=render_html(results, figures={}), url_fetcher=local_assets_fetcher([DEFAULT_ASSETS])).render()
        doc2.write_pdf()
        w_peer, c_peer = clock.lap()
    print(f"render_report (whole call): wall {w_all:.2f} s, cpu {c_all:.2f} s  (target <= {TARGET_S:.0f} s)")
    print(f"peer, same report without figures: wall {w_peer:.2f} s, cpu {c_peer:.2f} s; "
          f"figures cost x{c_all / max(c_peer, 1e-9):.2f} in CPU")
    try:
        load = os.getloadavg()[0]
        print(f"load average (1 min) during the run: {load:.1f} on {os.cpu_count()} cores")
    except OSError:
        pass
    print(f"{'OK' if c_all <= TARGET_S else 'SLOW'}: {c_all:.1f} s CPU for the whole report")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
