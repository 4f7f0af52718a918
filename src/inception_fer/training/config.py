"""The training configuration: every option of ``inception-fer train`` in one dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..data.augment import AugmentConfig
from ..errors import InceptionFerError
from ..evaluation.tta import TTA_MODES
from .crop_schedule import CropSchedule
from .distributed import DIST_BACKENDS

AMP_MODES = ("none", "bf16", "fp16")
LAUNCH_OPTIONS = ("device", "threads", "dist_backend", "compile")
"""Options about where and how a run executes, not what it computes: ``--resume`` may change
them."""


@dataclass
class TrainConfig:
    """Hyper-parameters and data options of one training run (saved as ``run.json``).

    ``batch_size`` is the global batch: under ``torchrun`` each of W processes takes
    ``batch_size / W`` images per step. ``amp`` is ``none`` unless asked for, on GPUs and CPUs
    alike. ``init``, ``freeze_backbone``, ``unfreeze_at`` (1-based epoch) and ``head_lr_mult``
    are the transfer-learning options; ``classes`` replaces the seven emotions. ``ema`` > 0
    validates and saves an exponential moving average of the weights with that decay per step.
    ``crop_schedule`` (e.g. ``'32:16,36:16,40'``, ``'40,48:6'``) sets the random crop size epoch
    by epoch; ``finish_augment`` replaces ``augment`` in its finishing stages (those after its
    open-ended one).
    ``val_from`` (1-based) is the first epoch that is validated and can become the best one.
    ``val_tta`` scores each validation with that test-time augmentation (``evaluation/tta.py``):
    the validation loss and accuracy, and so the best checkpoint, are those of the averaged
    views.
    ``time_budget`` (minutes) replaces ``epochs`` by as many as fit in that wall time here
    (``time_budget.py``); the planned count is then saved as ``epochs`` (and changed when the run
    re-plans while it trains). ``decay_norm_bias``
    False exempts normalisation weights and biases from weight decay. ``whiten_stem`` starts the
    first convolution as a whitening of the training images' patches (``whitening.py``).
    """

    model: str = "inception_fer_s"
    data: str = ""
    epochs: int = 30
    time_budget: float | None = None
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    decay_norm_bias: bool = True
    whiten_stem: bool = False
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    class_weights: str = "none"
    augment: str = "default"
    crop_schedule: str | None = None
    finish_augment: str | None = None
    seed: int = 0
    drop_rate: float | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    input_size: int = 48
    val_fraction: float | None = None
    skip_bad: bool = False
    val_from: int = 1
    val_tta: str = "none"
    early_stopping: int = 0
    clip_grad: float = 0.0
    ema: float = 0.0
    channels_last: bool = True
    amp: str = "none"
    device: str = "auto"
    threads: int | None = None
    classes: list[str] | None = None
    init: str | None = None
    freeze_backbone: bool = False
    unfreeze_at: int = 0
    head_lr_mult: float = 1.0
    sync_bn: bool = False
    dist_backend: str = "auto"
    compile: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be at least 1, got {self.batch_size}"),
            (self.lr > 0, f"learning rate must be positive, got {self.lr}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (
                self.warmup_epochs >= 0,
                f"--warmup-epochs must be >= 0 (0 = the schedule's own), got {self.warmup_epochs}",
            ),
            (
                0 <= self.label_smoothing < 1,
                f"label smoothing must be in [0, 1), got {self.label_smoothing}",
            ),
            (
                self.class_weights in ("none", "balanced"),
                f"class weights must be 'none' or 'balanced', got {self.class_weights!r}",
            ),
            (self.val_from >= 1, f"--val-from must be an epoch (1 or more), got {self.val_from}"),
            (
                self.val_tta in TTA_MODES,
                f"--val-tta must be one of {', '.join(TTA_MODES)}, got {self.val_tta!r}",
            ),
            (
                self.time_budget is None or self.time_budget > 0,
                f"--time-budget must be a positive number of minutes, got {self.time_budget}",
            ),
            (
                self.val_from == 1 or self.schedule != "plateau",
                "the plateau schedule needs the validation loss of every epoch: drop --val-from",
            ),
            (self.early_stopping >= 0, "early stopping patience must be >= 0"),
            (self.clip_grad >= 0, "gradient clipping norm must be >= 0"),
            (0 <= self.ema < 1, f"EMA decay must be in [0, 1) (0 = off), got {self.ema}"),
            (
                self.amp in AMP_MODES,
                f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}",
            ),
            (self.input_size >= 8, f"input size must be at least 8, got {self.input_size}"),
            (
                self.unfreeze_at == 0 or (self.freeze_backbone and self.unfreeze_at >= 2),
                f"--unfreeze-at must be an epoch >= 2 of a --freeze-backbone run, "
                f"got {self.unfreeze_at}",
            ),
            (self.head_lr_mult > 0, f"head lr multiplier must be > 0, got {self.head_lr_mult}"),
            (
                not (self.whiten_stem and self.init),
                "--whiten-stem sets the first convolution from the training images and --init "
                "sets it from other weights: pass one of them",
            ),
            (
                self.dist_backend in DIST_BACKENDS,
                f"dist backend must be one of {', '.join(DIST_BACKENDS)}, "
                f"got {self.dist_backend!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise InceptionFerError(message)
        crop = AugmentConfig.from_string(self.augment).crop
        if crop > self.input_size:
            raise InceptionFerError(
                f"--augment crop={crop} is larger than the {self.input_size}x{self.input_size} "
                "input"
            )
        if self.crop_schedule is not None and crop:
            raise InceptionFerError(
                f"--crop-schedule sets the crop size of every epoch: drop crop={crop} from "
                "--augment"
            )
        if self.finish_augment is not None:
            self._check_finish_augment(self.finish_augment)
        self._check_shifts(crop or self.input_size)
        if self.time_budget is None:
            self.check_epochs()

    def check_epochs(self) -> None:
        """Refuse an ``epochs`` that the options tied to epochs do not fit (with
        ``time_budget``, checked once the budget has set it)."""
        if not 1 <= self.val_from <= self.epochs:
            raise InceptionFerError(
                f"--val-from must be an epoch of the run (1..{self.epochs}), got {self.val_from}"
            )
        if self.crop_schedule is not None:
            fixed = CropSchedule.parse(self.crop_schedule, self.input_size).fixed_epochs
            if fixed >= self.epochs:
                raise InceptionFerError(
                    f"--crop-schedule {self.crop_schedule} has {fixed} epochs in its stages of "
                    f"a set length and needs one more for its open-ended stage, but the run has "
                    f"{self.epochs}"
                )

    def _check_shifts(self, size: int) -> None:
        """Refuse a ``shift`` item that the smallest images it applies to cannot take (``size``
        without a crop schedule), before training starts rather than when its stage begins."""
        phases = [("--augment", self.augment, [size])]
        if self.crop_schedule is not None:
            schedule = CropSchedule.parse(self.crop_schedule, self.input_size)
            if self.finish_augment is None:
                phases = [("--augment", self.augment, [s for s, _ in schedule.stages])]
            else:
                phases = [
                    ("--augment", self.augment, schedule.sizes(finish=False)),
                    ("--finish-augment", self.finish_augment, schedule.sizes(finish=True)),
                ]
        for option, spec, sizes in phases:
            shift, smallest = AugmentConfig.from_string(spec).shift, min(sizes)
            if 2 * shift >= smallest:
                raise InceptionFerError(
                    f"{option} shift={shift} is too large for the {smallest}x{smallest} images "
                    f"it applies to (at most {(smallest - 1) // 2})"
                )

    def _check_finish_augment(self, spec: str) -> None:
        schedule = self.crop_schedule
        if schedule is None or CropSchedule.parse(schedule, self.input_size).tail == 0:
            raise InceptionFerError(
                "--finish-augment sets the augmentation of the --crop-schedule stages after its "
                "open-ended one (e.g. '40,48:10'), but "
                + (f"{schedule!r} has none" if schedule else "there is no --crop-schedule")
            )
        crop = AugmentConfig.from_string(spec).crop
        if crop:
            raise InceptionFerError(
                f"--crop-schedule sets the crop size of the finish: drop crop={crop} from "
                "--finish-augment"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
