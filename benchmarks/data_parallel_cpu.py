"""Training throughput on one CPU: processes of one thread each under gloo
``DistributedDataParallel`` against one process with all the threads (the reference).

Usage: ``python benchmarks/data_parallel_cpu.py [--model inception_fer_f] [--sizes 40 48]
[--batch-size 128] [--processes 2] [--rounds 6] [--steps 6] [--amp bf16|none] [--json OUT]``.

Each step is what ``train`` runs (``--amp bf16`` by default): a channels-last batch of random
images, the forward pass under autocast, cross-entropy, the backward pass and a fused AdamW step.
``--batch-size`` is the global batch, as in ``torchrun ... -m inception_fer train``: the
reference takes it whole with ``--processes`` threads; the data-parallel layout splits it over
``--processes`` processes of one thread each, whose gradients DDP averages over gloo. The two
layouts alternate round by round (fresh processes each round, two warm-up steps, then
``--steps`` timed steps; rank 0's clock), so a machine whose speed drifts affects both alike. The
table gives images/s from the median and the fastest step of each, and the data-parallel median
over the reference's (above 1: the processes are faster).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from _report import aligned_table, cpu_model
from inception_fer.atomic import atomic_write_text
from inception_fer.models import create_model, list_models

LAYOUTS = ("reference", "data-parallel")


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now (for gloo's rendezvous)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_steps(rank: int, world: int, port: int, config: dict, results: mp.SimpleQueue) -> None:
    """Worker: ``config["steps"]`` timed training steps (ms) after two warm-up steps."""
    torch.set_num_threads(config["threads"])
    if world > 1:
        os.environ |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model: nn.Module = create_model(config["model"]).to(memory_format=torch.channels_last).train()
    if world > 1:
        model = DistributedDataParallel(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    size, batch = config["size"], config["batch_size"] // world
    images = torch.randn(batch, 1, size, size).to(memory_format=torch.channels_last)
    labels = torch.randint(0, 7, (batch,))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    times = []
    for step in range(2 + config["steps"]):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config["bf16"]):
            loss = loss_fn(model(images).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= 2:
            times.append((time.perf_counter() - start) * 1000)
    if rank == 0:
        results.put(times)
    if world > 1:
        # Leave together: a process whose peer has already torn its gloo pairs down can abort
        # ("terminate called without an active exception") on the way out.
        dist.barrier()
        dist.destroy_process_group()


def run_round(layout: str, config: dict, processes: int) -> list[float]:
    """Step times (ms) of one round of ``layout`` in fresh processes."""
    world = processes if layout == "data-parallel" else 1
    threads = 1 if layout == "data-parallel" else processes
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    args = (world, free_port(), config | {"threads": threads}, results)
    mp.start_processes(time_steps, args=args, nprocs=world, start_method="spawn")
    return list(results.get())


def measure(config: dict, processes: int, rounds: int) -> dict:
    """Images/s of each layout from the median and the fastest step over ``rounds`` rounds."""
    times: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
    for _ in range(rounds):
        for layout in LAYOUTS:
            times[layout] += run_round(layout, config, processes)
    row: dict = {"size": config["size"]}
    for layout in LAYOUTS:
        median, fastest = statistics.median(times[layout]), min(times[layout])
        row[layout] = {
            "median_ms": median,
            "images_per_s": config["batch_size"] / median * 1000,
            "best_images_per_s": config["batch_size"] / fastest * 1000,
        }
    row["speedup"] = row["reference"]["median_ms"] / row["data-parallel"]["median_ms"]
    return row


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="inception_fer_f", choices=list_models())
    parser.add_argument("--sizes", type=int, nargs="+", default=[40, 48])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--amp", choices=("bf16", "none"), default="bf16")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if min(args.sizes) < 8 or min(args.rounds, args.steps) < 1 or args.processes < 2:
        parser.error("sizes must be at least 8, rounds and steps at least 1, processes at least 2")
    if args.batch_size % args.processes:
        parser.error(
            f"--batch-size {args.batch_size} does not split over {args.processes} processes"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = {"model": args.model, "batch_size": args.batch_size, "steps": args.steps}
    base["bf16"] = args.amp == "bf16"
    rows = [measure(base | {"size": size}, args.processes, args.rounds) for size in args.sizes]
    print(
        f"{args.model}, global batch {args.batch_size}, {args.amp}, 1 process x {args.processes} "
        f"threads against {args.processes} processes x 1 thread (gloo DDP), {cpu_model()}"
    )
    lines = [["input", "reference img/s (median/best)", "data-parallel img/s", "speedup"]]
    for row in rows:
        ref, ddp = row["reference"], row["data-parallel"]
        lines.append(
            [
                f"{row['size']}x{row['size']}",
                f"{ref['images_per_s']:.0f} / {ref['best_images_per_s']:.0f}",
                f"{ddp['images_per_s']:.0f} / {ddp['best_images_per_s']:.0f}",
                f"{row['speedup']:.2f}x",
            ]
        )
    print(aligned_table(lines))
    if args.json:
        report = {key: getattr(args, key) for key in ("model", "batch_size", "processes", "amp")}
        report |= {"cpu": cpu_model(), "torch": torch.__version__, "results": rows}
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
