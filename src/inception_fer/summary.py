"""Keras-style model summary: a layer table with output shapes, parameters and mult-adds.

The forward pass, per-layer output shapes and mult-add counts come from ``torchinfo``; totals come
from ``model.parameters()`` so they always agree with it. The pass runs in eval mode under
``torch.no_grad`` (auxiliary heads do not run), on a batch of one image.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torchinfo
from torch import nn
from torchinfo.torchinfo import clear_cached_forward_pass

from .errors import InceptionFerError
from .models.blocks import BranchConcat

DEFAULT_DEPTH = 1
NOT_RUN = "not run in eval"


@dataclass(frozen=True)
class SummaryRow:
    """One table row: a module, its output shape (batch of one) and the parameters and mult-adds
    the row accounts for (its whole subtree when its children are folded into it)."""

    name: str
    type: str
    depth: int
    output_shape: tuple[int, ...] | None
    params: int
    mult_adds: int


@dataclass(frozen=True)
class ModelSummary:
    """The summary of one network on one input shape; ``str()`` gives the table."""

    model_name: str
    input_shape: tuple[int, int, int]
    rows: list[SummaryRow]
    total_params: int
    trainable_params: int
    param_bytes: int
    trainable_param_bytes: int
    mult_adds: int

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def __str__(self) -> str:
        header = ("Layer (type)", "Output Shape", "Param #", "Mult-Adds")
        body = [
            (
                _display_name(row, self.rows[:i]),
                format_shape(row.output_shape) if row.output_shape is not None else NOT_RUN,
                f"{row.params:,}" if row.params else "--",
                f"{row.mult_adds:,}" if row.mult_adds else "--",
            )
            for i, row in enumerate(self.rows)
        ]
        widths = [max(len(cells[c]) for cells in [header, *body]) for c in range(4)]
        width = sum(widths) + 3 * 3

        def line(cells: tuple[str, str, str, str]) -> str:
            name, shape, params, macs = cells
            return "   ".join(
                (
                    name.ljust(widths[0]),
                    shape.ljust(widths[1]),
                    params.rjust(widths[2]),
                    macs.rjust(widths[3]),
                )
            ).rstrip()

        channels, height, width_px = self.input_shape
        frozen_bytes = self.param_bytes - self.trainable_param_bytes
        return "\n".join(
            [
                f'Model: "{self.model_name}"  input {format_shape((1, channels, height, width_px))}',
                "_" * width,
                line(header),
                "=" * width,
                *(line(cells) for cells in body),
                "=" * width,
                f"Total params: {_count(self.total_params, self.param_bytes)}",
                f"Trainable params: {_count(self.trainable_params, self.trainable_param_bytes)}",
                f"Non-trainable params: {_count(self.non_trainable_params, frozen_bytes)}",
                f"Mult-adds per image: {_si(self.mult_adds)} ({self.mult_adds:,})",
                "_" * width,
            ]
        )


def format_shape(shape: tuple[int, ...]) -> str:
    """``(1, 64, 24, 24)`` -> ``[N, 64, 24, 24]``: the batch dimension shown as N."""
    return "[" + ", ".join(["N", *(str(d) for d in shape[1:])]) + "]"


def sample_input(model: nn.Module, input_size: int, in_chans: int) -> torch.Tensor:
    """A zero batch of one ``in_chans x input_size x input_size`` image on the model's device."""
    if input_size < 1:
        raise InceptionFerError(f"input size must be at least 1 pixel, got {input_size}")
    if in_chans < 1:
        raise InceptionFerError(f"in_chans must be at least 1, got {in_chans}")
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    return torch.zeros(1, in_chans, input_size, input_size, device=device, dtype=dtype)


def forward_failure(error: BaseException, x: torch.Tensor) -> Exception:
    """The error to raise when a forward pass on ``x`` failed: the model's own
    ``InceptionFerError`` when there is one in the chain (torchinfo wraps exceptions in
    ``RuntimeError``), a one-line ``InceptionFerError`` for a torch shape error, else the cause."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__
    for link in chain:
        if isinstance(link, InceptionFerError):
            return link
    root = chain[-1]
    if isinstance(root, RuntimeError):
        first_line = str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__
        shape = format_shape(tuple(x.shape))
        return InceptionFerError(f"the model cannot run on an input of {shape}: {first_line}")
    return root if isinstance(root, Exception) else RuntimeError(str(root))


def _statistics(model: nn.Module, x: torch.Tensor) -> torchinfo.ModelStatistics:
    """torchinfo's eval-mode, no-grad forward pass, with its errors unwrapped."""
    try:
        return torchinfo.summary(
            model,
            input_data=x,
            col_names=("output_size", "num_params", "mult_adds"),
            mode="eval",
            verbose=0,
        )
    except Exception as error:
        raise forward_failure(error, x) from error
    finally:
        clear_cached_forward_pass()  # torchinfo keeps the last model of each class otherwise


