"""The config's ``cohort.annotators``: who annotated, their files and qualifications."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from study.errors import Problem, StudyError


@dataclass(frozen=True)
class Annotator:
    """One annotator of the reference standard (an entry of the config's ``cohort.annotators``).

    Attributes
    ----------
    id : str
    annotations : str
        Their COCO instances file; every manifest image is listed (an image without lesions has none).
    grades : str or None
        Their grades CSV (``case_id, grade``); None: their grade is computed from their lesions.
    qualification : str or None
    years_experience : float or None
    """

    id: str
    annotations: str
    grades: str | None = None
    qualification: str | None = None
    years_experience: float | None = None


def annotator_config_problems(config: dict[str, Any], *, source: str = "<config>") -> list[Problem]:
    """Cross-field rules of ``cohort.annotators`` the JSON schema cannot say (all reported).

    Ids unique; ``cohort.annotations`` / ``cohort.reference`` not given alongside (the fused
    reference replaces them); the protocol's fusion adjudicator is not checked here (see
    :func:`check_adjudicator`).
    """
    cohort = config.get("cohort")
    if not isinstance(cohort, dict) or not isinstance(cohort.get("annotators"), list):
        return []
    problems = []
    seen: dict[str, int] = {}
    for i, a in enumerate(cohort["annotators"]):
        aid = a.get("id") if isinstance(a, dict) else None
        if isinstance(aid, str) and aid in seen:
            problems.append(Problem(source, f"cohort.annotators.{i}.id", f"annotator id {aid!r} is used by "
                                    f"cohort.annotators.{seen[aid]} too: every annotator needs their own id"))
        elif isinstance(aid, str):
            seen[aid] = i
    for key in ("annotations", "reference"):
        if cohort.get(key):
            problems.append(Problem(source, f"cohort.{key}", f"cohort.{key} and cohort.annotators are both given; "
                                    "expected one: with annotators the reference standard is fused from their files "
                                    "(protocol reference_standard.fusion)"))
    return problems


def annotators_from_config(config: dict[str, Any]) -> list[Annotator]:
    """The annotators of a (schema-valid) config, in config order; [] when none are configured."""
    entries = (config.get("cohort") or {}).get("annotators") or []
    return [Annotator(id=str(e["id"]), annotations=str(e["annotations"]), grades=e.get("grades"),
                      qualification=e.get("qualification"),
                      years_experience=float(e["years_experience"]) if e.get("years_experience") is not None else None)
            for e in entries]


def check_adjudicator(adjudicator: str | None, annotators: list[Annotator], *, source: str) -> None:
    """Raise when the protocol's fusion adjudicator is not one of the annotators."""
    ids = [a.id for a in annotators]
    if adjudicator is not None and adjudicator not in ids:
        raise StudyError(f"adjudicator {adjudicator!r} is not one of the configured annotators {ids}",
                         file=source, where="reference_standard.fusion.adjudicator")


def annotator_file_problems(annotators: list[Annotator], *, protocol: Any, cases: Any,
                            resolve: Any = None) -> tuple[list[Problem], dict[str, int]]:
    """Every problem of the annotators' files and of the protocol's fusion against them (``study check``).

    Each annotations file is validated like ``cohort.annotations`` and must list every manifest
    image; each grades file like ``cohort.reference`` and must grade every case; the fusion's
    adjudicator must be an annotator and ``lesion_fusion.min_annotators`` at most their number.
    ``resolve`` maps a config path to the file to read (default: as given).

    Returns
    -------
    (problems, summary)
        ``summary``: ``annotators`` and the total ``annotator_lesions``.
    """
    from study.cohort import validate_annotations, validate_reference

    resolve = resolve or (lambda p: p)
    problems: list[Problem] = []
    lesions = 0
    order = [str(c) for c in cases["case_id"]]
    for a in annotators:
        doc, p = validate_annotations(resolve(a.annotations), cases=cases, classes=list(protocol.classes),
                                      polygon_classes=protocol.polygon_classes, source=a.annotations)
        problems += p
        if doc is not None:
            lesions += len(doc["annotations"])
            if doc["unannotated_cases"]:
                problems.append(Problem(a.annotations, "images", f"annotator {a.id!r} did not annotate "
                                        f"{len(doc['unannotated_cases'])} manifest case(s) (e.g. "
                                        f"{doc['unannotated_cases'][:5]}); expected every manifest image listed"))
        if a.grades:
            df, p = validate_reference(resolve(a.grades), levels=protocol.levels,
                                       aliases=protocol.grading.letter_aliases or {}, cases=cases)
            problems += [Problem(a.grades, x.where, x.message) for x in p]
            if df is not None:
                missing = sorted(set(order) - set(df["case_id"].astype(str)))
                if missing:
                    problems.append(Problem(a.grades, "case_id", f"annotator {a.id!r} gave no grade for "
                                            f"{len(missing)} manifest case(s) (e.g. {missing[:5]}); expected a grade "
                                            "for every case"))
    rs = protocol.reference_standard
    if rs is not None and rs.fusion is not None:
        try:
            check_adjudicator(rs.fusion.adjudicator, annotators, source="protocol")
        except StudyError as e:
            problems += e.problems
    if rs is not None and rs.lesion_fusion is not None and rs.lesion_fusion.min_annotators > len(annotators):
        problems.append(Problem("protocol", "reference_standard.lesion_fusion.min_annotators",
                                f"{rs.lesion_fusion.min_annotators} exceeds the {len(annotators)} annotators"))
    return problems, {"annotators": len(annotators), "annotator_lesions": lesions}
