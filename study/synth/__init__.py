"""Synthetic acne cohort generator (``study synth``): demo data and scale tests.

A cohort is a folder with

- ``images/<case_id>.jpg``: face-like photos (a skin-toned face with hair, brows, eyes,
  nose and mouth on a varied background, lighting gradient and sensor noise), with acne
  lesions of six classes drawn so that they look different from each other;
- ``manifest.csv``: ``case_id, patient_id, image, age, sex, fitzpatrick, skin_type_assessor, site, device,
  diagnosis, other_facial_disease, planted_exclusion``;
- ``annotations.json``: COCO instances (boxes for all lesions, polygons for cysts and scars);
- ``reference.csv``: ``case_id, grade, count_<class>...``, the grade from the true counts by
  the Chinese acne guideline 2019 (``protocols/chinese-2019.yaml``);
- ``readings.csv``: ``reader_id, reader_group, case_id, grade`` from simulated dermatologists.

Everything is drawn from :class:`numpy.random.Generator` streams derived from the seed
(one stream per patient and per case, so a case does not depend on how many cases follow
it), and images are encoded with fixed JPEG parameters: the same seed gives byte-identical
files.

Nothing here is clinical data. The lesion frequencies follow the test-set means of the
smartphone reader study (Frontiers in Medicine 2024: per image 3.7 comedones, 1.4 papules,
0.16 pustules, 0.03 nodules, 0.27 cysts, 2.5 scars) with the rarer inflammatory classes
boosted so that every grade I..IV occurs often enough to estimate per-grade statistics.

Modules: :mod:`~study.synth.vocabulary` (classes, levels, the protocol's grading),
:mod:`~study.synth.planning` (patients, cases, target grades, lesion counts, planted
exclusions), :mod:`~study.synth.face` and :mod:`~study.synth.lesions` (drawing),
:mod:`~study.synth.drawing` (one case to JPEG), :mod:`~study.synth.readers` (simulated
readings) and :mod:`~study.synth.writing` (:func:`make_cohort`, the files).
"""

from study.synth.drawing import JPEG_QUALITY, RenderJob, render_case
from study.synth.lesions import Lesion
from study.synth.planning import Patient, plan_cohort, sample_counts
from study.synth.readers import DEFAULT_READERS, simulate_readings
from study.synth.vocabulary import (CLASSES, DEVICES, EXCLUSIONS, FITZPATRICK, LEVELS, OTHER_DISEASES, POLYGON_CLASSES,
                                    PROTOCOL_PATH, SITES, grade_cases, grading)
from study.synth.writing import MANIFEST_COLUMNS, make_cohort

__all__ = [
    "CLASSES", "DEFAULT_READERS", "DEVICES", "EXCLUSIONS", "FITZPATRICK", "JPEG_QUALITY", "LEVELS", "MANIFEST_COLUMNS",
    "OTHER_DISEASES", "POLYGON_CLASSES", "PROTOCOL_PATH", "SITES", "Lesion", "Patient", "RenderJob", "grade_cases",
    "grading", "make_cohort", "plan_cohort", "render_case", "sample_counts", "simulate_readings",
]
