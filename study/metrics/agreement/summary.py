"""Every statistic of one confusion table: a single rater's, or a reader group's pooled readings.

A single rater (:func:`rater_agreement`): proportions with Wilson score (or Clopper-Pearson)
intervals (``statsmodels`` ``proportion_confint``), kappas with the Wald interval on the ASE
of Fleiss, Cohen & Everitt (1969), each with the patient-bootstrap interval of the same
statistic as ``bootstrap``; F1 and macro F1 with the bootstrap as their only interval.
Pooled readings of several readers (:func:`group_agreement`): the patient bootstrap is the main
interval of every statistic, since one case's readings by several readers are not independent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from study.estimate import Estimate
from study.metrics.agreement.design import Intervals
from study.metrics.agreement.stats import KAPPA_WEIGHTS, table_stats
from study.metrics.intervals import BinomialMethod, binomial_ci, cohen_kappa, undefined
from study.results.agreement import (
    BootstrapInterval,
    BootstrappedEstimate,
    ConfusionAxes,
    GroupAgreement,
    RaterAgreement,
    RaterKind,
    Spread,
    SpreadByMetric,
)

Arrays = Mapping[str, np.ndarray]

_MACRO_F1 = "mean one-versus-rest F1 over the levels used by the reference or the rater"
_ERRORS = (("downgrade", "rater grade below the reference"), ("upgrade", "rater grade above the reference"),
           ("cross_grade", "two or more grades from the reference"))


def with_bootstrap(est: Estimate, boot: BootstrapInterval) -> BootstrappedEstimate:
    """``est`` with the patient-bootstrap interval ``boot`` of the same statistic."""
    return BootstrappedEstimate(**est.model_dump(), bootstrap=boot)


class _Rules:
    """How a table's proportions and kappas get their intervals (analytic or bootstrap)."""

    def __init__(self, iv: Intervals, n: int, prop: Callable[..., Estimate], kappa: Callable[..., Estimate]) -> None:
        self.iv, self.n, self.prop, self.kappa = iv, n, prop, kappa

    def boot_or_undefined(self, point: float | np.floating, samples: np.ndarray, reason: str) -> Estimate:
        """Bootstrap interval of a statistic that may be undefined on the observed table."""
        return self.iv.boot(point, samples) if np.isfinite(point) else undefined(self.iv.boot_method, reason)


def _analytic(iv: Intervals, t: np.ndarray) -> _Rules:
    binomial: BinomialMethod = "clopper_pearson" if iv.binomial == "clopper_pearson" else "wilson"

    def prop(k: int, m: int, point: float, samples: np.ndarray, reason: str,
             definition: str | None = None) -> BootstrappedEstimate:
        e = binomial_ci(k, m, confidence=iv.confidence, method=binomial, reason_if_empty=reason)
        if definition is not None:
            e = e.with_fields(definition=definition)
        return with_bootstrap(e, iv.boot_sub(point if m else None, samples))

    def kappa(name: str, point: float, samples: np.ndarray) -> BootstrappedEstimate:
        return with_bootstrap(cohen_kappa(t, weights=KAPPA_WEIGHTS[name], confidence=iv.confidence),
                              iv.boot_sub(point, samples))

    return _Rules(iv, int(t.sum()), prop, kappa)


def _pooled(iv: Intervals, t: np.ndarray) -> _Rules:
    n = int(t.sum())

    def prop(k: int, m: int, point: float, samples: np.ndarray, reason: str,
             definition: str | None = None) -> Estimate:
        if m == 0:
            e = undefined(iv.boot_method, reason, k=int(k), n=int(m))
        else:
            e = iv.boot(point, samples).with_fields(k=int(k), n=int(m))
        return e if definition is None else e.with_fields(definition=definition)

    def kappa(name: str, point: float, samples: np.ndarray) -> Estimate:
        e = iv.boot(point, samples)
        return e if np.isfinite(point) else undefined(
            e.method, "no cases" if n == 0 else "chance agreement is 1: kappa is undefined")

    return _Rules(iv, n, prop, kappa)


