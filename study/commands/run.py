"""``study run CONFIG [--cores N] [--profile NAME] [--directory DIR] [--verbose] [-- SNAKEMAKE ARGS]``: run a whole study.

Options before ``--`` are ``study``'s own (an unknown one is an error); only what follows
``--`` is handed to Snakemake, e.g. ``study run study.yaml -- --dry-run``. The console shows a
compact progress display; Snakemake's whole log goes to ``<results_dir>/logs/workflow.log``.
The last line printed is the report's path (printed only when the report exists).

``--profile NAME`` runs with a Snakemake profile: a folder holding ``config.yaml``, given as
a path or as the name of one of the shipped profiles (``profiles/slurm``,
``profiles/kubernetes``; see README "Running on a cluster"). The profile's ``cores`` and
``jobs`` then apply: ``study`` adds ``--cores`` only when ``--cores`` is given.
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="run a study (config YAML) end to end with Snakemake",
                              description=__doc__)
    p.add_argument("config", help="study config YAML (see config/demo.yaml and config/schemas/)")
    p.add_argument("--cores", type=int, default=None,
                   help="cores Snakemake may use (default 2; with --profile, the profile's)")
    p.add_argument("--profile", default=None, metavar="NAME",
                   help="Snakemake profile: a folder with config.yaml, or a shipped one (slurm, kubernetes)")
    p.add_argument("--directory", default=".", help="working directory relative paths are resolved in (default: current)")
    p.add_argument("--verbose", action="store_true", help="show Snakemake's own log instead of the progress display")
    p.set_defaults(func=_run)


def resolve_study(args) -> tuple:
    """(config path, parsed config, working directory) of ``study run`` / ``study unlock``, validated."""
    from pathlib import Path

    from study.config import load_config
    from study.protocol import load_protocol

    workdir = Path(args.directory).resolve()
    config_path = Path(args.config).resolve()
    config = load_config(config_path)
    protocol = Path(config["protocol"])
    load_protocol(protocol if protocol.is_absolute() else workdir / protocol)
    return config_path, config, workdir


def _run(args) -> int:
    from study.errors import StudyError
    from study.workflow import run_snakemake

    from study.workflow import resolve_profile

    if args.cores is not None and args.cores < 1:
        raise StudyError(f"{args.cores}: expected at least 1", file="--cores")
    profile = resolve_profile(args.profile) if args.profile else None
    cores = args.cores if args.cores is not None or profile else 2
    config_path, config, workdir = resolve_study(args)
    pdf = run_snakemake(config_path, config=config, workdir=workdir, cores=cores, profile=profile,
                        extra=list(getattr(args, "passthrough", [])), verbose=args.verbose)
    if pdf is not None:
        print(pdf)
    return 0
