"""Vocabulary of a synthetic cohort: lesion classes, grade levels, covariates, planted exclusions.

The cohort follows ``protocols/chinese-2019.yaml``: its classes and levels are those of the
protocol, and every grade is the protocol's own (:func:`study.grading.grade_from_counts`
with the protocol's :class:`~study.protocol.Grading`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

from study.errors import StudyError
from study.grading import COUNT_PREFIX, grade_from_counts
from study.protocol import Grading, load_protocol

#: lesion classes, in COCO category order (ids 1..6)
CLASSES: list[str] = ["comedone", "papule", "pustule", "nodule", "cyst", "scar"]
#: classes annotated with polygons (``segmentation``) as well as boxes
POLYGON_CLASSES: list[str] = ["cyst", "scar"]
#: grade levels of the Chinese acne guideline 2019, least to most severe
LEVELS: list[str] = ["I", "II", "III", "IV"]
#: planted exclusion kinds, in the order they are assigned
EXCLUSIONS: list[str] = ["blurred", "underexposed", "overexposed", "no_face", "minor", "other_facial_disease"]
FITZPATRICK: list[str] = ["I", "II", "III", "IV", "V", "VI"]
SITES: list[str] = ["site-A", "site-B", "site-C"]
DEVICES: list[str] = ["phone-1", "phone-2", "phone-3"]
OTHER_DISEASES: list[str] = ["rosacea", "seborrheic_dermatitis"]

#: the protocol a synthetic cohort follows (classes, levels, grading)
PROTOCOL_PATH: Path = Path(__file__).resolve().parents[2] / "protocols" / "chinese-2019.yaml"


@cache
def grading() -> Grading:
    """The grading of :data:`PROTOCOL_PATH` (Chinese acne guideline 2019), read once.

    Raises
    ------
    StudyError
        The protocol is missing or invalid, or its classes or levels are not
        :data:`CLASSES` / :data:`LEVELS` (the lesions drawn here).
    """
    protocol = load_protocol(PROTOCOL_PATH).protocol
    if list(protocol.classes) != CLASSES or protocol.levels != LEVELS:
        raise StudyError(f"the synthetic cohort draws classes {CLASSES} graded {LEVELS}, but the protocol has "
                         f"classes {list(protocol.classes)} and levels {protocol.levels}",
                         file=str(PROTOCOL_PATH), where="classes / grading.levels")
    return protocol.grading


def grade_cases(counts: dict[str, dict[str, int]]) -> dict[str, str]:
    """Grade every case from its lesion counts by the protocol's grading.

    Parameters
    ----------
    counts : case_id -> {class: count} for every class of :data:`CLASSES`.

    Returns
    -------
    dict
        case_id -> level, in the order of ``counts``.

    References
    ----------
    Chinese Society of Dermatology, Acne Group (2019). Chinese guidelines for the management
    of acne vulgaris (2019 revision). J Clin Dermatol. (rules in ``protocols/chinese-2019.yaml``)
    """
    table = pd.DataFrame({"case_id": list(counts),
                          **{COUNT_PREFIX + k: [c[k] for c in counts.values()] for k in CLASSES}})
    grades = grade_from_counts(table, grading(), source="synthetic lesion counts")
    return {str(cid): str(g) for cid, g in grades.items()}
