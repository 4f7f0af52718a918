"""``--time-budget``: as many epochs as fit in a wall-clock budget on this machine.

The same hour trains 44 epochs of ``inception_fer_f`` on a CPU with native bf16 and 18 in float32
on an AVX2-only one (docs/experiments.md), so a recipe stated in epochs is a recipe for one kind
of machine. With a budget, ``fit`` first builds a throwaway copy of the run (same network, batch,
augmentation and optimizer) and times training steps of each kind of epoch the run will have
(crop size, backbone frozen or not; 1 % of the budget each, at least 5 s), one validation (with
the BatchNorm re-estimation of crop runs) and one save of the run's files. The run then gets as
many epochs as fit, at those costs, in what is left of the budget after loading the data and
timing, less a safety margin. The real run is built afterwards from the same seeds, so until it
re-plans (below) it trains exactly as a run given that number of epochs; the number is saved as
``epochs`` in ``run.json`` and ``--resume`` continues the run with it.

A shared machine's speed drifts by 10-20 % within minutes, so a few seconds of timing cannot
promise an hour. While the run trains, ``RunningBudget`` compares each epoch's measured time with
what the timing predicted; when the recent epochs say that the planned ones no longer fit before
the deadline, the run is shortened to those that do, and when more would fit even somewhat
slower, it is lengthened (``keep_to_budget``). Its schedule becomes the new length's from the
step it has reached, and ``run.json`` is rewritten. Once a crop schedule's finish (its stages
counted from the end) is under way, the run is only lengthened, by stretching the stage under
way: the timing of whole-face steps is the least steady figure on a shared CPU, and a finish
that ran faster than priced left 8.6 minutes of an hour unused (docs/experiments.md).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..errors import InceptionFerError
from .distributed import reduce_sums

if TYPE_CHECKING:
    from .fit import Trainer

PROBE_MIN_SECONDS = 5.0
PROBE_BUDGET_FRACTION = 0.01
"""Timed seconds per kind of epoch: 1 % of the budget (36 s of an hour), at least 5 s. A few
seconds of steps on a shared machine mis-predicted a long run's epochs by 7 to 19 %."""

PROBE_WARMUP_STEPS = 2
"""Untimed steps first: the first steps of a shape build kernels and allocate memory."""

PROBE_MIN_STEPS = 3
"""Timed steps (at least) per kind of epoch."""

SAFETY_MARGIN = 0.03
"""Fraction of the budget kept free, by the plan and by every re-plan (108 s of an hour, 18 s of
10 minutes): room for the last epochs to run slower than the ones before them (on this project's
shared 2-core machine single epochs vary by 10-15 %, 7-10 s of a 65 s epoch). The timing itself
mis-predicts a run's epochs by -10 to +22 % (docs/experiments.md); re-planning, not the margin,
keeps such a run within its budget. A 5 % margin dropped a 10-minute run's last epoch that
would have fitted."""

REPLAN_WINDOW = 3
"""Epochs whose measured time sets a re-plan's pace: the recent ones, as the speed drifts."""

LENGTHEN_SLACK = 0.10
"""A run is lengthened only by epochs that would fit even 10 % slower than its recent pace, and
shortened as soon as its epochs do not fit at that pace: the band between the two keeps a pace
that wavers by a few per cent from changing the run's length back and forth."""

MAX_EPOCHS = 100_000
"""Upper bound on a planned run (and the probe's schedule length)."""

EpochKind = tuple[int, bool]
"""(crop size or 0, backbone frozen): what sets the cost of an epoch's steps."""

KindAt = Callable[[int, int], EpochKind]
"""The kind of 0-based epoch ``e`` of an ``n``-epoch run: ``kind_at(e, n)``."""


@dataclass(frozen=True)
class EpochCosts:
    """Measured seconds: one training step per kind of epoch, one validation, one save."""

    step_s: dict[EpochKind, float]
    validate_s: float
    save_s: float


@dataclass(frozen=True)
class EpochPlan:
    """The epochs that fit, the seconds they are expected to take, and (from ``plan_budget``)
    the costs they were planned with and the log line that explains them."""

    epochs: int
    seconds: float
    costs: EpochCosts | None = None
    description: str = ""


