"""Progressive crops (``--crop-schedule``): parsing, refusals, and the sizes a run trains on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from inception_fer.data.augment import AugmentConfig, BatchAugment
from inception_fer.errors import InceptionFerError
from inception_fer.training.checkpoint import load_checkpoint
from inception_fer.training.crop_schedule import CropSchedule
from inception_fer.training.fit import fit, resume
from test_training import config, recorded_input_sizes, tiny_data


def test_sizes_by_epoch() -> None:
    schedule = CropSchedule.parse("32:2, 36:3, 40", input_size=48)
    assert schedule.stages == ((32, 2), (36, 3), (40, 0))
    assert [schedule.size_at(e, 8) for e in range(8)] == [32, 32, 36, 36, 36, 40, 40, 40]
    assert CropSchedule.parse("44", input_size=48).size_at(100, 200) == 44


def test_stages_after_the_open_ended_one_count_back_from_the_end() -> None:
    schedule = CropSchedule.parse("32:1,40,44:1,48:2", input_size=48)
    assert (schedule.head, schedule.tail, schedule.fixed_epochs) == (1, 3, 4)
    assert (schedule.sizes(finish=False), schedule.sizes(finish=True)) == ([32, 40], [44, 48])
    assert [schedule.size_at(e, 7) for e in range(7)] == [32, 40, 40, 40, 44, 48, 48]
    assert [schedule.size_at(e, 5) for e in range(5)] == [32, 40, 44, 48, 48]
    finish = CropSchedule.parse("40, 48:2", input_size=48)
    assert [finish.size_at(e, 4) for e in range(4)] == [40, 40, 48, 48]
    assert [finish.finishing(e, 4) for e in range(4)] == [False, False, True, True]
    assert not any(CropSchedule.parse("32:2,40", input_size=48).finishing(e, 4) for e in range(4))


def test_the_first_epoch_of_each_stage() -> None:
    schedule = CropSchedule.parse("32:2,40,44:1,48:2", input_size=48)
    assert [schedule.stage_start(e, 8) for e in range(8)] == [0, 0, 2, 2, 2, 5, 6, 6]
    assert [schedule.stage_start(e, 6) for e in range(6)] == [0, 0, 2, 3, 4, 4]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("32:4,40:5", "exactly one stage must be a SIZE without a number of epochs"),
        ("32,40", "(it takes the epochs the others leave), found 2"),
        ("32:x,40", "bad crop schedule item '32:x'"),
        ("big:3,40", "bad crop schedule item"),
        ("32:2,,40", "bad crop schedule item '' in '32:2,,40'"),
        ("32:0,40", "lasts under one epoch"),
        ("4:2,40", "crop size 4 is outside 8..48"),
        ("32:2,56", "crop size 56 is outside 8..48"),
    ],
)
def test_bad_schedules(spec: str, message: str) -> None:
    with pytest.raises(InceptionFerError, match=re.escape(message)):
        CropSchedule.parse(spec, input_size=48)


def test_config_refusals() -> None:
    with pytest.raises(InceptionFerError, match="drop crop=40 from --augment"):
        config(augment="flip,crop=40", crop_schedule="32:1,40")
    with pytest.raises(InceptionFerError, match="has 3 epochs in its stages of a set length"):
        config(epochs=3, augment="flip", crop_schedule="32:1,36:2,40")
    with pytest.raises(InceptionFerError, match="but the run has 3"):
        config(epochs=3, augment="flip", crop_schedule="40,44:1,48:2")
    with pytest.raises(InceptionFerError, match=r"outside 8\.\.48"):
        config(epochs=3, augment="flip", crop_schedule="32:1,50")
    with pytest.raises(InceptionFerError, match="but there is no --crop-schedule"):
        config(epochs=3, augment="flip", finish_augment="flip")
    with pytest.raises(InceptionFerError, match="but '32:1,40' has none"):
        config(epochs=3, augment="flip", crop_schedule="32:1,40", finish_augment="flip")
    with pytest.raises(InceptionFerError, match="drop crop=44 from --finish-augment"):
        config(epochs=3, augment="flip", crop_schedule="40,48:1", finish_augment="flip,crop=44")
    with pytest.raises(InceptionFerError, match="bad augmentation value"):
        config(epochs=3, augment="flip", crop_schedule="40,48:1", finish_augment="rotate=x")
    with pytest.raises(InceptionFerError, match="--augment shift=4 is too large for the 8x8"):
        config(epochs=3, augment="flip,shift=4", crop_schedule="8,48:1")
    message = r"--finish-augment shift=20 is too large for the 40x40 images .* \(at most 19\)"
    with pytest.raises(InceptionFerError, match=message):
        config(epochs=3, augment="flip", crop_schedule="48,40:1", finish_augment="shift=20")
    with pytest.raises(InceptionFerError, match="--augment shift=20 is too large for the 40x40"):
        config(epochs=3, augment="shift=20", crop_schedule="40,48:1", finish_augment="flip")
    with pytest.raises(InceptionFerError, match="--augment shift=24 is too large for the 48x48"):
        config(epochs=3, augment="shift=24")
    # each option is held to the images it applies to: the finish here is on 48x48 faces
    assert config(epochs=3, augment="flip", crop_schedule="40,48:1", finish_augment="shift=20")
    assert config(epochs=3, augment="shift=20", crop_schedule="48,40:1", finish_augment="flip")


def test_run_trains_on_the_scheduled_crops_and_resumes_on_schedule(tmp_path: Path) -> None:
    lines: list[str] = []
    cfg = config(epochs=3, augment="flip", crop_schedule="32:1,36:1,40")

    def interrupt_after_second_epoch(line: str) -> None:
        lines.append(line)
        if line.startswith("epoch 2/"):
            raise KeyboardInterrupt

    data = tiny_data()
    with recorded_input_sizes() as seen:
        with pytest.raises(KeyboardInterrupt):
            fit(cfg, tmp_path / "run", data=data, quiet=True, log=interrupt_after_second_epoch)
        resume(tmp_path / "run", data=data, quiet=True, log=lines.append)
    steps = [size for training, size in seen if training]
    per_epoch = len(steps) // 3  # 70 faces in batches of 16: 5 steps per epoch
    assert steps == [32] * per_epoch + [36] * per_epoch + [40] * per_epoch
    assert {size for training, size in seen if not training} == {48}  # validation, BatchNorm
    assert [line for line in lines if line.startswith("training on")] == [
        "training on 32x32 crops from epoch 1",
        "training on 36x36 crops from epoch 2",
        "training on 40x40 crops from epoch 3",
    ]
    assert load_checkpoint(tmp_path / "run" / "last.safetensors").meta.epoch == 3


def test_a_run_ends_on_whole_faces(tmp_path: Path) -> None:
    lines: list[str] = []
    cfg = config(epochs=3, augment="flip", crop_schedule="40,48:1")
    with recorded_input_sizes() as seen:
        fit(cfg, tmp_path / "run", data=tiny_data(), quiet=True, log=lines.append)
    steps = [size for training, size in seen if training]
    per_epoch = len(steps) // 3
    assert steps == [40] * (2 * per_epoch) + [48] * per_epoch
    assert [line for line in lines if line.startswith("training on")] == [
        "training on 40x40 crops from epoch 1",
        "training on whole 48x48 images from epoch 3",
    ]


@contextmanager
def recorded_augmentations() -> Iterator[list[tuple[AugmentConfig, torch.Tensor, torch.Tensor]]]:
    """(config, input, output) of every augmented training batch while active."""
    seen: list[tuple[AugmentConfig, torch.Tensor, torch.Tensor]] = []
    original_forward = BatchAugment.forward

    def recording_forward(self: BatchAugment, x: torch.Tensor, **kwargs: object) -> torch.Tensor:
        out = original_forward(self, x, **kwargs)  # type: ignore[arg-type]
        if self.training:
            seen.append((self.config, x.clone(), out.clone()))
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BatchAugment, "forward", recording_forward)
        yield seen


def test_the_finish_trains_with_its_own_augmentation(tmp_path: Path) -> None:
    lines: list[str] = []
    cfg = config(
        epochs=3, augment="default,translate=0", crop_schedule="40,48:1", finish_augment="flip"
    )
    with recorded_augmentations() as seen:
        fit(cfg, tmp_path / "run", data=tiny_data(), quiet=True, log=lines.append)
    per_epoch = len(seen) // 3
    crops, finish = seen[: 2 * per_epoch], seen[2 * per_epoch :]
    assert {(c.crop, c.rotate, c.scale, c.erase_prob) for c, _, _ in crops} == {
        (40, 10.0, (0.9, 1.1), 0.25)
    }
    assert {(c.crop, c.rotate, c.scale, c.erase_prob) for c, _, _ in finish} == {
        (48, 0.0, (1.0, 1.0), 0.0)
    }
    # Unwarped: every finishing face is its input or its mirror image, to the bit.
    for _, x, out in finish:
        same = (out == x).flatten(1).all(1)
        mirrored = (out == x.flip(-1)).flatten(1).all(1)
        assert bool((same | mirrored).all())
    assert not any(torch.equal(out, x) for _, x, out in crops)
    assert [line for line in lines if line.startswith("training on")] == [
        "training on 40x40 crops from epoch 1",
        "training on whole 48x48 images, augmented flip from epoch 3",
    ]


def test_cli_finish_augment(tmp_path: Path, npy_dataset: Path, capsys) -> None:
    from inception_fer.cli.main import main

    out = tmp_path / "run"
    base = ["train", "--model", "mini_xception", "--data", str(npy_dataset), "--epochs", "2",
            "--batch-size", "16", "--threads", "1", "--augment", "default,translate=0"]  # fmt: skip
    assert main([*base, "--crop-schedule", "40,48:1", "--finish-augment", "flip", "--out",
                 str(out)]) == 0  # fmt: skip
    assert '"finish_augment": "flip"' in (out / "run.json").read_text()
    assert "training on whole 48x48 images, augmented flip from epoch 2" in capsys.readouterr().out
    assert main([*base, "--finish-augment", "flip", "--out", str(tmp_path / "x")]) != 0
    assert "but there is no --crop-schedule" in capsys.readouterr().err
