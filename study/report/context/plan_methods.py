"""Methods, statistics subsection: the analysis plan (multiplicity, estimands) and the sample size (STARD 18).

Read from ``results.analysis_plan`` (the decide step) and ``results.sample_size`` (``study plan``
written into the results folder); without them the investigators' text, or a plain statement
that nothing was recorded.
"""

from __future__ import annotations

from typing import Any

from study.report import format as F
from study.report.context.common import info_text
from study.report.format import Table, fmt, fmt_int
from study.results import Results
from study.results.sample_size import SampleSizePlan

__all__ = ["plan_methods_context", "sample_size_context"]

_ESTIMAND_FIELDS = (("population", "Population"), ("variable", "Variable"),
                    ("intercurrent_events", "Intercurrent events"), ("summary_measure", "Summary measure"))


def plan_methods_context(results: Results) -> dict[str, Any] | None:
    """The plan's alpha, sidedness and multiplicity procedure, and each endpoint's estimand (ICH E9(R1)).

    ``None`` when no plan was pre-specified (the template then says so). When every endpoint
    handles intercurrent events the same way, that text is one note instead of a column.
    """
    plan = results.analysis_plan
    if plan is None or not plan.planned:
        return None
    shared_ie = {d.estimand.get("intercurrent_events", "") for d in plan.endpoints}
    one_ie = len(shared_ie) == 1
    fields = [f for f in _ESTIMAND_FIELDS if not (one_ie and f[0] == "intercurrent_events")]
    t = Table("tab-estimands", "Estimands of the analysis plan's endpoints (ICH E9(R1)): population, variable, "
                               "handling of intercurrent events and summary measure",
              ["Endpoint", "Role", *[label for _, label in fields]])
    for d in plan.endpoints:
        t.add([d.id, d.role, *[d.estimand.get(k, F.DASH) or F.DASH for k, _ in fields]])
    if one_ie and next(iter(shared_ie)):
        t.note(f"Intercurrent events, every endpoint: {next(iter(shared_ie))}.")
    alpha = f"{plan.alpha:g}" if plan.alpha is not None else F.DASH
    alpha1 = plan.endpoints[0].alpha_one_sided if plan.endpoints else None
    confirmatory = [d.id for d in plan.endpoints if d.role != "exploratory"]
    exploratory = [d.id for d in plan.endpoints if d.role == "exploratory"]
    text = (f"The protocol's analysis plan fixes {F.plural(len(confirmatory), 'confirmatory endpoint')} "
            f"({', '.join(confirmatory) or 'none'}) at alpha {alpha}, {plan.sided or F.DASH}-sided"
            + (f" (each one-sided test at {alpha1:g})" if alpha1 is not None else "")
            + f". Multiplicity across the confirmatory endpoints: {plan.multiplicity or 'not recorded'}."
            + (f" Exploratory endpoints ({', '.join(exploratory)}) are tested without multiplicity control and "
               "decide nothing." if exploratory else ""))
    tests = Table("tab-plan-tests", "Test of each endpoint of the analysis plan",
                  ["Endpoint", "Hypothesis", "Test and interval"])
    for d in plan.endpoints:
        tests.add([d.id, d.hypothesis, d.estimate.method or F.DASH])
    return {"text": text, "estimands": t.to_dict(), "tests": tests.to_dict()}


def _grid(row_cases: list[tuple[int, int | None]]) -> str:
    return "; ".join(f"{r} readers x {c if c is not None else 'not reachable'}" for r, c in row_cases)


def sample_size_context(results: Results) -> dict[str, Any]:
    """STARD item 18: ``study plan``'s table when results.json carries it, and the investigators' text.

    Returns ``table`` (one row per confirmatory endpoint: method, units analysed, patients,
    images, achieved power, the readers x cases grid of MRMC endpoints) or ``None``, and
    ``items`` (statements with their source).
    """
    info = results.study.information.supplied()
    ss: SampleSizePlan | None = results.sample_size
    items: list[dict[str, str]] = []
    table = None
    if ss is not None:
        t = Table("tab-sample-size", f"Sample size per confirmatory endpoint for {ss.power:.0%} power at "
                                     f"{ss.sided}-sided alpha {ss.alpha:g} (`study plan`)",
                  ["Endpoint", "Method", "Units analysed", "Patients", "Images", "Power"])
        for e in ss.endpoints:
            if e.readers_cases:
                units = "readers x cases: " + _grid([(g.readers, g.cases) for g in e.readers_cases
                                                     if g.readers in (3, 4, 5, 6, 8, 10)])
            elif e.n_analysed is not None:
                units = f"{fmt_int(e.n_analysed)} {e.n_analysed_unit or ''}".strip()
            else:
                units = f"not planned: {e.reason}" if e.reason else F.DASH
            t.add([f"{e.id} ({e.role})", e.method or F.DASH, units, fmt_int(e.patients), fmt_int(e.images),
                   fmt(e.achieved_power, 3) if e.achieved_power is not None else F.DASH])
        t.note(f"Images per patient {ss.images_per_patient:g}, intra-patient correlation "
               f"{ss.intra_patient_correlation:g} (design effect 1 + (m - 1) rho)"
               + (f"; variance components and anticipated values from the pilot {ss.pilot}." if ss.pilot else "."))
        table = t.to_dict()
        items.append({"text": ss.statement, "source": "computed by `study plan` from the analysis plan"})
    if "sample_size" in info or ss is None:
        items.append(info_text(info, "sample_size", "No sample-size calculation was recorded."))
    return {"table": table, "items": items}
