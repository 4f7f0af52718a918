"""``--time-budget``: the planning arithmetic, the timing probe, and runs planned by it."""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from pathlib import Path

import pytest

from inception_fer.cli.main import main
from inception_fer.errors import InceptionFerError
from inception_fer.training import time_budget
from inception_fer.training.fit import Trainer, fit, resume
from inception_fer.training.run_dir import prepare_run_dir
from inception_fer.training.time_budget import (
    PROBE_MIN_SECONDS,
    SAFETY_MARGIN,
    EpochCosts,
    RunningBudget,
    available_seconds,
    keep_to_budget,
    measure_costs,
    plan_epochs,
    probe_seconds,
)
from test_training import assert_same_weights, config, interrupt_after, tiny_data

STEPS = 5  # tiny_data(): 70 training images in batches of 16


def constant(kind: tuple[int, bool] = (0, False)):
    return lambda epoch, epochs: kind


def test_plan_fills_the_time_available() -> None:
    costs = EpochCosts({(0, False): 0.5}, validate_s=2.0, save_s=1.0)  # 8 s per epoch
    assert plan_epochs(costs, constant(), 10, 1, 50.0).epochs == 6
    plan = plan_epochs(costs, constant(), 10, 1, 48.0)
    assert (plan.epochs, plan.seconds) == (6, pytest.approx(48.0))
    # Epochs before --val-from skip validation: 3 x 6 s + 4 x 8 s = 50 s.
    assert plan_epochs(costs, constant(), 10, 4, 50.0).epochs == 7


def test_plan_prices_each_kind_of_epoch() -> None:
    costs = EpochCosts({(32, False): 1.0, (40, False): 2.0}, validate_s=0.0, save_s=0.0)
    kind_at = lambda epoch, epochs: (32, False) if epoch < 3 else (40, False)  # noqa: E731
    # 3 epochs of 10 s, then epochs of 20 s.
    assert plan_epochs(costs, kind_at, 10, 1, 69.0).epochs == 4
    assert plan_epochs(costs, kind_at, 10, 1, 70.0).epochs == 5


def test_plan_prices_the_last_stages_of_every_length() -> None:
    costs = EpochCosts({(40, False): 1.0, (48, False): 2.0}, validate_s=0.0, save_s=0.0)
    kind_at = lambda epoch, epochs: (48, False) if epoch >= epochs - 2 else (40, False)  # noqa: E731
    # n epochs: n - 2 of 10 s, then the last 2 of 20 s: 10 n + 20 s.
    assert plan_epochs(costs, kind_at, 10, 1, 69.0).epochs == 4
    plan = plan_epochs(costs, kind_at, 10, 1, 70.0)
    assert (plan.epochs, plan.seconds) == (5, pytest.approx(70.0))
    # After 2 epochs of a 4-epoch run, its last 2 (40 s) and one more of 10 s fit in 55 s.
    assert plan_epochs(costs, kind_at, 10, 1, 55.0, first=2).epochs == 3
    assert plan_epochs(costs, kind_at, 10, 1, 39.0, first=2).epochs == 1


def test_plan_with_no_room_is_empty() -> None:
    costs = EpochCosts({(0, False): 1.0}, validate_s=0.0, save_s=0.0)
    assert plan_epochs(costs, constant(), 10, 1, 9.9).epochs == 0
    assert plan_epochs(costs, constant(), 10, 1, -5.0).epochs == 0


def test_available_time_keeps_the_margin_and_subtracts_what_is_spent() -> None:
    assert available_seconds(10, 30.0) == pytest.approx(600 * (1 - SAFETY_MARGIN) - 30.0)


def test_the_probe_times_one_percent_of_the_budget() -> None:
    assert probe_seconds(60) == pytest.approx(36.0)
    assert probe_seconds(1) == PROBE_MIN_SECONDS


