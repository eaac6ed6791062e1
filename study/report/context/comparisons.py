"""Model against readers, and agreement between readers (from the typed ``agreement`` block)."""

from __future__ import annotations

from typing import Any

from study.report.context.agreement import graded_unit, unit_note
from study.report.context.common import unavailable
from study.report.format import DASH, Table, fmt_int, fmt_p, plural
from study.results.agreement import (
    AgreementResult,
    Comparison,
    GroupComparison,
    InterReader,
    McNemarTest,
    NoSharedCases,
)


def _comparison_table(comps: list[Comparison], unit: str) -> Table:
    t = Table("tab-comparisons", "Model against each reader and reader group on the cases both graded: "
                                 "accuracy and quadratic kappa, differences (model minus reader) and McNemar's test",
              ["Model", "Versus", unit, "Model accuracy", "Versus accuracy", "Accuracy difference",
               "Quadratic kappa difference", "McNemar p"])
    for c in comps:
        kind: str = c.versus_kind
        if isinstance(c, GroupComparison):
            kind = f"group: mean over {plural(len(c.readers), 'reader')}"
        versus = [c.model, f"{c.versus} ({kind})", fmt_int(c.n_cases)]
        if isinstance(c, NoSharedCases):
            t.add([*versus, *[DASH] * 5])
            continue
        mc = c.mcnemar
        t.add([*versus, t.ci(c.model_accuracy), t.ci(c.versus_accuracy), t.ci(c.accuracy_difference),
               t.ci(c.kappa_quadratic_difference), fmt_p(mc.p_value)])
        t.note(f"McNemar: {mc.method}.")
        if c.versus_kind == "group":
            t.note("Group rows average the paired comparisons of the group's readers (each reader against the model "
                   "on the cases both graded); cases: the cases of the group's readings.")
        if isinstance(mc, McNemarTest) and mc.note:
            t.note(f"McNemar's test {mc.note}.")
    return t


def _overall_table(inter: InterReader, unit: str) -> Table:
    ov = Table("tab-inter", "Inter-reader agreement (readers only)", ["Measure", "Readers", unit, "Estimate (CI)"])
    fl = inter.fleiss
    ov.add(["Fleiss' kappa", fmt_int(len(fl.readers)), fmt_int(fl.n_cases), ov.ci(fl.kappa)])
    if fl.selection:
        ov.note(f"Fleiss' kappa: {fl.selection}.")
    ka = inter.krippendorff_alpha_ordinal
    ov.add(["Krippendorff's alpha (ordinal)", fmt_int(len(ka.readers)), fmt_int(ka.n_cases), ov.ci(ka.alpha)])
    if ka.note:
        ov.note(f"Krippendorff's alpha: {ka.note}.")
    return ov


def _pairwise_table(inter: InterReader, unit: str) -> Table | None:
    pairs = inter.pairwise.pairs
    if not pairs:
        return None
    pw = Table("tab-inter-pairs", f"Inter-reader agreement, pairwise ({unit.lower()} read by both)",
               ["Reader A", "Reader B", unit, "Kappa", "Linear kappa", "Quadratic kappa"])
    for q in pairs:
        pw.add([q.reader_a, q.reader_b, fmt_int(q.n_cases), pw.ci(q.kappa), pw.ci(q.kappa_linear),
                pw.ci(q.kappa_quadratic)])
    return pw


def comparisons_context(agreement: AgreementResult | None) -> dict[str, Any]:
    """Each model against each reader and reader group; inter-reader agreement (readers only)."""
    comps = agreement.comparisons if agreement is not None else []
    inter = agreement.inter_reader if agreement is not None else None
    if inter is None or (not comps and not inter.readers):
        n_readers = 0 if agreement is None else sum(1 for r in agreement.raters.values() if r.kind != "model")
        reason = ("the study has no readers" if n_readers == 0 else
                  "results.json holds no model-against-reader comparison")
        return unavailable(f"Not assessed: {reason}.")
    assert agreement is not None
    unit = graded_unit(agreement)
    t = _comparison_table(comps, unit) if comps else None
    pw = _pairwise_table(inter, unit)
    ov = _overall_table(inter, unit)
    for table in (t, pw, ov):
        if table is not None:
            table.note(unit_note(agreement))
    return {"available": True, "table": t.to_dict() if t else None, "pairwise": pw.to_dict() if pw else None,
            "overall": ov.to_dict()}
