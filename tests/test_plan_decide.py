"""Decisions of the analysis plan on small studies built here (references: direct counts, scipy, sklearn)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from study.plan.decide import StudyData, decide_endpoints
from study.plan.model import AnalysisPlan
from study.results.decisions import AnalysisPlanResults, LockStatus

LEVELS = ["I", "II", "III", "IV"]
NOT_LOCKED = LockStatus(state="not_locked", lock_file="x", statement="not locked")


def _study(n: int = 200, seed: int = 1, images_per_patient: int = 1) -> StudyData:
    rng = np.random.default_rng(seed)
    case = [f"c{i}" for i in range(n)]
    ref = rng.integers(0, 4, n)
    model = np.where(rng.random(n) < 0.85, ref, rng.integers(0, 4, n))
    rows = []
    for r, p_err, group in (("r1", 0.3, "junior"), ("r2", 0.1, "senior")):
        for i in range(n):
            if rng.random() < 0.8:
                rows.append({"reader_id": r, "reader_group": group, "case_id": case[i],
                             "grade": LEVELS[ref[i] if rng.random() > p_err else rng.integers(0, 4)]})
    return StudyData(levels=LEVELS, reference=pd.DataFrame({"case_id": case, "grade": [LEVELS[g] for g in ref]}),
                     model_grades={"m": pd.DataFrame({"case_id": case, "grade": [LEVELS[g] for g in model]})},
                     readings=pd.DataFrame(rows), patient_of={c: f"p{i // images_per_patient}" for i, c in enumerate(case)},
                     covariates=pd.DataFrame({"case_id": case, "site": rng.choice(["A", "B"], n)}),
                     bootstrap_replicates=400, seed=5)


def _plan(endpoints: list[dict], multiplicity: dict | None = None, **kw) -> AnalysisPlan:
    return AnalysisPlan.model_validate({"endpoints": endpoints, "multiplicity": multiplicity, **kw})


def _sens(goal: float, **kw) -> dict:
    return {"id": "sens", "role": "primary", "metric": "grade_sensitivity", "positive_from": "III", "rater": "m",
            "comparator": {"kind": "goal", "value": goal}, "hypothesis": {"kind": "performance_goal"}, **kw}


def test_sensitivity_against_a_goal_is_the_exact_test_and_tightening_the_goal_fails_it():
    data = _study()
    ref = data.reference.set_index("case_id")["grade"].map(LEVELS.index)
    mod = data.model_grades["m"].set_index("case_id")["grade"].map(LEVELS.index)
    pos = ref >= 2
    k, n = int((mod[pos] >= 2).sum()), int(pos.sum())
    easy = decide_endpoints(_plan([_sens(0.6)]), data, lock=NOT_LOCKED).endpoints[0]
    assert easy.decision == "met" and easy.estimate.estimate == pytest.approx(k / n)
    assert easy.p_value == pytest.approx(stats.binomtest(k, n, 0.6, alternative="greater").pvalue)
    assert easy.n_cases == n and easy.decision_text.startswith("MET")
    tight = decide_endpoints(_plan([_sens(0.97)]), data, lock=NOT_LOCKED)
    assert tight.endpoints[0].decision == "not met" and tight.endpoints[0].decision_text.startswith("NOT MET")
    assert tight.primary_decision == "not met"
    assert "lower one-sided 97.5% confidence bound" in tight.endpoints[0].criterion
    AnalysisPlanResults.model_validate_json(tight.model_dump_json())  # round-trips through JSON


def test_fixed_sequence_stops_at_the_first_endpoint_not_met():
    data = _study()
    kappa = {"id": "kappa", "role": "secondary", "metric": "kappa_quadratic", "rater": "m",
             "comparator": {"kind": "goal", "value": 0.3}, "hypothesis": {"kind": "performance_goal"}}
    plan = _plan([_sens(0.99), kappa], {"procedure": "fixed_sequence", "endpoints": ["sens", "kappa"]})
    res = decide_endpoints(plan, data, lock=NOT_LOCKED)
    sens, kap = res.endpoints
    assert sens.decision == "not met"
    assert kap.p_value < 0.025 and kap.decision == "not met" and "not reached" in (kap.reason or "")
    assert kap.p_adjusted == pytest.approx(max(sens.p_value, kap.p_value))
    # Holm instead: kappa is met on its own
    plan = _plan([_sens(0.99), kappa], {"procedure": "holm", "endpoints": ["sens", "kappa"]})
    assert decide_endpoints(plan, data, lock=NOT_LOCKED).endpoints[1].decision == "met"


def test_kappa_matches_sklearn_and_its_asymptotic_se():
    from sklearn.metrics import cohen_kappa_score

    from study.metrics.intervals import cohen_kappa

    data = _study()
    plan = _plan([{"id": "k", "role": "primary", "metric": "kappa_linear", "rater": "m", "unit": "image",
                   "comparator": {"kind": "goal", "value": 0.5}, "hypothesis": {"kind": "performance_goal"}}])
    d = decide_endpoints(plan, data, lock=NOT_LOCKED).endpoints[0]
    a, b = data.reference["grade"], data.model_grades["m"]["grade"]
    assert d.estimate.estimate == pytest.approx(cohen_kappa_score(a, b, weights="linear"))
    table = pd.crosstab(a, b).reindex(index=LEVELS, columns=LEVELS, fill_value=0).to_numpy()
    assert d.estimate.se == pytest.approx(cohen_kappa(table, weights="linear").se)
    # the test uses the SE under the null: kappa = 0.5 with the observed margins (Flack et al. 1988)
    from study.plan.power import kappa_sigma

    margins = (table.sum(axis=0) + table.sum(axis=1)) / (2 * table.sum())
    se0 = kappa_sigma(0.5, margins, weights="linear") / np.sqrt(table.sum())
    assert d.statistic == pytest.approx((d.estimate.estimate - 0.5) / se0)
    assert d.p_value == pytest.approx(stats.norm.sf(d.statistic))


def test_non_inferiority_against_the_readers_average_is_the_paired_clustered_difference():
    data = _study(images_per_patient=2)
    plan = _plan([{"id": "ni", "role": "primary", "metric": "grading_accuracy", "rater": "m",
                   "comparator": {"kind": "readers", "reader_group": "senior"},
                   "hypothesis": {"kind": "non_inferiority", "margin": 0.1}}])
    d = decide_endpoints(plan, data, lock=NOT_LOCKED).endpoints[0]
    ref = data.reference.set_index("case_id")["grade"]
    senior = data.readings[data.readings["reader_group"] == "senior"].set_index("case_id")["grade"]
    model = data.model_grades["m"].set_index("case_id")["grade"]
    diff = (model[senior.index] == ref[senior.index]).astype(float) - (senior == ref[senior.index]).astype(float)
    assert d.estimate.estimate == pytest.approx(diff.mean())
    assert d.n_cases == len(senior) and d.n_patients == len({data.patient_of[c] for c in senior.index})
    assert d.statistic == pytest.approx((diff.mean() + 0.1) / d.estimate.se)
    assert d.comparator_estimate is not None
    assert d.comparator_estimate.estimate == pytest.approx((senior == ref[senior.index]).mean())


def test_subgroup_population_and_not_estimable_endpoints():
    data = _study()
    plan = _plan([_sens(0.5, population={"column": "site", "values": ["A"]}),
                  {"id": "aided", "role": "secondary", "metric": "grading_accuracy", "rater": "m",
                   "comparator": {"kind": "modality", "modality": "aided"},
                   "hypothesis": {"kind": "superiority"}},
                  {"id": "recall", "role": "exploratory", "metric": "lesion_recall", "rater": "m",
                   "comparator": {"kind": "goal", "value": 0.5}, "hypothesis": {"kind": "performance_goal"}}],
                 {"procedure": "bonferroni", "endpoints": ["sens", "aided"]})
    res = decide_endpoints(plan, data, lock=NOT_LOCKED)
    sens, aided, recall = res.endpoints
    site_a = set(data.covariates.loc[data.covariates["site"] == "A", "case_id"])
    ref = data.reference.set_index("case_id")["grade"].map(LEVELS.index)
    assert sens.n_cases == int((ref[list(site_a)] >= 2).sum())
    assert sens.p_adjusted == pytest.approx(min(1, 2 * sens.p_value))
    assert aided.decision == "not estimable" and "modality" in aided.decision_text
    assert recall.decision == "exploratory" and recall.p_value is None and "not in this run" in (recall.reason or "")


def test_reported_and_mrmc_estimates_are_read_from_their_blocks():
    data = _study()
    data.detection = {"m": {"any_lesion": {"recall": {"estimate": 0.8, "ci_low": 0.76, "ci_high": 0.84,
                                                        "method": "Wilson score, 95%", "n": 400}}}}
    data.mrmc = {"assessed": True, "models": {"m": {"analysis": {"analysis": "rrrc", "ai_vs_readers": [
        {"analyses": {"rrrc": {"estimate": 0.02, "ci_low": -0.01, "ci_high": 0.05, "se": 0.015, "df": 12.0,
                               "method": "t"}}}]}}}}
    plan = _plan([{"id": "recall", "role": "primary", "metric": "lesion_recall", "rater": "m", "unit": "image",
                   "comparator": {"kind": "goal", "value": 0.7}, "hypothesis": {"kind": "performance_goal"}},
                  {"id": "auc", "role": "secondary", "metric": "mrmc_fom_difference", "rater": "m", "unit": "image",
                   "comparator": {"kind": "readers"}, "hypothesis": {"kind": "non_inferiority", "margin": 0.05}}],
                 {"procedure": "holm", "endpoints": ["recall", "auc"]})
    recall, auc = decide_endpoints(plan, data, lock=NOT_LOCKED).endpoints
    se = 0.08 / (2 * stats.norm.ppf(0.975))
    assert recall.estimate.se == pytest.approx(se) and recall.p_value == pytest.approx(stats.norm.sf(0.1 / se))
    assert auc.p_value == pytest.approx(stats.t.sf((0.02 + 0.05) / 0.015, 12.0))
    assert auc.source.endswith("ai_vs_readers[0].analyses.rrrc")


def test_decide_step_without_a_plan_keeps_the_lock_status(tmp_path):
    from study.steps import decide

    proto = yaml.safe_load((Path(__file__).resolve().parents[1] / "protocols" / "chinese-2019.yaml").read_text())
    del proto["analysis_plan"]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(proto))
    out = tmp_path / "d.json"
    import json

    decide(protocol=str(tmp_path / "p.yaml"), config=json.dumps({"study": "t", "results_dir": str(tmp_path / "r")}),
           reference="-", readings="-", grades="", cases="-", eligibility="-", mrmc="-", out=str(out))
    res = AnalysisPlanResults.model_validate_json(out.read_text())
    assert not res.planned and res.lock.state == "not_locked" and "not locked" in res.lock.statement


def test_model_against_another_model_uses_tangos_paired_score_test():
    from study.plan.hypothesis_tests import tango_score

    data = _study()
    rng = np.random.default_rng(9)
    ref = data.reference["grade"].to_numpy()
    other = np.where(rng.random(len(ref)) < 0.8, ref, rng.choice(LEVELS, len(ref)))
    data.model_grades["m2"] = pd.DataFrame({"case_id": data.reference["case_id"], "grade": other})
    plan = _plan([{"id": "ni", "role": "primary", "metric": "grading_accuracy", "rater": "m", "unit": "image",
                   "comparator": {"kind": "model", "model": "m2"},
                   "hypothesis": {"kind": "non_inferiority", "margin": 0.05}}])
    d = decide_endpoints(plan, data, lock=NOT_LOCKED).endpoints[0]
    ok1 = data.model_grades["m"]["grade"].to_numpy() == ref
    ok2 = other == ref
    b, c = int((ok1 & ~ok2).sum()), int((~ok1 & ok2).sum())
    assert d.estimate.method.startswith("Tango (1998)")
    assert d.estimate.estimate == pytest.approx((b - c) / len(ref))
    assert d.statistic == pytest.approx(tango_score(b, c, len(ref), -0.05))


def test_an_endpoint_without_rater_concerns_the_one_model_and_is_not_estimable_with_two():
    data = _study()
    endpoint = {k: v for k, v in _sens(0.6).items() if k != "rater"}
    d = decide_endpoints(_plan([endpoint]), data, lock=NOT_LOCKED).endpoints[0]
    assert d.rater == "m" and d.decision == "met"
    data.model_grades["m2"] = data.model_grades["m"]
    d = decide_endpoints(_plan([endpoint]), data, lock=NOT_LOCKED).endpoints[0]
    assert d.decision == "not estimable" and "names no rater" in (d.reason or "")
