"""Bounded, neutral text in the report (issue 18 item 2).

Ids of up to 10,000 characters, with markup and bidirectional-control characters, are
written into the committed report fixture (``tests/fixtures/report/results.json.gz``, cut to
one model and two readers to keep the renders short); the report must print them as text,
without a raw bidi control (checked in the HTML and in the PDF read back by pdftotext), in a
bounded short form (the full value stays in results.json), and render within twice the time
of the same results with their ordinary ids, timed in the same test. ``study report`` stops
within a few seconds of SIGINT.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from study.report.text import (
    BIDI_CONTROLS,
    HASH_CHARS,
    KEEP,
    MAX_CHARS,
    MAX_TOKEN,
    bounded_text,
    neutralise_bidi,
    report_text,
    short_form,
)
from tests.pdf_text import pdf_text

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "report" / "results.json.gz"
REPO = Path(__file__).resolve().parents[1]
EPOCH = "1763683200"
#: the ids of the fixture that the hostile renders replace (one model, two readers, the study's name)
MODEL, READER_A, READER_B, STUDY = "sim-detector", "junior-1", "senior-1", "report-fixture"
TAG = "<blink>"  # a tag no template writes: in the HTML it may only appear escaped
_BIDI_RE = re.compile(f"[{BIDI_CONTROLS}]")


# ----------------------------------------------------------------------------- the text rule
def test_bidi_controls_are_shown_as_their_codes():
    for ch in BIDI_CONTROLS:
        out = neutralise_bidi(f"a{ch}b")
        assert out == f"a\\u{ord(ch):04X}b" and not _BIDI_RE.search(out)
    assert neutralise_bidi("plain ñ עברית") == "plain ñ עברית"  # right-to-left letters are text, not controls
    assert report_text("x\u202eexe.gpj") == "x\\u202Eexe.gpj"


def test_long_runs_get_a_stable_short_form_that_keeps_ids_apart():
    import hashlib

    a, b = "r" * 5000 + "A", "r" * 5000 + "B"  # the same first 5000 characters
    sa, sb = report_text(a), report_text(b)
    assert sa != sb and report_text(a) == sa  # distinct, and the same value always gives the same form
    assert sa == "r" * KEEP + "…" + hashlib.sha256(a.encode()).hexdigest()[:HASH_CHARS]
    sha = "c4ad2918b84deb3043dc4bb50d2010e819caf5024bcf2707fff1258b6f002e9b"  # a sha256 is printed whole
    assert report_text(f"sha256 {sha}") == f"sha256 {sha}"
    assert report_text("x" * MAX_TOKEN) == "x" * MAX_TOKEN
    assert report_text("x" * (MAX_TOKEN + 1)) == short_form("x" * (MAX_TOKEN + 1))
    words = "word " * 1000  # short runs, too long as a whole
    cut = bounded_text(words)
    assert cut.startswith(words[:MAX_CHARS]) and cut.endswith(f"… ({len(words)} characters in all)")
    with pytest.raises(ValueError, match="max_chars"):
        bounded_text("x", max_chars=0)


def test_every_printed_value_passes_the_rule_and_markup_keeps_its_tags(tmp_path):
    from markupsafe import Markup, escape

    from study.report.render import LABEL_CHARS, _environment, long_text

    (tmp_path / "t.j2").write_text("{{ v }}|{{ m }}|{{ n }}|{{ w | long_text }}", encoding="utf-8")
    env = _environment(tmp_path)
    out = env.get_template("t.j2").render(v="<b>\u202e" + "z" * 300, m=Markup("<b>\u2066</b>"), n=3, w="y " * 1500)
    v, m, n, w = out.split("|")
    assert v == str(escape(short_form("<b>\\u202E" + "z" * 300)))
    assert m == "<b>\\u2066</b>" and n == "3"
    assert w == "y " * 1500  # a long value marked long_text is kept (up to its own bound)
    assert str(long_text("<x>")) == "&lt;x&gt;"
    (tmp_path / "l.j2").write_text("{{ v | label }}|{{ n | label }}", encoding="utf-8")
    lab, num = env.get_template("l.j2").render(v="<i>" + "y " * 1500, n=2.5).split("|")
    assert lab.startswith("&lt;i&gt;y y") and lab.endswith(" characters in all)") and len(lab) < LABEL_CHARS + 40
    assert num == "2.5"


def test_figure_ids_stay_short_and_distinct():
    from study.report.figure_ids import figure_id

    a, b = figure_id("pr", "m" * 10_000 + "1"), figure_id("pr", "m" * 10_000 + "2")
    assert a != b and len(a.encode()) < 100 and figure_id("pr", "sim-detector") == "pr__sim-detector"


def test_figure_labels_are_bounded_and_neutral():
    from study.report.figures import LABEL_CHARS, _t

    label = _t("$x$\u202e" + "y " * 5000)
    assert not _BIDI_RE.search(label) and label.startswith(r"\$x\$\u202E")
    assert len(label) < LABEL_CHARS + 40


# ----------------------------------------------------------------------------- rendering
def _small_results() -> dict:
    """The fixture cut to one model (its meta and its grades among the raters) and two readers: no detection,
    counting, inter-reader, subgroup, MRMC or plan blocks, so that one render takes seconds, not a minute."""
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        r = json.load(f)
    ag = r["agreement"]
    ir = ag["inter_reader"]
    undefined = {"estimate": None, "ci_low": None, "ci_high": None, "method": ir["fleiss"]["kappa"]["method"]}
    inter = {"readers": [], "note": ir["note"],
             "pairwise": {**ir["pairwise"], "readers": [], "n_shared": [], "kappa": [], "kappa_linear": [],
                          "kappa_quadratic": [], "pairs": []},
             "fleiss": {"kappa": {**undefined, "reason": "fewer than two readers read a common case"}, "readers": [],
                        "n_cases": 0, "case_ids": []},
             "krippendorff_alpha_ordinal": {"alpha": {**undefined, "reason": "fewer than two readers"}, "readers": [],
                                            "n_cases": 0}}
    raters = {k: ag["raters"][k] for k in (MODEL, READER_A, READER_B)}
    agreement = {**ag, "raters": raters, "groups": {}, "comparisons": [], "inter_reader": inter, "subgroups": {},
                 "subgroups_n_cases": {}}
    return {"schema_version": r["schema_version"], "study": r["study"], "flow": r["flow"], "baseline": r["baseline"],
            "detection": {}, "counting": {}, "models": r["models"], "mrmc": None,
            "provenance": r["provenance"], "agreement": agreement}


def _with_ids(results: dict, ids: dict[str, str]) -> dict:
    """``results`` with every JSON string equal to a key of ``ids`` (and every such object key) replaced;
    the protocol's title and a file name carry the study's new name and the first reader's id."""
    text = json.dumps(results, ensure_ascii=False)
    for old, new in ids.items():
        text = text.replace(json.dumps(old), json.dumps(new, ensure_ascii=False))
    out = json.loads(text)
    out["study"]["protocol"]["title"] = ids[STUDY] + " (title)"
    out["provenance"]["inputs"]["manifest"]["path"] = "/data/" + ids[READER_A] + ".csv"
    return out


