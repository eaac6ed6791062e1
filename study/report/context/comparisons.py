"""Model against readers."""

from __future__ import annotations

from collections.abc import Mapping

from study.report import selectors as S
from study.report.context.common import unavailable
from study.report.format import Table, fmt_int, fmt_p, is_estimate


def comparisons_context(results: Mapping) -> dict:
    ag = results.get("agreement") or {}
    comps = [c for c in ag.get("comparisons") or [] if isinstance(c, Mapping)]
    inter = ag.get("inter_reader") or {}
    n_readers = sum(1 for _, r in S.raters_in_order(ag) if r.get("kind") != "model")
    if not comps and not inter:
        reason = ("the study has no readers" if n_readers == 0 else
                  "results.json holds no model-against-reader comparison")
        return unavailable(f"Not assessed: {reason}.")
    t = None
    if comps:
        t = Table("tab-comparisons", "Model against each reader and reader group on the cases both graded: "
                                     "accuracy and quadratic kappa, differences (model minus reader) and McNemar's test",
                  ["Model", "Versus", "Cases", "Model accuracy", "Versus accuracy", "Accuracy difference",
                   "Quadratic kappa difference", "McNemar p"])
        for c in comps:
            mc = c.get("mcnemar") or {}
            t.add([str(c.get("model")), f"{c.get('versus')} ({c.get('versus_kind', '')})", fmt_int(c.get("n_cases")),
                   t.ci(c.get("model_accuracy")), t.ci(c.get("versus_accuracy")), t.ci(c.get("accuracy_difference")),
                   t.ci(c.get("kappa_quadratic_difference")), fmt_p(mc.get("p_value"))])
            if mc.get("method"):
                t.note(f"McNemar: {mc['method']}.")
            if mc.get("note"):
                t.note(f"McNemar's test {mc['note']}.")
    ov = Table("tab-inter", "Inter-reader agreement (readers only)", ["Measure", "Readers", "Cases", "Estimate (CI)"])
    fl = inter.get("fleiss") or {}
    if is_estimate(fl.get("kappa")):
        ov.add(["Fleiss' kappa", fmt_int(len(fl.get("readers") or [])), fmt_int(fl.get("n_cases")), ov.ci(fl["kappa"])])
        if fl.get("selection"):
            ov.note(f"Fleiss' kappa: {fl['selection']}.")
    ka = inter.get("krippendorff_alpha_ordinal") or {}
    if is_estimate(ka.get("alpha")):
        ov.add(["Krippendorff's alpha (ordinal)", fmt_int(len(ka.get("readers") or [])), fmt_int(ka.get("n_cases")),
                ov.ci(ka["alpha"])])
        if ka.get("note"):
            ov.note(f"Krippendorff's alpha: {ka['note']}.")
    if inter.get("reason"):
        ov.note(str(inter["reason"]))
    pw = None
    pairs = (inter.get("pairwise") or {}).get("pairs") if isinstance(inter.get("pairwise"), Mapping) else None
    if pairs:
        pw = Table("tab-inter-pairs", "Inter-reader agreement, pairwise (cases read by both)",
                   ["Reader A", "Reader B", "Cases", "Kappa", "Linear kappa", "Quadratic kappa"])
        for q in pairs:
            pw.add([str(q.get("reader_a")), str(q.get("reader_b")), fmt_int(q.get("n_cases")), pw.ci(q.get("kappa")),
                    pw.ci(q.get("kappa_linear")), pw.ci(q.get("kappa_quadratic"))])
    return {"available": True, "table": t.to_dict() if t else None, "pairwise": pw.to_dict() if pw else None,
            "overall": ov.to_dict() if ov.rows or ov.notes else None}
