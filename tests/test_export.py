"""ONNX export: every network exports with a dynamic batch axis and folded BatchNorm, ONNX Runtime
gives PyTorch's probabilities, the metadata makes the file self-contained, the CLI checks it, and
the shipped model agrees with PyTorch on real FER2013 faces."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from inception_fer.classes import EMOTIONS
from inception_fer.cli.main import main
from inception_fer.data import load_fer
from inception_fer.errors import CheckpointError, InceptionFerError
from inception_fer.export import METADATA_KEY, export_onnx, onnx_model_bytes
from inception_fer.inference.backends import OnnxBackend, TorchBackend
from inception_fer.inference.recognizer import resolve_checkpoint
from inception_fer.models import list_models
from inception_fer.pretrained import DEFAULT_MODEL, list_pretrained
from inception_fer.training.checkpoint import Checkpoint, CheckpointMeta, save_checkpoint

SLOW_MODELS = {"inception_v3", "inception_tutorial"}  # 87 MB and 335 MB of weights
INPUT_SIZES = {"inception_v3": 75, "mini_xception": 64}
needs_shipped = pytest.mark.skipif(
    DEFAULT_MODEL not in list_pretrained(), reason="the default model's weights are not shipped"
)


def _lively_checkpoint(
    name: str, in_chans: int = 1, seed: int = 0, **model_kwargs: object
) -> Checkpoint:
    """An untrained ``name`` whose BatchNorm statistics are not the identity (so folding them is
    tested) and whose logits spread about one unit (so probabilities are neither flat nor
    one-hot, and a wrong graph shows)."""
    meta = CheckpointMeta(
        model_name=name,
        model_kwargs={"in_chans": in_chans, **model_kwargs},
        class_names=list(EMOTIONS),
        mean=0.5,
        std=0.25,
        input_size=INPUT_SIZES.get(name, 48),
    )
    torch.manual_seed(seed)
    model = meta.build_model().eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)  # type: ignore[operator]
            module.running_var.uniform_(0.5, 2.0)  # type: ignore[operator]
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.2, 0.2)
    classifier = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)][-1]
    x = torch.rand(16, in_chans, meta.input_size, meta.input_size)
    with torch.no_grad():
        spread = model((x - 0.5) / 0.25).std()
        classifier.weight /= spread
        if classifier.bias is not None:
            classifier.bias /= spread
    return Checkpoint(model=model.train(), meta=meta, train_state=None)


def _faces(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_MODELS else n for n in list_models()],
)
def test_every_network_exports_and_matches_pytorch(name: str) -> None:
    _assert_onnx_matches_pytorch(_lively_checkpoint(name))


@pytest.mark.parametrize(
    "option", [{"standardize_input": True}, {"act": "silu"}, {"act": "hardswish"}]
)
def test_inception_fer_options_export_and_match_pytorch(option: dict[str, object]) -> None:
    _assert_onnx_matches_pytorch(_lively_checkpoint("inception_fer_s", **option))


def _assert_onnx_matches_pytorch(checkpoint: Checkpoint) -> None:
    data = onnx_model_bytes(checkpoint)
    assert checkpoint.model.training  # the train/eval mode is restored
    proto = onnx.load_model_from_string(data)
    assert proto.opset_import[0].version == 17
    assert not {"BatchNormalization", "Dropout"} & {node.op_type for node in proto.graph.node}
    (graph_input,) = proto.graph.input
    assert graph_input.name == "pixels"
    assert graph_input.type.tensor_type.shape.dim[0].dim_param == "batch"
    size = checkpoint.meta.input_size
    faces = _faces(5, size)
    onnx_backend, torch_backend = OnnxBackend(data), TorchBackend(checkpoint)
    for n in (1, 5):
        expected = torch_backend.predict_probs(faces[:n])
        assert not np.allclose(expected, 1 / 7, atol=0.01)  # probabilities that tell
        assert expected.max() < 0.99
        np.testing.assert_allclose(onnx_backend.predict_probs(faces[:n]), expected, atol=1e-4)


def test_export_writes_a_checked_self_contained_file(tmp_path: Path) -> None:
    checkpoint = _lively_checkpoint("inception_fer_s", in_chans=3)
    path = save_checkpoint(tmp_path / "run" / "best.safetensors", checkpoint.model, checkpoint.meta)
    info = export_onnx(path.parent, tmp_path / "out" / "model.onnx", opset=13, batch_size_hint=1)
    assert info.path == tmp_path / "out" / "model.onnx" and info.path.is_file()
    assert info.size_bytes == info.path.stat().st_size
    assert (info.opset, info.input_name, info.output_name) == (13, "pixels", "probabilities")
    assert info.input_shape == ("batch", 3, 48, 48) and info.output_shape == ("batch", 7)
    assert [p.name for p in tmp_path.joinpath("out").iterdir()] == ["model.onnx"]  # no temp file
    proto = onnx.load(info.path)
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version == 13
    stored = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
    assert stored["class_names"] == list(EMOTIONS) and stored["model_name"] == "inception_fer_s"
    assert (stored["input_size"], stored["in_chans"], stored["opset"]) == (48, 3, 13)
    assert (stored["mean"], stored["std"]) == (0.5, 0.25)
    backend = OnnxBackend(info.path)
    assert backend.meta.class_names == list(EMOTIONS) and backend.meta.input_size == 48
    faces = _faces(4, 48)
    np.testing.assert_allclose(
        backend.predict_probs(faces, tta="tencrop", batch_size=3),
        TorchBackend(checkpoint).predict_probs(faces, tta="tencrop", batch_size=3),
        atol=1e-4,
    )


def test_bad_input_gives_one_line_errors(tmp_path: Path) -> None:
    checkpoint = _lively_checkpoint("mini_xception")
    with pytest.raises(InceptionFerError, match=r"model 'nope' is neither a shipped model"):
        export_onnx("nope", tmp_path / "model.onnx")
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(InceptionFerError, match=r"could not write .*file\.txt/model\.onnx"):
        export_onnx(checkpoint, blocker / "model.onnx")
    with pytest.raises(InceptionFerError, match=r"opset must be in \[13, 20\], got 9"):
        onnx_model_bytes(checkpoint, opset=9)
    with pytest.raises(InceptionFerError, match="batch_size_hint must be at least 1"):
        onnx_model_bytes(checkpoint, batch_size_hint=0)
    stripped = onnx.load_model_from_string(onnx_model_bytes(checkpoint))
    del stripped.metadata_props[:]
    onnx.save(stripped, tmp_path / "plain.onnx")
    with pytest.raises(CheckpointError, match=r"plain\.onnx has no 'inception_fer' metadata"):
        OnnxBackend(tmp_path / "plain.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match=r"junk\.onnx is not a readable ONNX model"):
        OnnxBackend(tmp_path / "junk.onnx")
    with pytest.raises(CheckpointError, match="ONNX model not found"):
        OnnxBackend(tmp_path / "missing.onnx")


def test_cli_export_prints_the_model_and_its_agreement_with_pytorch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = _lively_checkpoint("inception_fer_s")
    path = save_checkpoint(tmp_path / "model.safetensors", checkpoint.model, checkpoint.meta)
    out = tmp_path / "model.onnx"
    assert main(["export", str(path), "-o", str(out), "--opset", "18"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "opset 18" in printed
    assert "pixels: float32 ['batch', 1, 48, 48]" in printed
    assert "probabilities: float32 ['batch', 7]" in printed
    diff = re.search(r"PyTorch\| probability on 8 random faces: (\S+)", printed)
    assert diff is not None and float(diff.group(1)) < 1e-4
    assert onnx.load(out).opset_import[0].version == 18
    assert main(["export", "nope", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "model 'nope' is neither a shipped model" in err


def _public_test(fer2013_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """All of PublicTest (the shared test/ folder), read as one folder of class folders."""
    data = load_fer(fer2013_dir / "test")
    images = np.concatenate([data.train.images, data.val.images])
    labels = np.concatenate([data.train.labels, data.val.labels])
    assert images.shape == (3589, 48, 48)
    return images, labels


def _agree_on_real_faces(images: np.ndarray, labels: np.ndarray) -> None:
    checkpoint = resolve_checkpoint("default")
    torch_probs = TorchBackend(checkpoint).predict_probs(images, batch_size=256)
    onnx_probs = OnnxBackend.from_checkpoint(checkpoint).predict_probs(images, batch_size=256)
    np.testing.assert_allclose(onnx_probs, torch_probs, atol=1e-4)
    assert np.array_equal(onnx_probs.argmax(1), torch_probs.argmax(1))
    assert (onnx_probs.argmax(1) == labels).mean() > 0.5  # a trained model, not noise


@needs_shipped
def test_shipped_model_agrees_on_real_fer2013_faces(fer2013_dir: Path) -> None:
    images, labels = _public_test(fer2013_dir)
    _agree_on_real_faces(images[:256], labels[:256])


@pytest.mark.slow
@needs_shipped
def test_shipped_model_agrees_on_all_of_public_test(fer2013_dir: Path) -> None:
    _agree_on_real_faces(*_public_test(fer2013_dir))
