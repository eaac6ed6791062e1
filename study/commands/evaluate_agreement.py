"""``study evaluate agreement``: grade agreement of models and readers with the reference."""

from __future__ import annotations


def register(evaluate_subparsers) -> None:
    """Add the ``agreement`` parser to the ``study evaluate`` group."""
    p = evaluate_subparsers.add_parser(
        "agreement", help="severity-grade agreement of models and readers with the reference",
        description="Per rater (each model, each reader) against the reference grade: confusion matrix, "
                    "accuracy, Cohen's kappa (unweighted, linear, quadratic; ASE of Fleiss, Cohen & Everitt "
                    "1969), per-grade sensitivity / specificity / PPV / NPV / F1, direction of errors; reader "
                    "groups; pairwise and Fleiss' kappa, Krippendorff's ordinal alpha; model-minus-reader "
                    "differences with patient-bootstrap intervals and McNemar's exact test; subgroups.")
    p.add_argument("--reference", required=True, metavar="REF.csv", help="reference CSV: case_id, grade")
    p.add_argument("--readings", required=True, metavar="READ.csv",
                   help="readings CSV: reader_id, case_id, grade [, reader_group]")
    lv = p.add_mutually_exclusive_group(required=True)
    lv.add_argument("--protocol", metavar="P.yaml",
                    help="protocol: levels, letter aliases, subgroups and statistics settings")
    lv.add_argument("--levels", metavar="A,B,C", help="ordered grade levels, least to most severe")
    p.add_argument("--model-grades", action="append", default=[], metavar="ID=GRADES.csv",
                   help="a model's grades (CSV: case_id, grade); repeat for several models")
    p.add_argument("--manifest", metavar="MANIFEST.csv",
                   help="case_id, patient_id [, covariates]: the bootstrap resamples patients, and the "
                        "protocol's subgroups (or --subgroups) come from its columns; without it every "
                        "case is its own patient")
    p.add_argument("--subgroups", metavar="COL,COL", default=None,
                   help="manifest columns for subgroup analyses (default: the protocol's subgroups "
                        "found in the manifest)")
    p.add_argument("--confidence", type=float, default=None, help="confidence level (default: protocol or 0.95)")
    p.add_argument("--bootstrap-replicates", type=int, default=None,
                   help="patient-bootstrap replicates (default: protocol or 2000)")
    p.add_argument("--seed", type=int, default=None, help="bootstrap seed (default: protocol or 20261121)")
    p.add_argument("--binomial-interval", choices=["wilson", "clopper_pearson"], default=None,
                   help="interval for proportions (default: protocol or wilson)")
    p.add_argument("--out", required=True, metavar="OUT.json", help="output JSON (written atomically)")
    p.set_defaults(func=_run)


#: option name (as study.options.override reports it) -> the flag of this command
_FLAGS = {"--n-bootstrap": "--bootstrap-replicates"}


def _read_model_grades(spec: str, *, levels, aliases, problems):
    import pandas as pd

    from study.cohort import map_grade, read_csv_table
    from study.errors import Problem

    if "=" not in spec or not spec.split("=", 1)[0] or not spec.split("=", 1)[1]:
        problems.append(Problem("--model-grades", "", f"{spec!r}: expected ID=GRADES.csv"))
        return None
    mid, path = spec.split("=", 1)
    df, probs = read_csv_table(path, required=["case_id", "grade"])
    problems += probs
    if df is None:
        return None
    grades, seen = [], {}
    for rec in df.to_dict("records"):
        row = f"row {rec['_row']}"
        if rec["case_id"] in seen:
            problems.append(Problem(path, row, f"duplicate case_id {rec['case_id']!r} (first at row "
                                    f"{seen[rec['case_id']]}); expected one grade per case"))
        seen.setdefault(rec["case_id"], rec["_row"])
        g, prob = map_grade(rec["grade"], levels=levels, aliases=aliases, file=path,
                            where=f"{row}, case {rec['case_id']!r}")
        grades.append(g)
        if prob:
            problems.append(prob)
    return pd.DataFrame({"rater_id": mid, "case_id": df["case_id"].astype(str), "grade": grades,
                         "rater_kind": "model", "reader_group": None})


