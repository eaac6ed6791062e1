"""End to end: a small synthetic study through the whole Snakemake workflow to a PDF.

Checks that the workflow runs, that a second run does nothing, and that a sample of the
numbers in results.json equals an independent computation (scikit-learn, statsmodels,
pycocotools) from the run's own intermediate tables.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from study.report.format import fmt, fmt_p
from tests.conftest import REPO_ROOT, pycocotools_eval
from tests.pdf_text import checklist_status, flat_text, layout_rows, pdf_text

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    cohort = root / "cohort"
    # the shipped protocol with fewer bootstrap replicates, to keep the suite quick
    protocol = yaml.safe_load((REPO_ROOT / "protocols" / "chinese-2019.yaml").read_text())
    protocol["statistics"]["bootstrap_replicates"] = 200
    (root / "protocol.yaml").write_text(yaml.safe_dump(protocol), encoding="utf-8")
    cfg = {
        "study": "e2e",
        "protocol": str(root / "protocol.yaml"),
        "results_dir": str(root / "results"),
        "cohort": {
            "manifest": str(cohort / "manifest.csv"),
            "image_root": str(cohort / "images"),
            "annotations": str(cohort / "annotations.json"),
            "reference": str(cohort / "reference.csv"),
            "readings": str(cohort / "readings.csv"),
            "synth": {"cases": 40, "seed": 11, "aided_session": True},  # readers unaided, then aided
        },
        "models": [{"id": "demo-frcnn", "spec": str(REPO_ROOT / "models" / "demo" / "model.yaml")}],
        "shards": 2,
        "batch_size": 4,
    }
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    cmd = [str(Path(sys.executable).parent / "study"), "run", str(config), "--cores", "2"]
    first = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-4000:]
    second = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    return root, first, second


def test_report_written_and_path_printed_last(study_run):
    root, first, _ = study_run
    pdf = Path(first.stdout.strip().splitlines()[-1])
    assert pdf == root / "results" / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    assert (root / "results" / "report.html").stat().st_size > 1000


def test_second_run_does_nothing(study_run):
    _, _, second = study_run
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Nothing to be done" in second.stderr


def _load(root):
    r = root / "results"
    return r, json.loads((r / "results.json").read_text())


def test_model_agreement_matches_sklearn(study_run):
    """Accuracy, confusion matrix and quadratic kappa of the model, recomputed with scikit-learn."""
    from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix

    root, _ = study_run[0], None
    r, res = _load(root)
    levels = res["agreement"]["levels"]
    ref = pd.read_parquet(r / "reference.parquet")[["case_id", "grade"]]
    model = pd.read_parquet(r / "grades" / "demo-frcnn.parquet")[["case_id", "grade"]]
    both = ref.merge(model, on="case_id", suffixes=("_ref", "_model"))
    rater = res["agreement"]["raters"]["demo-frcnn"]
    assert rater["n_cases"] == len(both)
    cm = confusion_matrix(both["grade_ref"], both["grade_model"], labels=levels)
    assert np.array_equal(np.asarray(rater["confusion_matrix"]), cm)
    assert rater["accuracy"]["estimate"] == pytest.approx(accuracy_score(both["grade_ref"], both["grade_model"]))
    codes = {g: i for i, g in enumerate(levels)}
    kq = cohen_kappa_score(both["grade_ref"].map(codes), both["grade_model"].map(codes), weights="quadratic",
                           labels=list(range(len(levels))))
    assert rater["kappa_quadratic"]["estimate"] == pytest.approx(kq)


def test_reader_kappa_matches_statsmodels(study_run):
    """A reader's unweighted kappa recomputed with statsmodels; its SE is the patient-level (clustered) one.

    The study's protocol leaves ``statistics.unit`` at its default, the patient (the manifest has
    patient ids), so the SE is the cluster-robust one of ``clustered_kappa`` on the reader's
    per-patient tables (tests/test_clustered.py pins it to the statsmodels ASE with one image
    per patient); the independence ASE is no longer the reported one.
    """
    from statsmodels.stats.inter_rater import cohens_kappa

    from study.metrics.clustered import clustered_kappa

    root = study_run[0]
    r, res = _load(root)
    levels = res["agreement"]["levels"]
    ref = pd.read_parquet(r / "reference.parquet")[["case_id", "grade"]]
    readings = pd.read_parquet(r / "readings.parquet")
    el = pd.read_parquet(r / "eligibility.parquet")
    included = set(el.loc[el["included"], "case_id"])
    readings = readings[readings["modality"] == "unaided"]  # agreement uses the unaided session
    reader = sorted(readings["reader_id"].unique())[0]
    rd = readings[(readings["reader_id"] == reader) & readings["case_id"].isin(included)]
    both = ref.merge(rd[["case_id", "grade"]], on="case_id", suffixes=("_ref", "_reader"))
    table = pd.crosstab(pd.Categorical(both["grade_ref"], levels), pd.Categorical(both["grade_reader"], levels),
                        dropna=False).to_numpy()
    sm = cohens_kappa(table)
    k = res["agreement"]["raters"][reader]["kappa"]
    assert k["estimate"] == pytest.approx(sm.kappa, abs=1e-10)
    assert res["agreement"]["settings"]["unit"] == "patient"
    cases = pd.read_parquet(r / "cases.parquet")[["case_id", "patient_id"]]
    both = both.merge(cases, on="case_id")
    pat = pd.factorize(both["patient_id"])[0]
    code = {g: i for i, g in enumerate(levels)}
    tabs = np.zeros((pat.max() + 1, len(levels), len(levels)))
    np.add.at(tabs, (pat, both["grade_ref"].map(code).to_numpy(), both["grade_reader"].map(code).to_numpy()), 1)
    cl = clustered_kappa(tabs)
    assert k["se"] == pytest.approx(cl.se, abs=1e-10) and k["n_clusters"] == pat.max() + 1
    assert k["method"] == cl.method


def test_detection_ap50_matches_pycocotools(study_run):
    """The class-agnostic AP50 in results.json equals pycocotools on the run's own files."""
    root = study_run[0]
    r, res = _load(root)
    gt = json.loads((r / "ground_truth.json").read_text())
    dt = json.loads((r / "detections" / "demo-frcnn.coco.json").read_text())
    el = pd.read_parquet(r / "eligibility.parquet")
    included = set(el.loc[el["included"], "case_id"])
    ids = [im["id"] for im in gt["images"] if im["case_id"] in included]
    # class-agnostic: every category becomes one
    gt1 = dict(gt, categories=[{"id": 1, "name": "lesion"}],
               annotations=[dict(a, category_id=1) for a in gt["annotations"]])
    dt1 = [dict(d, category_id=1) for d in dt]
    ev = pycocotools_eval(gt1, dt1, max_dets=1000, img_ids=ids, summarize=True)
    ours = res["detection"]["demo-frcnn"]["any_lesion"]["ap"]
    ours = ours["estimate"] if isinstance(ours, dict) else ours
    assert ours == pytest.approx(ev.stats[1], abs=1e-9)


