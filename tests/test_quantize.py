"""int8 ONNX models: static QDQ quantisation gives a valid, self-describing file whose
probabilities stay close to float32, the CLI writes and checks one, ``EmotionRecognizer`` and
``inception-fer serve`` run it, and on real FER2013 faces the shipped model keeps its accuracy."""

from __future__ import annotations

import io
import json
import re
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from PIL import Image
from torch import nn

from conftest import make_faces
from inception_fer.classes import EMOTIONS
from inception_fer.cli.main import main
from inception_fer.data import load_fer
from inception_fer.errors import CheckpointError, DataError, InceptionFerError
from inception_fer.export import (
    METADATA_KEY,
    calibration_split,
    export_int8_onnx,
    onnx_model_bytes,
    quantize,
    quantize_onnx,
)
from inception_fer.inference import EmotionRecognizer
from inception_fer.inference.backends import OnnxBackend, TorchBackend
from inception_fer.inference.recognizer import resolve_checkpoint
from inception_fer.pretrained import DEFAULT_MODEL, list_pretrained
from inception_fer.training.checkpoint import Checkpoint, CheckpointMeta, save_checkpoint

MAX_DIFF, MEAN_DIFF, MIN_AGREEMENT = 0.1, 0.01, 0.90
"""int8 against float32 on generated faces: the half-trained network below gives 0.03, 0.002 and
99 % (its top-2 margins are under 0.05 on a quarter of the faces, so rounding noise can flip some).
The bounds leave room for other CPUs' kernels, and a broken quantisation (a wrong scale, a lost
zero point) moves probabilities by tenths and agreement towards chance (1/7)."""


def _half_trained() -> Checkpoint:
    """inception_fer_s after 15 Adam steps on generated faces: about 75 % right, classes spread,
    probabilities neither flat nor one-hot (so int8 errors show in them and in the top class)."""
    meta = CheckpointMeta("inception_fer_s", {"in_chans": 1}, list(EMOTIONS), mean=0.5, std=0.25)
    torch.manual_seed(0)
    model = meta.build_model()
    images, labels = make_faces(448, seed=1)
    x = (torch.from_numpy(images).float()[:, None] / 255 - 0.5) / 0.25
    y = torch.from_numpy(labels)
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(15):
        pick = torch.randint(0, len(x), (32,), generator=generator)
        out = model(x[pick])
        loss = nn.functional.cross_entropy(out[0] if isinstance(out, tuple) else out, y[pick])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return Checkpoint(model=model.eval(), meta=meta, train_state=None)


@pytest.fixture(scope="module")
def checkpoint() -> Checkpoint:
    return _half_trained()


@pytest.fixture(scope="module")
def int8_file(checkpoint: Checkpoint, tmp_path_factory: pytest.TempPathFactory) -> Path:
    calibration, _ = make_faces(256, seed=2)
    folder = tmp_path_factory.mktemp("int8")
    export_int8_onnx(checkpoint, folder / "model.int8.onnx", calibration, source="generated")
    return folder / "model.int8.onnx"


def _stored(path: Path) -> dict:
    proto = onnx.load(path)
    return json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])


def test_int8_concat_inputs_share_the_output_scale(int8_file: Path) -> None:
    """Each Inception module's branches are quantised on the concatenation's range, so ONNX
    Runtime's QLinearConcat copies bytes rather than rescaling each branch. A grid reduction's
    max-pool branch keeps its input's scale (ONNX Runtime ties a max-pool's to its input)."""
    proto = onnx.load(int8_file)
    values = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    producer = {out: node for node in proto.graph.node for out in node.output}
    consumers = [node for node in proto.graph.node if node.op_type == "QuantizeLinear"]
    concats = [node for node in proto.graph.node if node.op_type == "Concat"]
    assert len(concats) == 8  # inception_fer_s: 3 grid reductions, 5 Inception modules
    for concat in concats:
        (quantize,) = (node for node in consumers if node.input[0] == concat.output[0])
        out_scale, out_zero = values[quantize.input[1]], values[quantize.input[2]]
        for name in concat.input:
            dequantize = producer[name]
            assert dequantize.op_type == "DequantizeLinear"
            if producer[producer[dequantize.input[0]].input[0]].op_type == "MaxPool":
                continue
            assert values[dequantize.input[1]] == out_scale
            assert values[dequantize.input[2]] == out_zero


