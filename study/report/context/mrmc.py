"""Multi-reader multi-case analysis."""

from __future__ import annotations

from collections.abc import Mapping

from study.report import format as F
from study.report import selectors as S
from study.report.context.common import unavailable
from study.report.format import Table, fmt, fmt_int, fmt_p, is_estimate


def mrmc_context(results: Mapping, figures: Mapping[str, str]) -> dict:
    mr = results.get("mrmc")
    models = S.mrmc_models(mr)
    if not models:
        reason = (mr or {}).get("reason") if isinstance(mr, Mapping) else None
        return unavailable("Not assessed: " + (reason or "results.json holds no MRMC analysis (no MRMC endpoint)") + ".")
    out = []
    for m, v in models.items():
        an = v.get("analysis") or {}
        design = {**(an.get("design") or {}), **{k: x for k, x in (v.get("design") or {}).items()}}
        st = Table(f"tab-mrmc-{m}", f"MRMC analysis, {m or 'all raters'}: design and method", ["Item", "Value"])
        for label, val in (
            ("Method", f"{str(an.get('method', '')).upper()} ({an.get('analysis', F.DASH)}), covariance {an.get('covariance', F.DASH)}"),
            ("Figure of merit", str(an.get("fom_description") or an.get("fom") or F.DASH)),
            ("Endpoint", str(design.get("endpoint") or F.DASH)),
            ("Rating", str(design.get("rating") or F.DASH)),
            ("Design", str(design.get("crossing") or F.DASH)),
            ("Cases analysed (positive / negative)", f"{fmt_int(design.get('cases_kept', design.get('n_cases')))} "
                                                     f"({fmt_int(design.get('n_positive', design.get('n_cases_positive')))} / "
                                                     f"{fmt_int(design.get('n_negative', design.get('n_cases_negative')))})"),
            ("Cases with a reference", fmt_int(design.get("cases_reference"))),
            ("Raters analysed", ", ".join(design.get("raters_kept") or design.get("readers") or []) or F.DASH),
            ("Selection rule", str(design.get("rule") or F.DASH)),
        ):
            st.add([label, val])
        for k2, n2 in sorted((design.get("cases_excluded") or {}).items()):
            st.add([f"Cases left out: {k2.replace('_', ' ')}", fmt_int(n2)])
        for w in an.get("warnings") or []:
            st.note(str(w))
        ft = Table(f"tab-mrmc-fom-{m}", "Figures of merit and the algorithm-minus-readers difference",
                   ["Quantity", "Estimate (CI)", "SE", "df", "Statistic", "p"])
        for a in an.get("ai_vs_readers") or []:
            ft.add([f"Algorithm {a.get('ai_reader', '')}", ft.ci(a.get("ai_fom")), fmt((a.get("ai_fom") or {}).get("se")),
                    F.DASH, F.DASH, F.DASH])
            ft.add(["Readers (average)", ft.ci(a.get("readers_fom")), fmt((a.get("readers_fom") or {}).get("se")),
                    fmt((a.get("readers_fom") or {}).get("df"), 1), F.DASH, F.DASH])
        for mod, mv in sorted((an.get("modalities") or {}).items()):
            if not an.get("ai_vs_readers") and is_estimate((mv or {}).get("fom")):
                ft.add([f"Modality {mod}", ft.ci(mv["fom"]), fmt(mv["fom"].get("se")), fmt(mv["fom"].get("df"), 1), F.DASH, F.DASH])
        for d in an.get("differences") or []:
            if isinstance(d, Mapping):
                label = d.get("comparison") or " - ".join(d.get("modalities") or [])
                ft.add([f"Difference: {label}", ft.ci(d), fmt(d.get("se")), fmt(d.get("df"), 1),
                        f"{d.get('statistic_name', '')} = {fmt(d.get('statistic'), 3)}", fmt_p(d.get("p_value"))])
        rd = an.get("readers") or {}
        rt = None
        if isinstance(rd, Mapping) and rd:
            mods = sorted({k for x in rd.values() if isinstance(x, Mapping) for k in x})
            rt = Table(f"tab-mrmc-readers-{m}", "Figure of merit per rater", ["Rater"] + [f"FOM ({x})" for x in mods])
            for r_id, x in sorted(rd.items()):
                rt.add([r_id] + [fmt((x or {}).get(k)) for k in mods])
        vc = an.get("variance_components") or {}
        vt = None
        if vc:
            vt = Table(f"tab-mrmc-var-{m}", "Variance components", ["Component", "Value"], nd=6)
            for k2, x in sorted(vc.items()):
                if isinstance(x, (int, float)) and not isinstance(x, bool):
                    vt.add([k2, fmt(x, 6)])
            if vc.get("note"):
                vt.note(str(vc["note"]))
        out.append({"model": m, "table": st.to_dict(), "differences": ft.to_dict() if ft.rows else None,
                    "readers": rt.to_dict() if rt else None, "variance": vt.to_dict() if vt and vt.rows else None,
                    "figures": [f for f in (f"mrmc_roc__{m}",) if f in figures]})
    endpoint = mr.get("endpoint") if isinstance(mr, Mapping) else None
    return {"available": True, "endpoint": endpoint, "models": out}
