"""``inception-fer plot-model``: draw a network's architecture diagram with Graphviz."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..models import create_model
from ..plot import EXPAND_UP_TO, FORMATS, RANKDIRS, plot_model


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot-model",
        help="draw a network's architecture diagram (PNG, SVG, PDF or DOT)",
        description=(
            "Draw a network like Keras plot_model: one box per layer with its name and type, "
            "Inception modules as one box listing their branches, or (--expand) as a cluster of "
            "branches joined at a concatenation. Needs Graphviz's 'dot' program except for .dot."
        ),
    )
    parser.add_argument("model", help="registered network name (see 'inception-fer models')")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help=f"output file; the extension picks the format ({', '.join(FORMATS)})",
    )
    parser.add_argument(
        "--show-shapes", action="store_true", help="show each layer's input and output shape"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--expand",
        dest="expand",
        action="store_const",
        const=True,
        help="draw every Inception module's branches (default: only when the network has at "
        f"most {EXPAND_UP_TO} modules)",
    )
    mode.add_argument(
        "--collapse",
        dest="expand",
        action="store_const",
        const=False,
        help="draw every Inception module as one box",
    )
    parser.add_argument("--input-size", type=int, default=48, help="image side in pixels")
    parser.add_argument("--in-chans", type=int, default=1, help="input channels (1 = grey)")
    parser.add_argument("--num-classes", type=int, default=7, help="number of output classes")
    parser.add_argument(
        "--rankdir", default="TB", choices=RANKDIRS, help="TB = top to bottom, LR = left to right"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model = create_model(args.model, num_classes=args.num_classes, in_chans=args.in_chans)
    path = plot_model(
        model,
        args.output,
        args.input_size,
        args.in_chans,
        show_shapes=args.show_shapes,
        expand=args.expand,
        rankdir=args.rankdir,
        name=args.model,
    )
    print(f"wrote {path}")
    return 0
