"""``study run CONFIG [--cores N] [-- SNAKEMAKE ARGS]``: run a whole study with Snakemake."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="run a study (config YAML) end to end with Snakemake",
                              description=__doc__)
    p.add_argument("config", help="study config YAML (see config/demo.yaml and config/schemas/)")
    p.add_argument("--cores", type=int, default=2, help="cores Snakemake may use (default 2)")
    p.add_argument("--directory", default=".", help="working directory relative paths are resolved in (default: current)")
    p.add_argument("snakemake_args", nargs=argparse.REMAINDER,
                   help="after --: extra Snakemake arguments, e.g. -- --dry-run")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from pathlib import Path

    from study.config import load_config
    from study.protocol import load_protocol
    from study.workflow import run_snakemake

    workdir = Path(args.directory).resolve()
    config_path = Path(args.config).resolve()
    config = load_config(config_path)
    protocol = Path(config["protocol"])
    load_protocol(protocol if protocol.is_absolute() else workdir / protocol)
    extra = [a for a in args.snakemake_args if a != "--"]
    pdf = run_snakemake(config_path, config=config, workdir=workdir, cores=args.cores, extra=extra)
    if pdf is not None:
        print(pdf)
    return 0
