"""Tests for inception_fer.evaluation: metrics, TTA, plots and reports."""

from __future__ import annotations

import json
import math
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from inception_fer.errors import DataError, InceptionFerError
from inception_fer.evaluation import (
    TTA_MODES,
    ClassificationReport,
    classification_report,
    expected_calibration_error,
    format_report,
    plot_confusion,
    plot_curves,
    predict_probs,
    tta_views,
    write_report_json,
)
from inception_fer.evaluation.tta import predict_placed

# --- metrics ----------------------------------------------------------------------------------

# 3 classes, 6 samples. Predictions (arg-max): true 0 -> [0, 1], true 1 -> [1, 1], true 2 -> [0, 2].
HAND_LABELS = np.array([0, 0, 1, 1, 2, 2])
HAND_PROBS = np.array(
    [
        [0.8, 0.1, 0.1],  # true 0, pred 0, conf 0.8
        [0.25, 0.5, 0.25],  # true 0, pred 1, conf 0.5, p(true) 0.25
        [0.1, 0.8, 0.1],  # true 1, pred 1, conf 0.8
        [0.25, 0.5, 0.25],  # true 1, pred 1, conf 0.5
        [0.5, 0.25, 0.25],  # true 2, pred 0, conf 0.5, p(true) 0.25
        [0.1, 0.1, 0.8],  # true 2, pred 2, conf 0.8
    ]
)
NAMES = ("a", "b", "c")


def hand_report() -> ClassificationReport:
    return classification_report(HAND_LABELS, HAND_PROBS, NAMES)


def test_hand_case_metrics() -> None:
    r = hand_report()
    # confusion rows = true: [1 1 0], [0 2 0], [1 0 1]
    assert r.confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # predicted counts per class (column sums) 2, 3, 1 -> precision 1/2, 2/3, 1/1
    np.testing.assert_allclose(r.precision, [1 / 2, 2 / 3, 1.0])
    # support 2, 2, 2 -> recall 1/2, 2/2, 1/2
    np.testing.assert_allclose(r.recall, [1 / 2, 1.0, 1 / 2])
    assert r.support.tolist() == [2, 2, 2]
    # F1 = 2pr/(p+r): 0.5, (4/3)/(5/3) = 0.8, 1/(3/2) = 2/3; macro = (0.5 + 0.8 + 2/3) / 3 = 59/90
    np.testing.assert_allclose(r.f1, [0.5, 0.8, 2 / 3])
    assert r.macro_f1 == pytest.approx(59 / 90)
    # 4 of 6 on the diagonal
    assert r.accuracy == pytest.approx(4 / 6)
    # p(true) = 0.8, 0.25, 0.8, 0.5, 0.25, 0.8
    expected_nll = -(3 * math.log(0.8) + 2 * math.log(0.25) + math.log(0.5)) / 6
    assert r.nll == pytest.approx(expected_nll)
    # ECE: bin of 0.8 holds 3 correct: |1 - 0.8| * 3/6 = 0.1; bin of 0.5 holds 1 of 3 correct:
    # |1/3 - 0.5| * 3/6 = 1/12
    assert r.ece == pytest.approx(0.1 + 1 / 12)
    assert r.num_samples == 6
    np.testing.assert_allclose(
        r.confusion_normalized(), [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]
    )


def test_never_predicted_class_has_zero_precision_and_absent_class_is_not_averaged() -> None:
    # Everything predicted as class 1; class 0 is present but never predicted; class 2 is
    # neither present nor predicted.
    labels = np.array([0, 1, 1])
    probs = np.tile([0.1, 0.8, 0.1], (3, 1))
    r = classification_report(labels, probs, NAMES)
    np.testing.assert_allclose(r.precision, [0.0, 2 / 3, 0.0])
    np.testing.assert_allclose(r.recall, [0.0, 1.0, 0.0])
    np.testing.assert_allclose(r.f1, [0.0, 0.8, 0.0])
    # macro over classes 0 and 1 only: (0 + 0.8) / 2
    assert r.macro_f1 == pytest.approx(0.4)
    # class 2 has no support: its normalised row is 0, not NaN
    assert r.confusion_normalized()[2].tolist() == [0.0, 0.0, 0.0]


def test_predicted_class_without_support_counts_in_macro_f1() -> None:
    labels = np.array([0, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])  # one right, one predicted as absent class 1
    r = classification_report(labels, probs, ("a", "b"))
    # class 0: p = 1, r = 1/2, F1 = 2/3; class 1: p = 0 (0 of 1), r = 0 (no support), F1 = 0
    np.testing.assert_allclose(r.f1, [2 / 3, 0.0])
    assert r.macro_f1 == pytest.approx(1 / 3)


