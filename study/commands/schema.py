"""``study schema [--out FILE]``: write the JSON Schema of results.json (generated from the models).

Without ``--out`` the schema is printed. The committed copy is ``docs/results.schema.json``;
regenerate it with ``study schema --out docs/results.schema.json`` after changing a model in
``study/results/``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("schema", help="write the JSON Schema of results.json",
                              description=(__doc__ or "").splitlines()[0])
    p.add_argument("--out", metavar="FILE", help="where to write it (default: print it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from study.results.schema import schema_text, write_schema

    if args.out:
        print(write_schema(args.out))
    else:
        sys.stdout.write(schema_text())
    return 0
