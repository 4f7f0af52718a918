"""``fit``: train a registered network on FER data, with history, curves and exact resume.

The whole dataset lives in memory as uint8; each step gathers a batch by index, converts it to
float, augments it with batched tensor ops and normalises it, so no per-image Python runs in the
hot loop. All randomness comes from two seeded ``torch.Generator`` objects (shuffling and
augmentation) plus torch's global generator (dropout), and all three are saved in every checkpoint:
resuming after any interruption ends at the same weights as an uninterrupted run. With ``--ema``
the moving average of the weights (``ema``) is what is validated and saved as ``model.*``; the
trained weights travel in ``last.safetensors``'s training state.

Under ``torchrun`` (see ``distributed``) each process trains on its share of every global batch
in ``DistributedDataParallel``; rank 0 alone writes the run directory and logs. The shuffling
generator is global (the same in every process) and saved; the augmentation and dropout
generators are re-seeded at each epoch from (seed, epoch, rank) instead. So a distributed run
resumed with the same number of processes ends at the same weights too, and a run can be resumed
with any number of processes: weights, optimizer, schedule, shuffling and history carry over (a
one-process resume of a distributed run continues rank 0's augmentation and dropout generators).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import ReduceLROnPlateau
from tqdm import tqdm

from ..cpu_features import cpu_bf16_is_native, cpu_description
from ..data import BatchAugment, FerData, load_fer
from ..data.augment import AugmentConfig
from ..data.normalize import compute_mean_std, to_float
from ..errors import InceptionFerError
from ..evaluation.tta import tta_views
from ..models.fold_bn import fold_batchnorm
from .batchnorm import recalibrate_batchnorm, recalibration_subset
from .checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from .compile import compile_errors, compile_module
from .config import LAUNCH_OPTIONS, TrainConfig
from .crop_schedule import CropSchedule
from .device import forward_batch_size, resolve_device
from .distributed import (
    DistContext,
    barrier,
    epoch_seeds,
    on_main,
    process_group,
    reduce_sums,
    shard_indices,
)
from .ema import WeightAverage
from .heads import freeze_backbone_batchnorm, parameter_groups, set_backbone_trainable
from .history import keras_history, write_history
from .optim import (
    Scheduler,
    build_optimizer,
    build_scheduler,
    exempt_norm_and_bias,
    resize_schedule,
)
from .run_dir import check_run_dir, prepare_run_dir, read_run_config, update_run_config
from .time_budget import MAX_EPOCHS, EpochCosts, RunningBudget, keep_to_budget, plan_budget
from .transfer import InitReport, init_weights
from .whitening import WHITENING_IMAGES, whiten_first_conv_

AUX_LOSS_WEIGHT = 0.3
"""Weight of each auxiliary classifier's loss (GoogLeNet, Szegedy et al. 2014)."""

Logger = Callable[[str], None]


@dataclass
class FitResult:
    """What a training run produced."""

    run_dir: Path
    rows: list[dict[str, float]]
    best_val_acc: float
    best_epoch: int

    @property
    def history(self) -> dict[str, list[float]]:
        """Keras-style history: ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``."""
        return keras_history(self.rows)

    @property
    def best_checkpoint(self) -> Path:
        return self.run_dir / "best.safetensors"

    @property
    def last_checkpoint(self) -> Path:
        return self.run_dir / "last.safetensors"