def test_the_probe_times_every_kind_of_epoch(tmp_path: Path, monkeypatch) -> None:
    cfg = config(
        model="inception_fer_s", augment="flip", crop_schedule="32:1,40,48:1", time_budget=1
    )
    probe = Trainer(cfg, tiny_data(), tmp_path, True, lambda _: None)
    costs = measure_costs(probe, 0.0)
    assert set(costs.step_s) == {(32, False), (40, False), (48, False)}
    assert all(seconds > 0 for seconds in costs.step_s.values())
    assert costs.validate_s > 0 and costs.save_s > 0
    assert (tmp_path / "last.safetensors").is_file()  # the save was real, in the probe's dir

    frozen = config(model="inception_fer_s", freeze_backbone=True, unfreeze_at=3, time_budget=1)
    probe = Trainer(frozen, tiny_data(), tmp_path / "frozen", True, lambda _: None)
    assert set(measure_costs(probe, 0.0).step_s) == {(0, True), (0, False)}


def fake_timing(monkeypatch: pytest.MonkeyPatch, step_s: float) -> None:
    """Make the timing report ``step_s`` per step of every kind, quickly. The run's real epochs
    take milliseconds, so the re-planning that compares them with the timing (tested on its own
    below) is switched off: it would lengthen the run to fill the budget."""

    def measure(probe: Trainer, seconds: float) -> EpochCosts:
        return EpochCosts(defaultdict(lambda: step_s), validate_s=0.0, save_s=0.0)

    monkeypatch.setattr("inception_fer.training.time_budget.measure_costs", measure)
    monkeypatch.setattr("inception_fer.training.fit.keep_to_budget", lambda *args: None)


def test_a_budget_run_trains_the_planned_epochs(tmp_path: Path, monkeypatch) -> None:
    # 4 s per step x 5 steps = 20 s per epoch; one minute less the margin and the (sub-second)
    # loading leaves room for 2.
    fake_timing(monkeypatch, 4.0)
    lines: list[str] = []
    result = fit(config(time_budget=1), tmp_path / "budget", data=tiny_data(), log=lines.append)
    assert len(result.rows) == 2
    saved = json.loads((tmp_path / "budget" / "run.json").read_text())
    assert (saved["epochs"], saved["time_budget"]) == (2, 1)
    assert any("time budget 1 min" in line and ": 2 epochs" in line for line in lines)
    assert lines[-1].startswith("time budget: 2 epochs in ")
    assert not any(line.startswith("warning") for line in lines)  # far ahead of its plan
    # The probe leaves no trace: the run is the run given --epochs 2.
    fit(config(epochs=2), tmp_path / "plain", data=tiny_data(), quiet=True, log=lambda _: None)
    assert_same_weights(
        tmp_path / "budget" / "last.safetensors", tmp_path / "plain" / "last.safetensors"
    )


