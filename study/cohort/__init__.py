"""Cohort intake: manifest, COCO annotations and reference tables; loading, validation, normalisation.

Every ``validate_*`` function returns ``(result, problems)`` and collects *all* problems of
its input (file, row / JSON path, offending value, what was expected), so ``study check``
can report everything at once. The ``load_*`` functions used by the workflow raise a
:class:`~study.errors.StudyError` carrying those problems, except that images which are
missing or do not decode do not stop the intake: they stay in the cases table with
``decodable = False`` and ``image_error`` saying why, and the STARD flow counts them as
"not decodable" (``study check`` does report them as problems).

Row numbers are the file's line numbers (the header is line 1), so ``row 7`` is what a
spreadsheet or text editor shows.

Modules: :mod:`~study.cohort.tables` (CSV cells shared by every table),
:mod:`~study.cohort.images`, :mod:`~study.cohort.manifest`,
:mod:`~study.cohort.annotations`, :mod:`~study.cohort.reference`.
"""

from study.cohort.annotations import empty_ground_truth, load_annotations, validate_annotations
from study.cohort.images import probe_image, resolve_image
from study.cohort.manifest import MANIFEST_NUMERIC, MANIFEST_REQUIRED, load_manifest, validate_manifest
from study.cohort.reference import load_reference, validate_reference
from study.cohort.tables import _known_cases, check_case_id, count_columns, map_grade, parse_number, read_csv_table

__all__ = [
    "MANIFEST_NUMERIC", "MANIFEST_REQUIRED", "_known_cases", "check_case_id", "count_columns",
    "empty_ground_truth", "load_annotations", "load_manifest", "load_reference", "map_grade", "parse_number",
    "probe_image", "read_csv_table", "resolve_image", "validate_annotations", "validate_manifest",
    "validate_reference",
]
