"""``study evaluate mrmc``: multi-reader multi-case ROC analysis (OR / DBM) of a ratings CSV."""

from __future__ import annotations


def register(evaluate_subparsers) -> None:
    """Add the ``mrmc`` parser to the ``study evaluate`` group."""
    p = evaluate_subparsers.add_parser(
        "mrmc", help="MRMC analysis (Obuchowski-Rockette / Dorfman-Berbaum-Metz) of reader ratings",
        description="Multi-reader multi-case analysis of a fully crossed ratings CSV "
                    "(modality, reader_id, case_id, truth, rating): Obuchowski-Rockette with Hillis' ddf or "
                    "Dorfman-Berbaum-Metz, for random readers and cases (rrrc), fixed readers (frrc) and "
                    "fixed cases (rrfc); with --ai-reader, that reader (the algorithm) against the average "
                    "of the others.")
    p.add_argument("--ratings", required=True, metavar="R.csv", help="ratings CSV")
    p.add_argument("--method", choices=["or", "dbm"], default="or", help="analysis method (default: or)")
    p.add_argument("--analysis", choices=["rrrc", "frrc", "rrfc"], default=None,
                   help="the generalisation to report (default: all three, headline rrrc)")
    p.add_argument("--covariance", choices=["jackknife", "bootstrap", "delong"], default="jackknife",
                   help="OR error-covariance estimate (default: jackknife; DBM needs jackknife)")
    p.add_argument("--ai-reader", default=None, metavar="ID",
                   help="reader_id of the algorithm to compare with the average of the other readers")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level (default: 0.95)")
    p.add_argument("--fom", choices=["wilcoxon", "sensitivity", "specificity", "accuracy"], default="wilcoxon",
                   help="figure of merit (default: wilcoxon = empirical AUC)")
    p.add_argument("--threshold", type=float, default=None,
                   help="cut point for binary figures of merit: rating >= threshold is positive")
    p.add_argument("--bootstrap-replicates", type=int, default=2000, help="for --covariance bootstrap")
    p.add_argument("--seed", type=int, default=20261121, help="for --covariance bootstrap")
    p.add_argument("--no-roc", action="store_true", help="leave the per-reader empirical ROC curves out")
    p.add_argument("--out", required=True, metavar="OUT.json", help="output JSON (written atomically)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from study.io import sha256_file, write_json
    from study.metrics.mrmc import analyze_mrmc, empirical_roc, load_mrmc_ratings

    ratings = load_mrmc_ratings(args.ratings)
    result = analyze_mrmc(ratings, method=args.method, analysis=args.analysis, covariance=args.covariance,
                          ai_reader=args.ai_reader, confidence=args.confidence, fom=args.fom,
                          threshold=args.threshold, n_bootstrap=args.bootstrap_replicates, seed=args.seed,
                          source=str(args.ratings))
    if not args.no_roc:
        roc: dict = {}
        for (m, rd), g in ratings.groupby(["modality", "reader_id"], sort=False):
            roc.setdefault(str(m), {})[str(rd)] = empirical_roc(g["truth"].to_numpy(), g["rating"].to_numpy())
        result["roc"] = roc
    result["input"] = {"ratings": {"path": str(args.ratings), "sha256": sha256_file(args.ratings)}}
    write_json(args.out, result)
    head = result["test"] or (result["differences"][0] if result["differences"] else None)
    if head is not None:
        print(f"{result['method'].upper()} {result['analysis'].upper()}: "
              f"{head['statistic_name']} = {head['statistic']:.4g}, p = {head['p_value']:.4g}; wrote {args.out}")
    else:
        print(f"wrote {args.out}")
    return 0
