"""``study plan``: the sample size of every confirmatory endpoint of an analysis plan.

For each primary and secondary endpoint, the formula of :mod:`study.plan.power` that
matches the test ``decide`` will run, at the plan's one-sided alpha and target power, from
the endpoint's ``planning:`` assumptions or, where one is missing, from a pilot study's
``results.json`` (its ``analysis_plan`` decisions and its MRMC variance components).
Patients and images follow from the prevalence (sensitivity / specificity), the images
per patient ``m`` and the intra-patient correlation ``rho`` (design effect
``1 + (m - 1) rho``; Kish 1965). The study needs the largest of the endpoints' numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from study.plan import power as pw
from study.plan.metrics import METRICS
from study.plan.model import AnalysisPlan, Endpoint
from study.results.sample_size import (
    EndpointSampleSize,
    PowerPoint,
    ReadersCases,
    SampleSizePlan,
)

__all__ = ["plan_sample_size", "power_curve_figure"]

_KAPPA_WEIGHTS = {"kappa_unweighted": None, "kappa_linear": "linear", "kappa_quadratic": "quadratic"}


def _pilot_endpoint(pilot: dict | None, endpoint_id: str) -> dict | None:
    if not pilot:
        return None
    for d in (pilot.get("analysis_plan") or {}).get("endpoints") or []:
        if d.get("id") == endpoint_id:
            return d
    return None


def _pilot_images(pilot: dict | None, e: Endpoint) -> int | None:
    """Images the pilot's detection or counting estimate of this endpoint's rater rests on."""
    if not pilot:
        return None
    if e.metric.startswith("count_"):
        return ((((pilot.get("counting") or {}).get(e.rater) or {}).get("inputs") or {}).get("n_cases"))
    return ((pilot.get("detection") or {}).get(e.rater) or {}).get("n_images")


def _to_patients(n_eff: int, *, share: float, m: float, rho: float) -> tuple[int, int]:
    """(patients, images) for ``n_eff`` independent analysed units when a share ``share`` of cases is analysed."""
    cases = n_eff / share
    images = math.ceil(cases * (1 + (m - 1) * rho))
    return math.ceil(images / m), images


def _one(e: Endpoint, plan: AnalysisPlan, pilot: dict | None) -> EndpointSampleSize:
    alpha1, target = plan.one_sided_alpha, plan.power
    m, rho = plan.images_per_patient, plan.intra_patient_correlation
    spec = METRICS[e.metric]
    pl = e.planning
    pe = _pilot_endpoint(pilot, e.id)
    pilot_est = (pe or {}).get("estimate") or {}
    expected: float | None = pl.expected if pl and pl.expected is not None else pilot_est.get("estimate")
    base: dict[str, Any] = {"id": e.id, "role": e.role, "metric": e.metric, "alpha_one_sided": alpha1, "power_target": target}
    h, c = e.hypothesis, e.comparator
    if expected is None:
        return EndpointSampleSize(**base, method="", assumptions={}, reason="no anticipated value: give "
                                  "planning.expected or a pilot (--pilot) that estimated this endpoint")
    goal = c.value if c.kind == "goal" and c.value is not None else 0.0
    boundary = goal if h.kind in ("performance_goal", "superiority") else (-(h.margin or 0.0) if spec.direction != "lower"
                                                                           else (h.margin or 0.0))
    effect = (expected - boundary) if spec.direction != "lower" else (boundary - expected)
    share, unit_words = 1.0, "cases"
    if e.metric in ("grade_sensitivity", "grade_specificity"):
        prev = pl.prevalence if pl and pl.prevalence is not None else None
        if prev is None:
            return EndpointSampleSize(**base, method="", assumptions={"expected": expected},
                                      reason="sensitivity / specificity need planning.prevalence")
        share = prev if e.metric == "grade_sensitivity" else 1 - prev
        unit_words = "reference-positive cases" if e.metric == "grade_sensitivity" else "reference-negative cases"

    if spec.kind == "mrmc" and c.kind == "modality":
        return EndpointSampleSize(**base, method="", assumptions={"expected": expected},
                                  reason="the aided-versus-unaided MRMC comparison is not planned by `study plan` yet "
                                         "(its power needs the U-statistic variance components of a pilot)")
    if spec.kind == "mrmc":
        if h.kind == "equivalence":
            return EndpointSampleSize(**base, method="", assumptions={"expected": expected},
                                      reason="MRMC equivalence is not planned by `study plan` (the Hillis-Obuchowski "
                                             "power here is one-sided)")
        return _mrmc(e, base, pilot, effect, alpha1, target, expected)
    if h.kind == "equivalence":
        assert h.margins is not None
        planned = _equivalence(e, pilot_est, goal=goal, margins=h.margins, expected=expected, alpha1=alpha1,
                               target=target, pilot=pilot)
        if isinstance(planned, str):
            return EndpointSampleSize(**base, method="", assumptions={"expected": expected}, reason=planned)
        return _finish(base, planned[0], planned[1], planned[2], planned[3], planned[4], share=share, m=m, rho=rho,
                       unit_words=planned[5] or unit_words)
    if spec.kind == "proportion" and c.kind == "goal":
        try:
            n = pw.exact_goal_sample_size(goal=goal, expected=expected, alpha1=alpha1, power=target)
        except ValueError as err:
            return EndpointSampleSize(**base, method="exact binomial", assumptions={"goal": goal, "expected": expected},
                                      reason=str(err))
        achieved = float(pw.exact_goal_power(n, goal=goal, expected=expected, alpha1=alpha1)[0])
        method = ("exact one-sided binomial test (Clopper-Pearson), smallest n reaching the power; with several "
                  "images per patient, on effective counts (Rao-Scott), so images = n x design effect")

        def power_at(k: np.ndarray) -> np.ndarray:
            return pw.exact_goal_power(k, goal=goal, expected=expected, alpha1=alpha1)
        assumptions: dict[str, float | str | None] = {"goal": goal, "expected": expected}
    else:
        sigma0: float | None = None
        if spec.kind == "proportion":
            disc = pl.discordance if pl and pl.discordance is not None else None
            if disc is None:
                return EndpointSampleSize(**base, method="", assumptions={"expected": expected},
                                          reason="a paired comparison needs planning.discordance")
            sigma = pw.paired_sigma(delta=expected, discordance=disc)
            sigma0 = pw.tango_null_sigma(delta=expected, discordance=disc, delta0=boundary)
            method = ("Tango's score test of a paired difference (Nam 1997 sample size); one comparator reading "
                      "per case assumed")
            assumptions = {"expected_difference": expected, "discordance": disc, "boundary": boundary}
            unit_words = "paired " + unit_words
        elif spec.kind == "kappa":
            shares = pl.level_shares if pl and pl.level_shares else None
            if shares is None:
                return EndpointSampleSize(**base, method="", assumptions={"expected": expected},
                                          reason="kappa needs planning.level_shares (anticipated share of each grade)")
            sigma = pw.kappa_sigma(expected, shares, weights=_KAPPA_WEIGHTS[e.metric])
            sigma0 = pw.kappa_sigma(goal, shares, weights=_KAPPA_WEIGHTS[e.metric])
            method = ("test of kappa with its SE under the null and the alternative (Flack et al. 1988; asymptotic "
                      "SE of Fleiss, Cohen & Everitt 1969 at the anticipated tables)")
            assumptions = {"goal": goal, "expected": expected, "level_shares": ", ".join(f"{s:g}" for s in shares)}
        else:
            se, n0 = pilot_est.get("se"), _pilot_images(pilot, e)
            if se is None or not n0:
                return EndpointSampleSize(**base, method="", assumptions={"expected": expected},
                                          reason="needs a pilot (--pilot) with this endpoint's standard error")
            sigma = float(se) * math.sqrt(float(n0))
            method = "Wald test with the pilot's SE scaled by sqrt(pilot images / images) (lesions per image as in the pilot)"
            assumptions = {"goal": goal, "expected": expected, "pilot_se": float(se), "pilot_images": float(n0)}
            unit_words = "images"
        try:
            n = pw.wald_sample_size(effect=effect, sigma=sigma, alpha1=alpha1, power=target, sigma0=sigma0)
        except ValueError as err:
            return EndpointSampleSize(**base, method=method, assumptions=assumptions, reason=str(err))
        achieved = float(pw.wald_power(n, effect=effect, sigma=sigma, alpha1=alpha1, sigma0=sigma0))

        def power_at(k: np.ndarray) -> np.ndarray:
            return pw.wald_power(k, effect=effect, sigma=sigma, alpha1=alpha1, sigma0=sigma0)
    return _finish(base, method, assumptions, n, achieved, power_at, share=share, m=m, rho=rho, unit_words=unit_words)


def _finish(base: dict[str, Any], method: str, assumptions: dict[str, float | str | None], n: int, achieved: float,
            power_at: Callable[[np.ndarray], np.ndarray], *, share: float, m: float, rho: float,
            unit_words: str) -> EndpointSampleSize:
    """Patients, images and the power curve from ``n`` analysed units."""
    patients, images = _to_patients(n, share=share, m=m, rho=rho)
    grid = np.unique(np.linspace(max(2, n // 4), n * 2, 40).astype(int))
    curve = [PowerPoint(patients=_to_patients(int(k), share=share, m=m, rho=rho)[0], power=float(p))
             for k, p in zip(grid, np.atleast_1d(power_at(grid)))]
    return EndpointSampleSize(**base, method=method, assumptions={**assumptions, "share_analysed": share},
                              n_analysed=n, n_analysed_unit=unit_words, patients=patients, images=images,
                              achieved_power=achieved, curve=curve)


def _equivalence(e: Endpoint, pilot_est: dict[str, Any], *, goal: float, margins: tuple[float, float], expected: float,
                 alpha1: float, target: float, pilot: dict | None) -> str | tuple[
                     str, dict[str, float | str | None], int, float, Callable[[np.ndarray], np.ndarray], str | None]:
    """Two one-sided tests (Schuirmann 1987) planned like the one-sided test of the same metric.

    Returns (method, assumptions, n, achieved power, power function, unit words or None), or
    the reason the endpoint cannot be planned.
    """
    spec, pl = METRICS[e.metric], e.planning
    low, high = goal + margins[0], goal + margins[1]
    if not low < expected < high:
        return f"the anticipated value {expected:g} must lie strictly inside the equivalence range [{low:g}, {high:g}]"
    assumptions: dict[str, float | str | None] = {"expected": expected, "low": low, "high": high}
    tost = "two one-sided tests (TOST, Schuirmann 1987)"
    if spec.kind == "proportion" and e.comparator.kind == "goal":
        def power_at(k: np.ndarray) -> np.ndarray:
            return pw.exact_equivalence_power(k, low=max(low, 1e-9), high=min(high, 1 - 1e-9), expected=expected,
                                              alpha1=alpha1)
        method = f"exact binomial {tost}, smallest n reaching the power"
        units = None
    else:
        sigma0_low: float | None = None
        sigma0_high: float | None = None
        units = None
        if spec.kind == "proportion":
            disc = pl.discordance if pl and pl.discordance is not None else None
            if disc is None:
                return "a paired comparison needs planning.discordance"
            sigma = pw.paired_sigma(delta=expected, discordance=disc)
            sigma0_low = pw.tango_null_sigma(delta=expected, discordance=disc, delta0=low)
            sigma0_high = pw.tango_null_sigma(delta=expected, discordance=disc, delta0=high)
            method = f"Tango's score {tost} of a paired difference (Nam 1997 null SDs)"
            assumptions["discordance"] = disc
            units = "paired cases"
        elif spec.kind == "kappa":
            shares = pl.level_shares if pl and pl.level_shares else None
            if shares is None:
                return "kappa needs planning.level_shares (anticipated share of each grade)"
            w = _KAPPA_WEIGHTS[e.metric]
            sigma = pw.kappa_sigma(expected, shares, weights=w)
            sigma0_low = pw.kappa_sigma(min(max(low, 0.0), 1.0), shares, weights=w)
            sigma0_high = pw.kappa_sigma(min(max(high, 0.0), 1.0), shares, weights=w)
            method = f"kappa {tost} with the SE under each null (Flack et al. 1988)"
            assumptions["level_shares"] = ", ".join(f"{x:g}" for x in shares)
        else:
            se, n0 = pilot_est.get("se"), _pilot_images(pilot, e)
            if se is None or not n0:
                return "needs a pilot (--pilot) with this endpoint's standard error"
            sigma = float(se) * math.sqrt(float(n0))
            method = f"Wald {tost} with the pilot's SE scaled by sqrt(pilot images / images)"
            assumptions.update({"pilot_se": float(se), "pilot_images": float(n0)})
            units = "images"

        def power_at(k: np.ndarray) -> np.ndarray:
            return pw.wald_equivalence_power(k, effect_low=expected - low, effect_high=high - expected, sigma=sigma,
                                             alpha1=alpha1, sigma0_low=sigma0_low, sigma0_high=sigma0_high)
    try:
        n = pw.smallest_n(power_at, power=target)
    except ValueError as err:
        return str(err)
    return method, assumptions, n, float(np.atleast_1d(power_at(np.array([n])))[0]), power_at, units


def _mrmc(e: Endpoint, base: dict, pilot: dict | None, effect: float, alpha1: float, target: float,
          expected: float) -> EndpointSampleSize:
    block = (((pilot or {}).get("mrmc") or {}).get("models") or {}).get(e.rater) or {}
    ai = ((block.get("analysis") or {}).get("ai_vs_readers") or [None])[0]
    if not ai:
        return EndpointSampleSize(**base, method="", assumptions={"expected": expected},
                                  reason="MRMC power needs a pilot's variance components (--pilot RESULTS_DIR "
                                         "with an MRMC analysis of this model)")
    vc = ai["variance_components"]
    c0 = float(block["analysis"]["design"]["n_cases"])
    comps = {k: float(vc[k]) for k in ("var_r", "var_error", "cov2")}
    grid = []
    for readers in range(3, 16):
        cases = None
        for c in range(10, 5001, 10):
            if pw.mrmc_ai_power(readers, c, effect=effect, pilot_cases=c0, alpha1=alpha1, **comps) >= target:
                cases = c
                break
        grid.append(ReadersCases(readers=readers, cases=cases, power=None if cases is None else
                                 pw.mrmc_ai_power(readers, cases, effect=effect, pilot_cases=c0, alpha1=alpha1, **comps)))
    return EndpointSampleSize(**base, method="Hillis-Obuchowski power of the RRRC model-vs-readers t test "
                              "(Hillis 2007 section 5.3; Hillis, Obuchowski & Berbaum 2011) from the pilot's "
                              "variance components", assumptions={"expected_difference": expected, "pilot_cases": c0,
                                                                  **comps},
                              readers_cases=grid, n_analysed_unit="cases (per reader count)")


def plan_sample_size(plan: AnalysisPlan, *, protocol: str, pilot: dict | None = None,
                     pilot_path: str | None = None) -> SampleSizePlan:
    """Sample size of every confirmatory endpoint (:class:`SampleSizePlan`).

    Parameters
    ----------
    plan : the protocol's analysis plan.
    protocol : the protocol's name (for the record).
    pilot : a pilot study's ``results.json`` mapping, optional.
    """
    if pilot:
        plan = plan.with_rater(sorted(pilot.get("detection") or {}) or sorted(pilot.get("models") or {}))
    rows = [_one(e, plan, pilot) for e in plan.endpoints if e.confirmatory]
    planned = [r for r in rows if r.patients is not None]
    patients = max((r.patients for r in planned if r.patients is not None), default=None)
    images = max((r.images for r in planned if r.images is not None), default=None)
    missing = [r.id for r in rows if r.patients is None and not r.readers_cases]
    statement = (f"{patients} patients ({images} images) give each planned endpoint at least {plan.power:.0%} power "
                 f"at one-sided alpha {plan.one_sided_alpha:g}" if patients else "No endpoint could be planned")
    if missing:
        statement += f"; not planned: {', '.join(missing)} (see each endpoint's reason)"
    return SampleSizePlan(protocol=protocol, alpha=plan.alpha, sided=plan.sided, power=plan.power,
                          images_per_patient=plan.images_per_patient,
                          intra_patient_correlation=plan.intra_patient_correlation, pilot=pilot_path, endpoints=rows,
                          patients_required=patients, images_required=images, statement=statement + ".")


def power_curve_figure(result: SampleSizePlan, path: str | Path) -> None:
    """Power against the number of patients, one line per planned endpoint (PNG, atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from study.io import atomic_path

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in result.endpoints:
        if r.curve:
            ax.plot([p.patients for p in r.curve], [p.power for p in r.curve], label=f"{r.id} ({r.role})")
    ax.axhline(result.power, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("patients")
    ax.set_ylabel("power")
    ax.set_ylim(0, 1)
    ax.set_title(f"Power at one-sided alpha {result.alpha if result.sided == 'one' else result.alpha / 2:g}")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, metadata={"Software": None})
    plt.close(fig)
