"""``inception-fer summary``: a Keras-style layer table with parameter and mult-add counts."""

from __future__ import annotations

import argparse

from ..models import create_model
from ..summary import DEFAULT_DEPTH, model_summary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summary",
        help="print a network's layers, output shapes, parameters and mult-adds",
        description=(
            "Print a Keras-style table of a network (layer name and type, output shape, "
            "parameters, mult-adds) with total, trainable and non-trainable parameters and the "
            "forward multiply-adds per image, from one eval-mode forward pass."
        ),
    )
    parser.add_argument("model", help="registered network name (see 'inception-fer models')")
    parser.add_argument("--input-size", type=int, default=48, help="image side in pixels")
    parser.add_argument("--in-chans", type=int, default=1, help="input channels (1 = grey)")
    parser.add_argument("--num-classes", type=int, default=7, help="number of output classes")
    parser.add_argument(
        "--depth",
        type=int,
        default=DEFAULT_DEPTH,
        help=f"levels of nested modules to list (default {DEFAULT_DEPTH}: one row per "
        "top-level layer / Inception module; deeper rows are folded into their parent)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model = create_model(args.model, num_classes=args.num_classes, in_chans=args.in_chans)
    summary = model_summary(
        model, args.input_size, args.in_chans, depth=args.depth, model_name=args.model
    )
    print(summary)
    return 0
