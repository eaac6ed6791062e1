"""Failure analysis and example images."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from study.pseudonyms import pseudonyms
from study.report import format as F
from study.report.context.common import threshold_key_of, unavailable
from study.report.context.errors import error_tables
from study.report.format import Table, fmt_int
from study.results.counting import ClassPoints, CountingResult
from study.results.errors import ErrorAnalysis


def _classes_differing(by_class: Mapping[str, ClassPoints], classes: list[str], tk: str, i: int) -> list[str]:
    """``"<class> <reference>/<predicted>"`` for each class whose count of case ``i`` is wrong at ``tk``."""
    out = []
    for c in classes:
        a, b = by_class[c].true[i], by_class[c].predicted[tk][i]
        if a != b:
            out.append(f"{c} {fmt_int(a)}/{fmt_int(b)}")
    return out


def _worst_table(m: str, cnt: CountingResult, pseudo: Mapping[str, str], *, k: int, tk: str) -> Table:
    pts = cnt.points
    pred = pts.predicted[tk]
    rows = sorted(range(len(pts.case_id)), key=lambda i: (-abs(pred[i] - pts.true[i]), pseudo[pts.case_id[i]]))
    t = Table(f"tab-worst-{m}", f"The {min(k, len(rows))} cases with the largest count error at score ≥ {tk}, model {m}",
              ["Case", "Reference grade", "Reference count", "Predicted count", "Error",
               "Classes differing (reference/predicted)"])
    for i in rows[:k]:
        grade = pts.severity[i] if pts.severity is not None else None
        cls = _classes_differing(pts.by_class, cnt.classes, tk, i)
        t.add([pseudo[pts.case_id[i]], str(grade or F.DASH), fmt_int(pts.true[i]), fmt_int(pred[i]),
               f"{pred[i] - pts.true[i]:+.0f}",
               ", ".join(cls) if cls else "none"])
    t.note("Cases are pseudonymised (C-numbers in the order of the sha256 of the case ids); no patient or case id "
           "is printed. The study team can regenerate the mapping from the manifest.")
    return t


def failures_context(counting: Mapping[str, CountingResult], *, worst_cases: int,
                     operating_threshold: float | None, pseudonymised: bool = False,
                     errors: ErrorAnalysis | None = None) -> dict[str, Any]:
    """Section 4.10: per model, the grading errors case by case (serious first), the largest count
    errors, and the errors by device, skin type and image quality.

    Parameters
    ----------
    counting : mapping model id -> CountingResult
        ``results.json`` ``counting`` (its per-case ``points``).
    worst_cases : int
        How many count errors (and non-serious grading errors) to list (protocol ``report.worst_cases``;
        0 = the section is not shown).
    operating_threshold : float, optional
        The protocol's operating score threshold (the nearest recorded threshold key is used, the middle one
        when none matches).
    pseudonymised : bool
        The case ids in ``counting`` are already pseudonyms (``study.case_ids``); otherwise they are
        pseudonymised here: the report never prints a case id.
    errors : ErrorAnalysis, optional
        ``results.json`` ``errors`` (absent in files written before it: then only the count errors are shown).
    """
    if worst_cases == 0:
        return unavailable("Not shown: the protocol sets report.worst_cases to 0.")
    all_ids = {c for cnt in counting.values() for c in cnt.points.case_id}
    if not all_ids:
        return unavailable("Not assessed: results.json holds no per-case counts (counting.<model>.points).")
    pseudo = {c: c for c in all_ids} if pseudonymised else pseudonyms(all_ids)
    out = []
    for m, cnt in sorted(counting.items()):
        if not cnt.points.case_id:
            continue
        tk = threshold_key_of(cnt.threshold_keys(), operating_threshold)
        me = errors.models.get(m) if errors is not None else None
        entry: dict[str, Any] = {"model": m, "table": _worst_table(m, cnt, pseudo, k=worst_cases, tk=tk).to_dict(),
                                 "grading": None, "groups": None, "skin": None}
        if me is not None:
            entry.update(error_tables(m, me, errors_block=errors, k=worst_cases))  # type: ignore[arg-type]
        out.append(entry)
    note = None if errors is not None else (
        "The grading errors case by case and the errors by device, skin type and image quality need the errors "
        "block of results.json, which this file does not have (written before it): run the collect step again.")
    return {"available": True, "models": out, "note": note}


def examples_context(figures: Mapping[str, str] | None, *, show_example_images: bool) -> dict[str, Any]:
    """Section 4.11: the example images drawn (``example__*`` figures), only when the protocol allows them.

    Parameters
    ----------
    figures : mapping figure name -> SVG, optional
        The figures drawn for the report.
    show_example_images : bool
        Protocol ``report.show_example_images`` (facial photographs are personal data: off by default).
    """
    if not show_example_images:
        return unavailable("Not shown: the protocol does not allow example images (report.show_example_images is "
                           "false, the default), because facial photographs are personal data.")
    names = sorted(n for n in (figures or {}) if n.startswith("example__"))
    if not names:
        return unavailable("Not shown: the protocol allows example images, but the renderer was not given the "
                           "study's results folder with the images and detections (study report RESULTS_DIR does).")
    return {"available": True, "figures": names,
            "note": "The cases with the largest count error, by pseudonym; reference lesions as solid boxes, the "
                    "model's detections at the operating threshold as dashed boxes."}
