"""``inception-fer ensemble``: trained checkpoints combined into one ensemble checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InceptionFerError
from ..inference.recognizer import resolve_checkpoint
from ..pretrained import list_pretrained
from ..training.checkpoint import save_checkpoint
from ..training.ensemble import combine_checkpoints


def register(subparsers: argparse._SubParsersAction) -> None:
    shipped = ", ".join(["default", *list_pretrained()])
    parser = subparsers.add_parser(
        "ensemble",
        help="combine trained checkpoints into one ensemble checkpoint",
        description=(
            "Write one checkpoint of the 'ensemble' network whose members are the given trained "
            "networks: it outputs the log of their averaged class probabilities, and "
            "evaluates, predicts, explains, exports and serves like any checkpoint. The members "
            "must share their classes, input size, channels and normalisation (networks trained "
            "on the same data). `evaluate A B` scores such an average without writing it."
        ),
    )
    parser.add_argument(
        "members",
        nargs="+",
        metavar="model",
        help=f"a shipped model ({shipped}), a checkpoint file or a run directory",
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="the .safetensors file to write"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    output: Path = args.output
    if output.exists() and not args.overwrite:
        raise InceptionFerError(f"{output} exists; pass --overwrite to replace it")
    loaded = [resolve_checkpoint(member) for member in args.members]
    combined = combine_checkpoints(loaded, args.members)
    save_checkpoint(output, combined.model, combined.meta)
    names = ", ".join(member.meta.model_name for member in loaded)
    print(f"wrote {output}: an ensemble of {len(loaded)} ({names})")
    return 0
