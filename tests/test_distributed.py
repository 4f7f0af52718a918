"""Data-parallel training under torchrun: sharding, gradient averaging, metrics, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

from inception_fer.cli.main import main
from inception_fer.errors import InceptionFerError
from inception_fer.training.checkpoint import load_checkpoint
from inception_fer.training.config import TrainConfig
from inception_fer.training.distributed import (
    DistContext,
    epoch_seeds,
    on_main,
    reduce_sums,
    shard_indices,
)
from inception_fer.training.fit import Trainer
from test_training import tiny_data

# No BatchNorm, no dropout, no augmentation: the only randomness left is the shuffling, which is
# global, so one and two processes must take the same steps. SGD with momentum, unlike Adam, is
# not invariant to the gradient's scale, so a sum instead of a mean of the gradients would show.
_TRAIN = [
    "--model", "inception_tutorial", "--model-arg", "input_size=16", "--input-size", "16",
    "--batch-size", "12", "--optimizer", "sgd", "--lr", "0.01", "--augment", "none",
    "--seed", "3", "--threads", "1", "--ema", "0.5", "--quiet",
]  # fmt: skip


def _torchrun(processes: int, args: list[str]) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", str(processes), "-m", "inception_fer", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    """The saved weight average (``--ema``) and the trained weights, by name."""
    checkpoint = load_checkpoint(run / "last.safetensors", with_train_state=True)
    assert checkpoint.train_state is not None
    trained = checkpoint.train_state["ema"]["trained"]
    average = checkpoint.model.state_dict()
    return {**{f"ema.{k}": v for k, v in average.items()}, **trained}


def _assert_same_training(one: Path, two: Path) -> None:
    """Weights within atol 1e-5 / rtol 1e-4 and the same history up to rounding."""
    a, b = _weights(one), _weights(two)
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)
    rows_a = json.loads((one / "history.json").read_text())
    rows_b = json.loads((two / "history.json").read_text())
    assert len(rows_a) == len(rows_b)
    for row_a, row_b in zip(rows_a, rows_b, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert row_b[key] == pytest.approx(row_a[key], rel=1e-4, abs=1e-6), key


@pytest.mark.filterwarnings("ignore:resized")
def test_two_gloo_processes_train_like_one_and_resume_on_one(
    tmp_path: Path, npy_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two CPU processes (gloo) with global batch 12 (6 each) against one process with batch 12.

    DDP averages the two per-process mean gradients; both processes hold 6 images in every step
    (84 images: no padding), so that average is the mean gradient of the same 12 images one
    process sees, and the runs differ only by float summation order: about 1e-8 after the 7
    steps measured here (trained weights and their ``--ema`` average alike), so atol 1e-5 /
    rtol 1e-4 leaves a wide margin. Wrong sharding
    (contiguous halves instead of every other index) or no gradient averaging (each process
    stepping on its own 6 images) moved weights by 5e-3 to 9e-3 in the same set-up, far outside
    it. The training and validation loss and accuracy are all-reduced sums over both processes,
    so the history matches too (it would not if rank 0 reported its own half).

    Then the two-process run is resumed in one process for a second epoch: the shuffling state,
    optimizer and schedule carry over, so it ends where the one-process run's second epoch does.
    """
    data = ["--data", str(npy_dataset)]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", *_TRAIN, *data, "--epochs", "1", "--out", str(one)]) == 0
    _torchrun(2, ["train", *_TRAIN, *data, "--epochs", "1", "--out", str(two)])
    before = _weights(one)
    _assert_same_training(one, two)

    capsys.readouterr()
    assert main(["train", "--resume", str(two), "--epochs", "2", "--quiet"]) == 0
    assert "saved by 2 process(es), now 1" in capsys.readouterr().out
    assert main(["train", "--resume", str(one), "--epochs", "2", "--quiet"]) == 0
    _assert_same_training(one, two)
    moved = max((_weights(one)[k] - before[k]).abs().max().item() for k in before)
    assert moved > 1e-3  # the second epoch changed the weights far more than the tolerance


def test_shards_are_distributed_samplers(tmp_path: Path) -> None:
    order = torch.randperm(11, generator=torch.Generator().manual_seed(0))
    for world in (1, 2, 3, 4, 16):
        shards = [shard_indices(order, rank, world) for rank in range(world)]
        for rank, shard in enumerate(shards):
            sampler = DistributedSampler(range(11), num_replicas=world, rank=rank, shuffle=False)
            assert shard.tolist() == [int(order[i]) for i in sampler]
        assert len({len(shard) for shard in shards}) == 1
        assert set(torch.cat(shards).tolist()) == set(range(11))


def test_epoch_seeds_differ_by_rank_and_epoch_only() -> None:
    seeds = {epoch_seeds(5, epoch, rank) for epoch in range(3) for rank in range(4)}
    assert len(seeds) == 12
    assert epoch_seeds(5, 1, 2) == epoch_seeds(5, 1, 2)
    assert epoch_seeds(-1, 0, 0) != epoch_seeds(5, 0, 0)


def test_context_from_torchrun_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert DistContext.from_env() == DistContext()
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    context = DistContext.from_env()
    assert (context.rank, context.world_size, context.local_rank) == (3, 4, 1)
    assert context.enabled and not context.is_main
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(InceptionFerError, match=r"RANK=4 is not in \[0, WORLD_SIZE=4\)"):
        DistContext.from_env()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(InceptionFerError, match="RANK='x' is not an integer"):
        DistContext.from_env()


def test_one_process_helpers_pass_through() -> None:
    single = DistContext()
    assert reduce_sums([1.5, 2, 3], single, torch.device("cpu")) == [1.5, 2.0, 3.0]
    assert on_main(single, lambda: 7) == 7
    with pytest.raises(InceptionFerError, match="refused"):
        on_main(single, lambda: (_ for _ in ()).throw(InceptionFerError("refused")))


def _trainer(tmp_path: Path, world: int, **overrides) -> Trainer:
    config = TrainConfig(model="inception_fer_s", epochs=1, threads=1, **overrides)
    context = DistContext(rank=0, world_size=world)
    return Trainer(config, tiny_data(), tmp_path, True, lambda _: None, dist=context)


def test_global_batch_must_split_evenly(tmp_path: Path) -> None:
    with pytest.raises(
        InceptionFerError, match=r"--batch-size 16 is the global batch.*processes, 3"
    ):
        _trainer(tmp_path, 3, batch_size=16)
    assert _trainer(tmp_path, 4, batch_size=16).local_batch == 4


def test_sync_batchnorm_refused_on_cpu(tmp_path: Path) -> None:
    # torch's SyncBatchNorm raises "expected input tensor to be on GPU" for CPU tensors.
    with pytest.raises(InceptionFerError, match="--sync-bn needs GPUs"):
        _trainer(tmp_path, 2, batch_size=16, sync_bn=True, device="cpu")
