"""Select and order what the report shows from ``results.json``: classes, levels, raters, rows.

No formatting here (``study.report.format``) and no computing: only picking and ordering.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from study.report.format import ANY_LESION, GROUP_ORDER
from study.results.agreement import (
    AgreementResult,
    BootstrappedEstimate,
    GroupAgreement,
    RaterAgreement,
    RaterKind,
)


# ----------------------------------------------------------------------------- orders
def protocol_settings(results: Mapping) -> dict:
    st = results.get("study") or {}
    return st.get("protocol_settings") or (st.get("protocol") or {}).get("content") or {}


def class_order(results: Mapping) -> list[str]:
    ps = protocol_settings(results)
    if ps.get("classes"):
        return list(ps["classes"])
    seen: dict[str, None] = {}
    for det in (results.get("detection") or {}).values():
        for c in (det or {}).get("classes") or {}:
            seen[c] = None
    return list(seen)


def level_order(results: Mapping) -> list[str]:
    ag = results.get("agreement") or {}
    if ag.get("levels"):
        return list(ag["levels"])
    return list((protocol_settings(results).get("grading") or {}).get("levels") or [])


def _group_key(g: str | None) -> tuple:
    g = (g or "").lower()
    return (GROUP_ORDER.index(g) if g in GROUP_ORDER else len(GROUP_ORDER), g)


def raters_in_order(raters: Mapping[str, RaterAgreement]) -> list[tuple[str, RaterAgreement]]:
    """Models first (by id), then readers by group (junior ... expert) and id."""
    models = sorted(((rid, r) for rid, r in raters.items() if r.kind == "model"), key=lambda x: x[0])
    readers = sorted(((rid, r) for rid, r in raters.items() if r.kind != "model"),
                     key=lambda x: (_group_key(x[1].group), x[0]))
    return models + readers


def groups_in_order(groups: Mapping[str, GroupAgreement]) -> list[tuple[str, GroupAgreement]]:
    """Reader groups from junior to expert (other names after, alphabetically)."""
    return sorted(groups.items(), key=lambda x: _group_key(x[0]))


def detection_classes(det: Mapping, order: list[str] | None = None) -> list[tuple[str, dict]]:
    classes = det.get("classes") or {}
    names = [c for c in (order or []) if c in classes] + sorted(c for c in classes if c not in (order or []))
    out = [(c, classes[c]) for c in names]
    if det.get("any_lesion") and len(names) != 1:
        out.append((ANY_LESION, det["any_lesion"]))
    return out


def _thresholds(cnt: Mapping) -> list[str]:
    return sorted((cnt.get("thresholds") or {}).keys(), key=lambda t: float(t))


def count_series(cnt: Mapping) -> list[dict]:
    """Per score threshold: reference and predicted count per image, fitted line, Bland-Altman limits.

    Reads ``points.{true, predicted.<t>}`` (``study.metrics.counting``), the least-squares line
    ``thresholds.<t>.lines.all.{slope, intercept, r}`` and ``thresholds.<t>.bland_altman.{bias,
    loa_low, loa_high}``.
    """
    pts = cnt.get("points") or {}
    out = []
    for t in _thresholds(cnt):
        pr = (pts.get("predicted") or {}).get(t)
        if pr is None or not pts.get("true"):
            continue
        th = (cnt.get("thresholds") or {}).get(t) or {}
        out.append({"threshold": t, "true": [float(x) for x in pts["true"]], "pred": [float(x) for x in pr],
                    "fit": (th.get("lines") or {}).get("all"), "bland_altman": th.get("bland_altman")})
    return out


@dataclass(frozen=True)
class SubgroupRow:
    """One rater on the cases of one subgroup value: accuracy and quadratic kappa."""

    value: str
    rater: str
    kind: RaterKind
    n: int
    accuracy: BootstrappedEstimate
    kappa: BootstrappedEstimate


def subgroup_rows(agreement: AgreementResult) -> dict[str, list[SubgroupRow]]:
    """Per subgroup column (sorted), its values (in baseline order) and raters (in report order)."""
    from study.baseline import _sort_key

    order = [rid for rid, _ in raters_in_order(agreement.raters)]
    out: dict[str, list[SubgroupRow]] = {}
    for col, by_value in sorted(agreement.subgroups.items()):
        rows = []
        for val in sorted(by_value, key=_sort_key):
            per_rater = by_value[val]
            for rid in sorted(per_rater, key=lambda r: (order.index(r) if r in order else len(order), r)):
                d = per_rater[rid]
                rows.append(SubgroupRow(value=val, rater=rid, kind=d.kind, n=d.n_cases, accuracy=d.accuracy,
                                        kappa=d.kappa_quadratic))
        out[col] = rows
    return out


def mrmc_models(mrmc: Any) -> dict[str, dict]:
    """``{model_id: {design, analysis, roc}}`` from the mrmc result (empty when not assessed)."""
    if not isinstance(mrmc, Mapping) or mrmc.get("assessed") is False:
        return {}
    if mrmc.get("models"):
        return dict(sorted(mrmc["models"].items()))
    if mrmc.get("method"):  # a single analysis at the top level
        return {"": {"analysis": mrmc, "roc": mrmc.get("roc") or {}}}
    return {}


def mrmc_rocs(mrmc: Any) -> dict[str, dict]:
    return {m: v.get("roc") or {} for m, v in mrmc_models(mrmc).items() if v.get("roc")}


def roc_points(v: Any) -> tuple[list[float], list[float]] | None:
    if isinstance(v, Mapping):
        fpr = v.get("fpr") or v.get("false_positive_rate")
        tpr = v.get("tpr") or v.get("sensitivity") or v.get("true_positive_rate")
        if fpr and tpr:
            return [float(x) for x in fpr], [float(x) for x in tpr]
        if v.get("points"):
            v = v["points"]
    if isinstance(v, list) and v and isinstance(v[0], Mapping):
        return [float(p.get("fpr")) for p in v], [float(p.get("tpr")) for p in v]
    return None


def flow_view(flow: Mapping) -> dict[str, Any]:
    """Normalise ``flow.json`` (``study.eligibility.build_flow``) into diagram stages
    ``[{label, n, excluded: {label, n, reasons: [(reason, n)]}}]``.

    Reads ``received``, ``not_decodable``, ``decodable``, ``failed_quality.{total, by_reason}``,
    ``passed_quality``, ``failed_eligibility.{total, by_criterion}``, ``included``,
    ``analysed.{models, readers}`` and ``missing_readings.by_reader``. Reasons are the first
    failed check of each excluded case, so they add up to the excluded number.
    """

    def num(x):
        return int(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None

    def reasons(d):
        items = [(str(k).replace("_", " "), int(v)) for k, v in (d or {}).items() if num(v)]
        return sorted(items, key=lambda kv: (-kv[1], kv[0]))

    stages: list[dict] = []
    received = num(flow.get("received"))
    if received is not None:
        st = {"label": "Images received", "n": received}
        if num(flow.get("not_decodable")):
            st["excluded"] = {"label": "Not decodable", "n": num(flow["not_decodable"]), "reasons": []}
        stages.append(st)
    fq = flow.get("failed_quality") or {}
    dec = num(flow.get("decodable"))
    if dec is None and received is not None:
        dec = received - (num(flow.get("not_decodable")) or 0)
    if dec is not None and (fq or flow.get("passed_quality") is not None):
        stages.append({"label": "Assessed for image quality", "n": dec,
                       "excluded": {"label": "Failed the quality gate", "n": num(fq.get("total")) or 0,
                                    "reasons": reasons(fq.get("by_reason"))}})
    fe = flow.get("failed_eligibility") or {}
    pq = num(flow.get("passed_quality"))
    if pq is not None:
        stages.append({"label": "Assessed for eligibility", "n": pq,
                       "excluded": {"label": "Not eligible", "n": num(fe.get("total")) or 0,
                                    "reasons": reasons(fe.get("by_criterion"))}})
    included = num(flow.get("included"))
    if included is not None:
        stages.append({"label": "Included (reference standard available)", "n": included})
    analysed = flow.get("analysed") or {}
    for m, n in sorted((analysed.get("models") or {}).items()):
        stages.append({"label": f"Analysed by model {m}", "n": num(n)})
    rd = {k: num(v) for k, v in (analysed.get("readers") or {}).items() if num(v) is not None}
    if rd:
        miss = ((flow.get("missing_readings") or {}).get("by_reader") or {})
        st = {"label": f"Graded by {len(rd)} readers ({min(rd.values())}-{max(rd.values())} cases each)",
              "n": max(rd.values())}
        items = [(str(k), int(v)) for k, v in sorted(miss.items()) if num(v)]
        if items:
            st["excluded"] = {"label": "Included cases not graded, per reader", "n": None, "reasons": items}
        stages.append(st)
    return {"stages": [s for s in stages if s.get("n") is not None], "check": flow.get("check")}


def pseudonyms(case_ids: Iterable[str]) -> dict[str, str]:
    """``case_id -> 'C-0001'``, numbered in the order of sha256(case_id): stable, reveals no order."""
    ids = sorted({str(c) for c in case_ids}, key=lambda c: (hashlib.sha256(c.encode("utf-8")).hexdigest(), c))
    width = max(4, len(str(len(ids))))
    return {c: f"C-{i + 1:0{width}d}" for i, c in enumerate(ids)}