def test_detection_by_skin_type_matches_pycocotools(study_run):
    """Issue 17 item 5: the mAP of Fitzpatrick I-III and IV-VI in results.json equals pycocotools' per-class
    AP50 (imgIds = the group's included images), averaged over the classes with lesions in the group; n images,
    patients and lesions per group are those of the run's cases."""
    root = study_run[0]
    r, res = _load(root)
    gt = json.loads((r / "ground_truth.json").read_text())
    dt = json.loads((r / "detections" / "demo-frcnn.coco.json").read_text())
    cases = pd.read_parquet(r / "cases.parquet")
    el = pd.read_parquet(r / "eligibility.parquet")
    included = set(el.loc[el["included"], "case_id"])
    fz = dict(zip(cases["case_id"], cases["fitzpatrick"]))
    pat = dict(zip(cases["case_id"], cases["patient_id"]))
    sd = res["errors"]["models"]["demo-frcnn"]["skin_type_detection"]
    assert sd["iou_threshold"] == res["detection"]["demo-frcnn"]["iou_threshold"]
    checked = 0
    for key, members in (("light", ("I", "II", "III")), ("dark", ("IV", "V", "VI"))):
        g = sd[key]
        if g is None:
            continue
        group = [im for im in gt["images"] if im["case_id"] in included and fz[im["case_id"]] in members]
        ids = [im["id"] for im in group]
        ev = pycocotools_eval(gt, dt, max_dets=1000, img_ids=ids)
        prec = ev.eval["precision"][0, :, :, 0, -1]  # IoU 0.5, every class, area all
        aps = [prec[:, k].mean() for k in range(prec.shape[1]) if (prec[:, k] > -1).all()]
        assert g["map"]["estimate"] == pytest.approx(float(np.mean(aps)), abs=1e-9), key
        assert g["n_images"] == len(ids)
        assert g["n_patients"] == len({pat[im["case_id"]] for im in group})
        assert g["n_lesions"] == sum(1 for a in gt["annotations"] if a["image_id"] in set(ids) and not a.get("iscrowd"))
        assert "resampling patients" in g["map"]["method"]
        checked += 1
    assert checked == 2
    assert sd["difference"]["estimate"] == pytest.approx(sd["light"]["map"]["estimate"] - sd["dark"]["map"]["estimate"])
    assert 0 < sd["p_value"] <= 1
    assert sum(g["n_images"] for g in sd["by_type"]) == sd["light"]["n_images"] + sd["dark"]["n_images"]
    # who assigned skin types, case by case: the synthetic manifest says dermatologist for every case
    n_typed = sum(1 for c in included if isinstance(fz[c], str) and fz[c])
    assert res["errors"]["skin_type_assessors"] == {"dermatologist": n_typed}


