"""The errors that matter: grading errors case by case, and errors by device, skin type and image quality.

:func:`error_analysis` builds the ``errors`` block of ``results.json``
(:class:`study.results.errors.ErrorAnalysis`) from the step outputs of one run: the cases
table (device, Fitzpatrick skin type, patient), the quality gate's features, the model's
grades, the counting points and the per-image lesions of the detection step. The collect
step calls it; nothing here is computed twice elsewhere.

Intervals treat the patient as the unit (patients are clusters; each case its own cluster
when the cases table has no patient id): proportions by the ratio estimator with the
Rao-Scott design effect (Obuchowski 1998; Rao & Scott 1992), means with the cluster-robust
(CR1) standard error (Cameron & Miller 2015), all from :mod:`study.metrics.clustered`.
The skin-type difference is a Wald test of two independent groups of patients with those
cluster-robust variances (Donner & Klar 2000, ch. 7: ``z = (p1 - p2) / sqrt(se1^2 + se2^2)``).
Detection mAP by skin type (``skin_type_detection``) comes from the per-detection flags of the
study's matching (``study.metrics.detection.detection_flags``) with a patient bootstrap within
each group and a bootstrap test of I-III minus IV-VI (``study.metrics.subgroup_ap``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from study.estimate import Estimate
from study.metrics.bootstrap import bootstrap_method_name
from study.metrics.clustered import clustered_mean, clustered_proportion
from study.metrics.detection import DetectionFlags
from study.metrics.subgroup_ap import SubgroupAP, difference
from study.results.counting import CountingResult
from study.results.detection import DetectionResult
from study.results.errors import (
    ErrorAnalysis,
    ErrorCase,
    GroupDetection,
    GroupErrors,
    ModelErrors,
    SkinTypeComparison,
    SkinTypeDetection,
)

__all__ = ["FITZPATRICK_DARK", "FITZPATRICK_LIGHT", "QUALITY_FEATURES", "QUALITY_SCORE", "difference_test",
           "error_analysis", "fitzpatrick_type", "skin_type_assessors", "skin_type_detection"]

#: the quality feature whose tertiles make the quality groups (sharpness: variance of the Laplacian)
QUALITY_SCORE = "laplacian_var"
#: the gate's features printed per case (those present in quality.parquet)
QUALITY_FEATURES = ("laplacian_var", "tenengrad", "dark_fraction", "bright_fraction", "face_fraction")
FITZPATRICK_LIGHT = ("I", "II", "III")
FITZPATRICK_DARK = ("IV", "V", "VI")
_ROMAN = {"1": "I", "2": "II", "3": "III", "4": "IV", "5": "V", "6": "VI"}


def fitzpatrick_type(value: Any) -> str | None:
    """A Fitzpatrick skin type as a Roman numeral (``"IV"``, from ``4``, ``"4"`` or ``"iv"``); ``None`` if absent."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    s = str(value).strip().upper()
    s = s.removesuffix(".0")
    s = _ROMAN.get(s, s)
    return s if s in FITZPATRICK_LIGHT + FITZPATRICK_DARK else (s or None)


def difference_test(a: Estimate, b: Estimate, *, confidence: float = 0.95,
                    method: str) -> tuple[Estimate, float | None]:
    """``a - b`` of two independent groups with the Wald interval and two-sided p-value.

    ``se = sqrt(se_a^2 + se_b^2)``; ``z = (a - b) / se``; ``p = 2 (1 - Phi(|z|))``
    (Donner & Klar 2000, section 7.2, with each group's cluster-robust variance).
    """
    if a.estimate is None or b.estimate is None:
        return Estimate(None, None, None, method, reason="a group has no estimate"), None
    d = float(a.estimate) - float(b.estimate)
    if a.se is None or b.se is None:
        return Estimate(d, None, None, method, reason="a group has no standard error (one patient)"), None
    se = float(np.hypot(a.se, b.se))
    if se == 0:
        return Estimate(d, None, None, method, se=0.0, reason="both variances are 0"), None
    z = float(norm.ppf(0.5 + confidence / 2))
    p = float(2 * norm.sf(abs(d / se)))
    return Estimate(d, d - z * se, d + z * se, method, se=se), p


