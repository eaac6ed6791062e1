"""Page one: the lock of the analysis plan and the decision on each confirmatory endpoint.

Everything here is read from ``results.analysis_plan`` (:class:`~study.results.decisions.AnalysisPlanResults`,
written by the ``decide`` step): the lock statement, each primary endpoint with its success
criterion, estimate with interval and MET / NOT MET / NOT ESTIMABLE, then the secondary
endpoints with their multiplicity-adjusted p-values. Exploratory endpoints are listed in
the body (:func:`endpoints_context`), labelled exploratory, never on page one.
"""

from __future__ import annotations

from typing import Any

from study.report import format as F
from study.report.context.common import unavailable
from study.report.format import Table, fmt_p
from study.results.decisions import AnalysisPlanResults, EndpointDecision, LockStatus

__all__ = ["DECISION_LABELS", "decision_context", "endpoints_context", "lock_context"]

#: decision -> the word page one prints
DECISION_LABELS = {"met": "MET", "not met": "NOT MET", "not estimable": "NOT ESTIMABLE", "exploratory": "exploratory"}

NO_PLAN = ("No analysis plan was pre-specified in the protocol (no analysis_plan block): no endpoint was declared "
           "primary, no success criterion was fixed in advance, and this report makes no decision. The results "
           "below are estimates with confidence intervals only.")
NOT_DECIDED = ("results.json holds no analysis_plan block (it was written before the decide step existed): whether "
               "an analysis plan was pre-specified is not recorded, and this report makes no decision.")


def _level(alpha1: float) -> str:
    return f"{100 * (1 - 2 * alpha1):g}% CI"


def _estimate_text(d: EndpointDecision, t: Table) -> str:
    e = d.estimate
    if e.estimate is None:
        return "n/a"
    return t.ci(e)


def _whose(d: EndpointDecision) -> str:
    """Whose performance the endpoint is: the model, or, for aided versus unaided reading, the readers
    aided by it."""
    if d.source.startswith("mrmc.ustat.aided_vs_unaided"):
        return f", readers aided by {d.rater} versus unaided"
    return f" of {d.rater}"


def _endpoint_name(d: EndpointDecision) -> str:
    where = "" if d.population == "all included cases" else f", {d.population}"
    return f"{d.id}: {d.metric_description}{_whose(d)}{where} ({d.unit} as the unit)"


def lock_context(lock: LockStatus) -> dict[str, Any]:
    """The lock line and, for a deviation, the table of changed keys with their old and new values."""
    changes = None
    if lock.changes:
        t = Table("tab-lock-changes", "Changed after the lock: key, value at the lock and value in this run",
                  ["Changed key", "Locked value", "Value in this run"])
        for c in lock.changes:
            t.add([c.key, _value(c.old), _value(c.new)])
        changes = t.to_dict()
    label = {"locked": "LOCKED", "deviation": "DEVIATION", "not_locked": "NOT LOCKED"}[lock.state]
    return {"state": lock.state, "label": label, "statement": lock.statement, "changes": changes}


def _value(v: Any) -> str:
    if v is None:
        return "(absent)"
    if isinstance(v, (dict, list)):
        import json

        text = json.dumps(v, sort_keys=True)
        return text if len(text) <= 160 else text[:157] + "..."
    return str(v)


