"""Writing a synthetic cohort: images, manifest, COCO annotations, reference and readings files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from study.errors import StudyError
from study.synth.drawing import RenderJob, render_job
from study.synth.face import patient_look
from study.synth.options import SynthOptions
from study.synth.planning import correlate_within_patients, plan_cohort
from study.synth.readers import simulate_readings
from study.synth.vocabulary import CLASSES, EXCLUSIONS, LEVELS, grade_cases


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r[k] for k in columns})
    return buf.getvalue()


def _fade(difficulty: float | None) -> float:
    """Lesion fade of an image from its difficulty score: 0 for the easier half, up to 0.7."""
    if difficulty is None:
        return 0.0
    from scipy.special import ndtr

    return float(0.7 * max(0.0, 2 * float(ndtr(difficulty)) - 1))


MANIFEST_COLUMNS = ["case_id", "patient_id", "image", "age", "sex", "fitzpatrick", "skin_type_assessor", "site",
                    "device", "diagnosis", "other_facial_disease", "planted_exclusion"]
#: who assigns the synthetic skin types (the manifest's skin_type_assessor column)
SKIN_TYPE_ASSESSOR = "dermatologist"


def make_cohort(out_dir: str | Path, *, cases: int, seed: int = 0, image_size: int = 512,
                exclusion_rate: float = 0.15, readers: list[tuple[str, str, float, float]] | None = None,
                workers: int = 1, aided_session: bool = False, patient_correlation: float = 0.0) -> dict[str, Any]:
    """Write a synthetic acne cohort into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Output folder (created); existing cohort files in it are replaced.
    cases : int
        Number of images (cases), >= 1. The ranges of every option are those of
        :class:`~study.synth.options.SynthOptions` (a :class:`StudyError` names each bad one).
    seed : int
        Seed; the same seed (and options) gives byte-identical files.
    image_size : int
        Square image side in pixels (>= 128); lesion sizes scale with it (6-30 px at 512).
    exclusion_rate : float
        Share of cases planted to fail the protocol (0 <= rate < 1), split evenly over
        :data:`EXCLUSIONS`: blurred, underexposed, overexposed, no_face (image-level) and
        minor, other_facial_disease (whole single-image patients).
    readers : list of (reader_id, group, error_probability, share_of_non_core_cases), optional
        Simulated dermatologists; default :data:`DEFAULT_READERS` (2 junior, 3 intermediate,
        2 senior).
    workers : int
        Processes used to draw images (output does not depend on it).
    aided_session : bool
        Also read the cohort a second time helped by a (simulated) AI aid
        (:func:`study.synth.aided.simulate_aided_readings`): ``readings.csv`` then has
        ``modality`` (``unaided``/``aided``) and ``confidence`` (0-100) columns. Off by default
        until readings with a modality column are accepted by every study step.
    patient_correlation : float
        Intra-patient correlation in [0, 1): a patient's images share their severity and how
        hard they are for the model and for each reader
        (:func:`~study.synth.planning.correlate_within_patients`); 0 = images independent
        given the patient's look and skin type.

    Returns
    -------
    dict
        ``{"out_dir", "cases", "patients", "seed", "image_size", "grades": {level: n},
        "lesions": {class: n}, "planted_exclusions": {kind: n}, "readers": {reader_id: n_read},
        "files": {role: relative path}}``.
    """
    opts = SynthOptions.checked(cases=cases, seed=seed, image_size=image_size, exclusion_rate=exclusion_rate,
                                readers=readers, workers=workers, aided_session=aided_session,
                                patient_correlation=patient_correlation)
    readers = list(opts.readers)

    from study import io as sio

    out = Path(out_dir)
    try:
        (out / "images").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StudyError(f"cannot create the cohort folder: {e.strerror}", file=str(out), where="images") from None
    patients, case_rows = plan_cohort(cases, seed, exclusion_rate)
    correlate_within_patients(case_rows, rho=opts.patient_correlation, seed=seed)
    looks = [patient_look(np.random.default_rng([seed, 1, p]), pat.fitzpatrick) for p, pat in enumerate(patients)]
    jobs = []
    for r in case_rows:
        pat = patients[r["patient"]]
        jobs.append(RenderJob(seed, r["index"], looks[r["patient"]], r["target_grade"], image_size,
                              r["planted_exclusion"], pat.other_facial_disease, _fade(r.get("difficulty"))))
    if workers > 1:
        from multiprocessing import get_context

        with get_context("spawn").Pool(workers) as pool:
            rendered = pool.map(render_job, jobs, chunksize=8)
    else:
        rendered = [render_job(j) for j in jobs]

    manifest, images, annotations = [], [], []
    counts_by_case: dict[str, dict[str, int]] = {}
    ann_id = 1
    for r, (jpeg, lesions) in zip(case_rows, rendered):
        pat = patients[r["patient"]]
        cid = f"C{r['index'] + 1:05d}"
        fname = f"{cid}.jpg"
        sio.write_bytes(out / "images" / fname, jpeg)
        manifest.append({"case_id": cid, "patient_id": pat.patient_id, "image": fname, "age": pat.age, "sex": pat.sex,
                         "fitzpatrick": pat.fitzpatrick, "skin_type_assessor": SKIN_TYPE_ASSESSOR, "site": pat.site, "device": pat.device, "diagnosis": "acne",
                         "other_facial_disease": pat.other_facial_disease,
                         "planted_exclusion": r["planted_exclusion"]})
        img_id = r["index"] + 1
        images.append({"id": img_id, "file_name": fname, "width": image_size, "height": image_size, "case_id": cid})
        cnt = {k: 0 for k in CLASSES}
        for les in lesions:
            cnt[les.cls] += 1
            a = {"id": ann_id, "image_id": img_id, "category_id": CLASSES.index(les.cls) + 1, "bbox": les.bbox,
                 "area": round(les.area, 2), "iscrowd": 0}
            if les.polygon:
                a["segmentation"] = [les.polygon]
            annotations.append(a)
            ann_id += 1
        counts_by_case[cid] = cnt
    grades = grade_cases(counts_by_case)
    reference = [{"case_id": cid, "grade": grades[cid], **{f"count_{k}": cnt[k] for k in CLASSES}}
                 for cid, cnt in counts_by_case.items()]

    coco = {
        "info": {"description": f"acne-study synthetic cohort (seed {seed}, {cases} cases)", "version": "1"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": c, "supercategory": "acne_lesion"} for i, c in enumerate(CLASSES)],
    }
    difficulty = ({f"C{r['index'] + 1:05d}": r["difficulty"] for r in case_rows}
                  if opts.patient_correlation > 0 else None)
    readings = simulate_readings(grades, counts_by_case, seed=seed, readers=readers, difficulty=difficulty)
    reading_columns = ["reader_id", "reader_group", "case_id", "grade"]
    if opts.aided_session:
        from study.synth.aided import add_confidence, simulate_aided_readings

        aided = simulate_aided_readings(grades, readings, seed=seed, readers=readers)
        readings = add_confidence(readings, seed=seed) + aided
        reading_columns += ["modality", "confidence"]
    sio.write_text(out / "manifest.csv", _csv_text(manifest, MANIFEST_COLUMNS))
    sio.write_text(out / "annotations.json", json.dumps(coco, separators=(",", ":"), sort_keys=True) + "\n")
    sio.write_text(out / "reference.csv", _csv_text(reference, ["case_id", "grade"] + [f"count_{k}" for k in CLASSES]))
    sio.write_text(out / "readings.csv", _csv_text(readings, reading_columns))

    summary = {
        "out_dir": str(out),
        "cases": cases,
        "patients": len(patients),
        "seed": seed,
        "image_size": image_size,
        "patient_correlation": opts.patient_correlation,
        "grades": {g: sum(1 for r in reference if r["grade"] == g) for g in LEVELS},
        "lesions": {c: sum(cnt[c] for cnt in counts_by_case.values()) for c in CLASSES},
        "planted_exclusions": {k: sum(1 for m in manifest if m["planted_exclusion"] == k) for k in EXCLUSIONS},
        "readers": {rid: sum(1 for x in readings if x["reader_id"] == rid and x.get("modality", "unaided") == "unaided")
                    for rid, *_ in readers},
        "aided_readings": sum(1 for x in readings if x.get("modality") == "aided"),
        "files": {"images": "images", "manifest": "manifest.csv", "annotations": "annotations.json",
                  "reference": "reference.csv", "readings": "readings.csv"},
    }
    return summary