def _table_fields(rules: _Rules, levels: list[str], table: np.ndarray, boot: Arrays) -> dict[str, Any]:
    """The fields of :class:`~study.results.agreement.AgreementStats` for one table."""
    t = np.asarray(table, dtype=np.int64)
    n = rules.n
    obs = table_stats(t)
    tr = int(np.trace(t))
    per: dict[str, dict[str, Any]] = {}
    ref_n, rat_n, tp = t.sum(axis=1), t.sum(axis=0), np.diag(t)
    for j, lv in enumerate(levels):
        tn = n - ref_n[j] - rat_n[j] + tp[j]
        per[lv] = {
            "n_reference": int(ref_n[j]), "n_rated": int(rat_n[j]),
            "sensitivity": rules.prop(tp[j], ref_n[j], obs["sensitivity"][j], boot["sensitivity"][:, j],
                                   f"no reference case of grade {lv}"),
            "specificity": rules.prop(tn, n - ref_n[j], obs["specificity"][j], boot["specificity"][:, j],
                                   f"every reference case is of grade {lv}" if n else "no cases"),
            "ppv": rules.prop(tp[j], rat_n[j], obs["ppv"][j], boot["ppv"][:, j], f"the rater never gave grade {lv}"),
            "npv": rules.prop(tn, n - rat_n[j], obs["npv"][j], boot["npv"][:, j],
                           f"the rater gave grade {lv} to every case" if n else "no cases"),
            "f1": rules.boot_or_undefined(obs["f1"][j], boot["f1"][:, j],
                                       f"grade {lv} used by neither the reference nor the rater")}
    k_idx = np.arange(len(levels))
    diff = k_idx[None, :] - k_idx[:, None]
    masks = {"downgrade": diff < 0, "upgrade": diff > 0, "cross_grade": np.abs(diff) >= 2}
    n_err = n - tr
    errors = {name: rules.prop(int(t[masks[name]].sum()), n_err, obs[name], boot[name], "no errors",
                               f"share of errors with the {what}") for name, what in _ERRORS}
    return {
        "confusion_matrix": t.tolist(),
        "confusion_matrix_axes": ConfusionAxes(rows="reference", columns="rater", labels=levels),
        "accuracy": rules.prop(tr, n, obs["accuracy"], boot["accuracy"], "no cases"),
        "kappa": rules.kappa("kappa", obs["kappa"], boot["kappa"]),
        "kappa_linear": rules.kappa("kappa_linear", obs["kappa_linear"], boot["kappa_linear"]),
        "kappa_quadratic": rules.kappa("kappa_quadratic", obs["kappa_quadratic"], boot["kappa_quadratic"]),
        "per_grade": per,
        "macro_f1": rules.boot_or_undefined(float(obs["macro_f1"]), boot["macro_f1"], "no cases").with_fields(
            definition=_MACRO_F1),
        "errors": {"n_errors": n_err, **errors}}


def rater_agreement(iv: Intervals, levels: list[str], table: np.ndarray, boot: Arrays, *, kind: RaterKind,
                    group: str | None, n_missing: int, n_patients: int) -> RaterAgreement:
    """A single rater's table: analytic main intervals, each with its patient-bootstrap ``bootstrap``.

    ``boot``: the bootstrap replicates of every :func:`~study.metrics.agreement.stats.table_stats`
    statistic of this table (arrays over B).
    """
    t = np.asarray(table)
    return RaterAgreement(**_table_fields(_analytic(iv, t), levels, t, boot), kind=kind, group=group,
                          n_cases=int(t.sum()), n_missing=n_missing, n_patients=n_patients)


def group_agreement(iv: Intervals, levels: list[str], table: np.ndarray, boot: Arrays, *, n_cases: int,
                    readers: list[str], spread: SpreadByMetric, note: str) -> GroupAgreement:
    """Pooled readings of several readers: the patient bootstrap is every statistic's interval."""
    t = np.asarray(table)
    return GroupAgreement(**_table_fields(_pooled(iv, t), levels, t, boot), n_readings=int(t.sum()),
                          n_cases=n_cases, readers=readers, spread=spread, note=note)


def reader_spread(raters: Mapping[str, RaterAgreement]) -> SpreadByMetric:
    """Minimum, median and maximum of each single-reader statistic over the readers ``raters``."""
    out = {}
    for m in SpreadByMetric.model_fields:
        vals = {r: getattr(v, m).estimate for r, v in raters.items()}
        ok = [x for x in vals.values() if x is not None]
        out[m] = Spread(min=min(ok) if ok else None, median=float(np.median(ok)) if ok else None,
                        max=max(ok) if ok else None, n_readers=len(ok), by_reader=vals)
    return SpreadByMetric(**out)
