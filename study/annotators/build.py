"""Several annotators' files -> the fused reference standard, the record of disagreements, agreement.

The workflow step ``fuse_reference`` (:func:`study.steps.fuse_reference`) calls
:func:`build_reference`; intake then reads the fused COCO file as the study's annotations and
the reference step the fused grades as its reference file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from study.annotators.agreement import grade_agreement, lesion_agreement
from study.annotators.config import Annotator, check_adjudicator
from study.annotators.grades import SETTLED_BY, fuse_grades
from study.annotators.lesions import fuse_image_lesions
from study.errors import StudyError
from study.protocol import GradeFusion, LesionFusion, Protocol
from study.results.reference import AnnotatorRow, AnnotatorsBlock, PairAgreement

#: the grade rule when the protocol names none
DEFAULT_FUSION = GradeFusion(rule="majority", ties="more_severe")
#: lesion F1 between annotators is computed at this IoU
AGREEMENT_IOU = 0.5


def describe_grade_rule(f: GradeFusion) -> str:
    """The grade fusion rule in words (printed in the report's methods)."""
    adj = f"annotator {f.adjudicator}" if f.adjudicator else "no adjudicator"
    if f.rule == "majority":
        tie = (f"a tie goes to the adjudicator ({adj})" if f.ties == "adjudicator"
               else "a tie goes to the more severe of the tied grades")
        return f"majority: the grade most annotators gave; {tie}"
    if f.rule == "consensus":
        return (f"consensus: the grade all annotators gave; disagreements settled by the adjudicator ({adj})"
                if f.adjudicator else "consensus: the grade all annotators gave (every case was unanimous)")
    return f"adjudicator: the grade all annotators gave; disagreements settled by the adjudicator ({adj})"


def describe_lesion_rule(f: LesionFusion, *, m: int) -> str:
    """The lesion fusion rule in words (printed in the report's methods)."""
    return (f"a lesion is in the reference when at least {f.min_annotators} of the {m} annotators mark a lesion of "
            f"the same class overlapping it (IoU >= {f.iou_threshold:g}; greedy clustering, one box per annotator); "
            f"its box is the {f.box} of their boxes (polygon classes: the most central annotator's polygon)")


def _load_annotator(a: Annotator, *, cases: pd.DataFrame, protocol: Protocol) -> tuple[dict[str, list], dict[str, str], str]:
    """One annotator's lesions by case, grades by case and where the grades come from."""
    from study import cohort, grading

    doc = cohort.load_annotations(a.annotations, cases=cases, classes=list(protocol.classes),
                                  polygon_classes=protocol.polygon_classes)
    if doc["unannotated_cases"]:
        missing = doc["unannotated_cases"]
        raise StudyError(f"annotator {a.id!r} did not annotate {len(missing)} manifest case(s) (e.g. "
                         f"{missing[:5]}); expected every manifest image listed in their file (an image without "
                         "lesions has no annotations)", file=a.annotations, where="images")
    case_of = {im["id"]: im["case_id"] for im in doc["images"]}
    lesions: dict[str, list] = {c: [] for c in cases["case_id"].astype(str)}
    for ann in doc["annotations"]:
        lesions[case_of[ann["image_id"]]].append(ann)
    if a.grades:
        ref = cohort.load_reference(a.grades, levels=protocol.levels, aliases=protocol.grading.letter_aliases or {},
                                    cases=cases)
        grades = dict(zip(ref["case_id"].astype(str), ref["grade"].astype(str)))
        missing = [c for c in lesions if c not in grades]
        if missing:
            raise StudyError(f"annotator {a.id!r} gave no grade for {len(missing)} manifest case(s) (e.g. "
                             f"{missing[:5]}); expected a grade for every case", file=a.grades, where="case_id")
        source = "grades file"
    else:
        counts = grading.counts_from_coco(doc, classes=protocol.classes, source=a.annotations)
        graded = grading.grade_from_counts(counts, protocol.grading, source=a.annotations)
        grades = {str(c): str(graded[c]) for c in counts["case_id"]}
        source = f"graded from their lesions ({protocol.grading.scheme})"
    return lesions, grades, source


def build_reference(annotators: Sequence[Annotator], *, cases: pd.DataFrame, protocol: Protocol,
                    source: str = "protocol") -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, AnnotatorsBlock]:
    """Fuse the annotators' files into the reference standard.

    Parameters
    ----------
    annotators : the config's ``cohort.annotators`` (at least two).
    cases : the manifest (``case_id``, ``patient_id``, ``image``).
    protocol : its ``reference_standard.fusion`` / ``lesion_fusion`` (defaults :data:`DEFAULT_FUSION`,
        :class:`~study.protocol.LesionFusion` ()), ``statistics`` (bootstrap), classes and grading.

    Returns
    -------
    (coco, reference, disagreements, block)
        The fused COCO instances (``file_name`` = manifest image; each annotation with
        ``n_annotators``), the reference grades (``case_id, grade``), one row per case the
        annotators did not all grade alike (``case_id``, ``grade_<annotator>``..., ``grade``,
        ``settled_by``) and the typed record (:class:`~study.results.reference.AnnotatorsBlock`).

    Raises
    ------
    StudyError
        A file invalid or incomplete, an adjudicator not among the annotators, ``min_annotators``
        above the number of annotators, a disagreement the rule cannot settle.
    """
    rs = protocol.reference_standard
    fusion = (rs.fusion if rs and rs.fusion else DEFAULT_FUSION)
    lesion_fusion = (rs.lesion_fusion if rs and rs.lesion_fusion else LesionFusion())
    m = len(annotators)
    if m < 2:
        raise StudyError(f"{m} annotator(s) configured; a fused reference needs at least two", file="config",
                         where="cohort.annotators")
    check_adjudicator(fusion.adjudicator, list(annotators), source=source)
    if lesion_fusion.min_annotators > m:
        raise StudyError(f"lesion_fusion.min_annotators {lesion_fusion.min_annotators} exceeds the {m} annotators",
                         file=source, where="reference_standard.lesion_fusion.min_annotators")
    case_ids = cases["case_id"].astype(str).tolist()
    patient_of = dict(zip(case_ids, cases["patient_id"].astype(str))) if "patient_id" in cases else {}
    lesions, grades, sources = {}, {}, {}
    for a in annotators:
        lesions[a.id], grades[a.id], sources[a.id] = _load_annotator(a, cases=cases, protocol=protocol)

    fused = fuse_grades(grades, case_ids=case_ids, fusion=fusion, levels=protocol.levels)
    reference = pd.DataFrame({"case_id": [f.case_id for f in fused], "grade": [f.grade for f in fused]})
    disagreements = pd.DataFrame(
        [{"case_id": f.case_id, **{f"grade_{a}": g for a, g in f.votes.items()}, "grade": f.grade,
          "settled_by": f.settled_by} for f in fused if f.settled_by != "unanimous"],
        columns=["case_id", *[f"grade_{a.id}" for a in annotators], "grade", "settled_by"])

    class_of = {i + 1: c for i, c in enumerate(protocol.classes)}
    images, anns, support = [], [], Counter()
    for pos, (cid, image) in enumerate(zip(case_ids, cases["image"].astype(str)), start=1):
        images.append({"id": pos, "file_name": image})
        per = [lesions[a.id][cid] for a in annotators]
        for ann in fuse_image_lesions(per, fusion=lesion_fusion, polygon_classes=protocol.polygon_classes,
                                      class_of=class_of):
            support[str(ann["n_annotators"])] += 1
            anns.append({"id": len(anns) + 1, "image_id": pos, **ann})
    coco = {"images": images, "annotations": anns,
            "categories": [{"id": i + 1, "name": c} for i, c in enumerate(protocol.classes)]}

    st = protocol.statistics
    ga = grade_agreement(grades, case_ids=case_ids, levels=protocol.levels, patient_of=patient_of,
                         replicates=st.bootstrap_replicates, seed=st.bootstrap_seed, confidence=st.confidence_level)
    la = lesion_agreement(lesions, case_ids=case_ids, patient_of=patient_of, replicates=st.bootstrap_replicates,
                          seed=st.bootstrap_seed, confidence=st.confidence_level, iou_threshold=AGREEMENT_IOU)
    settled = Counter(f.settled_by for f in fused)
    block = AnnotatorsBlock(
        annotators=[AnnotatorRow(annotator_id=a.id, qualification=a.qualification, years_experience=a.years_experience,
                                 n_lesions=sum(len(v) for v in lesions[a.id].values()), grades_source=sources[a.id])
                    for a in annotators],
        grade_rule=describe_grade_rule(fusion), lesion_rule=describe_lesion_rule(lesion_fusion, m=m),
        rule=fusion.rule, ties=fusion.ties, adjudicator=fusion.adjudicator,
        min_annotators=lesion_fusion.min_annotators, iou_threshold=lesion_fusion.iou_threshold, box=lesion_fusion.box,
        n_cases=len(case_ids), n_patients=ga["n_patients"], settled_by={s: settled.get(s, 0) for s in SETTLED_BY},
        n_lesions_fused=len(anns), lesions_by_support=dict(sorted(support.items(), key=lambda t: int(t[0]))),
        n_clusters_dropped=_dropped_clusters(lesions, annotators, case_ids, lesion_fusion),
        fleiss_kappa=ga["fleiss"], agreement_iou=AGREEMENT_IOU,
        pairs=[PairAgreement(a=key.split("|")[0], b=key.split("|")[1], cohen_kappa=k, lesion_f1=la[key])
               for key, k in ga["pairwise"].items()])
    return coco, reference, disagreements, block


