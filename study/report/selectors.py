"""Select and order what the report shows from ``results.json``: classes, levels, raters, rows.

No formatting here (``study.report.format``) and no computing: only picking and ordering.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from study.report.format import ANY_LESION, GROUP_ORDER, value


# ----------------------------------------------------------------------------- orders
def protocol_settings(results: Mapping) -> dict:
    st = results.get("study") or {}
    return st.get("protocol_settings") or {}


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


def raters_in_order(agreement: Mapping) -> list[tuple[str, dict]]:
    """Models first (by id), then readers by group (junior ... expert) and id."""
    raters = agreement.get("raters") or {}
    models = sorted((rid, r) for rid, r in raters.items() if r.get("kind") == "model")
    readers = sorted(((rid, r) for rid, r in raters.items() if r.get("kind") != "model"),
                     key=lambda x: (_group_key(x[1].get("group")), x[0]))
    return models + readers


def groups_in_order(agreement: Mapping) -> list[tuple[str, dict]]:
    return sorted((agreement.get("groups") or {}).items(), key=lambda x: _group_key(x[0]))


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


def subgroup_rows(agreement: Mapping) -> dict[str, list[dict]]:
    """``{column: [{value, rater, kind, n, estimate, ci_low, ci_high, method, kappa}]}`` in report order."""
    raters = dict(raters_in_order(agreement))
    order = list(raters)
    out: dict[str, list[dict]] = {}
    for col, by_value in sorted((agreement.get("subgroups") or {}).items()):
        rows = []
        from study.baseline import _sort_key

        for val in sorted(by_value, key=_sort_key):
            per_rater = by_value[val] or {}
            for rid in sorted(per_rater, key=lambda r: (order.index(r) if r in order else len(order), r)):
                d = per_rater[rid] or {}
                acc = d.get("accuracy") or {}
                rows.append({"value": val, "rater": rid, "kind": (raters.get(rid) or {}).get("kind", "reader"),
                             "n": d.get("n_cases"), "estimate": value(acc), "ci_low": acc.get("ci_low"),
                             "ci_high": acc.get("ci_high"), "method": acc.get("method"), "accuracy": acc,
                             "kappa": d.get("kappa_quadratic")})
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


def pseudonyms(case_ids: Iterable[str]) -> dict[str, str]:
    """``case_id -> 'C-0001'``, numbered in the order of sha256(case_id): stable, reveals no order."""
    ids = sorted({str(c) for c in case_ids}, key=lambda c: (hashlib.sha256(c.encode("utf-8")).hexdigest(), c))
    width = max(4, len(str(len(ids))))
    return {c: f"C-{i + 1:0{width}d}" for i, c in enumerate(ids)}
