"""The study report: every section present (read back with pdftotext), safe rendering,
reproducible PDFs, absent data said plainly, no case or patient id printed.

The fixture ``tests/fixtures/report/results.json.gz`` is a demo-sized study (160 synthetic
cases, 7 readers, one simulated model) run through the project's real steps and metric code
(``tests/fixtures/report/make_results.py``).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.pdf_text import checklist_status, layout_rows, pdf_text

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "report" / "results.json.gz"
EPOCH = "1763683200"


def _results() -> dict:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("SOURCE_DATE_EPOCH", EPOCH)
    from study.report.render import render_report

    out = tmp_path_factory.mktemp("report")
    r = _results()
    # every section stays; only the subgroup columns are cut to two to keep the test quick
    r["agreement"]["subgroups"] = {k: v for k, v in r["agreement"]["subgroups"].items() if k in ("fitzpatrick", "sex")}
    pages = render_report(r, out_pdf=out / "report.pdf", out_html=out / "report.html", figures_dir=out / "figures")
    return out, pages


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


SECTION_TEXTS = [
    # title page
    "Diagnostic accuracy study report (STARD 2015)", "Protocol sha256", "Git commit",
    # contents, running header, page x of y
    "Contents", "Page 1 of",
    "Summary of key results", "Background and objectives",
    # methods
    "Eligibility criteria", "Image-quality gate", "Reference standard", "Index tests (models)", "Readers",
    "Statistical methods", "Unit of analysis",
    # results
    "Flow of cases (STARD diagram)", "Images received", "Baseline characteristics", "Fitzpatrick skin type",
    "Capture device", "Reference lesions per image by class",
    "Standalone lesion detection", "Max recall", "FROC", "Precision-recall",
    "Lesion counting", "as ACNE04 Table 2", "as ACNE04 Table 3", "Bland-Altman",
    "Cross-tabulation of model sim-detector", "Confusion matrices", "Quadratic kappa",
    "Per-grade sensitivity, specificity", "Direction of grading errors", "Down-grade",
    "Model against readers", "McNemar", "Inter-reader agreement", "Fleiss",
    "Multi-reader multi-case analysis", "Subgroup analyses", "Subgroups by fitzpatrick",
    "Failure analysis", "largest count error", "Example images", "personal data",
    "Limitations", "Implications for practice", "Registration, protocol and funding",
    "STARD 2015 checklist", "Provenance", "Input files and their sha256", "Software and library versions",
    "Resolved study configuration",
]


@pytest.mark.slow
def test_demo_report_has_every_section(full_report):
    out, pages = full_report
    text = pdf_text(out / "report.pdf")
    flat = re.sub(r"\s+", " ", text)
    missing = [s for s in SECTION_TEXTS if s.lower() not in flat.lower()]
    assert not missing, f"sections missing from the PDF text: {missing}"
    # every STARD item is listed, with the page its section starts on
    from study.report.context import SECTIONS
    from study.report.stard import ITEMS

    assert set(pages) == set(SECTIONS), set(SECTIONS) ^ set(pages)
    stard = flat[flat.index("STARD 2015 items and where this report answers them"):]
    for it in ITEMS:
        assert re.search(rf"\b{re.escape(it.number)} {re.escape(it.part.split()[0])}", stard), it.number
    # page numbers in the PDF's checklist are the real ones (pdftotext sees "<title> <page>")
    assert re.search(rf"{re.escape(SECTIONS['sec-flow'])}\s+{pages['sec-flow']}\b", stard)
    assert re.search(rf"{re.escape(SECTIONS['sec-limitations'])}\s+{pages['sec-limitations']}\b", stard)
    n_pages = int(re.search(r"Page 1 of (\d+)", flat).group(1))
    assert n_pages >= max(pages.values())
    # HTML: same content, autoescaped, with the figures inline
    html = (out / "report.html").read_text(encoding="utf-8")
    for it in ITEMS:  # every item links to the section that answers it
        assert re.search(rf'<td>{re.escape(it.number)}</td>.*?<a href="#{it.section}">', html, re.S), it.number
    assert html.count("<svg") >= 8
    assert "Table 1." not in html  # numbering is CSS, not text
    figs = sorted(p.name for p in (out / "figures").glob("*.svg"))
    assert "flow.svg" in figs and "confusion.svg" in figs


@pytest.mark.slow
def test_no_case_or_patient_id_in_report(full_report):
    out, _ = full_report
    results = _results()
    text = pdf_text(out / "report.pdf") + (out / "report.html").read_text(encoding="utf-8")
    # the fixture's results.json is pseudonymised (report.pseudonymise_case_ids): it stores pseudonyms only,
    # and the manifest's ids (study synth: case C00001, patient P0001) are printed nowhere
    assert results["study"]["case_ids"] == "pseudonymised"
    ids = set(results["counting"]["sim-detector"]["points"]["case_id"])
    assert ids and all(re.fullmatch(r"C-\d{4}", c) for c in ids)
    leaked = sorted(set(re.findall(r"\b[CP]\d{4,5}\b", text)))
    assert not leaked, f"case or patient ids printed: {leaked[:5]}"
    assert re.search(r"\bC-\d{4}\b", text), "the failure analysis shows pseudonyms"
    assert "patient_id" not in text


def test_numbers_printed_come_from_results():
    from study.report.context import build_context

    r = _results()
    ctx = build_context(r, figures={})
    acc = r["agreement"]["raters"]["sim-detector"]["accuracy"]
    expected = f"{acc['estimate']:.3f} ({acc['ci_low']:.3f}-{acc['ci_high']:.3f})"
    rows = {tuple(row[:2]): row for row in ctx["accuracy"]["table"]["rows"]}
    cell = rows[("sim-detector", "model")][3]
    assert cell.startswith(expected)
    # the interval's method is named: by the superscript letter the cell carries, in the table's note
    note = ctx["accuracy"]["table"]["notes"][-1]
    marker = cell[len(expected):].strip()
    assert f"{marker} {acc['method']}" in note
    ov = r["counting"]["sim-detector"]["thresholds"]["0.5"]["overall"]["mae"]
    summary = {row[0]: row for row in ctx["summary"]["table"]["rows"]}
    assert summary["Counting: mean absolute error per image (score ≥ 0.5)"][2].startswith(
        f"{ov['estimate']:.2f} ({ov['ci_low']:.2f}-{ov['ci_high']:.2f})\u00a0")  # the marker on the same line


def _no_inter_reader(ag: dict) -> dict:
    """The ``inter_reader`` block the producer writes when no reader is compared (``readers: []``)."""
    ir = ag["inter_reader"]
    undefined = {"estimate": None, "ci_low": None, "ci_high": None, "method": ir["fleiss"]["kappa"]["method"]}
    return {"readers": [], "note": ir["note"],
            "pairwise": {**ir["pairwise"], "readers": [], "n_shared": [], "kappa": [], "kappa_linear": [],
                         "kappa_quadratic": [], "pairs": []},
            "fleiss": {"kappa": {**undefined, "reason": "fewer than two readers read a common case"}, "readers": [],
                       "n_cases": 0, "case_ids": []},
            "krippendorff_alpha_ordinal": {"alpha": {**undefined, "reason": "fewer than two readers"}, "readers": [],
                                           "n_cases": 0}}


def _agreement_of(ag: dict, raters: dict) -> dict:
    """The fixture's agreement block cut to ``raters``: no groups, comparisons, inter-reader or subgroup results."""
    return {**ag, "raters": raters, "groups": {}, "comparisons": [], "inter_reader": _no_inter_reader(ag),
            "subgroups": {}, "subgroups_n_cases": {}}


