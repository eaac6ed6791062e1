"""``study lock CONFIG [--directory DIR]``: lock the analysis plan before unblinding.

Writes ``<results_dir>/plan-lock.json`` (:mod:`study.plan.lock`): the time, the sha256 of the
protocol and of its analysis plan, of each model's files, the git commit, and the reference
and readings files by hash or as "not yet present". Refuses to replace an existing lock.
Every later ``study run`` reports the plan as locked, or a DEVIATION with the changed keys.
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("lock", help="lock the protocol's analysis plan before the reference and readings "
                              "are unblinded", description=__doc__)
    p.add_argument("config", help="study config YAML")
    p.add_argument("--directory", default=".", help="working directory of the study (default: current)")
    p.set_defaults(func=_lock)


def _lock(args) -> int:
    from study.commands.run import resolve_study
    from study.plan.lock import write_lock

    _, config, workdir = resolve_study(args)
    path, record = write_lock(config, workdir=workdir)
    print(f"analysis plan locked on {record.locked_at}: protocol sha256 {record.protocol_sha256}, "
          f"plan sha256 {record.plan_sha256}")
    for role, value in record.inputs.items():
        print(f"  {role}: {value}")
    print(path)
    return 0
