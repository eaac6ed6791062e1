"""Render the study report: ``results.json`` -> ``report.html`` and ``report.pdf``.

- Jinja2 with autoescaping on: every value from ``results.json`` (reader ids, reasons,
  paths, the configuration) is text; only the figures, SVG drawn by
  :mod:`study.report.figures` from the numbers, are inserted as markup (after removing
  scripts, event handlers and external references).
- Bounded, neutral text: every printed value passes :func:`finalize_value` (Jinja's
  ``finalize`` hook), which shows bidirectional-control characters as their code and
  shortens runs and values that are too long (:mod:`study.report.text`; the full values stay
  in ``results.json``), so no user text can reorder what a line shows or stall the layout.
- WeasyPrint with a restricted URL fetcher (:func:`local_assets_fetcher`): it refuses the
  network and every file outside the report's own assets folder, so a link or an image in
  user-supplied text can never fetch anything. The stylesheet is inlined, so the HTML report
  is self-contained and the PDF needs no fetch at all.
- Reproducible: with ``SOURCE_DATE_EPOCH`` set, the PDF's dates come from it and the same
  results give a byte-identical PDF; the HTML never carries the wall-clock time.
- Print CSS (``reports/report.css``): title page, contents with page numbers
  (``target-counter``), running headers, "Page x of y", table headers repeated on every page.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlparse

from study.io import write_bytes, write_text
from study.report.figure_ids import figure_id
from study.report.text import neutralise_bidi, report_text
from study.results import Results

if TYPE_CHECKING:  # jinja2 is imported where the report is rendered
    import jinja2

LOG = logging.getLogger(__name__)

#: the templates and static assets shipped with the project
DEFAULT_ASSETS = Path(__file__).resolve().parents[2] / "reports"
TEMPLATE = "report.html.j2"
STYLESHEET = "report.css"


# ----------------------------------------------------------------------------- safety
class AssetsFetcher(Protocol):
    """The URL fetcher made by :func:`local_assets_fetcher`: a ``weasyprint.urls.URLFetcher``
    subclass (WeasyPrint ships no type information, so its responses are ``Any`` here) that
    records the URLs it served and refused."""

    refused: list[str]
    served: list[str]

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> Any:
        """A ``weasyprint.urls.URLFetcherResponse``; raises ValueError for a refused URL."""
        ...

    def __call__(self, url: str) -> Any:
        """``fetch(url)``: how WeasyPrint calls a fetcher."""
        ...


def local_assets_fetcher(allowed_dirs: Iterable[str | os.PathLike[str]]) -> AssetsFetcher:
    """A WeasyPrint URL fetcher that serves only ``file:`` URLs of existing files inside
    ``allowed_dirs`` and ``data:image/...`` URLs. Everything else (http, https, ftp, files
    elsewhere such as ``/etc/passwd``) is refused without any I/O; refused URLs are kept in
    ``.refused`` (served ones in ``.served``) and logged.

    The class is made here, when a fetcher is first needed, because weasyprint is a heavy import.
    """
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    roots = [Path(d).resolve() for d in allowed_dirs]

    # WeasyPrint ships no type information, so URLFetcher is Any to mypy (disallowed as a base
    # under --strict); subclassing it is WeasyPrint's documented way to supply a fetcher (it reads
    # attributes that the base class sets)
    class _Fetcher(URLFetcher):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(allowed_protocols=("file", "data"), allow_redirects=False, timeout=1)
            self.refused: list[str] = []
            self.served: list[str] = []

        def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> Any:
            scheme = url.split(":", 1)[0].lower() if ":" in url else ""
            if scheme == "data" and url[5:].lower().startswith("image/"):
                self.served.append(url[:40])
                return super().fetch(url, headers)
            if scheme == "file":
                path = Path(unquote(urlparse(url).path)).resolve()
                if path.is_file() and any(path.is_relative_to(r) for r in roots):
                    self.served.append(str(path))
                    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    return URLFetcherResponse(url, body=path.read_bytes(), headers={"Content-Type": ctype})
            self.refused.append(url)
            LOG.warning("report: refused to fetch %s (only the report's own assets are allowed)", url[:200])
            raise ValueError(f"fetch refused: {url[:200]}")

    return _Fetcher()


#: the former name of :func:`local_assets_fetcher` (a class whose ``__new__`` built the fetcher), kept
#: for callers of ``LocalAssetsFetcher(allowed_dirs)``
LocalAssetsFetcher = local_assets_fetcher


_SCRIPT = re.compile(r"<(script|foreignObject)\b.*?</\1\s*>", re.S | re.I)
_ON_ATTR = re.compile(r"""\son[a-zA-Z]+\s*=\s*("[^"]*"|'[^']*')""", re.I)
_HREF = re.compile(r"""\s(?:xlink:)?href\s*=\s*("([^"]*)"|'([^']*)')""", re.I)


