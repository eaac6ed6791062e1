"""Checklist status (STARD 2015, CLAIM 2024) computed from results.json; readers' certification.

The committed report fixture has no model card and no reference-standard description: its
model-card and reference items are "not reported"; adding them to the typed results turns the
same items "reported" (no rendering here: tests/test_report.py and tests/test_workflow_e2e.py
read the PDFs).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from study.protocol import ReferenceStandard
from study.report import claim, stard
from study.report.checklist_status import item_status
from study.report.context.common import SECTIONS
from study.results import Results
from study.results.models import DataDescription, ModelCard

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "report" / "results.json.gz"


@pytest.fixture(scope="module")
def results() -> Results:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        return Results.model_validate(json.load(f))


def _status(rows, number):
    return next(r["status"] for r in rows if r["number"] == number)


def _with_card_and_reference(r: Results) -> Results:
    card = ModelCard(version="1", architecture="Faster R-CNN", input_size="800 px", preprocessing="RGB",
                     training_data=DataDescription(description="d", size="10 images", sites="A", dates="2024"),
                     tuning_data=DataDescription(description="t"), patient_separation="disjoint patients",
                     operating_threshold=0.5, threshold_rationale="Youden index on the tuning set")
    models = {m: meta.model_copy(update={"card": card}) for m, meta in r.models.items()}
    ps = r.study.protocol_settings.model_copy(update={"reference_standard": ReferenceStandard(
        annotators="two dermatologists", qualifications="board-certified", disagreements="adjudicated by a third",
        annotation_tool="CVAT")})
    study = r.study.model_copy(update={"protocol_settings": ps})
    return r.model_copy(update={"models": models, "study": study})


def test_checklists_have_their_items_and_known_sections():
    assert len(stard.ITEMS) == 34 and len(claim.ITEMS) == 44
    assert [it.number for it in claim.ITEMS] == [str(i) for i in range(1, 45)]
    for it in stard.ITEMS + claim.ITEMS:
        assert it.section in SECTIONS, it


def test_status_follows_what_results_hold(results):
    rows = stard.checklist(results, SECTIONS)
    crow = claim.checklist(results, SECTIONS)
    assert {r["status"] for r in rows + crow} == {"reported", "not reported", "not applicable"}
    # the fixture: no model card, no reference description, information partly supplied
    assert [_status(rows, n) for n in ("10a", "10b", "12a")] == ["not reported"] * 3
    assert [_status(crow, n) for n in ("9", "17", "22", "23", "27")] == ["not reported"] * 5
    supplied = results.study.information.supplied()
    for number, key in (("28", "registration"), ("30", "funding"), ("5", "design")):
        assert _status(rows, number) == ("reported" if key in supplied else "not reported"), number
    full = _with_card_and_reference(results)
    rows2, crow2 = stard.checklist(full, SECTIONS), claim.checklist(full, SECTIONS)
    assert [_status(rows2, n) for n in ("10a", "10b", "12a")] == ["reported"] * 3
    assert [_status(crow2, n) for n in ("9", "17", "18", "22", "23", "27")] == ["reported"] * 6
    # a card missing one field leaves the items that need it not reported
    part = full.model_copy(update={"models": {m: v.model_copy(update={"card": v.card.model_copy(
        update={"threshold_rationale": None})}) for m, v in full.models.items()}})
    status, why = item_status("card:threshold_rationale", part)
    assert status == "not reported" and "threshold_rationale" in why


def test_unknown_evidence_is_an_error(results):
    with pytest.raises(ValueError, match="unknown checklist evidence"):
        item_status("nothing:here", results)


def test_reader_certification_and_conditions_reach_the_reader_table(results):
    from study.readers.characteristics import readers_block
    from study.report.context.methods import methods_context

    readings = pd.DataFrame({"reader_id": ["r1", "r1", "r2"], "reader_group": ["junior"] * 3,
                             "case_id": ["C1", "C2", "C1"], "grade": ["I", "II", "I"]})
    chars = pd.DataFrame({"reader_id": ["r1", "r2"], "reader_group": ["junior", "junior"],
                          "years_of_experience": [3.0, None], "specialty": ["dermatology", ""],
                          "certification": ["board-certified dermatologist", ""],
                          "reading_conditions": ["calibrated 27-inch monitor, dim room", ""]})
    block = readers_block(readings, characteristics=chars)
    assert block.readers[0].certification == "board-certified dermatologist"
    assert block.readers[1].certification == "" and "certification" not in block.readers[1].to_json_dict()
    # the fixture's readers, certification and conditions recorded for one: the table gets the columns
    from study.results.readers import ReaderRow, ReadersBlock

    ids = sorted(k for k, v in results.agreement.raters.items() if v.kind != "model")
    rows = [ReaderRow(reader_id=rid, reader_group="", n_unaided=1, n_aided=0, n_not_assessable=0,
                      certification="board-certified" if i == 0 else "",
                      reading_conditions="clinic monitor" if i == 0 else "") for i, rid in enumerate(ids)]
    r = results.model_copy(update={"readers": ReadersBlock(readers=rows, source="reading database")})
    t = methods_context(r)["readers"]
    assert t["columns"][-2:] == ["Certification", "Reading conditions"]
    first = rows[0].reader_id
    row = next(x for x in t["rows"] if x[0] == first)
    assert row[-2:] == ["board-certified", "clinic monitor"]


def test_a_fused_reference_answers_who_annotated_and_how_disagreements_were_settled(results):
    """reference.annotators (several annotators' files) reports STARD 10b and CLAIM 17/19 without the protocol's
    text; qualifications count only when every annotator's is given."""
    from study.estimate import Estimate
    from study.results.reference import AnnotatorRow, AnnotatorsBlock, ReferenceBlock

    e = Estimate(0.5, 0.4, 0.6, "m")
    rows = [AnnotatorRow(annotator_id=a, qualification="dermatologist", n_lesions=3, grades_source="grades file")
            for a in ("A1", "A2")]
    block = AnnotatorsBlock(annotators=rows, grade_rule="majority", lesion_rule="k of m", rule="majority",
                            ties="more_severe", min_annotators=2, iou_threshold=0.5, box="median", n_cases=2,
                            n_patients=2, settled_by={"unanimous": 2}, n_lesions_fused=3, lesions_by_support={"2": 3},
                            n_clusters_dropped=0, fleiss_kappa=e, agreement_iou=0.5, pairs=[])
    fused = results.model_copy(update={"reference": ReferenceBlock(annotators=block)})
    assert results.study.protocol_settings.reference_standard is None
    crow = claim.checklist(fused, SECTIONS)
    assert [_status(crow, n) for n in ("15", "17", "19")] == ["reported"] * 3
    assert _status(stard.checklist(fused, SECTIONS), "10b") == "reported"
    assert _status(claim.checklist(results, SECTIONS), "19") == "not reported"
    partly = block.model_copy(update={"annotators": [rows[0], rows[1].model_copy(update={"qualification": None})]})
    fused2 = results.model_copy(update={"reference": ReferenceBlock(annotators=partly)})
    assert _status(claim.checklist(fused2, SECTIONS), "17") == "not reported"