def fit(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    overwrite: bool = False,
    quiet: bool = False,
    data: FerData | None = None,
    log: Logger = print,
) -> FitResult:
    """Train ``config.model`` on ``config.data`` (or on ``data``), writing the run to ``run_dir``.

    Every epoch writes ``history.csv``/``history.json``, ``curves.png``, ``last.safetensors`` and,
    when validation accuracy improves, ``best.safetensors``. A ``run_dir`` that holds another run is
    refused unless ``overwrite``. ``config.init`` starts from other weights (``transfer``),
    ``config.whiten_stem`` starts the first convolution from the data (``whitening``). Under
    ``torchrun`` every process calls ``fit`` and rank 0 writes the run.
    """
    started = time.perf_counter()
    run_path = Path(run_dir)
    with process_group(config.device, config.dist_backend) as context:
        log = log if context.is_main else _silent
        on_main(context, lambda: check_run_dir(run_path, overwrite))
        data = _load_data(config, data, log, context)
        costs = None
        if config.time_budget is not None:
            config, costs = _within_budget(config, data, context, started, log)
        trainer = Trainer(config, data, run_path, quiet, log, dist=context)
        if config.time_budget is not None and costs is not None:
            deadline = started + 60 * config.time_budget
            trainer.budget = RunningBudget(deadline, config.time_budget, costs)
        if config.init is not None:
            trainer.initialize(config.init)
        if config.whiten_stem:
            trainer.whiten_stem()
        # only a run that could start leaves a run.json (which makes a retry need --overwrite)
        on_main(context, lambda: prepare_run_dir(run_path, config, overwrite))
        result = trainer.run()
        if config.time_budget is not None:
            minutes = (time.perf_counter() - started) / 60
            spent = f"{minutes:.1f} of {config.time_budget:g} min"
            log(f"time budget: {len(result.rows)} epochs in {spent}")
        return result


def _within_budget(
    config: TrainConfig, data: FerData, context: DistContext, started: float, log: Logger
) -> tuple[TrainConfig, EpochCosts]:
    """``config`` with ``epochs`` set by its ``time_budget`` (see ``time_budget``), and the
    costs timed; the timing runs on a throwaway ``Trainer``, so the run itself is unchanged by
    it. The init weights (``--init``) do not change a step's cost and are not loaded into it."""
    budget = float(config.time_budget or 0)
    with tempfile.TemporaryDirectory() as scratch:
        probe_config = dataclasses.replace(config, epochs=MAX_EPOCHS)
        probe = Trainer(probe_config, data, Path(scratch), True, _silent, dist=context)
        plan = plan_budget(probe, budget, started)
    log(plan.description)
    planned = dataclasses.replace(config, epochs=plan.epochs)
    try:
        planned.check_epochs()
    except InceptionFerError as error:
        raise InceptionFerError(
            f"the {budget:g} min budget fits {plan.epochs} epochs here: {error}"
        ) from None
    assert plan.costs is not None
    return planned, plan.costs


def resume(
    run_dir: str | Path,
    *,
    epochs: int | None = None,
    quiet: bool = False,
    data: FerData | None = None,
    log: Logger = print,
    launch: Mapping[str, Any] | None = None,
) -> FitResult:
    """Continue the run saved in ``run_dir`` with its saved configuration, after any interruption,
    with any number of processes; ``epochs`` extends (or shortens) it and ``launch`` changes
    options of ``LAUNCH_OPTIONS`` (device, threads, ...) for this session. Every process reads
    ``run_dir``: on several machines it must be on a filesystem they share."""
    run_path = Path(run_dir)
    saved = read_run_config(run_path)
    unknown = sorted(set(launch or {}) - set(LAUNCH_OPTIONS))
    if unknown:
        raise InceptionFerError(
            f"a resumed run keeps its configuration; only {', '.join(LAUNCH_OPTIONS)} and epochs "
            f"can change, not {', '.join(unknown)}"
        )
    config = dataclasses.replace(saved, **(launch or {}))
    with process_group(config.device, config.dist_backend) as context:
        log = log if context.is_main else _silent
        if epochs is not None:
            config.epochs = epochs
        data = _load_data(config, data, log, context)
        trainer = Trainer(config, data, run_path, quiet, log, dist=context)
        trainer.restore(run_path / "last.safetensors")
        if config.epochs != saved.epochs:
            saved.epochs = config.epochs
            on_main(context, lambda: update_run_config(run_path, saved))
        return trainer.run()


def _silent(_: str) -> None:
    """The logger of processes other than rank 0."""


def _load_data(
    config: TrainConfig, data: FerData | None, log: Logger, context: DistContext
) -> FerData:
    if data is not None:
        return data
    with warnings.catch_warnings():
        if not context.is_main:
            warnings.simplefilter("ignore")
        loaded = load_fer(
            config.data,
            image_size=config.input_size,
            val_fraction=config.val_fraction,
            seed=config.seed,
            classes=config.classes,
            skip_bad=config.skip_bad,
        )
    if loaded.bad_files:
        log(f"skipped {len(loaded.bad_files)} unreadable image(s), e.g. {loaded.bad_files[0]}")
    return loaded