def test_same_inputs_give_identical_results_json(study_run, tmp_path):
    """Collecting the same step outputs again (another day, another process) gives the same bytes."""
    from study.steps import collect

    root = study_run[0]
    r = root / "results"
    # the config as Snakemake resolved it (schema defaults filled in)
    cfg = json.loads((r / "results.json").read_text())["study"]["config"]
    again = tmp_path / "results.json"
    env_before = os.environ.pop("SOURCE_DATE_EPOCH", None)
    try:
        collect(config=json.dumps(cfg, sort_keys=True), results_dir=str(r), models="demo-frcnn", out=str(again))
    finally:
        if env_before is not None:
            os.environ["SOURCE_DATE_EPOCH"] = env_before
    assert again.read_bytes() == (r / "results.json").read_bytes()


def test_analysis_plan_decisions_reach_results_and_a_tightened_goal_is_not_met(study_run, tmp_path):
    """The demo plan's primary decisions are in results.json; raising a goal until it fails gives NOT MET."""
    from study.results.decisions import AnalysisPlanResults
    from study.steps import decide

    root = study_run[0]
    r = root / "results"
    res = json.loads((r / "results.json").read_text())
    plan = AnalysisPlanResults.model_validate(res["analysis_plan"])
    assert plan.planned and plan.lock.state == "not_locked" and "not locked" in plan.lock.statement
    primary = [e for e in plan.endpoints if e.role == "primary"]
    assert [e.id for e in primary] == ["sensitivity_grade_iii", "specificity_grade_iii"]
    for e in primary:
        assert e.decision in ("met", "not met") and e.estimate.ci_low <= e.estimate.estimate <= e.estimate.ci_high
        assert e.decision_text.startswith("MET" if e.decision == "met" else "NOT MET")
    assert plan.primary_decision in ("met", "not met")

    protocol = yaml.safe_load((root / "protocol.yaml").read_text())
    protocol["analysis_plan"]["endpoints"][0]["comparator"]["value"] = 0.999
    (tmp_path / "protocol.yaml").write_text(yaml.safe_dump(protocol))
    cfg = res["study"]["config"]
    out = tmp_path / "decisions.json"
    decide(protocol=str(tmp_path / "protocol.yaml"), config=json.dumps(cfg), reference=str(r / "reference.parquet"),
           readings=str(r / "readings.parquet"), grades=str(r / "grades" / "demo-frcnn.parquet"),
           cases=str(r / "cases.parquet"), eligibility=str(r / "eligibility.parquet"), mrmc=str(r / "metrics" / "mrmc.json"),
           detection=str(r / "metrics" / "detection" / "demo-frcnn.json"),
           counting=str(r / "metrics" / "counting" / "demo-frcnn.json"), out=str(out))
    tight = AnalysisPlanResults.model_validate_json(out.read_text())
    sens = tight.endpoints[0]
    assert sens.decision == "not met" and sens.decision_text.startswith("NOT MET")
    assert tight.primary_decision == "not met" and "sensitivity_grade_iii" in (tight.primary_decision_text or "")
    # the fixed sequence stops there: every later confirmatory endpoint is not met
    assert all(e.decision in ("not met", "not estimable") for e in tight.endpoints if e.role == "secondary")


def test_study_plan_into_the_results_folder_reaches_results_json(study_run, tmp_path, run_cli):
    """`study plan CONFIG --out <results_dir>` writes sample_size.json, which collect puts into results.json."""
    from study.results.sample_size import SampleSizePlan
    from study.steps import collect

    root = study_run[0]
    r = root / "results"
    res = json.loads((r / "results.json").read_text())
    cfg = res["study"]["config"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "results"
    out.mkdir()
    for name in ("cases.parquet", "eligibility.parquet", "reference.parquet", "ground_truth.json", "flow.json"):
        (out / name).write_bytes((r / name).read_bytes())
    import shutil

    shutil.copytree(r / "metrics", out / "metrics")
    shutil.copytree(r / "detections", out / "detections")
    rc, _, err = run_cli("plan", tmp_path / "config.yaml", "--out", out)
    assert rc == 0, err
    collect(config=json.dumps(cfg, sort_keys=True), results_dir=str(out), models="demo-frcnn", out=str(out / "r.json"))
    block = SampleSizePlan.model_validate(json.loads((out / "r.json").read_text())["sample_size"])
    assert block.patients_required and {e.id for e in block.endpoints} == {
        "sensitivity_grade_iii", "specificity_grade_iii", "accuracy_vs_readers", "kappa_quadratic", "aided_vs_unaided"}
    assert "sample_size" not in res  # the run itself had no plan table


def test_study_run_twice_gives_byte_identical_results_json(study_run, tmp_path):
    """The whole study run again from scratch (every step, the model included) on the same inputs gives a
    results.json with the same sha256: it holds no timing or other run-to-run noise (timings go to the
    run logs, e.g. detections/<model>.timing.json)."""
    import hashlib
    import shutil

    root = study_run[0]
    first = (root / "results" / "results.json").read_bytes()
    assert (root / "results" / "detections" / "demo-frcnn.timing.json").exists()
    moved = tmp_path / "first-results"
    shutil.move(root / "results", moved)
    try:
        cmd = [str(Path(sys.executable).parent / "study"), "run", str(root / "config.yaml"), "--cores", "2"]
        again = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=900)
        assert again.returncode == 0, again.stderr[-3000:]
        second = (root / "results" / "results.json").read_bytes()
        assert hashlib.sha256(second).hexdigest() == hashlib.sha256(first).hexdigest()
        assert b'"seconds"' not in second and b"images_per_second" not in second
    finally:
        shutil.rmtree(root / "results", ignore_errors=True)
        shutil.move(moved, root / "results")


