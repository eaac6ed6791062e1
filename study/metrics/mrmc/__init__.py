"""Multi-reader multi-case (MRMC) analysis: Obuchowski-Rockette and Dorfman-Berbaum-Metz; U-statistics for any design.

The analyses count both reader and case variability, as the FDA's iMRMC and the
University of Iowa's OR-DBM MRMC software do, and agree with the latter to the printed
digit on its reference example (Van Dyke et al. 1993; ``tests/test_mrmc.py``).

Design: OR and DBM need fully crossed data (every reader rates every case in every modality);
:func:`ratings_from_grades` extracts a fully crossed block from a partially crossed reader
study and says what it left out. :func:`analyze_ustat` (U-statistics, as the FDA's iMRMC)
takes any design -- split-plot, partially crossed, unpaired -- and every reading
(:mod:`~study.metrics.mrmc.ustat`); :func:`~study.metrics.mrmc.study_ustat.study_ustat` runs it on
a study's readings (aided versus unaided; each model standalone versus the unaided readers).

Notation: ``t`` modalities (treatments), ``r`` readers, ``c`` cases; ``theta_ij`` is the
figure of merit (FOM) of reader ``j`` in modality ``i``.

Obuchowski-Rockette (OR) analysis
    ``theta_ij = mu + tau_i + R_j + (tau R)_ij + e_ij``, with the error covariance
    estimated by the jackknife (default), a stratified case bootstrap or DeLong's method,
    summarised as ``Var`` (same reader, same modality), ``Cov1`` (same reader, different
    modalities), ``Cov2`` (different readers, same modality), ``Cov3`` (different readers,
    different modalities). With ``MS(T)``, ``MS(R)``, ``MS(T*R)`` the mean squares of the
    modality x reader ANOVA of the ``theta_ij``:

    - random readers, random cases (RRRC): ``F = MS(T) / [MS(T*R) + r max(Cov2 - Cov3, 0)]``
      with Hillis' (2007) denominator degrees of freedom
      ``ddf_H = [MS(T*R) + r max(Cov2 - Cov3, 0)]^2 / {MS(T*R)^2 / [(t-1)(r-1)]}``;
    - fixed readers, random cases (FRRC): ``X2 = (t-1) MS(T) / [Var - Cov1 + (r-1) max(Cov2 - Cov3, 0)]``
      on ``t-1`` degrees of freedom (chi-square; normal-theory intervals);
    - random readers, fixed cases (RRFC): ``F = MS(T) / MS(T*R)`` on ``(t-1), (t-1)(r-1)``
      degrees of freedom (the conventional modality x reader ANOVA).

Dorfman-Berbaum-Metz (DBM) analysis
    The modality x reader x case ANOVA of the jackknife pseudovalues
    ``Y_ijk = c theta_ij - (c-1) theta_ij(k)`` (normalised so that their mean over cases
    equals ``theta_ij``), with Hillis' ddf: RRRC
    ``F = MS(T) / [MS(T*R) + max(MS(T*C) - MS(T*R*C), 0)]``; FRRC ``F = MS(T)/MS(T*C)`` on
    ``(t-1), (t-1)(c-1)``; RRFC ``F = MS(T)/MS(T*R)``.

References
----------
Dorfman DD, Berbaum KS, Metz CE (1992). Receiver operating characteristic rating
analysis: generalization to the population of readers and patients with the jackknife
method. Invest Radiol 27:723-731.
Obuchowski NA, Rockette HE (1995). Hypothesis testing of diagnostic accuracy for
multiple readers and multiple tests: an ANOVA approach with dependent observations.
Commun Stat Simul Comput 24:285-308.
Hillis SL, Obuchowski NA, Schartz KM, Berbaum KS (2005). A comparison of the
Dorfman-Berbaum-Metz and Obuchowski-Rockette methods for receiver operating
characteristic (ROC) data. Stat Med 24:1579-1607.
Hillis SL (2007). A comparison of denominator degrees of freedom methods for multiple
observer ROC analysis. Stat Med 26:596-619 (ddf_H; single-modality analysis, section 5.3).
Hillis SL, Berbaum KS, Metz CE (2008). Recent developments in the Dorfman-Berbaum-Metz
procedure for multireader ROC study analysis. Acad Radiol 15:647-661.
Hillis SL (2014). A marginal-mean ANOVA approach for analyzing multireader multicase
radiological imaging data. Stat Med 33:330-360.
Chakraborty DP (2017). Observer Performance Methods for Diagnostic Imaging, CRC Press,
chapter "Standalone CAD vs. radiologists" (the algorithm-versus-readers analysis).

Modules: :mod:`~study.metrics.mrmc.input` (reading and checking a ratings CSV),
:mod:`~study.metrics.mrmc.design` (the fully crossed design), :mod:`~study.metrics.mrmc.inference`
(intervals, tests, ddf), :mod:`~study.metrics.mrmc.obuchowski_rockette`, :mod:`~study.metrics.mrmc.dbm`,
:mod:`~study.metrics.mrmc.ai_readers`, :mod:`~study.metrics.mrmc.grades` (grades -> binary
ratings on a crossed block), :mod:`~study.metrics.mrmc.settings` (options) and
:mod:`~study.metrics.mrmc.analysis` (:func:`analyze_mrmc`). The figures of merit, their
jackknife, bootstrap and DeLong (U-statistic structural components) covariances are in
:mod:`study.metrics.roc`. Results are the typed models of :mod:`study.results.mrmc`.
"""

from __future__ import annotations

from study.metrics.mrmc.analysis import ANALYSES, COVARIANCES, METHODS, analyze_mrmc
from study.metrics.mrmc.grades import ratings_from_grades
from study.metrics.mrmc.input import REQUIRED_COLUMNS, load_mrmc_ratings
from study.metrics.mrmc.ustat import analyze_ustat
from study.metrics.roc import binary_fom, empirical_roc

__all__ = ["ANALYSES", "COVARIANCES", "METHODS", "REQUIRED_COLUMNS", "analyze_mrmc", "analyze_ustat", "binary_fom",
           "empirical_roc", "load_mrmc_ratings", "ratings_from_grades"]
