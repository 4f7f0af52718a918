"""Muon for convolution kernels with AdamW beside it (``--optimizer muon``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inception_fer.training.fit import fit, resume
from inception_fer.training.muon import MuonAdamW, orthogonalize
from inception_fer.training.optim import build_optimizer, build_scheduler
from test_training import assert_same_weights, config, interrupt_after, tiny_data


@pytest.mark.parametrize("shape", [(16, 144), (144, 16), (8, 9), (64, 64)])
def test_orthogonalize_flattens_the_spectrum(shape: tuple[int, int]) -> None:
    torch.manual_seed(0)
    rank = min(shape)
    u, _ = torch.linalg.qr(torch.randn(shape[0], rank))
    v, _ = torch.linalg.qr(torch.randn(shape[1], rank))
    skewed = u @ torch.diag(torch.logspace(-1, 1, rank)) @ v.T
    (matrix,) = orthogonalize([skewed])
    assert matrix.shape == skewed.shape
    singular = torch.linalg.svdvals(matrix)
    assert torch.linalg.svdvals(skewed).max() / torch.linalg.svdvals(skewed).min() > 99
    assert singular.min() > 0.5 and singular.max() < 1.5
    # The directions are the input's: U V^T of the SVD, up to the spectrum's shape.
    assert torch.nn.functional.cosine_similarity((u @ v.T).flatten(), matrix.flatten(), 0) > 0.95


def test_orthogonalize_batches_matrices_of_one_shape_like_one_at_a_time() -> None:
    torch.manual_seed(1)
    matrices = [torch.randn(16, 72), torch.randn(72, 16), torch.randn(32, 8), torch.randn(16, 72)]
    together = orthogonalize(matrices)
    for matrix, batched in zip(matrices, together, strict=True):
        (alone,) = orthogonalize([matrix])
        torch.testing.assert_close(batched, alone, rtol=1e-4, atol=1e-5)


def test_kernels_take_muon_steps_and_the_rest_adamw_steps() -> None:
    torch.manual_seed(2)
    kernel = torch.nn.Parameter(torch.randn(8, 4, 3, 3))
    bias = torch.nn.Parameter(torch.randn(8))
    twin = torch.nn.Parameter(bias.detach().clone())
    optimizer = MuonAdamW([kernel, bias], lr=0.01, weight_decay=0.1)
    reference = torch.optim.AdamW([twin], lr=0.01, weight_decay=0.1)
    before = kernel.detach().clone()
    for _ in range(3):
        kernel.grad = torch.randn_like(kernel)
        bias.grad = twin.grad = torch.randn_like(bias)
        optimizer.step()
        reference.step()
    torch.testing.assert_close(bias, twin)
    # Each Muon step moves the kernel by an (almost) orthogonal matrix scaled to AdamW's size:
    # root-mean-square 0.2 * lr per step, whatever the gradient's scale.
    moved = (kernel.detach() - before * (1 - 0.01 * 0.1) ** 3).reshape(8, -1)
    assert 0.2 * 0.01 < moved.pow(2).mean().sqrt() < 3 * 0.2 * 0.01


def test_one_cycle_drives_muon_momentum_through_betas() -> None:
    optimizer = build_optimizer("muon", [torch.nn.Parameter(torch.zeros(4, 2, 3, 3))], 1e-3)
    assert isinstance(optimizer, MuonAdamW)
    scheduler = build_scheduler("onecycle", optimizer, epochs=4, steps_per_epoch=10)
    momenta = []
    for _ in range(20):
        optimizer.step()
        scheduler.step()
        momenta.append(optimizer.param_groups[0]["betas"][0])
    assert min(momenta) < 0.9 < max(momenta)


def test_a_muon_run_learns_and_resumes_exactly(tmp_path: Path) -> None:
    data = tiny_data()
    cfg = config(optimizer="muon", weight_decay=0.05, schedule="onecycle", epochs=3)
    full = fit(cfg, tmp_path / "full", data=data, quiet=True, log=lambda _: None)
    assert full.rows[-1]["train_loss"] < full.rows[0]["train_loss"]
    with pytest.raises(KeyboardInterrupt):
        fit(cfg, tmp_path / "cut", data=data, quiet=True, log=interrupt_after(1))
    resume(tmp_path / "cut", data=data, quiet=True, log=lambda _: None)
    assert_same_weights(
        tmp_path / "full" / "last.safetensors", tmp_path / "cut" / "last.safetensors"
    )
