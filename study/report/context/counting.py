"""Lesion counting: counting error per score threshold, by reference grade and by class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from study.report.context.common import threshold_key_of, unavailable
from study.report.figure_ids import figure_id
from study.report.format import Table, fmt_int
from study.results.counting import CountError, CountingResult

COLUMNS = ["Images", "Mean bias", "SD", "MAE", "RMSE", "CCC"]




def _row(t: Table, d: CountError) -> list[str]:
    return [fmt_int(d.n), t.ci(d.mean_bias, 2), t.ci(d.sd, 2), t.ci(d.mae, 2), t.ci(d.rmse, 2),
            t.ci(d.ccc, 3)]


def _model_tables(m: str, cnt: CountingResult, figures: Mapping[str, str],
                  operating_threshold: float | None) -> dict[str, Any]:
    ths = cnt.threshold_keys()
    t2 = Table(f"tab-count-{m}", f"Counting error per image by score threshold, model {m} (as ACNE04 Table 2)",
               ["Score threshold", *COLUMNS], nd=2)
    for th in ths:
        t2.add([f"≥ {th}", *_row(t2, cnt.thresholds[th].overall)])
    t2.note("Bias = predicted - reference count; MAE = mean absolute error; RMSE = root mean squared error; "
            "CCC = Lin's concordance correlation coefficient.")
    n_note = (f"n = images ({cnt.inputs.n_cases} images from {cnt.inputs.n_patients} patients); counts are "
              "lesions per image.")
    t2.note(n_note)
    t3 = Table(f"tab-count-sev-{m}", f"Counting error by reference grade, model {m} (as ACNE04 Table 3)",
               ["Grade", "Score threshold", *COLUMNS], nd=2)
    for lv in cnt.levels or []:
        for th in ths:
            t3.add([lv, f"≥ {th}", *_row(t3, cnt.thresholds[th].by_severity[lv])])
    t3.note(n_note)
    tk = threshold_key_of(ths, operating_threshold)
    tc = None
    if len(cnt.classes) > 1:
        byc = cnt.thresholds[tk].by_class
        tc = Table(f"tab-count-class-{m}", f"Counting error per class at score ≥ {tk}, model {m}",
                   ["Class", *COLUMNS], nd=2)
        for c in cnt.classes:
            tc.add([c, *_row(tc, byc[c])])
        tc.note(n_note)
    return {"model": m, "available": True, "table2": t2.to_dict(), "table3": t3.to_dict() if t3.rows else None,
            "by_class": tc.to_dict() if tc else None,
            "figures": [f for f in (figure_id("count_scatter", m), figure_id("bland_altman", m)) if f in figures]}


def counting_context(counting: Mapping[str, CountingResult], figures: Mapping[str, str], *,
                     operating_threshold: float | None) -> dict[str, Any]:
    """Section 4.4: per model, the counting error by threshold (as ACNE04 Table 2), by reference grade
    (as ACNE04 Table 3) and by class at the operating threshold, with the figures drawn for it.

    Parameters
    ----------
    counting : mapping model id -> CountingResult
        ``results.json`` ``counting``.
    figures : mapping figure name -> SVG
        The figures drawn (``count_scatter__<model>``, ``bland_altman__<model>`` are listed when present).
    operating_threshold : float, optional
        The protocol's operating score threshold; the per-class table is at the nearest recorded threshold
        (the middle one when none matches).
    """
    if not counting:
        return unavailable("No counting results: results.json lists no model under 'counting'.")
    return {"available": True,
            "models": [_model_tables(m, cnt, figures, operating_threshold) for m, cnt in sorted(counting.items())]}
