"""Synthetic cohort generator (study.synth): files, contracts, determinism, planted exclusions.

Grades are cross-checked against the project's grading module (study.grading, an
independent implementation of protocols/chinese-2019.yaml), and the planted quality
failures against the project's quality gate (study.quality).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study import synth
from study.errors import StudyError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synth") / "cohort"
    summary = synth.make_cohort(out, cases=48, seed=11, exclusion_rate=0.25)
    return out, summary


def _manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_files_and_manifest(cohort):
    out, summary = cohort
    rows = _manifest(out)
    assert list(rows[0]) == synth.MANIFEST_COLUMNS
    assert len(rows) == 48 == summary["cases"]
    assert len({r["case_id"] for r in rows}) == 48
    for r in rows:
        assert (out / "images" / r["image"]).is_file()
        assert r["fitzpatrick"] in synth.FITZPATRICK
        assert r["sex"] in ("F", "M")
        assert r["diagnosis"] == "acne"
        assert r["other_facial_disease"] in ["none"] + synth.OTHER_DISEASES
        assert r["planted_exclusion"] in [""] + synth.EXCLUSIONS
        age = int(r["age"])
        assert (age < 18) == (r["planted_exclusion"] == "minor")
        assert (r["other_facial_disease"] != "none") == (r["planted_exclusion"] == "other_facial_disease")
    # several images for some patients, and a patient's covariates do not change between images
    per_patient = Counter(r["patient_id"] for r in rows)
    assert max(per_patient.values()) >= 2
    for pid in per_patient:
        covs = {(r["age"], r["sex"], r["fitzpatrick"], r["site"], r["device"]) for r in rows if r["patient_id"] == pid}
        assert len(covs) == 1
    # every planted kind is present (48 * 0.25 = 12 = 2 per kind)
    assert Counter(r["planted_exclusion"] for r in rows if r["planted_exclusion"]) == {k: 2 for k in synth.EXCLUSIONS}


def test_coco_annotations(cohort):
    out, _ = cohort
    coco = json.loads((out / "annotations.json").read_text())
    assert [(c["id"], c["name"]) for c in coco["categories"]] == list(enumerate(synth.CLASSES, start=1))
    files = {r["image"] for r in _manifest(out)}
    assert {im["file_name"] for im in coco["images"]} == files
    sizes = {im["id"]: (im["width"], im["height"]) for im in coco["images"]}
    assert set(sizes.values()) == {(512, 512)}
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"]) > 100
    seen = set()
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        W, H = sizes[a["image_id"]]
        assert 0 <= x and 0 <= y and x + w <= W + 1e-6 and y + h <= H + 1e-6
        assert 5 <= max(w, h) <= 36, a  # lesions are 6-30 px at 512 px
        assert a["iscrowd"] == 0 and a["area"] > 0
        name = synth.CLASSES[a["category_id"] - 1]
        seen.add(name)
        if name in synth.POLYGON_CLASSES:
            poly = np.asarray(a["segmentation"][0]).reshape(-1, 2)
            assert len(poly) >= 3
            assert np.allclose(poly.min(0), [x, y], atol=0.02) and np.allclose(poly.max(0), [x + w, y + h], atol=0.02)
            assert a["area"] <= w * h + 1e-6
        else:
            assert "segmentation" not in a
    assert seen == set(synth.CLASSES)


def test_reference_matches_counts_and_project_grading(cohort):
    from study.grading import counts_from_coco, grade_from_counts
    from study.protocol import load_protocol

    out, summary = cohort
    ref = pd.read_csv(out / "reference.csv", dtype={"case_id": str, "grade": str})
    assert list(ref.columns) == ["case_id", "grade"] + [f"count_{c}" for c in synth.CLASSES]
    gt = json.loads((out / "annotations.json").read_text())
    counts = counts_from_coco(gt, classes=synth.CLASSES)
    merged = ref.merge(counts, on="case_id", suffixes=("", "_coco"))
    assert len(merged) == 48
    for c in synth.CLASSES:
        assert (merged[f"count_{c}"] == merged[f"count_{c}_coco"]).all()
    grading = load_protocol(ROOT / "protocols" / "chinese-2019.yaml").protocol.grading
    expected = grade_from_counts(ref[["case_id"] + [f"count_{c}" for c in synth.CLASSES]], grading)
    assert list(ref["grade"]) == list(expected)
    # not degenerate: every grade occurs
    assert all(summary["grades"][g] >= 3 for g in synth.LEVELS), summary["grades"]


def test_grade_distribution_of_demo_sized_plan():
    """The 160-case demo plan puts a sizeable share of cases in every grade."""
    _, rows = synth.plan_cohort(160, 7, 0.15)
    n = Counter(r["target_grade"] for r in rows)
    assert all(n[g] >= 0.12 * 160 for g in synth.LEVELS), n


def test_lesion_frequencies_follow_the_smartphone_study():
    """Comedone and scar means per image follow the smartphone study's test set (3.7, 2.5)."""
    rng = np.random.default_rng(0)
    draws = [synth.sample_counts(rng, str(g)) for g in rng.choice(synth.LEVELS, 4000)]
    mean = {c: np.mean([d[c] for d in draws]) for c in synth.CLASSES}
    assert 3.6 <= mean["comedone"] <= 4.3
    assert 2.35 <= mean["scar"] <= 2.65
    assert mean["papule"] > mean["pustule"] > 0
    assert mean["nodule"] > 0 and mean["cyst"] > 0


