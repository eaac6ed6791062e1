"""Benchmark: our full detection evaluation against pycocotools, measured in one run.

    python bench/bench_detection.py [--images 10000] [--lesions 30] [--classes 4] [--seed 0]

Synthetic data: per image a Poisson(``lesions``) number of lesions (small boxes, the
classes drawn uniformly), detections = jittered copies of about 85% of them plus about 25%
duplicates and false positives (about 40 detections per image), scores from a mixture.

Timed, ours ("full"): ``evaluate_detection`` (validation, matching, AP per class and any
lesion, P/R/F1 with the patient bootstrap, FROC with 2000 bootstrap replicates, presence,
and the COCO AP@[.50:.95] block by faster-coco-eval) + ``evaluate_counting`` at three score
thresholds (including building its tables from the COCO inputs).
Timed, peer: pycocotools ``COCOeval.evaluate()`` + ``accumulate()`` with maxDets raised to
1000 on the same data (index building excluded, which favours the peer).
Printed: the times and the ratio ours / pycocotools (target <= 0.15); ours runs before and
after the peer and the ratio uses the mean, since the load of a shared machine drifts.
Also printed, for information: our COCO block alone against faster-coco-eval's
``evaluate()`` + ``accumulate()``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import time

import numpy as np


def synth(n_images: int, lesions: float, n_classes: int, seed: int):
    rng = np.random.default_rng(seed)
    size = 1024
    images = [{"id": i + 1, "width": size, "height": size, "file_name": f"{i + 1}.jpg"} for i in range(n_images)]
    cats = [{"id": k + 1, "name": f"class{k + 1}"} for k in range(n_classes)]
    n_gt = rng.poisson(lesions, n_images)
    img_of = np.repeat(np.arange(n_images), n_gt)
    m = len(img_of)
    wh = rng.uniform(8, 40, (m, 2))
    xy = rng.uniform(0, size - 40, (m, 2))
    cls = rng.integers(0, n_classes, m)
    gt_box = np.c_[xy, wh].round(2)
    anns = [{"id": j + 1, "image_id": int(img_of[j]) + 1, "category_id": int(cls[j]) + 1,
             "bbox": gt_box[j].tolist(), "area": float(gt_box[j, 2] * gt_box[j, 3]), "iscrowd": 0}
            for j in range(m)]
    # detections
    found = rng.random(m) < 0.85
    src = np.flatnonzero(found)
    dup = src[rng.random(len(src)) < 0.15]
    src = np.r_[src, dup]
    box = gt_box[src] + rng.normal(0, 3, (len(src), 4)) * [1, 1, 0.5, 0.5]
    box[:, 2:] = np.abs(box[:, 2:]) + 1
    d_cls = np.where(rng.random(len(src)) < 0.9, cls[src], rng.integers(0, n_classes, len(src)))
    d_img = img_of[src]
    d_score = np.clip(rng.beta(5, 2, len(src)), 0, 1)
    n_fp = rng.poisson(lesions * 0.2, n_images)
    fp_img = np.repeat(np.arange(n_images), n_fp)
    fp_box = np.c_[rng.uniform(0, size - 40, (len(fp_img), 2)), rng.uniform(8, 40, (len(fp_img), 2))]
    fp_score = rng.beta(2, 5, len(fp_img))
    fp_cls = rng.integers(0, n_classes, len(fp_img))
    b = np.r_[box, fp_box].round(2)
    im = np.r_[d_img, fp_img]
    c = np.r_[d_cls, fp_cls]
    s = np.r_[d_score, fp_score].round(4)
    o = np.lexsort((rng.random(len(im)), im))
    dets = [{"image_id": int(im[j]) + 1, "category_id": int(c[j]) + 1, "bbox": b[j].tolist(), "score": float(s[j])}
            for j in o]
    gt = {"images": images, "annotations": anns, "categories": cats}
    return gt, dets


def ours(gt, dets, n_bootstrap: int):
    import pandas as pd

    from study.metrics.counting import counts_from_coco, detections_frame, evaluate_counting
    from study.metrics.detection import evaluate_detection

    r = evaluate_detection(gt, dets, n_bootstrap=n_bootstrap, seed=1)
    classes = [c["name"] for c in gt["categories"]]
    true_counts = counts_from_coco(gt)
    det = detections_frame(gt, dets)
    from study.options import CountingOptions, StatisticsOptions
    from study.results.counting import CountingResult

    c = evaluate_counting(true_counts, det, options=CountingOptions(
        classes=tuple(classes), thresholds=(0.25, 0.5, 0.75), statistics=StatisticsOptions(seed=0)))
    assert isinstance(c, CountingResult) and isinstance(pd.DataFrame(), pd.DataFrame)
    return r, c


def native_coco_block(gt, dets):
    """Our COCO block alone (arrays, box-IoU pairs, vectorised COCOeval), for the comparison with faster-coco-eval."""
    from study.metrics.coco_input import to_arrays
    from study.metrics.coco_native import coco_evaluate
    from study.metrics.matching import candidate_pairs

    a = to_arrays(gt, dets, classes=None, image_ids=None, max_detections=1000)
    d, g, s = candidate_pairs(a.gt_img, a.gt_box, a.dt_img, a.dt_box, threshold=0.5, gt_crowd=a.gt_crowd)
    same = a.dt_cls[d] == a.gt_cls[g]
    return coco_evaluate(n_classes=len(a.classes), gt_img=a.gt_img, gt_cls=a.gt_cls, gt_area=a.gt_area,
                         gt_crowd=a.gt_crowd, dt_img=a.dt_img, dt_cls=a.dt_cls, dt_area=a.dt_box[:, 2] * a.dt_box[:, 3],
                         dt_score=a.dt_score, dt_order=a.dt_order, pair_d=d[same], pair_g=g[same], pair_iou=s[same],
                         max_dets=(1, 10, 1000))["stats"]


def faster(gt, dets):
    from faster_coco_eval import COCO, COCOeval_faster

    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO(copy.deepcopy(gt))
        d = g.loadRes(copy.deepcopy(dets))
        ev = COCOeval_faster(g, d, "bbox")
        ev.params.maxDets = [1, 10, 1000]
        t0 = time.perf_counter()
        ev.evaluate()
        ev.accumulate()
        t1 = time.perf_counter()
    return t1 - t0


def peer(gt, dets):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = copy.deepcopy(gt)
        g.createIndex()
        d = g.loadRes(copy.deepcopy(dets))
        ev = COCOeval(g, d, "bbox")
        ev.params.maxDets = [1, 10, 1000]
        t0 = time.perf_counter()
        ev.evaluate()
        ev.accumulate()
        t1 = time.perf_counter()
    return t1 - t0, ev


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--lesions", type=float, default=30)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-peer", action="store_true", help="time ours only")
    a = ap.parse_args()
    gt, dets = synth(a.images, a.lesions, a.classes, a.seed)
    # imports outside the timings, for both sides
    import pycocotools.cocoeval  # noqa: F401

    import study.metrics.coco_native  # noqa: F401
    import study.metrics.counting  # noqa: F401
    import study.metrics.detection  # noqa: F401
    print(f"data: {a.images} images, {len(gt['annotations'])} lesions ({len(gt['annotations']) / a.images:.1f}/image), "
          f"{len(dets)} detections ({len(dets) / a.images:.1f}/image), {a.classes} classes")
    t0 = time.perf_counter()
    r, c = ours(gt, dets, a.bootstrap)
    t_ours = time.perf_counter() - t0
    print(f"ours (AP, P/R/F1, FROC {a.bootstrap} bootstrap replicates, presence, counting, COCO block by "
          f"{r.coco.backend}): {t_ours:.2f} s")
    print(f"  any-lesion AP50 {r.any_lesion.ap:.4f}, mAP50 {r.map:.4f}, COCO AP {r.coco.AP:.4f}, "
          f"FROC average {r.froc.average.estimate:.4f}")
    t0 = time.perf_counter()
    stats = native_coco_block(gt, dets)
    t_native = time.perf_counter() - t0
    t_fce = faster(gt, dets)
    print(f"COCO block alone: ours (native, incl. array building) {t_native:.2f} s, AP {stats['AP']:.6f}; "
          f"faster-coco-eval evaluate()+accumulate() {t_fce:.2f} s")
    if a.skip_peer:
        return
    t_peer, ev = peer(gt, dets)
    # ours again after the peer: the machine's load drifts, so the ratio uses the mean of both runs
    t0 = time.perf_counter()
    ours(gt, dets, a.bootstrap)
    t_ours2 = time.perf_counter() - t0
    print(f"ours, second run (after the peer): {t_ours2:.2f} s")
    t_ours = (t_ours + t_ours2) / 2
    pr = ev.eval["precision"][:, :, :, 0, 2]
    print(f"pycocotools evaluate()+accumulate(): {t_peer:.2f} s (AP50 {pr[0][pr[0] > -1].mean():.4f}, "
          f"AP {pr[pr > -1].mean():.6f})")
    print(f"ratio ours (mean of the two runs) / pycocotools = {t_ours / t_peer:.3f} (target <= 0.15)")


if __name__ == "__main__":
    main()