def _non_negative(e: Estimate) -> Estimate:
    """A mean of non-negative values with its lower limit truncated at 0 (the method says so)."""
    if e.ci_low is None or e.ci_low >= 0:
        return e
    return e.model_copy(update={"ci_low": 0.0, "method": e.method + ", lower limit truncated at 0"})


def _group(factor: str, level: str, rows: pd.DataFrame, *, confidence: float) -> GroupErrors:
    by_patient = rows.groupby("cluster", sort=True)
    acc_rows = rows[rows["correct"].notna()]
    acc = acc_rows.groupby("cluster", sort=True)["correct"]
    err = rows["predicted"] - rows["true"]
    return GroupErrors(
        factor=factor, level=level, n_cases=len(rows), n_patients=int(rows["cluster"].nunique()),
        grading_accuracy=clustered_proportion(acc.sum().to_numpy(float), acc.size().to_numpy(float),
                                              confidence=confidence, reason_if_empty="no case with both grades"),
        count_bias=clustered_mean(err.to_numpy(float), rows["cluster"].to_numpy(), confidence=confidence),
        count_mae=_non_negative(clustered_mean(err.abs().to_numpy(float), rows["cluster"].to_numpy(),
                                               confidence=confidence)),
        lesion_recall=clustered_proportion(by_patient["found"].sum().to_numpy(float),
                                           by_patient["lesions"].sum().to_numpy(float), confidence=confidence,
                                           reason_if_empty="no reference lesion"),
    )


def _groups(frame: pd.DataFrame, column: str, factor: str, *, confidence: float,
            order: Sequence[str] | None = None) -> list[GroupErrors]:
    present = frame[column].dropna().astype(str).unique().tolist()
    levels = [v for v in (order or []) if v in present] + sorted(set(present) - set(order or []))
    return [_group(factor, lvl, frame[frame[column].astype(str) == lvl], confidence=confidence) for lvl in levels]


def _skin_type(frame: pd.DataFrame, *, confidence: float) -> tuple[SkinTypeComparison | None, str | None]:
    light = frame[frame["fitzpatrick"].isin(FITZPATRICK_LIGHT)]
    dark = frame[frame["fitzpatrick"].isin(FITZPATRICK_DARK)]
    if light.empty or dark.empty:
        return None, "not compared: the included cases do not cover both Fitzpatrick I-III and IV-VI"
    a = _group("fitzpatrick", "I-III", light, confidence=confidence)
    b = _group("fitzpatrick", "IV-VI", dark, confidence=confidence)
    method = (f"Wald, difference of independent groups with cluster-robust variances, patients as clusters, "
              f"{round(confidence * 100)}%")
    rd, rp = difference_test(a.lesion_recall, b.lesion_recall, confidence=confidence, method=method)
    md, mp = difference_test(a.count_mae, b.count_mae, confidence=confidence, method=method)
    return SkinTypeComparison(light=a, dark=b, recall_difference=rd, recall_p_value=rp, mae_difference=md,
                              mae_p_value=mp, test="two-sided Wald z test of no difference (cluster-robust "
                                                   "variances of each group; Donner & Klar 2000)"), None


#: the groups of the detection-by-skin-type analysis, in order; the index of each is its bootstrap stream
SKIN_DETECTION_GROUPS = (*FITZPATRICK_LIGHT, *FITZPATRICK_DARK, "I-III", "IV-VI")