def test_readings_design(cohort):
    out, _ = cohort
    rd = pd.read_csv(out / "readings.csv", dtype=str)
    assert list(rd.columns) == ["reader_id", "reader_group", "case_id", "grade"]
    readers = rd.groupby("reader_id")["reader_group"].first()
    assert len(readers) >= 6
    assert set(readers) == {"junior", "intermediate", "senior"}
    assert (readers == "junior").sum() >= 2 and (readers == "intermediate").sum() >= 2
    assert set(rd["grade"]) <= set(synth.LEVELS)
    assert not rd.duplicated(["reader_id", "case_id"]).any()
    per_reader = rd.groupby("reader_id")["case_id"].nunique()
    assert per_reader.min() < 48  # partially crossed
    per_case = rd.groupby("case_id")["reader_id"].nunique()
    assert per_case.min() >= 2 and len(per_case) == 48
    assert (per_case == len(readers)).sum() >= 0.3 * 48  # a fully crossed block


def test_reader_error_patterns():
    """Juniors err more than intermediates, intermediates more than seniors; errors are
    mostly one grade and lean towards down-grading."""
    rng = np.random.default_rng(1)
    ref, counts = {}, {}
    for i in range(1500):
        g = str(rng.choice(synth.LEVELS))
        ref[f"c{i}"] = g
        counts[f"c{i}"] = synth.sample_counts(rng, g)
    rows = pd.DataFrame(synth.simulate_readings(ref, counts, seed=5))
    rows["ref"] = rows["case_id"].map(ref)
    d = rows["grade"].map(synth.LEVELS.index) - rows["ref"].map(synth.LEVELS.index)
    err = rows.assign(err=d != 0).groupby("reader_group")["err"].mean()
    assert err["junior"] > err["intermediate"] > err["senior"]
    wrong = d[d != 0]
    assert (wrong.abs() == 1).mean() >= 0.75
    middle = rows["ref"].isin(["II", "III"]) & (d != 0)  # both directions possible
    assert (d[middle] < 0).mean() > 0.6


def test_deterministic_for_a_seed(tmp_path):
    a = synth.make_cohort(tmp_path / "a", cases=6, seed=3, image_size=256, exclusion_rate=0.5)
    synth.make_cohort(tmp_path / "b", cases=6, seed=3, image_size=256, exclusion_rate=0.5, workers=2)
    synth.make_cohort(tmp_path / "c", cases=6, seed=4, image_size=256, exclusion_rate=0.5)

    def files(d: Path) -> dict[str, bytes]:
        return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}

    fa, fb, fc = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert len(fa) == 6 + 4 and fa == fb
    assert fa["annotations.json"] != fc["annotations.json"]
    assert a["image_size"] == 256


def test_planted_quality_failures_meet_the_quality_gate(cohort):
    """Normal photos pass the project's quality gate (face found, sharp, well exposed);
    planted blurred / under- / over-exposed / no-face photos fail it for that reason."""
    from study.protocol import load_protocol
    from study.quality import assess_file

    out, _ = cohort
    thresholds = load_protocol(ROOT / "protocols" / "chinese-2019.yaml").protocol.quality
    passed, n_normal = 0, 0
    for r in _manifest(out):
        f = assess_file(str(out / "images" / r["image"]), thresholds=thresholds, width=512, height=512)
        kind = r["planted_exclusion"]
        if kind in ("", "minor", "other_facial_disease"):
            n_normal += 1
            passed += bool(f["quality_pass"])
        else:
            assert kind in f["quality_reasons"], (r["case_id"], kind, f["quality_reasons"])
    assert passed >= 0.95 * n_normal, (passed, n_normal)


