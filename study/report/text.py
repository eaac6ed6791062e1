"""Bounded, neutral text: the one rule for every piece of user text the report prints.

The report prints text from ``results.json`` (reader, case and model ids, file names, hashes,
the protocol's own text) in tables, paragraphs, figure labels and the title. Two things in
such text can break the report, and both are dealt with here, once:

- **Bidirectional-control characters** (U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069) can
  make a table cell or a label read differently from what it holds (the "Trojan Source" trick,
  Boucher & Anderson 2021, CVE-2021-42574). :func:`neutralise_bidi` shows each as its visible
  code, e.g. ``\\u202E``, so the reader sees that it is there and the text keeps its order.
- **Unbounded length**: an id of 10,000 characters repeated in every table used to keep the
  PDF layout busy for half an hour. :func:`shorten_token` cuts any unbroken run of more than
  :data:`MAX_TOKEN` characters to its first :data:`KEEP` characters, "…" and the first
  :data:`HASH_CHARS` hex digits of its sha256, so the short form is stable (the same value
  always gives the same short form) and two long ids that share their start stay distinct;
  :func:`bounded_text` also cuts a whole value of more than ``max_chars`` characters. The full
  value stays in ``results.json``.

:func:`report_text` applies both; the Jinja environment calls it on every value it prints
(``finalize`` in :mod:`study.report.render`), the figures on every label
(:func:`study.report.figures._t`) and the flow diagram on every line of its boxes.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["BIDI_CONTROLS", "HASH_CHARS", "KEEP", "MAX_CHARS", "MAX_TOKEN", "bounded_text", "neutralise_bidi",
           "report_text", "short_form", "shorten_token"]

#: the Unicode bidirectional formatting characters (Unicode Standard Annex #9, table 1: explicit
#: embeddings, overrides and isolates, and the implicit marks LRM, RLM and ALM)
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")

#: an unbroken run (no white space) longer than this is shortened; a sha256 (64 hex digits) is not
MAX_TOKEN = 80
#: characters of a long run kept in its short form
KEEP = 40
#: hex digits of the sha256 of the full run that end the short form
HASH_CHARS = 8
#: a printed value longer than this (in characters) is cut, saying how long it was
MAX_CHARS = 2000

_LONG_TOKEN = re.compile(rf"\S{{{MAX_TOKEN + 1},}}")


def neutralise_bidi(text: str) -> str:
    """``text`` with every bidirectional-control character replaced by its visible code (``\\u202E``)."""
    if not _BIDI.search(text):
        return text
    return _BIDI.sub(lambda m: f"\\u{ord(m.group(0)):04X}", text)


def short_form(token: str) -> str:
    """The stable short form of one long run: its first :data:`KEEP` characters, "…", and the
    first :data:`HASH_CHARS` hex digits of the sha256 of the whole run (UTF-8)."""
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
    return f"{token[:KEEP]}…{digest}"


def shorten_token(text: str) -> str:
    """``text`` with every unbroken run longer than :data:`MAX_TOKEN` characters in its :func:`short_form`."""
    if len(text) <= MAX_TOKEN:
        return text
    return _LONG_TOKEN.sub(lambda m: short_form(m.group(0)), text)


def bounded_text(text: str, *, max_chars: int = MAX_CHARS) -> str:
    """``text`` shortened run by run (:func:`shorten_token`) and then, when still longer than
    ``max_chars``, cut there with "… (N characters in all)"."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    text = shorten_token(text)
    if len(text) > max_chars:
        text = f"{text[:max_chars]}… ({len(text)} characters in all)"
    return text


def report_text(text: str, *, max_chars: int = MAX_CHARS) -> str:
    """User text as the report prints it: bidi controls neutralised (first, so that a control
    never hides in a cut), then bounded (:func:`bounded_text`)."""
    return bounded_text(neutralise_bidi(text), max_chars=max_chars)