def count_mult_adds(model: nn.Module, input_size: int, in_chans: int) -> int:
    """Forward multiply-adds for one image (eval mode), as torchinfo counts them."""
    return int(_statistics(model, sample_input(model, input_size, in_chans)).total_mult_adds)


def _is_transparent(module: nn.Module) -> bool:
    """Listed through its children, without a row: ModuleList / ModuleDict (they never run) and
    containers of Inception modules with no parameters of their own (so each module gets a row)."""
    if isinstance(module, (nn.ModuleList, nn.ModuleDict)):
        return True
    return (
        not isinstance(module, BranchConcat)
        and next(module.parameters(recurse=False), None) is None
        and any(isinstance(m, BranchConcat) for m in module.modules())
    )


def _walk(
    module: nn.Module, prefix: str, depth: int, seen: set[int]
) -> Iterator[tuple[str, nn.Module, int]]:
    """(dotted name, module, depth) of the rows in registration order; a module shared by several
    parents is listed once."""
    for name, child in module.named_children():
        if id(child) in seen:
            continue
        seen.add(id(child))
        full = f"{prefix}{name}"
        if _is_transparent(child):
            yield from _walk(child, f"{full}.", depth, seen)
        else:
            yield full, child, depth
            yield from _walk(child, f"{full}.", depth + 1, seen)


def _has_rows_below(module: nn.Module) -> bool:
    return any(not _is_transparent(c) or _has_rows_below(c) for c in module.children())


def model_summary(
    model: nn.Module,
    input_size: int,
    in_chans: int,
    depth: int = DEFAULT_DEPTH,
    model_name: str | None = None,
) -> ModelSummary:
    """Summarise ``model`` on one ``in_chans x input_size x input_size`` image.

    Rows go down to ``depth`` levels of nested modules (parameter-free containers of Inception
    modules are not a level: each Inception module gets its own row); a row at the cut (or a leaf)
    accounts for its whole subtree, a row above it only for its own parameters, so the columns add
    up to the totals.
    """
    if depth < 1:
        raise InceptionFerError(f"depth must be at least 1, got {depth}")
    x = sample_input(model, input_size, in_chans)
    stats = _statistics(model, x)
    leaf_macs: dict[int, int] = {}
    shapes: dict[int, tuple[int, ...]] = {}
    for info in stats.summary_list:
        if info.executed:
            shapes[info.layer_id] = tuple(info.output_size)
            if info.is_leaf_layer:
                leaf_macs[info.layer_id] = leaf_macs.get(info.layer_id, 0) + info.macs

    rows: list[SummaryRow] = []
    own = sum(p.numel() for p in model.parameters(recurse=False))
    if own:
        rows.append(SummaryRow("(own parameters)", type(model).__name__, 1, None, own, 0))
    for name, module, level in _walk(model, "", 1, set()):
        if level > depth:
            continue
        folded = level == depth or not _has_rows_below(module)
        counted = list(module.modules()) if folded else [module]
        params = module.parameters() if folded else module.parameters(recurse=False)
        rows.append(
            SummaryRow(
                name=name,
                type=type(module).__name__,
                depth=level,
                output_shape=shapes.get(id(module)),
                params=sum(p.numel() for p in params),
                mult_adds=sum(leaf_macs.get(id(m), 0) for m in counted),
            )
        )
    parameters = list(model.parameters())
    return ModelSummary(
        model_name=model_name or type(model).__name__,
        input_shape=(in_chans, input_size, input_size),
        rows=rows,
        total_params=sum(p.numel() for p in parameters),
        trainable_params=sum(p.numel() for p in parameters if p.requires_grad),
        param_bytes=sum(p.numel() * p.element_size() for p in parameters),
        trainable_param_bytes=sum(
            p.numel() * p.element_size() for p in parameters if p.requires_grad
        ),
        mult_adds=int(stats.total_mult_adds),
    )


def _display_name(row: SummaryRow, previous: list[SummaryRow]) -> str:
    """``name (Type)``, indented by depth; a nested row is named relative to its parent row."""
    name = row.name
    parent = next((p for p in reversed(previous) if p.depth == row.depth - 1), None)
    if parent is not None and name.startswith(f"{parent.name}."):
        name = name[len(parent.name) + 1 :]
    return f"{'  ' * (row.depth - 1)}{name} ({row.type})"


def _count(count: int, size_bytes: int) -> str:
    return f"{count:,} ({_bytes(size_bytes)})"


def _bytes(size: float) -> str:
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"


def _si(value: float) -> str:
    for unit in ("", "K", "M", "G"):
        if abs(value) < 1000:
            return f"{value:.2f} {unit}".rstrip()
        value /= 1000
    return f"{value:.2f} T"