class Trainer:
    """The state of one run and the epoch loop over it (this process's part of it, under
    ``torchrun``: ``dist`` says which; one process by default)."""

    def __init__(
        self,
        config: TrainConfig,
        data: FerData,
        run_dir: Path,
        quiet: bool,
        log: Logger,
        dist: DistContext | None = None,
    ) -> None:
        self.dist = dist or DistContext()
        world = self.dist.world_size
        if config.batch_size % world:
            raise InceptionFerError(
                f"--batch-size {config.batch_size} is the global batch: it must be divisible by "
                f"the number of processes, {world}"
            )
        self.local_batch = config.batch_size // world
        if config.threads:
            torch.set_num_threads(config.threads)
        device = resolve_device(config.device, self.dist.local_rank if self.dist.enabled else None)
        self.config, self.data, self.device, self.run_dir = config, data, device, run_dir
        self.quiet = quiet or not self.dist.is_main
        self.log = log if self.dist.is_main else _silent
        if device.type == "cpu" and config.amp == "bf16" and not cpu_bf16_is_native():
            self.log(
                f"warning: --amp bf16 is emulated on this CPU ({cpu_description()}) and trains "
                "several times slower than float32; pass --amp none"
            )
        torch.manual_seed(config.seed)
        self.shuffle_gen = torch.Generator().manual_seed(config.seed)
        self.augment_gen = torch.Generator(device=device).manual_seed(config.seed + 1)
        mean, std = compute_mean_std(data.train.images)
        kwargs = dict(config.model_kwargs)
        if config.drop_rate is not None:
            kwargs["drop_rate"] = config.drop_rate
        self.meta = CheckpointMeta(
            model_name=config.model,
            model_kwargs={"in_chans": 1, **kwargs},
            class_names=list(data.class_names),
            mean=float(mean),
            std=float(std),
            input_size=config.input_size,
        )
        memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.memory_format = memory_format
        self.model = self.meta.build_model().to(device)
        if config.sync_bn and self.dist.enabled:
            self.model = _sync_batchnorm(self.model, device)
        self.model.to(memory_format=memory_format)  # type: ignore[call-overload]
        self.net: nn.Module | None = None
        self.frozen = False
        self.augment = BatchAugment(AugmentConfig.from_string(config.augment))
        self.crop_schedule = (
            CropSchedule.parse(config.crop_schedule, config.input_size)
            if config.crop_schedule
            else None
        )
        self.average = WeightAverage(self.model, config.ema) if config.ema else None
        params = parameter_groups(self.model, config.lr, config.head_lr_mult)
        self.optimizer = build_optimizer(
            config.optimizer,
            params if config.decay_norm_bias else exempt_norm_and_bias(params),
            config.lr,
            config.weight_decay,
            fused=True if config.optimizer in ("adam", "adamw") else None,
        )
        self.steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
        self.scheduler: Scheduler = build_scheduler(
            config.schedule,
            self.optimizer,
            config.epochs,
            self.steps_per_epoch,
            config.warmup_epochs,
        )
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp)
        self.scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
        self.criterion = nn.CrossEntropyLoss(
            weight=self._class_weights(), label_smoothing=config.label_smoothing
        )
        size = (config.input_size, config.input_size)
        if tuple(data.train.images.shape[1:]) != size:
            raise InceptionFerError(
                f"training images are {data.train.images.shape[1:]}, expected {size} "
                "(load the data with image_size=input_size)"
            )
        self.train_x = torch.from_numpy(data.train.images).to(device)
        self.train_y = torch.from_numpy(data.train.labels).to(device)
        self.val_x = torch.from_numpy(data.val.images).to(device)
        self.val_y = torch.from_numpy(data.val.labels).to(device)
        # Crop runs re-estimate BatchNorm statistics on these whole faces after every epoch.
        self.recal_x: torch.Tensor | None = None
        if self.augment.config.crop or self.crop_schedule is not None:
            subset = recalibration_subset(len(self.train_x), config.seed).to(device)
            self.recal_x = self.train_x[subset]
        self.rows: list[dict[str, float]] = []
        self.start_epoch = 0
        self.best_val_acc = -1.0
        self.best_epoch = 0
        self.epochs_since_best = 0
        # A --time-budget run's deadline and costs (None: no budget, or a resumed run).
        self.budget: RunningBudget | None = None

    def _class_weights(self) -> torch.Tensor | None:
        """``balanced``: n / (k * count) per class. The weighted loss is a mean normalised by
        each batch's weights; under ``torchrun`` DDP averages the processes' means, which is
        the mean over the global batch only when the processes' weight sums agree (close, for
        shuffled shards)."""
        if self.config.class_weights == "none":
            return None
        k = len(self.data.class_names)
        counts = np.bincount(self.data.train.labels, minlength=k).astype(np.float64)
        weights = len(self.data.train) / (k * np.maximum(counts, 1.0))
        return torch.tensor(weights, dtype=torch.float32, device=self.device)

    @property
    def evaluated_model(self) -> nn.Module:
        """The weights that are validated and saved: the moving average with ``--ema``, else the
        trained model itself."""
        return self.model if self.average is None else self.average.module

    def _train_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "shuffle_rng": self.shuffle_gen.get_state(),
            "augment_rng": self.augment_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": self._cuda_rng_state(),
            "grad_scaler": self.scaler.state_dict(),
            "rows": self.rows,
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "epochs_since_best": self.epochs_since_best,
            "world_size": self.dist.world_size,
        }
        if self.average is not None:
            # The checkpoint's model.* tensors are the average; the trained weights go here.
            state["ema"] = {"trained": self.model.state_dict(), "updates": self.average.updates}
        return state

    @property
    def _keeps_cuda_rng(self) -> bool:
        """One process on a GPU saves every GPU's generator; under torchrun they are re-seeded
        per epoch instead (and a process must not touch the other processes' GPUs)."""
        return self.device.type == "cuda" and not self.dist.enabled

    def _cuda_rng_state(self) -> list[torch.Tensor]:
        return torch.cuda.get_rng_state_all() if self._keeps_cuda_rng else []

    def initialize(self, spec: str) -> InitReport:
        """Start from the weights ``spec`` names (``--init``), taking the source's input
        normalisation where it has one; logs what was loaded."""
        report = init_weights(
            self.model,
            spec,
            model_name=self.meta.model_name,
            model_kwargs=self.meta.model_kwargs,
            class_names=self.meta.class_names,
        )
        if report.normalisation is not None:
            self.meta.mean, self.meta.std = report.normalisation
        if self.average is not None:
            self.average = WeightAverage(self.model, self.average.decay)
        for line in report.lines():
            self.log(line)
        return report

    def whiten_stem(self) -> None:
        """``--whiten-stem``: set the first convolution from the patches of a seeded sample of
        whole training faces (``whitening``), the same in every process."""
        generator = torch.Generator().manual_seed(self.config.seed)
        subset = torch.randperm(len(self.train_x), generator=generator)[:WHITENING_IMAGES]
        images = self._batch(self.train_x[subset.to(self.device)], augment=False)
        self.log(whiten_first_conv_(self.model, images))
        if self.average is not None:
            self.average = WeightAverage(self.model, self.average.decay)

    def restore(self, path: Path) -> None:
        """Continue from a ``last`` checkpoint: weights, optimizer, schedule, RNGs, history."""
        checkpoint = load_checkpoint(path, with_train_state=True)
        state = checkpoint.train_state
        if state is None:
            raise InceptionFerError(f"cannot resume: {path} holds no training state")
        if checkpoint.meta.epoch > self.config.epochs:
            raise InceptionFerError(
                f"cannot resume {self.run_dir} for {self.config.epochs} epochs: it has trained "
                f"{checkpoint.meta.epoch} already"
            )
        saved = checkpoint.model.state_dict()
        if self.average is None:
            self.model.load_state_dict(saved)
        else:
            self.average.module.load_state_dict(saved)
            self.model.load_state_dict(state["ema"]["trained"])
            self.average.updates = int(state["ema"]["updates"])
        self.meta = checkpoint.meta
        self.optimizer.load_state_dict(state["optimizer"])
        _match_param_layout(self.optimizer)
        self.scheduler.load_state_dict(state["scheduler"])
        resize_schedule(self.scheduler, self.config.epochs, self.steps_per_epoch)
        self.shuffle_gen.set_state(state["shuffle_rng"])
        self.augment_gen.set_state(state["augment_rng"])
        torch.set_rng_state(state["torch_rng"])
        cuda_rng = state["cuda_rng"]
        if self._keeps_cuda_rng and len(cuda_rng) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_rng)
        if state.get("grad_scaler"):
            self.scaler.load_state_dict(state["grad_scaler"])
        self.rows = [dict(row) for row in state["rows"]]
        self.best_val_acc = float(state["best_val_acc"])
        self.best_epoch = int(state["best_epoch"])
        self.epochs_since_best = int(state["epochs_since_best"])
        self.start_epoch = checkpoint.meta.epoch
        saved_world = int(state.get("world_size", 1))
        processes = (
            f" (saved by {saved_world} process(es), now {self.dist.world_size})"
            if saved_world != self.dist.world_size
            else ""
        )
        self.log(f"resuming {self.run_dir} after epoch {self.start_epoch}{processes}")

    def run(self) -> FitResult:
        """Train from ``start_epoch`` to ``config.epochs``, saving after every epoch (a budgeted
        run may change its length on the way: ``time_budget.keep_to_budget``)."""
        config = self.config
        epoch = self.start_epoch
        while epoch < config.epochs:
            if config.early_stopping and self.epochs_since_best >= config.early_stopping:
                self.log(f"early stopping: no improvement for {self.epochs_since_best} epochs")
                break
            started = time.perf_counter()
            train_loss, train_acc = self.train_epoch(epoch)
            validating = epoch + 1 >= config.val_from
            if validating:
                self.recalibrate()
            seconds = time.perf_counter() - started
            val_loss, val_acc = self.validate() if validating else (math.nan, math.nan)
            if self.budget is not None and epoch + 1 < config.epochs:
                keep_to_budget(self, self.budget, epoch + 1, time.perf_counter() - started)
            if isinstance(self.scheduler, ReduceLROnPlateau):
                self.scheduler.step(val_loss)
            row = {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "lr": self.optimizer.param_groups[0]["lr"],
                "seconds": seconds,
                "images_per_s": len(self.data.train) / seconds,
            }
            self.rows.append(row)
            improved = val_acc > self.best_val_acc
            if improved:
                self.best_val_acc, self.best_epoch, self.epochs_since_best = val_acc, epoch + 1, 0
            elif validating:
                self.epochs_since_best += 1
            if self.dist.is_main:
                self.save(epoch + 1, row, improved)
            barrier(self.dist)
            self.log(_epoch_line(row, config.epochs, improved))
            epoch += 1
        return FitResult(self.run_dir, self.rows, self.best_val_acc, self.best_epoch)

    def set_epochs(self, epochs: int) -> None:
        """Make the run ``epochs`` long: its schedule becomes an ``epochs``-epoch run's from the
        step it has reached, and ``run.json`` says so."""
        self.config.epochs = epochs
        resize_schedule(self.scheduler, epochs, self.steps_per_epoch)
        on_main(self.dist, lambda: update_run_config(self.run_dir, self.config))

    def _batch(self, images: torch.Tensor, augment: bool) -> torch.Tensor:
        x = (to_float(images) - self.meta.mean) / self.meta.std
        if augment:
            x = self.augment(x, generator=self.augment_gen)
        return x.contiguous(memory_format=self.memory_format)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        )

    def _loss(self, output: Any, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss (with auxiliary heads when the model returns them) and the main logits."""
        if isinstance(output, torch.Tensor):
            return self.criterion(output, target), output
        logits, *aux = output
        loss = self.criterion(logits, target)
        for aux_logits in aux:
            if aux_logits is not None:
                loss = loss + AUX_LOSS_WEIGHT * self.criterion(aux_logits, target)
        return loss, logits

    def _network(self, epoch: int) -> nn.Module:
        """The model as ``epoch`` trains it: backbone frozen or not, in DDP under ``torchrun``,
        compiled with ``--compile``; re-wrapped when the frozen part changes (DDP and the
        compiled graph only see the parameters that train)."""
        frozen = self._frozen_at(epoch)
        if frozen != self.frozen:
            set_backbone_trainable(self.model, not frozen)
            self.log("backbone frozen: training the head only" if frozen else "backbone unfrozen")
        if self.net is None or frozen != self.frozen:
            self.frozen = frozen
            net: nn.Module = self.model
            if self.dist.enabled:
                device_ids = [self.device.index] if self.device.type == "cuda" else None
                net = DistributedDataParallel(net, device_ids=device_ids)
            self.net = compile_module(net) if self.config.compile else net
        return self.net

    def begin_epoch(self, epoch: int) -> nn.Module:
        """Set up 0-based ``epoch`` (frozen backbone or not, its crop size, per-epoch seeds
        under ``torchrun``) and return the network in training mode."""
        net = self._network(epoch)
        net.train()
        if self.frozen:
            freeze_backbone_batchnorm(self.model)
        if self.dist.enabled:
            augment_seed, torch_seed = epoch_seeds(self.config.seed, epoch, self.dist.rank)
            self.augment_gen.manual_seed(augment_seed)
            torch.manual_seed(torch_seed)
        if self.crop_schedule is not None:
            self._set_stage(self.crop_schedule, epoch)
        return net

    def epoch_kind(self, epoch: int, epochs: int | None = None) -> tuple[int, bool]:
        """What sets the cost of 0-based ``epoch``'s steps in a run of ``epochs`` (default:
        this run's): its crop size (0 = whole images) and whether the backbone is frozen."""
        schedule = self.crop_schedule
        if schedule is None:
            crop = self.augment.config.crop
        else:
            crop = schedule.size_at(epoch, self.config.epochs if epochs is None else epochs)
        return crop, self._frozen_at(epoch)

    def _frozen_at(self, epoch: int) -> bool:
        config = self.config
        return config.freeze_backbone and not (0 < config.unfreeze_at <= epoch + 1)

    def train_step(self, net: nn.Module, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on the training images at ``index``; returns the loss and the
        main logits."""
        config = self.config
        x = self._batch(self.train_x[index], augment=True)
        with self._autocast():
            loss, logits = self._loss(net(x), self.train_y[index])
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if config.clip_grad:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), config.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if not isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step()
        if self.average is not None:
            self.average.update(self.model)
        return loss, logits

    def train_epoch(self, epoch: int) -> tuple[float, float]:
        """One pass over the training split (this process's share of it); returns the mean loss
        and accuracy over all processes."""
        config = self.config
        net = self.begin_epoch(epoch)
        n = len(self.train_x)
        order = torch.randperm(n, generator=self.shuffle_gen)
        order = shard_indices(order, self.dist.rank, self.dist.world_size).to(self.device)
        total_loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        bar = tqdm(
            total=n,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            unit="img",
            disable=self.quiet,
            leave=False,
            dynamic_ncols=True,
        )
        guard = compile_errors(config.model) if config.compile else contextlib.nullcontext()
        with bar, guard:
            for start in range(0, len(order), self.local_batch):
                index = order[start : start + self.local_batch]
                loss, logits = self.train_step(net, index)
                y = self.train_y[index]
                total_loss += loss.detach() * len(y)
                correct += (logits.argmax(1) == y).sum()
                bar.update(len(y) * self.dist.world_size)
                if not self.quiet and (start // self.local_batch) % 20 == 0:
                    bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        loss_sum, correct_sum, count = reduce_sums(
            [total_loss.item(), correct.item(), len(order)], self.dist, self.device
        )
        if not math.isfinite(loss_sum):
            raise InceptionFerError(
                f"training diverged at epoch {epoch + 1} (loss is not finite); "
                "lower --lr or use --clip-grad"
            )
        return loss_sum / count, correct_sum / count

    def recalibrate(self) -> None:
        """On crop runs, re-estimate the validated weights' BatchNorm statistics on whole
        faces (not while the backbone is frozen: its statistics stay as loaded)."""
        if self.recal_x is None or self.frozen:
            return
        recalibrate_batchnorm(
            self.evaluated_model,
            self.recal_x,
            self.meta.mean,
            self.meta.std,
            memory_format=self.memory_format,
            autocast=self._autocast(),
        )

    def _set_stage(self, schedule: CropSchedule, epoch: int) -> None:
        """Give the augmentation ``epoch``'s crop size from ``schedule``, and the
        ``--finish-augment`` items in its finishing stages."""
        config = self.config
        size = schedule.size_at(epoch, config.epochs)
        finish = config.finish_augment if schedule.finishing(epoch, config.epochs) else None
        items = AugmentConfig.from_string(finish or config.augment)
        augment = dataclasses.replace(items, crop=size)
        if augment != self.augment.config:
            self.augment.config = augment
            whole = size == config.input_size
            shape = f"whole {size}x{size} images" if whole else f"{size}x{size} crops"
            how = f", augmented {items.to_string()}" if finish else ""
            self.log(f"training on {shape}{how} from epoch {epoch + 1}")

    @torch.inference_mode()
    def validate(self) -> tuple[float, float]:
        """Loss and accuracy on the validation split (NaN when it is empty), scored by a copy of
        the evaluated weights with BatchNorm folded into the convolutions (with ``val_tta``, on
        the class probabilities averaged over its views); under ``torchrun``
        each process scores every W-th image and the sums are all-reduced."""
        if len(self.val_x) == 0:
            return float("nan"), float("nan")
        model = fold_batchnorm(self.evaluated_model)
        batch_size = forward_batch_size(self.device)
        rank, world = self.dist.rank, self.dist.world_size
        val_x, val_y = self.val_x[rank::world], self.val_y[rank::world]
        total_loss = 0.0
        correct = 0
        for start in range(0, len(val_x), batch_size):
            x = self._batch(val_x[start : start + batch_size], augment=False)
            y = val_y[start : start + batch_size]
            log_probs = self._view_averaged_log_probs(model, x)
            total_loss += F.nll_loss(log_probs, y, reduction="sum").item()
            correct += int((log_probs.argmax(1) == y).sum().item())
        loss_sum, correct_sum, count = reduce_sums(
            [total_loss, correct, len(val_x)], self.dist, self.device
        )
        return loss_sum / count, correct_sum / count

    def _view_averaged_log_probs(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Log of the class probabilities averaged over the ``val_tta`` views of ``x`` (with
        ``none``, the log-softmax of the logits)."""
        views = tta_views(x, self.config.val_tta)
        with self._autocast():
            log_probs = [
                F.log_softmax(model(v.contiguous(memory_format=self.memory_format)).float(), 1)
                for v in views
            ]
        return torch.logsumexp(torch.stack(log_probs), dim=0) - math.log(len(views))

    def save(self, epoch: int, row: dict[str, float], improved: bool) -> None:
        """Write the run directory's files after ``epoch`` (1-based) with its history ``row``."""
        from ..evaluation.plots import plot_curves

        self.meta.epoch = epoch
        self.meta.metrics = {k: float(v) for k, v in row.items() if k != "epoch"}
        model = self.evaluated_model
        if improved:
            save_checkpoint(self.run_dir / "best.safetensors", model, self.meta)
        save_checkpoint(self.run_dir / "last.safetensors", model, self.meta, self._train_state())
        write_history(self.rows, self.run_dir)
        plot_curves(self.rows, self.run_dir / "curves.png", title=self.config.model)


def _match_param_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give restored per-parameter buffers their parameter's memory layout (e.g. channels_last):
    checkpoints store them contiguous, and fused kernels assume matching strides."""
    for param, buffers in optimizer.state.items():
        for key, value in buffers.items():
            if isinstance(value, torch.Tensor) and value.shape == param.shape:
                buffers[key] = torch.empty_like(param).copy_(value)


def _epoch_line(row: dict[str, float], epochs: int, improved: bool) -> str:
    validation = (
        "not validated"
        if math.isnan(row["val_acc"])
        else f"val_loss {row['val_loss']:.4f}  val_acc {row['val_acc']:.4f}"
    )
    return (
        f"epoch {int(row['epoch'])}/{epochs}  "
        f"loss {row['train_loss']:.4f}  acc {row['train_acc']:.4f}  {validation}  "
        f"lr {row['lr']:.2e}  {row['seconds']:.1f}s  {row['images_per_s']:.0f} img/s"
        + ("  *best" if improved else "")
    )


def _sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """``--sync-bn``: BatchNorm statistics over the global batch (GPUs only)."""
    if device.type == "cpu":
        raise InceptionFerError(
            "--sync-bn needs GPUs: torch's SyncBatchNorm has no CPU implementation; "
            "train without it on the CPU (each process then normalises over its own share)"
        )
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)
