"""``study step NAME key=value ...``: run one workflow step on explicit files.

This is what each Snakemake rule calls (see ``workflow/rules/``); it is also how to re-run
one step alone from its inputs. ``study step --list`` shows the steps and their arguments.
An empty value (``annotations=``) means "not given". At the end, the step writes its peak
memory and CPU time to standard error (the job's log; :mod:`study.job_usage`).
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("step", help="run one workflow step on explicit files (used by the Snakefile)",
                              description=__doc__)
    p.add_argument("name", nargs="?", help="step name")
    p.add_argument("assignments", nargs="*", metavar="key=value")
    p.add_argument("--list", action="store_true", help="list the steps and their arguments")
    p.set_defaults(func=_step)


def _step(args) -> int:
    import inspect
    import sys
    import time

    from study import steps
    from study.errors import StudyError
    from study.job_usage import job_usage, usage_line

    if args.list or not args.name:
        for name, fn in sorted(steps.STEPS.items()):
            params = ", ".join(inspect.signature(fn).parameters)
            print(f"{name}: {params}")
        return 0
    fn = steps.STEPS.get(args.name)
    if fn is None:
        raise StudyError(f"unknown step {args.name!r}; known: {', '.join(sorted(steps.STEPS))}", file="study step")
    kwargs: dict[str, str | None] = {}
    for a in args.assignments:
        if "=" not in a:
            raise StudyError(f"expected key=value, got {a!r}", file=f"study step {args.name}")
        k, v = a.split("=", 1)
        kwargs[k] = v if v != "" else None
    expected = set(inspect.signature(fn).parameters)
    unknown = sorted(set(kwargs) - expected)
    missing = sorted(k for k, prm in inspect.signature(fn).parameters.items()
                     if prm.default is inspect.Parameter.empty and k not in kwargs)
    if unknown or missing:
        raise StudyError(f"unknown arguments {unknown}, missing {missing}; expected {sorted(expected)}",
                         file=f"study step {args.name}")
    t0 = time.perf_counter()
    fn(**kwargs)
    print(usage_line(job_usage(args.name, wall_s=time.perf_counter() - t0)), file=sys.stderr, flush=True)
    return 0