def safe_svg(svg: str) -> str:
    """Remove scripts, foreignObject, event handlers and any reference that is not internal
    (``#id``) or an embedded raster (``data:image/...``) from an SVG string."""
    svg = _SCRIPT.sub("", svg)
    svg = _ON_ATTR.sub("", svg)

    def keep(m: re.Match[str]) -> str:
        target = m.group(2) if m.group(2) is not None else m.group(3)
        return m.group(0) if target.startswith("#") or target.lower().startswith("data:image/") else ""

    return _HREF.sub(keep, svg)


# ----------------------------------------------------------------------------- helpers
def source_date() -> datetime | None:
    """The build date from ``SOURCE_DATE_EPOCH`` (reproducible builds), or None when unset."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return None
    return datetime.fromtimestamp(int(epoch), tz=timezone.utc)


_NUMERIC_CELL = re.compile(r"^(?:[-+<≥≤]?\s?\d[\d.,:\-–]*(?:\s.*)?|–|n/a|-)$")


def _numeric_cell(text: Any) -> bool:
    """A table cell that starts with a number (or is a dash)."""
    return bool(_NUMERIC_CELL.match(str(text)))


def _long_token(text: Any) -> bool:
    """A cell holding an unbreakable run longer than 28 characters (a path, a sha256): may break anywhere."""
    return any(len(w) > 28 for w in str(text).split())


def _numeric_columns(table: Mapping[str, Any]) -> list[bool]:
    """Per column (the first, the row label, never): True when every body cell is numeric (right-aligned)."""
    cols = len(table.get("columns") or [])
    rows = table.get("rows") or []
    return [j > 0 and bool(rows) and all(_numeric_cell(r[j]) for r in rows if j < len(r)) for j in range(cols)]


#: the longest value :func:`long_text` lets through (the resolved configuration, the protocol's description)
LONG_TEXT_CHARS = 50_000


def finalize_value(value: Any) -> Any:
    """Jinja's ``finalize`` hook: what every ``{{ ... }}`` of the templates prints, before escaping.

    Markup (the figures, the stylesheet, the output of a macro or of :func:`long_text`, whose
    values were finalized already) keeps its markup and has its bidi controls neutralised;
    numbers and None print as they are; anything else is text and goes through
    :func:`study.report.text.report_text` (bidi controls shown as codes, long runs and values
    shortened).
    """
    from markupsafe import Markup

    if isinstance(value, Markup):
        return Markup(neutralise_bidi(str(value)))
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return report_text(str(value))


def long_text(value: Any) -> Any:
    """The filter ``long_text``: a value printed once that may be long by nature (the resolved
    configuration, the protocol's description), bounded at :data:`LONG_TEXT_CHARS` characters
    instead of :data:`study.report.text.MAX_CHARS`; escaped here, so the result is Markup."""
    from markupsafe import Markup, escape

    return Markup(escape(report_text(str(value), max_chars=LONG_TEXT_CHARS)))


#: the longest label (a table's caption, header and row labels, a heading, the study's name) :func:`label` prints
LABEL_CHARS = 200


def label(value: Any) -> Any:
    """The filter ``label``: a value that names a row, a column, a table or the study, where ids repeat (one
    row per reader, a header on every page): bounded at :data:`LABEL_CHARS` characters instead of
    :data:`study.report.text.MAX_CHARS`; escaped here, so the result is Markup."""
    from markupsafe import Markup, escape

    if isinstance(value, Markup) or value is None or isinstance(value, (bool, int, float)):
        return finalize_value(value)
    return Markup(escape(report_text(str(value), max_chars=LABEL_CHARS)))


def _environment(assets_dir: Path) -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(assets_dir)),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
        finalize=finalize_value,
    )
    env.filters["long_text"] = long_text
    env.filters["label"] = label
    env.globals["figure_id"] = figure_id  # the templates name figures as the figures do (long ids shortened)
    env.tests["numeric_cell"] = _numeric_cell
    env.filters["numeric_columns"] = _numeric_columns
    env.tests["long_token"] = _long_token
    return env


@dataclass
class Rendered:
    html: str
    pdf: bytes
    pages: dict[str, int]
    n_pages: int
    figures: dict[str, str]
    refused: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)


def render_html(results: Results | Mapping[str, Any], *, figures: dict[str, str], assets_dir: str | os.PathLike[str] | None = None,
                pages: dict[str, int] | None = None) -> str:
    """The report as one self-contained HTML page (stylesheet and figures inline)."""
    from markupsafe import Markup

    from study.report.context import build_context

    assets = Path(assets_dir) if assets_dir is not None else DEFAULT_ASSETS
    env = _environment(assets)
    ctx = build_context(results, figures=figures, pages=pages)
    created = source_date()
    return env.get_template(TEMPLATE).render(
        **ctx,
        figures={k: Markup(safe_svg(v)) for k, v in figures.items()},
        css=Markup((assets / STYLESHEET).read_text(encoding="utf-8")),
        created=created.strftime("%Y-%m-%dT%H:%M:%SZ") if created else None,
    )


def render(results: Results | Mapping[str, Any], *, assets_dir: str | os.PathLike[str] | None = None,
           figures: dict[str, str] | None = None) -> Rendered:
    """Render the report in memory: HTML text, PDF bytes, and the page of every section."""
    from weasyprint import HTML

    from study.report.context import parse_results
    from study.report.figures import figure_svgs

    results = parse_results(results)
    assets = Path(assets_dir) if assets_dir is not None else DEFAULT_ASSETS
    figs = figure_svgs(results) if figures is None else figures
    html = render_html(results, figures=figs, assets_dir=assets)
    fetcher = local_assets_fetcher([assets])
    doc = HTML(string=html, base_url=assets.resolve().as_uri() + "/", url_fetcher=fetcher).render()
    pages: dict[str, int] = {}
    for i, page in enumerate(doc.pages, start=1):
        for anchor in page.anchors:
            if anchor.startswith("sec-"):
                pages.setdefault(anchor, i)
    pdf = doc.write_pdf()
    return Rendered(html=html, pdf=pdf, pages=dict(sorted(pages.items(), key=lambda kv: (kv[1], kv[0]))),
                    n_pages=len(doc.pages), figures=figs, refused=list(fetcher.refused), fetched=list(fetcher.served))


def render_report(results: Results | Mapping[str, Any], *, out_pdf: str | os.PathLike[str], out_html: str | os.PathLike[str],
                  figures_dir: str | os.PathLike[str] | None = None, assets_dir: str | os.PathLike[str] | None = None,
                  results_dir: str | os.PathLike[str] | None = None,
                  figure_cache: str | os.PathLike[str] | None = None) -> dict[str, int]:
    """Render ``results`` (the parsed ``results.json``) to ``out_pdf`` and ``out_html``.

    Parameters
    ----------
    results : Results or mapping
        The study's ``results.json`` (typed, or parsed JSON: validated here once).
    out_pdf, out_html : path
        Where the PDF and the self-contained HTML report go (written atomically).
    figures_dir : path, optional
        When given, every figure is also written there as ``<name>.svg``.
    assets_dir : path, optional
        Templates and stylesheet (default: the project's ``reports/``); the only folder the
        PDF renderer may read from.
    results_dir : path, optional
        The study's results folder: only used for example images, and only when the protocol
        allows them (``report.show_example_images``); they are embedded in the SVG figures.
    figure_cache : path, optional
        Folder of the figure cache: figures whose inputs and drawing code did not change since
        the last render are read from it instead of drawn
        (:func:`study.report.figure_cache.draw_figures`). The others are drawn in parallel processes.

    Returns
    -------
    dict
        Page map: section anchor id (``sec-summary``, ``sec-flow``, ... as in
        :data:`study.report.context.SECTIONS`) -> page number in the PDF (1-based).
    """
    from study.report.context import parse_results
    from study.report.figures import figure_svgs, study_example_figures

    results = parse_results(results)
    figs = figure_svgs(results, cache_dir=figure_cache)
    if results_dir is not None:
        figs.update(study_example_figures(results, results_dir=results_dir))
    if figures_dir is not None:
        for name, svg in figs.items():
            write_text(Path(figures_dir) / f"{name}.svg", svg)
    r = render(results, assets_dir=assets_dir, figures=figs)
    write_text(out_html, r.html)
    write_bytes(out_pdf, r.pdf)
    return r.pages
