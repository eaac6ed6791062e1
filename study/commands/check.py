"""``study check CONFIG``: validate the config, protocol, model specs and every input; list all problems."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("check", help="validate a study config and all its inputs (lists every problem)",
                              description=__doc__)
    p.add_argument("config", help="study config YAML")
    p.add_argument("--directory", default=".",
                   help="folder relative paths in the config are resolved in (default: current)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from pathlib import Path

    from study.check import check_study
    from study.errors import StudyError

    problems, summary = check_study(Path(args.config), workdir=Path(args.directory).resolve())
    if problems:
        raise StudyError(problems)
    parts = [f"{k.replace('_', ' ')}: {v}" for k, v in summary.items() if v is not None]
    print(f"study check: OK ({'; '.join(parts)})")
    return 0
