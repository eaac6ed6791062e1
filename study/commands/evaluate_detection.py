"""``study evaluate detection``: lesion-level detection metrics from a COCO pair.

    study evaluate detection --ground-truth GT.json --detections DT.json [--protocol P] --out OUT.json

The protocol (optional) supplies the classes, polygon classes, IoU and operating
thresholds, maximum detections per image, FROC rates, matching rule and the bootstrap /
confidence settings (``study.options.DetectionOptions.from_protocol``); without it the
defaults of ``DetectionOptions`` apply and every ground-truth category is evaluated. Each image is
its own bootstrap unit here (a study run resamples patients).
"""

from __future__ import annotations


def register(evaluate_subparsers) -> None:
    p = evaluate_subparsers.add_parser(
        "detection", help="AP, precision/recall/F1, FROC, presence, COCO summary from COCO files",
        description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--ground-truth", required=True, metavar="GT.json", help="COCO instances JSON")
    p.add_argument("--detections", required=True, metavar="DT.json", help="COCO results JSON")
    p.add_argument("--protocol", metavar="P", help="protocol YAML (thresholds, classes, statistics)")
    p.add_argument("--out", required=True, metavar="OUT.json", help="metrics JSON to write")
    p.add_argument("--coco-backend", choices=["native", "faster-coco-eval", "pycocotools"], default="native",
                   help="what computes the COCO summary: native (vectorised equivalent of pycocotools, "
                        "tested equal to it; default) or one of the libraries, run with maxDets raised")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from study.io import write_json
    from study.metrics.detection import evaluate_detection, load_coco_pair
    from study.options import DetectionOptions
    from study.protocol import load_protocol

    options = DetectionOptions.from_protocol(load_protocol(args.protocol).protocol) if args.protocol \
        else DetectionOptions()
    gt, dt = load_coco_pair(args.ground_truth, args.detections)
    result = evaluate_detection(gt, dt, **options.arguments(), coco_backend=args.coco_backend, validate=False)
    write_json(args.out, result)
    c = result.coco
    print(f"{len(result.classes)} classes, {result.n_images} images: mAP@{options.iou_threshold:g} = "
          f"{result.map}, COCO AP = {c.AP} ({c.backend}); wrote {args.out}")
    return 0
