"""``inception-fer models``: list the registered networks, optionally with their size and cost."""

from __future__ import annotations

import argparse

from ..models import create_model, list_models
from ..summary import count_mult_adds


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the available networks",
        description="List the registered networks (names accepted by --model and create_model).",
    )
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'incep*'")
    parser.add_argument(
        "--details",
        action="store_true",
        help="also build each network (7 classes, 1 channel) and print its default input size, "
        "parameters and forward multiply-adds per image (a Markdown table)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = list_models(args.pattern)
    if not args.details:
        for name in names:
            print(name)
        return 0
    print("| model | input | parameters | multiply-adds |")
    print("|---|---|---:|---:|")
    for name in names:
        model = create_model(name)
        size = int(getattr(model, "default_input_size", 48))
        params = sum(p.numel() for p in model.parameters())
        macs = count_mult_adds(model, size, 1)
        print(f"| `{name}` | {size}x{size}x1 | {params:,} | {macs / 1e6:,.1f} M |")
    return 0
