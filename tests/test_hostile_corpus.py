"""Issue 18 items 1 and 9: a corpus of hostile studies, each ending in exit status 2 with a
message naming the file and the key or row, or in a finished report; never a traceback, and
nothing that looks finished left behind by a refused study.

The studies are built by tests/hostile_corpus.py from one tiny synthetic study (6 cases,
precomputed detections, 100 bootstrap replicates). Most are refused by ``study check`` (run
in-process: an uncaught exception would fail the test as a traceback would); two go through
``study run`` to show the run refuses them as well; the degenerate studies (all cases
excluded, one case, one patient, one grade in the reference, a reader with nothing to read, a
model that finds nothing, all readers identical) run end to end, concurrently, once per module.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile_corpus import DEGENERATE, REFUSED, Refused, Study, new_study
from tests.small_study import study_env

FINISHED = ("results.json", "report.pdf", "report.html")
#: refused studies also given to ``study run``: one refused before Snakemake starts, one in its first step
RUN_REFUSED = ("protocol_negative_seed", "manifest_header_only")
_BY_NAME = {c.name: c for c in REFUSED}


def test_corpus_holds_at_least_forty_hostile_studies():
    names = [c.name for c in REFUSED] + [d.name for d in DEGENERATE]
    assert len(names) >= 40 and len(set(names)) == len(names)


def _nothing_finished(s: Study) -> None:
    for name in FINISHED:
        assert not (s.results / name).exists(), f"{name} left behind by a refused study"


def _has_line(err: str, expected: list[str]) -> bool:
    return any(all(e in line for e in expected) for line in err.splitlines())


@pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
def test_refused_by_check(tmp_path, run_cli, case: Refused):
    s = new_study(tmp_path)
    case.build(s)
    rc, out, err = run_cli("check", s.config, "--directory", s.root)
    assert rc == 2, f"exit {rc}\n{out}\n{err}"
    assert "Traceback" not in out + err
    assert _has_line(err, case.expected), f"no line with all of {case.expected} in:\n{err}"
    _nothing_finished(s)


# --------------------------------------------------------------------------- study run, concurrently

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``study run`` of every degenerate study and of the RUN_REFUSED ones, all at once (1 core each)."""
    study = str(Path(sys.executable).parent / "study")
    started: dict[str, tuple[Study, subprocess.Popen]] = {}
    builders = {d.name: d.build for d in DEGENERATE} | {n: _BY_NAME[n].build for n in RUN_REFUSED}
    t0 = time.monotonic()
    for name, build in builders.items():
        s = new_study(tmp_path_factory.mktemp(name))
        build(s)
        started[name] = (s, subprocess.Popen([study, "run", "config.yaml", "--cores", "1"], cwd=s.root,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                             env=study_env()))
    done = {}
    for name, (s, proc) in started.items():
        out, err = proc.communicate(timeout=1200)
        done[name] = (s, proc.returncode, out, err)
    print(f"hostile corpus: {len(started)} study runs in {time.monotonic() - t0:.0f} s")
    return done


@pytest.mark.slow
@pytest.mark.parametrize("name", RUN_REFUSED)
def test_refused_by_run(runs, name):
    s, rc, out, err = runs[name]
    assert rc == 2, f"exit {rc}\n{out}\n{err[-3000:]}"
    assert "Traceback" not in out + err
    assert _has_line(err, _BY_NAME[name].expected), err[-3000:]
    _nothing_finished(s)


def _zero_width(tree, path=""):
    """Every estimate object in ``tree`` with an interval of zero width (within rounding)."""
    if isinstance(tree, dict):
        if {"estimate", "ci_low", "ci_high", "method"} <= set(tree):
            lo, hi = tree["ci_low"], tree["ci_high"]
            if lo is not None and hi is not None and hi - lo <= 1e-9 * max(1.0, abs(lo), abs(hi)):
                yield path
        for k, v in tree.items():
            yield from _zero_width(v, f"{path}.{k}")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _zero_width(v, f"{path}[{i}]")


def _report_text(s: Study) -> str:
    """The report's text (report.html without its markup and stylesheet; the PDF is rendered from it)."""
    page = (s.results / "report.html").read_text(encoding="utf-8")
    page = re.sub(r"<(style|svg)\b.*?</\1>", " ", page, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.slow
@pytest.mark.parametrize("degenerate", DEGENERATE, ids=[d.name for d in DEGENERATE])
def test_degenerate_study_ends_in_a_report(runs, degenerate):
    """Exit 0, the report's path printed last, results.json valid with no zero-width interval,
    and the report says which estimates are not estimable and why."""
    from study.metrics.bounds import interval_problems
    from study.results import Results

    s, rc, out, err = runs[degenerate.name]
    assert rc == 0, f"exit {rc}\n{err[-4000:]}"
    assert "Traceback" not in out + err
    pdf = s.results / "report.pdf"
    assert out.strip().splitlines()[-1] == str(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    raw = json.loads((s.results / "results.json").read_text(encoding="utf-8"))
    results = Results.model_validate(raw)
    assert interval_problems(raw) == []
    assert list(_zero_width(raw)) == []
    text = " ".join(_report_text(s).split())
    for phrase in degenerate.report_says:
        assert phrase in text, f"the report does not say {phrase!r}"
    degenerate.check(results, raw)