def skin_type_detection(flags: DetectionFlags, *, fitzpatrick: Sequence[str | None], patient: Sequence[Any],
                        n_bootstrap: int, seed: int, confidence: float) -> tuple[SkinTypeDetection | None, str | None]:
    """Detection mAP by Fitzpatrick type and pooled I-III versus IV-VI, with patient-bootstrap intervals.

    Parameters
    ----------
    flags : DetectionFlags
        The model's flags on the evaluated images (``study.metrics.detection.detection_flags``).
    fitzpatrick, patient : sequences (one per ``flags.image_ids``)
        The image's skin type (Roman numeral or None) and patient.
    n_bootstrap, seed, confidence :
        As the detection block: replicates, seed and level. Group ``k`` of
        :data:`SKIN_DETECTION_GROUPS` draws from ``numpy.random.default_rng([seed, k])``, so
        groups are resampled independently, each within its own patients.

    Returns
    -------
    (SkinTypeDetection or None, reason or None)
        The mAP of each group (the study's AP definition: ``study.metrics.subgroup_ap``) with a
        percentile patient-bootstrap interval; the difference I-III minus IV-VI with the
        percentile interval of the replicate differences and a two-sided bootstrap p-value.
    """
    fz = np.asarray([f if isinstance(f, str) else "" for f in fitzpatrick], dtype=object)
    pat = np.asarray(patient, dtype=object)
    if not (fz != "").any():
        return None, "not analysed: no evaluated image has a Fitzpatrick skin type"
    masks = {lvl: fz == lvl for lvl in (*FITZPATRICK_LIGHT, *FITZPATRICK_DARK)}
    masks["I-III"] = np.isin(fz, FITZPATRICK_LIGHT)
    masks["IV-VI"] = np.isin(fz, FITZPATRICK_DARK)
    fitted: dict[str, tuple[SubgroupAP, np.ndarray]] = {}
    rows: dict[str, GroupDetection] = {}
    for k, lvl in enumerate(SKIN_DETECTION_GROUPS):
        if not masks[lvl].any():
            continue
        g = SubgroupAP(flags, masks[lvl], pat)
        reps = g.replicates(n_replicates=n_bootstrap, seed=[seed, k])
        fitted[lvl] = (g, reps)
        rows[lvl] = GroupDetection(level=lvl, n_images=g.n_images, n_patients=g.n_patients, n_lesions=g.n_lesions,
                                   n_detections=g.n_detections,
                                   map=g.estimate(reps, n_replicates=n_bootstrap, confidence=confidence),
                                   ap_by_class=g.ap_by_class)
    reason = None
    diff: Estimate | None = None
    p: float | None = None
    if "I-III" in fitted and "IV-VI" in fitted:
        (a, ra), (b, rb) = fitted["I-III"], fitted["IV-VI"]
        diff, p = difference(a, b, ra, rb, n_replicates=n_bootstrap, confidence=confidence)
        shared = set(map(str, pat[masks["I-III"]])) & set(map(str, pat[masks["IV-VI"]]))
        if shared:
            reason = (f"{len(shared)} patient(s) have images in both I-III and IV-VI: the two groups are not "
                      "independent and the test treats them as if they were")
    else:
        reason = "not compared: the evaluated images do not cover both Fitzpatrick I-III and IV-VI"
    return SkinTypeDetection(
        iou_threshold=flags.iou_threshold, match_rule=flags.match_rule,
        ap_definition=(f"mAP: mean over the classes with reference lesions in the group of the COCO 101-point "
                       f"interpolated AP at IoU {flags.iou_threshold:g} (class-aware greedy matching), the study's "
                       "map restricted to the group's images"),
        bootstrap=(bootstrap_method_name(n_bootstrap, confidence) + f" within each group, seed {seed} "
                   "(group k draws from default_rng([seed, k]))"),
        by_type=[rows[lvl] for lvl in (*FITZPATRICK_LIGHT, *FITZPATRICK_DARK) if lvl in rows],
        light=rows.get("I-III"), dark=rows.get("IV-VI"), difference=diff, p_value=p,
        test=("two-sided bootstrap test of no difference: twice the smaller share of replicate differences "
              "(I-III minus IV-VI, groups resampled independently) on either side of 0, with the +1 correction "
              "(Davison & Hinkley 1997, section 4.4)"),
        reason=reason), None


def skin_type_assessors(cases: pd.DataFrame, *, included: Sequence[str] | None = None) -> dict[str, int]:
    """Cases with a Fitzpatrick skin type, counted by who assigned it (manifest column ``skin_type_assessor``).

    A blank assessor counts as ``not recorded``; without the column (or without skin types) the
    result is empty. ``included``: count only these case ids (the analysed cases).
    """
    if "skin_type_assessor" not in cases or "fitzpatrick" not in cases:
        return {}
    rows = cases if included is None else cases[cases["case_id"].astype(str).isin(set(map(str, included)))]
    out: dict[str, int] = {}
    for f, a in zip(rows["fitzpatrick"], rows["skin_type_assessor"], strict=True):
        if fitzpatrick_type(f) is None:
            continue
        who = "" if a is None or (isinstance(a, float) and np.isnan(a)) else str(a).strip()
        key = who or "not recorded"
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def _tertiles(score: pd.Series) -> pd.Series:
    """``low`` / ``middle`` / ``high`` by the tertiles of ``score`` over the cases that have it."""
    ok = score.dropna()
    out = pd.Series([None] * len(score), index=score.index, dtype=object)
    if len(ok) < 3:
        return out
    q1, q2 = np.quantile(ok.to_numpy(float), [1 / 3, 2 / 3])
    out[ok.index] = np.where(ok <= q1, "low", np.where(ok <= q2, "middle", "high"))
    return out