def test_no_interval_of_the_whole_results_json_leaves_its_bounds(study_run):
    """Issue 13 item 2 on a whole study's results.json: every interval -- detection (AP, precision,
    recall), counting, grading agreement, MRMC (the AI figure of merit included) -- stays inside its
    quantity's bounds and none has zero width at a bound; the patients are counted next to the images."""
    from study.metrics.bounds import estimates, interval_problems

    _, res = _load(study_run[0])
    assert interval_problems(res) == []
    walked = {p[0] for p, e in estimates(res) if e.get("ci_low") is not None}
    assert {"detection", "counting", "agreement", "mrmc"} <= walked
    s = res["agreement"]["settings"]
    assert s["unit"] == "patient" and 0 < s["n_patients"] <= s["n_cases"]
    # the key patient-level intervals name their clustered method
    det = res["detection"]["demo-frcnn"]["any_lesion"]
    assert all("patients as clusters" in det[k]["method"] for k in ("recall", "precision"))
    overall = res["counting"]["demo-frcnn"]["thresholds"]["0.5"]["overall"]
    assert all("patient bootstrap-t" in overall[k]["method"] for k in ("ccc", "mae", "rmse"))


def test_report_baseline_and_flow_show_patients_next_to_images(study_run):
    """Issue 13 item 4: the demo report's baseline table, flow diagram and flow table count the patients
    next to the images (read back from the PDF with pdftotext)."""
    r, res = _load(study_run[0])
    flat = flat_text(r / "report.pdf")
    n_img, n_pat = res["baseline"]["n_cases"], res["baseline"]["n_patients"]
    cases = pd.read_parquet(r / "cases.parquet")
    incl = pd.read_parquet(r / "eligibility.parquet").query("included")["case_id"].astype(str)
    assert n_pat == cases[cases["case_id"].astype(str).isin(incl)]["patient_id"].nunique() < n_img
    assert res["flow"]["patients"]["included"] == n_pat and res["flow"]["included"] == n_img
    assert res["flow"]["patients"]["received"] == cases["patient_id"].nunique()
    assert f"Baseline characteristics of the {n_img} included images from {n_pat} patients" in flat
    assert f"Included in the analysis (n = {n_img} images, {n_pat} patients)" in flat  # the flow diagram
    assert f"Included: {n_img} images from {n_pat} patients" in flat  # the flow table's note
    assert f"{n_img} images from {n_pat} patients included" in flat  # the summary's design sentence
    assert re.search(rf"Images received \(n = {res['flow']['received']} images, {cases['patient_id'].nunique()} "
                     r"patients\)", flat)
    assert "bench/coverage_clustered.py" in flat  # the methods cite the coverage evidence
    assert re.search(r"patient bootstrap- ?t interval", flat)  # and name the counting intervals' method


def test_results_json_holds_pseudonyms_not_case_ids(study_run):
    """The protocol pseudonymises case ids (report.pseudonymise_case_ids): no case id of the manifest is
    stored in results.json, and the pseudonyms are those of study.pseudonyms for the study's cases."""
    from study.pseudonyms import pseudonyms

    root = study_run[0]
    text = (root / "results" / "results.json").read_text()
    results = json.loads(text)
    ids = pd.read_csv(root / "cohort" / "manifest.csv", dtype=str)["case_id"].tolist()
    assert results["study"]["case_ids"] == "pseudonymised"
    assert not [c for c in ids if f'"{c}"' in text]
    names = pseudonyms(ids)
    points = results["counting"]["demo-frcnn"]["points"]["case_id"]
    assert set(points) <= set(names.values()) and len(points) > 0
    assert set(results["agreement"]["inter_reader"]["fleiss"]["case_ids"]) <= set(names.values())


def _report_text(root):
    return pdf_text(root / "results" / "report.pdf")


