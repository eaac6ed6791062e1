"""Severity-grade agreement: each rater (model or reader) against the reference standard,
reader groups, agreement between readers, model-versus-reader comparisons and subgroups.

Everything a reader study of acne grading reports (the smartphone study, Frontiers in
Medicine 2024; ACNE04, Wu et al. 2019): confusion matrices over *all* protocol levels,
accuracy, Cohen's kappa (unweighted, linear, quadratic) with the asymptotic SE of Fleiss,
Cohen & Everitt (1969), per-grade one-versus-rest sensitivity / specificity / PPV / NPV / F1,
macro F1, the direction of errors, Fleiss' kappa, Krippendorff's ordinal alpha, and paired
model-minus-reader differences. The result is the typed block
:class:`study.results.agreement.AgreementResult` (its models document every key).

Intervals
---------
- proportions (accuracy, sensitivity, specificity, PPV, NPV, error shares): Wilson score
  (or Clopper-Pearson) -- ``statsmodels.stats.proportion.proportion_confint``;
- kappas: Wald with the ASE (SAS PROC FREQ, statsmodels ``cohens_kappa``);
- every statistic of a single rater also carries a ``bootstrap`` interval: a percentile
  bootstrap that resamples *patients* (a patient may contribute several images), with the
  same replicates for every rater so that differences are paired;
- statistics that pool several readers (groups), F1, macro F1, Fleiss' kappa, Krippendorff's
  alpha and all model-minus-reader differences have the patient bootstrap as their main
  interval: readings of one case by several readers are not independent.

All bootstrapped statistics are functions of sums of per-case features (confusion-matrix
cells, rating counts), so all replicates of all statistics come from one matrix product
(:mod:`study.metrics.agreement.design`).

Modules: :mod:`~.data` (validated inputs, level codes), :mod:`~.stats` (vectorised
statistics of tables), :mod:`~.design` (the bootstrap pass), :mod:`~.summary` (one table's
statistics: a rater, a group), :mod:`~.inter_reader`, :mod:`~.comparisons` (model against
readers), :mod:`~.api` (:func:`evaluate_agreement`, subgroups).

References
----------
Cohen (1960, 1968); Fleiss, Cohen & Everitt (1969); Fleiss JL (1971), Measuring nominal scale
agreement among many raters, Psychol Bull 76:378-382; Krippendorff K (2004/2011), Computing
Krippendorff's alpha-reliability (coincidence matrices, ordinal metric); McNemar Q (1947),
Psychometrika 12:153-157; Davison & Hinkley (1997) s. 3.8 (cluster bootstrap).
"""

from study.metrics.agreement.api import evaluate_agreement
from study.metrics.agreement.data import RATER_KINDS
from study.metrics.agreement.stats import (
    fleiss_kappa_from_sums,
    krippendorff_ordinal_from_coincidences,
    table_stats,
)

__all__ = ["RATER_KINDS", "evaluate_agreement", "fleiss_kappa_from_sums", "krippendorff_ordinal_from_coincidences",
           "table_stats"]
