"""Muon for convolution kernels, AdamW for everything else, as one optimizer.

Muon (Jordan et al. 2024) replaces each kernel's momentum update by the nearest semi-orthogonal
matrix (five Newton-Schulz iterations on the kernel seen as ``out_channels x fan_in``), so every
direction of the kernel moves at the same rate. torch's own ``torch.optim.Muon`` takes only
two-dimensional parameters; convolution kernels are four-dimensional, hence this class. The update
is scaled as Moonlight does (``0.2 * sqrt(max(rows, cols))``) so that its size matches AdamW's and
the same learning rate and weight decay serve both halves; normalisation scales and shifts, biases
and the classifier (fewer than three dimensions) are AdamW's, as Muon's authors advise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.adamw import adamw

NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)
"""The quintic iteration's coefficients (Jordan et al.'s, as ``torch.optim.Muon`` has them)."""


def orthogonalize(updates: list[Tensor], steps: int = 5) -> list[Tensor]:
    """For each 2-D tensor of ``updates``, the semi-orthogonal matrix nearest it (approximately).

    Matrices of one shape go through the iteration together as a batch: a network's kernels are
    small, and one batched product costs about what one small product does."""
    a, b, c = NEWTON_SCHULZ
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, update in enumerate(updates):
        by_shape.setdefault((min(update.shape), max(update.shape)), []).append(i)
    result: list[Tensor] = list(updates)
    for indices in by_shape.values():
        x = torch.stack([_wide(updates[i]) for i in indices]).float()
        x = x / x.norm(dim=(1, 2), keepdim=True).clamp(min=1e-7)
        for _ in range(steps):
            gram = x @ x.mT
            x = a * x + torch.baddbmm(gram, gram, gram, beta=b, alpha=c) @ x
        for i, matrix in zip(indices, x, strict=True):
            result[i] = matrix.T if updates[i].size(0) > updates[i].size(1) else matrix
    return result


def _wide(matrix: Tensor) -> Tensor:
    """``matrix``, transposed if it has more rows than columns."""
    return matrix.T if matrix.size(0) > matrix.size(1) else matrix


class MuonAdamW(Optimizer):
    """Muon on every parameter of three or more dimensions, AdamW on the rest.

    ``betas[0]`` is also Muon's (Nesterov) momentum, so a one-cycle schedule that cycles it drives
    both halves."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        ns_steps: int = 5,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "ns_steps": ns_steps,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            trained = [(p, grad) for p in group["params"] if (grad := p.grad) is not None]
            self._muon_step(group, [pair for pair in trained if pair[0].ndim >= 3])
            self._adamw_step(group, [pair for pair in trained if pair[0].ndim < 3])
        return loss

    def _muon_step(self, group: dict[str, Any], trained: list[tuple[Tensor, Tensor]]) -> None:
        if not trained:
            return
        params, grads = [p for p, _ in trained], [grad for _, grad in trained]
        lr, decay, momentum = group["lr"], group["weight_decay"], group["betas"][0]
        for p in params:
            if "momentum_buffer" not in self.state[p]:
                self.state[p]["momentum_buffer"] = torch.zeros_like(p)
        buffers = [self.state[p]["momentum_buffer"] for p in params]
        torch._foreach_lerp_(buffers, grads, 1 - momentum)
        nesterov = torch._foreach_lerp(grads, buffers, momentum)
        matrices = orthogonalize([u.reshape(u.size(0), -1) for u in nesterov], group["ns_steps"])
        torch._foreach_mul_(params, 1 - lr * decay)
        for p, matrix in zip(params, matrices, strict=True):
            scale = 0.2 * math.sqrt(max(matrix.shape))
            p.add_(matrix.reshape(p.shape), alpha=-lr * scale)

    def _adamw_step(self, group: dict[str, Any], trained: list[tuple[Tensor, Tensor]]) -> None:
        if not trained:
            return
        params, grads = [p for p, _ in trained], [grad for _, grad in trained]
        exp_avgs, exp_avg_sqs, steps = [], [], []
        for p in params:
            state = self.state[p]
            if "step" not in state:
                state["step"] = torch.tensor(0.0)
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        beta1, beta2 = group["betas"]
        adamw(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=False,
        )
