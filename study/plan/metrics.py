"""The registry of metrics an endpoint of the analysis plan may name.

Each entry says what the metric is, which results block its estimate lives in (the
``source`` path into ``results.json``; ``<model>``, ``<class>`` and ``<threshold>`` are
filled from the endpoint), whether higher values are better, which comparators and
hypotheses fit it, and how :mod:`study.plan.decide` tests it:

- ``proportion``: a case-level proportion computed from the reference and the model's (or
  the readers') grades (exact Clopper-Pearson test against a goal; clustered paired
  difference against readers or another model);
- ``kappa``: Cohen's kappa of the model against the reference (Wald test with the
  asymptotic SE of Fleiss, Cohen & Everitt 1969, or a patient-bootstrap SE);
- ``reported``: an estimate the detection or counting step already computed, with its
  interval (Wald test with the SE of that interval);
- ``mrmc``: the MRMC figure-of-merit difference model minus readers' average (Hillis 2007
  t test with its Satterthwaite degrees of freedom); with the comparator ``modality``, the
  readers' reader-averaged AUC in one reading modality minus the other (aided - unaided) from
  the U-statistic analysis on every included case with readings (``mrmc.ustat``; t test on
  iMRMC's BDG degrees of freedom, Gallas 2006, 2009).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["proportion", "kappa", "reported", "mrmc"]
Direction = Literal["higher", "lower", "none"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the registry."""

    id: str
    description: str
    kind: Kind
    source: str
    direction: Direction
    comparators: tuple[str, ...]
    needs_cut: bool = False
    needs_class: bool = False
    bounded: bool = True


_GRADES = ("goal", "readers", "model")
METRICS: dict[str, MetricSpec] = {m.id: m for m in (
    MetricSpec("grading_accuracy", "grading accuracy (share of cases graded as the reference)", "proportion",
               "agreement.raters.<model>.accuracy", "higher", _GRADES),
    MetricSpec("grade_sensitivity", "sensitivity for the reference grade <cut> or worse", "proportion",
               "decisions (binary cut of the grades; agreement.raters.<model>.per_grade is one grade versus the rest)", "higher", _GRADES, needs_cut=True),
    MetricSpec("grade_specificity", "specificity for the reference grade <cut> or worse", "proportion",
               "decisions (binary cut of the grades; agreement.raters.<model>.per_grade is one grade versus the rest)", "higher", _GRADES, needs_cut=True),
    MetricSpec("kappa_unweighted", "Cohen's kappa (unweighted) against the reference grade", "kappa",
               "agreement.raters.<model>.kappa", "higher", ("goal",)),
    MetricSpec("kappa_linear", "Cohen's kappa (linear weights) against the reference grade", "kappa",
               "agreement.raters.<model>.kappa_linear", "higher", ("goal",)),
    MetricSpec("kappa_quadratic", "Cohen's kappa (quadratic weights) against the reference grade", "kappa",
               "agreement.raters.<model>.kappa_quadratic", "higher", ("goal",)),
    MetricSpec("lesion_recall", "lesion recall at the operating threshold (<class>)", "reported",
               "detection.<model>.classes.<class>.recall", "higher", ("goal",), needs_class=True),
    MetricSpec("lesion_precision", "lesion precision at the operating threshold (<class>)", "reported",
               "detection.<model>.classes.<class>.precision", "higher", ("goal",), needs_class=True),
    MetricSpec("lesion_f1", "lesion F1 at the operating threshold (<class>)", "reported",
               "detection.<model>.classes.<class>.f1", "higher", ("goal",), needs_class=True),
    MetricSpec("ap50", "average precision at IoU 0.5 (<class>)", "reported",
               "detection.<model>.classes.<class>.ap_ci", "higher", ("goal",), needs_class=True),
    MetricSpec("count_mae", "mean absolute counting error at the operating threshold (lesions per case)",
               "reported", "counting.<model>.thresholds.<threshold>.overall.mae", "lower", ("goal",), bounded=False),
    MetricSpec("count_bias", "mean counting bias, predicted - reference, at the operating threshold",
               "reported", "counting.<model>.thresholds.<threshold>.overall.mean_bias", "none", ("goal",),
               bounded=False),
    MetricSpec("mrmc_fom_difference", "MRMC figure of merit (AUC), model minus the readers' average", "mrmc",
               "mrmc.models.<model>.analysis.ai_vs_readers[0].analyses.<analysis>", "higher", ("readers", "modality"),
               bounded=False),
)}


def metric_names() -> list[str]:
    """The ids of the registry, sorted."""
    return sorted(METRICS)
