"""A reference standard fused from several annotators (study.annotators): rules, geometry, agreement, errors.

References: Fleiss' kappa against ``statsmodels.stats.inter_rater.fleiss_kappa``, Cohen's kappa
against ``sklearn.metrics.cohen_kappa_score``; grade rules and lesion fusion on hand-made cases
whose answer is worked out in the test; lesion F1 against a brute-force count in the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from study.annotators.agreement import grade_agreement, lesion_agreement
from study.annotators.build import build_reference, write_reference
from study.annotators.config import Annotator, annotators_from_config
from study.annotators.grades import fuse_grade, fuse_grades
from study.annotators.lesions import box_iou, cluster_boxes, fuse_image_lesions, matched_pairs
from study.config import validate_config
from study.errors import StudyError
from study.protocol import GradeFusion, LesionFusion, load_protocol, parse_protocol
from tests.conftest import REPO_ROOT

LEVELS = ["I", "II", "III", "IV"]


# ----------------------------------------------------------------------------- grade rules
def test_majority_unanimous_and_plain_majority():
    f = GradeFusion(rule="majority")
    assert (fuse_grade({"a": "II", "b": "II", "c": "II"}, fusion=f, levels=LEVELS).settled_by == "unanimous")
    r = fuse_grade({"a": "II", "b": "III", "c": "II"}, fusion=f, levels=LEVELS)
    assert (r.grade, r.settled_by) == ("II", "majority")


def test_majority_tie_goes_to_the_more_severe_grade():
    r = fuse_grade({"a": "I", "b": "III"}, fusion=GradeFusion(rule="majority"), levels=LEVELS)
    assert (r.grade, r.settled_by) == ("III", "tie: more severe grade")
    # four annotators, two against two: IV is more severe than II
    r = fuse_grade({"a": "IV", "b": "II", "c": "II", "d": "IV"}, fusion=GradeFusion(rule="majority"), levels=LEVELS)
    assert r.grade == "IV"


def test_majority_tie_to_the_adjudicator():
    f = GradeFusion(rule="majority", ties="adjudicator", adjudicator="a")
    r = fuse_grade({"a": "I", "b": "III"}, fusion=f, levels=LEVELS)
    assert (r.grade, r.settled_by) == ("I", "tie: adjudicator")
    # no tie: the majority wins even against the adjudicator
    assert fuse_grade({"a": "I", "b": "III", "c": "III"}, fusion=f, levels=LEVELS).grade == "III"


def test_adjudicator_and_consensus_rules():
    f = GradeFusion(rule="adjudicator", adjudicator="c")
    r = fuse_grade({"a": "II", "b": "II", "c": "I"}, fusion=f, levels=LEVELS)
    assert (r.grade, r.settled_by) == ("I", "adjudicator")  # the adjudicator overrules a majority
    r = fuse_grade({"a": "II", "b": "III", "c": "I"}, fusion=GradeFusion(rule="consensus", adjudicator="b"),
                   levels=LEVELS)
    assert (r.grade, r.settled_by) == ("III", "adjudicator")


def test_consensus_failure_without_adjudicator_names_every_case():
    grades = {"a": {"c1": "I", "c2": "II", "c3": "IV"}, "b": {"c1": "I", "c2": "III", "c3": "II"}}
    with pytest.raises(StudyError) as e:
        fuse_grades(grades, case_ids=["c1", "c2", "c3"], fusion=GradeFusion(rule="consensus"), levels=LEVELS)
    text = str(e.value)
    assert "'c2'" in text and "'c3'" in text and "'c1'" not in text and "adjudicator" in text


def test_missing_grade_is_an_error():
    with pytest.raises(StudyError, match="no grade from annotator"):
        fuse_grades({"a": {"c1": "I"}, "b": {}}, case_ids=["c1"], fusion=GradeFusion(rule="majority"), levels=LEVELS)


@pytest.mark.parametrize("fusion, message", [
    ({"rule": "adjudicator"}, "needs 'adjudicator"),
    ({"rule": "majority", "ties": "adjudicator"}, "needs 'adjudicator"),
    ({"rule": "vote"}, "rule"),
])
def test_protocol_rejects_an_incomplete_rule(fusion, message):
    data = yaml.safe_load((REPO_ROOT / "protocols" / "chinese-2019.yaml").read_text())
    data["reference_standard"] = {"fusion": fusion}
    with pytest.raises(StudyError, match=message):
        parse_protocol(data, source="p.yaml")


# ----------------------------------------------------------------------------- lesion geometry
def _b(x, y, w=10.0, h=10.0, cat=1):
    return {"bbox": [float(x), float(y), float(w), float(h)], "category_id": cat}


def test_box_iou_by_hand():
    assert box_iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 10, 10], [20, 20, 5, 5]) == 0.0


def test_k_of_m_keeps_lesions_marked_by_enough_annotators_with_the_median_box():
    a = [_b(0, 0), _b(50, 50)]
    b = [_b(1, 0), _b(100, 100)]
    c = [_b(2, 1)]
    fused = fuse_image_lesions([a, b, c], fusion=LesionFusion(min_annotators=2, iou_threshold=0.5))
    # the lesion at the origin: three annotators, median box (1, 0, 10, 10); the other two: one annotator each
    assert len(fused) == 1
    assert fused[0]["bbox"] == [1.0, 0.0, 10.0, 10.0] and fused[0]["n_annotators"] == 3
    mean = fuse_image_lesions([a, b, c], fusion=LesionFusion(min_annotators=3, box="mean"))
    assert mean[0]["bbox"] == pytest.approx([1.0, 1 / 3, 10.0, 10.0])
    assert fuse_image_lesions([a, b, c], fusion=LesionFusion(min_annotators=1)).__len__() == 3


def test_one_box_per_annotator_and_class_never_mixed():
    # annotator a marks two overlapping boxes; b one box between them: b joins only the better one
    a = [_b(0, 0), _b(2, 0)]
    b = [_b(1.8, 0)]
    clusters = cluster_boxes([a, b], iou_threshold=0.5)
    sizes = sorted(len(c.members) for c in clusters)
    assert sizes == [1, 2]
    joined = next(c for c in clusters if len(c.members) == 2)
    assert sorted(m[1]["bbox"][0] for m in joined.members) == [1.8, 2.0]
    # same place, different classes: two separate lesions, neither reaching k = 2
    assert fuse_image_lesions([[_b(0, 0, cat=1)], [_b(0, 0, cat=2)]], fusion=LesionFusion()) == []


def test_polygon_class_keeps_the_medoid_annotation_whole():
    poly = lambda x: {**_b(x, 0, cat=5), "segmentation": [[x, 0, x + 10, 0, x + 10, 10, x, 10]]}  # noqa: E731
    fused = fuse_image_lesions([[poly(0)], [poly(1)], [poly(2)]], fusion=LesionFusion(min_annotators=2),
                               polygon_classes=["cyst"], class_of={5: "cyst"})
    assert fused[0]["bbox"] == [1.0, 0.0, 10.0, 10.0]  # the middle one has the highest mean IoU
    assert fused[0]["segmentation"] == [[1, 0, 11, 0, 11, 10, 1, 10]]


def test_matched_pairs_is_one_to_one_at_the_threshold():
    a = [_b(0, 0), _b(3, 0), _b(40, 40)]
    b = [_b(1, 0), _b(40, 45)]  # IoU of the second pair is 5x10 / 150 < 0.5
    assert matched_pairs(a, b, iou_threshold=0.5) == 1
    assert matched_pairs(a, b, iou_threshold=0.3) == 2


# ----------------------------------------------------------------------------- agreement
def _random_grades(seed: int, n: int = 60, raters: str = "ABCD"):
    rng = np.random.default_rng(seed)
    cases = [f"c{i}" for i in range(n)]
    truth = rng.integers(0, 4, n)
    g = {r: {c: LEVELS[int(np.clip(t + rng.integers(-1, 2) * (rng.random() < 0.4), 0, 3))]
             for c, t in zip(cases, truth)} for r in raters}
    return cases, g


def test_fleiss_and_cohen_match_statsmodels_and_sklearn():
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    cases, g = _random_grades(4)
    patient_of = {c: f"p{i // 3}" for i, c in enumerate(cases)}
    r = grade_agreement(g, case_ids=cases, levels=LEVELS, patient_of=patient_of, replicates=300, seed=1,
                        confidence=0.95)
    codes = np.array([[LEVELS.index(g[a][c]) for a in g] for c in cases])
    assert r["fleiss"].estimate == pytest.approx(fleiss_kappa(aggregate_raters(codes)[0]), abs=1e-12)
    for key, e in r["pairwise"].items():
        a, b = key.split("|")
        i, j = list(g).index(a), list(g).index(b)
        assert e.estimate == pytest.approx(cohen_kappa_score(codes[:, i], codes[:, j]), abs=1e-12)
    assert len(r["pairwise"]) == 6
    f = r["fleiss"]
    assert f.ci_low < f.estimate < f.ci_high and f.n == 60 and f.n_clusters == 20
    assert "resampling patients" in f.method


def test_bootstrap_resamples_patients_not_cases():
    """Same cases, same seed: the point estimate does not depend on the clusters, the interval does (4 cases per
    patient versus every case its own patient), and n_clusters counts patients."""
    cases, g = _random_grades(7, n=40)
    by_patient = grade_agreement(g, case_ids=cases, levels=LEVELS, patient_of={c: f"p{i // 4}" for i, c in
                                                                                enumerate(cases)},
                                 replicates=300, seed=2, confidence=0.95)["fleiss"]
    by_case = grade_agreement(g, case_ids=cases, levels=LEVELS, patient_of={c: c for c in cases}, replicates=300,
                              seed=2, confidence=0.95)["fleiss"]
    assert by_patient.estimate == pytest.approx(by_case.estimate)
    assert (by_patient.n_clusters, by_case.n_clusters) == (10, 40)
    assert (by_patient.ci_low, by_patient.ci_high) != (by_case.ci_low, by_case.ci_high)


def test_lesion_f1_by_brute_force():
    lesions = {"a": {"c1": [_b(0, 0), _b(50, 50)], "c2": [_b(0, 0)], "c3": []},
               "b": {"c1": [_b(1, 0)], "c2": [_b(30, 30), _b(0, 1)], "c3": [_b(5, 5)]}}
    r = lesion_agreement(lesions, case_ids=["c1", "c2", "c3"], patient_of={"c1": "p1", "c2": "p1", "c3": "p2"},
                         replicates=200, seed=1, confidence=0.95)
    # matched: c1 one pair, c2 one pair; lesions a 3, b 4 -> F1 = 2*2 / 7
    assert r["a|b"].estimate == pytest.approx(4 / 7) and r["a|b"].k == 2


# ----------------------------------------------------------------------------- config errors
def _config(**cohort):
    return {"study": "s", "protocol": "p.yaml", "models": [{"id": "m"}],
            "cohort": {"manifest": "m.csv", "image_root": "img", **cohort}}


def test_config_errors_name_the_field():
    two = [{"id": "A", "annotations": "a.json"}, {"id": "A", "annotations": "b.json"}]
    problems = {(p.where, p.message.split(";")[0]) for p in validate_config(_config(annotators=two,
                                                                                     annotations="x.json"))}
    wheres = {w for w, _ in problems}
    assert "cohort.annotators.1.id" in wheres and "cohort.annotations" in wheres
    one = validate_config(_config(annotators=[{"id": "A", "annotations": "a.json"}]))
    assert any(p.where == "cohort.annotators" for p in one)
    bad = validate_config(_config(annotators=[{"id": "A"}, {"id": "B", "annotations": "b.json", "years_experience": -1}]))
    assert {p.where for p in bad} >= {"cohort.annotators.0", "cohort.annotators.1.years_experience"}
    ok = _config(annotators=[{"id": "A", "annotations": "a.json", "grades": "a.csv", "qualification": "MD",
                              "years_experience": 4}, {"id": "B", "annotations": "b.json"}])
    assert validate_config(ok) == []
    a = annotators_from_config(ok)
    assert a[0] == Annotator("A", "a.json", "a.csv", "MD", 4.0) and a[1].grades is None


# ----------------------------------------------------------------------------- building from files
@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    import subprocess
    import sys

    from tests.small_study import study_env

    out = tmp_path_factory.mktemp("annotators") / "cohort"
    subprocess.run([sys.executable, "-m", "study", "synth", "--cases", "12", "--seed", "4", "--image-size", "128",
                    "--out", str(out), "--annotators", "3", "--annotator-noise", "0.25"], check=True,
                   capture_output=True, env=study_env())
    return out


def _annotators(cohort: Path, *, grades: bool = True) -> list[Annotator]:
    return [Annotator(f"A{j}", str(cohort / "annotators" / f"A{j}.json"),
                      str(cohort / "annotators" / f"A{j}-grades.csv") if grades else None) for j in (1, 2, 3)]


def _manifest(cohort: Path):
    import pandas as pd

    return pd.read_csv(cohort / "manifest.csv", dtype=str)


def test_synth_annotators_are_reproducible_and_differ(cohort, tmp_path):
    import subprocess
    import sys

    from tests.small_study import study_env

    subprocess.run([sys.executable, "-m", "study", "synth", "--cases", "12", "--seed", "4", "--image-size", "128",
                    "--out", str(tmp_path), "--annotators", "3", "--annotator-noise", "0.25"], check=True,
                   capture_output=True, env=study_env())
    for name in ("A1.json", "A2-grades.csv"):
        assert (tmp_path / "annotators" / name).read_bytes() == (cohort / "annotators" / name).read_bytes()
    assert (cohort / "annotators" / "A1.json").read_bytes() != (cohort / "annotators" / "A2.json").read_bytes()


def test_build_reference_majority_matches_a_recount(cohort):
    import pandas as pd

    protocol = load_protocol(REPO_ROOT / "protocols" / "chinese-2019.yaml").protocol
    coco, ref, dis, block = build_reference(_annotators(cohort), cases=_manifest(cohort), protocol=protocol)
    grades = {a: pd.read_csv(cohort / "annotators" / f"{a}-grades.csv", dtype=str).set_index("case_id")["grade"]
              for a in ("A1", "A2", "A3")}
    for cid, g in zip(ref["case_id"], ref["grade"]):
        votes = [grades[a][cid] for a in grades]
        top = max(votes.count(v) for v in votes)
        tied = {v for v in votes if votes.count(v) == top}
        assert g == max(tied, key=LEVELS.index)  # majority, ties to the more severe
    unanimous = sum(len({grades[a][c] for a in grades}) == 1 for c in ref["case_id"])
    assert len(dis) == len(ref) - unanimous == block.n_cases - block.settled_by["unanimous"]
    assert sum(block.settled_by.values()) == len(ref) == 12
    assert block.n_lesions_fused == len(coco["annotations"]) == sum(block.lesions_by_support.values())
    assert all(a["n_annotators"] >= 2 for a in coco["annotations"])
    assert [p.a + p.b for p in block.pairs] == ["A1A2", "A1A3", "A2A3"]
    assert block.annotators[0].grades_source == "grades file"


def test_fused_annotations_pass_intake(cohort, tmp_path):
    from study.cohort import load_annotations

    protocol = load_protocol(REPO_ROOT / "protocols" / "chinese-2019.yaml").protocol
    out = {k: tmp_path / f"{k}.x" for k in ("a", "r", "d", "rec")}
    write_reference(_annotators(cohort, grades=False), manifest=str(cohort / "manifest.csv"),
                    image_root=str(cohort / "images"), protocol=protocol, out_annotations=out["a"],
                    out_reference=out["r"], out_disagreements=out["d"], out_record=out["rec"])
    doc = load_annotations(out["a"], cases=_manifest(cohort), classes=list(protocol.classes),
                           polygon_classes=protocol.polygon_classes)
    assert doc["unannotated_cases"] == []
    rec = json.loads(out["rec"].read_text())
    assert rec["annotators"][0]["grades_source"].startswith("graded from their lesions")


def test_build_errors(cohort, tmp_path):
    base = load_protocol(REPO_ROOT / "protocols" / "chinese-2019.yaml").protocol
    data = base.model_dump(mode="json")
    cases = _manifest(cohort)
    data["reference_standard"] = {"fusion": {"rule": "adjudicator", "adjudicator": "Z9"}}
    with pytest.raises(StudyError, match="adjudicator 'Z9' is not one of"):
        build_reference(_annotators(cohort), cases=cases, protocol=parse_protocol(data))
    data["reference_standard"] = {"lesion_fusion": {"min_annotators": 4}}
    with pytest.raises(StudyError, match="exceeds the 3 annotators"):
        build_reference(_annotators(cohort), cases=cases, protocol=parse_protocol(data))
    # an annotator who left an image out, and one who graded too few cases
    doc = json.loads((cohort / "annotators" / "A2.json").read_text())
    dropped = doc["images"].pop()
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != dropped["id"]]
    (tmp_path / "A2.json").write_text(json.dumps(doc))
    short = _annotators(cohort)
    short[1] = Annotator("A2", str(tmp_path / "A2.json"), short[1].grades)
    with pytest.raises(StudyError, match="did not annotate 1 manifest case"):
        build_reference(short, cases=cases, protocol=base)
    lines = (cohort / "annotators" / "A3-grades.csv").read_text().splitlines()
    (tmp_path / "A3-grades.csv").write_text("\n".join(lines[:-2]) + "\n")
    short = _annotators(cohort)
    short[2] = Annotator("A3", short[2].annotations, str(tmp_path / "A3-grades.csv"))
    with pytest.raises(StudyError, match="expected a grade for every case"):
        build_reference(short, cases=cases, protocol=base)


def test_study_check_reports_the_annotators_problems(cohort, tmp_path):
    from study.check import check_study

    data = yaml.safe_load((REPO_ROOT / "protocols" / "chinese-2019.yaml").read_text())
    data["quality"].update(min_width=64, min_height=64)
    data["reference_standard"] = {"fusion": {"rule": "adjudicator", "adjudicator": "Z9"},
                                  "lesion_fusion": {"min_annotators": 5}}
    (tmp_path / "protocol.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "bad-grades.csv").write_text("case_id,grade\nC00001,VII\n")
    annotators = [{"id": a.id, "annotations": a.annotations, "grades": a.grades} for a in _annotators(cohort)]
    annotators[2]["grades"] = str(tmp_path / "bad-grades.csv")
    cfg = {"study": "s", "protocol": str(tmp_path / "protocol.yaml"), "models": [{"id": "m", "backend": "precomputed"}],
           "cohort": {"manifest": str(cohort / "manifest.csv"), "image_root": str(cohort / "images"),
                      "annotators": annotators}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    problems, summary = check_study(tmp_path / "config.yaml", workdir=tmp_path)
    text = "\n".join(f"{p.file} | {p.where} | {p.message}" for p in problems)
    assert "adjudicator 'Z9' is not one of the configured annotators" in text
    assert "reference_standard.lesion_fusion.min_annotators | 5 exceeds the 3 annotators" in text
    assert str(tmp_path / "bad-grades.csv") in text and "VII" in text
    assert summary["annotators"] == 3 and summary["annotator_lesions"] > 0


def _dry_run(tmp_path: Path, cohort_cfg: dict) -> str:
    import subprocess
    import sys

    from tests.small_study import study_env

    cfg = {"study": "dry", "protocol": str(REPO_ROOT / "protocols" / "chinese-2019.yaml"), "results_dir": "results",
           "cohort": cohort_cfg, "models": [{"id": "demo-frcnn", "spec": str(REPO_ROOT / "models" / "demo" / "model.yaml")}]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    run = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-n", "-p", "-s", str(REPO_ROOT / "Snakefile"),
                          "--configfile", "config.yaml", "--cores", "1"], cwd=tmp_path, env=study_env(),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout + run.stderr


def test_workflow_synth_makes_the_annotators_files_fuse_reference_feeds_intake(tmp_path):
    c = "cohort"
    files = [{"id": f"A{j}", "annotations": f"{c}/annotators/A{j}.json", "grades": f"{c}/annotators/A{j}-grades.csv"}
             for j in (1, 2, 3)]
    out = _dry_run(tmp_path, {"manifest": f"{c}/manifest.csv", "image_root": f"{c}/images",
                              "readings": f"{c}/readings.csv", "annotators": files,
                              "synth": {"cases": 20, "seed": 3, "annotators": 3, "annotator_noise": 0.2}})
    assert "--annotators 3 --annotator-noise 0.2" in out
    assert "rule fuse_reference:" in out
    assert "annotations=results/reference-standard/annotations.json" in out  # intake reads the fused file
    assert "reference=results/reference-standard/reference.csv" in out  # and the reference step the fused grades


def test_workflow_without_annotators_has_no_fuse_reference(tmp_path):
    c = "cohort"
    out = _dry_run(tmp_path, {"manifest": f"{c}/manifest.csv", "image_root": f"{c}/images",
                              "annotations": f"{c}/annotations.json", "reference": f"{c}/reference.csv",
                              "readings": f"{c}/readings.csv", "synth": {"cases": 20, "seed": 3}})
    assert "fuse_reference" not in out and "--annotators" not in out
    assert f"annotations={c}/annotations.json" in out