def decision_context(plan: AnalysisPlanResults | None) -> dict[str, Any]:
    """Page one: the lock, the overall primary decision, the primary and the secondary endpoints.

    Parameters
    ----------
    plan : ``results.analysis_plan``; ``None`` in files written before the decide step.

    Returns
    -------
    dict
        ``planned`` False with ``statement`` when the protocol has no plan; else ``lock``,
        ``overall`` (label and sentence), ``primary`` (table: endpoint, criterion, estimate
        with interval, decision), ``primary_items`` (the same per endpoint, with the reason),
        ``secondary`` (table with raw and adjusted p) and ``multiplicity``.
    """
    if plan is None:
        return {"planned": False, "statement": NOT_DECIDED, "lock": None}
    lock = lock_context(plan.lock)
    if not plan.planned:
        return {"planned": False, "statement": NO_PLAN, "lock": lock}
    primaries = [d for d in plan.endpoints if d.role == "primary"]
    secondaries = [d for d in plan.endpoints if d.role == "secondary"]
    n_exploratory = sum(1 for d in plan.endpoints if d.role == "exploratory")
    alpha1 = primaries[0].alpha_one_sided if primaries else (plan.alpha or 0.05) / 2
    level = _level(alpha1)

    pt = Table("tab-decision-primary", "Primary endpoints: pre-specified success criterion and decision",
               ["Endpoint", "Success criterion", f"Estimate ({level})", "Decision"])
    items = []
    for d in primaries:
        est = _estimate_text(d, pt)
        label = DECISION_LABELS[d.decision]
        pt.add([_endpoint_name(d), d.criterion, est, label])
        items.append({"id": d.id, "label": label, "decision": d.decision, "estimate": F.fmt_ci(d.estimate),
                      "criterion": d.criterion, "reason": d.reason, "text": d.decision_text})
        if d.decision == "not estimable" and d.reason:
            pt.note(f"{d.id}: not estimable: {d.reason}.")
        elif d.reason and d.decision != "met":  # e.g. not reached in a fixed sequence
            pt.note(f"{d.id}: {d.reason}.")
    st = Table("tab-decision-secondary",
               "Secondary endpoints, tested under the multiplicity procedure: adjusted p-value and conclusion",
               ["Endpoint", "Success criterion", f"Estimate ({level})", "p (one-sided)", "Adjusted p",
                "Conclusion"])
    for d in secondaries:
        conclusion = DECISION_LABELS[d.decision]
        if d.reason and d.decision != "met":
            st.note(f"{d.id}: {d.reason}.")
        st.add([_endpoint_name(d), d.criterion, _estimate_text(d, st),
                fmt_p(d.p_value), fmt_p(d.p_adjusted), conclusion])
    overall_label = DECISION_LABELS[plan.primary_decision] if plan.primary_decision else F.DASH
    return {
        "planned": True,
        "lock": lock,
        "overall": {"label": overall_label, "text": plan.primary_decision_text or ""},
        "alpha": f"{plan.alpha:g}" if plan.alpha is not None else F.DASH,
        "sided": plan.sided or F.DASH,
        "alpha_one_sided": f"{alpha1:g}",
        "multiplicity": plan.multiplicity or "not recorded",
        "primary": pt.to_dict() if pt.rows else None,
        "primary_items": items,
        "secondary": st.to_dict() if st.rows else None,
        "n_exploratory": n_exploratory,
    }


def endpoints_context(plan: AnalysisPlanResults | None) -> dict[str, Any]:
    """The body's table of every endpoint of the plan: test, raw and adjusted p, decision or "exploratory"."""
    if plan is None or not plan.planned:
        return unavailable("No analysis plan was pre-specified: there are no planned endpoints to report."
                           if plan is not None else NOT_DECIDED)
    t = Table("tab-endpoints", "Every endpoint of the analysis plan: role, test, p-values and decision "
                               "(exploratory endpoints: no multiplicity control and no decision)",
              ["Endpoint", "Role", "Estimate (CI)", "Test statistic", "p (one-sided)", "Adjusted p", "Decision"])
    for d in plan.endpoints:
        stat = F.DASH if d.statistic is None else (
            f"{int(d.statistic) if float(d.statistic).is_integer() else F.fmt(d.statistic, 3)} "
            f"({d.statistic_name or 'statistic'})")
        t.add([f"{d.id}: {d.metric_description}{_whose(d)}", "exploratory" if d.role == "exploratory" else d.role,
               _estimate_text(d, t), stat, fmt_p(d.p_value), fmt_p(d.p_adjusted), DECISION_LABELS[d.decision]])
        if d.reason:
            t.note(f"{d.id}: {d.reason}.")
    exploratory = [d for d in plan.endpoints if d.role == "exploratory"]
    return {"available": True, "table": t.to_dict(), "n_exploratory": len(exploratory),
            "exploratory_ids": ", ".join(d.id for d in exploratory)}