@dataclass
class RunningBudget:
    """A planned run's budget while it trains: the deadline (a ``time.perf_counter()`` value),
    the timing's costs, and each epoch's predicted and measured seconds so far."""

    deadline: float
    budget_minutes: float
    costs: EpochCosts
    predicted_s: list[float] = field(default_factory=list)
    measured_s: list[float] = field(default_factory=list)
    warned_late: bool = False

    def record(self, predicted_s: float, measured_s: float) -> None:
        """One more epoch: what the timing predicted for it and what it took."""
        self.predicted_s.append(predicted_s)
        self.measured_s.append(measured_s)

    @property
    def pace(self) -> float:
        """Measured over predicted seconds of the last ``REPLAN_WINDOW`` epochs (1: as timed)."""
        predicted = sum(self.predicted_s[-REPLAN_WINDOW:])
        return sum(self.measured_s[-REPLAN_WINDOW:]) / predicted if predicted > 0 else 1.0

    def seconds_left(self, now: float) -> float:
        """Seconds until the deadline less the safety margin."""
        return self.deadline - now - SAFETY_MARGIN * 60.0 * self.budget_minutes

    def epochs_that_fit(
        self,
        seconds: float,
        kind_at: KindAt,
        steps_per_epoch: int,
        val_from: int,
        pace: float,
        done: int,
    ) -> int:
        """How many epochs after the first ``done`` fit in ``seconds`` when they take ``pace``
        times their timed cost (see ``plan_epochs``)."""
        timed_seconds = seconds / pace
        plan = plan_epochs(self.costs, kind_at, steps_per_epoch, val_from, timed_seconds, done)
        return plan.epochs


def plan_budget(probe: Trainer, budget_minutes: float, started: float) -> EpochPlan:
    """Time ``probe`` (see ``measure_costs``) and plan the epochs that fit in ``budget_minutes``
    counted from ``time.perf_counter()`` value ``started`` (rank 0's clock under ``torchrun``,
    so every process plans the same); a budget that fits no epoch is refused."""
    costs = measure_costs(probe, probe_seconds(budget_minutes))
    elapsed = time.perf_counter() - started
    (spent,) = reduce_sums([elapsed if probe.dist.is_main else 0.0], probe.dist, probe.device)
    available = available_seconds(budget_minutes, spent)
    plan = plan_epochs(
        costs, probe.epoch_kind, probe.steps_per_epoch, probe.config.val_from, available
    )
    if plan.epochs == 0:
        first = epoch_seconds(costs, probe.epoch_kind(0), probe.steps_per_epoch, True)
        raise _too_short(budget_minutes, available, first)
    last = probe.epoch_kind(plan.epochs - 1, plan.epochs)
    line = _describe(budget_minutes, spent, costs, plan, last)
    return dataclasses.replace(plan, costs=costs, description=line)