def _case_table(cases: pd.DataFrame, quality: pd.DataFrame | None) -> pd.DataFrame:
    t = pd.DataFrame({"case_id": cases["case_id"].astype(str)})
    t["cluster"] = (cases["patient_id"].astype(str) if "patient_id" in cases else t["case_id"]).to_numpy()
    t["device"] = cases["device"].astype(object).where(cases["device"].notna(), None).to_numpy() \
        if "device" in cases else None
    t["fitzpatrick"] = [fitzpatrick_type(v) for v in cases["fitzpatrick"]] if "fitzpatrick" in cases else None
    if quality is not None:
        cols = [c for c in QUALITY_FEATURES if c in quality.columns]
        q = quality[["case_id"] + cols].copy()
        q["case_id"] = q["case_id"].astype(str)
        t = t.merge(q, on="case_id", how="left")
    return t.set_index("case_id")


def _model_errors(model: str, cnt: CountingResult, det: DetectionResult | None, grades: pd.DataFrame | None,
                  table: pd.DataFrame, *, image_case: Mapping[int, str], levels: Sequence[str],
                  names: Mapping[str, str], operating_threshold: float, confidence: float,
                  flags: DetectionFlags | None = None) -> ModelErrors:
    from study.report.context.common import threshold_key_of

    tk = threshold_key_of(cnt.threshold_keys(), operating_threshold)
    pts = cnt.points
    frame = table.reindex(pts.case_id).copy()
    frame["true"] = pts.true
    frame["predicted"] = pts.predicted[tk]
    frame["reference_grade"] = pts.severity if pts.severity is not None else None
    mg: dict[str, str] = {}
    if grades is not None:
        mg = dict(zip(grades["case_id"].astype(str), grades["grade"].astype(str), strict=True))
    frame["model_grade"] = [mg.get(c) for c in pts.case_id]
    lesions = {c: (0, 0, 0) for c in pts.case_id}
    if det is not None and det.per_image is not None:
        pi = det.per_image
        for i, n, f, d in zip(pi.image_id, pi.lesions, pi.found, pi.detections, strict=True):
            c = image_case.get(i)
            if c in lesions:
                lesions[c] = (n, f, d)
    frame["lesions"] = [lesions[c][0] for c in pts.case_id]
    frame["found"] = [lesions[c][1] for c in pts.case_id]
    idx = {lvl: i for i, lvl in enumerate(levels)}
    steps = [idx[m] - idx[r] if (m in idx and r in idx) else None
             for m, r in zip(frame["model_grade"], frame["reference_grade"], strict=True)]
    frame["correct"] = [None if s is None else float(s == 0) for s in steps]
    frame["quality_tertile"] = _tertiles(frame[QUALITY_SCORE]) if QUALITY_SCORE in frame else None
    qcols = [c for c in QUALITY_FEATURES if c in frame.columns]
    worst = levels[-1] if levels else None
    records = []
    for i, c in enumerate(pts.case_id):
        r = frame.iloc[i]
        s = steps[i]
        ref = r["reference_grade"]
        serious = s is not None and (abs(s) >= 2 or (ref == worst and s != 0))
        records.append(ErrorCase(
            case_id=names.get(c, c), reference_grade=ref, model_grade=r["model_grade"], grade_steps=s,
            serious=serious,
            reference_counts={k: round(v.true[i]) for k, v in pts.by_class.items()},
            model_counts={k: round(v.predicted[tk][i]) for k, v in pts.by_class.items()},
            detections=lesions[c][2] if det is not None and det.per_image is not None else round(pts.predicted[tk][i]),
            lesions=int(r["lesions"]), lesions_found=int(r["found"]),
            device=None if pd.isna(r["device"]) else str(r["device"]),
            fitzpatrick=r["fitzpatrick"],
            quality={q: (None if pd.isna(r[q]) else float(r[q])) for q in qcols},
            quality_tertile=r["quality_tertile"]))
    frame["fitzpatrick"] = frame["fitzpatrick"].astype(object)
    groups: dict[str, list[GroupErrors]] = {}
    for column, factor, order in (("device", "device", None), ("fitzpatrick", "fitzpatrick",
                                                               FITZPATRICK_LIGHT + FITZPATRICK_DARK),
                                  ("quality_tertile", "quality", ("low", "middle", "high"))):
        if column in frame and frame[column].notna().any():
            groups[factor] = _groups(frame, column, factor, confidence=confidence, order=order)
    skin, reason = (_skin_type(frame, confidence=confidence) if frame["fitzpatrick"].notna().any()
                    else (None, "not compared: the cases table has no Fitzpatrick skin type"))
    skin_det, det_reason = None, "not analysed: no detection flags (the detections file was not given)"
    if flags is not None and det is not None:
        cases_of = [image_case.get(int(i)) for i in flags.image_ids]
        known = [c is not None and c in table.index for c in cases_of]
        if not all(known):
            det_reason = "not analysed: some evaluated images have no case in the cases table"
        else:
            skin_det, det_reason = skin_type_detection(
                flags, fitzpatrick=[table.at[c, "fitzpatrick"] for c in cases_of],
                patient=[table.at[c, "cluster"] for c in cases_of], n_bootstrap=det.bootstrap.replicates,
                seed=det.bootstrap.seed, confidence=confidence)
    return ModelErrors(operating_threshold=operating_threshold, threshold_key=tk, levels=list(levels),
                       cases=records, groups=groups, skin_type=skin, skin_type_reason=reason,
                       skin_type_detection=skin_det,
                       skin_type_detection_reason=det_reason if skin_det is None else None)