def test_int8_file_is_valid_quantised_and_self_describing(int8_file: Path) -> None:
    assert [p.name for p in int8_file.parent.iterdir()] == ["model.int8.onnx"]  # no temp file
    proto = onnx.load(int8_file)
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]  # standard ops only
    ops = {node.op_type for node in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "Softmax"} <= ops
    int8_weights = [
        array
        for array in map(numpy_helper.to_array, proto.graph.initializer)
        if array.dtype == np.int8 and array.ndim == 4
    ]
    convs = sum(node.op_type == "Conv" for node in proto.graph.node)
    assert len(int8_weights) == convs  # every convolution's weights are int8
    softmax = next(node for node in proto.graph.node if node.op_type == "Softmax")
    assert softmax.output[0] == "probabilities"  # left in float: probabilities are not rounded
    stored = _stored(int8_file)
    assert stored["model_name"] == "inception_fer_s" and stored["class_names"] == list(EMOTIONS)
    quantization = stored["quantization"]
    assert quantization["weights"] == "int8 per channel" and quantization["activations"] == "uint8"
    assert quantization["weight_range"] == "7-bit"  # right on CPUs without VNNI too
    assert quantization["calibration"] == "MinMax" and quantization["calibration_size"] == 256
    assert quantization["calibration_source"] == "generated"
    backend = OnnxBackend(int8_file)
    assert backend.meta.model_name == "inception_fer_s" and backend.meta.input_size == 48


def test_int8_probabilities_stay_close_to_float32(checkpoint: Checkpoint, int8_file: Path) -> None:
    faces, labels = make_faces(700, seed=3)  # not the calibration faces
    fp32 = TorchBackend(checkpoint).predict_probs(faces)
    assert 0.5 < (fp32.argmax(1) == labels).mean() < 0.95  # a network neither blind nor sure
    int8 = OnnxBackend(int8_file).predict_probs(faces)
    np.testing.assert_allclose(int8.sum(1), 1, atol=1e-5)
    diff = np.abs(int8 - fp32)
    assert 0 < diff.mean() < MEAN_DIFF and diff.max() < MAX_DIFF  # quantised, but not broken
    assert (int8.argmax(1) == fp32.argmax(1)).mean() >= MIN_AGREEMENT
    flipped = OnnxBackend(int8_file).predict_probs(faces, tta="flip")
    assert not np.allclose(flipped, int8, atol=1e-3)  # TTA works on it too


def _weight_extremes(data: bytes) -> tuple[int, int]:
    """The smallest and largest int8 convolution weight of a quantised model."""
    arrays = [numpy_helper.to_array(t) for t in onnx.load_model_from_string(data).graph.initializer]
    weights = np.concatenate([a.ravel() for a in arrays if a.dtype == np.int8 and a.ndim == 4])
    return int(weights.min()), int(weights.max())


@pytest.fixture(scope="module")
def reduced_and_full(checkpoint: Checkpoint) -> tuple[bytes, bytes]:
    """The half-trained network in int8 with 7-bit (the default) and with full-range weights."""
    fp32, (calibration, _) = onnx_model_bytes(checkpoint), make_faces(64, seed=2)
    return quantize_onnx(fp32, calibration), quantize_onnx(fp32, calibration, reduce_range=False)


def test_weights_use_7_bits_unless_full_range_is_asked_for(
    reduced_and_full: tuple[bytes, bytes],
) -> None:
    """7-bit weights (-64..64) keep ``vpmaddubsw``'s int16 sums from saturating on CPUs without
    VNNI; full-range ones reach +-127 and say so in the metadata."""
    reduced, full = reduced_and_full
    low, high = _weight_extremes(reduced)
    assert 60 <= max(-low, high) <= 64  # the 7-bit range, used
    low, high = _weight_extremes(full)
    assert 120 <= max(-low, high) <= 128
    for data, weight_range in ((reduced, "7-bit"), (full, "full")):
        props = onnx.load_model_from_string(data).metadata_props
        stored = json.loads({p.key: p.value for p in props}[METADATA_KEY])
        assert stored["quantization"]["weight_range"] == weight_range