def keep_to_budget(trainer: Trainer, budget: RunningBudget, done: int, epoch_s: float) -> None:
    """After ``done`` epochs of ``trainer``'s budgeted run, the last of which took ``epoch_s``
    seconds before saving: when the epochs planned no longer fit before the deadline at the
    recent pace, shorten the run to those that do (at least one more, and enough for
    ``--val-from`` and ``--crop-schedule``; warn once when even that will end late); when more
    fit even ``LENGTHEN_SLACK`` slower than that, lengthen it. Once a crop schedule's stages
    counted from the end have begun, the run is not shortened, and is lengthened only as far as
    the next epoch stays in the stage under way (that stage gets the epochs added). Under
    ``torchrun`` the processes' times are averaged, so every process decides alike."""
    config = trainer.config
    costs = budget.costs
    validated = done >= config.val_from
    predicted = epoch_seconds(
        costs, trainer.epoch_kind(done - 1), trainer.steps_per_epoch, validated
    )
    measured, left = reduce_sums(
        [epoch_s, budget.seconds_left(time.perf_counter())], trainer.dist, trainer.device
    )
    world = trainer.dist.world_size
    budget.record(predicted - costs.save_s, measured / world)

    def fit_at(pace: float) -> int:
        return budget.epochs_that_fit(
            left / world - costs.save_s,
            trainer.epoch_kind,
            trainer.steps_per_epoch,
            config.val_from,
            pace,
            done,
        )

    fits = fit_at(budget.pace)
    schedule = trainer.crop_schedule
    tail = schedule.tail if schedule else 0
    finishing = done > config.epochs - tail  # never without a schedule (tail 0)
    if schedule is not None and finishing:  # a stage counted from the end is under way
        least = config.epochs
        most = config.epochs + done - schedule.stage_start(done, config.epochs)
    else:
        fixed = schedule.fixed_epochs if schedule else 0
        least = max(done + max(1, tail), config.val_from, fixed + 1)
        most = MAX_EPOCHS
    if done + fits < config.epochs:
        epochs = max(done + fits, least)
    else:
        lengthened = done + fit_at(budget.pace * (1 + LENGTHEN_SLACK))
        epochs = max(config.epochs, min(lengthened, most))
    if epochs != config.epochs:
        stretched = " (the stage under way gets them)" if finishing else ""
        trainer.log(
            f"time budget: epochs take {budget.pace:.2f}x their timed cost; "
            f"re-planned from {config.epochs} to {epochs} epochs{stretched}"
        )
        trainer.set_epochs(epochs)
    if done + fits < least and not budget.warned_late:
        budget.warned_late = True
        needed = budget.pace * run_seconds(
            costs, trainer.epoch_kind, trainer.steps_per_epoch, config.val_from, done, least
        )
        trainer.log(
            f"warning: this run will end after its time budget: {least - done} more "
            f"epoch(s) are the fewest it can end with; at {budget.pace:.2f}x their timed cost "
            f"they take about {needed / 60:.1f} min, and {max(left / world, 0.0) / 60:.1f} "
            "are left"
        )


def _epochs_to_time(probe: Trainer) -> dict[EpochKind, int]:
    """The first 0-based epoch of each kind the run can have (the probe's run is
    ``MAX_EPOCHS`` long, so a crop schedule's stages counted from the end are its last epochs)."""
    config = probe.config
    schedule = probe.crop_schedule
    head, tail = (schedule.head, schedule.tail) if schedule else (0, 0)
    horizon = max(head, config.unfreeze_at - 1 if config.freeze_backbone else 0)
    first_epoch_of: dict[EpochKind, int] = {}
    for epoch in [*range(horizon + 1), *range(config.epochs - tail, config.epochs)]:
        first_epoch_of.setdefault(probe.epoch_kind(epoch), epoch)
    return first_epoch_of


def probe_seconds(budget_minutes: float) -> float:
    """Seconds of timed steps per kind of epoch for a budget of ``budget_minutes``."""
    return max(PROBE_MIN_SECONDS, PROBE_BUDGET_FRACTION * 60.0 * budget_minutes)


def measure_costs(probe: Trainer, seconds: float) -> EpochCosts:
    """Time ``probe`` (a throwaway ``Trainer``: its weights and generators change) as the run
    will use it, for ``seconds`` (at least) per kind of epoch; under ``torchrun`` the
    processes' times are averaged and rank 0's save counts."""
    first_epoch_of = _epochs_to_time(probe)
    kinds = list(first_epoch_of)
    step_s = [_seconds_per_step(probe, first_epoch_of[kind], seconds) for kind in kinds]
    started = time.perf_counter()
    probe.recalibrate()
    probe.validate()
    validate_s = time.perf_counter() - started
    save_s = _seconds_to_save(probe) if probe.dist.is_main else 0.0
    world = probe.dist.world_size
    *steps, validate_total, save_main = reduce_sums(
        [*step_s, validate_s, save_s], probe.dist, probe.device
    )
    return EpochCosts(
        step_s={kind: total / world for kind, total in zip(kinds, steps, strict=True)},
        validate_s=validate_total / world,
        save_s=save_main,
    )


def _seconds_per_step(probe: Trainer, epoch: int, seconds: float) -> float:
    """Seconds per training step of 0-based ``epoch``'s kind, on random training batches."""
    net = probe.begin_epoch(epoch)
    picker = torch.Generator().manual_seed(0)
    n = len(probe.train_x)

    def step() -> None:
        index = torch.randint(n, (probe.local_batch,), generator=picker).to(probe.device)
        probe.train_step(net, index)

    for _ in range(PROBE_WARMUP_STEPS):
        step()
    _synchronize(probe.device)
    steps, started = 0, time.perf_counter()
    while steps < PROBE_MIN_STEPS or time.perf_counter() - started < seconds:
        step()
        steps += 1
    _synchronize(probe.device)
    return (time.perf_counter() - started) / steps


