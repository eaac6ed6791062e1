"""Select and order what the report shows from ``results.json``: classes, levels, raters, rows.

No formatting here (``study.report.format``) and no computing: only picking and ordering.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from study.report.format import ANY_LESION, GROUP_ORDER
from study.results.agreement import (
    AgreementResult,
    BootstrappedEstimate,
    GroupAgreement,
    RaterAgreement,
    RaterKind,
)
from study.results.base import NotAssessed
from study.results.counting import BlandAltman, CountingResult, LineFit
from study.results.detection import ClassDetection, DetectionResult
from study.results.mrmc import MRMCBlock, MRMCModelResult, RocCurve


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


def detection_classes(det: DetectionResult, order: list[str] | None = None) -> list[tuple[str, ClassDetection]]:
    """The classes of one model's detection block (``order`` first, then by name) and, unless
    only one class is evaluated, any lesion last."""
    names = [c for c in (order or []) if c in det.classes]
    names += sorted(c for c in det.classes if c not in names)
    out = [(c, det.classes[c]) for c in names]
    if len(names) != 1:
        out.append((ANY_LESION, det.any_lesion))
    return out


class CountSeries(NamedTuple):
    """One score threshold of the counting figures."""

    threshold: str
    true: list[float]
    pred: list[float]
    fit: LineFit
    bland_altman: BlandAltman


def count_series(cnt: CountingResult) -> list[CountSeries]:
    """Per score threshold: reference and predicted count per image, fitted line, Bland-Altman limits.

    Reads ``points.{true, predicted.<t>}`` (``study.metrics.counting``), the least-squares line
    ``thresholds.<t>.lines.all`` and ``thresholds.<t>.bland_altman``; none without cases.
    """
    if not cnt.points.true:
        return []
    return [CountSeries(t, list(cnt.points.true), list(cnt.points.predicted[t]), cnt.thresholds[t].line_all,
                        cnt.thresholds[t].bland_altman) for t in cnt.threshold_keys()]


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


def mrmc_models(mrmc: MRMCBlock | NotAssessed | None) -> dict[str, MRMCModelResult]:
    """The assessed models of the mrmc block, by model id (empty when the block is not assessed)."""
    if not isinstance(mrmc, MRMCBlock):
        return {}
    return {m: v for m, v in sorted(mrmc.models.items()) if isinstance(v, MRMCModelResult)}


def mrmc_rocs(mrmc: MRMCBlock | NotAssessed | None) -> dict[str, dict[str, RocCurve]]:
    """Each assessed model's empirical ROC curves (rater id -> curve), models with curves only."""
    return {m: v.roc for m, v in mrmc_models(mrmc).items() if v.roc}


def roc_points(curve: RocCurve) -> tuple[list[float], list[float]] | None:
    """The operating points ``(fpr, tpr)`` of a curve; ``None`` when it has none."""
    if not curve.fpr or not curve.tpr:
        return None
    return list(curve.fpr), list(curve.tpr)


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