def test_ece_overconfident_and_calibrated() -> None:
    one_hot = np.array([[1.0, 0.0]] * 4)
    assert expected_calibration_error(np.array([0, 0, 1, 1]), one_hot) == pytest.approx(0.5)
    calibrated = np.array([[0.75, 0.25]] * 4)  # confidence 0.75, 3 of 4 correct
    assert expected_calibration_error(np.array([0, 0, 0, 1]), calibrated) == pytest.approx(0.0)
    # one bin: |mean acc - mean conf| over everything = |4/6 - 0.65|
    assert expected_calibration_error(HAND_LABELS, HAND_PROBS, n_bins=1) == pytest.approx(
        abs(4 / 6 - 0.65)
    )
    with pytest.raises(InceptionFerError, match="n_bins"):
        expected_calibration_error(HAND_LABELS, HAND_PROBS, n_bins=0)


@pytest.mark.parametrize(
    ("labels", "probs", "names", "message"),
    [
        (np.array([0]), np.array([0.5, 0.5]), ("a", "b"), r"shape \(N, K\)"),
        (np.array([[0]]), np.array([[0.5, 0.5]]), ("a", "b"), r"shape \(N,\)"),
        (np.array([0, 1]), np.array([[0.5, 0.5]]), ("a", "b"), "2 entries but probs has 1 rows"),
        (np.array([0, 2]), np.full((2, 2), 0.5), ("a", "b"), "label 2 at index 1"),
        (np.array([0.0]), np.array([[0.5, 0.5]]), ("a", "b"), "integer"),
        (np.array([0]), np.array([[0.5, 0.7]]), ("a", "b"), "row 0 sums to 1.2"),
        (np.array([0]), np.array([[0.5, 0.5]]), ("a", "b", "c"), "2 classes but 3 class names"),
        (np.array([], dtype=int), np.zeros((0, 2)), ("a", "b"), "nothing to evaluate"),
    ],
)
def test_invalid_inputs_raise_data_error(
    labels: np.ndarray, probs: np.ndarray, names: tuple[str, ...], message: str
) -> None:
    with pytest.raises(DataError, match=message):
        classification_report(labels, probs, names)


# --- TTA --------------------------------------------------------------------------------------


def test_tta_view_shapes_and_flip() -> None:
    x = torch.randn(2, 1, 48, 48)
    assert tta_views(x, "none").shape == (1, 2, 1, 48, 48)
    flip = tta_views(x, "flip")
    assert flip.shape == (2, 2, 1, 48, 48)
    assert torch.equal(flip[0], x)
    assert torch.equal(flip[1], x.flip(-1))
    assert tta_views(x, "tencrop").shape == (10, 2, 1, 48, 48)


def test_tencrop_views_are_shifts_of_the_input() -> None:
    x = torch.randn(2, 1, 48, 48)
    v = tta_views(x, "tencrop")
    p = 4  # round(0.0833 * 48)
    assert torch.equal(v[0], x)  # centre crop of the padded image is the image
    # top-left crop: content moves down-right by p; its first row is the reflection of row p
    assert torch.equal(v[1][..., p:, p:], x[..., :-p, :-p])
    assert torch.equal(v[1][..., 0, p:], x[..., p, :-p])
    # top-right crop: content moves down-left
    assert torch.equal(v[2][..., p:, :-p], x[..., :-p, p:])
    # bottom-right crop: content moves up-left
    assert torch.equal(v[4][..., :-p, :-p], x[..., p:, p:])
    for i in range(5):
        assert torch.equal(v[5 + i], v[i].flip(-1))


def test_shift_views_move_the_input_by_two_pixels_with_edge_padding() -> None:
    x = torch.randn(2, 1, 48, 48)
    v = tta_views(x, "shift")
    assert v.shape == (10, 2, 1, 48, 48)
    assert torch.equal(v[0], x)
    assert torch.equal(v[1][..., :-2, :], x[..., 2:, :])  # up; the last rows repeat the edge
    assert torch.equal(v[1][..., -2:, :], x[..., -1:, :].expand(-1, -1, 2, -1))
    assert torch.equal(v[2][..., 2:, :], x[..., :-2, :])  # down
    assert torch.equal(v[3][..., :, :-2], x[..., :, 2:])  # left
    assert torch.equal(v[4][..., :, 2:], x[..., :, :-2])  # right
    assert torch.equal(v[4][..., :, :2], x[..., :, :1].expand(-1, -1, -1, 2))
    for i in range(5):
        assert torch.equal(v[5 + i], v[i].flip(-1))
    assert tta_views(torch.randn(1, 1, 8, 8), "shift").shape == (10, 1, 1, 8, 8)  # 1 px at least