def _run(args) -> int:
    import pandas as pd

    from study.cohort import load_reference, read_csv_table
    from study.errors import Problem, StudyError, raise_if
    from study.io import sha256_file, write_json
    from study.metrics.agreement import evaluate_agreement
    from study.options import AgreementOptions, override
    from study.protocol import load_protocol
    from study.readings import load_readings
    from study.results.agreement import (
        InputFile,
        ProtocolReference,
        StandaloneAgreement,
    )

    problems: list[Problem] = []
    subgroups: list[str] = []
    protocol_info = None
    if args.protocol:
        loaded = load_protocol(args.protocol)
        proto = loaded.protocol
        levels, aliases = proto.levels, dict(proto.grading.letter_aliases or {})
        options = AgreementOptions.from_protocol(proto)
        subgroups = list(proto.subgroups)
        protocol_info = ProtocolReference(name=proto.name, version=proto.version, path=loaded.path,
                                          sha256=loaded.sha256)
    else:
        levels = [x.strip() for x in args.levels.split(",")]
        aliases = {}
        if len(levels) < 2 or any(not x for x in levels) or len(set(levels)) != len(levels):
            raise StudyError(Problem("--levels", "", f"{args.levels!r}: expected at least two distinct, "
                                     "comma-separated levels, least to most severe"))
        options = AgreementOptions(levels=tuple(levels))
    try:
        options = override(options, confidence=args.confidence, n_bootstrap=args.bootstrap_replicates,
                           seed=args.seed, binomial_interval=args.binomial_interval)
    except StudyError as e:  # name the flags as this command spells them
        problems += [Problem(p.file, _FLAGS.get(p.where, p.where), p.message) for p in e.problems]

    def collect(fn, *a, **k):
        try:
            return fn(*a, **k)
        except StudyError as e:
            problems.extend(e.problems)
            return None

    reference = collect(load_reference, args.reference, levels=levels, aliases=aliases)
    readings = collect(load_readings, args.readings, levels=levels, aliases=aliases,
                       cases=None if reference is None else reference["case_id"])
    if readings is not None:  # as in a study: unaided, assessable readings only (study.readings.analysable_readings)
        from study.readings import analysable_readings

        readings = analysable_readings(readings)
    models = [_read_model_grades(s, levels=levels, aliases=aliases, problems=problems) for s in args.model_grades]
    patient_of, covariates = None, None
    if args.manifest:
        man, probs = read_csv_table(args.manifest, required=["case_id", "patient_id"])
        problems += probs
        if man is not None:
            empty = man[(man["patient_id"] == "") | (man["case_id"] == "")]
            for r in empty["_row"].tolist()[:20]:
                problems.append(Problem(args.manifest, f"row {r}", "case_id or patient_id is empty"))
            dup = man["case_id"][man["case_id"].duplicated()]
            for c in dup.unique()[:20]:
                problems.append(Problem(args.manifest, f"case_id {c!r}", "case appears more than once"))
            patient_of = dict(zip(man["case_id"], man["patient_id"]))
            covariates = man.drop(columns=["_row"]).replace("", None)
            if args.subgroups is not None:
                subgroups = [s.strip() for s in args.subgroups.split(",") if s.strip()]
                for s in subgroups:
                    if s not in man.columns:
                        problems.append(Problem(args.manifest, "line 1 (header)", f"no column {s!r} for --subgroups"))
            else:
                subgroups = [s for s in subgroups if s in man.columns]
            if reference is not None:
                missing = sorted(set(reference["case_id"]) - set(man["case_id"]))
                if missing:
                    problems.append(Problem(args.manifest, "case_id", f"{len(missing)} reference case(s) not in the "
                                            f"manifest, e.g. {missing[:5]}"))
    elif args.subgroups:
        problems.append(Problem("--subgroups", "", "subgroups need --manifest (the covariate columns)"))
    else:
        subgroups = []
    if reference is not None:
        known = set(reference["case_id"])
        for spec, m in zip(args.model_grades, models):
            if m is not None:
                bad = sorted(set(m["case_id"]) - known)
                if bad:
                    problems.append(Problem(spec.split("=", 1)[1], "case_id", f"{len(bad)} grade(s) of cases not "
                                            f"in the reference, e.g. {bad[:5]}"))
    raise_if(problems)

    frames = [m for m in models if m is not None]
    if len(readings):
        grp = readings["reader_group"].where(readings["reader_group"] != "", None)
        frames.append(pd.DataFrame({"rater_id": readings["reader_id"], "case_id": readings["case_id"],
                                    "grade": readings["grade"], "rater_kind": "reader", "reader_group": grp}))
    if not frames:
        raise StudyError(Problem(args.readings, "", "no readings and no --model-grades: nothing to evaluate"))
    ratings = pd.concat(frames, ignore_index=True)
    options = override(options, subgroups=tuple(subgroups))
    result = evaluate_agreement(reference, ratings, options=options, patient_of=patient_of, covariates=covariates)
    inputs = {"reference": args.reference, "readings": args.readings}
    if args.manifest:
        inputs["manifest"] = args.manifest
    for spec in args.model_grades:
        mid, path = spec.split("=", 1)
        inputs[f"model_grades:{mid}"] = path
    written = StandaloneAgreement(**dict(result), protocol=protocol_info,
                                  input={k: InputFile(path=str(v), sha256=sha256_file(v)) for k, v in inputs.items()})
    write_json(args.out, written)
    print(f"{len(written.raters)} rater(s) on {written.settings.n_cases} cases; wrote {args.out}")
    return 0
