"""The entry point of the MRMC analysis: :func:`analyze_mrmc` (OR or DBM, optionally an algorithm against the readers)."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pandas as pd

from study.errors import Problem, StudyError
from study.metrics.mrmc.ai_readers import ai_vs_readers
from study.metrics.mrmc.dbm import dbm_analysis
from study.metrics.mrmc.design import Design, build_design
from study.metrics.mrmc.obuchowski_rockette import or_analysis
from study.metrics.mrmc.settings import resolve_options
from study.metrics.roc import (
    FOM_DESCRIPTIONS,
    bootstrap_covariance,
    delong_covariance,
    fom_parts,
    jackknife_covariance,
    jackknife_foms,
)
from study.options import MRMCOptions
from study.results.mrmc import (
    AIVersusReaders,
    AnalysisName,
    BootstrapSettings,
    Difference,
    FTest,
    MethodName,
    ModalityResult,
    MRMCAnalysis,
)

__all__ = ["ANALYSES", "COVARIANCES", "METHODS", "analyze_mrmc"]

ANALYSES: tuple[AnalysisName, ...] = get_args(AnalysisName)
METHODS: tuple[MethodName, ...] = get_args(MethodName)
COVARIANCES: tuple[str, ...] = get_args(MRMCOptions.model_fields["covariance"].annotation)


def _covariance_of(des: Design, opts: MRMCOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``theta[t, r]``, the ``(t*r)^2`` error covariance of the FOMs, and the jackknife FOMs."""
    t, r, c = des.ratings.shape
    flat = des.ratings.reshape(t * r, c)
    parts = fom_parts(flat, des.truth, fom=opts.fom, threshold=opts.threshold)
    jk = jackknife_foms(parts)
    if opts.covariance == "jackknife":
        cov = jackknife_covariance(jk)
    elif opts.covariance == "delong":
        cov = delong_covariance(parts)
    else:
        cov = bootstrap_covariance(flat, des.truth, fom=opts.fom, threshold=opts.threshold,
                                   n_bootstrap=opts.statistics.n_bootstrap, seed=opts.statistics.seed)
    return parts.theta.reshape(t, r), cov, jk


def _check_ai_reader(full: Design, ai_reader: str | None, source: str) -> None:
    if ai_reader is None:
        return
    if ai_reader not in full.readers:
        raise StudyError(Problem(source, "--ai-reader", f"{ai_reader!r} is not a reader_id; readers are {full.readers}"))
    if full.r - 1 < 2:
        raise StudyError(Problem(source, "reader_id", f"the AI-versus-readers analysis needs at least two readers "
                                                      f"besides {ai_reader!r}; found {full.r - 1}"))


def _headline_test(test: FTest | None, ai_results: list[AIVersusReaders] | None, headline: AnalysisName) -> FTest | None:
    """With one modality, the headline test is the AI-versus-readers one (F = t squared)."""
    if test is not None or not ai_results:
        return test
    e = ai_results[0].analyses.of(headline)
    if e.statistic is None or e.se is None:
        return None
    return FTest(statistic=e.statistic ** 2, statistic_name="chi-square" if e.df is None else "F", ndf=1.0,
                 ddf=e.df, p_value=e.p_value, error_term=e.se ** 2,
                 error_term_formula="squared SE of the AI-minus-readers difference", comparison=e.comparison,
                 modality=e.modality)


