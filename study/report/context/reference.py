"""Methods, reference standard: the annotators, the fusion rule and their agreement (``reference.annotators``)."""

from __future__ import annotations

from typing import Any

from study.report.format import Table, fmt, fmt_int
from study.results.reference import AnnotatorsBlock

#: how the report names each way a grade was settled (keys: ``study.annotators.grades.SETTLED_BY``)
SETTLED_LABELS = {"unanimous": "all annotators agreed", "majority": "majority",
                  "tie: more severe grade": "tie, more severe grade", "tie: adjudicator": "tie, adjudicator",
                  "adjudicator": "adjudicator"}


def annotators_context(block: AnnotatorsBlock | None) -> dict[str, Any] | None:
    """The annotators table, the rules in words, how the cases were settled, and the agreement table.

    None when the study has a single reference file (no ``reference.annotators``).
    """
    if block is None:
        return None
    who = Table("tab-annotators", "Annotators of the reference standard",
                ["Annotator", "Qualification", "Years of experience", "Lesions marked", "Grades"])
    for a in block.annotators:
        who.add([a.annotator_id, a.qualification or "not supplied",
                 fmt(a.years_experience, 0 if float(a.years_experience or 0).is_integer() else 1)
                 if a.years_experience is not None else "not supplied", fmt_int(a.n_lesions), a.grades_source])
    agree = Table("tab-annotator-agreement",
                  f"Agreement between annotators over every manifest case, before the eligibility criteria "
                  f"({fmt_int(block.n_cases)} cases of {fmt_int(block.n_patients)} patients)", ["Annotators", "Cohen's kappa (grades)",
                                f"Lesion F1 at IoU ≥ {fmt(block.agreement_iou, 2)}"])
    for p in block.pairs:
        agree.add([f"{p.a} – {p.b}", agree.ci(p.cohen_kappa), agree.ci(p.lesion_f1)])
    agree.add(["All annotators: Fleiss' kappa", agree.ci(block.fleiss_kappa), "–"])
    agree.note("Cohen's kappa: unweighted (Cohen 1960); Fleiss' kappa (Fleiss 1971) over all annotators. Lesion F1 of "
               "a pair: 2 × lesions matched one-to-one (same class, IoU at or above the threshold) / (lesions of one "
               "+ lesions of the other), summed over cases.")
    settled = [f"{SETTLED_LABELS.get(k, k)}: {fmt_int(n)}" for k, n in block.settled_by.items()
               if n and k != "unanimous"]
    n_dis = block.n_cases - block.settled_by.get("unanimous", 0)
    support = ", ".join(f"{fmt_int(n)} marked by {k}" for k, n in block.lesions_by_support.items())
    return {
        "n": len(block.annotators),
        "who": who.to_dict(),
        "grade_rule": block.grade_rule,
        "lesion_rule": block.lesion_rule,
        "settled": (f"The annotators' grades differed on {fmt_int(n_dis)} of {fmt_int(block.n_cases)} cases"
                    + ("; settled by " + "; ".join(settled) if settled else "") + "."),
        "lesions": (f"{fmt_int(block.n_lesions_fused)} reference lesions ({support} annotators); "
                    f"{fmt_int(block.n_clusters_dropped)} lesions marked by fewer than {block.min_annotators} "
                    "annotators were left out."),
        "agreement": agree.to_dict(),
    }
