"""Turn ``results.json`` into what the report template shows: formatted tables and texts.

Every number printed comes from ``results`` (nothing is computed here but formatting,
ordering, and the selection of rows); an interval is printed with its method (each table
lists, in a note, the methods of the intervals it shows). A section whose data is absent
says so, and why, in plain words.

Formatting is fixed so that the same results give the same report: proportions with three
decimals, intervals as ``0.812 (0.745-0.866)`` (``to`` instead of ``-`` when a bound is
negative), counts as integers. Case ids are never printed: the failure analysis uses
pseudonyms ``C-0001`` ... numbered in the order of the sha256 of the case ids.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

ANY_LESION = "any lesion"
DASH = "–"
GROUP_ORDER = ("junior", "general", "intermediate", "senior", "expert")


# ----------------------------------------------------------------------------- formatting
def is_estimate(x: Any) -> bool:
    return isinstance(x, Mapping) and "estimate" in x and "method" in x


def value(x: Any) -> float | None:
    """The point value of an estimate dict or a plain number (``None`` when absent/undefined)."""
    if is_estimate(x):
        x = x.get("estimate")
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, (int, float)):
        return float(x) if math.isfinite(float(x)) else None
    return None


def _num(x: float, nd: int) -> str:
    """``x`` with ``nd`` decimals, never ``-0.000``."""
    s = f"{x:.{nd}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def with_ci(d: Mapping, key: str) -> Any:
    """``d[key + '_ci']`` when the metric code recorded the interval apart from the point value
    (``ap`` + ``ap_ci``, ``max_recall`` + ``max_recall_ci``), else ``d[key]``."""
    ci = d.get(f"{key}_ci")
    return ci if is_estimate(ci) and ci.get("estimate") is not None else d.get(key)


def fmt(x: Any, nd: int = 3) -> str:
    """A number with ``nd`` decimals (integers as integers); ``–`` when absent."""
    if is_estimate(x):
        x = x.get("estimate")
    if x is None or isinstance(x, bool):
        return DASH
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return DASH
        return _num(x, nd)
    return str(x)


def fmt_int(x: Any) -> str:
    return DASH if x is None else str(int(x))


def fmt_ci(e: Any, nd: int = 3) -> str:
    """``0.812 (0.745-0.866)``; ``–`` when the estimate is undefined; point only without a CI."""
    if not is_estimate(e):
        return fmt(e, nd)
    est, lo, hi = e.get("estimate"), e.get("ci_low"), e.get("ci_high")
    if est is None:
        return "n/a"
    if lo is None or hi is None:
        return fmt(float(est), nd)
    a, b, c = _num(float(est), nd), _num(float(lo), nd), _num(float(hi), nd)
    sep = " to " if (b.startswith("-") or c.startswith("-")) else "-"
    return f"{a} ({b}{sep}{c})"


def fmt_pct(n: Any, pct: Any) -> str:
    if n is None:
        return DASH
    return f"{int(n)} ({pct:.1f}%)" if pct is not None else str(int(n))


def fmt_p(p: Any) -> str:
    v = value(p)
    if v is None:
        return DASH
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


_SUP = dict(zip("abcdefghijklmnoprstuvwxyz", "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ"))
_MARK = re.compile("\x00(\\d+)\x00")


def method_marker(i: int) -> str:
    """Superscript letter naming the ``i``-th interval method of a table (a, b, c, ...)."""
    letters = "abcdefghijklmnoprstuvwxyz"
    return _SUP[letters[i]] if i < len(letters) else f"[{i + 1}]"


class Table:
    """A table for the template: caption, header, rows of strings, notes (incl. interval methods).

    Every interval printed through :meth:`ci` is tied to its method: when a table uses more than
    one method, each interval carries a superscript letter and the note lists the letters.
    """

    def __init__(self, id: str, caption: str, columns: list[str], *, nd: int = 3):
        self.id, self.caption, self.columns, self.nd = id, caption, columns, nd
        self.rows: list[list[str]] = []
        self.notes: list[str] = []
        self._methods: dict[str, int] = {}

    def ci(self, e: Any, nd: int | None = None) -> str:
        text = fmt_ci(e, self.nd if nd is None else nd)
        if is_estimate(e) and e.get("method"):
            if e.get("estimate") is None and e.get("reason"):
                self.note(f"n/a: {e['reason']}")
            if e.get("estimate") is not None or e.get("reason"):
                i = self._methods.setdefault(str(e["method"]), len(self._methods))
                if e.get("ci_low") is not None or e.get("reason"):
                    text += f"\x00{i}\x00"
        return text

    def add(self, row: Iterable[Any]) -> None:
        self.rows.append([c if isinstance(c, str) else fmt(c, self.nd) for c in row])

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def to_dict(self) -> dict[str, Any]:
        multi = len(self._methods) > 1

        def mark(text: str) -> str:
            return _MARK.sub((lambda m: " " + method_marker(int(m.group(1)))) if multi else "", text)

        notes = [mark(n) for n in self.notes]
        if self._methods:
            if multi:
                notes.append("Intervals: " + "; ".join(f"{method_marker(i)} {m}" for m, i in self._methods.items()) + ".")
            else:
                notes.append("Intervals: " + next(iter(self._methods)) + ".")
        return {"id": self.id, "caption": mark(self.caption), "columns": self.columns,
                "rows": [[mark(c) for c in r] for r in self.rows], "notes": notes}


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