def _seconds_to_save(probe: Trainer) -> float:
    """Seconds to write the run's files once (checkpoints, history, curves) in the probe's
    own (scratch) run directory."""
    row = {
        "epoch": 1.0,
        "train_loss": 1.0,
        "train_acc": 0.5,
        "val_loss": 1.0,
        "val_acc": 0.5,
        "lr": probe.config.lr,
        "seconds": 1.0,
        "images_per_s": 1.0,
    }
    probe.rows.append(row)
    started = time.perf_counter()
    probe.save(1, row, improved=True)
    return time.perf_counter() - started


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plan_epochs(
    costs: EpochCosts,
    kind_at: KindAt,
    steps_per_epoch: int,
    val_from: int,
    available_s: float,
    first: int = 0,
) -> EpochPlan:
    """The most epochs from 0-based ``first`` on whose costs add up to at most ``available_s``
    seconds: epoch ``e`` of an ``n``-epoch run trains ``steps_per_epoch`` steps of kind
    ``kind_at(e, n)``, saves, and validates from 1-based epoch ``val_from`` on. A longer run
    costs more (it has one more epoch; a crop schedule's stages counted from the end move
    with it), so the longest that fits is found by bisection."""

    def seconds_of(epochs: int) -> float:
        return run_seconds(costs, kind_at, steps_per_epoch, val_from, first, epochs)

    fits, more = first, first + 1
    while more <= MAX_EPOCHS and seconds_of(more) <= available_s:
        fits, more = more, min(2 * more - first, MAX_EPOCHS + 1)
    while more - fits > 1:
        middle = (fits + more) // 2
        fits, more = (middle, more) if seconds_of(middle) <= available_s else (fits, middle)
    return EpochPlan(fits - first, seconds_of(fits))


def run_seconds(
    costs: EpochCosts,
    kind_at: KindAt,
    steps_per_epoch: int,
    val_from: int,
    first: int,
    epochs: int,
) -> float:
    """Expected seconds of 0-based epochs ``first`` to ``epochs - 1`` of an ``epochs``-epoch
    run (see ``plan_epochs``)."""
    return sum(
        epoch_seconds(costs, kind_at(epoch, epochs), steps_per_epoch, epoch + 1 >= val_from)
        for epoch in range(first, epochs)
    )


def epoch_seconds(
    costs: EpochCosts, kind: EpochKind, steps_per_epoch: int, validated: bool
) -> float:
    """Expected seconds of one epoch of ``kind``."""
    return (
        steps_per_epoch * costs.step_s[kind]
        + (costs.validate_s if validated else 0.0)
        + costs.save_s
    )


def available_seconds(budget_minutes: float, spent_s: float) -> float:
    """Seconds left for epochs: the budget less the safety margin and what is already spent."""
    return budget_minutes * 60.0 * (1.0 - SAFETY_MARGIN) - spent_s


def _describe(
    budget_minutes: float, spent_s: float, costs: EpochCosts, plan: EpochPlan, kind: EpochKind
) -> str:
    """One log line: what the timing found and how many epochs the budget buys."""
    crop, frozen = kind
    shape = f"{crop}x{crop} crops" if crop else "whole images"
    last = f"{shape}{', backbone frozen' if frozen else ''}"
    return (
        f"time budget {budget_minutes:g} min: {spent_s:.0f} s to load and time; a step takes "
        f"{1000 * costs.step_s[kind]:.0f} ms ({last}), validation {costs.validate_s:.1f} s, "
        f"saving {costs.save_s:.1f} s: {plan.epochs} epochs, planned to end after "
        f"{(spent_s + plan.seconds) / 60:.1f} min"
    )


def _too_short(
    budget_minutes: float, available_s: float, first_epoch_s: float
) -> InceptionFerError:
    """The error for a budget that fits no epoch."""
    return InceptionFerError(
        f"a time budget of {budget_minutes:g} min leaves {_duration(max(available_s, 0.0))} for "
        f"training after loading and timing, and one epoch takes about "
        f"{_duration(first_epoch_s)} here: raise --time-budget, or train a smaller network or "
        "on smaller crops"
    )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
