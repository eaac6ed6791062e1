"""The ``coco`` block of the detection results: COCO summary metrics, by one of three backends.

- ``native`` (:func:`native_coco`): ``study.metrics.coco_native``, a vectorised equivalent
  of pycocotools' COCOeval for boxes (equal to it to 1e-12 in ``tests/test_detection_coco.py``),
  which also gives COCO AP per class;
- ``faster-coco-eval`` or ``pycocotools`` (:func:`coco_summary`): the libraries themselves.

Every backend runs with ``maxDets = [1, 10, max_detections]`` (acne images can carry several
hundred lesions: detections are never capped at COCO's default 100) and is summarised the
same way, by :func:`study.metrics.coco_native.summarize` (pycocotools' ``summarize`` looks for
``maxDets=100`` and returns -1 otherwise).

Lin T-Y et al. (2014), Microsoft COCO: Common Objects in Context, ECCV.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from study.metrics.coco_input import CocoArrays
from study.metrics.coco_native import coco_evaluate, summarize
from study.results.detection import COCO_STATS, ClassCoco, CocoSummary

CocoBackend = Literal["native", "faster-coco-eval", "pycocotools"]

NATIVE_NOTE = ("vectorised equivalent of pycocotools COCOeval (bbox) evaluate/accumulate/summarize; "
               "equal to pycocotools to 1e-12 in tests/test_detection_coco.py")


def _max_dets(max_detections: int) -> list[int]:
    return [1, 10, int(max_detections)]


def coco_summary(ground_truth: dict[str, Any], detections: list[dict[str, Any]], *, category_ids: Sequence[int],
                 image_ids: Sequence[int], max_detections: int, backend: CocoBackend = "faster-coco-eval",
                 iou_type: str = "bbox") -> CocoSummary:
    """COCO summary metrics from faster-coco-eval or pycocotools, ``maxDets=[1, 10, max_detections]``.

    The summary numbers are read from the library's ``eval["precision"]`` / ``eval["recall"]``
    arrays exactly as pycocotools' ``summarize`` does (mean over entries > -1). Without any
    detection of the evaluated classes every number is ``None`` and ``reason`` says why.
    """
    if backend == "faster-coco-eval":
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
        from faster_coco_eval import __version__ as version
    elif backend == "pycocotools":
        from importlib.metadata import version as _v

        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        version = _v("pycocotools")
    else:
        raise ValueError(f"unknown COCO backend {backend!r}")
    md = _max_dets(max_detections)
    wanted = set(category_ids)
    dets = [d for d in detections if d["category_id"] in wanted]
    if not dets:
        return CocoSummary(backend=backend, version=version, iou_type=iou_type, max_dets=md,
                           **dict.fromkeys(COCO_STATS), reason="no detections")
    with contextlib.redirect_stdout(io.StringIO()):
        if backend == "pycocotools":
            gt = COCO()
            gt.dataset = _copy_gt(ground_truth)
            gt.createIndex()
        else:
            gt = COCO(_copy_gt(ground_truth))
        dt = gt.loadRes([dict(d) for d in dets])  # the libraries add keys to each dict
        ev = COCOeval(gt, dt, iou_type)
        ev.params.imgIds = sorted(int(i) for i in image_ids)
        ev.params.catIds = sorted(int(c) for c in category_ids)
        ev.params.maxDets = md
        ev.evaluate()
        ev.accumulate()
    stats = summarize(np.asarray(ev.eval["precision"]), np.asarray(ev.eval["recall"]), md)
    return CocoSummary(backend=backend, version=version, iou_type=iou_type, max_dets=md, **stats)


def native_coco(arr: CocoArrays, pairs: tuple[np.ndarray, np.ndarray, np.ndarray], *,
                max_detections: int) -> tuple[CocoSummary, dict[str, ClassCoco]]:
    """The COCO summary and the COCO AP of each class by the native evaluator.

    Parameters
    ----------
    arr : CocoArrays
        The evaluated ground truth and detections (detections truncated to ``max_detections``).
    pairs : (d, g, iou)
        Every same-image, same-class pair with box IoU >= 0.5 (crowd: intersection over the
        detection's area).
    """
    from study import __version__

    md = _max_dets(max_detections)
    res = coco_evaluate(n_classes=len(arr.classes), gt_img=arr.gt_img, gt_cls=arr.gt_cls, gt_area=arr.gt_area,
                        gt_crowd=arr.gt_crowd, dt_img=arr.dt_img, dt_cls=arr.dt_cls,
                        dt_area=arr.dt_box[:, 2] * arr.dt_box[:, 3], dt_score=arr.dt_score, dt_order=arr.dt_order,
                        pair_d=pairs[0], pair_g=pairs[1], pair_iou=pairs[2], max_dets=md)
    per_class = {}
    for k, name in enumerate(arr.classes):
        pk = res["precision"][:, :, k, 0, -1]
        per_class[name] = ClassCoco(AP=_mean_defined(pk), AP50=_mean_defined(pk[0]), AP75=_mean_defined(pk[5]))
    summary = CocoSummary(backend="native", version=__version__, iou_type="bbox", max_dets=md, **res["stats"],
                          note=NATIVE_NOTE)
    return summary, per_class


def _mean_defined(p: np.ndarray) -> float | None:
    """Mean of the precisions that are defined (> -1), ``None`` when none is."""
    ok = p > -1
    return float(p[ok].mean()) if ok.any() else None


def _copy_gt(gt: dict[str, Any]) -> dict[str, Any]:
    """Copy deep enough that the COCO libraries (which add keys to annotations) leave ours alone."""
    out = dict(gt)
    out["annotations"] = [dict(a) for a in gt["annotations"]]
    out["images"] = [dict(i) for i in gt["images"]]
    out["categories"] = [dict(c) for c in gt["categories"]]
    return out
