"""Entry point of the ``inception-fer`` command: builds the parser from the subcommand modules.

Each subcommand lives in its own module under ``inception_fer.cli`` and exposes
``register(subparsers) -> None``, which adds a parser whose ``func`` default runs the command and
returns an exit status. Add a subcommand by adding its module name to ``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import InceptionFerError

COMMAND_MODULES: tuple[str, ...] = (
    "models_cmd",
    "summary_cmd",
    "plot_cmd",
    "train_cmd",
    "evaluate_cmd",
    "ensemble_cmd",
    "predict_cmd",
    "explain_cmd",
    "benchmark_cmd",
    "serve_cmd",
    "export_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="inception-fer",
        description="Inception-family networks for facial emotion recognition.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; user errors print one line on stderr and exit with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except InceptionFerError as error:
        print(f"inception-fer: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("inception-fer: interrupted", file=sys.stderr)
        return 130
    return status
