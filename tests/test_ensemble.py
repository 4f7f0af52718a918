"""Ensembles: the ``ensemble`` network, checkpoints combined into one, and what runs on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from inception_fer.classes import EMOTIONS
from inception_fer.cli.main import main
from inception_fer.errors import InceptionFerError
from inception_fer.explain.gradcam import grad_cam
from inception_fer.export.onnx_export import onnx_model_bytes
from inception_fer.inference.backends import OnnxBackend, TorchBackend
from inception_fer.models import create_model
from inception_fer.models.ensemble import Ensemble
from inception_fer.pretrained import list_pretrained
from inception_fer.training.checkpoint import (
    Checkpoint,
    CheckpointMeta,
    load_checkpoint,
    save_checkpoint,
)
from inception_fer.training.ensemble import combine_checkpoints

MEMBERS = ["inception_fer_s", {"model": "inception_fer_s", "act": "silu"}]


def _member_checkpoint(folder: Path, seed: int, **meta_changes: object) -> Path:
    """An untrained inception_fer_s checkpoint whose weights (and so answers) depend on
    ``seed``."""
    fields: dict = {"class_names": list(EMOTIONS), "mean": 0.5, "std": 0.25} | meta_changes
    meta = CheckpointMeta("inception_fer_s", {"in_chans": 1}, epoch=3 + seed, **fields)
    torch.manual_seed(seed)
    model = meta.build_model()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.3 * torch.randn_like(param))
    return save_checkpoint(folder / f"member{seed}.safetensors", model, meta)


def _faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


# --- the network ------------------------------------------------------------------------------


def test_outputs_the_log_of_the_members_mean_probabilities() -> None:
    torch.manual_seed(0)
    model = create_model("ensemble", members=MEMBERS).eval()
    x = torch.randn(4, 1, 48, 48)
    with torch.no_grad():
        out = model(x)
        first, second = (member(x).softmax(1) for member in model.members)
    assert not torch.allclose(first, second, atol=1e-3)
    torch.testing.assert_close(out, ((first + second) / 2).log())
    torch.testing.assert_close(out.exp().sum(1), torch.ones(4))


def test_features_stack_the_members_maps_and_the_head_splits_them() -> None:
    model = create_model("ensemble", members=MEMBERS, num_classes=3).eval()
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, 320, 6, 6)
        torch.testing.assert_close(model.forward_head(features), model(x))
        pre = model.forward_head(features, pre_logits=True)
        first = model.members[0].forward_head(features[:, :160], pre_logits=True)
    assert pre.shape == (2, model.num_features) == (2, 320)
    torch.testing.assert_close(pre[:, :160], first)
    assert model.head_names() == ("members.0.fc", "members.1.fc")
    assert not any(isinstance(m, nn.SiLU) for m in model.members[0].modules())
    assert any(isinstance(m, nn.SiLU) for m in model.members[1].modules())


def test_arguments_reach_every_member() -> None:
    model = create_model("ensemble", members=MEMBERS, in_chans=3, num_classes=5, drop_rate=0.4)
    assert isinstance(model, Ensemble)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.4, 0.4]
    assert all(member.fc.out_features == 5 for member in model.members)
    assert model(torch.randn(2, 3, 48, 48)).shape == (2, 5)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([], "needs a list of members"),
        ("inception_fer_s", "needs a list of members"),
        (["inception_fer_s", "mini_xception"], r"different input sizes \[48, 64\]"),
        (
            ["inception_fer_s", {"model": "inception_fer_s", "widths": [40, 80], "depths": [1, 1]}],
            r"different grids \(6x6, 12x12\) at 48x48",
        ),
        ([{"model": "inception_fer_s", "num_classes": 3}], "sets num_classes; give it to the"),
        ([{"act": "silu"}], "a mapping with a 'model' name"),
        (["nope"], "unknown model 'nope'"),
    ],
)
def test_members_that_cannot_form_one_network_are_refused(members: object, message: str) -> None:
    with pytest.raises(InceptionFerError, match=message):
        create_model("ensemble", members=members)


# --- checkpoints combined ---------------------------------------------------------------------


def test_cli_combines_checkpoints_into_one_that_averages_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [_member_checkpoint(tmp_path, seed) for seed in (0, 1)]
    out = tmp_path / "pair.safetensors"
    assert main(["ensemble", *map(str, paths), "-o", str(out)]) == 0
    assert "an ensemble of 2 (inception_fer_s, inception_fer_s)" in capsys.readouterr().out

    combined = load_checkpoint(out)
    assert combined.meta.model_name == "ensemble"
    assert combined.meta.mean == 0.5 and combined.meta.std == 0.25
    sources = combined.meta.extra["members"]
    assert [s["checkpoint"] for s in sources] == [str(p) for p in paths]
    assert [s["epoch"] for s in sources] == [3, 4]
    faces = _faces(6)
    members = [TorchBackend(load_checkpoint(path)).predict_probs(faces) for path in paths]
    assert not np.array_equal(members[0].argmax(1), members[1].argmax(1))
    together = TorchBackend(combined).predict_probs(faces)
    np.testing.assert_allclose(together, (members[0] + members[1]) / 2, atol=1e-5)


def test_cli_keeps_an_existing_output_unless_told(tmp_path: Path) -> None:
    paths = [str(_member_checkpoint(tmp_path, seed)) for seed in (0, 1)]
    out = tmp_path / "pair.safetensors"
    out.write_bytes(b"precious")
    assert main(["ensemble", *paths, "-o", str(out)]) == 2
    assert out.read_bytes() == b"precious"
    assert main(["ensemble", *paths, "-o", str(out), "--overwrite"]) == 0
    assert load_checkpoint(out).meta.model_name == "ensemble"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"class_names": list("abcdefg")}, "must share their classes"),
        ({"input_size": 40}, "must share their input size"),
        ({"mean": 0.4}, r"mean 0\.400000 / std 0\.250000 .* trained on the same data"),
    ],
)
def test_members_that_do_not_match_are_refused_with_the_reason(
    tmp_path: Path, changes: dict, message: str
) -> None:
    paths = [_member_checkpoint(tmp_path, 0), _member_checkpoint(tmp_path, 1, **changes)]
    with pytest.raises(InceptionFerError, match=message):
        combine_checkpoints([load_checkpoint(p) for p in paths], paths)


def test_an_ensemble_of_ensembles_nests(tmp_path: Path) -> None:
    paths = [_member_checkpoint(tmp_path, seed) for seed in (0, 1, 2)]
    loaded = [load_checkpoint(p) for p in paths]
    pair = combine_checkpoints(loaded[:2], paths[:2])
    nested = combine_checkpoints([pair, loaded[2]], ["pair", paths[2]])
    saved = load_checkpoint(save_checkpoint(tmp_path / "n.safetensors", nested.model, nested.meta))
    faces = _faces(4)
    probs = [TorchBackend(c).predict_probs(faces) for c in (pair, loaded[2])]
    np.testing.assert_allclose(
        TorchBackend(saved).predict_probs(faces), (probs[0] + probs[1]) / 2, atol=1e-5
    )


def test_evaluating_the_combined_checkpoint_equals_evaluating_its_members(
    tmp_path: Path, npy_dataset: Path
) -> None:
    from inception_fer.evaluation.evaluate import evaluate_checkpoint, evaluate_ensemble

    paths = [_member_checkpoint(tmp_path, seed) for seed in (0, 1)]
    out = tmp_path / "pair.safetensors"
    assert main(["ensemble", *map(str, paths), "-o", str(out)]) == 0
    one = evaluate_checkpoint(out, npy_dataset, tmp_path / "one", tta="flip", device="cpu")
    apart = evaluate_ensemble(paths, npy_dataset, tmp_path / "apart", tta="flip", device="cpu")
    assert one.report.accuracy == apart.report.accuracy
    assert one.report.nll == pytest.approx(apart.report.nll, rel=1e-4)
    assert json.loads(one.report_json.read_text())["model"] == "ensemble"


# --- what runs on an ensemble -----------------------------------------------------------------


def _combined(tmp_path: Path) -> Checkpoint:
    paths = [_member_checkpoint(tmp_path, seed) for seed in (0, 1)]
    return combine_checkpoints([load_checkpoint(p) for p in paths], paths)


def test_exports_to_onnx_matching_pytorch(tmp_path: Path) -> None:
    combined = _combined(tmp_path)
    faces = _faces(5)
    expected = TorchBackend(combined).predict_probs(faces)
    assert expected.max() < 0.99 and not np.allclose(expected, 1 / 7, atol=0.01)
    onnx_probs = OnnxBackend(onnx_model_bytes(combined)).predict_probs(faces)
    np.testing.assert_allclose(onnx_probs, expected, atol=1e-4)


def test_grad_cam_explains_the_ensembles_decision() -> None:
    torch.manual_seed(0)
    model = create_model("ensemble", members=MEMBERS).eval()
    x = torch.randn(2, 1, 48, 48)
    cams, probs = grad_cam(model, x)
    assert cams.shape == (2, 48, 48)
    assert torch.allclose(cams.amax(dim=(1, 2)), torch.ones(2))
    with torch.no_grad():
        torch.testing.assert_close(probs, model(x).softmax(1))
    # the map of the ensemble is not that of either member
    for member in model.members:
        assert not torch.allclose(grad_cam(member, x)[0], cams, atol=1e-3)


@pytest.mark.skipif(
    {"inception_fer_f", "inception_fer_f_silu"} - set(list_pretrained()),
    reason="the shipped models' weights are not in the package",
)
def test_shipped_models_combine_by_name(tmp_path: Path) -> None:
    out = tmp_path / "shipped.safetensors"
    assert main(["ensemble", "inception_fer_f", "inception_fer_f_silu", "-o", str(out)]) == 0
    sources = load_checkpoint(out).meta.extra["members"]
    assert [s["model"] for s in sources] == ["inception_fer_f", "inception_fer_f_silu"]
