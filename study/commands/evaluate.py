"""``study evaluate {detection,agreement,mrmc}``: one metric family on files, outside a study."""

from __future__ import annotations

import importlib

_KINDS = ["detection", "agreement", "mrmc"]


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="compute one family of metrics from files",
                              description=__doc__)
    sub = p.add_subparsers(dest="what", metavar="WHAT", required=True, parser_class=type(p))
    for kind in _KINDS:
        try:
            mod = importlib.import_module(f"study.commands.evaluate_{kind}")
        except ModuleNotFoundError as e:
            if e.name == f"study.commands.evaluate_{kind}":
                continue
            raise
        mod.register(sub)