def test_absent_sections_say_why():
    from study.report.context import build_context

    r = _results()
    r["mrmc"] = {"assessed": False, "reason": "an MRMC analysis needs at least two readers; the study has 0"}
    r["agreement"] = _agreement_of(r["agreement"], {"sim-detector": r["agreement"]["raters"]["sim-detector"]})
    r["detection"] = {}
    ctx = build_context(r, figures={})
    assert ctx["mrmc"] == {"available": False, "reason": "Not assessed: an MRMC analysis needs at least two readers; "
                                                         "the study has 0."}
    assert ctx["comparisons"]["available"] is False and "no readers" in ctx["comparisons"]["reason"]
    assert ctx["detection"]["available"] is False
    assert ctx["methods"]["readers"] is None
    assert ctx["subgroups"]["available"] is False


def _hostile_results() -> dict:
    """A small study (flow, baseline, one model and two readers) whose reader ids carry markup and URLs."""
    r = _results()
    evil_img = '<img src="http://127.0.0.1:9/x">'
    evil_file = '<a href="file:///etc/passwd">file:///etc/passwd</a>'
    raters = r["agreement"]["raters"]
    keep = {"sim-detector": raters["sim-detector"], evil_img: {**raters["junior-1"], "group": "junior"},
            evil_file: {**raters["senior-1"], "group": "senior"}}
    return {
        "schema_version": r["schema_version"], "study": r["study"], "flow": r["flow"], "baseline": r["baseline"],
        "detection": {}, "counting": {}, "models": {}, "mrmc": None, "provenance": r["provenance"],
        "agreement": _agreement_of(r["agreement"], keep),
    }


