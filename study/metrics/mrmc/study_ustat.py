"""The study's U-statistic MRMC analyses, on every included case that has readings (any design).

- **Aided versus unaided** (the CADe-style primary): the readers' ``aided`` readings against
  their ``unaided`` ones, when the readings have a ``modality`` column with both;
- **each model standalone versus the unaided readers**: the model is a modality read by one
  fixed reader (no reader variance), the readers' unaided readings the other.

The rating of a reading is its ``confidence`` (0-100) when every reading of that modality has
one, otherwise its grade as an ordinal (0 for the protocol's first level, ...); a model's rating
is its grade. Truth: the reference grade at or above the protocol's ``mrmc_positive_from``.
Patients are resampled when the cases have patient ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from study.errors import StudyError
from study.metrics.mrmc.ustat import analyze_ustat
from study.results.base import NotAssessed
from study.results.mrmc import MRMCUStatStudy, UStatAnalysis

__all__ = ["study_ustat"]

UNAIDED, AIDED = "unaided", "aided"


def _reader_table(readings: pd.DataFrame, levels: Sequence[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    rd = readings.copy()
    modality = rd["modality"] if "modality" in rd.columns else pd.Series("", index=rd.index)
    rd["modality"] = modality.fillna("").astype(str).str.strip().str.lower().replace("", UNAIDED)
    order = {lv: i for i, lv in enumerate(levels)}
    rd["grade_rating"] = rd["grade"].astype(str).map(order)
    conf = pd.to_numeric(rd["confidence"], errors="coerce") if "confidence" in rd.columns else None
    rating_kind: dict[str, str] = {}
    parts = []
    for m, g in rd.groupby("modality", sort=False):
        if conf is not None and conf[g.index].notna().all():
            g = g.assign(rating=conf[g.index].astype(float))
            rating_kind[str(m)] = "confidence (0-100)"
        else:
            g = g.assign(rating=g["grade_rating"].astype(float))
            rating_kind[str(m)] = f"grade as an ordinal (0 = {levels[0]!r} ... {len(levels) - 1} = {levels[-1]!r})"
        parts.append(g)
    out = pd.concat(parts) if parts else rd.assign(rating=pd.Series(dtype=float))
    return out[["modality", "reader_id", "case_id", "rating"]], rating_kind


def _run(table: pd.DataFrame, **kwargs: object) -> UStatAnalysis | NotAssessed:
    try:
        return analyze_ustat(table, **kwargs)  # type: ignore[arg-type]
    except StudyError as e:
        return NotAssessed(reason="; ".join(f"{p.where}: {p.message}" if p.where else p.message for p in e.problems))


def study_ustat(reference: pd.DataFrame, readings: pd.DataFrame, model_grades: Mapping[str, pd.DataFrame], *,
                levels: Sequence[str], positive_from: str, patient_of: Mapping[str, str] | None = None,
                confidence: float = 0.95) -> MRMCUStatStudy:
    """U-statistic MRMC analyses of a study (aided versus unaided readers; each model versus unaided readers).

    Parameters
    ----------
    reference : DataFrame
        ``case_id, grade`` of the included cases (the analysis set).
    readings : DataFrame
        ``reader_id, case_id, grade`` [, ``modality`` (``unaided``/``aided``; empty = unaided),
        ``confidence`` (0-100), ``assessable``]; readings of cases outside ``reference`` are left
        out, and so are readings marked not assessable or without a grade (``readings_not_used``).
    model_grades : mapping
        Model id -> ``case_id, grade``.
    levels, positive_from : the protocol's grade levels and the first positive one.
    patient_of : mapping, optional
        Case -> patient; patients are then resampled.
    confidence : float
        Confidence level of the intervals.

    Returns
    -------
    study.results.mrmc.MRMCUStatStudy
    """
    ref = reference.assign(case_id=reference["case_id"].astype(str))
    cut = list(levels).index(positive_from)
    truth = {c: int(list(levels).index(str(g)) >= cut) for c, g in zip(ref["case_id"], ref["grade"])}
    rd = readings.assign(case_id=readings["case_id"].astype(str), reader_id=readings["reader_id"].astype(str))
    rd = rd[rd["case_id"].isin(truth)]
    n_read = len(rd)
    if "assessable" in rd.columns:  # a reading marked not assessable has no rating
        rd = rd[rd["assessable"].map(lambda v: str(v).strip().lower() not in ("false", "0", "no", "n"))]
    readers, rating_kind = _reader_table(rd, levels)
    readers = readers[readers["rating"].notna()]

    def finish(t: pd.DataFrame) -> pd.DataFrame:
        t = t.assign(truth=t["case_id"].map(truth))
        if patient_of is not None:
            t = t.assign(patient_id=t["case_id"].map(lambda c: patient_of.get(c, c)))
        return t.reset_index(drop=True)

    present = list(pd.unique(readers["modality"]))
    if UNAIDED in present and AIDED in present:
        both = readers[readers["modality"].isin([AIDED, UNAIDED])]
        both = pd.concat([both[both["modality"] == AIDED], both[both["modality"] == UNAIDED]])  # aided - unaided
        aided = _run(finish(both), confidence=confidence, source="readings")
    else:
        aided = NotAssessed(reason=f"the readings have no {'aided' if UNAIDED in present else 'unaided'} session "
                                   f"(modalities found: {present or 'none'})")
    unaided = readers[readers["modality"] == UNAIDED]
    models: dict[str, UStatAnalysis | NotAssessed] = {}
    for model_id, grades in model_grades.items():
        g = grades.assign(case_id=grades["case_id"].astype(str))
        g = g[g["case_id"].isin(truth)]
        name = f"model {model_id}"
        mt = pd.DataFrame({"modality": name, "reader_id": str(model_id), "case_id": g["case_id"],
                           "rating": g["grade"].astype(str).map({lv: i for i, lv in enumerate(levels)}).astype(float)})
        models[str(model_id)] = _run(finish(pd.concat([mt, unaided], ignore_index=True)), confidence=confidence,
                                     fixed_modalities=[name], source="readings")
    return MRMCUStatStudy(
        endpoint=f"reference grade {positive_from} or worse", rating=rating_kind, cases_included=len(truth),
        cases_with_readings=int(readers["case_id"].nunique()), readings_used=len(readers),
        readings_not_used=n_read - len(readers),
        readings_by_modality={str(m): int(n) for m, n in readers["modality"].value_counts(sort=False).items()},
        resampling_unit="patient" if patient_of is not None else "case",
        aided_vs_unaided=aided, models=models)