def test_exposure_of_planted_cases(cohort):
    import cv2

    out, _ = cohort
    for r in _manifest(out):
        if r["planted_exclusion"] in ("underexposed", "overexposed"):
            v = cv2.imread(str(out / "images" / r["image"])).max(axis=2)
            if r["planted_exclusion"] == "underexposed":
                assert (v < 40).mean() > 0.8
            else:
                assert (v > 250).mean() > 0.5


def test_invalid_options_are_user_errors(tmp_path):
    with pytest.raises(StudyError) as e:
        synth.make_cohort(tmp_path, cases=0, seed=1, image_size=64, exclusion_rate=1.5)
    assert len(e.value.problems) == 3


def test_cli(tmp_path, run_cli):
    rc, out, err = run_cli("synth", "--cases", "3", "--out", tmp_path / "c", "--seed", "2", "--image-size", "256")
    assert rc == 0, err
    assert out.strip() == str(tmp_path / "c")
    assert (tmp_path / "c" / "readings.csv").is_file()
    rc, out, err = run_cli("synth", "--cases", "0", "--out", tmp_path / "d")
    assert rc == 2 and "--cases" in err


def test_output_path_that_is_a_file_is_a_user_error(tmp_path, run_cli):
    f = tmp_path / "file"
    f.write_text("x")
    rc, _, err = run_cli("synth", "--cases", "2", "--out", f)
    assert rc == 2 and str(f) in err


def test_sampled_counts_grade_to_their_target_by_the_protocol():
    """The counts drawn for a target grade get that grade from the protocol's own grading."""
    from study.grading import grade_from_counts
    from study.protocol import load_protocol

    rng = np.random.default_rng(2)
    targets = [str(g) for g in rng.choice(synth.LEVELS, 2000)]
    draws = [synth.sample_counts(rng, g) for g in targets]
    table = pd.DataFrame({"case_id": range(len(draws)), **{f"count_{c}": [d[c] for d in draws] for c in synth.CLASSES}})
    grading = load_protocol(ROOT / "protocols" / "chinese-2019.yaml").protocol.grading
    assert list(grade_from_counts(table, grading)) == targets


def test_synth_grades_by_the_protocol_file(tmp_path, monkeypatch):
    """The generator reads its grading from the protocol; one whose levels differ is refused."""
    import yaml

    from study.protocol import load_protocol
    from study.synth import vocabulary

    assert synth.grading() == load_protocol(ROOT / "protocols" / "chinese-2019.yaml").protocol.grading
    raw = yaml.safe_load((ROOT / "protocols" / "chinese-2019.yaml").read_text())
    raw["grading"]["levels"] = ["I", "II", "III", "IV", "V"]
    raw["grading"]["rules"].insert(0, {"level": "V", "any_of": {"nodule": 5}})  # valid, but not synth's levels
    raw.pop("analysis_plan", None)  # its planning assumptions are per level of the shipped protocol
    bad = tmp_path / "protocol.yaml"
    bad.write_text(yaml.safe_dump(raw))
    monkeypatch.setattr(vocabulary, "PROTOCOL_PATH", bad)
    vocabulary.grading.cache_clear()
    try:
        with pytest.raises(StudyError) as e:
            synth.grade_cases({"c1": dict.fromkeys(synth.CLASSES, 0)})
        assert str(bad) in str(e.value) and "levels" in str(e.value)
    finally:
        vocabulary.grading.cache_clear()



def test_options_are_checked_by_their_types(tmp_path):
    """Each bad option is named as its flag; a reader's probabilities are probabilities."""
    with pytest.raises(StudyError) as e:
        synth.make_cohort(tmp_path, cases=True, seed=-1, readers=[("r", "junior", 1.5, 0.5)])
    assert sorted(p.where for p in e.value.problems) == ["--cases", "--readers", "--seed"]
    with pytest.raises(StudyError, match="--workers"):
        synth.make_cohort(tmp_path, cases=2, workers=0)
    with pytest.raises(StudyError, match="--readers"):
        synth.make_cohort(tmp_path, cases=2, readers=[])
