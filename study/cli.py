"""The ``study`` command.

Each subcommand lives in ``study/commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func(args) -> int``. Command modules import heavy
libraries (torch, snakemake, weasyprint) inside ``func`` only, so ``study --help`` is fast.

User errors (:class:`study.errors.StudyError`) end with exit status 2 and a message on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from study import __version__
from study.errors import StudyError

#: subcommand modules, in the order ``study --help`` lists them
COMMANDS = ["demo", "run", "unlock", "lock", "plan", "check", "synth", "convert", "predict", "evaluate", "report",
            "schema", "readers", "step"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: exit 2 with usage, as usual
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="study", description="acne-study: a clinical validation study harness for AI acne-lesion "
                     "detectors. `study demo` runs the demo study; `study run CONFIG` runs yours.")
    parser.add_argument("--version", action="version", version=f"acne-study {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"study.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"study.commands.{name}":
                continue  # a command not written yet is simply absent from the CLI
            raise
        mod.register(sub)
    return parser


#: commands that hand what follows ``--`` to Snakemake (nothing else is passed on)
PASSTHROUGH = {"run"}


def split_passthrough(argv: list[str]) -> tuple[list[str], list[str]]:
    """``study run CONFIG [OPTIONS] -- SNAKEMAKE ARGS`` -> (our arguments, Snakemake's).

    Only what follows the first ``--`` goes to Snakemake; everything before it is parsed
    by ``study`` itself, so an unknown option is an error, not a Snakemake argument.
    """
    if "--" in argv and any(a in PASSTHROUGH for a in argv[: argv.index("--")]):
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


#: problems of one cause (same file, same message but for quoted values and numbers) shown in full
SHOWN_PER_CAUSE = 5


def problem_lines(problems: list) -> list[str]:
    """The problems as lines, at most :data:`SHOWN_PER_CAUSE` per cause, then how many more there are.

    A structurally broken input (a wrong column, a file of another study) can give hundreds of
    problems of one cause; the first few say what is wrong, and the count says how often.
    """
    import re

    def cause(p) -> tuple[str, str]:
        return p.file, re.sub(r"'[^']*'|\"[^\"]*\"|\d+(\.\d+)?", "_", p.message)

    seen: dict[tuple[str, str], int] = {}
    for p in problems:
        seen[cause(p)] = seen.get(cause(p), 0) + 1
    lines, shown = [], dict.fromkeys(seen, 0)
    for p in problems:
        c = cause(p)
        shown[c] += 1
        if shown[c] <= SHOWN_PER_CAUSE:
            lines.append(f"  - {p}")
        if shown[c] == SHOWN_PER_CAUSE and seen[c] > SHOWN_PER_CAUSE:
            lines.append(f"    ... and {seen[c] - SHOWN_PER_CAUSE} more problems like the one above in {p.file}")
    return lines


def main(argv: list[str] | None = None) -> int:
    from study.workflow import Interrupted

    parser = build_parser()
    ours, passthrough = split_passthrough(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(ours)
    args.passthrough = passthrough
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except StudyError as e:
        problems = e.problems
        head = "error:" if len(problems) == 1 else f"{len(problems)} problems:"
        print(f"study {args.command}: {head}", file=sys.stderr)
        for line in problem_lines(problems):
            print(line, file=sys.stderr)
        return 2
    except Interrupted as e:
        return e.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
