"""A run directory: its config file, and the refusal to overwrite a different run by accident."""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import InceptionFerError
from .config import TrainConfig

RUN_FILE = "run.json"
RUN_OUTPUTS = (
    RUN_FILE,
    "last.safetensors",
    "best.safetensors",
    "history.csv",
    "history.json",
    "curves.png",
)


def check_run_dir(run_dir: Path, overwrite: bool) -> list[str]:
    """Refuse a ``run_dir`` holding another run (unless ``overwrite``) or that is not a
    directory; return the names of the run files already in it."""
    existing = [name for name in RUN_OUTPUTS if (run_dir / name).exists()]
    if existing and not overwrite:
        raise InceptionFerError(
            f"{run_dir} already holds a training run ({', '.join(existing)}); "
            "pass --resume to continue it or --overwrite to replace it"
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise InceptionFerError(f"{run_dir} exists and is not a directory")
    return existing


def prepare_run_dir(run_dir: Path, config: TrainConfig, overwrite: bool) -> None:
    """Create ``run_dir`` for a new run (see ``check_run_dir``) and write its ``run.json``."""
    existing = check_run_dir(run_dir, overwrite)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in existing:
        (run_dir / name).unlink()
    atomic_write_text(run_dir / RUN_FILE, json.dumps(config.to_dict(), indent=2))


def read_run_config(run_dir: Path) -> TrainConfig:
    """The configuration a run directory was started with (for ``--resume``)."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise InceptionFerError(f"cannot resume: {run_dir} holds no {RUN_FILE}")
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InceptionFerError(f"cannot resume: {path} is not valid JSON ({error})") from error
    return TrainConfig.from_dict(values)


def update_run_config(run_dir: Path, config: TrainConfig) -> None:
    """Rewrite ``run.json`` (e.g. after ``--resume --epochs`` extended the run)."""
    atomic_write_text(run_dir / RUN_FILE, json.dumps(config.to_dict(), indent=2))
