"""Builders of the hostile-study corpus (issue 18 item 9); the tests are in test_hostile_corpus.py.

One valid tiny study (``study synth``, 6 cases of 256 px, a precomputed-detections model,
100 bootstrap replicates) is built once per test session and copied for each case; a case
is a mutation of that copy. Two kinds (47 studies):

- ``REFUSED``: studies ``study check`` (or, for the few it cannot see, a workflow step)
  must refuse with exit status 2 and a message naming the file and the key or row;
- ``DEGENERATE``: valid but degenerate studies (issue 18 item 1) ``study run`` must finish
  with a report whose affected sections say "not estimable" and why.
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO_ROOT
from tests.small_study import study_env

N_CASES = 6
CLASSES = ["comedone", "papule", "pustule", "nodule", "cyst", "scar"]
_BASE: dict[str, Path] = {}


# --------------------------------------------------------------------------- the base study

def _synth_base() -> Path:
    """The valid base study, built once per session (about 3 s)."""
    if "root" in _BASE:
        return _BASE["root"]
    root = Path(tempfile.mkdtemp(prefix="hostile-base-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    cohort = root / "cohort"
    subprocess.run([sys.executable, "-m", "study", "synth", "--cases", str(N_CASES), "--seed", "5",
                    "--image-size", "256", "--exclusion-rate", "0", "--out", str(cohort)],
                   check=True, capture_output=True, env=study_env())
    coco = json.loads((cohort / "annotations.json").read_text(encoding="utf-8"))
    dt = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
          for a in coco["annotations"]]
    (cohort / "dt.json").write_text(json.dumps(dt), encoding="utf-8")
    protocol = yaml.safe_load((REPO_ROOT / "protocols" / "chinese-2019.yaml").read_text(encoding="utf-8"))
    protocol["statistics"]["bootstrap_replicates"] = 100
    protocol["quality"].update(min_width=128, min_height=128)
    (cohort / "protocol.yaml").write_text(yaml.safe_dump(protocol, sort_keys=False), encoding="utf-8")
    cfg = {"study": "hostile", "protocol": "cohort/protocol.yaml", "results_dir": "results", "shards": 1,
           "cohort": {"manifest": "cohort/manifest.csv", "image_root": "cohort/images",
                      "annotations": "cohort/annotations.json", "reference": "cohort/reference.csv",
                      "readings": "cohort/readings.csv"},
           "models": [{"id": "vendor", "backend": "precomputed", "detections": "cohort/dt.json", "classes": CLASSES,
                       "images": "cohort/annotations.json",
                       "categories": {c["id"]: c["name"] for c in coco["categories"]}}]}
    (root / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    _BASE["root"] = root
    return root


@dataclass
class Study:
    """A copy of the base study: paths by role, and helpers to edit its files."""

    root: Path

    @property
    def cohort(self) -> Path:
        return self.root / "cohort"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def results(self) -> Path:
        return self.root / "results"

    def path(self, name: str) -> Path:
        return self.cohort / name

    # tables -------------------------------------------------------------
    def rows(self, name: str) -> list[dict[str, str]]:
        with open(self.path(name), newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    def write_rows(self, name: str, rows: list[dict[str, str]], *, fields: list[str] | None = None) -> None:
        fields = fields or (list(rows[0]) if rows else self.header(name))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        self.path(name).write_text(buf.getvalue(), encoding="utf-8")

    def header(self, name: str) -> list[str]:
        return self.path(name).read_text(encoding="utf-8").splitlines()[0].split(",")

    def edit_rows(self, name: str, fn: Callable[[list[dict[str, str]]], list[dict[str, str]] | None]) -> None:
        rows = self.rows(name)
        out = fn(rows)
        self.write_rows(name, rows if out is None else out, fields=self.header(name))

    # YAML / JSON --------------------------------------------------------
    def edit_yaml(self, path: Path, fn: Callable[[Any], None]) -> None:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        fn(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")

    def edit_protocol(self, fn: Callable[[dict], None]) -> None:
        self.edit_yaml(self.path("protocol.yaml"), fn)

    def edit_config(self, fn: Callable[[dict], None]) -> None:
        self.edit_yaml(self.config, fn)

    def edit_json(self, name: str, fn: Callable[[Any], Any]) -> None:
        data = json.loads(self.path(name).read_text(encoding="utf-8"))
        out = fn(data)
        self.path(name).write_text(json.dumps(data if out is None else out), encoding="utf-8")

    def case_ids(self) -> list[str]:
        return [r["case_id"] for r in self.rows("manifest.csv")]

    def keep_cases(self, keep: list[str]) -> None:
        """Cut the study down to the cases ``keep`` (manifest, annotations, detections, reference, readings)."""
        self.edit_rows("manifest.csv", lambda rs: [r for r in rs if r["case_id"] in keep])
        self.edit_rows("reference.csv", lambda rs: [r for r in rs if r["case_id"] in keep])
        self.edit_rows("readings.csv", lambda rs: [r for r in rs if r["case_id"] in keep])
        coco = json.loads(self.path("annotations.json").read_text(encoding="utf-8"))
        ids = {im["id"] for im in coco["images"] if im["case_id"] in keep}
        coco["images"] = [im for im in coco["images"] if im["id"] in ids]
        coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
        self.path("annotations.json").write_text(json.dumps(coco), encoding="utf-8")
        self.edit_json("dt.json", lambda dt: [d for d in dt if d["image_id"] in ids])


def new_study(tmp: Path) -> Study:
    """A fresh copy of the base study under ``tmp``."""
    dest = Path(tmp) / "study"
    shutil.copytree(_synth_base(), dest)
    return Study(dest)


# --------------------------------------------------------------------------- degenerate studies

def _all_excluded(s: Study) -> None:
    s.edit_protocol(lambda p: p["inclusion"].append(
        {"id": "over_99", "field": "age", "description": "aged 99 or more", "min": 99}))


def _one_case(s: Study) -> None:
    s.keep_cases(s.case_ids()[:1])


def _one_patient(s: Study) -> None:
    s.edit_rows("manifest.csv", lambda rs: [r.update(patient_id="P-only") for r in rs] and None)


def _one_grade_in_reference(s: Study) -> None:
    s.edit_rows("reference.csv", lambda rs: [r.update(grade="II") for r in rs] and None)


def _reader_with_nothing_to_read(s: Study) -> None:
    rows = s.rows("readings.csv")
    fields = s.header("readings.csv") + ["assessable"]
    for r in rows:
        r["assessable"] = "true"
    rows += [{**{k: "" for k in fields}, "reader_id": "idle-1", "reader_group": "junior", "case_id": c,
              "assessable": "false"} for c in s.case_ids()]
    s.write_rows("readings.csv", rows, fields=fields)


def _model_finds_nothing(s: Study) -> None:
    s.path("dt.json").write_text("[]", encoding="utf-8")


def _all_readers_identical(s: Study) -> None:
    ref = {r["case_id"]: r["grade"] for r in s.rows("reference.csv")}
    levels = ["I", "II", "III", "IV"]
    # the same grade from every reader: one level off the reference on every other case
    same = {c: (g if i % 2 else levels[(levels.index(g) + 1) % 4]) for i, (c, g) in enumerate(sorted(ref.items()))}
    s.edit_rows("readings.csv", lambda rs: [r.update(grade=same[r["case_id"]]) for r in rs] and None)


def _excluded_shown(r: Any, raw: dict) -> None:
    assert r.flow.included == 0 and r.flow.failed_eligibility.by_criterion["over_99"] == N_CASES
    assert r.baseline.n_cases == 0


def _one_case_shown(r: Any, raw: dict) -> None:
    assert r.flow.included == 1
    kappa = r.agreement.raters["vendor"].kappa
    assert kappa.estimate is None and kappa.reason  # one level used by both raters


def _one_patient_shown(r: Any, raw: dict) -> None:
    assert r.counting["vendor"].inputs.n_patients == 1
    mae = r.counting["vendor"].thresholds["0.5"].overall.mae
    assert mae.ci_low is None and mae.reason
    acc = r.agreement.raters["vendor"].accuracy
    assert acc.n_clusters == 1


def _one_grade_shown(r: Any, raw: dict) -> None:
    per_grade = r.agreement.raters["vendor"].per_grade
    for level in ("I", "III", "IV"):
        assert per_grade[level].sensitivity.estimate is None and per_grade[level].sensitivity.reason
    assert per_grade["II"].specificity.estimate is None and per_grade["II"].specificity.reason


def _idle_reader_shown(r: Any, raw: dict) -> None:
    assert r.flow.analysed.readers["idle-1"] == 0
    assert "idle-1" not in r.agreement.raters


def _finds_nothing_shown(r: Any, raw: dict) -> None:
    any_lesion = r.detection["vendor"].any_lesion
    assert any_lesion.n_det == 0 and any_lesion.ap == 0.0
    assert any_lesion.precision.estimate is None and any_lesion.precision.reason


def _identical_readers_shown(r: Any, raw: dict) -> None:
    fleiss = r.agreement.inter_reader.fleiss.kappa
    assert fleiss.estimate == 1.0 and fleiss.ci_low is None and fleiss.reason


@dataclass(frozen=True)
class Degenerate:
    """A valid, degenerate study: ``study run`` must end with a report.

    ``report_says``: phrases the report's text must hold (whitespace normalised);
    ``check(results, raw)``: assertions on the typed results.json that show the degenerate part.
    """

    name: str
    build: Callable[[Study], None]
    report_says: list[str]
    check: Callable[[Any, dict], None]


DEGENERATE: list[Degenerate] = [
    Degenerate("all_cases_excluded", _all_excluded,
               ["Not estimable: no case was included", "6 failed the inclusion criteria"], _excluded_shown),
    Degenerate("one_case", _one_case, ["n/a (not estimable)", "no CI (interval not estimable)"], _one_case_shown),
    Degenerate("one_patient", _one_patient, ["no CI (interval not estimable)"], _one_patient_shown),
    Degenerate("one_grade_in_reference", _one_grade_in_reference,
               ["n/a (not estimable)", "sensitivity against specificity is not drawn"], _one_grade_shown),
    Degenerate("reader_with_nothing_to_read", _reader_with_nothing_to_read,
               ["idle-1 had no analysable reading"], _idle_reader_shown),
    Degenerate("model_finds_nothing", _model_finds_nothing,
               ["n/a (not estimable): no detection at the operating threshold"], _finds_nothing_shown),
    Degenerate("all_readers_identical", _all_readers_identical, ["no CI (interval not estimable)"],
               _identical_readers_shown),
]


# --------------------------------------------------------------------------- refused studies

DEMO_WEIGHTS = REPO_ROOT / "models" / "demo" / "demo-frcnn.pt"
MARKUP_ID = "<img src=x onerror=alert(1)>&amp;"
BIDI_ID = "C\u202eevil\u202c"


def _proto(fn: Callable[[dict], None]) -> Callable[[Study], None]:
    return lambda s: s.edit_protocol(fn)


def _conf(fn: Callable[[dict], None]) -> Callable[[Study], None]:
    return lambda s: s.edit_config(fn)


def _set_cell(name: str, row: int, column: str, value: str) -> Callable[[Study], None]:
    """Set ``column`` of data row ``row`` (0-based) of table ``name``."""
    def mutate(s: Study) -> None:
        s.edit_rows(name, lambda rs: rs[row].update({column: value}) and None)
    return mutate


def _add_model(entry: Callable[[Study], dict]) -> Callable[[Study], None]:
    def mutate(s: Study) -> None:
        e = entry(s)
        s.edit_config(lambda c: c["models"].append(e))
    return mutate


def _torchvision(s: Study, weights: Path, **extra: Any) -> dict:
    return {"id": "frcnn", "backend": "torchvision", "architecture": "acne_small_frcnn", "weights": str(weights),
            "classes": CLASSES, "device": "cpu", **extra}


def _weights_file(make: Callable[[Path], None], **extra: Any) -> Callable[[Study], None]:
    def entry(s: Study) -> dict:
        path = s.root / "weights.pt"
        make(path)
        return _torchvision(s, path, **extra)
    return _add_model(entry)


def _file_model(backend: str, suffix: str, content: bytes) -> Callable[[Study], None]:
    def entry(s: Study) -> dict:
        path = s.root / f"model{suffix}"
        path.write_bytes(content)
        return {"id": f"{backend}-model", "backend": backend, "file": str(path), "classes": CLASSES}
    return _add_model(entry)


def _header_only(name: str) -> Callable[[Study], None]:
    return lambda s: s.path(name).write_text(",".join(s.header(name)) + "\n", encoding="utf-8")


def _duplicate_first_case(new_id: str) -> Callable[[Study], None]:
    """Give the first two cases the id ``new_id`` (manifest only)."""
    def mutate(s: Study) -> None:
        s.edit_rows("manifest.csv", lambda rs: [r.update(case_id=new_id) for r in rs[:2]] and None)
    return mutate


def _ann(fn: Callable[[dict], None]) -> Callable[[Study], None]:
    return lambda s: s.edit_json("annotations.json", fn)


@dataclass(frozen=True)
class Refused:
    """A study that must end with exit status 2 and one line of stderr holding every string of ``expected``."""

    name: str
    build: Callable[[Study], None]
    expected: list[str]


REFUSED: list[Refused] = [
    # the protocol: values out of range, cross-field rules, unreadable files
    Refused("protocol_negative_seed", _proto(lambda p: p["statistics"].update(bootstrap_seed=-1)),
            ["protocol.yaml: statistics.bootstrap_seed"]),
    Refused("protocol_score_threshold_above_one", _proto(lambda p: p["detection"].update(score_thresholds=[0.5, 1.5])),
            ["protocol.yaml: detection.score_thresholds"]),
    Refused("protocol_operating_threshold_not_listed", _proto(lambda p: p["detection"].update(operating_threshold=0.3)),
            ["protocol.yaml: detection", "operating_threshold 0.3"]),
    Refused("protocol_center_distance_without_radius", _proto(lambda p: p["detection"].update(match_rule="center_distance")),
            ["protocol.yaml: detection", "center_distance_px"]),
    Refused("protocol_confidence_level_one", _proto(lambda p: p["statistics"].update(confidence_level=1.0)),
            ["protocol.yaml: statistics.confidence_level"]),
    Refused("protocol_too_few_bootstrap_replicates", _proto(lambda p: p["statistics"].update(bootstrap_replicates=10)),
            ["protocol.yaml: statistics.bootstrap_replicates"]),
    Refused("protocol_iou_threshold_zero", _proto(lambda p: p["detection"].update(iou_threshold=0)),
            ["protocol.yaml: detection.iou_threshold"]),
    Refused("protocol_unknown_key", _proto(lambda p: p["statistics"].update(bootstrap_seeds=3)),
            ["protocol.yaml: statistics.bootstrap_seeds"]),
    Refused("protocol_rule_with_unknown_level",
            _proto(lambda p: p["grading"]["rules"].insert(0, {"level": "V", "any_of": {"cyst": 3}})),
            ["protocol.yaml: grading", "'V'"]),
    Refused("protocol_rules_out_of_severity_order", _proto(lambda p: p["grading"]["rules"].reverse()),
            ["protocol.yaml: grading", "rules[1]"]),
    Refused("protocol_subgroup_column_missing", _proto(lambda p: p["subgroups"].append("skin_tone")),
            ["skin_tone"]),
    Refused("protocol_mrmc_positive_from_unknown_level",
            _proto(lambda p: p["statistics"].update(mrmc_positive_from="V")),
            ["protocol.yaml", "statistics.mrmc_positive_from 'V'"]),
    Refused("protocol_broken_yaml", lambda s: s.path("protocol.yaml").write_text("classes: [comedone, papule\n"),
            ["protocol.yaml"]),
    Refused("protocol_empty_file", lambda s: s.path("protocol.yaml").write_text(""),
            ["protocol.yaml", "the protocol file is empty"]),
    # the config
    Refused("config_duplicate_model_id", _conf(lambda c: c["models"].append(dict(c["models"][0]))),
            ["config.yaml: models.1.id", "'vendor'"]),
    Refused("config_manifest_missing", _conf(lambda c: c["cohort"].update(manifest="cohort/nowhere.csv")),
            ["nowhere.csv"]),
    Refused("config_zero_shards", _conf(lambda c: c.update(shards=0)),
            ["config.yaml", "shards"]),
    Refused("config_not_a_mapping", lambda s: s.config.write_text("- just\n- a list\n", encoding="utf-8"),
            ["config.yaml"]),
    # model files
    Refused("model_checkpoint_random_bytes", _weights_file(lambda p: p.write_bytes(bytes(range(256)) * 64)),
            ["model frcnn", "not a valid checkpoint"]),
    Refused("model_checkpoint_truncated",
            _weights_file(lambda p: p.write_bytes(DEMO_WEIGHTS.read_bytes()[: DEMO_WEIGHTS.stat().st_size // 3])),
            ["model frcnn", "weights"]),
    Refused("model_sha256_mismatch", _weights_file(lambda p: shutil.copy(DEMO_WEIGHTS, p), weights_sha256="0" * 64),
            ["model frcnn", "weights_sha256"]),
    Refused("model_weights_missing", _add_model(lambda s: _torchvision(s, s.root / "absent.pt")),
            ["model frcnn", "absent.pt"]),
    Refused("model_onnx_garbage", _file_model("onnx", ".onnx", bytes(range(256)) * 8),
            ["model onnx-model"]),
    Refused("model_torchscript_garbage", _file_model("torchscript", ".ts", b"PK\x03\x04 not a zip archive" * 10),
            ["model torchscript-model"]),
    Refused("model_detections_not_json", lambda s: s.path("dt.json").write_text("{not json", encoding="utf-8"),
            ["dt.json"]),
    # the manifest
    Refused("manifest_header_only", _header_only("manifest.csv"),
            ["manifest.csv", "no rows"]),
    Refused("manifest_empty_file", lambda s: s.path("manifest.csv").write_bytes(b""),
            ["manifest.csv"]),
    Refused("manifest_duplicate_case_id", _duplicate_first_case("C00001"),
            ["manifest.csv", "row 2", "C00001"]),
    Refused("manifest_markup_case_id_duplicated", _duplicate_first_case(MARKUP_ID),
            ["manifest.csv", "row 2", MARKUP_ID]),
    Refused("manifest_image_missing", _set_cell("manifest.csv", 2, "image", "absent.jpg"),
            ["manifest.csv", "row 4", "absent.jpg", "not found"]),
    Refused("manifest_age_text", _set_cell("manifest.csv", 1, "age", "twenty"),
            ["manifest.csv", "row 3", "age", "twenty"]),
    Refused("manifest_fitzpatrick_out_of_range", _set_cell("manifest.csv", 1, "fitzpatrick", "7"),
            ["manifest.csv", "row 3", "column fitzpatrick", "'7'", "expected I, II, III, IV, V or VI"]),
    Refused("manifest_image_outside_root", _set_cell("manifest.csv", 0, "image", "../protocol.yaml"),
            ["manifest.csv", "row 2", "../protocol.yaml"]),
    # annotations
    Refused("annotations_invalid_json", lambda s: s.path("annotations.json").write_text('{"images": [}'),
            ["annotations.json"]),
    Refused("annotations_box_outside_image", _ann(lambda d: d["annotations"][0].update(bbox=[250, 250, 40, 40])),
            ["annotations.json", "outside"]),
    Refused("annotations_unknown_category", _ann(lambda d: d["annotations"][0].update(category_id=999)),
            ["annotations.json", "999"]),
    # the reference
    Refused("reference_bad_grade", _set_cell("reference.csv", 1, "grade", "V"),
            ["reference.csv", "row 3", "'V'"]),
    Refused("reference_unknown_case", _set_cell("reference.csv", 0, "case_id", "C99999"),
            ["reference.csv", "row 2", "C99999"]),
    # the readings
    Refused("readings_bad_grade", _set_cell("readings.csv", 3, "grade", "V"),
            ["readings.csv", "row 5", "'V'"]),
    Refused("readings_reader_reads_case_twice", lambda s: s.edit_rows("readings.csv", lambda rs: rs + [dict(rs[0])]),
            ["readings.csv", "C00001"]),
    Refused("readings_bidi_case_id", _set_cell("readings.csv", 0, "case_id", BIDI_ID),
            ["readings.csv", "row 2", "unknown case", "\\u202e"]),
]