def analyze_mrmc(ratings: pd.DataFrame, *, options: MRMCOptions | None = None, ai_reader: str | None = None,
                 source: str = "ratings", method: str | None = None, analysis: str | None = None,
                 covariance: str | None = None, confidence: float | None = None, fom: str | None = None,
                 threshold: float | None = None, n_bootstrap: int | None = None,
                 seed: int | None = None) -> MRMCAnalysis:
    """Multi-reader multi-case analysis of a fully crossed ratings table.

    Parameters
    ----------
    ratings : DataFrame
        Columns ``modality, reader_id, case_id, truth, rating`` (see :func:`load_mrmc_ratings`).
    options : study.options.MRMCOptions, optional
        The analysis options (``MRMCOptions.from_protocol`` in a study; defaults otherwise).
        The keywords below, when given, replace the corresponding option:
    method : {"or", "dbm"}
        Obuchowski-Rockette (with Hillis' ddf) or Dorfman-Berbaum-Metz (pseudovalues;
        jackknife only).
    analysis : {"rrrc", "frrc", "rrfc"} or None
        Which generalisation to report as the headline; ``None`` computes all three and
        makes RRRC the headline (``analyses`` always holds every one computed).
    covariance : {"jackknife", "bootstrap", "delong"}
        Error covariance estimate for OR (``delong`` is DeLong et al. 1988's structural
        components; bootstrap: ``n_bootstrap`` stratified case resamples, ``seed``).
    confidence : float
        Confidence level of every interval.
    fom : {"wilcoxon", "sensitivity", "specificity", "accuracy"}
        Figure of merit; the binary ones need ``threshold`` (``rating >= threshold`` is
        called positive; for grades coded 0..K-1, ``threshold=k`` is "grade k or worse").
    n_bootstrap, seed : int
        For ``covariance="bootstrap"``.
    ai_reader : str, optional
        A reader (the algorithm) compared with the average of the other readers in each
        modality where it appears (RJafroc ``StCadVsRad``, 1T-RRRC / 1T-RRFC, plus FRRC).
        It is then left out of the modality comparison, which uses the other readers.
    source : str
        The name of the ratings in error messages.

    Returns
    -------
    study.results.mrmc.MRMCAnalysis
        ``method``, ``analysis`` (headline), ``analyses_reported``, ``fom``,
        ``fom_description``, ``threshold``, ``covariance``, ``confidence_level``,
        ``design``, ``readers`` (reader -> modality -> FOM), ``modalities[m].fom``
        (estimate of the headline analysis, with ``readers``), ``differences`` (the modality
        comparisons of the headline analysis, then the AI-versus-readers comparisons),
        ``test`` (the headline global test), ``analyses[rrrc|frrc|rrfc]`` (``test``,
        ``differences``, ``modalities``, FRRC ``single_reader_differences``),
        ``variance_components`` (OR), ``anova`` (OR mean squares),
        ``dbm_variance_components`` and ``dbm_mean_squares`` (always computed when the
        jackknife is used), ``ai_vs_readers`` (one per modality; or None), ``warnings``.

    Raises
    ------
    StudyError
        For design problems the user can fix (not fully crossed, fewer than two readers,
        cases of one truth only, truth not 0/1 or not constant per case, unknown AI
        reader, bad options).
    """
    opts = resolve_options(options or MRMCOptions(), method=method, analysis=analysis, covariance=covariance,
                           confidence=confidence, fom=fom, threshold=threshold, n_bootstrap=n_bootstrap, seed=seed)
    alpha = 1 - opts.statistics.confidence
    analyses: list[AnalysisName] = list(ANALYSES) if opts.analysis is None else [opts.analysis]
    headline: AnalysisName = opts.analysis or "rrrc"
    warnings: list[str] = []

    full = build_design(ratings, source=source)
    ai = None if ai_reader is None else str(ai_reader)
    _check_ai_reader(full, ai, source)
    design = full.subset_readers([x for x in full.readers if x != ai]) if ai else full

    theta_full, cov_full, jk_full = _covariance_of(full, opts)
    # the modality comparison uses the readers other than the AI: take their rows
    rows = [i * full.r + j for i in range(full.t) for j, rd in enumerate(full.readers) if rd != ai]
    theta = theta_full[:, [j for j, rd in enumerate(full.readers) if rd != ai]]
    cov = cov_full[np.ix_(rows, rows)]
    jk = jk_full[rows]
    r = theta.shape[1]

    dbm_vc = dbm_ms = None
    if opts.method == "or":
        per_analysis, vc, anova = or_analysis(design, theta, cov, alpha, opts.covariance, analyses, warnings)
        # DBM variance components accompany OR output too (Iowa prints both), jackknife only
        if opts.covariance == "jackknife":
            _, dbm_vc, dbm_ms = dbm_analysis(design, theta, jk, alpha, [], [])
    else:
        per_analysis, dbm_vc, dbm_ms = dbm_analysis(design, theta, jk, alpha, analyses, warnings)
        # OR components from the jackknife covariance, for sample-size planning
        _, vc, anova = or_analysis(design, theta, jackknife_covariance(jk), alpha, "jackknife", [], [])

    if r < 4:
        warnings.append(f"only {r} readers: reader variability is poorly estimated; random-reader results are imprecise")

    ai_results = None
    if ai:
        k = full.readers.index(ai)
        ai_results = []
        for i, m in enumerate(full.modalities):
            idx = np.arange(i * full.r, (i + 1) * full.r)
            ai_results.append(ai_vs_readers(theta_full[i], cov_full[np.ix_(idx, idx)], k, full.readers, m, alpha,
                                            warnings))

    head = per_analysis[headline]
    modalities = {m: ModalityResult(fom=head.modalities[m],
                                    readers={rd: float(theta[i, j]) for j, rd in enumerate(design.readers)})
                  for i, m in enumerate(design.modalities)}
    differences: list[Difference] = list(head.differences)
    if ai_results:
        differences += [a.analyses.of(headline) for a in ai_results]
    return MRMCAnalysis(
        method=opts.method, analysis=headline, analyses_reported=analyses, fom=opts.fom,
        fom_description=FOM_DESCRIPTIONS[opts.fom], threshold=opts.threshold, covariance=opts.covariance,
        bootstrap=(BootstrapSettings(replicates=opts.statistics.n_bootstrap, seed=opts.statistics.seed,
                                     stratified_by_truth=True) if opts.covariance == "bootstrap" else None),
        confidence_level=opts.statistics.confidence,
        design=full.to_model(ai_reader=ai, compared=design),
        readers={rd: {m: float(theta_full[i, j]) for i, m in enumerate(full.modalities)}
                 for j, rd in enumerate(full.readers)},
        modalities=modalities, test=_headline_test(head.test, ai_results, headline), differences=differences,
        analyses=per_analysis, variance_components=vc, anova=anova, dbm_variance_components=dbm_vc,
        dbm_mean_squares=dbm_ms, ai_vs_readers=ai_results, warnings=warnings)