def test_a_budget_run_measured_for_real_is_deterministic(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(time_budget, "PROBE_MIN_SECONDS", 0.05)
    monkeypatch.setattr(time_budget, "MAX_EPOCHS", 3)  # a minute holds more: stop at 3
    result = fit(
        config(time_budget=1),
        tmp_path / "budget",
        data=tiny_data(),
        quiet=True,
        log=lambda _: None,
    )
    epochs = len(result.rows)
    assert epochs == 3
    assert json.loads((tmp_path / "budget" / "run.json").read_text())["epochs"] == epochs
    fit(config(epochs=epochs), tmp_path / "plain", data=tiny_data(), quiet=True, log=lambda _: None)
    assert_same_weights(
        tmp_path / "budget" / "last.safetensors", tmp_path / "plain" / "last.safetensors"
    )


def test_a_resumed_budget_run_keeps_its_plan(tmp_path: Path, monkeypatch) -> None:
    fake_timing(monkeypatch, 4.0)
    run = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        fit(config(time_budget=1), run, data=tiny_data(), quiet=True, log=interrupt_after(1))
    fake_timing(monkeypatch, 100.0)
    result = resume(run, data=tiny_data(), quiet=True, log=lambda _: None)
    assert [row["epoch"] for row in result.rows] == [1, 2]
    fit(config(epochs=2), tmp_path / "plain", data=tiny_data(), quiet=True, log=lambda _: None)
    assert_same_weights(run / "last.safetensors", tmp_path / "plain" / "last.safetensors")


def test_a_budget_too_short_for_one_epoch_is_refused_before_writing(
    tmp_path: Path, monkeypatch
) -> None:
    fake_timing(monkeypatch, 20.0)
    with pytest.raises(
        InceptionFerError, match=r"one epoch takes about 1\.7 min.*raise --time-budget"
    ):
        fit(
            config(time_budget=1),
            tmp_path / "run",
            data=tiny_data(),
            quiet=True,
            log=lambda _: None,
        )
    assert not (tmp_path / "run").exists()


def test_options_tied_to_epochs_are_checked_against_the_plan(tmp_path: Path, monkeypatch) -> None:
    fake_timing(monkeypatch, 4.0)
    with pytest.raises(InceptionFerError, match=r"budget fits 2 epochs here: --val-from must"):
        fit(
            config(time_budget=1, val_from=3),
            tmp_path / "a",
            data=tiny_data(),
            quiet=True,
            log=lambda _: None,
        )
    with pytest.raises(
        InceptionFerError, match=r"fits 2 epochs here: --crop-schedule 32:2,40 has 2"
    ):
        fit(
            config(time_budget=1, augment="flip", crop_schedule="32:2,40"),
            tmp_path / "b",
            data=tiny_data(),
            quiet=True,
            log=lambda _: None,
        )


def test_budget_options_are_checked_at_once() -> None:
    with pytest.raises(InceptionFerError, match="positive number of minutes"):
        config(time_budget=0)
    with pytest.raises(InceptionFerError, match="crop size 50 is outside"):
        config(time_budget=5, augment="flip", crop_schedule="32:1,50")
    # Without a plan yet, --val-from beyond the default epochs is not an error.
    assert config(time_budget=5, val_from=40).val_from == 40


def test_cli_time_budget(tmp_path: Path, npy_dataset: Path, monkeypatch, capsys) -> None:
    fake_timing(monkeypatch, 2.5)
    run = tmp_path / "run"
    base = ["train", "--model", "mini_xception", "--data", str(npy_dataset), "--out", str(run)]
    base += ["--batch-size", "16", "--threads", "1", "--quiet"]
    assert main([*base, "--time-budget", "1"]) == 0
    # 84 images: 6 steps of 2.5 s per epoch, so 3 epochs in 55.2 s less the loading.
    assert json.loads((run / "run.json").read_text())["epochs"] == 3
    assert "time budget: 3 epochs in" in capsys.readouterr().out
    assert main([*base, "--overwrite", "--time-budget", "1", "--epochs", "3"]) == 2
    assert "pass --epochs or --time-budget, not both" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--time-budget", "2"]) == 2
    assert "do not pass --time-budget" in capsys.readouterr().err


def budgeted(trainer: Trainer, seconds_left: float, step_s: float) -> RunningBudget:
    """Give ``trainer`` a one-minute budget with ``seconds_left`` before its margin, timed at
    ``step_s`` per step (no validation or save cost)."""
    margin = SAFETY_MARGIN * 60
    costs = EpochCosts(defaultdict(lambda: step_s), validate_s=0.0, save_s=0.0)
    trainer.budget = RunningBudget(time.perf_counter() + margin + seconds_left, 1, costs)
    return trainer.budget


def test_a_run_slower_than_timed_is_shortened_to_what_fits(tmp_path: Path) -> None:
    lines: list[str] = []
    trainer = Trainer(config(epochs=8), tiny_data(), tmp_path, True, lines.append)
    budget = budgeted(trainer, seconds_left=31.0, step_s=1.0)  # timed: 5 s per epoch
    keep_to_budget(trainer, budget, 1, epoch_s=4.0)
    assert trainer.config.epochs == 8 and lines == []
    keep_to_budget(trainer, budget, 2, epoch_s=11.0)  # the last 2 epochs: 15 s for 10 timed
    assert budget.pace == pytest.approx(1.5)
    # 31 s at 7.5 s per epoch: 4 more.
    assert trainer.config.epochs == 6
    assert lines == [
        "time budget: epochs take 1.50x their timed cost; re-planned from 8 to 6 epochs"
    ]
    assert json.loads((tmp_path / "run.json").read_text())["epochs"] == 6
    assert trainer.scheduler.last_epoch == 0  # no step taken: the schedule is a 6-epoch one now


def test_a_run_ahead_of_its_timing_is_lengthened_without_see_sawing(tmp_path: Path) -> None:
    lines: list[str] = []
    trainer = Trainer(config(epochs=4), tiny_data(), tmp_path, True, lines.append)
    budget = budgeted(trainer, seconds_left=56.0, step_s=1.0)  # timed: 5 s per epoch
    keep_to_budget(trainer, budget, 1, epoch_s=5.0)
    # As timed: 10 more epochs fit in 56 s even 10 % slower (5.5 s each).
    assert trainer.config.epochs == 11
    assert lines == [
        "time budget: epochs take 1.00x their timed cost; re-planned from 4 to 11 epochs"
    ]
    budget.deadline -= 5.25  # epoch 2 takes 5.25 s: 50.75 s left
    keep_to_budget(trainer, budget, 2, epoch_s=5.25)
    # At the recent pace (1.025x) the 9 epochs left fit; 10 would not fit 10 % slower.
    assert trainer.config.epochs == 11 and len(lines) == 1
    budget.deadline -= 6.5  # epoch 3 takes 6.5 s: 44.25 s left
    keep_to_budget(trainer, budget, 3, epoch_s=6.5)
    assert trainer.config.epochs == 10  # at 1.12x, 7 more fit
    assert json.loads((tmp_path / "run.json").read_text())["epochs"] == 10


def test_a_re_plan_moves_the_last_stages_with_the_end(tmp_path: Path) -> None:
    cfg = config(epochs=8, augment="flip", crop_schedule="40,48:2")
    trainer = Trainer(cfg, tiny_data(), tmp_path, True, lambda _: None)
    budget = budgeted(trainer, seconds_left=31.0, step_s=1.0)  # timed: 5 s per epoch
    keep_to_budget(trainer, budget, 1, epoch_s=4.0)
    keep_to_budget(trainer, budget, 2, epoch_s=11.0)  # 1.5x: 4 more fit
    assert trainer.config.epochs == 6
    assert [trainer.epoch_kind(epoch)[0] for epoch in range(6)] == [40, 40, 40, 40, 48, 48]
    budget.deadline -= 1000.0  # out of time: the 2 epochs of whole faces are the fewest left
    keep_to_budget(trainer, budget, 3, epoch_s=5.0)
    assert trainer.config.epochs == 5
    assert [trainer.epoch_kind(epoch)[0] for epoch in range(5)] == [40, 40, 40, 48, 48]


def test_a_run_about_to_begin_its_last_stages_is_lengthened_on_crops(tmp_path: Path) -> None:
    cfg = config(epochs=6, augment="flip", crop_schedule="40,48:2")
    trainer = Trainer(cfg, tiny_data(), tmp_path, True, lambda _: None)
    budgeted(trainer, seconds_left=56.0, step_s=1.0)  # timed: 5 s per epoch
    keep_to_budget(trainer, trainer.budget, 4, epoch_s=5.0)  # epoch 5 would be a whole face
    # 10 more fit even 10 % slower: the crops go on and the 2 whole-face epochs move to the end.
    assert trainer.config.epochs == 14
    assert [trainer.epoch_kind(epoch)[0] for epoch in range(4, 14)] == [40] * 8 + [48, 48]


def test_a_run_in_its_last_stages_is_only_lengthened_by_the_stage_under_way(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    cfg = config(epochs=6, augment="flip", crop_schedule="40,48:2", finish_augment="flip")
    trainer = Trainer(cfg, tiny_data(), tmp_path, True, lines.append)
    schedule = trainer.crop_schedule
    assert schedule is not None
    budget = budgeted(trainer, seconds_left=1000.0, step_s=1.0)  # room for many more epochs
    keep_to_budget(trainer, budget, 5, epoch_s=5.0)  # one epoch of whole faces done
    # Any more would put epoch 6 back on crops; one more keeps it on whole faces.
    assert trainer.config.epochs == 7
    assert lines == [
        "time budget: epochs take 1.00x their timed cost; re-planned from 6 to 7 epochs "
        "(the stage under way gets them)"
    ]
    assert [trainer.epoch_kind(epoch)[0] for epoch in (5, 6)] == [48, 48]
    assert all(schedule.finishing(epoch, 7) for epoch in (5, 6))
    assert json.loads((tmp_path / "run.json").read_text())["epochs"] == 7
    keep_to_budget(trainer, budget, 6, epoch_s=5.0)
    assert trainer.config.epochs == 8
    budget.deadline -= 2000.0  # and now none fits: the run is not shortened, and says so
    keep_to_budget(trainer, budget, 7, epoch_s=5.0)
    assert trainer.config.epochs == 8
    assert lines[2:] == [
        "warning: this run will end after its time budget: 1 more epoch(s) are the fewest it "
        "can end with; at 1.00x their timed cost they take about 0.1 min, and 0.0 are left"
    ]


def test_a_lengthened_finish_stretches_only_the_stage_under_way(tmp_path: Path) -> None:
    cfg = config(epochs=8, augment="flip", crop_schedule="40,44:3,48:2")
    trainer = Trainer(cfg, tiny_data(), tmp_path, True, lambda _: None)
    budget = budgeted(trainer, seconds_left=1000.0, step_s=1.0)
    keep_to_budget(trainer, budget, 5, epoch_s=5.0)  # epochs 4 and 5 on 44x44 done
    assert trainer.config.epochs == 10
    assert [trainer.epoch_kind(epoch)[0] for epoch in range(5, 10)] == [44, 44, 44, 48, 48]


def test_a_run_out_of_time_ends_as_soon_as_it_can_and_says_so_once(tmp_path: Path) -> None:
    lines: list[str] = []
    cfg = config(epochs=6, val_from=3, augment="flip", crop_schedule="32:3,40")
    trainer = Trainer(cfg, tiny_data(), tmp_path, True, lines.append)
    budgeted(trainer, seconds_left=-1.0, step_s=1e-3)  # the budget is already spent
    result = trainer.run()
    # After epoch 1, the crop schedule's 3 epochs at 32x32 and one at 40x40 are the fewest.
    assert [row["epoch"] for row in result.rows] == [1, 2, 3, 4]
    assert lines[0] == "training on 32x32 crops from epoch 1"
    assert lines[1].endswith("re-planned from 6 to 4 epochs")
    warnings = [line for line in lines if line.startswith("warning")]
    assert len(warnings) == 1
    assert re.fullmatch(
        r"warning: this run will end after its time budget: 3 more epoch\(s\) are the fewest "
        r"it can end with; at \d+\.\d\dx their timed cost they take about \d+\.\d min, "
        r"and 0\.0 are left",
        warnings[0],
    )
    assert lines[2] == warnings[0] and lines[3].startswith("epoch 1/4 ")


def test_a_shortened_run_resumes_at_the_same_weights(tmp_path: Path) -> None:
    def shortened(run: Path, log) -> Trainer:
        trainer = Trainer(config(epochs=4), tiny_data(), run, True, log)
        prepare_run_dir(run, trainer.config, overwrite=False)
        budgeted(trainer, seconds_left=-1.0, step_s=1e-3)
        return trainer

    shortened(tmp_path / "full", lambda _: None).run()
    with pytest.raises(KeyboardInterrupt):
        shortened(tmp_path / "cut", interrupt_after(1)).run()
    assert json.loads((tmp_path / "cut" / "run.json").read_text())["epochs"] == 2
    result = resume(tmp_path / "cut", data=tiny_data(), quiet=True, log=lambda _: None)
    assert [row["epoch"] for row in result.rows] == [1, 2]
    assert_same_weights(
        tmp_path / "full" / "last.safetensors", tmp_path / "cut" / "last.safetensors"
    )
