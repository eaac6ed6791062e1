"""Flow of cases (STARD diagram) and baseline characteristics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from study.protocol import Criterion
from study.report import format as F
from study.report.context.common import unavailable
from study.report.flow_diagram import ReferenceSplit, flow_view
from study.report.format import Table, fmt, fmt_int, fmt_pct
from study.results.baseline import Baseline, LesionSummary
from study.results.flow import Flow

#: categorical covariates of the baseline table, in table order, with their labels
COVARIATE_LABELS = {"sex": "Sex", "fitzpatrick": "Fitzpatrick skin type", "site": "Site", "device": "Capture device"}


def flow_context(flow: Flow | None, *, reference: list[ReferenceSplit] | None = None) -> dict[str, Any]:
    """The flow table: cases at each stage, excluded and why (the diagram is the ``flow`` figure).

    ``reference``: included cases by reference result on each binary endpoint
    (:func:`study.report.flow_diagram.reference_split`).
    """
    if flow is None:
        return unavailable("results.json holds no flow counts (flow.json was not produced).")
    t = Table("tab-flow", "Flow of cases: images and patients at each stage, and images excluded by reason",
              ["Stage", "Images", "Patients", "Images excluded", "Reasons (images)"])
    if flow.exclusion_checks:
        t.note("Reasons: every check the excluded cases failed; a case failing several checks is counted under each "
               "and once under 'more than one reason', so reasons may add up to more than the excluded number. "
               "A case is excluded at the first step it fails.")
    for st in flow_view(flow, reference=reference).stages:
        ex = st.excluded
        t.add([st.label, fmt_int(st.n), fmt_int(st.n_patients) if st.n_patients is not None else F.DASH,
               fmt_int(ex.n) if ex is not None else F.DASH,
               "; ".join(f"{r}: {n}" for r, n in ex.reasons) if ex is not None else F.DASH])
    pc = flow.patients
    if pc is None:
        t.note("Patients: not known (results.json holds no patient counts).")
    elif pc.images_per_included_patient_mean is not None:
        t.note(f"Included: {flow.included} images from {pc.included} patients; images per patient: mean "
               f"{fmt(pc.images_per_included_patient_mean, 2)}, range {pc.images_per_included_patient_min}-"
               f"{pc.images_per_included_patient_max}. Patients: with at least one image at that stage.")
    return {"available": True, "table": t.to_dict()}


def _patient_rows(t: Table, b: Baseline) -> None:
    t.add(["Images included", fmt_int(b.n_cases)])
    ipp = b.images_per_patient
    if b.n_patients is None or ipp is None:
        t.add(["Patients", "not known (results.json holds no patient counts)"])
        return
    t.add(["Patients", fmt_int(b.n_patients)])
    t.add(["Images per patient: mean (range)", f"{fmt(ipp.mean, 2)} ({fmt(ipp.min, 0)}-{fmt(ipp.max, 0)})"])


def baseline_caption(b: Baseline) -> str:
    """``Baseline characteristics of the 136 included images from 93 patients``."""
    patients = f" from {b.n_patients} patients" if b.n_patients is not None else ""
    return f"Baseline characteristics of the {b.n_cases} included images{patients}"


def _covariate_rows(t: Table, b: Baseline) -> None:
    _patient_rows(t, b)
    age = b.age
    if age is not None:
        t.add(["Age, years: mean (SD)", f"{fmt(age.mean, 1)} ({fmt(age.sd, 1)})"])
        t.add(["Age: median (IQR)", f"{fmt(age.median, 1)} ({fmt(age.q1, 1)}-{fmt(age.q3, 1)})"])
        t.add(["Age: range", f"{fmt(age.min, 0)}-{fmt(age.max, 0)}"])
        t.add(["Age: missing", fmt_int(age.n_missing)])
    for cov in b.covariates:
        summary = b.categorical(cov)
        if summary is None:
            continue
        label = COVARIATE_LABELS[cov]
        for lv in summary.levels:
            t.add([f"{label}: {lv.value}", fmt_pct(lv.n, lv.percent)])
        if summary.n_missing:
            t.add([f"{label}: missing", fmt_int(summary.n_missing)])
    for lv in b.severity.levels:
        t.add([f"Reference grade {lv.value}", fmt_pct(lv.n, lv.percent)])
    if b.severity.n_missing:
        t.add(["Reference grade missing", fmt_int(b.severity.n_missing)])
    if b.not_recorded:
        t.note("Not recorded in the manifest: " + ", ".join(b.not_recorded) + ".")
    t.note("n (%) of the included images (a patient with several images counts once per image); "
           "SD = standard deviation; IQR = first to third quartile.")


def _lesion_table(b: Baseline, classes: Sequence[str]) -> Table | None:
    lpi = b.lesions_per_image
    if not lpi.classes:
        return None
    lt = Table("tab-lesions", "Reference lesions per image by class (as Table 1 of the smartphone study)",
               ["Class", "Total", "Mean (SD) per image", "Median (range)", "Images with ≥ 1"], nd=2)
    names = [c for c in classes if c in lpi.classes] + sorted(set(lpi.classes) - set(classes))
    rows: list[tuple[str, LesionSummary]] = [(c, lpi.classes[c]) for c in names] + [("All classes", lpi.all)]
    for name, d in rows:
        lt.add([name, fmt_int(d.total), f"{fmt(d.mean, 2)} ({fmt(d.sd, 2)})",
                f"{fmt(d.median, 0)} ({fmt(d.min, 0)}-{fmt(d.max, 0)})", fmt_pct(d.images_with, d.percent_images_with)])
    return lt


def _severity_table(b: Baseline, classes: Sequence[str], levels: Sequence[str]) -> Table | None:
    bys = b.lesions_per_image.by_severity
    if not bys:
        return None
    names = [c for c in classes if any(c in v.mean for v in bys.values())]
    st = Table("tab-lesions-severity", "Mean reference lesions per image by class and reference grade",
               ["Grade", "Images"] + names, nd=2)
    for lv in list(levels) or sorted(bys):
        if lv in bys:
            v = bys[lv]
            st.add([lv, fmt_int(v.n_images)] + [fmt(v.mean[c] if c in v.mean else None, 2) for c in names])
        else:
            st.add([lv, fmt_int(None)] + [fmt(None, 2) for _ in names])
    return st


def _alternative_diagnoses(inclusion: Sequence[Criterion]) -> str:
    diag = [c for c in inclusion if c.field in ("diagnosis", "other_facial_disease")]
    if diag:
        return ("Alternative diagnoses: not analysed. The eligibility criteria ("
                + "; ".join(f"{c.id}: {c.description}" for c in diag)
                + ") admit only cases with facial acne; cases excluded for another diagnosis are counted in the "
                  "flow diagram.")
    return ("Alternative diagnoses: not recorded; every case is assumed to have acne, and the study "
            "estimates lesion-level and grade-level accuracy rather than the diagnosis of acne.")


def baseline_context(baseline: Baseline | None, *, classes: Sequence[str], levels: Sequence[str],
                     inclusion: Sequence[Criterion]) -> dict[str, Any]:
    """Baseline characteristics (STARD 20, 21a) and reference lesions per image.

    Parameters
    ----------
    baseline : the ``baseline`` block, or None when results.json holds none.
    classes : lesion classes in report order; levels : grade levels, least to most severe.
    inclusion : the protocol's inclusion criteria (to say how alternative diagnoses were handled).
    """
    if baseline is None:
        return unavailable("results.json holds no baseline table.")
    t = Table("tab-baseline", baseline_caption(baseline), ["Characteristic", "Images: n (%) or value"])
    _covariate_rows(t, baseline)
    lt = _lesion_table(baseline, classes)
    st = _severity_table(baseline, classes, levels)
    return {"available": True, "table": t.to_dict(), "lesions": lt.to_dict() if lt else None,
            "lesions_by_severity": st.to_dict() if st else None, "alternative": _alternative_diagnoses(inclusion)}