@pytest.fixture(scope="module")
def hostile(monkeypatch_module):
    monkeypatch_module.setenv("SOURCE_DATE_EPOCH", EPOCH)
    from study.report.render import render

    return render(_hostile_results())


def test_markup_in_reader_ids_is_text_and_nothing_is_fetched(hostile, tmp_path):
    assert hostile.refused == [] and hostile.fetched == [], "the renderer tried to fetch something"
    html = hostile.html
    assert '<img src="http://127.0.0.1:9/x">' not in html
    assert "&lt;img src=&#34;http://127.0.0.1:9/x&#34;&gt;" in html
    assert '<a href="file:///etc/passwd">' not in html
    assert not re.search(r"<(img|a|link|iframe|object|embed)\b[^>]*(127\.0\.0\.1|file:)", html)
    pdf = tmp_path / "hostile.pdf"
    pdf.write_bytes(hostile.pdf)
    text = re.sub(r"\s+", " ", pdf_text(pdf))
    assert '<img src="http://127.0.0.1:9/x">' in text  # printed as text (table of readers)
    assert "file:///etc/passwd" in text


def test_same_results_give_identical_pdf(hostile, tmp_path):
    """Render again (through the file-writing API) and compare with the first rendering."""
    from study.report.render import render_report

    pages = render_report(json.loads(json.dumps(_hostile_results())), out_pdf=tmp_path / "b.pdf",
                          out_html=tmp_path / "b.html")
    assert (tmp_path / "b.html").read_text(encoding="utf-8") == hostile.html
    assert pages == hostile.pages
    assert (tmp_path / "b.pdf").read_bytes() == hostile.pdf
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(tmp_path / "b.pdf")], capture_output=True, text=True).stdout
        assert re.search(r"CreationDate:\s+Fri Nov 21 00:00:00 2025", info), info  # = SOURCE_DATE_EPOCH


def test_fetcher_refuses_network_and_foreign_files(tmp_path):
    from weasyprint import HTML

    from study.report.render import LocalAssetsFetcher

    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "ok.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    f = LocalAssetsFetcher([assets])
    for url in ("http://127.0.0.1:9/x", "https://example.org/a.png", f"file://{outside}", "file:///etc/passwd",
                f"file://{assets}/../secret.txt", "ftp://127.0.0.1/x"):
        with pytest.raises(ValueError):
            f.fetch(url)
    assert f.fetch(f"file://{assets}/ok.svg").read().startswith(b"<svg")
    # and inside WeasyPrint: raw markup (as if escaping failed) still fetches nothing outside the assets
    f2 = LocalAssetsFetcher([assets])
    HTML(string=f'<img src="http://127.0.0.1:9/x"><img src="file:///etc/passwd"><img src="ok.svg">'
                f'<link rel="stylesheet" href="file://{outside}">',
         base_url=assets.as_uri() + "/", url_fetcher=f2).write_pdf()
    assert set(f2.refused) == {"http://127.0.0.1:9/x", "file:///etc/passwd", f"file://{outside}"}
    assert f2.served == [str((assets / "ok.svg").resolve())]


def test_safe_svg_strips_scripts_and_external_references():
    from study.report.render import safe_svg

    svg = ('<svg><script>alert(1)</script><image xlink:href="http://127.0.0.1:9/x"/>'
           '<image href="data:image/png;base64,AAAA"/><use xlink:href="#m1" onload="x()"/>'
           '<foreignObject><div>x</div></foreignObject></svg>')
    out = safe_svg(svg)
    assert "script" not in out and "foreignObject" not in out and "onload" not in out
    assert "127.0.0.1" not in out
    assert 'href="data:image/png;base64,AAAA"' in out and 'xlink:href="#m1"' in out