@pytest.mark.parametrize("vnni", [True, False, None])
def test_full_range_file_warns_only_on_a_cpu_it_overflows(
    reduced_and_full: tuple[bytes, bytes], vnni: bool | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    reduced, full = reduced_and_full
    monkeypatch.setattr(quantize, "cpu_has_vnni", lambda: vnni)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        OnnxBackend(reduced)
        OnnxBackend(full)
    messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
    if vnni is False:  # an x86 CPU without VNNI: the full-range file only
        assert len(messages) == 1 and "full-range int8 weights" in messages[0]
        assert "without --int8-full-range" in messages[0]
    else:
        assert messages == []


@pytest.mark.parametrize(
    ("quantization", "saturates"),
    [
        ({}, False),  # a float32 file
        ({"weights": "int8 per channel"}, True),  # written before weight_range: full range
        ({"weights": "int8 per channel", "weight_range": "full"}, True),
        ({"weights": "int8 per channel", "weight_range": "7-bit"}, False),
    ],
)
def test_saturates_here_only_for_full_range_weights_on_cpus_without_vnni(
    quantization: dict, saturates: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quantize, "cpu_has_vnni", lambda: False)
    assert quantize.saturates_here(quantization) is saturates
    monkeypatch.setattr(quantize, "cpu_has_vnni", lambda: True)
    assert quantize.saturates_here(quantization) is False


def test_bad_calibration_or_model_is_a_clear_error(checkpoint: Checkpoint, int8_file: Path) -> None:
    fp32 = onnx_model_bytes(checkpoint)
    with pytest.raises(DataError, match="calibration faces must be a uint8 array, got float32"):
        quantize_onnx(fp32, np.zeros((4, 48, 48), np.float32))
    with pytest.raises(
        DataError, match=r"shaped \(N, 48, 48\) with N >= 1, got shape \(4, 64, 64\)"
    ):
        quantize_onnx(fp32, np.zeros((4, 64, 64), np.uint8))
    with pytest.raises(DataError, match=r"got shape \(0, 48, 48\)"):
        quantize_onnx(fp32, np.zeros((0, 48, 48), np.uint8))
    with pytest.raises(InceptionFerError, match=r"model\.int8\.onnx is quantised already"):
        quantize_onnx(int8_file, np.zeros((4, 48, 48), np.uint8))
    with pytest.raises(CheckpointError, match=r"ONNX model not found: .*missing\.onnx"):
        quantize_onnx(int8_file.parent / "missing.onnx", np.zeros((4, 48, 48), np.uint8))
    with pytest.raises(CheckpointError, match="the exported model is not a readable ONNX model"):
        quantize_onnx(b"junk", np.zeros((4, 48, 48), np.uint8))


def test_calibration_split_is_seeded_and_disjoint() -> None:
    faces = np.arange(100, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8)
    calibration, held_out = calibration_split(faces, 30, holdout=50)
    assert (len(calibration), len(held_out)) == (30, 50)
    assert not set(calibration[:, 0, 0]) & set(held_out[:, 0, 0])
    again, _ = calibration_split(faces, 30, holdout=50)
    assert np.array_equal(again, calibration)
    assert not np.array_equal(calibration_split(faces, 30, seed=1)[0], calibration)
    everything, rest = calibration_split(faces, 500, holdout=10)  # fewer faces than asked
    assert len(everything) == 100 and len(rest) == 0
    with pytest.raises(InceptionFerError, match="calibration size must be at least 1"):
        calibration_split(faces, 0)


def test_cli_exports_int8_and_checks_it_on_held_out_train_faces(
    checkpoint: Checkpoint,
    npy_dataset: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = save_checkpoint(tmp_path / "model.safetensors", checkpoint.model, checkpoint.meta)
    out = tmp_path / "m.int8.onnx"
    argv = ["export", str(path), "-o", str(out), "--int8", "--calibration", str(npy_dataset)]
    assert main([*argv, "--calibration-size", "32"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "int8 (static QDQ)" in printed
    assert f"calibrated on 32 random train faces of {npy_dataset}" in printed
    assert "random faces" not in printed  # the int8 check is on real, held-out faces
    diff = re.search(r"PyTorch\| probability on 52 held-out train faces: (\S+)", printed)
    assert diff is not None and 0 < float(diff.group(1)) < MAX_DIFF  # 84 train faces - 32
    agreement = re.search(r"top-1 agreement with PyTorch float32 on 52 .*: (\S+)%", printed)
    assert agreement is not None and float(agreement.group(1)) >= 100 * MIN_AGREEMENT
    quantization = _stored(out)["quantization"]
    assert quantization["calibration_size"] == 32
    assert quantization["calibration_source"] == f"32 random train faces of {npy_dataset}"


def test_cli_int8_full_range_says_so_in_its_output_and_file(
    checkpoint: Checkpoint, npy_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = save_checkpoint(tmp_path / "model.safetensors", checkpoint.model, checkpoint.meta)
    out = tmp_path / "m.int8.onnx"
    argv = ["export", str(path), "-o", str(out), "--int8", "--int8-full-range"]
    assert main([*argv, "--calibration", str(npy_dataset), "--check-faces", "0"]) == 0
    assert "int8 (static QDQ, full-range weights)" in capsys.readouterr().out
    assert _stored(out)["quantization"]["weight_range"] == "full"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--int8"], "--int8 needs --calibration DATA"),
        (["--calibration", "data"], "--calibration is for --int8 only"),
        (["--int8-full-range"], "--int8-full-range is for --int8 only"),
        (["--int8", "--calibration", "d", "--calibration-size", "0"], "must be at least 1, got 0"),
        (["--int8", "--calibration", "nowhere"], "dataset path nowhere does not exist"),
    ],
)
def test_cli_int8_option_errors_are_one_line(
    options: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = CheckpointMeta("mini_xception", {"in_chans": 1}, list(EMOTIONS), 0.5, 0.25)
    path = save_checkpoint(tmp_path / "m.safetensors", checkpoint.build_model(), checkpoint)
    out = tmp_path / "m.int8.onnx"
    assert main(["export", str(path), "-o", str(out), *options]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err
    assert not out.exists()


def test_recognizer_runs_an_int8_file(checkpoint: Checkpoint, int8_file: Path) -> None:
    recognizer = EmotionRecognizer(model=int8_file, detector="haar", backend="onnx", threads=2)
    assert recognizer.backend == "onnx" and recognizer.meta.model_name == "inception_fer_s"
    assert isinstance(recognizer.engine, OnnxBackend) and recognizer.engine.threads == 2
    faces, _ = make_faces(50, seed=4)
    probs = recognizer.predict_faces(faces)
    np.testing.assert_array_equal(probs, OnnxBackend(int8_file).predict_probs(faces))
    fp32 = TorchBackend(checkpoint).predict_probs(faces)
    assert np.abs(probs - fp32).max() < MAX_DIFF


def test_serve_cli_runs_an_int8_file(int8_file: Path, tmp_path: Path) -> None:
    httpx = pytest.importorskip("httpx")
    serve_http = pytest.importorskip("test_serve_http")  # skips without scikit-image
    photo = serve_http.jpeg(serve_http.skimage_data.astronaut())
    options = [
        "--model",
        str(int8_file),
        "--backend",
        "onnx",
        "--detector",
        "haar",
        "--threads",
        "2",
    ]
    process, url = serve_http.start_cli_server(tmp_path / "server.log", *options)
    try:
        info = httpx.get(f"{url}/v1/models", timeout=30).json()["model"]
        files = {"file": ("a.jpg", photo, "image/jpeg")}
        result = httpx.post(f"{url}/v1/predict", files=files, timeout=30).json()
    finally:
        serve_http.stop(process)
    assert (info["name"], info["backend"], info["detector"]) == ("inception_fer_s", "onnx", "haar")
    recognizer = EmotionRecognizer(int8_file, "haar", backend="onnx")
    expected = recognizer.predict(np.asarray(Image.open(io.BytesIO(photo)).convert("RGB")))
    assert len(result["faces"]) == len(expected) >= 1
    for face, want in zip(result["faces"], expected, strict=True):
        assert face["probabilities"] == pytest.approx(want.probabilities, abs=1e-3)


needs_shipped = pytest.mark.skipif(
    DEFAULT_MODEL not in list_pretrained(), reason="the default model's weights are not shipped"
)


@pytest.mark.slow
@needs_shipped
def test_shipped_model_int8_keeps_its_accuracy_on_public_test(
    fer2013_dir: Path, tmp_path: Path
) -> None:
    """The CLI's recipe (512 random train faces) on the shipped model, checked on all of
    PublicTest: its first 512 faces in load order are angry and disgust only."""
    data = load_fer(fer2013_dir)
    calibration, _ = calibration_split(data.train.images)
    shipped = resolve_checkpoint("default")
    path = export_int8_onnx(shipped, tmp_path / "m.int8.onnx", calibration).path
    images, labels = data.val.images, data.val.labels
    assert images.shape == (3589, 48, 48)
    fp32 = TorchBackend(shipped).predict_probs(images, batch_size=256)
    int8 = OnnxBackend(path).predict_probs(images, batch_size=256)
    assert (int8.argmax(1) == fp32.argmax(1)).mean() >= 0.97
    fp32_accuracy = (fp32.argmax(1) == labels).mean()
    assert fp32_accuracy > 0.6  # the shipped model, trained
    assert (int8.argmax(1) == labels).mean() >= fp32_accuracy - 0.01
