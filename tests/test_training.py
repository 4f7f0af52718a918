"""The training loop: run files, exact resume (also after kill -9), determinism, refusals."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_faces
from inception_fer.classes import EMOTIONS
from inception_fer.cli.main import main
from inception_fer.data import FerData, Split, load_fer
from inception_fer.errors import InceptionFerError
from inception_fer.evaluation import tta_views
from inception_fer.evaluation.evaluate import evaluate_checkpoint
from inception_fer.models.mini_xception import MiniXception
from inception_fer.training.checkpoint import load_checkpoint
from inception_fer.training.config import TrainConfig
from inception_fer.training.device import (
    ACCELERATOR_FORWARD_BATCH,
    CPU_FORWARD_BATCH,
    forward_batch_size,
)
from inception_fer.training.fit import Trainer, fit, resume
from inception_fer.training.optim import (
    build_optimizer,
    build_scheduler,
    exempt_norm_and_bias,
    resize_schedule,
)

MODEL = "mini_xception"


def tiny_data(n_train: int = 70, n_val: int = 21) -> FerData:
    x, y = make_faces(n_train, seed=3)
    vx, vy = make_faces(n_val, seed=4)
    return FerData(
        train=Split(x, y),
        val=Split(vx, vy),
        test=None,
        class_names=("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"),
        source="npy",
    )


def config(**overrides) -> TrainConfig:
    values = dict(model=MODEL, epochs=3, batch_size=16, lr=3e-3, threads=1, seed=5)
    values.update(overrides)
    return TrainConfig(**values)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


def interrupt_after(epoch: int) -> Callable[[str], None]:
    """A run log that stops the run (KeyboardInterrupt) once ``epoch`` has been saved."""

    def log(line: str) -> None:
        if line.startswith(f"epoch {epoch}/"):
            raise KeyboardInterrupt

    return log


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


def test_fit_writes_history_curves_and_checkpoints(tmp_path: Path) -> None:
    result = fit(config(), tmp_path / "run", data=tiny_data(), quiet=True, log=lambda _: None)
    run = tmp_path / "run"
    for name in ("run.json", "history.csv", "history.json", "curves.png", "best.safetensors"):
        assert (run / name).stat().st_size > 0, name
    rows = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert len((run / "history.csv").read_text().splitlines()) == 4
    assert result.history["val_accuracy"] == [r["val_acc"] for r in rows]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    last = load_checkpoint(run / "last.safetensors")
    assert last.meta.epoch == 3
    assert last.meta.class_names[0] == "angry"
    assert last.meta.std > 0 and 0 < last.meta.mean < 1
    assert load_checkpoint(run / "best.safetensors").meta.epoch == result.best_epoch


def test_same_seed_same_weights(tmp_path: Path) -> None:
    data = tiny_data()
    fit(config(epochs=2), tmp_path / "a", data=data, quiet=True, log=lambda _: None)
    fit(config(epochs=2), tmp_path / "b", data=data, quiet=True, log=lambda _: None)
    assert_same_weights(tmp_path / "a" / "last.safetensors", tmp_path / "b" / "last.safetensors")


def test_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    data = tiny_data()
    cfg = config(schedule="cosine", augment="default", drop_rate=0.2)
    fit(cfg, tmp_path / "full", data=data, quiet=True, log=lambda _: None)

    with pytest.raises(KeyboardInterrupt):
        fit(cfg, tmp_path / "cut", data=data, quiet=True, log=interrupt_after(1))
    assert load_checkpoint(tmp_path / "cut" / "last.safetensors").meta.epoch == 1
    result = resume(tmp_path / "cut", data=data, quiet=True, log=lambda _: None)
    assert [int(r["epoch"]) for r in result.rows] == [1, 2, 3]
    assert_same_weights(
        tmp_path / "full" / "last.safetensors", tmp_path / "cut" / "last.safetensors"
    )


@pytest.mark.parametrize("schedule", ["constant", "onecycle", "cosine"])
def test_resume_can_extend_a_finished_run(tmp_path: Path, schedule: str) -> None:
    data = tiny_data()
    cfg = config(epochs=1, schedule=schedule)
    fit(cfg, tmp_path / "run", data=data, quiet=True, log=lambda _: None)
    result = resume(tmp_path / "run", epochs=2, data=data, quiet=True, log=lambda _: None)
    assert [int(r["epoch"]) for r in result.rows] == [1, 2]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["epochs"] == 2
    with pytest.raises(InceptionFerError, match="for 1 epochs: it has trained 2 already"):
        resume(tmp_path / "run", epochs=1, data=data, quiet=True, log=lambda _: None)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["epochs"] == 2
    # The second epoch ends where a 2-epoch run's schedule ends (one-cycle and cosine had
    # finished after one epoch: extending them goes back to the middle of a 2-epoch schedule).
    fresh = fit(config(epochs=2, schedule=schedule), tmp_path / "fresh", data=data, quiet=True)
    assert result.rows[1]["lr"] == pytest.approx(fresh.rows[1]["lr"])


def _train_cli(data_dir: Path, out: Path, epochs: int) -> list[str]:
    return [
        "train", "--model", MODEL, "--data", str(data_dir), "--out", str(out),
        "--epochs", str(epochs), "--batch-size", "16", "--lr", "3e-3", "--threads", "1",
        "--seed", "7", "--schedule", "cosine", "--quiet",
    ]  # fmt: skip


def test_resume_after_kill_9_ends_at_same_weights(tmp_path: Path, npy_dataset: Path) -> None:
    assert main(_train_cli(npy_dataset, tmp_path / "full", 4)) == 0

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "inception_fer", *_train_cli(npy_dataset, tmp_path / "cut", 4)]
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    history = tmp_path / "cut" / "history.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if history.exists() and len(json.loads(history.read_text() or "[]")) >= 1:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    epochs_done = len(json.loads(history.read_text()))
    assert epochs_done < 4

    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    rows = json.loads(history.read_text())
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert_same_weights(
        tmp_path / "full" / "last.safetensors", tmp_path / "cut" / "last.safetensors"
    )
    full_rows = json.loads((tmp_path / "full" / "history.json").read_text())
    assert [r["val_acc"] for r in rows] == [r["val_acc"] for r in full_rows]


def test_refuses_a_directory_holding_another_run(tmp_path: Path) -> None:
    data = tiny_data()
    fit(config(epochs=1), tmp_path / "run", data=data, quiet=True, log=lambda _: None)
    with pytest.raises(
        InceptionFerError, match=r"already holds a training run.*--resume.*--overwrite"
    ):
        fit(config(epochs=1), tmp_path / "run", data=data, quiet=True, log=lambda _: None)
    result = fit(
        config(epochs=1, seed=9),
        tmp_path / "run",
        data=data,
        overwrite=True,
        quiet=True,
        log=lambda _: None,
    )
    assert len(result.rows) == 1
    assert json.loads((tmp_path / "run" / "run.json").read_text())["seed"] == 9


def test_resume_without_a_run(tmp_path: Path) -> None:
    with pytest.raises(InceptionFerError, match=r"holds no run\.json"):
        resume(tmp_path, quiet=True)


def test_early_stopping(tmp_path: Path) -> None:
    # A zero learning rate never improves after the first epoch.
    cfg = config(epochs=10, early_stopping=2, lr=1e-12)
    result = fit(cfg, tmp_path / "run", data=tiny_data(), quiet=True, log=lambda _: None)
    assert len(result.rows) == 3


def test_balanced_class_weights_and_label_smoothing_run(tmp_path: Path) -> None:
    cfg = config(
        epochs=1,
        class_weights="balanced",
        label_smoothing=0.1,
        optimizer="sgd",
        schedule="onecycle",
        clip_grad=1.0,
    )
    result = fit(cfg, tmp_path / "run", data=tiny_data(), quiet=True, log=lambda _: None)
    assert result.rows[0]["train_loss"] > 0


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_that_emulates_it_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    monkeypatch.setattr("inception_fer.training.fit.cpu_bf16_is_native", lambda: native)
    lines: list[str] = []
    fit(
        config(epochs=1, amp="bf16"),
        tmp_path / "run",
        data=tiny_data(),
        quiet=True,
        log=lines.append,
    )
    warnings = [line for line in lines if "--amp bf16 is emulated" in line]
    assert len(warnings) == (0 if native else 1)


@contextlib.contextmanager
def recorded_input_sizes() -> Iterator[list[tuple[bool, int]]]:
    """(training step?, input side) of every forward pass of the test model while active."""
    seen: list[tuple[bool, int]] = []
    original_forward = MiniXception.forward

    def recording_forward(self: MiniXception, x: torch.Tensor) -> torch.Tensor:
        seen.append((self.training and torch.is_grad_enabled(), x.shape[-1]))
        return original_forward(self, x)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MiniXception, "forward", recording_forward)
        yield seen


def test_crop_augmentation_trains_on_crops_and_validates_on_whole_faces(tmp_path: Path) -> None:
    cfg = config(epochs=1, augment="flip,crop=40")
    with recorded_input_sizes() as seen:
        fit(cfg, tmp_path / "run", data=tiny_data(), quiet=True, log=lambda _: None)
    assert {size for training, size in seen if training} == {40}  # the optimisation steps
    # validation, and the BatchNorm statistics re-estimated on whole faces
    assert {size for training, size in seen if not training} == {48}
    assert load_checkpoint(tmp_path / "run" / "best.safetensors").meta.input_size == 48


def test_val_from_skips_validation_and_batchnorm_reestimation_before_it(tmp_path: Path) -> None:
    cfg = config(epochs=4, val_from=3, augment="flip,crop=40")
    with recorded_input_sizes() as seen:
        result = fit(cfg, tmp_path / "run", data=tiny_data(), quiet=True, log=lambda _: None)
    rows = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [r["val_acc"] is None for r in rows] == [True, True, False, False]
    assert result.best_epoch in (3, 4)
    assert load_checkpoint(tmp_path / "run" / "best.safetensors").meta.epoch == result.best_epoch
    # whole-face passes (validation and re-estimation) only after epochs 3 and 4
    steps_per_epoch = -(-70 // 16)
    first_whole = next(i for i, (_, size) in enumerate(seen) if size == 48)
    assert sum(training for training, _ in seen[:first_whole]) == 3 * steps_per_epoch


def test_val_from_changes_no_weight(tmp_path: Path) -> None:
    data = tiny_data()
    every = config(epochs=2, augment="flip,crop=40", drop_rate=0.3)
    fit(every, tmp_path / "a", data=data, quiet=True, log=lambda _: None)
    later = config(epochs=2, augment="flip,crop=40", drop_rate=0.3, val_from=2)
    fit(later, tmp_path / "b", data=data, quiet=True, log=lambda _: None)
    assert_same_weights(tmp_path / "a" / "last.safetensors", tmp_path / "b" / "last.safetensors")


def test_unvalidated_epochs_do_not_count_towards_early_stopping(tmp_path: Path) -> None:
    # A zero learning rate never improves after the first validated epoch.
    cfg = config(epochs=8, val_from=3, early_stopping=2, lr=1e-12)
    result = fit(cfg, tmp_path / "run", data=tiny_data(), quiet=True, log=lambda _: None)
    assert len(result.rows) == 5


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"augment": "crop=56"}, "crop=56 is larger than the 48x48 input"),
        ({"epochs": 5, "val_from": 6}, r"--val-from must be an epoch of the run \(1\.\.5\), got 6"),
        ({"val_from": 0}, "--val-from must be an epoch"),
        ({"val_from": 2, "schedule": "plateau"}, "plateau schedule needs the validation loss"),
        ({"augment": "blur"}, "unknown augmentation 'blur'"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"batch_size": 0}, "batch size"),
        ({"lr": -1.0}, "learning rate must be positive"),
        ({"warmup_epochs": -1.0}, "--warmup-epochs must be >= 0"),
        ({"label_smoothing": 1.0}, "label smoothing"),
        ({"class_weights": "inverse"}, "class weights"),
    ],
)
def test_bad_config(values: dict, message: str) -> None:
    with pytest.raises(InceptionFerError, match=message):
        TrainConfig(**values)


def test_unknown_optimizer_and_schedule() -> None:
    params = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(InceptionFerError, match="unknown optimizer 'lamb'"):
        build_optimizer("lamb", params, 1e-3)
    optimizer = build_optimizer("adam", params, 1e-3)
    with pytest.raises(InceptionFerError, match="unknown schedule 'step'"):
        build_scheduler("step", optimizer, 1, 1)


def test_cosine_schedule_warms_up_then_decays() -> None:
    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = build_optimizer("sgd", params, 1.0)
    scheduler = build_scheduler("cosine", optimizer, epochs=4, steps_per_epoch=10, warmup_epochs=1)
    rates = []
    for _ in range(40):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.1)
    assert max(rates) == pytest.approx(1.0)
    assert rates[9] == pytest.approx(1.0)
    assert rates[-1] < 0.01


@pytest.mark.parametrize(
    ("schedule", "warmup_epochs"), [("onecycle", 0), ("onecycle", 1), ("cosine", 1)]
)
def test_a_resized_schedule_continues_as_the_new_length_would(
    schedule: str, warmup_epochs: int
) -> None:
    def rates(epochs: int, resize_at: int | None = None, to: int = 0) -> list[float]:
        optimizer = build_optimizer("adamw", [torch.nn.Parameter(torch.zeros(1))], 1.0)
        scheduler = build_scheduler(schedule, optimizer, epochs, 10, warmup_epochs)
        seen = []
        for step in range(10 * (to or epochs)):
            if step == resize_at:
                resize_schedule(scheduler, to, 10)
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return seen

    longer, shorter = rates(6), rates(4)
    resized = rates(6, resize_at=20, to=4)
    assert resized[:21] == longer[:21]  # the step after the resize still had its old rate
    assert resized[21:] == pytest.approx(shorter[21:])
    assert resized != pytest.approx(shorter)


def test_a_schedule_cannot_end_before_the_step_it_has_reached() -> None:
    optimizer = build_optimizer("adamw", [torch.nn.Parameter(torch.zeros(1))], 1.0)
    scheduler = build_scheduler("onecycle", optimizer, 1, 10)
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    with pytest.raises(InceptionFerError, match="at step 10 cannot be 5 steps long"):
        resize_schedule(scheduler, 1, 5)


def test_exempt_norm_and_bias_keeps_one_dimensional_parameters_from_decay() -> None:
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.Linear(4, 2)
    )
    groups = exempt_norm_and_bias(
        [
            {"params": list(model[:2].parameters()), "lr": 1.0},
            {"params": list(model[3].parameters()), "lr": 10.0},
        ]
    )
    assert [(g["lr"], [p.ndim for p in g["params"]]) for g in groups] == [
        (1.0, [4]),
        (1.0, [1, 1, 1]),
        (10.0, [2]),
        (10.0, [1]),
    ]
    assert [g.get("weight_decay") for g in groups] == [None, 0.0, None, 0.0]
    optimizer = build_optimizer("adamw", exempt_norm_and_bias(model.parameters()), 0.1, 0.5)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for name, p in model.named_parameters():
        if p.ndim >= 2:  # decoupled decay alone: w <- w (1 - lr wd)
            assert torch.allclose(p, before[name] * 0.95), name
        else:
            assert torch.equal(p, before[name]), name


def test_trainer_exempts_norm_and_bias_only_when_asked(tmp_path: Path) -> None:
    for decay_norm_bias, exempt_ndims in ((True, set()), (False, {1})):
        trainer = Trainer(
            config(weight_decay=0.05, decay_norm_bias=decay_norm_bias, optimizer="adamw"),
            tiny_data(),
            tmp_path / f"run-{decay_norm_bias}",
            True,
            lambda _: None,
        )
        decays = {
            id(p): group["weight_decay"]
            for group in trainer.optimizer.param_groups
            for p in group["params"]
        }
        parameters = list(trainer.model.parameters())
        assert len(decays) == len(parameters)
        assert {p.ndim for p in parameters if decays[id(p)] == 0.0} == exempt_ndims
        assert all(decays[id(p)] == 0.05 for p in parameters if p.ndim >= 2)


@pytest.mark.parametrize("model", [MODEL, "inception_fer_f"])
def test_validation_scores_the_folded_weights_as_the_model_itself(
    tmp_path: Path, model: str
) -> None:
    trainer = Trainer(config(model=model), tiny_data(), tmp_path / model, True, lambda _: None)
    net = trainer.begin_epoch(0)
    # a few steps, so that the running statistics are not the initial ones
    for start in range(0, 64, 16):
        trainer.train_step(net, torch.arange(start, start + 16))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    loss, accuracy = trainer.validate()
    assert trainer.model.training  # validation scored a folded copy, not the model itself
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    trainer.model.eval()
    with torch.no_grad():
        x = trainer._batch(trainer.val_x, augment=False)
        logits = trainer.model(x)
    expected = torch.nn.functional.cross_entropy(logits, trainer.val_y).item()
    assert loss == pytest.approx(expected, rel=1e-4)
    correct = int((logits.argmax(1) == trainer.val_y).sum())
    assert accuracy == pytest.approx(correct / len(trainer.val_y))


@pytest.mark.parametrize("tta", ["flip", "shift"])
def test_validation_with_tta_scores_the_views_averaged_probabilities(
    tmp_path: Path, tta: str
) -> None:
    trainer = Trainer(
        config(model="inception_fer_f", val_tta=tta), tiny_data(), tmp_path, True, lambda _: None
    )
    net = trainer.begin_epoch(0)
    for start in range(0, 64, 16):
        trainer.train_step(net, torch.arange(start, start + 16))
    loss, accuracy = trainer.validate()
    trainer.model.eval()
    with torch.no_grad():
        x = trainer._batch(trainer.val_x, augment=False)
        views = tta_views(x, tta)
        probs = torch.stack([torch.softmax(trainer.model(v), 1) for v in views]).mean(0)
    assert len(views) == {"flip": 2, "shift": 10}[tta]
    expected = torch.nn.functional.nll_loss(probs.log(), trainer.val_y).item()
    assert loss == pytest.approx(expected, rel=1e-4)
    correct = int((probs.argmax(1) == trainer.val_y).sum())
    assert accuracy == pytest.approx(correct / len(trainer.val_y))
    # the views do not all agree, so the averaged score differs from the plain one
    plain = torch.nn.functional.cross_entropy(trainer.model(x), trainer.val_y).item()
    assert loss != pytest.approx(plain, rel=1e-4)


def test_config_refuses_an_unknown_validation_tta() -> None:
    with pytest.raises(InceptionFerError, match="--val-tta must be one of none, flip"):
        config(val_tta="mirror")


def test_forward_batch_size_is_small_on_the_cpu_and_large_on_a_gpu() -> None:
    assert forward_batch_size(torch.device("cpu")) == CPU_FORWARD_BATCH == 64
    assert forward_batch_size(torch.device("cuda", 0)) == ACCELERATOR_FORWARD_BATCH == 512


def test_cli_no_decay_norm_bias_is_saved_and_resumes(tmp_path: Path, npy_dataset: Path) -> None:
    run = tmp_path / "run"
    assert (
        main([*_train_cli(npy_dataset, run, 1), "--weight-decay", "0.1", "--no-decay-norm-bias"])
        == 0
    )
    assert json.loads((run / "run.json").read_text())["decay_norm_bias"] is False
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 0
    assert load_checkpoint(run / "last.safetensors").meta.epoch == 2


def test_cli_train_then_evaluate(tmp_path: Path, npy_dataset: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main([*_train_cli(npy_dataset, run, 2), "--val-from", "2", "--val-tta", "flip"]) == 0
    assert json.loads((run / "run.json").read_text())["val_tta"] == "flip"
    lines = capsys.readouterr().out.splitlines()
    assert [("not validated" in line) for line in lines if line.startswith("epoch ")] == [
        True,
        False,
    ]
    assert load_checkpoint(run / "best.safetensors").meta.epoch == 2
    assert main(["evaluate", str(run), "--data", str(npy_dataset), "--tta", "flip"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out.lower() and "angry" in out
    report = json.loads((run / "eval-val-flip" / "report.json").read_text())
    assert report["tta"] == "flip"
    # the run validated with the same TTA, so it logged the accuracy `evaluate` measures
    logged = load_checkpoint(run / "best.safetensors").meta.metrics["val_acc"]
    assert report["accuracy"] == pytest.approx(logged, abs=1.01 / report["num_samples"])
    assert (run / "eval-val-flip" / "confusion.png").stat().st_size > 0


def test_a_run_that_cannot_start_leaves_nothing_to_overwrite(
    tmp_path: Path, npy_dataset: Path, capsys
) -> None:
    run = tmp_path / "run"
    assert main([*_train_cli(npy_dataset, run, 1), "--model-arg", "drop_rat=0.3"]) != 0
    assert f"{MODEL} has no argument 'drop_rat'" in capsys.readouterr().err
    assert not (run / "run.json").exists()
    # so the corrected command needs no --overwrite
    assert main([*_train_cli(npy_dataset, run, 1), "--model-arg", "drop_rate=0.3"]) == 0
    assert json.loads((run / "run.json").read_text())["model_kwargs"] == {"drop_rate": 0.3}


def test_cli_train_needs_data(tmp_path: Path, capsys) -> None:
    assert main(["train", "--model", MODEL, "--out", str(tmp_path / "r")]) == 2
    assert "--data is required" in capsys.readouterr().err


def test_real_fer2013_subset_trains_and_evaluates(tmp_path: Path, fer2013_dir: Path) -> None:
    full = load_fer(fer2013_dir, cache_dir=tmp_path / "cache")
    keep = np.random.default_rng(0).permutation(len(full.train))[:6000]
    subset = FerData(
        train=Split(full.train.images[keep], full.train.labels[keep]),
        val=full.val,
        test=None,
        class_names=full.class_names,
        source=full.source,
    )
    cfg = TrainConfig(model=MODEL, epochs=2, batch_size=64, lr=3e-3, threads=2, augment="flip")
    result = fit(cfg, tmp_path / "run", data=subset, quiet=True, log=lambda _: None)
    # Two short epochs already beat always answering the largest class (happy, 24.9 %).
    assert result.best_val_acc > 0.30
    evaluation = evaluate_checkpoint(
        result.best_checkpoint, fer2013_dir, tmp_path / "eval", split="val", tta="flip"
    )
    assert evaluation.report.support.sum() == 3589
    assert evaluation.report.accuracy > 0.30
    assert evaluation.report.recall[EMOTIONS.index("happy")] > 0.3


@pytest.mark.slow
def test_short_real_fer2013_run(tmp_path: Path, fer2013_dir: Path) -> None:
    cfg = TrainConfig(
        model="inception_fer_s",
        data=str(fer2013_dir),
        epochs=1,
        batch_size=128,
        lr=2e-3,
        schedule="onecycle",
    )
    result = fit(cfg, tmp_path / "run", quiet=True, log=lambda _: None)
    # One epoch already beats always answering the largest class (happy, 24.9% of PublicTest).
    assert result.best_val_acc > 0.30


def test_compile_without_a_cxx_compiler_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch._dynamo
    import torch._inductor.config

    from inception_fer.training.compile import compile_errors, compile_module

    monkeypatch.setattr(torch._inductor.config.cpp, "cxx", ("/nonexistent/c++",))
    torch._dynamo.reset()
    net = compile_module(torch.nn.Linear(3, 2))
    try:
        with (
            pytest.raises(
                InceptionFerError, match=r"--compile: .*C\+\+ compiler.*without --compile"
            ),
            compile_errors("linear"),
        ):
            net(torch.ones(4, 3)).sum().backward()
    finally:
        torch._dynamo.reset()


@pytest.mark.slow
def test_compiled_training_matches_eager(tmp_path: Path) -> None:
    """torch.compile (Inductor, C++ on the CPU: minutes to compile) trains the same network: the
    BatchNorm-free tutorial net with SGD, well conditioned enough for float reordering to stay
    near 1e-6 (BatchNorm nets at init differ by ~0.5 % per gradient even between float32 and
    float64 eager, so they are compared by loss only)."""
    x, y = make_faces(64, size=16, seed=3)
    data = FerData(Split(x, y), Split(x[:16], y[:16]), None, EMOTIONS, "npy")
    cfg = config(
        model="inception_tutorial", model_kwargs={"input_size": 16}, input_size=16, epochs=1,
        augment="none", optimizer="sgd", lr=0.01,
    )  # fmt: skip
    fit(cfg, tmp_path / "eager", data=data, quiet=True, log=lambda _: None)
    cfg.compile = True
    fit(cfg, tmp_path / "compiled", data=data, quiet=True, log=lambda _: None)
    eager = weights(tmp_path / "eager" / "last.safetensors")
    compiled = weights(tmp_path / "compiled" / "last.safetensors")
    for name in eager:
        torch.testing.assert_close(compiled[name], eager[name], rtol=1e-4, atol=1e-5, msg=name)


def test_cli_model_args_and_resume_refusals(tmp_path: Path, npy_dataset: Path, capsys) -> None:
    run = tmp_path / "run"
    args = _train_cli(npy_dataset, run, 1)
    args[args.index("--model") + 1] = "inception_fer_s"
    assert main([*args, "--model-arg", "widths=[32,48]", "--model-arg", "depths=[1,1]"]) == 0
    saved = json.loads((run / "run.json").read_text())
    assert saved["model_kwargs"] == {"widths": [32, 48], "depths": [1, 1]}
    assert load_checkpoint(run / "last.safetensors").model.fc.in_features == 48
    assert main(["train", "--resume", str(run), "--init", "default"]) == 2
    assert "do not pass --init" in capsys.readouterr().err
    with pytest.raises(InceptionFerError, match=r"only device, threads.*not lr"):
        resume(run, launch={"lr": 0.1}, quiet=True)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--lr", "0.1"], "--lr"),
        (["--weight-decay", "0"], "--weight-decay"),
        (["--no-decay-norm-bias", "--augment", "none"], "--no-decay-norm-bias, --augment"),
        (["--model-arg", "act=silu"], "--model-arg"),
        (["--out", "elsewhere", "--overwrite"], "--out, --overwrite"),
    ],
)
def test_cli_resume_refuses_recipe_options(
    tmp_path: Path, npy_dataset: Path, capsys, extra: list[str], named: str
) -> None:
    run = tmp_path / "run"
    assert main(_train_cli(npy_dataset, run, 1)) == 0
    before = (run / "last.safetensors").read_bytes(), (run / "run.json").read_text()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2", *extra]) == 2
    assert f"do not pass {named} (only --epochs" in capsys.readouterr().err
    assert ((run / "last.safetensors").read_bytes(), (run / "run.json").read_text()) == before
