"""The U-statistic MRMC analyses of the study (``results.mrmc.ustat``) in section 4.8.

The analysis set (how many included cases and readings entered, how many cases had none and
why), then per analysis -- readers aided versus unaided, each model standalone versus the
unaided readers -- the design, the figures of merit and their difference, each reader's figure
of merit per modality, the variance components and the method with its references.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from study.report import format as F
from study.report.figure_ids import figure_id
from study.report.figures_mrmc import ustat_analyses, ustat_figure_key
from study.report.format import Table, fmt, fmt_int, fmt_p
from study.results.base import NotAssessed
from study.results.mrmc import MRMCUStatStudy, UStatAnalysis

__all__ = ["ustat_cases_sentence", "ustat_context"]


def ustat_cases_sentence(u: MRMCUStatStudy) -> str:
    """How many included cases and readings the U-statistic analyses used, and how many cases had no reading."""
    missing = u.cases_included - u.cases_with_readings
    text = (f"The U-statistic analyses used {fmt_int(u.cases_with_readings)} of the {fmt_int(u.cases_included)} "
            f"included cases (every included case with at least one usable reading, whatever the design) and "
            f"{fmt_int(u.readings_used)} readings")
    if missing:
        text += (f"; {fmt_int(missing)} included case{'s' if missing != 1 else ''} had no usable reading "
                 "(no reader read them, or their readings were marked not assessable or carry no grade)")
    if u.readings_not_used:
        text += f"; {fmt_int(u.readings_not_used)} readings of included cases were not used (not assessable or no grade)"
    return text + "."


def _set_table(u: MRMCUStatStudy) -> Table:
    t = Table("tab-mrmc-ustat-set", "MRMC (U-statistics): the analysis set", ["Item", "Value"])
    t.add(["Endpoint (truth)", u.endpoint])
    t.add(["Included cases with a reference grade", fmt_int(u.cases_included)])
    t.add(["Included cases with readings (analysed)", fmt_int(u.cases_with_readings)])
    t.add(["Included cases without a usable reading", fmt_int(u.cases_included - u.cases_with_readings)])
    t.add(["Readings used", fmt_int(u.readings_used)])
    for m, n in u.readings_by_modality.items():
        t.add([f"Readings used, {m}", fmt_int(n)])
    t.add(["Readings of included cases not used (not assessable, no grade)", fmt_int(u.readings_not_used)])
    for m, kind in u.rating.items():
        t.add([f"Rating, {m}", kind])
    t.add(["Resampling unit of the variance", u.resampling_unit])
    return t


def _design_table(key: str, a: UStatAnalysis, *, fixed: bool) -> Table:
    d = a.design
    t = Table(f"tab-mrmc-ustat-design-{key}", "Design: readers, cases and readings per modality",
              ["Modality", "Readers", "Cases (non-diseased / diseased)", "Readings", "Design"])
    for m, md in d.by_modality.items():
        cases = f"{fmt_int(md.n_cases)} ({fmt_int(md.n_cases_negative)} / {fmt_int(md.n_cases_positive)})"
        t.add([m, fmt_int(md.n_readers), cases, fmt_int(md.n_readings), md.crossing])
    cases = f"{fmt_int(d.n_cases)} ({fmt_int(d.n_cases_negative)} / {fmt_int(d.n_cases_positive)})"
    t.add(["All", fmt_int(len(d.readers)), cases, fmt_int(d.n_readings), F.DASH])
    if len(d.modalities) > 1 and not fixed:
        t.note(f"{F.plural(d.readers_in_every_modality, 'reader')} read in every modality.")
    if d.n_patients is not None:
        t.note(f"The cases come from {fmt_int(d.n_patients)} patients; the variance resamples patients.")
    return t


def _fom_table(key: str, a: UStatAnalysis) -> Table:
    fom = a.fom.upper() if a.fom == "auc" else a.fom
    t = Table(f"tab-mrmc-ustat-fom-{key}", f"Reader-averaged {fom} per modality and the difference",
              ["Quantity", "Estimate (CI)", "SE", "df (BDG)", "p", "Hillis df"])
    for m, mv in a.modalities.items():
        u = mv.unbiased
        t.add([f"{fom}, {m}", t.ci(u), fmt(u.se), fmt(u.df, 1), fmt_p(u.p_value), fmt(u.df_hillis, 1)])
    for d in a.differences:
        u = d.unbiased
        t.add([f"Difference, {d.comparison}", t.ci(u), fmt(u.se), fmt(u.df, 1), fmt_p(u.p_value),
               fmt(u.df_hillis, 1)])
        if d.mle is not None:
            t.note(f"{d.comparison}: with the MLE variance {t.ci(d.mle)}, SE {fmt(d.mle.se)}.")
    nulls = sorted({mv.unbiased.null_value for mv in a.modalities.values() if mv.unbiased.null_value is not None})
    if nulls:
        t.note(f"p of a modality: test of {fom} = {', '.join(fmt(x, 2) for x in nulls)}; of a difference: of 0.")
    return t


def _readers_table(key: str, a: UStatAnalysis) -> Table | None:
    mods = list(a.modalities)
    readers = sorted({r for mv in a.modalities.values() for r in mv.readers})
    if not readers:
        return None
    diff = next((d for d in a.differences if any(v is not None for v in d.readers.values())), None)
    fom = a.fom.upper() if a.fom == "auc" else a.fom
    cols = ["Reader"] + [f"{fom} ({m})" for m in mods] + [f"Weight ({m})" for m in mods]
    if diff is not None:
        cols.append(f"Difference ({diff.comparison})")
    t = Table(f"tab-mrmc-ustat-readers-{key}", f"{fom} of each reader per modality", cols)
    for r in readers:
        row = [r] + [fmt(a.modalities[m].readers.get(r)) for m in mods]
        row += [fmt(a.modalities[m].reader_weights.get(r)) for m in mods]
        if diff is not None:
            row.append(fmt(diff.readers.get(r)))
        t.add(row)
    t.note(a.weighting)
    return t


def _components_table(key: str, a: UStatAnalysis) -> Table | None:
    if not a.differences and not a.modalities:
        return None
    if a.differences:
        d = a.differences[0]
        of, c, patient = f"the difference {d.comparison}", d.components, d.patient_terms
    else:
        m, mv = next(iter(a.modalities.items()))
        of, c, patient = m, mv.components, mv.patient_terms
    coef = any(abs(x - 1) > 1e-12 for x in c.component_coefficients.values())
    t = Table(f"tab-mrmc-ustat-var-{key}", f"Variance components of {of}",
              ["Component", "Unbiased", "MLE"] + (["Coefficient"] if coef else []), nd=6)
    for name, val in c.components.items():
        t.add([name, fmt(val, 6), fmt(c.components_mle.get(name), 6)]
              + ([fmt(c.component_coefficients.get(name), 4)] if coef else []))
    for name, val in (patient or {}).items():
        t.add([f"patient term: {name.replace('_', ' ')}", fmt(val, 6), F.DASH] + ([F.DASH] if coef else []))
    if c.truncated:
        t.note(f"Set to the nearest valid value: {', '.join(c.truncated)}.")
    t.note(_sentence(a.variance_note))
    return t


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _analysis_context(key: str, title: str, a: UStatAnalysis | NotAssessed, figures: Mapping[str, str]) -> dict[str, Any]:
    if isinstance(a, NotAssessed):
        return {"key": key, "title": title, "not_estimable": f"Not estimable: {a.reason}.", "tables": [],
                "method": None, "references": [], "figures": []}
    fixed = any(md.n_readers == 1 for md in a.design.by_modality.values())
    fom = _fom_table(key, a)
    for w in a.warnings:
        fom.note(w)
    tables = [_design_table(key, a, fixed=fixed), fom, _readers_table(key, a), _components_table(key, a)]
    figs = [(f, cap) for f, cap in (
        (figure_id("mrmc_design", key), ("Reader x case design per modality: a coloured cell is a reading of that "
                                         "case by that reader (blue non-diseased, orange diseased, grey not read).")),
        (figure_id("mrmc_forest", key), ("Each reader's difference in figure of merit and the reader-averaged "
                                         "difference with its confidence interval (BDG degrees of freedom).")),
    ) if f in figures]
    method = " ".join([_sentence(a.fom_description), "U-statistic MRMC analysis for any reader x case design (iMRMC).",
                       _sentence(a.weighting), _sentence(a.variance_note), "Degrees of freedom: " + _sentence(a.df_note),
                       f"Resampling unit: {a.resampling_unit}."])
    return {"key": key, "title": title, "not_estimable": None, "tables": [x.to_dict() for x in tables if x is not None],
            "method": method, "references": a.references, "figures": figs}


def ustat_context(u: MRMCUStatStudy | None, figures: Mapping[str, str]) -> dict[str, Any] | None:
    """The U-statistic part of the MRMC section (``None`` when ``results.json`` holds none).

    Parameters
    ----------
    u : MRMCUStatStudy or None
        ``results.mrmc.ustat``.
    figures : mapping
        The figures drawn (``mrmc_design__<analysis>``, ``mrmc_forest__<analysis>``).
    """
    if u is None:
        return None
    analyses = []
    for key, a in ustat_analyses(u).items():
        if key == ustat_figure_key(None):
            title = "Readers aided versus unaided"
        else:
            title = f"Model {key.split('__', 1)[1]} standalone versus the unaided readers"
        analyses.append(_analysis_context(key, title, a, figures))
    return {"sentence": ustat_cases_sentence(u), "set": _set_table(u).to_dict(), "analyses": analyses}
