"""``study check``: a corpus of malformed inputs, each giving its specific message and exit 2.

Every case starts from a valid study (``make_study``), breaks one thing, runs
``study check CONFIG`` in-process and asserts: exit status 2, the specific message
(naming the file, the row / JSON path and the offending value), no traceback, and that
nothing was written (``study check`` only reads).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_check_fixtures import make_study


def _edit_csv(path: Path, fn) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(fn(lines)) + "\n", encoding="utf-8")


def _edit_json(path: Path, fn) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    fn(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _edit_yaml(path: Path, fn) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _set_row(i: int, col: int, value: str):
    def f(lines):
        cells = lines[i].split(",")
        cells[col] = value
        lines[i] = ",".join(cells)
        return lines
    return f


def _truncate(p: Path) -> None:
    b = p.read_bytes()
    p.write_bytes(b[: len(b) // 2])


def _symlink_out(s) -> None:
    outside = s["root"] / "outside.jpg"
    outside.write_bytes((s["images"] / "C1.jpg").read_bytes())
    (s["images"] / "C2.jpg").unlink()
    os.symlink(outside, s["images"] / "C2.jpg")


def _ann(fn):
    return lambda s: _edit_json(s["annotations"], fn)


# (id, mutation, expected substrings of the message)
CORPUS = [
    ("empty_case_id", lambda s: _edit_csv(s["manifest"], _set_row(2, 0, "")),
     ["manifest.csv: row 3", "case_id is empty"]),
    ("duplicate_case_id", lambda s: _edit_csv(s["manifest"], _set_row(2, 0, "C1")),
     ["manifest.csv: row 3", "duplicate case_id 'C1' (first at row 2)"]),
    ("case_without_image", lambda s: _edit_csv(s["manifest"], _set_row(3, 2, "")),
     ["manifest.csv: row 4", "case 'C3' has no image"]),
    ("image_missing", lambda s: (s["images"] / "C4.jpg").unlink(),
     ["manifest.csv: row 5", "case 'C4'", "'C4.jpg'", "image file not found"]),
    ("image_zero_bytes", lambda s: (s["images"] / "C2.jpg").write_bytes(b""),
     ["manifest.csv: row 3", "'C2.jpg'", "empty (0 bytes)"]),
    ("image_truncated", lambda s: _truncate(s["images"] / "C3.jpg"),
     ["manifest.csv: row 4", "'C3.jpg'", "does not decode", "truncated"]),
    ("image_not_an_image", lambda s: (s["images"] / "C1.jpg").write_text("hello, I am text"),
     ["manifest.csv: row 2", "'C1.jpg'", "not an image"]),
    ("image_path_dotdot", lambda s: _edit_csv(s["manifest"], _set_row(1, 2, "../manifest.csv")),
     ["manifest.csv: row 2", "'../manifest.csv' contains '..'"]),
    ("image_path_absolute", lambda s: _edit_csv(s["manifest"], _set_row(1, 2, "/etc/hostname")),
     ["manifest.csv: row 2", "'/etc/hostname' is absolute"]),
    ("image_symlink_out", _symlink_out,
     ["manifest.csv: row 3", "'C2.jpg' resolves to", "outside the image root"]),
    ("same_image_two_cases", lambda s: _edit_csv(s["manifest"], _set_row(2, 2, "C1.jpg")),
     ["manifest.csv: row 3", "image 'C1.jpg' is also the image of case 'C1'"]),
    ("age_nan", lambda s: _edit_csv(s["manifest"], _set_row(1, 3, "NaN")),
     ["manifest.csv: row 2, column age", "age = 'NaN'", "NaN or infinity where a number is required"]),
    ("age_text", lambda s: _edit_csv(s["manifest"], _set_row(1, 3, "twenty")),
     ["manifest.csv: row 2, column age", "'twenty' is not a number"]),
    ("manifest_missing_column", lambda s: _edit_csv(s["manifest"], lambda ls: [",".join(l.split(",")[:1] + l.split(",")[2:]) for l in ls]),
     ["manifest.csv: line 1 (header)", "missing column(s) ['patient_id']"]),
    ("manifest_ragged_row", lambda s: _edit_csv(s["manifest"], lambda ls: ls[:2] + [ls[2] + ",extra"] + ls[3:]),
     ["manifest.csv: row 3", "has 11 fields, the header has 10"]),
    ("manifest_not_utf8", lambda s: s["manifest"].write_bytes(s["manifest"].read_bytes().replace(b"site-A", b"s\xe9te", 1)),
     ["manifest.csv: line 2", "not UTF-8 text: byte 0xe9"]),
    ("manifest_semicolons", lambda s: s["manifest"].write_text(s["manifest"].read_text().replace(",", ";")),
     ["manifest.csv: line 1 (header)", "looks separated by semicolons"]),
    ("criterion_column_missing", lambda s: _edit_csv(s["manifest"], lambda ls: [l.rsplit(",", 1)[0] for l in ls]),
     ["protocol.yaml: inclusion[3].field", "criterion 'no_other_facial_disease' uses column 'other_facial_disease'"]),
    ("box_negative_size", _ann(lambda d: d["annotations"][0].update(bbox=[50, 60, -10, 12])),
     ["annotations.json: annotations[0].bbox", "[50, 60, -10, 12]", "non-positive size"]),
    ("box_outside_image", _ann(lambda d: d["annotations"][1].update(bbox=[300, 100, 40, 14])),
     ["annotations.json: annotations[1].bbox", "[300, 100, 40, 14] lies outside its 320x320 image"]),
    ("box_nan", lambda s: s["annotations"].write_text(s["annotations"].read_text().replace("[50, 60, 10, 12]", "[50, NaN, 10, 12]")),
     ["annotations.json: annotations[0].bbox", "expected 4 finite numbers"]),
    ("annotations_unknown_image", _ann(lambda d: d["images"].append({"id": 99, "file_name": "X9.jpg", "width": 320, "height": 320})),
     ["annotations.json: images[4].file_name", "annotations for unknown image 'X9.jpg'"]),
    ("annotation_unknown_image_id", _ann(lambda d: d["annotations"][0].update(image_id=77)),
     ["annotations.json: annotations[0].image_id", "unknown image id 77"]),
    ("annotations_unknown_class", _ann(lambda d: d["categories"][0].update(name="blackhead")),
     ["annotations.json: categories[0].name", "unknown class 'blackhead'"]),
    ("annotation_unknown_category", _ann(lambda d: d["annotations"][1].update(category_id=999)),
     ["annotations.json: annotations[1].category_id", "category_id 999"]),
    ("polygon_class_without_polygon", _ann(lambda d: d["annotations"][2].pop("segmentation")),
     ["annotations.json: annotations[2].segmentation", "class 'cyst' is a polygon class"]),
    ("annotations_invalid_json", lambda s: s["annotations"].write_text('{"images": [}'),
     ["annotations.json", "invalid JSON at line 1"]),
    ("reference_unknown_case", lambda s: _edit_csv(s["reference"], _set_row(2, 0, "C9")),
     ["reference.csv: row 3", "reference for unknown case 'C9'"]),
    ("reference_bad_grade", lambda s: _edit_csv(s["reference"], _set_row(1, 1, "V")),
     ["reference.csv: row 2, case 'C1'", "grade 'V' is not one of the protocol's levels", "['I', 'II', 'III', 'IV']"]),
    ("reference_count_nan", lambda s: _edit_csv(s["reference"], _set_row(3, 2, "nan")),
     ["reference.csv: row 4", "count_comedone = 'nan'", "NaN or infinity"]),
    ("reference_unknown_count_class", lambda s: _edit_csv(s["reference"], lambda ls: [ls[0].replace("count_comedone", "count_wart")] + ls[1:]),
     ["reference.csv: line 1 (header)", "'count_wart' counts an unknown class 'wart'"]),
    ("readings_unknown_case", lambda s: _edit_csv(s["readings"], _set_row(1, 2, "C42")),
     ["readings.csv: row 2", "reading of unknown case 'C42' by reader 'j1'"]),
    ("readings_bad_grade", lambda s: _edit_csv(s["readings"], _set_row(2, 3, "E")),
     ["readings.csv: row 3, reader 'j1', case 'C2'", "grade 'E' is not one of"]),
    ("reader_reads_case_twice", lambda s: _edit_csv(s["readings"], _set_row(2, 2, "C1")),
     ["readings.csv: row 3", "reader 'j1' has two readings of case 'C1' (rows 2 and 3)"]),
    ("reader_in_two_groups", lambda s: _edit_csv(s["readings"], _set_row(3, 1, "senior")),
     ["readings.csv: row 4", "reader 'j1' is in group 'senior' here but in group 'junior' at row 2"]),
    ("readings_tab_separated", lambda s: s["readings"].write_text(s["readings"].read_text().replace(",", "\t")),
     ["readings.csv: line 1 (header)", "looks separated by tabs"]),
    ("readings_missing_file", lambda s: s["readings"].unlink(),
     ["readings.csv: file not found"]),
    ("protocol_unknown_key", lambda s: _edit_yaml(s["protocol"], lambda d: d["quality"].update(blur_max=3)),
     ["protocol.yaml: quality.blur_max", "unknown key"]),
    ("protocol_nan", lambda s: _edit_yaml(s["protocol"], lambda d: d["quality"].update(laplacian_var_min=float("nan"))),
     ["protocol.yaml: quality.laplacian_var_min", "NaN or infinity where a number is required"]),
    ("protocol_missing", lambda s: s["protocol"].unlink(),
     ["protocol.yaml: protocol file not found"]),
    ("config_unknown_key", lambda s: _edit_yaml(s["config"], lambda d: d.update(shardz=3)),
     ["config.yaml", "'shardz'", "not allowed"]),
]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 25
    assert len({c[0] for c in CORPUS}) == len(CORPUS)


def test_valid_study_passes(tmp_path, run_cli):
    s = make_study(tmp_path)
    rc, out, err = run_cli("check", s["config"])
    assert rc == 0, err
    assert "OK" in out and "cases: 4" in out


@pytest.mark.parametrize("name,mutate,expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_input(tmp_path, run_cli, name, mutate, expected):
    s = make_study(tmp_path)
    mutate(s)
    before = _snapshot(tmp_path)
    rc, out, err = run_cli("check", s["config"])
    assert rc == 2, f"{name}: exit {rc}\n{out}\n{err}"
    text = out + err
    assert "Traceback" not in text
    line = next((l for l in err.splitlines() if all(e in l for e in expected)), None)
    assert line is not None, f"{name}: no line with all of {expected} in:\n{err}"
    assert _snapshot(tmp_path) == before, "study check must not write anything"


def test_all_problems_reported_at_once(tmp_path, run_cli):
    s = make_study(tmp_path)
    _edit_csv(s["manifest"], _set_row(2, 0, "C1"))                      # duplicate case id
    (s["images"] / "C4.jpg").write_bytes(b"")                           # zero bytes
    _ann(lambda d: d["annotations"][0].update(bbox=[50, 60, -10, 12]))(s)  # negative box
    _edit_csv(s["readings"], _set_row(2, 3, "E"))                       # bad grade
    _edit_yaml(s["protocol"], lambda d: d["quality"].update(blur_max=3))  # unknown key
    rc, _, err = run_cli("check", s["config"])
    assert rc == 2
    for needle in ("duplicate case_id 'C1'", "empty (0 bytes)", "non-positive size", "grade 'E'", "quality.blur_max"):
        assert needle in err, needle
    assert "problems:" in err


@pytest.mark.parametrize("name", ["image_truncated", "reader_reads_case_twice"])
def test_malformed_input_subprocess(tmp_path, name):
    """The installed command, as a user runs it: exit 2, the message, no traceback."""
    _, mutate, expected = next(c for c in CORPUS if c[0] == name)
    s = make_study(tmp_path)
    mutate(s)
    proc = subprocess.run([sys.executable, "-m", "study", "check", str(s["config"])], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert any(all(e in l for e in expected) for l in proc.stderr.splitlines()), proc.stderr


def test_header_only_manifest_says_so_once(tmp_path, run_cli):
    s = make_study(tmp_path)
    _edit_csv(s["manifest"], lambda ls: ls[:1])
    rc, _, err = run_cli("check", s["config"])
    assert rc == 2
    assert "manifest.csv: the manifest has no rows (only its header); expected one row per case" in err
    assert len(err.splitlines()) <= 4, err  # the one cause, and a note that the rest was not checked


def test_problems_of_one_cause_are_capped_with_a_count(tmp_path, run_cli):
    s = make_study(tmp_path)
    _edit_csv(s["readings"], lambda ls: ls[:1] + [f"r{i},junior,X{i},I" for i in range(40)])
    rc, _, err = run_cli("check", s["config"])
    assert rc == 2
    shown = [l for l in err.splitlines() if "reading of unknown case" in l]
    assert len(shown) == 5
    assert "... and 35 more problems like the one above in" in err
    assert "41 problems:" in err or "40 problems:" in err
