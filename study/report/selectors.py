"""Select and order what the report shows from ``results.json``: classes, levels, raters, rows.

No formatting here (``study.report.format``) and no computing: only picking and ordering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

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
def _group_key(g: str | None) -> tuple[int, str]:
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
    # not study.baseline: sorting subgroups must not import pandas
    from study.natural_order import natural_key as _sort_key

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