def test_errors_block_adds_up_to_the_detection_and_counting_blocks(study_run):
    """Issue 17 items 4 and 5: the per-case lesions found add up to the detection block's true positives (computed
    apart, per class), the skin-type groups to their cases, and no interval leaves its bounds."""
    from study.metrics.bounds import interval_problems

    _, res = _load(study_run[0])
    det = res["detection"]["demo-frcnn"]
    me = res["errors"]["models"]["demo-frcnn"]
    cases = me["cases"]
    assert len(cases) == len(res["counting"]["demo-frcnn"]["points"]["case_id"])
    assert sum(c["lesions_found"] for c in cases) == sum(v["tp"] for v in det["classes"].values())
    assert sum(c["lesions"] for c in cases) == det["any_lesion"]["n_gt"]
    assert sum(c["detections"] for c in cases) == det["any_lesion"]["n_det_at_operating_threshold"]
    st = me["skin_type"]
    light = [c for c in cases if c["fitzpatrick"] in ("I", "II", "III")]
    assert st["light"]["n_cases"] == len(light)
    assert st["light"]["lesion_recall"]["k"] == sum(c["lesions_found"] for c in light)
    assert st["light"]["lesion_recall"]["n"] == sum(c["lesions"] for c in light)
    assert interval_problems(res["errors"]) == []


def test_report_shows_grading_errors_skin_type_and_truthful_overlap_labels(study_run):
    """Issue 17 'done when': the grading-error table, the skin-type detection results, and box-versus-mask
    labelling that matches what the model returned (read back with pdftotext)."""
    root = study_run[0]
    _, res = _load(root)
    text = " ".join(_report_text(root).split())
    assert "Grading errors case by case, model demo-frcnn" in text
    assert "Skin type: lesion detection and counting, Fitzpatrick I-III versus IV-VI" in text
    assert "Difference (I-III minus IV-VI)" in text and "Lesion recall" in text
    # the config states no assessor, the manifest names one case by case: the sentence says both
    assert ("The study's configuration does not state who assigned the Fitzpatrick skin types" in text
            and "its skin_type_assessor column names the assessor case by case" in text)
    sd = res["errors"]["models"]["demo-frcnn"]["skin_type_detection"]
    assert "Skin type: detection mAP at IoU 0.5 by Fitzpatrick type and I-III versus IV-VI, model demo-frcnn" in text
    assert "mAP (IoU 0.5)" in text and f"p = {fmt_p(sd['p_value'])}" in text
    assert (f"Detection mAP of model demo-frcnn at IoU 0.5, Fitzpatrick I-III minus IV-VI: "
            f"{fmt(sd['difference']['estimate'])} (p = {fmt_p(sd['p_value'])}; section 4.10)") in text
    n_typed = res["errors"]["skin_type_assessors"]["dermatologist"]
    assert f"Skin type assessor by case (manifest column skin_type_assessor, included cases with a skin type): " \
           f"dermatologist: {n_typed} cases." in text
    for c, seg in res["detection"]["demo-frcnn"]["segmentation"].items():
        kind = "Mask" if seg["model_masks"] and seg["reference_masks"] else "Box"
        assert seg["iou_type"] == ("segm" if kind == "Mask" else "bbox")
        assert f"{kind} IoU" in text
        said = "the model returned masks" if seg["model_masks"] else "the model returned boxes"
        assert f"{c}: {said}" in text
    assert "model(s) and" not in text and "reader(s)" not in text  # (the CLAIM item's own text says "model(s)")


def _first_pages(pdf: Path, *, layout: bool = False) -> str:
    """Text of PDF pages 1-2 (the title page, then page one of the report: the decision); whitespace collapsed,
    or with ``layout`` pdftotext's physical layout (a table row on one line)."""
    return pdf_text(pdf, layout=True, first=1, last=2) if layout else flat_text(pdf, first=1, last=2)


def test_demo_report_first_page_states_each_primary_decision(study_run):
    """Issue 12, Done-when (a): the demo report's first page gives each primary decision with its estimate
    and interval, the lock line, and the secondary endpoints; exploratory endpoints are not there."""
    from study.report.format import fmt_ci
    from study.results.decisions import AnalysisPlanResults

    root = study_run[0]
    r, res = _load(root)
    plan = AnalysisPlanResults.model_validate(res["analysis_plan"])
    page = _first_pages(r / "report.pdf")
    assert "Decision on the pre-specified analysis plan" in page
    assert "NOT LOCKED. The analysis plan was not locked" in page
    label = {"met": "MET", "not met": "NOT MET", "not estimable": "NOT ESTIMABLE"}
    assert f"Primary decision: {label[plan.primary_decision]}." in page
    for e in plan.endpoints:
        if e.role == "exploratory":
            assert e.id not in page
            continue
        # the row: "<id>: ... <criterion> <estimate> (<low>-<high>) [method mark] [p, adjusted p] <decision>"
        # hyphens are left out of the comparison: pdftotext drops the hyphen of a word broken at its hyphen at a
        # line end ("non-inferiority" -> "noninferiority"), which depends only on where the line breaks
        row = page[page.index(f"{e.id}: "):].replace("-", "")
        criterion, estimate = e.criterion.replace("-", ""), fmt_ci(e.estimate).replace("-", "")
        assert row.index(criterion) < row.index(estimate), e.id
        decided = _DECIDED.match(row[row.index(estimate) + len(estimate):])
        assert decided is not None and decided.group(1) == label[e.decision], (e.id, e.decision, row[:600])


