"""Inclusion criteria, the case-level decision, and the flow of cases (STARD 2015 item 19).

Criteria are data (``protocol.inclusion``: :class:`study.protocol.Criterion`), never code:
each names a manifest column and the checks that apply to its value (``required``,
``min`` / ``max`` inclusive, ``allowed``, ``excluded``). They are applied in the declared
order; a case keeps *every* criterion it fails, and the flow counts it under the first.

A case goes through the steps in this order, and is counted in the flow at the first step
it fails: received -> decodable -> passes the image-quality gate -> meets the inclusion
criteria -> included (analysed by every model; by each reader who read it).

``flow.json`` keys (all counts are numbers of cases)
----------------------------------------------------
- ``received``: rows of the manifest.
- ``not_decodable``: image missing, empty, not an image or truncated.
- ``decodable``: ``received - not_decodable``.
- ``failed_quality``: ``{"total", "by_reason": {reason: n by first failed reason},
  "any_reason": {reason: n failing it at all}}``; reasons in :data:`study.quality.REASONS` order.
- ``passed_quality``: ``decodable - failed_quality.total``.
- ``failed_eligibility``: ``{"total", "by_criterion": {id: n by first failed criterion},
  "any_criterion": {id: n failing it among cases that passed quality}}``, in protocol order.
- ``included``: cases analysed.
- ``criteria``: ``[{"id", "field", "description"}]`` in protocol order.
- ``analysed``: ``{"models": {model_id: n}, "readers": {reader_id: n included cases read}}``.
- ``missing_readings``: ``{"by_reader": {reader_id: n included cases not read},
  "cases_without_any_reading": n, "readings_of_excluded_cases": n}`` (``null`` without readings).
- ``reader_groups``: ``{reader_id: group}``.
- ``patients``: ``{"received", "decodable", "passed_quality", "included",
  "images_per_included_patient_min", "..._max", "..._mean"}``: patients with at least one
  image at each stage (``null`` when the cases table has no ``patient_id``).
- ``check``: ``received == not_decodable + failed_quality.total + failed_eligibility.total + included``
  (always true; kept so a reader can see the boxes add up).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import pandas as pd

from study.protocol import Criterion
from study.results.flow import (
    Analysed,
    CriterionRecord,
    ExclusionChecks,
    FailedEligibility,
    FailedQuality,
    Flow,
    MissingReadings,
    PatientCounts,
)


def _missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    try:
        if pd.isna(v):
            return True
    except (TypeError, ValueError):
        pass
    return isinstance(v, str) and v.strip() == ""


def _as_number(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _same(v: Any, option: Any) -> bool:
    if isinstance(option, (int, float)) and not isinstance(option, bool):
        x = _as_number(v)
        return x is not None and x == float(option)
    return str(v).strip() == str(option)


def evaluate_criterion(value: Any, criterion: Criterion) -> bool:
    """Whether one value meets one criterion (True = meets it).

    A missing value (blank, NaN, None) fails a ``required`` criterion and passes one that
    is not required (its other checks are then not applied: nothing to check).
    """
    c = criterion
    if _missing(value):
        return not c.required
    if c.min is not None or c.max is not None:
        x = _as_number(value)
        if x is None:
            return False
        if c.min is not None and x < c.min:
            return False
        if c.max is not None and x > c.max:
            return False
    if c.allowed is not None and not any(_same(value, a) for a in c.allowed):
        return False
    if c.excluded is not None and any(_same(value, e) for e in c.excluded):
        return False
    return True


def apply_criteria(cases: pd.DataFrame, criteria: Sequence[Criterion]) -> pd.DataFrame:
    """Apply inclusion criteria, in order, to every case.

    Parameters
    ----------
    cases : manifest / cases table with ``case_id`` and the criteria's columns (a column the
        table lacks counts as missing for every case).
    criteria : the protocol's ``inclusion`` list.

    Returns
    -------
    DataFrame
        ``case_id``, ``eligible`` (bool), ``failed`` (list of criterion ids, in protocol
        order), ``first_failed`` ("" when eligible).
    """
    n = len(cases)
    failed: list[list[str]] = [[] for _ in range(n)]
    for c in criteria:
        values = cases[c.field].tolist() if c.field in cases.columns else [None] * n
        for i, v in enumerate(values):
            if not evaluate_criterion(v, c):
                failed[i].append(c.id)
    return pd.DataFrame({
        "case_id": cases["case_id"].astype(str).tolist(),
        "eligible": [not f for f in failed],
        "failed": failed,
        "first_failed": [f[0] if f else "" for f in failed],
    })


def _reader_tables(readings: pd.DataFrame | None) -> tuple[dict[str, set[str]], dict[str, str]]:
    if readings is None or len(readings) == 0:
        return {}, {}
    read: dict[str, set[str]] = {}
    groups: dict[str, str] = {}
    for rid, cid, grp in zip(readings["reader_id"].astype(str), readings["case_id"].astype(str),
                             readings["reader_group"].astype(str) if "reader_group" in readings else [""] * len(readings)):
        read.setdefault(rid, set()).add(cid)
        groups.setdefault(rid, grp)
    return read, groups


def build_flow(cases: pd.DataFrame, quality: pd.DataFrame, criteria_result: pd.DataFrame, *,
               criteria: Sequence[Criterion] = (), readings: pd.DataFrame | None = None,
               models: Iterable[str] = ()) -> Flow:
    """The flow of cases (STARD 2015 item 19); keys in the module docstring and :class:`study.results.flow.Flow`.

    Parameters
    ----------
    cases : the cases table (``case_id`` [, ``decodable``]).
    quality : :func:`study.quality.assess_cases` output.
    criteria_result : :func:`apply_criteria` output.
    criteria : the protocol's criteria (for their order and descriptions).
    readings : readings table (``reader_id``, ``case_id`` [, ``reader_group``]) or None.
    models : model ids; every included case is analysed by every model.
    """
    from study.quality import REASONS

    table = decision_table(cases, quality, criteria_result)
    n = len(table)
    nd = int((~table["decodable"]).sum())
    dec = table[table["decodable"]]
    fq = dec[~dec["quality_pass"]]
    by_reason = {r: int((fq["quality_first_reason"] == r).sum()) for r in REASONS if r != "not_decodable"}
    any_reason = {r: int(sum(r in rs for rs in fq["quality_reasons"])) for r in by_reason}
    pq = dec[dec["quality_pass"]]
    crit_ids = [c.id for c in criteria] or sorted({f for fs in table["criteria_failed"] for f in fs})
    fe = pq[~pq["eligible"]]
    by_crit = {c: int((fe["criteria_first_failed"] == c).sum()) for c in crit_ids}
    any_crit = {c: int(sum(c in fs for fs in fe["criteria_failed"])) for c in crit_ids}
    inc = table[table["included"]]
    n_fq, n_fe, n_inc = int(len(fq)), int(len(fe)), int(len(inc))
    flow = Flow(
        received=n,
        not_decodable=nd,
        decodable=n - nd,
        failed_quality=FailedQuality(total=n_fq, by_reason=by_reason, any_reason=any_reason),
        passed_quality=int(len(pq)),
        failed_eligibility=FailedEligibility(total=n_fe, by_criterion=by_crit, any_criterion=any_crit),
        included=n_inc,
        criteria=[CriterionRecord(id=c.id, field=c.field, description=c.description) for c in criteria],
        analysed=Analysed(models={m: n_inc for m in models}, readers={}),
        missing_readings=None,
        reader_groups={},
        check=n == nd + n_fq + n_fe + n_inc,
        patients=patient_counts(cases, table),
        exclusion_checks=exclusion_checks(table),
    )
    return add_readers(flow, readings, included=inc["case_id"].astype(str))


def patient_counts(cases: pd.DataFrame, table: pd.DataFrame) -> PatientCounts | None:
    """Patients with at least one image at each stage of the flow (None without ``patient_id``).

    Parameters
    ----------
    cases : the cases table (``case_id``, ``patient_id``).
    table : :func:`decision_table` of the same cases.
    """
    if "patient_id" not in cases.columns:
        return None
    patient = cases.assign(case_id=cases["case_id"].astype(str)).set_index("case_id")["patient_id"].astype(str)
    pid = patient.reindex(table["case_id"].astype(str)).to_numpy()

    def distinct(mask: Any) -> int:
        return int(pd.Series(pid[mask]).nunique())

    inc = table["included"].to_numpy(bool)
    per = pd.Series(pid[inc]).value_counts()
    return PatientCounts(
        received=int(pd.Series(pid).nunique()),
        decodable=distinct(table["decodable"].to_numpy(bool)),
        passed_quality=distinct(table["quality_pass"].to_numpy(bool)),
        included=len(per),
        images_per_included_patient_min=int(per.min()) if len(per) else None,
        images_per_included_patient_max=int(per.max()) if len(per) else None,
        images_per_included_patient_mean=float(per.mean()) if len(per) else None)


#: the step of the flow at which a case leaves, by the kind of its first failed check
_STEP_OF = {"not_decodable": "decodable", "quality": "quality", "criterion": "eligibility"}


def exclusion_checks(table: pd.DataFrame) -> dict[str, ExclusionChecks]:
    """Every failed check of the excluded cases, per step of the flow (:class:`ExclusionChecks`).

    ``table`` is :func:`decision_table`'s: its ``reasons`` hold every check a case failed (the
    criteria are applied to every case, also those failing the quality gate), in flow order.
    A case is counted at the step of its first failed check, and there under each check it fails.
    """
    out: dict[str, ExclusionChecks] = {}
    for step in ("decodable", "quality", "eligibility"):
        mine = [rs for rs in table["reasons"] if rs and _STEP_OF[rs[0].split(":")[0]] == step]
        counts: dict[str, int] = {}
        for rs in mine:
            for r in dict.fromkeys(rs):
                counts[r] = counts.get(r, 0) + 1
        out[step] = ExclusionChecks(excluded=len(mine), by_check=counts,
                                    more_than_one=sum(len(set(rs)) > 1 for rs in mine))
    return out


def add_readers(flow: Flow, readings: pd.DataFrame | None, *, included: Iterable[str],
                all_readings: pd.DataFrame | None = None) -> Flow:
    """The flow with the readers' part filled in: ``analysed.readers``, ``missing_readings``, ``reader_groups``.

    Kept apart from the cases' part so the workflow's eligibility step does not depend on
    the readings (a changed reading must not re-run eligibility and prediction): the
    readings step adds this part to the flow eligibility wrote.

    Parameters
    ----------
    flow : a flow of :func:`build_flow` (its readers' part is replaced).
    readings : readings table (``reader_id``, ``case_id`` [, ``reader_group``]) or None (no readings file).
    included : ids of the included cases.
    all_readings : every reading (also aided and not-assessable ones), optional: a reader who
        has readings but none of ``readings`` (e.g. every case marked not assessable) is then
        listed with 0 analysed cases instead of silently missing (issue 18 item 1).
    """
    included = set(map(str, included))
    read, groups = _reader_tables(readings)
    if readings is not None and all_readings is not None:
        _, all_groups = _reader_tables(all_readings)
        for r, g in all_groups.items():
            read.setdefault(r, set())
            groups.setdefault(r, g)
    missing = None
    if readings is not None:
        any_read = set().union(*read.values()) if read else set()
        missing = MissingReadings(by_reader={r: len(included - cs) for r, cs in sorted(read.items())},
                                  cases_without_any_reading=len(included - any_read),
                                  readings_of_excluded_cases=int(sum(len(cs - included) for cs in read.values())),
                                  excluded_cases_read=len(any_read - included))
    analysed = Analysed(models=flow.analysed.models, readers={r: len(cs & included) for r, cs in sorted(read.items())})
    return flow.model_copy(update={"analysed": analysed, "missing_readings": missing,
                                   "reader_groups": {r: groups[r] for r in sorted(groups)}})


def decision_table(cases: pd.DataFrame, quality: pd.DataFrame, criteria_result: pd.DataFrame) -> pd.DataFrame:
    """One row per case: decodability, quality and criteria outcomes, and the final decision.

    Returns
    -------
    DataFrame
        ``case_id``, ``decodable``, ``quality_pass``, ``quality_first_reason``,
        ``quality_reasons`` (list), ``eligible``, ``criteria_failed`` (list),
        ``criteria_first_failed``, ``included`` (bool), ``first_reason`` ("" when included;
        ``not_decodable``, ``quality:<reason>`` or ``criterion:<id>``) and ``reasons``
        (every failed check, in flow order).
    """
    ids = cases["case_id"].astype(str).tolist()
    q = quality.assign(case_id=quality["case_id"].astype(str)).set_index("case_id")
    cr = criteria_result.assign(case_id=criteria_result["case_id"].astype(str)).set_index("case_id")
    missing = [c for c in ids if c not in q.index or c not in cr.index]
    if missing:
        raise ValueError(f"quality / criteria tables lack case(s) {missing[:5]}")
    q, cr = q.loc[ids], cr.loc[ids]
    dec = q["decodable"].astype(bool).to_numpy()
    if "decodable" in cases.columns:
        dec = dec & cases["decodable"].astype(bool).to_numpy()
    qpass = q["quality_pass"].astype(bool).to_numpy() & dec
    qreasons = [list(r) if d else ["not_decodable"] for r, d in zip(q["quality_reasons"], dec)]
    eligible = cr["eligible"].astype(bool).to_numpy()
    cfailed = [list(f) for f in cr["failed"]]
    reasons, first = [], []
    for d, qr, cf in zip(dec, qreasons, cfailed):
        rs = ["not_decodable"] if not d else [f"quality:{r}" for r in qr]
        rs += [f"criterion:{c}" for c in cf]
        reasons.append(rs)
        first.append(rs[0] if rs else "")
    return pd.DataFrame({
        "case_id": ids,
        "decodable": dec,
        "quality_pass": qpass,
        "quality_first_reason": [r[0] if r else "" for r in qreasons],
        "quality_reasons": qreasons,
        "eligible": eligible,
        "criteria_failed": cfailed,
        "criteria_first_failed": [f[0] if f else "" for f in cfailed],
        "included": [not r for r in reasons],
        "first_reason": first,
        "reasons": reasons,
    })


def decide_eligibility(cases: pd.DataFrame, quality: pd.DataFrame, *, criteria: Sequence[Criterion],
                       readings: pd.DataFrame | None = None, models: Iterable[str] = ()) -> tuple[pd.DataFrame, Flow]:
    """Apply the criteria and combine them with the quality gate: ``(decision table, flow)``.

    The table is :func:`decision_table`'s (``eligibility.parquet``); the flow is
    :func:`build_flow`'s (``flow.json``).
    """
    cr = apply_criteria(cases, criteria)
    table = decision_table(cases, quality, cr)
    flow = build_flow(cases, quality, cr, criteria=criteria, readings=readings, models=models)
    return table, flow
