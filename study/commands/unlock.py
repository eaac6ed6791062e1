"""``study unlock CONFIG [--directory DIR]``: remove the lock a crashed run left behind.

``study run`` clears such a lock by itself when no run is active; this command does it
explicitly (Snakemake's ``--unlock``) and refuses while a ``study run`` is running there.
It prints no report path.
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("unlock", help="remove the lock a crashed `study run` left behind",
                              description=__doc__)
    p.add_argument("config", help="study config YAML")
    p.add_argument("--directory", default=".", help="working directory of the run (default: current)")
    p.set_defaults(func=_unlock)


def _unlock(args) -> int:
    from study.commands.run import resolve_study
    from study.workflow import run_lock, stale_snakemake_locks, unlock

    config_path, _, workdir = resolve_study(args)
    with run_lock(workdir):
        n = len(stale_snakemake_locks(workdir))
        unlock(config_path, workdir=workdir)
    print(f"unlocked {workdir} ({n} lock file{'s' if n != 1 else ''} removed)" if n else
          f"{workdir} was not locked")
    return 0