def error_analysis(*, cases: pd.DataFrame, quality: pd.DataFrame | None, counting: Mapping[str, CountingResult],
                   detection: Mapping[str, DetectionResult], grades: Mapping[str, pd.DataFrame],
                   ground_truth: Mapping[str, Any], levels: Sequence[str], names: Mapping[str, str],
                   operating_threshold: float, confidence: float = 0.95,
                   skin_type_assessed_by: str | None = None, flags: Mapping[str, DetectionFlags] | None = None,
                   included: Sequence[str] | None = None) -> ErrorAnalysis:
    """The ``errors`` block: per model, every included case's errors and the breakdowns.

    Parameters
    ----------
    cases : DataFrame
        ``cases.parquet`` (``case_id``; optional ``patient_id``, ``device``, ``fitzpatrick``).
    quality : DataFrame, optional
        ``quality.parquet`` (the gate's features per case).
    counting, detection : mapping model -> result
        The counting and detection step outputs, with the original case ids (not yet pseudonymised).
    grades : mapping model -> DataFrame
        ``grades/<model>.parquet`` (``case_id``, ``grade``).
    ground_truth : dict
        The normalised COCO ground truth (``images[].id`` and ``case_id``).
    levels : sequence of str
        The protocol's grade levels, least severe first.
    names : mapping case id -> pseudonym
        Case ids are stored only as pseudonyms; an empty mapping keeps them.
    operating_threshold : float
        The protocol's operating score threshold.
    confidence : float
        Two-sided level of the intervals.
    skin_type_assessed_by : str, optional
        Who assigned skin types (``information.skin_type_assessment`` of the config).
    flags : mapping model -> DetectionFlags, optional
        Each model's per-detection flags on the evaluated images
        (``study.metrics.detection.detection_flags``): detection mAP by skin type
        (:func:`skin_type_detection`, bootstrap replicates and seed of ``detection.<model>.bootstrap``).
    included : sequence of str, optional
        The included case ids: the cases :func:`skin_type_assessors` counts (default: every case).
    """
    table = _case_table(cases, quality)
    image_case = {int(im["id"]): str(im.get("case_id", "")) for im in ground_truth.get("images", [])}
    models = {m: _model_errors(m, cnt, detection.get(m), grades.get(m), table, image_case=image_case, levels=levels,
                               names=names, operating_threshold=operating_threshold, confidence=confidence,
                               flags=(flags or {}).get(m))
              for m, cnt in sorted(counting.items())}
    return ErrorAnalysis(quality_score=QUALITY_SCORE, skin_type_assessed_by=skin_type_assessed_by,
                         skin_type_assessors=skin_type_assessors(cases, included=included), models=models)


