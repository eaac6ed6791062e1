"""``study evaluate mrmc``: multi-reader multi-case analysis (OR / DBM, or U-statistics for any design) of a ratings CSV."""

from __future__ import annotations

import argparse
from typing import get_args

from study.options import MRMCOptions, StatisticsOptions
from study.results.mrmc import AnalysisName

_DEFAULTS, _STATS = MRMCOptions(), StatisticsOptions()


def _choices(field: str) -> list[str]:
    return list(get_args(MRMCOptions.model_fields[field].annotation))


def register(evaluate_subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``mrmc`` parser to the ``study evaluate`` group."""
    p = evaluate_subparsers.add_parser(
        "mrmc", help="MRMC analysis (Obuchowski-Rockette / Dorfman-Berbaum-Metz) of reader ratings",
        description="Multi-reader multi-case analysis of a ratings CSV "
                    "(modality, reader_id, case_id, truth, rating). --method or|dbm (fully crossed data): "
                    "Obuchowski-Rockette with Hillis' ddf or Dorfman-Berbaum-Metz, for random readers and cases "
                    "(rrrc), fixed readers (frrc) and fixed cases (rrfc); with --ai-reader, that reader (the "
                    "algorithm) against the average of the others. --method ustat (any design: fully crossed, "
                    "split-plot, partially crossed): U-statistics as the FDA's iMRMC, reader-averaged AUC (or "
                    "sensitivity / specificity with --threshold) per modality and their differences, unbiased "
                    "and MLE variances, BDG (and, fully crossed, Hillis) degrees of freedom; a patient_id column "
                    "makes patients, not images, the resampled unit.")
    p.add_argument("--ratings", required=True, metavar="R.csv", help="ratings CSV")
    p.add_argument("--method", choices=[*_choices("method"), "ustat"], default=_DEFAULTS.method,
                   help=f"analysis method (default: {_DEFAULTS.method}; ustat: U-statistics, any design)")
    p.add_argument("--analysis", choices=list(get_args(AnalysisName)), default=None,
                   help="the generalisation to report (default: all three, headline rrrc)")
    p.add_argument("--covariance", choices=_choices("covariance"), default=_DEFAULTS.covariance,
                   help=f"OR error-covariance estimate (default: {_DEFAULTS.covariance}; DBM needs jackknife)")
    p.add_argument("--ai-reader", default=None, metavar="ID",
                   help="reader_id of the algorithm to compare with the average of the other readers")
    p.add_argument("--confidence", type=float, default=_STATS.confidence,
                   help=f"confidence level (default: {_STATS.confidence})")
    p.add_argument("--fom", choices=_choices("fom"), default=_DEFAULTS.fom,
                   help=f"figure of merit (default: {_DEFAULTS.fom}; wilcoxon = empirical AUC)")
    p.add_argument("--threshold", type=float, default=None,
                   help="cut point for binary figures of merit: rating >= threshold is positive")
    p.add_argument("--bootstrap-replicates", type=int, default=_STATS.n_bootstrap, help="for --covariance bootstrap")
    p.add_argument("--seed", type=int, default=_STATS.seed, help="for --covariance bootstrap")
    p.add_argument("--no-roc", action="store_true", help="leave the per-reader empirical ROC curves out")
    p.add_argument("--out", required=True, metavar="OUT.json", help="output JSON (written atomically)")
    p.set_defaults(func=_run)


_USTAT_FOM = {"wilcoxon": "auc", "sensitivity": "sensitivity", "specificity": "specificity"}


def _run_ustat(args: argparse.Namespace) -> int:
    from study.errors import Problem, StudyError
    from study.io import sha256_file, write_json
    from study.metrics.mrmc import load_mrmc_ratings
    from study.metrics.mrmc.ustat import analyze_ustat
    from study.results.mrmc import FileRef, MRMCInputs, UStatCommandOutput

    if args.fom not in _USTAT_FOM:
        raise StudyError(Problem("--fom", "", f"{args.fom!r} with --method ustat; expected one of {list(_USTAT_FOM)}"))
    flags = [f for f, v in (("--ai-reader", args.ai_reader), ("--analysis", args.analysis)) if v is not None]
    if args.covariance != _DEFAULTS.covariance:
        flags.append("--covariance")
    if flags:
        raise StudyError(Problem(flags[0], "", f"{', '.join(flags)} do(es) not apply to --method ustat (the U-statistic "
                                               "analysis has its own variance; compare an algorithm as a modality)"))
    ratings = load_mrmc_ratings(args.ratings)
    result = analyze_ustat(ratings, fom=_USTAT_FOM[args.fom], threshold=args.threshold, confidence=args.confidence,
                           source=str(args.ratings))
    output = UStatCommandOutput(**dict(result), input=MRMCInputs(ratings=FileRef(path=str(args.ratings),
                                                                                 sha256=sha256_file(args.ratings))))
    write_json(args.out, output)
    for d in result.differences[:1]:
        e = d.unbiased
        if e.p_value is not None and e.df is not None:
            print(f"USTAT {d.comparison}: {e.estimate:.4g} (BDG df {e.df:.3g}), p = {e.p_value:.4g}; wrote {args.out}")
            return 0
    print(f"wrote {args.out}")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.method == "ustat":
        return _run_ustat(args)
    from study.io import sha256_file, write_json
    from study.metrics.mrmc import analyze_mrmc, empirical_roc, load_mrmc_ratings
    from study.metrics.mrmc.settings import resolve_options
    from study.results.mrmc import FileRef, MRMCCommandOutput, MRMCInputs, RocCurve

    # the same option types as the workflow step; errors name this command's flags
    options = resolve_options(MRMCOptions(), method=args.method, analysis=args.analysis, covariance=args.covariance,
                              confidence=args.confidence, fom=args.fom, threshold=args.threshold,
                              n_bootstrap=args.bootstrap_replicates, seed=args.seed)
    ratings = load_mrmc_ratings(args.ratings)
    result = analyze_mrmc(ratings, options=options, ai_reader=args.ai_reader, source=str(args.ratings))
    roc: dict[str, dict[str, RocCurve]] | None = None
    if not args.no_roc:
        roc = {}
        for (m, rd), g in ratings.groupby(["modality", "reader_id"], sort=False):
            roc.setdefault(str(m), {})[str(rd)] = empirical_roc(g["truth"].to_numpy(), g["rating"].to_numpy())
    output = MRMCCommandOutput(**dict(result), roc=roc,
                               input=MRMCInputs(ratings=FileRef(path=str(args.ratings),
                                                                sha256=sha256_file(args.ratings))))
    write_json(args.out, output)
    head = result.test or (result.differences[0] if result.differences else None)
    if head is not None and head.statistic is not None and head.p_value is not None:
        print(f"{result.method.upper()} {result.analysis.upper()}: "
              f"{head.statistic_name} = {head.statistic:.4g}, p = {head.p_value:.4g}; wrote {args.out}")
    else:
        print(f"wrote {args.out}")
    return 0
