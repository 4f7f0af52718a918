"""``--compile``: run the training forward and backward through ``torch.compile``.

Compilation happens at the first step (and again when the graph changes, e.g. when the backbone
is unfrozen). TorchInductor needs a C++ compiler on the CPU (g++ or clang++, or ``$CXX``) and
Triton on GPUs; when it cannot compile, the run stops with one clear error at its first step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import torch
from torch import nn

from ..errors import InceptionFerError


def compile_module(module: nn.Module) -> nn.Module:
    """``torch.compile(module)`` (lazy: nothing compiles before the first call)."""
    return cast(nn.Module, torch.compile(module))


@contextmanager
def compile_errors(model_name: str) -> Iterator[None]:
    """Turn a failed compilation inside the block into a one-line ``InceptionFerError``."""
    try:
        yield
    except RuntimeError as error:
        from torch._dynamo.exc import TorchDynamoException

        if not isinstance(error, TorchDynamoException):
            raise
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = next((line for line in lines if "Error" in line), lines[0] if lines else "")
        raise InceptionFerError(
            f"--compile: torch.compile could not compile {model_name} ({reason[:300]}); it needs "
            "a C++ compiler on the CPU (g++ or clang++, or set CXX) and Triton on GPUs; "
            "train without --compile"
        ) from error
