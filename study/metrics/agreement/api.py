""":func:`evaluate_agreement`: the whole ``agreement`` block from a reference and ratings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from study.errors import Problem, StudyError
from study.metrics.agreement.comparisons import comparisons, register_model_reader
from study.metrics.agreement.data import RatingData, is_missing, prepare, subset
from study.metrics.agreement.design import BootstrapDesign, BootstrapPass, Intervals
from study.metrics.agreement.inter_reader import inter_reader, register_inter_reader
from study.metrics.agreement.patient_grade import patient_grades
from study.metrics.agreement.stats import table_stats
from study.metrics.agreement.summary import (
    group_agreement,
    rater_agreement,
    reader_spread,
)
from study.options import AgreementOptions
from study.results.agreement import (
    AgreementResult,
    AgreementSettings,
    GroupAgreement,
    RaterAgreement,
)

_GROUP_NOTE = ("readings of all the group's readers pooled; intervals resample patients, "
               "so several readers' readings of one case stay together")


def evaluate_agreement(reference: pd.DataFrame, ratings: pd.DataFrame, *, options: AgreementOptions,
                       patient_of: Mapping[Any, Any] | pd.Series | None = None,
                       covariates: pd.DataFrame | None = None) -> AgreementResult:
    """Agreement of every rater with the reference grade, between readers, and model vs readers.

    Parameters
    ----------
    reference : DataFrame
        ``case_id`` (unique), ``grade`` (a level; none missing).
    ratings : DataFrame
        ``rater_id``, ``case_id``, ``grade`` (a level, or missing = a missing reading,
        counted in ``n_missing``), ``rater_kind`` (``model`` | ``reader``; default reader),
        ``reader_group`` (None or "" for models and ungrouped readers). Raters need not rate every
        case (partially crossed designs); each is evaluated on the cases it graded.
    options : AgreementOptions
        ``levels`` (least to most severe; every table has all of them), ``subgroups``
        (covariate columns; per value, every rater's agreement on the cases of that value,
        missing values forming the subgroup ``"missing"``) and ``statistics`` (confidence,
        patient-bootstrap replicates shared by all raters so that differences are paired,
        seed, binomial interval, and ``unit``: the unit of analysis of the main intervals of every
        single rater and of the model-versus-reader comparisons -- ``"image"``: Wilson (or
        Clopper-Pearson) and Wald-ASE, exact McNemar (images independent); ``"patient"``: the
        clustered ratio estimator, clustered kappa and clustered McNemar of
        :mod:`study.metrics.clustered`, valid when a patient contributes several images; needs
        ``patient_of``; a protocol's default). Build it with ``AgreementOptions.from_protocol``.
    patient_of : mapping case_id -> patient_id, optional
        Bootstrap resampling unit; ``None`` = every case its own patient.
    covariates : DataFrame, optional
        ``case_id`` + the ``options.subgroups`` columns.

    Returns
    -------
    AgreementResult
        The typed ``agreement`` block (``study.results.agreement``).

    Raises
    ------
    StudyError
        A grade outside the levels, a duplicated case or reading, a rating of a case not in the
        reference, an inconsistent rater kind/group, a case without patient, or a missing
        subgroup column (all problems listed).

    References
    ----------
    Cohen (1960, 1968); Fleiss, Cohen & Everitt (1969); Fleiss (1971); Krippendorff (2011);
    McNemar (1947); Davison & Hinkley (1997) s. 3.8 (cluster bootstrap).
    """
    stats = options.statistics
    if options.patient_grade != "none":
        if patient_of is None:
            raise StudyError(Problem("grading.patient_grade", options.patient_grade,
                                     "one grade per patient needs each case's patient (patient_of / the manifest's "
                                     "patient_id)"))
        reference, ratings, covariates = patient_grades(reference, ratings, levels=options.levels,
                                                        patient_of=patient_of, covariates=covariates,
                                                        rule=options.patient_grade)
        patient_of = {p: p for p in reference["case_id"]}
    unit = stats.unit_for(patient_of is not None)
    if unit == "patient" and patient_of is None:
        raise StudyError(Problem("unit", "patient", "the patient as unit of analysis needs each case's patient "
                                 "(patient_of / the manifest's patient_id)"))
    data = prepare(reference, ratings, levels=options.levels, patient_of=patient_of)
    cov = _subgroup_values(data, covariates, list(options.subgroups))
    iv = Intervals.of(stats, unit=data.bootstrap_unit, clustered=unit == "patient")
    design = BootstrapDesign(data)
    _register_raters(design)
    models, readers, groups = data.of_kind("model"), data.of_kind("reader"), data.groups()
    pairs = register_model_reader(design, models, readers)
    reader_pairs, fleiss = register_inter_reader(design, readers)
    boot = design.run(n_replicates=stats.n_bootstrap, seed=stats.seed)
    raters = _raters(iv, data, boot)
    subgroups = {col: {v: _raters(iv, sub, _rater_pass(sub, stats.n_bootstrap, stats.seed))
                       for v, sub in _subsets(data, values)} for col, values in cov.items()}
    return AgreementResult(
        levels=list(data.levels),
        settings=AgreementSettings(
            confidence=stats.confidence, n_bootstrap=stats.n_bootstrap, seed=stats.seed,
            binomial_interval=stats.binomial_interval, bootstrap_unit=data.bootstrap_unit,
            n_cases=len(data.case_ids), n_patients=int(data.n_patients), unit=unit,
            patient_grade=None if options.patient_grade == "none" else options.patient_grade,
            reference_distribution=dict(zip(data.levels, np.bincount(data.ref, minlength=len(data.levels)).tolist()))),
        raters=raters, groups=_groups(iv, data, boot, groups, raters),
        inter_reader=inter_reader(iv, data, boot, readers, reader_pairs, fleiss),
        comparisons=comparisons(iv, data, boot, pairs, groups), subgroups=subgroups,
        subgroups_n_cases={col: {v: int((values == v).sum()) for v in subgroups[col]} for col, values in cov.items()})


def _register_raters(design: BootstrapDesign) -> None:
    data = design.data
    for rid, r in data.raters.items():
        design.block(("rater", rid), r.cases, data.ref[r.cases], r.codes)


def _rater_pass(data: RatingData, n_bootstrap: int, seed: int) -> BootstrapPass:
    """A bootstrap pass of the raters' own tables only (subgroups)."""
    design = BootstrapDesign(data)
    _register_raters(design)
    return design.run(n_replicates=n_bootstrap, seed=seed)


def _raters(iv: Intervals, data: RatingData, boot: BootstrapPass) -> dict[str, RaterAgreement]:
    out = {}
    for rid, r in data.raters.items():
        j = boot.blocks[("rater", rid)]
        out[rid] = rater_agreement(iv, data.levels, boot.tables[j], boot.boot_of(j), kind=r.kind, group=r.group,
                                   n_missing=r.n_missing, n_patients=len(np.unique(data.patient[r.cases])),
                                   patient_tables=boot.patient_tables(j) if iv.clustered else None)
    return out


def _groups(iv: Intervals, data: RatingData, boot: BootstrapPass, groups: dict[str, list[str]],
            raters: dict[str, RaterAgreement]) -> dict[str, GroupAgreement]:
    """Each reader group's pooled tables, with the patient bootstrap as the main interval."""
    out = {}
    for g, members in sorted(groups.items()):
        idx = [boot.blocks[("rater", r)] for r in members]
        table = sum(boot.tables[j] for j in idx)
        cases = np.unique(np.concatenate([data.raters[r].cases for r in members]))
        out[g] = group_agreement(iv, data.levels, np.asarray(table), table_stats(boot.boot_tables[:, idx].sum(axis=1)),
                                 n_cases=len(cases), readers=sorted(members),
                                 spread=reader_spread({r: raters[r] for r in members}), note=_GROUP_NOTE)
    return out


def _subgroup_values(data: RatingData, covariates: pd.DataFrame | None, subgroups: list[str]) -> dict[str, pd.Series]:
    """Per subgroup column, the subgroup value of every reference case (in reference order)."""
    if not subgroups:
        return {}
    if covariates is None:
        raise StudyError(Problem("covariates", "", f"subgroups {subgroups} need a covariates table"))
    miss = [c for c in ["case_id", *subgroups] if c not in covariates.columns]
    if miss:
        raise StudyError(Problem("covariates", ", ".join(miss), "column(s) missing for the subgroup analyses"))
    cov = covariates.drop_duplicates("case_id").set_index("case_id").reindex(pd.Index(data.case_ids))
    return {col: cov[col].map(_subgroup_key) for col in subgroups}


def _subsets(data: RatingData, values: pd.Series) -> list[tuple[str, RatingData]]:
    return [(v, subset(data, (values == v).to_numpy())) for v in sorted(values.unique(), key=str)]


def _subgroup_key(v: Any) -> str:
    if is_missing(v):
        return "missing"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)