#: what follows the interval in a decision row: "(no CI)" when the interval is not estimable, a method mark,
#: the p-values (secondary rows), the decision
_DECIDED = re.compile(r"(?: \(no CI\))?(?:\s+[^\s0-9<A-Z–])?(?:\s+(?:< )?[0-9.]+|\s+–){0,2}\s+(MET|NOT MET|NOT ESTIMABLE)\b")


@pytest.fixture(scope="module")
def locked_then_changed(study_run, tmp_path_factory):
    """The demo's step outputs copied; the primary sensitivity goal tightened to 0.999; `study lock`; then the
    operating threshold changed 0.5 -> 0.25; only decide, collect and report re-run on the copy."""
    import shutil

    from study.plan.lock import LOCK_NAME
    from study.report.render import render_report
    from study.steps import collect, decide

    root = study_run[0]
    src = root / "results"
    work = tmp_path_factory.mktemp("locked")
    out = work / "results"
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("report.*", "figures", "logs", "benchmarks", ".snakemake"))
    assert not (out / LOCK_NAME).exists()
    res = json.loads((src / "results.json").read_text())
    protocol = yaml.safe_load((root / "protocol.yaml").read_text())
    protocol["analysis_plan"]["endpoints"][0]["comparator"]["value"] = 0.999
    (work / "protocol.yaml").write_text(yaml.safe_dump(protocol))
    cfg = {**res["study"]["config"], "protocol": str(work / "protocol.yaml"), "results_dir": str(out)}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    from study.cli import main

    assert main(["lock", str(work / "config.yaml"), "--directory", str(work)]) in (0, None)
    protocol["detection"]["operating_threshold"] = 0.25
    (work / "protocol.yaml").write_text(yaml.safe_dump(protocol))
    config = json.dumps(cfg, sort_keys=True)
    decide(protocol=str(work / "protocol.yaml"), config=config, reference=str(out / "reference.parquet"),
           readings=str(out / "readings.parquet"), grades=str(out / "grades" / "demo-frcnn.parquet"),
           cases=str(out / "cases.parquet"), eligibility=str(out / "eligibility.parquet"),
           mrmc=str(out / "metrics" / "mrmc.json"), detection=str(out / "metrics" / "detection" / "demo-frcnn.json"),
           counting=str(out / "metrics" / "counting" / "demo-frcnn.json"), out=str(out / "metrics" / "decisions.json"))
    collect(config=config, results_dir=str(out), models="demo-frcnn", out=str(out / "results.json"))
    results = json.loads((out / "results.json").read_text())
    # page one does not depend on the subgroup analyses: leaving their figures out keeps the render quick
    quick = {**results, "agreement": {**results["agreement"], "subgroups": {}, "subgroups_n_cases": {}}}
    render_report(quick, out_pdf=out / "report.pdf", out_html=out / "report.html", figures_dir=out / "figures")
    return results, _first_pages(out / "report.pdf"), _first_pages(out / "report.pdf", layout=True)


def test_a_goal_tightened_until_it_fails_shows_not_met_on_page_one(locked_then_changed):
    """Issue 12, Done-when (b), on a real run's outputs read back from the PDF."""
    from study.estimate import Estimate
    from study.report.format import fmt_ci

    def fmt_ci_of(e: dict) -> str:
        return fmt_ci(Estimate.model_validate(e))

    results, page, _ = locked_then_changed
    sens = results["analysis_plan"]["endpoints"][0]
    assert sens["id"] == "sensitivity_grade_iii" and sens["decision"] == "not met"
    assert re.search(r"Primary decision: NOT MET\. Primary endpoints? not met: sensitivity_grade_iii", page)
    assert "at or above the goal 0.999 " in page
    ci = fmt_ci_of(sens["estimate"])
    row = page[page.index("at or above the goal 0.999 "):]
    assert row.index(ci) == len("at or above the goal 0.999 ")
    decided = _DECIDED.match(row[len("at or above the goal 0.999 ") + len(ci):])
    assert decided is not None and decided.group(1) == "NOT MET", row[:600]


def test_a_threshold_changed_after_the_lock_shows_deviation_with_that_key_on_page_one(locked_then_changed):
    """Issue 12, Done-when (c): `study lock`, then the operating threshold changed: page one says DEVIATION and
    names the key with its locked and its new value (the tightened goal was locked, so it is no deviation)."""
    results, page, layout = locked_then_changed
    lock = results["analysis_plan"]["lock"]
    assert lock["state"] == "deviation"
    assert [c["key"] for c in lock["changes"]] == ["protocol.detection.operating_threshold"]
    assert f"DEVIATION. DEVIATION from the analysis plan locked on {lock['locked_at']}" in page
    # the table of changes, one row: key, locked value, value in this run
    assert re.search(r"^\s*protocol\.detection\.operating_threshold\s+0\.5\s+0\.25\s*$", layout, re.MULTILINE), layout[:3000]


