"""Reading a rendered report back as text with ``pdftotext`` (Debian package poppler-utils), for the tests
that check what the PDF really prints. A test using these skips, saying why, where pdftotext is missing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest


def pdf_text(pdf: Path, *, layout: bool = False, first: int | None = None, last: int | None = None) -> str:
    """The PDF's text (``layout``: pdftotext's physical layout, a table row on one line; ``first``/``last``:
    a page range)."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian package poppler-utils) is not installed; cannot read the PDF back")
    pages = [*(["-f", str(first)] if first else []), *(["-l", str(last)] if last else [])]
    return subprocess.run(["pdftotext", *(["-layout"] if layout else []), *pages, str(pdf), "-"],
                          capture_output=True, text=True, check=True).stdout


def flat_text(pdf: Path, *, first: int | None = None, last: int | None = None) -> str:
    """:func:`pdf_text` with every run of whitespace collapsed to one space."""
    return re.sub(r"\s+", " ", pdf_text(pdf, first=first, last=last))


def layout_rows(pdf: Path) -> list[str]:
    """The PDF's lines in physical layout, whitespace collapsed within each."""
    return [re.sub(r"\s+", " ", line).strip() for line in pdf_text(pdf, layout=True).splitlines()]


def checklist_status(rows: list[str], caption: str, number: str) -> str:
    """The status printed in the checklist under ``caption`` for item ``number`` (its first line)."""
    start = next(i for i, r in enumerate(rows) if caption in r)
    line = next(r for r in rows[start:] if r.startswith(f"{number} "))
    return next(s for s in ("not reported", "not applicable", "reported") if s in line)
