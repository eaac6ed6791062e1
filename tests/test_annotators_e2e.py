"""End to end: a small study whose reference standard is fused from three annotators, through the workflow.

``study synth --annotators 3`` makes the annotators' files; the config names them in
``cohort.annotators`` (no annotations or reference file). Checks that the fuse_reference rule
feeds intake and the reference step, that results.json's ``reference.annotators`` agrees
with an independent computation (statsmodels' Fleiss kappa, scikit-learn's Cohen kappa, the
majority rule recounted here) and that the report (pdftotext) prints the rule and the agreement.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.pdf_text import flat_text
from tests.small_study import make_cohort, study_env, write_config

pytestmark = pytest.mark.slow

IDS = ("A1", "A2", "A3")


@pytest.fixture(scope="module")
def fused_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("annotators-e2e")
    info = make_cohort(root / "cohort", cases=24, seed=5, annotators=3, annotator_noise=0.2)
    protocol = yaml.safe_load((root / "cohort" / "protocol.yaml").read_text())
    protocol["reference_standard"] = {
        "annotators": "three dermatologists", "fusion": {"rule": "majority", "ties": "adjudicator", "adjudicator": "A1"},
        "lesion_fusion": {"min_annotators": 2, "iou_threshold": 0.4, "box": "median"}}
    (root / "cohort" / "protocol.yaml").write_text(yaml.safe_dump(protocol), encoding="utf-8")
    annotators = [{"id": a, "annotations": f"cohort/annotators/{a}.json", "grades": f"cohort/annotators/{a}-grades.csv",
                   "qualification": "certified dermatologist", "years_experience": 4 + j}
                  for j, a in enumerate(IDS)]
    write_config(root / "config.yaml", "cohort", info, annotators=annotators)
    run = subprocess.run([str(Path(sys.executable).parent / "study"), "run", "config.yaml", "--cores", "2"], cwd=root,
                         env=study_env(), capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    return root


def _grades(root: Path) -> dict[str, pd.Series]:
    return {a: pd.read_csv(root / "cohort" / "annotators" / f"{a}-grades.csv", dtype=str).set_index("case_id")["grade"]
            for a in IDS}


def test_reference_is_the_fused_one(fused_run):
    r = fused_run / "results"
    grades = _grades(fused_run)
    ref = pd.read_parquet(r / "reference.parquet").set_index("case_id")["grade"]
    for cid, g in ref.items():
        votes = [grades[a][cid] for a in IDS]
        top = max(votes.count(v) for v in votes)
        tied = {v for v in votes if votes.count(v) == top}
        assert g == (tied.pop() if len(tied) == 1 else grades["A1"][cid]), cid  # majority; a tie to A1
    gt = json.loads((r / "ground_truth.json").read_text())
    fused = json.loads((r / "reference-standard" / "annotations.json").read_text())
    assert len(gt["annotations"]) == len(fused["annotations"]) > 0


def test_agreement_matches_statsmodels_and_sklearn(fused_run):
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    res = json.loads((fused_run / "results" / "results.json").read_text())
    block = res["reference"]["annotators"]
    grades = _grades(fused_run)
    cases = pd.read_csv(fused_run / "cohort" / "manifest.csv", dtype=str)["case_id"].tolist()
    levels = ["I", "II", "III", "IV"]
    codes = np.array([[levels.index(grades[a][c]) for a in IDS] for c in cases])
    assert block["fleiss_kappa"]["estimate"] == pytest.approx(fleiss_kappa(aggregate_raters(codes)[0]), abs=1e-12)
    for p in block["pairs"]:
        i, j = IDS.index(p["a"]), IDS.index(p["b"])
        assert p["cohen_kappa"]["estimate"] == pytest.approx(cohen_kappa_score(codes[:, i], codes[:, j]), abs=1e-12)
    assert block["n_cases"] == len(cases) and sum(block["settled_by"].values()) == len(cases)
    dis = pd.read_csv(fused_run / "results" / "reference-standard" / "disagreements.csv")
    assert len(dis) == len(cases) - block["settled_by"]["unanimous"]
    inputs = res["provenance"]["inputs"]
    assert inputs["annotator A2 grades"]["sha256"] and "annotations" not in inputs


def test_report_prints_the_rule_the_annotators_and_their_agreement(fused_run):
    res = json.loads((fused_run / "results" / "results.json").read_text())
    block = res["reference"]["annotators"]
    text = flat_text(fused_run / "results" / "report.pdf")
    assert "Reference fused from 3 annotators" in text
    assert "majority: the grade most annotators gave; a tie goes to the adjudicator (annotator A1)" in text
    assert "at least 2 of the 3 annotators" in text and "IoU >= 0.4" in text
    assert "Annotators of the reference standard" in text and "certified dermatologist" in text
    assert "Agreement between annotators" in text and "Fleiss' kappa" in text
    assert f"{block['fleiss_kappa']['estimate']:.3f}" in text
    a1a2 = block["pairs"][0]
    assert f"{a1a2['cohen_kappa']['estimate']:.3f}" in text and f"{a1a2['lesion_f1']['estimate']:.3f}" in text
    n_dis = block["n_cases"] - block["settled_by"]["unanimous"]
    assert f"The annotators' grades differed on {n_dis} of {block['n_cases']} cases" in text
    # STARD: how disagreements were settled comes from the rule when the protocol's text does not say
    assert "How disagreements were settled: by the protocol's fusion rule" in text
    # the protocol names the annotators; their qualifications come from the config's annotators
    assert "Annotators: three dermatologists" in text
    assert ("Their qualifications: A1: certified dermatologist; A2: certified dermatologist; "
            "A3: certified dermatologist") in text