def test_unknown_tta_mode_lists_valid_modes() -> None:
    with pytest.raises(InceptionFerError, match="none, flip, tencrop, shift"):
        tta_views(torch.zeros(1, 1, 8, 8), "rotate")
    with pytest.raises(InceptionFerError, match="valid modes"):
        predict_probs(LeftRight(), np.zeros((1, 8, 8), np.uint8), mean=0, std=1, tta="x")
    assert TTA_MODES == ("none", "flip", "tencrop", "shift")


class LeftRight(nn.Module):
    """Logits (s*a, -s*a) where a = mean(left half) - mean(right half) of the input."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(3.0))
        self.saw_training: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.saw_training.append(self.training)
        half = x.shape[-1] // 2
        a = x[..., :half].mean(dim=(1, 2, 3)) - x[..., half:].mean(dim=(1, 2, 3))
        return torch.stack([a, -a], dim=1) * self.scale


def left_bright(n: int = 1, size: int = 8) -> np.ndarray:
    images = np.zeros((n, size, size), np.uint8)
    images[..., : size // 2] = 255
    return images


def test_flip_tta_averages_probabilities_of_mirrored_views() -> None:
    model = LeftRight()
    plain = predict_probs(model, left_bright(), mean=0.0, std=1.0)
    # a = 1 -> logits (3, -3) -> p0 = 1 / (1 + e^-6)
    np.testing.assert_allclose(plain[0], [1 / (1 + math.exp(-6)), 1 / (1 + math.exp(6))], 1e-6)
    # the flipped view has a = -1; averaging softmax of (3, -3) and (-3, 3) gives exactly 1/2
    for mode in ("flip", "tencrop", "shift"):
        probs = predict_probs(model, left_bright(), mean=0.0, std=1.0, tta=mode)
        np.testing.assert_allclose(probs, [[0.5, 0.5]], atol=1e-6)


def test_predict_probs_normalises_batches_and_keeps_order() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 8, 8), dtype=np.uint8)
    model = LeftRight()
    model.train()
    whole = predict_probs(model, images, mean=0.5, std=0.25, batch_size=256)
    batched = predict_probs(model, images, mean=0.5, std=0.25, batch_size=3, channels_last=False)
    one_by_one = np.concatenate(
        [predict_probs(model, images[i : i + 1], mean=0.5, std=0.25) for i in range(7)]
    )
    assert whole.shape == (7, 2)
    np.testing.assert_allclose(whole.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(batched, whole, atol=1e-6)
    np.testing.assert_allclose(one_by_one, whole, atol=1e-6)
    assert len(np.unique(whole[:, 0].round(5))) > 1
    assert not any(model.saw_training)  # run in eval mode...
    assert model.training  # ...and the caller's mode is restored
    # (N, 1, H, W) tensor input gives the same as (N, H, W) numpy input
    tensor_probs = predict_probs(model, torch.from_numpy(images)[:, None], mean=0.5, std=0.25)
    np.testing.assert_allclose(tensor_probs, whole, atol=1e-6)


def test_predict_placed_matches_predict_probs_and_runs_the_model_as_it_is() -> None:
    images = np.random.default_rng(1).integers(0, 256, size=(5, 8, 8), dtype=np.uint8)
    model = LeftRight().eval()
    options = {"mean": 0.5, "std": 0.25, "tta": "flip"}
    placed = predict_placed(model, images, batch_size=2, **options)
    np.testing.assert_allclose(placed, predict_probs(model, images, **options), atol=1e-6)
    assert not model.training and not any(model.saw_training)
    model.train()  # predict_placed leaves the mode to its caller
    predict_placed(model, images, **options)
    assert model.saw_training[-1] and model.training
    with pytest.raises(InceptionFerError, match="batch_size"):
        predict_placed(model, images, mean=0.5, std=0.25, batch_size=0)
    with pytest.raises(InceptionFerError, match="unknown TTA mode"):
        predict_placed(model, images, mean=0.5, std=0.25, tta="zoom")


Output = namedtuple("Output", ["logits", "aux"])


class MeanModel(nn.Module):
    """Returns (logits (mean(x), 0), aux) as a namedtuple, like a model with an aux head."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> Output:
        m = x.mean(dim=(1, 2, 3)) + self.bias
        logits = torch.stack([m, torch.zeros_like(m)], dim=1)
        return Output(logits, torch.full_like(logits, 100.0))


