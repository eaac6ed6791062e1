"""The analysis plan as data: the shipped plans validate; every bad plan of issue 12 is a located error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from study.errors import StudyError
from study.plan.model import AnalysisPlan, check_plan_against_study
from study.protocol import load_protocol, parse_protocol

ROOT = Path(__file__).resolve().parents[1]


def _demo() -> dict:
    return yaml.safe_load((ROOT / "protocols" / "chinese-2019.yaml").read_text())


def _problems(data: dict) -> list[str]:
    with pytest.raises(StudyError) as e:
        parse_protocol(data, source="p.yaml")
    return [f"{p.where}: {p.message}" for p in e.value.problems]


def test_shipped_protocols_carry_valid_plans():
    for name in ("chinese-2019.yaml", "hayashi-acne04.yaml"):
        plan = load_protocol(ROOT / "protocols" / name).protocol.analysis_plan
        assert plan is not None
        assert any(e.role == "primary" for e in plan.endpoints)


def test_unknown_key_in_plan_is_an_error():
    d = _demo()
    d["analysis_plan"]["endpoints"][0]["hypothesis"]["margn"] = 0.05
    msgs = _problems(d)
    assert any("analysis_plan.endpoints.0.hypothesis.margn" in m and "unknown key" in m for m in msgs)


def test_unknown_metric_names_the_endpoint_and_the_registry():
    d = _demo()
    d["analysis_plan"]["endpoints"][1]["metric"] = "sensitivty"
    msgs = _problems(d)
    assert any(m.startswith("analysis_plan.endpoints.1.metric") and "unknown metric 'sensitivty'" in m
               and "grade_sensitivity" in m for m in msgs)


@pytest.mark.parametrize("margin", [-0.05, 0.0])
def test_non_inferiority_margin_with_the_wrong_sign(margin):
    d = _demo()
    d["analysis_plan"]["endpoints"][2]["hypothesis"]["margin"] = margin
    msgs = _problems(d)
    assert any(m.startswith("analysis_plan.endpoints.2.hypothesis") and "wrong sign" in m for m in msgs)


def test_equivalence_margins_with_the_wrong_sign():
    d = _demo()
    d["analysis_plan"]["endpoints"][2]["hypothesis"] = {"kind": "equivalence", "margins": [0.02, 0.05]}
    assert any("endpoints.2.hypothesis" in m and "wrong sign" in m for m in _problems(d))


@pytest.mark.parametrize("alpha", [0, -0.1, 0.51, 1])
def test_alpha_outside_zero_to_half(alpha):
    d = _demo()
    d["analysis_plan"]["alpha"] = alpha
    assert any(m.startswith("analysis_plan.alpha") for m in _problems(d))


def test_alpha_half_is_allowed():
    d = _demo()
    d["analysis_plan"]["alpha"] = 0.5
    assert parse_protocol(d).analysis_plan.alpha == 0.5


def test_multiplicity_must_cover_every_confirmatory_endpoint():
    d = _demo()
    d["analysis_plan"]["multiplicity"]["endpoints"].remove("kappa_quadratic")
    msgs = _problems(d)
    assert any(m.startswith("analysis_plan") and "does not cover" in m and "kappa_quadratic" in m for m in msgs)


def test_several_confirmatory_endpoints_need_a_multiplicity_procedure():
    d = _demo()
    del d["analysis_plan"]["multiplicity"]
    assert any("need a 'multiplicity' procedure" in m for m in _problems(d))


def test_multiplicity_may_not_list_exploratory_or_unknown_endpoints():
    d = _demo()
    d["analysis_plan"]["multiplicity"]["endpoints"].append("lesion_recall_any")
    assert any("exploratory" in m for m in _problems(d))
    d = _demo()
    d["analysis_plan"]["multiplicity"]["endpoints"].append("nonexistent")
    assert any("nonexistent" in m for m in _problems(d))


def test_graphical_weights_and_transitions_are_checked():
    d = _demo()
    d["analysis_plan"]["multiplicity"] = {"procedure": "graphical", "endpoints": ["sensitivity_grade_iii",
                                          "specificity_grade_iii", "accuracy_vs_readers", "kappa_quadratic"],
                                          "weights": [0.5, 0.5, 0.5, 0], "transitions": [[0, 1, 0, 0]] * 4}
    assert any("weights" in m for m in _problems(d))


def test_cut_level_class_and_subgroup_are_checked_against_the_protocol():
    d = _demo()
    d["analysis_plan"]["endpoints"][0]["positive_from"] = "V"
    assert any("analysis_plan.endpoints[0] (sensitivity_grade_iii): positive_from 'V'" in m for m in _problems(d))
    d = _demo()
    d["analysis_plan"]["endpoints"][4]["lesion_class"] = "wart"
    assert any("lesion_class 'wart'" in m for m in _problems(d))
    d = _demo()
    d["analysis_plan"]["endpoints"][0]["population"] = {"column": "ethnicity", "values": ["x"]}
    assert any("population column 'ethnicity'" in m for m in _problems(d))


def test_a_goal_comparison_must_be_a_performance_goal():
    d = _demo()
    d["analysis_plan"]["endpoints"][0]["hypothesis"] = {"kind": "non_inferiority", "margin": 0.05}
    assert any("endpoints.0" in m and "performance_goal" in m for m in _problems(d))


def test_endpoint_naming_a_model_or_reader_group_that_does_not_exist():
    plan = load_protocol(ROOT / "protocols" / "chinese-2019.yaml").protocol.analysis_plan
    raw = plan.model_dump()
    raw["endpoints"][2]["comparator"] = {"kind": "readers", "reader_group": "residents"}
    raw["endpoints"][0]["rater"] = "other-model"
    bad = AnalysisPlan.model_validate(raw)
    problems = check_plan_against_study(bad, file="p.yaml", models=["demo-frcnn"], reader_groups=["junior", "senior"],
                                        columns=["case_id", "age"])
    where = {p.where: p.message for p in problems}
    assert "other-model" in where["analysis_plan.endpoints[0].rater"]
    assert "residents" in where["analysis_plan.endpoints[2].comparator.reader_group"]
    assert check_plan_against_study(plan, file="p.yaml", models=["vendor"], reader_groups=["junior", "senior"],
                                    columns=["case_id"]) == []
    # the shipped plans name no rater: fine with one model, ambiguous with two
    two = check_plan_against_study(plan, file="p.yaml", models=["a", "b"], reader_groups=[], columns=None)
    assert [p.where for p in two] == [f"analysis_plan.endpoints[{i}].rater" for i in range(len(plan.endpoints))]
    assert "names no rater" in two[0].message


def test_study_check_reports_a_model_and_a_reader_group_the_study_lacks(tmp_path, run_cli):
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from test_check_fixtures import make_study

    s = make_study(tmp_path)
    d = yaml.safe_load(s["protocol"].read_text())
    d["analysis_plan"]["endpoints"][3]["rater"] = "no-such-model"  # the shipped plan names none
    d["analysis_plan"]["endpoints"][2]["comparator"] = {"kind": "readers", "reader_group": "residents"}
    s["protocol"].write_text(yaml.safe_dump(d))
    rc, _, err = run_cli("check", s["config"])
    assert rc == 2
    assert "analysis_plan.endpoints[3].rater: endpoint 'kappa_quadratic' names model 'no-such-model'" in err
    assert "analysis_plan.endpoints[2].comparator.reader_group" in err and "['junior', 'senior']" in err
