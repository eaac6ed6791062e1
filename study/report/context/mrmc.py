"""Multi-reader multi-case analysis (section 4.8): read from the typed ``mrmc`` block."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from study.report import format as F
from study.report.context.common import unavailable
from study.report.context.mrmc_ustat import ustat_context
from study.report.figure_ids import figure_id
from study.report.format import Table, fmt, fmt_int, fmt_p
from study.results.base import NotAssessed
from study.results.mrmc import (
    CasesExcluded,
    CrossedBlock,
    MRMCAnalysis,
    MRMCBlock,
    MRMCModelResult,
    ORVarianceComponents,
)

__all__ = ["mrmc_context"]

#: the references of the crossed-block analyses, by method
_REFERENCES = {
    "or": [
        ("Obuchowski NA, Rockette HE (1995). Hypothesis testing of diagnostic accuracy for multiple readers and "
         "multiple tests: an ANOVA approach with dependent observations. Commun Stat Simul Comput 24:285-308."),
        ("Hillis SL, Obuchowski NA, Schartz KM, Berbaum KS (2005). A comparison of the Dorfman-Berbaum-Metz and "
         "Obuchowski-Rockette methods for receiver operating characteristic (ROC) data. Stat Med 24:1579-1607."),
        ("Hillis SL (2007). A comparison of denominator degrees of freedom methods for multiple observer ROC "
         "analysis. Stat Med 26:596-619."),
    ],
    "dbm": [
        ("Dorfman DD, Berbaum KS, Metz CE (1992). Receiver operating characteristic rating analysis: generalization "
         "to the population of readers and patients with the jackknife method. Invest Radiol 27:723-731."),
        ("Hillis SL, Obuchowski NA, Schartz KM, Berbaum KS (2005). A comparison of the Dorfman-Berbaum-Metz and "
         "Obuchowski-Rockette methods for receiver operating characteristic (ROC) data. Stat Med 24:1579-1607."),
    ],
}


def _design_table(m: str, design: CrossedBlock, an: MRMCAnalysis) -> Table:
    st = Table(f"tab-mrmc-{m}", f"MRMC analysis, {m or 'all raters'}: design and method", ["Item", "Value"])
    for label, val in (
        ("Method", f"{an.method.upper()} ({an.analysis}), covariance {an.covariance}"),
        ("Figure of merit", an.fom_description),
        ("Endpoint", design.endpoint),
        ("Rating", design.rating),
        ("Design", an.design.crossing),
        ("Images analysed (positive / negative)",
         f"{fmt_int(design.cases_kept)} ({fmt_int(design.n_positive)} / {fmt_int(design.n_negative)})"),
        ("Images with a reference", fmt_int(design.cases_reference)),
        ("Raters analysed", ", ".join(design.raters_kept) or F.DASH),
        ("Selection rule", design.rule or F.DASH),
    ):
        st.add([label, val])
    for name in sorted(CasesExcluded.model_fields):
        st.add([f"Images left out: {name.replace('_', ' ')}", fmt_int(getattr(design.cases_excluded, name))])
    for w in an.warnings:
        st.note(w)
    return st


def _fom_table(m: str, an: MRMCAnalysis) -> Table:
    ft = Table(f"tab-mrmc-fom-{m}", "Figures of merit and the algorithm-minus-readers difference",
               ["Quantity", "Estimate (CI)", "SE", "df", "Statistic", "p"])
    for a in an.ai_vs_readers or []:
        ft.add([f"Algorithm {a.ai_reader}", ft.ci(a.ai_fom), fmt(a.ai_fom.se), F.DASH, F.DASH, F.DASH])
        ft.add(["Readers (average)", ft.ci(a.readers_fom), fmt(a.readers_fom.se), fmt(a.readers_fom.df, 1),
                F.DASH, F.DASH])
    if not an.ai_vs_readers:
        for mod, mv in sorted(an.modalities.items()):
            ft.add([f"Modality {mod}", ft.ci(mv.fom), fmt(mv.fom.se), fmt(mv.fom.df, 1), F.DASH, F.DASH])
    for d in an.differences:
        ft.add([f"Difference: {d.comparison}", ft.ci(d), fmt(d.se), fmt(d.df, 1),
                f"{d.statistic_name} = {fmt(d.statistic, 3)}", fmt_p(d.p_value)])
    return ft


def _readers_table(m: str, an: MRMCAnalysis) -> Table | None:
    if not an.readers:
        return None
    mods = sorted({k for x in an.readers.values() for k in x})
    rt = Table(f"tab-mrmc-readers-{m}", "Figure of merit per rater", ["Rater"] + [f"FOM ({x})" for x in mods])
    for r_id, x in sorted(an.readers.items()):
        rt.add([r_id] + [fmt(x[k]) for k in mods])
    return rt


def _variance_table(m: str, vc: ORVarianceComponents) -> Table:
    vt = Table(f"tab-mrmc-var-{m}", "Variance components", ["Component", "Value"], nd=6)
    for name in sorted(ORVarianceComponents.model_fields):
        x = getattr(vc, name)
        if isinstance(x, float):
            vt.add([name, fmt(x, 6)])
    vt.note(vc.note)
    return vt


def _model_context(m: str, v: MRMCModelResult, figures: Mapping[str, str]) -> dict[str, Any]:
    an = v.analysis
    ft = _fom_table(m, an)
    rt = _readers_table(m, an)
    vt = _variance_table(m, an.variance_components)
    return {"model": m, "table": _design_table(m, v.design, an).to_dict(),
            "differences": ft.to_dict() if ft.rows else None, "readers": rt.to_dict() if rt else None,
            "variance": vt.to_dict() if vt.rows else None,
            "cases": f"This analysis keeps the largest fully crossed block of unaided readings: "
                     f"{fmt_int(v.design.cases_kept)} of the {fmt_int(v.design.cases_reference)} cases with a reference.",
            "references": _REFERENCES.get(an.method, []),
            "figures": [f for f in (figure_id("mrmc_roc", m),) if f in figures]}


def _not_assessed_context(m: str, v: NotAssessed) -> dict[str, Any]:
    st = Table(f"tab-mrmc-{m}", f"MRMC analysis, {m or 'all raters'}: design and method", ["Item", "Value"])
    st.add(["Not assessed", v.reason])
    return {"model": m, "table": st.to_dict(), "differences": None, "readers": None, "variance": None, "figures": [],
            "cases": None, "references": []}


def mrmc_context(mrmc: MRMCBlock | NotAssessed | None, figures: Mapping[str, str]) -> dict[str, Any]:
    """The MRMC section: the U-statistic analyses on every included case with readings (``ustat``: readers
    aided versus unaided, each model versus the unaided readers), then per model the OR/DBM analysis of
    the largest fully crossed block: the design, the figures of merit and differences, each rater's FOM.

    Parameters
    ----------
    mrmc : MRMCBlock, NotAssessed or None
        The ``mrmc`` block of ``results.json`` (``None``: the file holds none).
    figures : mapping
        The figures drawn (name -> SVG); each model shows ``mrmc_roc__<model>`` when drawn.
    """
    if isinstance(mrmc, NotAssessed):
        return unavailable(f"Not assessed: {mrmc.reason}.")
    if mrmc is None or (not mrmc.models and mrmc.ustat is None):
        return unavailable("Not assessed: results.json holds no MRMC analysis (no MRMC endpoint).")
    out = [_model_context(m, v, figures) if isinstance(v, MRMCModelResult) else _not_assessed_context(m, v)
           for m, v in sorted(mrmc.models.items())]
    return {"available": True, "endpoint": mrmc.endpoint, "models": out, "ustat": ustat_context(mrmc.ustat, figures)}
