"""``study synth --cases N --out DIR [--seed S]``: build a synthetic acne cohort.

Writes ``DIR/images/``, ``DIR/manifest.csv``, ``DIR/annotations.json`` (COCO),
``DIR/reference.csv`` and ``DIR/readings.csv`` (simulated dermatologists), with
``--annotators N`` also ``DIR/annotators/`` (:mod:`study.synth.annotators`); see :mod:`study.synth`. The same seed gives byte-identical files.
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("synth", help="synthetic cohort (images, COCO ground truth, manifest, reference, readings)",
                              description=__doc__)
    p.add_argument("--cases", type=int, required=True, help="number of images (cases)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--image-size", type=int, default=512, help="square image side in pixels (default 512)")
    p.add_argument("--exclusion-rate", type=float, default=0.15,
                   help="share of cases planted to fail the protocol: blurred, under/overexposed, no face, "
                        "minor, other facial disease (default 0.15)")
    p.add_argument("--patient-correlation", type=float, default=0.0,
                   help="intra-patient correlation in [0, 1): a patient's images share severity and how hard they "
                        "are for the model and the readers (default 0)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes drawing images (default: 2 if the machine has 2+ cores and there are 40+ cases); "
                        "the output does not depend on it")
    p.add_argument("--aided-session", action="store_true",
                   help="also write a model-aided second reading session (readings.csv gains modality and "
                        "confidence columns)")
    p.add_argument("--annotators", type=int, default=0,
                   help="also write N annotators' files (annotators/A1.json, A1-grades.csv, ...) made by perturbing "
                        "the truth, for a reference standard fused from several annotators (default 0: none)")
    p.add_argument("--annotator-noise", type=float, default=0.1,
                   help="probability that an annotator misses a lesion, adds one, or moves a grade by one level; "
                        "box shifts of SD noise/4 of the box size (default 0.1)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import sys

    import os

    from study.synth import make_cohort

    workers = args.workers if args.workers is not None else (2 if (os.cpu_count() or 1) >= 2 and args.cases >= 40 else 1)
    s = make_cohort(args.out, cases=args.cases, seed=args.seed, image_size=args.image_size,
                    exclusion_rate=args.exclusion_rate, workers=workers, aided_session=args.aided_session,
                    patient_correlation=args.patient_correlation)
    if args.annotators:
        from study.synth.annotators import make_annotators

        make_annotators(args.out, n=args.annotators, noise=args.annotator_noise, seed=args.seed)
    grades = ", ".join(f"{k} {v}" for k, v in s["grades"].items())
    excl = sum(s["planted_exclusions"].values())
    print(f"study synth: {s['cases']} cases of {s['patients']} patients in {s['out_dir']} "
          f"(grades {grades}; {excl} planted exclusions; {len(s['readers'])} readers)", file=sys.stderr)
    print(s["out_dir"])
    return 0
