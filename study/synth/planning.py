"""Planning a synthetic cohort: patients, their cases, target grades, lesion counts, planted exclusions.

Nothing is drawn here; the plan is made from its own random stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from study.synth.vocabulary import CLASSES, DEVICES, EXCLUSIONS, FITZPATRICK, LEVELS, OTHER_DISEASES, SITES

#: target grade distribution (balanced-ish so every grade occurs often)
GRADE_PROBABILITIES = [0.27, 0.28, 0.25, 0.20]


@dataclass
class Patient:
    """A simulated patient: covariates shared by all their images.

    ``seed`` is a per-patient draw kept in the plan's random stream (removing the draw
    would change every cohort); it is recorded for traceability, not used for drawing.
    """

    patient_id: str
    age: int
    sex: str
    fitzpatrick: str
    site: str
    device: str
    other_facial_disease: str
    seed: int
    case_indices: list[int] = field(default_factory=list)


def sample_counts(rng: np.random.Generator, target: str) -> dict[str, int]:
    """Lesion counts for one image whose reference grade is ``target``.

    Comedones and scars follow the smartphone study's means (3.7 and 2.5 per image);
    papules 1.4 per image where present. The defining lesion of a grade is present at
    least once (boosting the rarer pustules, nodules and cysts), so that the protocol's
    grading of these counts is ``target`` (``tests/test_synth.py`` checks it).
    """
    c = {k: 0 for k in CLASSES}
    c["comedone"] = int(rng.poisson(3.7)) + (1 if target == "I" else 0)
    c["scar"] = int(rng.poisson(2.5))
    lv = LEVELS.index(target)
    if lv >= 1:
        c["papule"] = int(rng.poisson(1.4)) + (1 if target == "II" else int(rng.random() < 0.5))
    if lv >= 2:
        c["pustule"] = int(rng.poisson(0.6)) + (1 if target == "III" else int(rng.random() < 0.4))
    if lv == 3:
        kind = rng.random()
        if kind < 0.35:
            c["nodule"] = 1 + int(rng.poisson(0.4))
        elif kind < 0.8:
            c["cyst"] = 1 + int(rng.poisson(0.4))
        else:
            c["nodule"] = 1 + int(rng.poisson(0.3))
            c["cyst"] = 1 + int(rng.poisson(0.3))
    return c


def plan_cohort(cases: int, seed: int, exclusion_rate: float) -> tuple[list[Patient], list[dict[str, Any]]]:
    """Patients (1-3 images each), case rows and planted exclusions; no drawing yet."""
    rng = np.random.default_rng([seed, 0])
    patients: list[Patient] = []
    sizes: list[int] = []
    while sum(sizes) < cases:
        k = int(rng.choice([1, 2, 3], p=[0.6, 0.28, 0.12]))
        sizes.append(min(k, cases - sum(sizes)))
    n_excl = int(round(cases * exclusion_rate))
    # patient-level exclusions (minor, other disease) take whole patients; image-level ones single cases
    per_kind = {k: n_excl // len(EXCLUSIONS) + (1 if i < n_excl % len(EXCLUSIONS) else 0) for i, k in enumerate(EXCLUSIONS)}
    order = rng.permutation(len(sizes))
    patient_excl: dict[int, str] = {}
    singles = [int(p) for p in order if sizes[p] == 1]
    for kind in ("minor", "other_facial_disease"):
        for _ in range(per_kind[kind]):
            if singles:
                patient_excl[singles.pop()] = kind
    case_rows: list[dict[str, Any]] = []
    idx = 0
    for p, n in enumerate(sizes):
        fitz = FITZPATRICK[int(rng.integers(0, 6))]
        kind = patient_excl.get(p, "")
        age = int(rng.integers(13, 18)) if kind == "minor" else int(np.clip(round(rng.gamma(6.0, 4.2)), 18, 60))
        other = OTHER_DISEASES[int(rng.integers(0, 2))] if kind == "other_facial_disease" else "none"
        pat = Patient(
            patient_id=f"P{p + 1:04d}", age=age, sex=str(rng.choice(["F", "M"], p=[0.6, 0.4])), fitzpatrick=fitz,
            site=SITES[int(rng.integers(0, len(SITES)))], device=DEVICES[int(rng.integers(0, len(DEVICES)))],
            other_facial_disease=other, seed=int(rng.integers(0, 2**31 - 1)),
        )
        for _ in range(n):
            pat.case_indices.append(idx)
            case_rows.append({"index": idx, "patient": p, "planted_exclusion": kind})
            idx += 1
        patients.append(pat)
    # image-level exclusions on cases of patients without a patient-level one
    free = [r["index"] for r in case_rows if not r["planted_exclusion"]]
    free = [free[i] for i in rng.permutation(len(free))]
    for kind in ("blurred", "underexposed", "overexposed", "no_face"):
        for _ in range(per_kind[kind]):
            if free:
                case_rows[free.pop()]["planted_exclusion"] = kind
    # target grades: balanced-ish so every grade occurs often
    grades = rng.choice(LEVELS, size=cases, p=GRADE_PROBABILITIES)
    for r, g in zip(case_rows, grades):
        r["target_grade"] = str(g)
    return patients, case_rows


def correlate_within_patients(case_rows: list[dict[str, Any]], *, rho: float, seed: int) -> None:
    """Make a patient's images alike: shared severity and a shared difficulty (in place).

    With probability ``rho`` an image takes its patient's own target grade (drawn from the
    same grade distribution) instead of an independent one, so the intra-patient
    correlation of the grade is about ``rho``. Every image gets a ``difficulty`` score
    ``sqrt(rho) z_patient + sqrt(1 - rho) z_image`` (standard normal; intra-patient
    correlation ``rho``) that makes it harder for the simulated readers
    (:func:`study.synth.readers.simulate_readings`) and fainter for the model (its lesions
    are blended towards the lesion-free face, :func:`study.synth.drawing.render_case`).
    Skin type and the face's look are the patient's already. ``rho = 0`` changes nothing
    (the cohort of a seed stays byte-identical). Drawn from its own stream ``[seed, 6]``.
    """
    if rho == 0:
        return
    rng = np.random.default_rng([seed, 6])
    n_patients = max(r["patient"] for r in case_rows) + 1
    shared_grade = rng.choice(LEVELS, size=n_patients, p=GRADE_PROBABILITIES)
    z_patient = rng.standard_normal(n_patients)
    for r in case_rows:
        u, z_image = rng.random(), rng.standard_normal()
        if u < rho:
            r["target_grade"] = str(shared_grade[r["patient"]])
        r["difficulty"] = float(np.sqrt(rho) * z_patient[r["patient"]] + np.sqrt(1 - rho) * z_image)
