"""``study report RESULTS_DIR --out report.pdf``: render the study report from ``results.json``.

Writes the PDF, ``report.html`` next to it (same content, self-contained), and the figures
as SVG files under ``RESULTS_DIR/figures/``. Figures are drawn in parallel processes and kept
in ``<figures>/.cache/`` (keyed by the sha256 of their inputs and drawing code), so a second
render redraws only the figures whose inputs changed. Prints the PDF's path as the last line.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="render the PDF + HTML study report from RESULTS_DIR/results.json",
        description=__doc__.splitlines()[0])
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="a study's results folder (holds results.json)")
    p.add_argument("--out", metavar="PDF", help="the PDF to write (default RESULTS_DIR/report.pdf); "
                                                "report.html goes next to it")
    p.add_argument("--html", metavar="HTML", help="where the HTML report goes (default: next to the PDF)")
    p.add_argument("--figures", metavar="DIR", help="where the SVG figures go (default RESULTS_DIR/figures)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from study.errors import Problem, StudyError
    from study.io import read_json
    from study.report.render import render_report
    from study.results import SCHEMA_VERSION

    t_start = time.perf_counter()
    results_dir = Path(args.results_dir)
    src = results_dir / "results.json" if results_dir.is_dir() else results_dir
    if not src.is_file():
        raise StudyError(Problem(str(src), "", "results.json not found; run the study first (study run CONFIG)"))
    results = read_json(src)
    if not isinstance(results, dict) or "schema_version" not in results:
        raise StudyError(Problem(str(src), "schema_version",
                                 "not a study results file (expected a JSON object with schema_version, study, ...)"))
    if results["schema_version"] != SCHEMA_VERSION:
        raise StudyError(Problem(str(src), "schema_version",
                                 f"unsupported schema version {results['schema_version']!r}; "
                                 f"this version reads {SCHEMA_VERSION}"))
    from study.report.context import parse_results

    # typed once here, and the parsed JSON dropped: at 100,000 cases results.json is ~130 MB and its dicts
    # would stay in memory beside the typed results for the whole render (figures, HTML, PDF)
    typed = parse_results(results)
    del results
    base = src.parent
    out_pdf = Path(args.out) if args.out else base / "report.pdf"
    out_html = Path(args.html) if args.html else out_pdf.with_name("report.html")
    figures = Path(args.figures) if args.figures else base / "figures"
    t0 = time.perf_counter()
    pages = render_report(typed, out_pdf=out_pdf, out_html=out_html, figures_dir=figures, results_dir=base,
                         figure_cache=figures / ".cache")
    import sys

    from study.job_usage import job_usage, usage_line

    print(f"report: {len(pages)} sections rendered in {time.perf_counter() - t0:.1f} s; HTML {out_html}",
          file=sys.stderr)
    print(usage_line(job_usage("report", wall_s=time.perf_counter() - t_start)), file=sys.stderr)
    print(out_pdf)
    return 0