def test_predict_probs_takes_first_output_and_applies_mean_std() -> None:
    images = np.full((2, 6, 6), 255, np.uint8)
    # x = (1.0 - 0.5) / 0.25 = 2 -> logits (2, 0)
    probs = predict_probs(MeanModel(), images, mean=0.5, std=0.25)
    expected = [math.exp(2) / (math.exp(2) + 1), 1 / (math.exp(2) + 1)]
    np.testing.assert_allclose(probs, [expected, expected], rtol=1e-6)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 8, 8), np.float32), "uint8"),
        (np.zeros((8, 8), np.uint8), r"\(N, H, W\)"),
        (np.zeros((0, 8, 8), np.uint8), "no images"),
    ],
)
def test_predict_probs_rejects_bad_images(images: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message):
        predict_probs(LeftRight(), images, mean=0.0, std=1.0)


# --- plots and reports ------------------------------------------------------------------------


def assert_png(path: Path) -> None:
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp files left


def test_plot_confusion_writes_png(tmp_path: Path) -> None:
    out = plot_confusion(hand_report(), tmp_path / "figs" / "confusion.png", title="hand")
    assert out == tmp_path / "figs" / "confusion.png"
    assert_png(out)


def test_plot_curves_writes_png_with_missing_validation(tmp_path: Path) -> None:
    history = [
        {"epoch": 1, "train_loss": 1.9, "val_loss": float("nan"), "train_acc": 0.3},
        {"epoch": 2, "train_loss": 1.5, "val_loss": 1.6, "train_acc": 0.45, "val_acc": 0.4},
        {"epoch": 3, "train_loss": 1.2, "val_loss": 1.4, "train_acc": 0.55, "val_acc": 0.5},
    ]
    out = plot_curves(history, tmp_path / "curves.png", title="run")
    assert_png(out)
    with pytest.raises(InceptionFerError, match="no training history"):
        plot_curves([], tmp_path / "empty.png")
    with pytest.raises(InceptionFerError, match="valid suffixes"):
        plot_curves(history, tmp_path / "curves.xyz")


