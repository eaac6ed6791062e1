"""``study evaluate agreement`` end to end on small CSV files (exit codes, keys, problems listed)."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from study.cli import main

from test_agreement import make_study


@pytest.fixture()
def files(tmp_path):
    ref, rat, po, cov = make_study(80, seed=7, crossed=0.7)
    ref.to_csv(tmp_path / "ref.csv", index=False)
    readers = rat[rat.rater_kind == "reader"].rename(columns={"rater_id": "reader_id"})
    readers[["reader_id", "case_id", "grade", "reader_group"]].to_csv(tmp_path / "read.csv", index=False)
    rat[rat.rater_id == "ai"][["case_id", "grade"]].to_csv(tmp_path / "ai.csv", index=False)
    cov.assign(patient_id=cov.case_id.map(po)).to_csv(tmp_path / "man.csv", index=False)
    return tmp_path, ref, rat


def test_cli_writes_documented_keys(files, capsys):
    d, ref, rat = files
    rc = main(["evaluate", "agreement", "--reference", str(d / "ref.csv"), "--readings", str(d / "read.csv"),
               "--levels", "I,II,III,IV", "--model-grades", f"ai={d / 'ai.csv'}", "--manifest", str(d / "man.csv"),
               "--subgroups", "sex", "--bootstrap-replicates", "200", "--out", str(d / "out.json")])
    assert rc == 0
    out = json.loads((d / "out.json").read_text())
    assert out["levels"] == ["I", "II", "III", "IV"]
    assert set(out) >= {"raters", "groups", "inter_reader", "comparisons", "subgroups", "settings", "input"}
    assert out["raters"]["ai"]["kind"] == "model" and out["raters"]["j1"]["group"] == "junior"
    assert out["settings"]["bootstrap_unit"] == "patients" and out["settings"]["n_patients"] == 40
    m = rat[rat.rater_id == "ai"].merge(ref, on="case_id")
    assert out["raters"]["ai"]["kappa_quadratic"]["estimate"] == pytest.approx(
        cohen_kappa_score(m.grade_y, m.grade_x, weights="quadratic"))
    assert set(out["subgroups"]["sex"]) == {"F", "M"}
    assert "wrote" in capsys.readouterr().out


def test_cli_with_protocol_maps_letter_aliases(tmp_path):
    ref = pd.DataFrame({"case_id": [f"c{i}" for i in range(30)],
                        "grade": np.resize(["mild", "moderate", "severe", "very_severe"], 30)})
    ref.to_csv(tmp_path / "ref.csv", index=False)
    letters = dict(mild="A", moderate="B", severe="C", very_severe="D")
    rows = [(r, c, letters[g] if (i + j) % 4 else "A", "junior") for j, r in enumerate(["r1", "r2"])
            for i, (c, g) in enumerate(zip(ref.case_id, ref.grade))]
    pd.DataFrame(rows, columns=["reader_id", "case_id", "grade", "reader_group"]).to_csv(tmp_path / "read.csv",
                                                                                        index=False)
    rc = main(["evaluate", "agreement", "--reference", str(tmp_path / "ref.csv"), "--readings",
               str(tmp_path / "read.csv"), "--protocol", "protocols/hayashi-acne04.yaml",
               "--bootstrap-replicates", "100", "--out", str(tmp_path / "o.json")])
    assert rc == 0
    out = json.loads((tmp_path / "o.json").read_text())
    assert out["levels"] == ["mild", "moderate", "severe", "very_severe"]
    assert out["protocol"]["name"] == "hayashi-acne04"
    assert sum(map(sum, out["raters"]["r1"]["confusion_matrix"])) == 30


def test_cli_lists_all_problems_and_exits_2(files, capsys):
    d, ref, rat = files
    (d / "ref.csv").write_text("case_id,grade\nc0000,I\nc0001,V\nc0002,\n")
    (d / "bad.csv").write_text("case_id,grade\nc0000,IX\n")
    rc = main(["evaluate", "agreement", "--reference", str(d / "ref.csv"), "--readings", str(d / "read.csv"),
               "--levels", "I,II,III,IV", "--model-grades", f"ai={d / 'bad.csv'}", "--out", str(d / "o.json")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "'V'" in err and "grade is empty" in err and "'IX'" in err
    assert not (d / "o.json").exists()
