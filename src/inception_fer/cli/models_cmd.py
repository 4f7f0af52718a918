"""``inception-fer models``: list the registered networks."""

from __future__ import annotations

import argparse

from ..models import list_models


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the available networks",
        description="List the registered networks (names accepted by --model and create_model).",
    )
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'incep*'")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for name in list_models(args.pattern):
        print(name)
    return 0