def test_report_command_writes_pdf_and_html(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    r = _hostile_results()
    r["agreement"]["raters"] = {"sim-detector": r["agreement"]["raters"]["sim-detector"]}
    (tmp_path / "results.json").write_text(json.dumps(r), encoding="utf-8")
    rc, out, err = run_cli("report", tmp_path, "--out", tmp_path / "out" / "report.pdf")
    assert rc == 0, err
    assert out.strip().splitlines()[-1] == str(tmp_path / "out" / "report.pdf")
    assert (tmp_path / "out" / "report.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "out" / "report.html").exists()
    assert (tmp_path / "figures" / "confusion.svg").exists()
    rc, out, err = run_cli("report", tmp_path / "nowhere")
    assert rc == 2 and "results.json not found" in err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("[1, 2]", encoding="utf-8")
    rc, out, err = run_cli("report", tmp_path / "bad")
    assert rc == 2 and "schema_version" in err


def test_methods_written_from_a_count_band_protocol():
    """The Hayashi (ACNE04) protocol: count bands, one class, no subgroups, no readers."""
    from study.protocol import load_protocol
    from study.report.context import build_context

    root = Path(__file__).resolve().parents[1]
    loaded = load_protocol(root / "protocols" / "hayashi-acne04.yaml")
    p = loaded.protocol
    study = {**_results()["study"], "name": "h", "protocol_settings": p.model_dump(mode="json"),
             "protocol": {"name": p.name, "title": p.title, "version": p.version, "path": loaded.path,
                          "sha256": loaded.sha256, "description": p.description}}
    r = {"schema_version": 2, "study": study}
    ctx = build_context(r, figures={})
    assert ctx["methods"]["reference"]["scheme"] == (
        "Count bands (Hayashi et al. 2008) on the number of acne lesions: mild: 0-5 lesions; moderate: 6-20 lesions; "
        "severe: 21-50 lesions; very_severe: more than 50 lesions.")
    assert ctx["subgroups"] == {"available": False, "reason": "Not assessed: the protocol names no subgroup columns."}
    assert ctx["baseline"]["available"] is False and ctx["flow"]["available"] is False
    assert [row[0] for row in ctx["methods"]["criteria"]["rows"]] == ["facial_acne"]


def test_every_table_says_what_n_counts():
    """Issue 13 item 4: no table of the report has a bare "n" or "Cases" column; a count column names
    what it counts (images, patients, lesions, readings), and the grading, counting and detection tables
    carry a note saying what n is."""
    from study.report.context import build_context

    ctx = build_context(_results(), figures={})
    tables = []

    def walk(x):
        if isinstance(x, dict):
            if "columns" in x and "rows" in x and "caption" in x:
                tables.append(x)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(ctx)
    assert len(tables) > 20
    bare = [(t["id"], c) for t in tables for c in t["columns"] if c.strip().lower() in ("n", "cases", "count")]
    assert bare == []
    for t in tables:
        if t["id"] in ("tab-summary", "tab-accuracy", "tab-per-grade", "tab-errors", "tab-comparisons") or t["id"].startswith(
                ("tab-count-", "tab-det-")):
            assert any(n.startswith("n = ") for n in t["notes"]), t["id"]


def test_checklists_without_a_model_card_show_its_items_not_reported(full_report):
    """The fixture's model spec has no card: its STARD and CLAIM items read "not reported" in the PDF."""
    out, _ = full_report
    rows = layout_rows(out / "report.pdf")
    stard, claim = "STARD 2015 items and where", "CLAIM 2024 items and where"
    for number in ("10a", "12a"):
        assert checklist_status(rows, stard, number) == "not reported", number
    for number in ("9", "22", "23", "27"):
        assert checklist_status(rows, claim, number) == "not reported", number
    # computed, not typed in: what the fixture holds is reported, the adverse-events item is not applicable
    assert checklist_status(rows, stard, "19") == "reported"
    assert checklist_status(rows, stard, "25") == "not applicable"
    assert checklist_status(rows, claim, "35") == "reported"
    flat = " ".join(rows)
    assert "Model card of sim-detector" in flat and "not supplied: the model spec has no card" in flat
    assert "Annotators: not supplied" in flat
