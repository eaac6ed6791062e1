"""Lesion-level detection metrics: AP, precision / recall / F1, FROC, presence, segmentation.

One call, :func:`evaluate_detection`, computes everything the detection section of a
report shows, from a COCO instances ground truth and a COCO results list:

- matching (``study.metrics.matching``): COCO's greedy rule per image and class (IoU of
  boxes; mask IoU for polygon classes when the detections carry masks; optionally centre
  distance), and class-agnostic ("any lesion");
- per class and any lesion: AP by COCO's 101-point interpolation at the IoU threshold and
  VOC's all-point AP (Everingham et al. 2010), the precision-recall curve, maximum recall,
  and precision / recall (Wilson score intervals) and F1 (patient bootstrap) at the
  protocol's operating threshold;
- FROC over any lesion with patient-bootstrap intervals (``study.metrics.froc``);
- image-level presence per class (``study.metrics.presence``);
- Dice / IoU of polygon classes (``study.metrics.segmentation``);
- the COCO summary (AP@[.50:.95], AP50, AP75, APs/m/l, AR) with ``maxDets`` raised to
  ``max_detections`` (acne images can carry several hundred lesions, so detections are
  never capped at COCO's default 100), computed by ``study.metrics.coco_native`` (a
  vectorised equivalent of pycocotools' COCOeval, equal to it to 1e-12 in the tests and
  several times faster than faster-coco-eval, see ``bench/bench_detection.py``) or, on request, by faster-coco-eval
  or pycocotools themselves (``coco_backend``); ``coco.backend`` says which.

Our AP at the IoU threshold reproduces pycocotools' per-category AP50 exactly (same
matching, same 101-point rule; ``tests/test_detection.py`` checks it on random data).

Note on intervals: with ``unit="image"`` the Wilson intervals for lesion-level precision,
recall and maximum recall treat lesions as independent; lesions cluster within patients, so
these intervals can be too narrow. With ``unit="patient"`` (a study's default when patients
are known: ``statistics.unit``) they use the ratio estimator for clustered binary data over
per-patient lesion totals (``study.metrics.clustered.clustered_proportion``). The F1, FROC, presence-F1 and Dice/IoU intervals resample patients (percentile
bootstrap) and the AP interval deletes groups of patients (jackknife), so they respect the
clustering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from study.errors import Problem, StudyError
from study.estimate import Estimate
from study.metrics.average_precision import (
    REC_THRS,
    AveragePrecision,
    ap_interval,
    average_precision,
)
from study.metrics.bootstrap import ReplicateWeights, bootstrap_estimate
from study.metrics.clustered import clustered_proportion
from study.metrics.coco_input import (
    CocoArrays,
    RawCoco,
    check_coco_pair,
    load_coco_pair,
    to_arrays,
)
from study.metrics.coco_summary import CocoBackend, coco_summary, native_coco
from study.metrics.froc import DEFAULT_FP_RATES, FrocData, evaluate_froc
from study.metrics.intervals import binomial_ci
from study.metrics.matching import (
    MatchResult,
    candidate_pairs,
    greedy_from_pairs,
    score_rank,
)
from study.metrics.presence import evaluate_presence, f1_from_counts, presence_features
from study.metrics.segmentation import mask_iou, segmentation_of_class, to_rle
from study.options import DetectionArguments
from study.results.detection import (
    ANY_LESION,
    ClassCoco,
    ClassDetection,
    CocoSummary,
    DetectionInputs,
    DetectionResult,
    FrocResult,
    ImageLesions,
    PRCurve,
    PresenceResult,
    ResamplingSettings,
    SegmentationResult,
)

__all__ = ["ANY_LESION", "REC_THRS", "DetectionFlags", "ap_interval", "average_precision", "coco_summary",
           "detection_flags", "evaluate_detection", "load_coco_pair"]

AP_DEFINITION = ("ap: COCO 101-point interpolated AP at iou_threshold; ap_voc: PASCAL VOC all-point AP; "
                 "map: mean of per-class ap over classes with reference lesions")
PR_CURVE_KIND = "COCO interpolated precision at 101 recall levels"


# --------------------------------------------------------------------------- named values between the steps
@dataclass(frozen=True)
class Patients:
    """The bootstrap unit of each image and the replicates' draw counts.

    Attributes
    ----------
    index : int array (n_images,)
        Patient index (0..n-1) of each evaluated image.
    n : int
        Number of patients.
    unit : {"patients", "images"}
        What is resampled (``images`` when no patient mapping was given).
    blocks : ReplicateWeights
        Draw counts of the bootstrap replicates, made block by block each time they are read
        (falsy without bootstrap): F1, FROC, presence and segmentation share this one
        definition of the replicates and none holds them all.
    """

    index: np.ndarray
    n: int
    unit: Literal["patients", "images"]
    blocks: ReplicateWeights
    #: the unit of analysis is the patient: lesion-level proportions use the clustered ratio estimator
    clustered: bool = False


@dataclass(frozen=True)
class Matching:
    """Detections matched to reference lesions, class-aware and class-agnostic.

    Attributes
    ----------
    by_class, any_lesion : MatchResult
        Greedy matching within the class, and across classes ("any lesion").
    coco_pairs : (d, g, iou) arrays or None
        Same-class pairs with box IoU >= 0.5 for the native COCO evaluator (``None`` for the
        library backends).
    dt_mask : bool array or None
        Detections of polygon classes that carry a mask (``None`` without mask matching).
    """

    by_class: MatchResult
    any_lesion: MatchResult
    coco_pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    dt_mask: np.ndarray | None


@dataclass(frozen=True)
class Column:
    """One row of the per-class table: a class, or any lesion (detections and lesions it covers)."""

    dt: np.ndarray      # bool (n_det,): the detections
    gt: np.ndarray      # bool (n_gt,): the reference lesions (crowd regions excluded)
    match: MatchResult  # the matching that decides their status


# --------------------------------------------------------------------------- steps
def _arguments(**options: Any) -> DetectionArguments:
    """The keyword options, validated by :class:`study.options.DetectionArguments`."""
    try:
        return DetectionArguments(**options)
    except ValidationError as e:
        raise StudyError([Problem("options", ".".join(str(x) for x in err["loc"]),
                                  f"{err['input']!r}: {err['msg']}" if err["loc"] else err["msg"])
                          for err in e.errors()]) from None


def _patients(image_ids: np.ndarray, patient_of: Mapping[Any, Any] | None, *, n_bootstrap: int,
              seed: int, unit_of_analysis: str = "image") -> Patients:
    """Patient of each image (default: each image its own patient), the bootstrap draws, and whether
    the unit of analysis is the patient (``"patient"``, or ``"auto"`` with patients known)."""
    if unit_of_analysis == "patient" and patient_of is None:
        raise StudyError("the unit of analysis is the patient (statistics.unit: patient) but no patient of each "
                         "image was given; expected patient_of, or statistics.unit: image",
                         file="options", where="unit")
    clustered = unit_of_analysis == "patient" or (unit_of_analysis == "auto" and patient_of is not None)
    unit: Literal["patients", "images"]
    if patient_of is None:
        index, n, unit = np.arange(len(image_ids)), len(image_ids), "images"
    else:
        missing = [int(i) for i in image_ids if int(i) not in patient_of and str(int(i)) not in patient_of]
        if missing:
            raise StudyError(f"no patient for image ids {missing[:20]}" + (" ..." if len(missing) > 20 else ""),
                             file="patient_of", where="image_id")
        labels = [patient_of[int(i)] if int(i) in patient_of else patient_of[str(int(i))] for i in image_ids]
        uniq, idx = np.unique(np.asarray([str(x) for x in labels]), return_inverse=True)
        index, n, unit = idx.astype(np.int64), len(uniq), "patients"
    rng = np.random.default_rng(seed)
    blocks = ReplicateWeights(n, n_replicates=max(int(n_bootstrap), 0), rng=rng)
    return Patients(index, n, unit, blocks, clustered)


def _mask_pairs(arr: CocoArrays, polygon: set[int]):
    """``extra_pairs`` callback giving mask IoU where both sides of a pair carry a mask."""
    poly = np.array(sorted(polygon), np.int64)
    gt_mask = np.zeros(len(arr.gt_cls), bool)
    for i in np.flatnonzero(np.isin(arr.gt_cls, poly)).tolist():
        gt_mask[i] = arr.gt_seg[i] is not None
    dt_mask = np.zeros(len(arr.dt_cls), bool)
    for i in np.flatnonzero(np.isin(arr.dt_cls, poly)).tolist():
        dt_mask[i] = arr.dt_seg[i] is not None
    if not gt_mask.any() or not dt_mask.any():
        return None, dt_mask
    cache_g: dict[int, Any] = {}
    cache_d: dict[int, Any] = {}

    def rle(cache: dict[int, Any], seg: Any, img: np.ndarray, i: int) -> Any:
        if i not in cache:
            h, w = arr.image_hw[img[i]]
            cache[i] = to_rle(seg[i], int(h), int(w))
        return cache[i]

    def extra(d, g):
        use = dt_mask[d] & gt_mask[g]
        alt = np.zeros(len(d))
        for k in np.flatnonzero(use):
            alt[k] = mask_iou([rle(cache_d, arr.dt_seg, arr.dt_img, int(d[k]))],
                              [rle(cache_g, arr.gt_seg, arr.gt_img, int(g[k]))], [int(arr.gt_crowd[g[k]])])[0, 0]
        return alt, use

    return extra, dt_mask


def _match(arr: CocoArrays, a: DetectionArguments) -> Matching:
    """Greedy matching (``study.metrics.matching``): pairs by image once, class-aware pairs being
    the same-class subset; plus the box pairs the native COCO evaluator needs."""
    poly_idx = {arr.classes.index(c) for c in a.polygon_classes}
    extra, dt_mask = _mask_pairs(arr, poly_idx) if poly_idx else (None, None)
    n_dt, n_gt = len(arr.dt_score), len(arr.gt_box)
    rank = score_rank(arr.dt_score)
    native = a.coco_backend == "native"
    box_only = a.match_rule == "iou" and extra is None
    if a.match_rule == "iou":
        pair_thr = min(a.iou_threshold, 0.5) if (native and box_only) else a.iou_threshold
        d, g, s = candidate_pairs(arr.gt_img, arr.gt_box, arr.dt_img, arr.dt_box, threshold=pair_thr,
                                  gt_crowd=arr.gt_crowd, extra_pairs=extra)
    else:
        radius = a.center_distance_px
        assert radius is not None  # DetectionArguments requires it with this rule
        d, g, s = candidate_pairs(arr.gt_img, arr.gt_box, arr.dt_img, arr.dt_box, threshold=radius,
                                  gt_crowd=arr.gt_crowd, rule="center_distance")
    same = arr.dt_cls[d] == arr.gt_cls[g]
    coco_pairs = None
    if native:
        if box_only:
            cp = same & (s >= 0.5 - 1e-12)
            coco_pairs = (d[cp], g[cp], s[cp])
        else:
            d2, g2, s2 = candidate_pairs(arr.gt_img, arr.gt_box, arr.dt_img, arr.dt_box, threshold=0.5,
                                         gt_crowd=arr.gt_crowd)
            cp = arr.dt_cls[d2] == arr.gt_cls[g2]
            coco_pairs = (d2[cp], g2[cp], s2[cp])
    if a.match_rule == "iou":
        keep = s >= min(a.iou_threshold, 1 - 1e-10)
        d, g, s, same = d[keep], g[keep], s[keep], same[keep]
    by_class = greedy_from_pairs(n_dt, n_gt, d[same], g[same], s[same], rank, gt_crowd=arr.gt_crowd)
    any_lesion = greedy_from_pairs(n_dt, n_gt, d, g, s, rank, gt_crowd=arr.gt_crowd)
    return Matching(by_class, any_lesion, coco_pairs, dt_mask)


def _f1_estimates(arr: CocoArrays, columns: list[Column], at_op: np.ndarray, pts: Patients, *,
                  n_bootstrap: int, confidence: float) -> list[Estimate]:
    """F1 at the operating threshold of each column, with a patient bootstrap (all columns at once).

    Per patient the sums of TP, FP and reference lesions make a (P, 3 columns) table; each
    replicate's sums are its draw counts times that table.
    """
    feats = np.zeros((pts.n, 3 * len(columns)), np.float32)
    points = []
    for j, col in enumerate(columns):
        tp, fp = col.match.tp[col.dt] & at_op[col.dt], col.match.fp[col.dt] & at_op[col.dt]
        pat_dt = pts.index[arr.dt_img[col.dt]]
        feats[:, 3 * j] = np.bincount(pat_dt, weights=tp, minlength=pts.n)
        feats[:, 3 * j + 1] = np.bincount(pat_dt, weights=fp, minlength=pts.n)
        feats[:, 3 * j + 2] = np.bincount(pts.index[arr.gt_img[col.gt]], minlength=pts.n)
        k_tp, k_fp, ngt = int(tp.sum()), int(fp.sum()), int(col.gt.sum())
        points.append(float(f1_from_counts(k_tp, k_fp, ngt - k_tp)))
    reps = np.vstack([w @ feats for w in pts.blocks]) if pts.blocks else np.zeros((0, feats.shape[1]))
    return [bootstrap_estimate(point, f1_from_counts(reps[:, 3 * j], reps[:, 3 * j + 1],
                                                     reps[:, 3 * j + 2] - reps[:, 3 * j]),
                               n_replicates=n_bootstrap, confidence=confidence, unit=pts.unit)
            for j, point in enumerate(points)]


def _proportion(successes: np.ndarray, trials: np.ndarray, a: DetectionArguments, pts: Patients, *,
                reason_if_empty: str) -> Estimate:
    """A lesion-level proportion from per-patient totals: the ratio estimator with the Rao-Scott
    design effect (:func:`study.metrics.clustered.clustered_proportion`) when the unit of analysis
    is the patient, else the Wilson interval treating lesions as independent."""
    if pts.clustered:
        return clustered_proportion(successes, trials, confidence=a.confidence, reason_if_empty=reason_if_empty)
    return binomial_ci(round(float(successes.sum())), round(float(trials.sum())), confidence=a.confidence,
                       reason_if_empty=reason_if_empty)


def _class_detection(arr: CocoArrays, col: Column, at_op: np.ndarray, pts: Patients, f1: Estimate,
                     a: DetectionArguments, coco: ClassCoco | None = None) -> ClassDetection:
    """AP (with its jackknife interval), maximum recall, and precision / recall (Wilson) at the
    operating threshold of one column."""
    tp, fp = col.match.tp[col.dt], col.match.fp[col.dt]
    ngt = int(col.gt.sum())
    tie = (arr.dt_img * (len(arr.dt_order) + 1) + arr.dt_order)[col.dt]  # pycocotools: image order, then input order
    apd: AveragePrecision = average_precision(arr.dt_score[col.dt], tp, fp, ngt, tie_order=tie)
    op = at_op[col.dt]
    k_tp, k_fp = int((tp & op).sum()), int((fp & op).sum())
    pat_dt = pts.index[arr.dt_img[col.dt]]
    ngt_pat = np.bincount(pts.index[arr.gt_img[col.gt]], minlength=pts.n)
    tp_pat = np.bincount(pat_dt, weights=tp & op, minlength=pts.n)
    no_lesion = "no reference lesion of this class"
    return ClassDetection(
        ap=apd.ap, ap_voc=apd.ap_voc, max_recall=apd.max_recall,
        ap_ci=ap_interval(apd.ap, arr.dt_score[col.dt], tp, fp, pat_dt, ngt_pat, tie_order=tie, seed=a.seed,
                          confidence=a.confidence, unit=pts.unit),
        max_recall_ci=_proportion(np.bincount(pat_dt, weights=tp, minlength=pts.n), ngt_pat, a, pts,
                                  reason_if_empty=no_lesion),
        n_gt=ngt, n_det=int(col.dt.sum()), n_det_at_operating_threshold=int(op.sum()),
        n_ignored_crowd=int(col.match.ignored[col.dt].sum()),
        tp=k_tp, fp=k_fp, fn=ngt - k_tp,
        precision=_proportion(tp_pat, tp_pat + np.bincount(pat_dt, weights=fp & op, minlength=pts.n), a, pts,
                              reason_if_empty="no detection at the operating threshold"),
        recall=_proportion(tp_pat, ngt_pat, a, pts, reason_if_empty=no_lesion),
        f1=f1,
        pr_curve=PRCurve(recall=REC_THRS.tolist(), precision=apd.pr_interpolated.tolist(), kind=PR_CURVE_KIND),
        coco=coco,
    )


def _froc(arr: CocoArrays, m: MatchResult, real_gt: np.ndarray, pts: Patients, a: DetectionArguments) -> FrocResult:
    """FROC of any lesion (``study.metrics.froc``) with patient-bootstrap intervals."""
    fd = FrocData.build(arr.dt_score, m.tp, m.fp, pts.index[arr.dt_img],
                        n_gt_patient=np.bincount(pts.index[arr.gt_img[real_gt]], minlength=pts.n),
                        n_img_patient=np.bincount(pts.index, minlength=pts.n))
    return evaluate_froc(fd, fp_rates=a.froc_fp_rates, weight_blocks=pts.blocks, n_bootstrap=a.n_bootstrap,
                         unit=pts.unit, confidence=a.confidence)


def _presence(arr: CocoArrays, real_gt: np.ndarray, at_op: np.ndarray, pts: Patients,
              a: DetectionArguments) -> dict[str, PresenceResult]:
    """Image-level presence of each class (``study.metrics.presence``), replicates for all classes at once."""
    n_img, n_cls = len(arr.image_ids), len(arr.classes)
    gt_count = np.zeros((n_img, n_cls), np.int64)
    np.add.at(gt_count, (arr.gt_img[real_gt], arr.gt_cls[real_gt]), 1)
    called = np.zeros((n_img, n_cls), bool)
    called[arr.dt_img[at_op], arr.dt_cls[at_op]] = True
    feats = np.hstack([presence_features(gt_count[:, c] > 0, called[:, c], pts.index, pts.n)
                       for c in range(n_cls)]) if n_cls else np.zeros((pts.n, 0), np.float32)
    reps = np.vstack([w @ feats for w in pts.blocks]) if pts.blocks else None
    return {name: evaluate_presence(gt_count[:, c] > 0, called[:, c], pts.index, n_bootstrap=a.n_bootstrap,
                                    confidence=a.confidence, unit=pts.unit,
                                    replicate_table=reps[:, 3 * c:3 * c + 3] if reps is not None else None)
            for c, name in enumerate(arr.classes)}


def _segmentation(arr: CocoArrays, mt: Matching, at_op: np.ndarray, pts: Patients,
                  a: DetectionArguments) -> dict[str, SegmentationResult]:
    """Dice / IoU of each polygon class (``study.metrics.segmentation``)."""
    return {name: segmentation_of_class(arr, arr.classes.index(name), mt.by_class, at_op, mt.dt_mask, pts.index,
                                        weight_blocks=pts.blocks, n_bootstrap=a.n_bootstrap,
                                        confidence=a.confidence, unit=pts.unit)
            for name in a.polygon_classes}


def _coco(ground_truth: dict[str, Any], detections: list[dict[str, Any]], arr: CocoArrays, mt: Matching,
          a: DetectionArguments) -> tuple[CocoSummary, dict[str, ClassCoco]]:
    """The COCO summary (and, natively, COCO AP per class) by the requested backend."""
    if mt.coco_pairs is not None:
        return native_coco(arr, mt.coco_pairs, max_detections=a.max_detections)
    return coco_summary(ground_truth, detections, category_ids=arr.category_ids, image_ids=arr.image_ids.tolist(),
                        max_detections=a.max_detections, backend=a.coco_backend), {}


def _mean_defined(values: list[float | None]) -> float | None:
    """Mean of the values that are defined, ``None`` when none is."""
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


# --------------------------------------------------------------------------- main
def evaluate_detection(ground_truth: dict, detections: list[dict], *, classes: Sequence[str] | None = None,
                       iou_threshold: float = 0.5, operating_threshold: float = 0.5, max_detections: int = 1000,
                       froc_fp_rates: Sequence[float] = DEFAULT_FP_RATES, polygon_classes: Sequence[str] = (),
                       patient_of: Mapping[Any, Any] | None = None, n_bootstrap: int = 2000, seed: int = 0,
                       confidence: float = 0.95, image_ids: Sequence[int] | None = None,
                       match_rule: Literal["iou", "center_distance"] = "iou", center_distance_px: float | None = None,
                       coco_backend: CocoBackend = "native", unit: str = "image",
                       validate: bool = True, raw: RawCoco | None = None) -> DetectionResult:
    """Every lesion-level detection metric of one model on one cohort.

    The keyword options are validated by :class:`study.options.DetectionArguments` (a study
    builds them once from its protocol: ``DetectionOptions.from_protocol(p).arguments()``);
    a bad option raises a :class:`study.errors.StudyError` naming it.

    Parameters
    ----------
    ground_truth : dict
        COCO instances (``images`` with ``id``, ``width``, ``height``; ``annotations``;
        ``categories``).
    detections : list of dict
        COCO results (``image_id``, ``category_id``, ``bbox``, ``score``[, ``segmentation``]).
    classes : list of str, optional
        Category names to evaluate (default: every ground-truth category, by id).
    iou_threshold : float
        Matching IoU (or, with ``match_rule="center_distance"``, ignored for matching).
    operating_threshold : float
        Score at or above which a detection counts, for precision / recall / F1 / presence /
        segmentation.
    max_detections : int
        Per image and class, the highest-scoring detections kept (COCO ``maxDets``).
    froc_fp_rates : sequence of float
        False positives per image at which the FROC sensitivity is read.
    polygon_classes : sequence of str
        Classes annotated as polygons: matched by mask IoU when the detections carry masks.
    patient_of : mapping image id -> patient id, optional
        Bootstrap unit (default: each image its own patient).
    n_bootstrap, seed, confidence :
        Percentile bootstrap over patients (replicates, 0 for none; seed; level); Wilson level too.
    image_ids : sequence of int, optional
        Evaluate only these images (e.g. the included cases).
    match_rule : {"iou", "center_distance"}
        ``center_distance`` matches point-like lesions whose box centres are within
        ``center_distance_px`` pixels (nearest first).
    coco_backend : {"native", "faster-coco-eval", "pycocotools"}
        What computes the ``coco`` block: ``native`` (``study.metrics.coco_native``, a
        vectorised equivalent of pycocotools' COCOeval, tested equal to it to 1e-12; the
        fastest) or one of the two libraries (run with ``maxDets`` raised).
    unit : {"image", "patient", "auto"}
        Unit of analysis of the lesion-level precision, recall and maximum recall intervals:
        ``patient`` (``auto`` with ``patient_of`` given) uses the ratio estimator for clustered
        binary data with the Rao-Scott design effect (Obuchowski 1998; Rao & Scott 1992) over
        per-patient lesion totals; ``image`` the Wilson interval treating lesions as independent.
    validate : bool
        Validate the inputs (skip only when they were validated already).
    raw : RawCoco, optional
        The inputs' columns, validated, from :func:`study.metrics.coco_columns.load_coco_columns`
        (which streams the files): then ``ground_truth["annotations"]`` and ``detections`` need
        only carry each item's ``segmentation``, and no further validation runs.

    Returns
    -------
    DetectionResult
        The ``detection.<model>`` block of ``results.json`` (``study.results.detection``):
        settings echoed, ``classes.<name>`` and ``any_lesion`` (AP with its interval, VOC AP,
        precision / recall / F1, maximum recall, counts, PR curve; classes also ``coco`` AP
        with the native backend), ``map``, ``map_voc``, ``coco``, ``froc``,
        ``presence.<name>``, ``segmentation.<polygon class>``, ``inputs``, ``bootstrap``.
    """
    a = _arguments(classes=classes, iou_threshold=iou_threshold, operating_threshold=operating_threshold,
                   max_detections=max_detections, froc_fp_rates=froc_fp_rates, polygon_classes=polygon_classes,
                   n_bootstrap=n_bootstrap, seed=seed, confidence=confidence, match_rule=match_rule,
                   center_distance_px=center_distance_px, coco_backend=coco_backend, unit=unit)
    if raw is None:
        raw = check_coco_pair(ground_truth, detections) if validate else None
    arr = to_arrays(ground_truth, detections, classes=list(a.classes) if a.classes is not None else None,
                    image_ids=image_ids, max_detections=a.max_detections, raw=raw)
    unknown_poly = [c for c in a.polygon_classes if c not in arr.classes]
    if unknown_poly:
        raise StudyError(f"polygon classes {unknown_poly} are not among the evaluated classes {arr.classes}",
                         file="options", where="polygon_classes")
    pts = _patients(arr.image_ids, patient_of, n_bootstrap=a.n_bootstrap, seed=a.seed, unit_of_analysis=a.unit)
    mt = _match(arr, a)
    at_op = arr.dt_score >= a.operating_threshold
    real_gt = ~arr.gt_crowd
    n_dt = len(arr.dt_score)

    columns = [Column(arr.dt_cls == c, (arr.gt_cls == c) & real_gt, mt.by_class) for c in range(len(arr.classes))]
    columns.append(Column(np.ones(n_dt, bool), real_gt, mt.any_lesion))
    f1 = _f1_estimates(arr, columns, at_op, pts, n_bootstrap=a.n_bootstrap, confidence=a.confidence)
    coco, coco_by_class = _coco(ground_truth, detections, arr, mt, a)
    per_class = {name: _class_detection(arr, columns[c], at_op, pts, f1[c], a, coco_by_class.get(name))
                 for c, name in enumerate(arr.classes)}
    with_lesions = [b for b in per_class.values() if b.n_gt > 0]

    return DetectionResult(
        iou_threshold=a.iou_threshold,
        operating_threshold=a.operating_threshold,
        match_rule=a.match_rule if a.match_rule == "iou" else f"center_distance <= {center_distance_px} px",
        max_detections=a.max_detections,
        n_images=len(arr.image_ids),
        n_patients=pts.n,
        classes=per_class,
        any_lesion=_class_detection(arr, columns[-1], at_op, pts, f1[-1], a),
        map=_mean_defined([b.ap for b in with_lesions]),
        map_voc=_mean_defined([b.ap_voc for b in with_lesions]),
        ap_definition=AP_DEFINITION,
        coco=coco,
        froc=_froc(arr, mt.any_lesion, real_gt, pts, a),
        presence=_presence(arr, real_gt, at_op, pts, a),
        segmentation=_segmentation(arr, mt, at_op, pts, a),
        inputs=DetectionInputs(n_gt=int(real_gt.sum()), n_gt_crowd=int(arr.gt_crowd.sum()), n_det=n_dt,
                               n_det_truncated_by_max_detections=int(arr.n_dt_truncated), **arr.excluded),
        bootstrap=ResamplingSettings(replicates=a.n_bootstrap, seed=a.seed, unit=pts.unit),
        per_image=_per_image(arr, mt.by_class.tp, at_op, real_gt),
    )


def _per_image(arr: CocoArrays, tp: np.ndarray, at_op: np.ndarray, real_gt: np.ndarray) -> ImageLesions:
    """Reference lesions, those found (class-aware match at the operating threshold) and detections, per image."""
    n = len(arr.image_ids)
    return ImageLesions(image_id=[int(i) for i in arr.image_ids],
                        lesions=np.bincount(arr.gt_img[real_gt], minlength=n).astype(int).tolist(),
                        found=np.bincount(arr.dt_img[tp & at_op], minlength=n).astype(int).tolist(),
                        detections=np.bincount(arr.dt_img[at_op], minlength=n).astype(int).tolist())


# --------------------------------------------------------------------------- flags for subgroups
@dataclass(frozen=True)
class DetectionFlags:
    """Every detection's class-aware status under the study's matching, and the reference lesions per image.

    Matching is per image, so the AP of any set of images (a subgroup) follows from these
    flags without matching again (``study.metrics.subgroup_ap``).

    Attributes
    ----------
    image_ids : int array (n_images,)
        The evaluated images, ascending (pycocotools' order).
    classes : list of str
        The evaluated classes (indices of ``dt_cls`` and the columns of ``lesions``).
    iou_threshold : float
        The matching IoU (the study's AP threshold).
    match_rule : str
        ``iou`` or ``center_distance <= r px``, as in ``DetectionResult.match_rule``.
    dt_img, dt_cls : int arrays (n_det,)
        Image index (into ``image_ids``) and class index of each kept detection.
    dt_score : float array (n_det,)
    dt_tie : int array (n_det,)
        Secondary sort key for equal scores: image order, then input order (as pycocotools).
    dt_tp, dt_fp : bool arrays (n_det,)
        Matched to a same-class reference lesion / not matched (a detection ignored by a
        crowd region is neither).
    lesions : int array (n_images, n_classes)
        Reference lesions (not crowd) per image and class.
    """

    image_ids: np.ndarray
    classes: list[str]
    iou_threshold: float
    match_rule: str
    dt_img: np.ndarray
    dt_cls: np.ndarray
    dt_score: np.ndarray
    dt_tie: np.ndarray
    dt_tp: np.ndarray
    dt_fp: np.ndarray
    lesions: np.ndarray


def detection_flags(ground_truth: dict, detections: list[dict], *, image_ids: Sequence[int] | None = None,
                    validate: bool = True, raw: RawCoco | None = None, **options: Any) -> DetectionFlags:
    """Per-detection TP/FP flags and per-image reference lesions, matched exactly as :func:`evaluate_detection`.

    Parameters
    ----------
    ground_truth, detections :
        COCO instances and COCO results, as for :func:`evaluate_detection`.
    image_ids : sequence of int, optional
        Evaluate only these images (e.g. the included cases).
    validate : bool
        Validate the inputs (skip only when they were validated already).
    raw : RawCoco, optional
        The inputs' columns when they were already read and checked
        (:func:`study.metrics.coco_columns.load_coco_columns`), as for :func:`evaluate_detection`.
    **options :
        The keyword options of :func:`evaluate_detection` (``DetectionOptions.arguments()``);
        those about matching (``classes``, ``iou_threshold``, ``max_detections``,
        ``polygon_classes``, ``match_rule``, ``center_distance_px``) decide the flags, the
        others are validated and unused.

    Returns
    -------
    DetectionFlags
        The class-aware greedy matching of COCO (``COCOeval.evaluateImg``: by descending
        score, each detection to the unmatched lesion of highest IoU >= the threshold), the
        matching whose flags give the study's AP (``study.metrics.average_precision``).
    """
    a = _arguments(**options)
    if raw is None:
        raw = check_coco_pair(ground_truth, detections) if validate else None
    arr = to_arrays(ground_truth, detections, classes=list(a.classes) if a.classes is not None else None,
                    image_ids=image_ids, max_detections=a.max_detections, raw=raw)
    mt = _match(arr, a.model_copy(update={"coco_backend": "pycocotools"}))  # no COCO summary pairs needed
    real = ~arr.gt_crowd
    lesions = np.zeros((len(arr.image_ids), len(arr.classes)), np.int64)
    np.add.at(lesions, (arr.gt_img[real], arr.gt_cls[real]), 1)
    return DetectionFlags(
        image_ids=np.asarray(arr.image_ids), classes=list(arr.classes), iou_threshold=a.iou_threshold,
        match_rule=a.match_rule if a.match_rule == "iou" else f"center_distance <= {a.center_distance_px} px",
        dt_img=np.asarray(arr.dt_img), dt_cls=np.asarray(arr.dt_cls), dt_score=np.asarray(arr.dt_score, float),
        dt_tie=np.asarray(arr.dt_img * (len(arr.dt_order) + 1) + arr.dt_order),
        dt_tp=np.asarray(mt.by_class.tp, bool), dt_fp=np.asarray(mt.by_class.fp, bool), lesions=lesions)