def test_mrmc_uses_every_included_case_with_readings_and_reports_aided_versus_unaided(study_run):
    """Issue 14: the study's MRMC analyses every included case that has readings (counted here from the
    run's own readings and eligibility tables), readers aided versus unaided (aided - unaided) and the model
    standalone versus the unaided readers; the report's key results and section 4.8 say how many cases."""
    root = study_run[0]
    r, res = _load(root)
    el = pd.read_parquet(r / "eligibility.parquet")
    included = set(el.loc[el["included"], "case_id"].astype(str))
    rd = pd.read_parquet(r / "readings.parquet")
    rd = rd[rd["case_id"].astype(str).isin(included) & rd["assessable"].astype(bool) & rd["grade"].notna()]
    assert set(rd["modality"]) == {"unaided", "aided"} and rd["confidence"].notna().all()
    u = res["mrmc"]["ustat"]
    assert u["cases_with_readings"] == rd["case_id"].nunique() and u["readings_used"] == len(rd)
    assert u["readings_by_modality"] == {m: int((rd["modality"] == m).sum()) for m in ("aided", "unaided")}
    a = u["aided_vs_unaided"]
    assert a["design"]["n_cases"] == rd["case_id"].nunique()
    assert a["differences"][0]["comparison"] == "aided - unaided"
    assert u["models"]["demo-frcnn"]["differences"][0]["comparison"] == "model demo-frcnn - unaided"
    used = f"{u['cases_with_readings']} of {u['cases_included']} included cases"
    text = flat_text(r / "report.pdf")
    # the key-results row from the HTML (in the PDF a label wrapped over several lines of a narrow column is
    # read back interleaved with the next columns)
    html = (r / "report.html").read_text()
    key = " ".join(re.sub(r"<[^>]+>", " ", html[html.index('id="tab-summary"'):]).split())
    assert f"MRMC readers aided versus unaided: AUC difference (aided - unaided; {used}" in key
    section = text[text.index("4.8 Multi-reader multi-case analysis", text.index("4.7")):]
    assert (f"The U-statistic analyses used {u['cases_with_readings']} of the {u['cases_included']} included cases"
            in section)
    for words in ("Readers aided versus unaided", "Model demo-frcnn standalone versus the unaided readers",
                  "Difference, aided - unaided", "of each reader per modality", "Variance components"):
        assert words in section, words
    html_text = " ".join(re.sub(r"<[^>]+>", " ", html[html.index('id="sec-mrmc"'):]).split())
    for words in ("Gallas BD (2006)", "Gallas BD, Brown DG (2008)", "Chen W, Wunderlich A, Petrick N, Gallas BD (2014)",
                  "Obuchowski NA, Rockette HE (1995)", "largest fully crossed block of unaided readings"):
        assert words in html_text, words
    for fig in ("mrmc_design__readers", "mrmc_forest__readers", "mrmc_design__model__demo-frcnn"):
        assert f'id="fig-{fig}"' in html, fig
    plan = {e["id"]: e for e in res["analysis_plan"]["endpoints"]}
    aided = plan["aided_vs_unaided"]
    assert aided["source"] == "mrmc.ustat.aided_vs_unaided.differences[0].unbiased"
    if a["differences"][0]["unbiased"].get("se") is not None:
        assert aided["estimate"]["estimate"] == pytest.approx(a["differences"][0]["unbiased"]["estimate"])
    else:  # the unbiased variance can be negative on a study this small: then not estimable, saying why
        assert aided["decision"] == "not estimable" and "not positive" in aided["decision_text"]


def test_report_shows_the_model_card_and_checklists_count_it_reported(study_run):
    """The demo model's card (models/demo/model.yaml) reaches results.json and the PDF; its STARD and
    CLAIM items read "reported" (tests/test_report.py: without a card they read "not reported")."""
    root = study_run[0]
    res = json.loads((root / "results" / "results.json").read_text())
    card = res["models"]["demo-frcnn"]["card"]
    assert card["architecture"].startswith("torchvision Faster R-CNN") and card["operating_threshold"] == 0.5
    rows = layout_rows(root / "results" / "report.pdf")
    flat = " ".join(rows)
    assert "Model card of demo-frcnn" in flat and "torchvision Faster R-CNN" in flat
    assert "400 synthetic images of 512 x 512 px" in flat
    stard, claim = "STARD 2015 items and where", "CLAIM 2024 items and where"
    for number in ("10a", "12a"):
        assert checklist_status(rows, stard, number) == "reported", number
    for number in ("9", "22", "23", "27"):
        assert checklist_status(rows, claim, number) == "reported", number
    # the demo config states no registration: not reported, whatever the card says
    assert checklist_status(rows, stard, "28") == "not reported"