def _dropped_clusters(lesions: dict[str, dict[str, list]], annotators: Sequence[Annotator], case_ids: list[str],
                      fusion: LesionFusion) -> int:
    """Clusters marked by fewer than ``min_annotators`` annotators (lesions left out of the reference)."""
    from study.annotators.lesions import cluster_boxes

    dropped = 0
    for cid in case_ids:
        per = [lesions[a.id][cid] for a in annotators]
        for cat in sorted({x["category_id"] for anns in per for x in anns}):
            for c in cluster_boxes([[x for x in anns if x["category_id"] == cat] for anns in per],
                                   iou_threshold=fusion.iou_threshold):
                dropped += len(c.annotators) < fusion.min_annotators
    return dropped


def write_reference(annotators: Sequence[Annotator], *, manifest: str, image_root: str, protocol: Protocol,
                    out_annotations: str | Path, out_reference: str | Path, out_disagreements: str | Path,
                    out_record: str | Path, source: str = "protocol") -> AnnotatorsBlock:
    """:func:`build_reference` on the manifest file, written atomically (the ``fuse_reference`` step)."""
    from study.cohort import validate_manifest
    from study.errors import raise_if
    from study.io import write_json, write_text

    cases, problems, _ = validate_manifest(manifest, image_root=image_root, probe=False)
    if cases is None:
        raise_if(problems)
    assert cases is not None
    coco, reference, disagreements, block = build_reference(annotators, cases=cases, protocol=protocol,
                                                            source=source)
    write_json(out_annotations, coco)
    write_text(out_reference, reference.to_csv(index=False, lineterminator="\n"))
    write_text(out_disagreements, disagreements.to_csv(index=False, lineterminator="\n"))
    write_json(out_record, block.to_json_dict())
    return block
