"""Recipe sweep for the InceptionFER family: one named run per call, results in RUN_ROOT/NAME.

Used on a lent GPU to measure accuracy against epochs for many recipes at once (accuracy after a
given number of epochs does not depend on the hardware; the CPU cost of an epoch is measured
separately with ``benchmarks/train_throughput.py``). Each run writes the usual run directory:
history.csv/json, curves.png, best/last checkpoints. See docs/experiments.md for the results.

    python experiments/sweep.py --data PATH --out RUN_ROOT NAME [NAME ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from inception_fer.training.config import TrainConfig
from inception_fer.training.fit import fit
from inception_fer.training.recipes import FER_RECIPE

BASE: dict[str, Any] = {**FER_RECIPE, "seed": 0}

RUNS: dict[str, dict[str, Any]] = {
    "l60": {"model": "inception_fer_l", "epochs": 60, "lr": 2e-3, "drop_rate": 0.3, "amp": "bf16"},
    "s30": {"model": "inception_fer_s", "epochs": 30},
    "m30": {"model": "inception_fer_m", "epochs": 30},
    "mx30": {"model": "mini_xception", "epochs": 30},
    "s8": {"model": "inception_fer_s", "epochs": 8},
    "m18": {"model": "inception_fer_m", "epochs": 18},
    "s30sgd": {"model": "inception_fer_s", "epochs": 30, "optimizer": "sgd", "lr": 0.05,
               "weight_decay": 5e-4},
    "xs10": {"model": "inception_fer_s", "epochs": 10,
             "model_kwargs": {"stem_width": 16, "widths": (32, 64, 128), "depths": (1, 1, 1)}},
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", choices=sorted(RUNS))
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    for name in args.names:
        config = TrainConfig(**{**BASE, **RUNS[name], "data": args.data, "device": args.device})
        fit(
            config,
            args.out / name,
            overwrite=True,
            quiet=True,
            log=lambda line: print(line, flush=True),
        )


if __name__ == "__main__":
    main()