def test_report_json_round_trips(tmp_path: Path) -> None:
    report = hand_report()
    extra = {"model": "tiny", "checkpoint": tmp_path / "best.pt", "tta": "flip", "n": np.int64(3)}
    path = write_report_json(report, tmp_path / "report.json", extra=extra)
    data = json.loads(path.read_text())
    assert data["per_class"]["b"] == {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    assert data["checkpoint"] == str(tmp_path / "best.pt")
    assert data["n"] == 3
    back = ClassificationReport.from_dict(data)
    assert back.to_dict() == report.to_dict()
    np.testing.assert_array_equal(back.confusion, report.confusion)
    with pytest.raises(InceptionFerError, match="accuracy"):
        write_report_json(report, tmp_path / "clash.json", extra={"accuracy": 1.0})
    with pytest.raises(DataError, match="'nll'"):
        ClassificationReport.from_dict({k: v for k, v in data.items() if k != "nll"})


def test_format_report_has_names_metrics_and_fits_100_columns() -> None:
    text = format_report(hand_report())
    assert "accuracy 0.6667" in text
    assert "macro-F1 0.6556" in text
    for name in NAMES:
        assert f"\n{name} " in text
    # the confusion row of class c: 1 0 1
    assert text.splitlines()[-1].split() == ["c", "1", "0", "1"]


def confusion_header(text: str) -> list[str]:
    lines = text.splitlines()
    return lines[lines.index("confusion matrix (rows = true, columns = predicted)") + 1].split()


def test_format_report_abbreviates_long_class_names_keeping_them_distinct() -> None:
    names = [f"a_rather_long_class_name_{i:02d}" for i in range(12)]
    labels = np.arange(12).repeat(3)
    text = format_report(classification_report(labels, np.eye(12)[labels], names))
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "accuracy 1.0000" in text
    assert "\na_rather_l~s_name_11 " in text  # row labels keep both ends of the name
    header = confusion_header(text)
    assert len(header) == 12 and len(set(header)) == 12
    assert header[-1] == "a_~11"


def test_format_report_numbers_columns_when_abbreviations_clash() -> None:
    names = [f"cls_{i}_{'x' * 8}" for i in range(9)]
    labels = np.arange(9).repeat(2)
    text = format_report(classification_report(labels, np.eye(9)[labels], names))
    assert max(len(line) for line in text.splitlines()) <= 100
    assert confusion_header(text) == [str(i) for i in range(9)]
    assert text.splitlines()[-1].split()[:3] == ["8", "cls_8_xxxxxxxx", "0"]


# --- ensembles --------------------------------------------------------------------------------


def _tiny_checkpoint(folder: Path, seed: int, **meta_changes: object) -> Path:
    """An untrained mini_xception checkpoint whose weights depend on ``seed``."""
    from inception_fer.classes import EMOTIONS
    from inception_fer.training.checkpoint import CheckpointMeta, save_checkpoint

    fields: dict = {"class_names": list(EMOTIONS), "mean": 0.5, "std": 0.25} | meta_changes
    meta = CheckpointMeta("mini_xception", {"in_chans": 1}, **fields)
    torch.manual_seed(seed)
    model = meta.build_model()
    with torch.no_grad():  # untrained heads all say the same: make them disagree
        for param in model.parameters():
            param.add_(0.3 * torch.randn_like(param))
    return save_checkpoint(folder / f"tiny{seed}.safetensors", model, meta)


def test_an_ensemble_scores_the_mean_of_its_members_probabilities(
    tmp_path: Path, npy_dataset: Path
) -> None:
    from inception_fer.data import load_fer
    from inception_fer.evaluation.evaluate import evaluate_checkpoint, evaluate_ensemble
    from inception_fer.models.fold_bn import fold_batchnorm
    from inception_fer.training.checkpoint import load_checkpoint

    paths = [_tiny_checkpoint(tmp_path, seed) for seed in (0, 1)]
    val = load_fer(npy_dataset).split("val")
    probs = []
    for path in paths:
        member = load_checkpoint(path)
        model = fold_batchnorm(member.model)
        probs.append(predict_probs(model, val.images, mean=0.5, std=0.25, tta="flip"))
    expected = classification_report(
        val.labels, (probs[0] + probs[1]) / 2, [str(i) for i in range(7)]
    )
    assert not np.array_equal(probs[0].argmax(1), probs[1].argmax(1))  # members that disagree

    result = evaluate_ensemble(paths, npy_dataset, tmp_path / "ens", tta="flip", device="cpu")
    assert result.report.accuracy == pytest.approx(expected.accuracy)
    assert result.report.nll == pytest.approx(expected.nll, rel=1e-5)
    report = json.loads(result.report_json.read_text())
    assert report["checkpoint"] == [str(path) for path in paths]
    assert report["model"] == ["mini_xception"] * 2 and report["epoch"] == [0, 0]

    alone = evaluate_ensemble(paths[:1], npy_dataset, tmp_path / "one", device="cpu")
    single = evaluate_checkpoint(paths[0], npy_dataset, tmp_path / "single", device="cpu")
    assert alone.report.nll == single.report.nll
    assert json.loads(single.report_json.read_text())["checkpoint"] == str(paths[0])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"class_names": ["a", "b", "c", "d", "e", "f", "g"]}, "must share their classes"),
        ({"input_size": 40}, "takes 40x40 images .* must share their input size"),
    ],
)
def test_an_ensemble_refuses_members_that_do_not_match(
    tmp_path: Path, npy_dataset: Path, changes: dict, message: str
) -> None:
    from inception_fer.evaluation.evaluate import evaluate_ensemble

    paths = [_tiny_checkpoint(tmp_path, 0), _tiny_checkpoint(tmp_path, 1, **changes)]
    with pytest.raises(InceptionFerError, match=message):
        evaluate_ensemble(paths, npy_dataset, tmp_path / "out", device="cpu")
    assert not (tmp_path / "out").exists()


def test_cli_evaluates_several_checkpoints_as_an_ensemble(
    tmp_path: Path, npy_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from inception_fer.cli.main import main

    paths = [str(_tiny_checkpoint(tmp_path, seed)) for seed in (0, 1)]
    assert main(["evaluate", *paths, "--data", str(npy_dataset)]) == 0
    report = json.loads((tmp_path / "eval-val-none-ensemble-2" / "report.json").read_text())
    assert report["checkpoint"] == paths
    assert "ensemble-2" in capsys.readouterr().out


def test_cli_evaluates_a_shipped_model_by_name_writing_to_the_current_folder(
    tmp_path: Path, npy_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inception_fer.cli.main import main
    from inception_fer.pretrained import list_pretrained, pretrained_path

    if "inception_fer_f" not in list_pretrained():
        pytest.skip("the default model's weights are not shipped")
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "default", "--data", str(npy_dataset), "--tta", "flip"]) == 0
    report = json.loads((tmp_path / "eval-default-val-flip" / "report.json").read_text())
    assert report["checkpoint"] == str(pretrained_path("default"))
    assert main(["evaluate", "no_such_model", "--data", str(npy_dataset)]) == 2
