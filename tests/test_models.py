"""The model library: every registered network, the Inception blocks and the paper figures."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchinfo
from torch import nn

from inception_fer.errors import InceptionFerError
from inception_fer.models import create_model, list_models, model_arguments
from inception_fer.models.blocks import (
    BranchConcat,
    FactorisedInception,
    GridReduction,
    ImageStandardize,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
    InceptionModule,
    NaiveInception,
    SeparableConv2d,
    XceptionBlock,
)
from inception_fer.models.googlenet import AUX_LOSS_WEIGHT, GoogLeNet, GoogLeNetOutputs
from inception_fer.models.inception_fer import InceptionFER
from inception_fer.models.inception_v3 import InceptionV3, InceptionV3Outputs

MODELS = list_models()


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_size(model: nn.Module) -> int:
    """The input size used in the default run: inception_v3 at its 75x75 minimum, others default."""
    return 75 if isinstance(model, InceptionV3) else int(model.default_input_size)


test_size.__test__ = False  # type: ignore[attr-defined]


def batch(model: nn.Module, n: int = 2, size: int | None = None) -> torch.Tensor:
    size = test_size(model) if size is None else size
    return torch.randn(n, model.in_chans, size, size)


@pytest.fixture(scope="module", params=MODELS)
def model(request: pytest.FixtureRequest) -> nn.Module:
    torch.manual_seed(0)
    return create_model(request.param)


def test_registry_has_every_network() -> None:
    assert set(MODELS) >= {
        "inception_tutorial",
        "googlenet",
        "inception_v3",
        "mini_xception",
        "inception_fer_s",
        "inception_fer_f",
        "inception_fer_f_silu",
        "inception_fer_m",
        "inception_fer_l",
    }


def test_eval_forward_gives_logits(model: nn.Module) -> None:
    model.eval()
    with torch.no_grad():
        out = model(batch(model))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_features_and_pre_logits(model: nn.Module) -> None:
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(batch(model))
        pre = model.forward_head(feats, pre_logits=True)
        logits = model.forward_head(feats)
    assert feats.dim() == 4
    assert pre.shape == (2, model.num_features)
    assert logits.shape == (2, 7)


def test_training_step_changes_weights(model: nn.Module) -> None:
    model.train()
    torch.manual_seed(1)
    x, y = batch(model), torch.tensor([0, 3])
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    before = first_conv.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    out = model(x)
    if isinstance(out, tuple):
        logits, *aux = out
        loss = F.cross_entropy(logits, y) + AUX_LOSS_WEIGHT * sum(
            F.cross_entropy(a, y) for a in aux
        )
    else:
        loss = F.cross_entropy(out, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert not torch.equal(first_conv.weight, before)
    model.eval()


def test_too_small_input_is_a_clear_error(model: nn.Module) -> None:
    model.eval()
    small = model.min_input_size - 1
    with pytest.raises(InceptionFerError, match=rf"got {small}x{small}") as info:
        model(batch(model, size=small))
    assert f"{model.min_input_size}x{model.min_input_size}" in str(info.value)
    assert "\n" not in str(info.value)


def test_min_input_size_runs(model: nn.Module) -> None:
    model.eval()
    with torch.no_grad():
        assert model(batch(model, size=model.min_input_size)).shape == (2, 7)


def test_wrong_channel_count_is_a_clear_error(model: nn.Module) -> None:
    model.eval()
    x = torch.randn(1, model.in_chans + 2, test_size(model), test_size(model))
    with pytest.raises(InceptionFerError, match=r"1 input channel\(s\), got 3"):
        model(x)


@pytest.mark.parametrize("name", MODELS)
def test_num_classes_and_in_chans_variants(name: str) -> None:
    model = create_model(name, num_classes=3, in_chans=3).eval()
    with torch.no_grad():
        out = model(batch(model))
    assert out.shape == (2, 3)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name", ["inception_fer_s", "mini_xception", "googlenet"])
def test_trace_and_channels_last_match_eager(name: str) -> None:
    model = create_model(name).eval()
    x = batch(model)
    with torch.no_grad():
        expected = model(x)
        traced = torch.jit.trace(model, x)
        last = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(traced(x), expected)
    torch.testing.assert_close(last, expected, rtol=1e-4, atol=1e-5)


def test_torch_export_matches_eager() -> None:
    model = create_model("mini_xception").eval()
    x = batch(model)
    exported = torch.export.export(model, (x,)).module()
    with torch.no_grad():
        torch.testing.assert_close(exported(x), model(x))


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(InceptionFerError, match="unknown model 'nope'") as info:
        create_model("nope")
    for name in MODELS:
        assert name in str(info.value)


@pytest.mark.parametrize("name", MODELS)
def test_every_model_takes_the_timm_arguments_and_refuses_unknown_ones(name: str) -> None:
    assert {"num_classes", "in_chans", "drop_rate"} <= set(model_arguments(name))
    with pytest.raises(InceptionFerError, match=rf"{name} has no argument 'drop_rat'; its "):
        create_model(name, drop_rat=0.3)
    assert isinstance(create_model(name, drop_rate=0.3), nn.Module)


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"num_classes": 0}, "num_classes"), ({"in_chans": 0}, "in_chans")]
)
def test_bad_class_or_channel_count(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(InceptionFerError, match=rf"{message} must be at least 1, got 0"):
        create_model("inception_fer_s", **kwargs)


# --- the tutorial network ---------------------------------------------------------------------


def test_tutorial_parameter_count_and_input_size() -> None:
    model = create_model("inception_tutorial").eval()
    assert n_params(model) == 83_760_487
    assert isinstance(model.block, BranchConcat) and model.block.out_chs == 30
    with pytest.raises(InceptionFerError, match="built for 48x48 inputs, got 64x64"):
        model(torch.zeros(1, 1, 64, 64))


def test_tutorial_keras_init() -> None:
    model = create_model("inception_tutorial", input_size=8)
    assert all(
        torch.count_nonzero(m.bias) == 0 for m in model.modules() if isinstance(m, nn.Linear)
    )
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (5, 5))
    bound = (6 / (25 * 10 + 25 * 10)) ** 0.5
    assert conv.weight.abs().max() <= bound
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 7)


# --- GoogLeNet --------------------------------------------------------------------------------


def test_googlenet_structure() -> None:
    model = create_model("googlenet")
    modules = [m for m in model.modules() if isinstance(m, InceptionModule)]
    assert len(modules) == 9
    assert [m.out_chs for m in modules] == [256, 480, 512, 512, 512, 528, 832, 832, 1024]
    kernel = modules[0].branches[2][1][0].kernel_size
    assert kernel == (5, 5)
    assert AUX_LOSS_WEIGHT == 0.3
    assert model.dropout.p == 0.4 and model.aux1.dropout.p == 0.7


def test_googlenet_aux_outputs_in_training_only() -> None:
    model = create_model("googlenet").train()
    out = model(torch.randn(2, 1, 48, 48))
    assert isinstance(out, GoogLeNetOutputs)
    assert out.logits.shape == out.aux1.shape == out.aux2.shape == (2, 7)
    model.eval()
    with torch.no_grad():
        assert isinstance(model(torch.randn(2, 1, 48, 48)), torch.Tensor)
    no_aux = create_model("googlenet", aux_logits=False).train()
    assert isinstance(no_aux(torch.randn(2, 1, 48, 48)), torch.Tensor)
    assert no_aux.aux1 is None and no_aux.aux2 is None


def test_googlenet_imagenet_parameter_counts() -> None:
    def count(**kwargs: object) -> int:
        return n_params(GoogLeNet(num_classes=1000, in_chans=3, stem="imagenet", **kwargs))  # type: ignore[arg-type]

    assert count(aux_logits=False) == 7_005_832
    assert count(aux_logits=True) == 13_385_816
    # torchvision's googlenet, 3x3 in the "5x5" branch
    assert count(aux_logits=False, conv5x5_kernel=3) == 6_624_904


def test_googlenet_imagenet_forward_224() -> None:
    model = GoogLeNet(num_classes=1000, in_chans=3, stem="imagenet").eval()
    assert model.default_input_size == 224
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_googlenet_unknown_stem() -> None:
    with pytest.raises(InceptionFerError, match="unknown googlenet stem 'big'"):
        GoogLeNet(stem="big")  # type: ignore[arg-type]


# --- Inception-v3 -----------------------------------------------------------------------------


def test_inception_v3_matches_torchvision_parameter_counts() -> None:
    assert n_params(InceptionV3(num_classes=1000, in_chans=3)) == 23_834_568
    assert n_params(InceptionV3(num_classes=1000, in_chans=3, aux_logits=True)) == 27_161_264


def test_inception_v3_aux_needs_299_in_training() -> None:
    model = InceptionV3(aux_logits=True)
    assert model.min_input_size == 299
    model.eval()
    assert model.min_input_size == 75
    model.train()
    with pytest.raises(InceptionFerError, match="at least 299x299 pixels, got 75x75"):
        model(torch.randn(2, 1, 75, 75))


@pytest.mark.slow
def test_inception_v3_at_299() -> None:
    model = InceptionV3(aux_logits=True).train()
    out = model(torch.randn(2, 1, 299, 299))
    assert isinstance(out, InceptionV3Outputs)
    assert out.logits.shape == out.aux.shape == (2, 7)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 299, 299)).shape == (1, 7)


# --- mini-Xception ----------------------------------------------------------------------------


def test_mini_xception_parameter_count() -> None:
    model = create_model("mini_xception")
    assert n_params(model) == 56_951
    bn_stats = sum(
        m.running_mean.numel() + m.running_var.numel()
        for m in model.modules()
        if isinstance(m, nn.BatchNorm2d)
    )
    assert n_params(model) + bn_stats == 58_423  # what Keras reports for the original
    assert len([m for m in model.modules() if isinstance(m, XceptionBlock)]) == 4


# --- InceptionFER -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("inception_fer_s", 20e6, 30e6),
        ("inception_fer_f", 55e6, 65e6),
        ("inception_fer_m", 80e6, 120e6),
        ("inception_fer_l", 300e6, 500e6),
    ],
)
def test_inception_fer_compute_budget(name: str, low: float, high: float) -> None:
    model = create_model(name)
    macs = torchinfo.summary(model, input_size=(1, 1, 48, 48), verbose=0).total_mult_adds
    assert low <= macs <= high


def test_inception_fer_grid_sizes() -> None:
    model = create_model("inception_fer_s").eval()
    sizes = []
    x = model.stem(torch.zeros(1, 1, 48, 48))
    sizes.append(x.shape[-1])
    for stage in model.stages:
        x = stage(x)
        sizes.append(x.shape[-1])
    assert sizes == [48, 24, 12, 6]
    assert all(isinstance(m, BranchConcat) for stage in model.stages for m in stage)


def test_inception_fer_custom_stages() -> None:
    model = InceptionFER(stem_width=8, widths=(24, 48), depths=(0, 1)).eval()
    assert model.min_input_size == 4 and model.num_features == 48
    assert model(torch.zeros(1, 1, 16, 16)).shape == (1, 7)


@pytest.mark.parametrize(("act", "layer"), [("silu", nn.SiLU), ("hardswish", nn.Hardswish)])
def test_inception_fer_act_everywhere_with_the_same_weight_names(
    act: str, layer: type[nn.Module]
) -> None:
    relu, other = InceptionFER(), InceptionFER(act=act)
    acts = [type(m) for m in other.modules() if isinstance(m, nn.ReLU | nn.SiLU | nn.Hardswish)]
    assert acts == [layer] * sum(isinstance(m, nn.ReLU) for m in relu.modules())
    other.load_state_dict(relu.state_dict())
    x = torch.randn(2, 1, 48, 48)
    assert not torch.allclose(other.eval()(x), relu.eval()(x))


def test_image_standardize_per_face() -> None:
    x = torch.rand(4, 2, 12, 10) * torch.tensor([1.0, 5.0, 0.2, 3.0]).view(4, 1, 1, 1)
    out = ImageStandardize(eps=0.0)(x)
    var, mean = torch.var_mean(out, dim=(2, 3), correction=0)
    assert torch.allclose(mean, torch.zeros(4, 2), atol=1e-5)
    assert torch.allclose(var, torch.ones(4, 2), atol=1e-4)
    blank = ImageStandardize()(torch.full((1, 1, 8, 8), 0.7))
    assert torch.equal(blank, torch.zeros(1, 1, 8, 8))


def test_inception_fer_standardized_input_ignores_brightness_and_contrast() -> None:
    torch.manual_seed(0)
    plain = InceptionFER(widths=(64, 128, 256)).eval()
    model = InceptionFER(widths=(64, 128, 256), standardize_input=True).eval()
    model.load_state_dict(plain.state_dict())  # no parameters of its own
    x = torch.randn(3, 1, 48, 48)
    changed = 0.5 * x - 1.0
    assert torch.allclose(model(x), model(x + 3.0), atol=1e-4)
    assert torch.allclose(model(x), model(changed), rtol=0.05, atol=0.05)
    assert not torch.allclose(plain(x), plain(changed), rtol=0.05, atol=0.05)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"widths": (64, 128), "depths": (1, 1, 1)}, "one depth per stage width"),
        ({"widths": (20, 80, 160)}, "multiples of 8"),
        ({"widths": (64, 64, 128)}, "at least 16 more"),
        ({"depths": (1, -1, 1)}, "0 or more"),
        ({"act": "gelu"}, "act must be one of relu, silu, hardswish, got 'gelu'"),
    ],
)
def test_inception_fer_rejects_bad_stages(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InceptionFerError, match=message):
        InceptionFER(**kwargs)


# --- blocks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "in_chs", "size", "out_chs", "out_size"),
    [
        (NaiveInception(16, 8, 8, 8), 16, 6, 40, 6),
        (InceptionModule(192, 64, 96, 128, 16, 32, 32), 192, 6, 256, 6),
        (
            InceptionModule(192, 64, 96, 128, 16, 32, 32, use_bn=False, conv5x5_kernel=3),
            192,
            6,
            256,
            6,
        ),
        (FactorisedInception(32, 8, 8, 12, 4, 8, 4), 32, 6, 32, 6),
        (GridReduction(16, 16, 8, 16), 16, 12, 48, 6),
        (InceptionA(192, 32), 192, 9, 256, 9),
        (InceptionB(288), 288, 9, 768, 4),
        (InceptionC(768, 128), 768, 5, 768, 5),
        (InceptionD(768), 768, 9, 1280, 4),
        (InceptionE(1280), 1280, 3, 2048, 3),
    ],
)
def test_branch_blocks(
    block: BranchConcat, in_chs: int, size: int, out_chs: int, out_size: int
) -> None:
    assert isinstance(block, BranchConcat)
    block.eval()
    with torch.no_grad():
        out = block(torch.randn(1, in_chs, size, size))
    assert block.out_chs == out_chs
    assert out.shape == (1, out_chs, out_size, out_size)


def test_naive_inception_has_no_batchnorm_by_default() -> None:
    block = NaiveInception(4, 2, 2, 2)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules())
    assert len(block.branches) == 4


def test_separable_conv_and_xception_block() -> None:
    sep = SeparableConv2d(8, 16)
    assert n_params(sep) == 8 * 9 + 8 * 16
    block = XceptionBlock(8, 16).eval()
    assert block(torch.randn(1, 8, 15, 15)).shape == (1, 16, 8, 8)
