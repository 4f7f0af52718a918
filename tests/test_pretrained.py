"""Shipped weights: found by name, loaded with no download, clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import inception_fer.pretrained as pretrained
from inception_fer import create_model
from inception_fer.errors import InceptionFerError
from inception_fer.training.checkpoint import CheckpointMeta, save_checkpoint


@pytest.fixture
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(pretrained, "_weights_dir", lambda: tmp_path)
    meta = CheckpointMeta(
        model_name="mini_xception",
        model_kwargs={"in_chans": 1},
        class_names=["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
        mean=0.5,
        std=0.25,
    )
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "mini_xception.safetensors", meta.build_model(), meta)
    return tmp_path


def test_loads_by_name_in_eval_mode(weights_dir: Path) -> None:
    assert pretrained.list_pretrained() == ["mini_xception"]
    model = pretrained.load_pretrained("mini_xception")
    assert not model.training
    shipped = pretrained.load_pretrained_checkpoint("mini_xception")
    assert shipped.meta.mean == 0.5
    for a, b in zip(model.state_dict().values(), shipped.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_create_model_pretrained(weights_dir: Path) -> None:
    model = create_model("mini_xception", pretrained=True)
    reference = pretrained.load_pretrained("mini_xception")
    x = torch.rand(2, 1, 48, 48)
    model.eval()
    assert torch.equal(model(x), reference(x))


def test_unknown_name_lists_what_ships(weights_dir: Path) -> None:
    with pytest.raises(
        InceptionFerError, match=r"no pretrained weights for 'googlenet'.*mini_xception"
    ):
        pretrained.load_pretrained("googlenet")


def test_incompatible_arguments(weights_dir: Path) -> None:
    with pytest.raises(InceptionFerError, match="num_classes=7, not 3"):
        create_model("mini_xception", pretrained=True, num_classes=3)


def test_constructor_arguments_are_honoured_with_the_shipped_weights(weights_dir: Path) -> None:
    reference = pretrained.load_pretrained("mini_xception")
    model = create_model("mini_xception", pretrained=True, drop_rate=0.4)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.4]
    assert not model.training
    x = torch.rand(2, 1, 48, 48)
    assert torch.equal(model(x), reference(x))  # dropout is off in eval mode


def test_arguments_the_weights_do_not_fit_are_refused_with_the_reason(weights_dir: Path) -> None:
    with pytest.raises(
        InceptionFerError,
        match=r"shipped weights of 'mini_xception' do not fit mini_xception built with "
        r"widths=\(16, 32, 64, 256\): .* of the wrong shape",
    ):
        pretrained.load_pretrained("mini_xception", widths=(16, 32, 64, 256))


def test_shipped_silu_variant_is_inception_fer_f_with_silu() -> None:
    model = create_model("inception_fer_f_silu", pretrained=True)
    acts = {type(m) for m in model.modules() if isinstance(m, (nn.ReLU, nn.SiLU))}
    assert acts == {nn.SiLU}
    same_network = create_model("inception_fer_f", act="silu")
    assert model.state_dict().keys() == same_network.state_dict().keys()
    assert "inception_fer_f_silu" in pretrained.list_pretrained()
    with pytest.raises(InceptionFerError, match="has SiLU activations, not act='relu'"):
        create_model("inception_fer_f_silu", act="relu")


README_FIGURES = {
    "inception_fer_f": (0.682, 0.689, 0.695),
    "inception_fer_f_silu": (0.690, 0.694, 0.696),
    "inception_fer_f_ensemble": (0.695, 0.709, 0.707),
    "inception_fer_f_pair": (0.695, 0.702, 0.703),
}
"""Each shipped model's PublicTest accuracy without TTA, with flip and with shift, as the README
gives it (rounded down)."""


@pytest.mark.slow
@pytest.mark.parametrize("name", list(README_FIGURES))
def test_shipped_model_scores_what_the_readme_says(name: str, fer2013_dir: Path, tmp_path: Path):
    """The real shipped weights on the whole PublicTest: at least the README's figures (rounded
    down), and TTA at least as good as none."""
    from inception_fer.evaluation.evaluate import evaluate_checkpoint

    path = pretrained.pretrained_path(name)
    scores = [
        evaluate_checkpoint(path, fer2013_dir, tmp_path / tta, tta=tta, device="cpu").report
        for tta in ("none", "flip", "shift")
    ]
    assert scores[0].support.sum() == 3589
    for report, least in zip(scores, README_FIGURES[name], strict=True):
        assert report.accuracy >= least
    assert min(scores[1].accuracy, scores[2].accuracy) >= scores[0].accuracy


def test_shipped_ensemble_is_four_inception_fer_f_networks() -> None:
    shipped = pretrained.load_pretrained_checkpoint("inception_fer_f_ensemble")
    assert shipped.meta.model_name == "ensemble"
    members = shipped.model.members
    assert [type(m).__name__ for m in members] == ["InceptionFER"] * 4
    single = pretrained.load_pretrained("inception_fer_f")
    first = members[0].state_dict()
    assert all(torch.equal(v, first[k]) for k, v in single.state_dict().items())
    assert [s["model"] for s in shipped.meta.extra["members"]] == [
        "inception_fer_f",
        *["inception_fer_f_silu"] * 3,
    ]


def test_shipped_pair_is_two_silu_networks_trained_with_muon() -> None:
    shipped = pretrained.load_pretrained_checkpoint("inception_fer_f_pair")
    assert shipped.meta.model_name == "ensemble"
    assert [type(m).__name__ for m in shipped.model.members] == ["InceptionFER"] * 2
    members = shipped.meta.extra["members"]
    assert [s["model"] for s in members] == ["inception_fer_f_silu"] * 2
    assert [s["checkpoint"] for s in members] == ["runs/m0", "runs/m1"]
    first, second = (m.state_dict() for m in shipped.model.members)
    assert any(not torch.equal(v, second[k]) for k, v in first.items())


def test_the_default_is_the_pair_and_names_resolve_to_it() -> None:
    assert pretrained.DEFAULT_MODEL == "inception_fer_f_pair"
    assert pretrained.pretrained_path("default") == pretrained.pretrained_path(
        "inception_fer_f_pair"
    )
    assert pretrained.shipped_name("default") == "inception_fer_f_pair"
    assert pretrained.shipped_name("inception_fer_f_silu") == "inception_fer_f_silu"
    assert pretrained.shipped_name("runs/m0") is None
    assert pretrained.shipped_name(Path("inception_fer_f")) is None  # a path, not a name
