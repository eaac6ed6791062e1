"""``study evaluate mrmc`` on every reference file in tests/data/mrmc: complete, finite results."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from study.cli import main

DATA = Path(__file__).resolve().parent / "data" / "mrmc"  # sources and licences: tests/data/README.md


def _need(name: str) -> Path:
    p = DATA / name
    if not p.exists():
        pytest.skip(f"reference data {p} is absent (tests/data/mrmc)")
    return p


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _check_estimate(e: dict, *, df_required: bool) -> None:
    for k in ("estimate", "ci_low", "ci_high", "se"):
        assert _finite(e[k]), (k, e)
    assert e["ci_low"] <= e["estimate"] <= e["ci_high"]
    assert isinstance(e["method"], str) and "%" in e["method"]
    if df_required:
        assert _finite(e["df"]), e


def _check_difference(d: dict) -> None:
    _check_estimate(d, df_required=d["statistic_name"] == "t")
    assert _finite(d["statistic"]) and 0 <= d["p_value"] <= 1
    assert len(d["modalities"]) == 2


def _run(tmp_path, name, *extra) -> dict:
    out = tmp_path / f"{name}.json"
    rc = main(["evaluate", "mrmc", "--ratings", str(_need(name)), *extra, "--out", str(out)])
    assert rc == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("name,modalities,readers,cases", [
    ("vandyke.csv", 2, 5, 114),
    ("franken.csv", 2, 4, 100),
    ("imrmc_example.csv", 2, 5, 80),
])
@pytest.mark.parametrize("method", ["or", "dbm"])
def test_two_modality_files_give_complete_results(tmp_path, name, modalities, readers, cases, method):
    res = _run(tmp_path, name, "--method", method)
    d = res["design"]
    assert (d["n_modalities"], d["n_readers"], d["n_cases"]) == (modalities, readers, cases)
    assert res["method"] == method and res["analysis"] == "rrrc"
    assert res["analyses_reported"] == ["rrrc", "frrc", "rrfc"]
    for a in ("rrrc", "frrc", "rrfc"):
        an = res["analyses"][a]
        assert _finite(an["test"]["statistic"]) and 0 <= an["test"]["p_value"] <= 1
        for dd in an["differences"]:
            _check_difference(dd)
        for m in an["modalities"].values():
            _check_estimate(m, df_required=not (method == "or" and a == "frrc"))
    for m in res["modalities"].values():
        _check_estimate(m["fom"], df_required=True)
    vc = res["variance_components"]
    for k in ("var_r", "var_tr", "cov1", "cov2", "cov3", "var_error"):
        assert _finite(vc[k]), k
    for k in ("var_r", "var_c", "var_tr", "var_tc", "var_rc", "var_trc_error"):
        assert _finite(res["dbm_variance_components"][k]), k
    assert all(_finite(v) for rd in res["readers"].values() for v in rd.values())
    assert isinstance(res["warnings"], list)
    # per-reader empirical ROC curves for the report figure
    roc = res["roc"][d["modalities"][0]][d["readers"][0]]
    assert roc["fpr"][0] == 0 and roc["tpr"][-1] == 1 and 0 <= roc["auc"] <= 1
    assert len(res["input"]["ratings"]["sha256"]) == 64


def test_cad_vs_radiologists_with_ai_reader(tmp_path):
    res = _run(tmp_path, "cad_vs_radiologists.csv", "--ai-reader", "CAD")
    assert res["design"]["ai_reader"] == "CAD" and res["design"]["modalities"] == ["standalone"]
    assert res["design"]["n_readers"] == 10 and res["design"]["n_cases"] == 200
    (ai,) = res["ai_vs_readers"]
    _check_estimate(ai["ai_fom"], df_required=False)
    _check_estimate(ai["readers_fom"], df_required=True)
    assert len(ai["readers"]) == 9 and all(_finite(v) for v in ai["readers"].values())
    for a in ("rrrc", "rrfc", "frrc"):
        _check_difference(ai["analyses"][a])
    assert _finite(res["test"]["statistic"]) and _finite(res["test"]["ddf"])
    _check_difference(res["differences"][0])
    _check_estimate(res["modalities"]["standalone"]["fom"], df_required=True)


def test_other_options_through_the_cli(tmp_path, capsys):
    res = _run(tmp_path, "franken.csv", "--analysis", "frrc", "--covariance", "delong", "--confidence", "0.9")
    assert res["analysis"] == "frrc" and res["test"]["statistic_name"] == "chi-square"
    assert "90%" in res["differences"][0]["method"] and res["covariance"] == "delong"
    res = _run(tmp_path, "vandyke.csv", "--fom", "sensitivity", "--threshold", "3", "--no-roc")
    assert res["fom"] == "sensitivity" and "roc" not in res
    assert "wrote" in capsys.readouterr().out


def test_user_errors_exit_2_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("modality,reader_id,case_id,truth,rating\nA,r1,c1,3,1\n")
    out = tmp_path / "o.json"
    assert main(["evaluate", "mrmc", "--ratings", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "expected 0 or 1" in err and "Traceback" not in err
    assert not out.exists()
    assert main(["evaluate", "mrmc", "--ratings", str(_need("vandyke.csv")), "--method", "dbm",
                 "--covariance", "delong", "--out", str(out)]) == 2
    assert not out.exists()


def test_register_adds_the_parser_to_any_evaluate_group():
    from study.commands.evaluate_mrmc import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="what"))
    args = parser.parse_args(["mrmc", "--ratings", "r.csv", "--ai-reader", "CAD", "--out", "o.json"])
    assert (args.method, args.analysis, args.covariance, args.ai_reader, args.confidence) == \
        ("or", None, "jackknife", "CAD", 0.95)
    assert callable(args.func)