def _hostile_ids(piece: str, length: int) -> dict[str, str]:
    """Ids of ``length`` characters (``piece`` repeated) for the model, the two readers and the study, each
    starting with a tag and its own number."""
    long_id = (piece * (length // len(piece) + 1))[:length]
    return {old: f"{TAG}{i}{long_id}"[:max(length, len(TAG) + 1)]
            for i, old in enumerate((MODEL, READER_A, READER_B, STUDY))}


def _check_text(where: str, text: str, *, length: int) -> None:
    assert not _BIDI_RE.search(text), f"a raw bidi control reached the {where}"
    if length > MAX_TOKEN + len(TAG) + 1:  # no long value printed whole
        assert max(len(w) for w in text.split()) < length, f"a {length}-character id printed whole in the {where}"


_PIECES = st.text(alphabet=st.sampled_from(list("abcXYZ019-_ .<>&\"'/=;ñש") + list(BIDI_CONTROLS)), min_size=1,
                  max_size=24)


@settings(max_examples=2, deadline=None, database=None, derandomize=True)
@given(piece=_PIECES, length=st.integers(min_value=1, max_value=10_000))
@example(piece="\u202e<b>x</b> \u2066ab\u202dc", length=10_000)
def test_hostile_ids_are_bounded_neutral_text_in_html_and_figures(piece, length):
    """Random ids (markup, bidi controls, spaces, up to 10,000 characters): the HTML prints them as text, with no
    raw bidi control and no long value whole; so do the SVG figures."""
    from study.report.context import parse_results
    from study.report.figures import figure_svgs
    from study.report.render import render_html

    results = parse_results(_with_ids(_small_results(), _hostile_ids(piece, length)))
    figures = figure_svgs(results)
    html = render_html(results, figures=figures)
    assert "<blink" not in html.lower() and "&lt;blink&gt;" in html, "markup in an id was not printed as text"
    _check_text("HTML", html, length=length)
    for name, svg in figures.items():
        _check_text(f"figure {name}", svg, length=length)


def test_longest_ids_render_within_twice_the_normal_time(tmp_path, monkeypatch):
    """The worst case as a PDF: ids of 10,000 characters, one with spaces and controls, one an unbroken run,
    against the same results with their own ids, both timed here (after a warm-up of the libraries)."""
    if shutil.which("pdftotext") is None:  # checked before the timed renders
        pytest.skip("pdftotext (Debian package poppler-utils) is not installed; cannot read the PDF back")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    import matplotlib.pyplot  # noqa: F401  (imports are not part of the times compared)
    from weasyprint import HTML

    from study.report.render import render

    HTML(string="<p>warm-up</p>").write_pdf()
    t0 = time.perf_counter()
    render(_small_results())
    normal = time.perf_counter() - t0
    ids = _hostile_ids("\u202e<b>x</b> \u2066ab\u202dc", 10_000)
    ids[READER_B] = _hostile_ids("\u202e<u>y\u2069", 10_000)[READER_B]  # one unbroken run of 10,000 characters
    t0 = time.perf_counter()
    r = render(_with_ids(_small_results(), ids))
    hostile = time.perf_counter() - t0
    assert hostile <= 2 * normal, f"ids of 10,000 characters: {hostile:.1f} s against {normal:.1f} s for the ordinary ids"
    (tmp_path / "r.pdf").write_bytes(r.pdf)
    text = pdf_text(tmp_path / "r.pdf")
    _check_text("PDF text", text, length=10_000)
    assert TAG in text and "\\u202E" in text  # the tag as text, the override as its visible code


def test_sigint_stops_study_report_within_seconds(tmp_path):
    """``study report`` on the whole fixture with ids of 10,000 characters (about 40 s of work) stops within a
    few seconds of SIGINT, writing no report."""
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        full = json.load(f)
    hostile = _with_ids(full, _hostile_ids("\u202e<b>x</b> \u2066ab\u202dc", 10_000))
    (tmp_path / "results.json").write_text(json.dumps(hostile), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "study", "report", str(tmp_path), "--out", str(tmp_path / "r.pdf")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)  # into the rendering (imports take 2-4 s)
    assert proc.poll() is None, proc.communicate()
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("study report still running 10 s after SIGINT")
    assert time.perf_counter() - t0 < 5
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "r.pdf").exists() and not (tmp_path / "report.html").exists()


def test_ordinary_report_is_not_shortened():
    """The bound never touches an ordinary report: nothing of the whole fixture's HTML is cut or shortened (its
    longest values are a 64-digit sha256 and a 1,070-character list of interval methods)."""
    from study.report.context import parse_results
    from study.report.render import render_html

    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        html = render_html(parse_results(json.load(f)), figures={})
    assert "characters in all)" not in html
    assert not re.search(f"…[0-9a-f]{{{HASH_CHARS}}}", html)


def test_figures_of_a_long_model_id_keep_their_place():
    """The sections find the figures of a model with a 10,000-character id (both name them by figure_id)."""
    from study.report.context import parse_results
    from study.report.figure_ids import figure_id
    from study.report.render import render_html

    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        full = json.load(f)
    model = "\u202em" * 5000
    results = parse_results(_with_ids(full, {MODEL: model, READER_A: READER_A, STUDY: STUDY}))
    kinds = ["pr", "froc", "count_scatter", "bland_altman", "mrmc_roc"]
    html = render_html(results, figures={figure_id(k, model): f'<svg id="probe-{k}"></svg>' for k in kinds})
    for k in kinds:
        assert f'id="probe-{k}"' in html, f"the {k} figure of the model was not placed"
    assert not _BIDI_RE.search(html)