def test_report_flow_shows_every_failed_check_readings_of_excluded_cases_and_reference_split(study_run):
    """Flow diagram and table from the run's own flow.json: every failed check, 'more than one reason'
    when a case fails several, readings of excluded cases, included cases by reference result."""
    root = study_run[0]
    res = json.loads((root / "results" / "results.json").read_text())
    flow = res["flow"]
    checks = flow["exclusion_checks"]
    assert sum(c["excluded"] for c in checks.values()) == flow["received"] - flow["included"]
    for c in checks.values():  # every excluded case is counted under each check it failed
        assert sum(c["by_check"].values()) >= c["excluded"]
        assert sum(c["by_check"].values()) - c["excluded"] >= c["more_than_one"]
    mr = flow["missing_readings"]
    flat = " ".join(layout_rows(root / "results" / "report.pdf"))
    assert "every failed check, per case:" in flat and "Reasons: every check the excluded cases failed" in flat
    if mr["readings_of_excluded_cases"]:
        assert f"Readings of {mr['excluded_cases_read']} excluded cases, not analysed" in flat
    levels = {lv["value"]: lv["n"] for lv in res["baseline"]["severity"]["levels"]}
    positive = levels.get("III", 0) + levels.get("IV", 0)
    assert f"grade III or worse: {positive}; below: {flow['included'] - positive - res['baseline']['severity']['n_missing']}" in flat


def _section_chunks(html: str) -> dict[str, str]:
    """The report's HTML cut at every section anchor (``id="sec-..."``): section id -> its own text
    up to the next section's anchor."""
    import re

    marks = [(m.group(1), m.start()) for m in re.finditer(r'id="(sec-[a-z0-9-]+)"', html)]
    return {sid: html[start:(marks[i + 1][1] if i + 1 < len(marks) else len(html))]
            for i, (sid, start) in enumerate(marks)}


def test_report_of_this_run_shows_every_section_whose_data_exist(study_run):
    """The report rendered by this session's code from this session's results.json (not the frozen
    fixture): every section is there, and a section says its data are missing (the red
    "not assessed" note) exactly when results.json has none of them, judged from results.json's
    own keys, so a key renamed on one side only fails here; every figure drawn has its place."""
    import re

    from study.report.context.common import SECTIONS

    root, _, _ = study_run
    rd, results = _load(root)
    html = (rd / "report.html").read_text(encoding="utf-8")
    chunks = _section_chunks(html)
    assert list(chunks) == list(SECTIONS)
    ag, mrmc = results["agreement"], results["mrmc"]
    settings = results["study"]["protocol_settings"]
    readers = [rid for rid, v in (ag or {}).get("raters", {}).items() if v["kind"] == "reader"]
    has_data = {
        "sec-summary": bool(results["detection"] or results["counting"] or ag),
        "sec-methods": bool(settings),
        "sec-criteria": bool(settings["inclusion"]),
        "sec-index-tests": bool(results["models"]),
        "sec-readers": bool(readers),
        "sec-flow": results["flow"] is not None,
        "sec-baseline": results["baseline"] is not None,
        "sec-detection": bool(results["detection"]),
        "sec-counting": bool(results["counting"]),
        "sec-agreement": bool(ag and ag["raters"]),
        "sec-accuracy": bool(ag and ag["raters"]),
        "sec-comparisons": bool(ag and ag["comparisons"]),
        "sec-mrmc": bool(mrmc and mrmc.get("assessed", True)),
        "sec-subgroups": bool(ag and ag["subgroups"]),
        "sec-failures": bool(results["counting"]),
        "sec-examples": bool(settings["report"]["show_example_images"]),
        "sec-provenance": results["provenance"] is not None,
    }
    # this run has a model, readers and every analysis: the test checks the sections, not absences
    assert {s for s, ok in has_data.items() if ok} >= {
        "sec-summary", "sec-index-tests", "sec-readers", "sec-flow", "sec-baseline", "sec-detection", "sec-counting",
        "sec-agreement", "sec-accuracy", "sec-comparisons", "sec-mrmc", "sec-failures", "sec-provenance"}
    wrong = {s: re.findall(r'<p class="not-assessed">([^<]*)', chunks[s])[:1] or "no note"
             for s, ok in has_data.items() if ok == ('class="not-assessed"' in chunks[s])}
    assert not wrong, f"sections whose note contradicts results.json: {wrong}"
    drawn = sorted(p.stem for p in (rd / "figures").glob("*.svg"))
    assert {"flow", "pr__demo-frcnn", "count_scatter__demo-frcnn", "confusion"} <= set(drawn)
    assert [n for n in drawn if f'id="fig-{n}"' not in html] == []
    assert len(list((rd / "figures" / ".cache").glob("*.svg"))) >= len(drawn)  # the figure cache of the report rule
