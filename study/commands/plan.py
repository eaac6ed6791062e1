"""``study plan CONFIG [--pilot RESULTS_DIR] --out DIR``: sample size and power of the analysis plan.

For every confirmatory endpoint of the protocol's ``analysis_plan`` (:mod:`study.plan.sample_size`):
the patients and images (and, for MRMC endpoints, the readers x cases combinations) that
give the plan's power at its alpha. Writes ``DIR/sample_size.json`` (the table the report's
sample-size section shows) and ``DIR/power_curve.png``; prints the table.
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("plan", help="sample size and power of the protocol's analysis plan", description=__doc__)
    p.add_argument("config", help="study config YAML")
    p.add_argument("--pilot", default=None, help="results folder of a pilot study (its results.json supplies "
                   "anticipated values and MRMC variance components)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--directory", default=".", help="working directory of the study (default: current)")
    p.set_defaults(func=_plan)


def _plan(args) -> int:
    from pathlib import Path

    from study.commands.run import resolve_study
    from study.errors import StudyError
    from study.io import read_json, write_json
    from study.plan.sample_size import plan_sample_size, power_curve_figure
    from study.protocol import load_protocol

    _, config, workdir = resolve_study(args)
    ppath = Path(config["protocol"])
    loaded = load_protocol(ppath if ppath.is_absolute() else workdir / ppath)
    plan = loaded.protocol.analysis_plan
    if plan is None:
        raise StudyError("the protocol has no analysis_plan: nothing to plan", file=loaded.path)
    pilot = None
    if args.pilot:
        pilot_file = Path(args.pilot) / "results.json"
        if not pilot_file.exists():
            raise StudyError("no results.json in the pilot folder", file=str(pilot_file))
        pilot = read_json(pilot_file)
    result = plan_sample_size(plan, protocol=loaded.protocol.name, pilot=pilot,
                              pilot_path=str(Path(args.pilot) / "results.json") if args.pilot else None)
    out = Path(args.out)
    figure = out / "power_curve.png"
    power_curve_figure(result, figure)
    result = result.model_copy(update={"figure": figure.name})
    write_json(out / "sample_size.json", result)
    for r in result.endpoints:
        if r.readers_cases:
            grid = ", ".join(f"{g.readers} readers x {g.cases} cases" for g in r.readers_cases if g.cases)
            print(f"{r.id} ({r.role}): {grid or r.reason}")
        elif r.patients is not None:
            print(f"{r.id} ({r.role}): {r.n_analysed} {r.n_analysed_unit} -> {r.patients} patients, {r.images} images "
                  f"(power {r.achieved_power:.3f}; {r.method})")
        else:
            print(f"{r.id} ({r.role}): not planned: {r.reason}")
    print(result.statement)
    print(out / "sample_size.json")
    return 0
