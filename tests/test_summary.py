"""Model summary: totals agree with parameters(), mult-adds by hand, table text and CLI."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from inception_fer.cli.main import main
from inception_fer.errors import InceptionFerError
from inception_fer.models import create_model
from inception_fer.models.blocks import BranchConcat, ConvBNAct
from inception_fer.summary import count_mult_adds, model_summary


def small_net() -> nn.Sequential:
    """A stem, one three-branch Inception module and a classifier."""
    module = BranchConcat(
        [
            ConvBNAct(8, 4, 1),
            nn.Sequential(ConvBNAct(8, 2, 1), ConvBNAct(2, 4, 3)),
            nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), ConvBNAct(8, 4, 1)),
        ]
    )
    return nn.Sequential(
        OrderedDict(
            stem=ConvBNAct(1, 8, 3, stride=2),
            inception=module,
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            fc=nn.Linear(12, 7),
        )
    )


class WithAuxHead(nn.Module):
    """An auxiliary head that only runs in training mode."""

    def __init__(self) -> None:
        super().__init__()
        self.body = small_net()
        self.aux = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Guarded(nn.Module):
    """Raises the project's own error on a too-small input, like the registered networks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < 8:
            raise InceptionFerError(f"guarded needs at least 8x8 pixels, got {x.shape[-1]}")
        return self.conv(x)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_totals_and_rows_add_up_to_parameters(depth: int) -> None:
    model = small_net()
    summary = model_summary(model, 16, 1, depth=depth)
    total = sum(p.numel() for p in model.parameters())
    assert summary.total_params == total
    assert summary.trainable_params == total
    assert sum(row.params for row in summary.rows) == total
    assert sum(row.mult_adds for row in summary.rows) == summary.mult_adds
    assert max(row.depth for row in summary.rows) == depth


def test_frozen_layer_is_non_trainable() -> None:
    model = small_net()
    for p in model.stem.parameters():
        p.requires_grad_(False)
    frozen = sum(p.numel() for p in model.stem.parameters())
    summary = model_summary(model, 16, 1)
    assert summary.total_params == sum(p.numel() for p in model.parameters())
    assert summary.non_trainable_params == frozen
    assert summary.trainable_params == summary.total_params - frozen
    assert f"Non-trainable params: {frozen:,} (" in str(summary)


@pytest.mark.parametrize(("bias", "stride"), [(False, 1), (True, 1), (False, 2)])
def test_mult_adds_of_one_conv(bias: bool, stride: int) -> None:
    conv = nn.Conv2d(3, 8, 3, stride=stride, padding=1, bias=bias)
    out = 10 // stride
    expected = 8 * 3 * 3 * 3 * out * out + (8 * out * out if bias else 0)
    assert count_mult_adds(conv, 10, 3) == expected
    assert model_summary(conv, 10, 3).mult_adds == expected


def test_table_lists_modules_shapes_and_totals() -> None:
    model = small_net()
    text = str(model_summary(model, 16, 1, depth=2, model_name="small"))
    assert text.startswith('Model: "small"  input [N, 1, 16, 16]')
    for name in ("stem (ConvBNAct)", "inception (BranchConcat)", "fc (Linear)"):
        assert name in text
    assert "  branches.1 (Sequential)" in text  # nested rows named relative to their parent
    assert "[N, 12, 8, 8]" in text  # the module's concatenated output
    assert f"Total params: {sum(p.numel() for p in model.parameters()):,} (" in text
    assert "Mult-adds per image:" in text


def test_module_not_run_in_eval_is_listed_and_counted() -> None:
    model = WithAuxHead().train()
    summary = model_summary(model, 16, 1)
    aux = next(row for row in summary.rows if row.name == "aux")
    assert aux.output_shape is None and aux.params == 5 * 3 + 3
    assert summary.total_params == sum(p.numel() for p in model.parameters())
    assert "not run in eval" in str(summary)
    assert model.training  # the mode is restored


def test_too_small_input_raises_the_models_own_error() -> None:
    with pytest.raises(InceptionFerError, match="guarded needs at least 8x8 pixels, got 4"):
        model_summary(Guarded(), 4, 1)


def test_torch_shape_error_becomes_one_line_error() -> None:
    with pytest.raises(InceptionFerError, match=r"cannot run on an input of \[N, 1, 2, 2\]") as e:
        count_mult_adds(nn.Conv2d(1, 2, 3), 2, 1)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(("size", "chans", "depth"), [(0, 1, 1), (16, 0, 1), (16, 1, 0)])
def test_bad_arguments(size: int, chans: int, depth: int) -> None:
    with pytest.raises(InceptionFerError):
        model_summary(small_net(), size, chans, depth=depth)


def test_googlenet_has_one_row_per_inception_module() -> None:
    model = create_model("googlenet")
    summary = model_summary(model, 48, 1)
    modules = [
        row for row in summary.rows if isinstance(model.get_submodule(row.name), BranchConcat)
    ]
    assert len(modules) == 9
    assert summary.total_params == sum(p.numel() for p in model.parameters())


def test_cli_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "mini_xception", "--depth", "2"]) == 0
    out = capsys.readouterr().out
    total = sum(p.numel() for p in create_model("mini_xception").parameters())
    assert f"Total params: {total:,}" in out
    assert 'Model: "mini_xception"' in out


def test_cli_summary_too_small_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "mini_xception", "--input-size", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("inception-fer: error: mini_xception needs inputs of at least")
    assert err.count("\n") == 1
