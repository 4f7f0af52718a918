"""``--init``: start a run from other weights (transfer learning) and say what was taken.

Sources: an inception-fer checkpoint (file or run directory), a shipped model's name, or a
state_dict file (``.safetensors``, or ``.pth``/``.pt``/``.bin`` read with
``torch.load(weights_only=True)``), including torchvision's ``googlenet`` and ``inception_v3``
ImageNet weights, whose key names are translated (see ``torchvision_weights``).

Every tensor of the model whose name and shape match is loaded. A first convolution built for
RGB is summed over its 3 input channels for gray input (a gray image seen as R = G = B gives the
same response). The head is re-initialised when the class list differs from the source's (or its
shape does). What was loaded, re-initialised, skipped for its shape, missing from the source and
left unused is reported.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, InceptionFerError
from .checkpoint import read_checkpoint_file, read_safetensors
from .heads import head_names, in_head
from .torchvision_weights import (
    TORCHVISION_MEAN,
    TORCHVISION_STD,
    googlenet_key_map,
    inception_v3_key_map,
    torchvision_arch,
)

_TORCH_SUFFIXES = (".pth", ".pt", ".bin")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_SHOWN = 5


@dataclass
class InitSource:
    """Weights to start from, keyed by our model's names where they came from elsewhere."""

    tensors: dict[str, torch.Tensor]
    kind: str
    class_names: list[str] | None = None
    normalisation: tuple[float, float] | None = None
    unused: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class InitReport:
    """What ``--init`` did to each of the model's tensors."""

    source: str
    kind: str
    total: int
    loaded: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    normalisation: tuple[float, float] | None = None

    def lines(self) -> list[str]:
        """The report as log lines."""
        out = [f"init from {self.source} ({self.kind}): loaded {len(self.loaded)} of {self.total}"]
        parts = [
            ("re-initialised head", self.reinitialised),
            ("not loaded, shape differs", self.skipped),
            ("missing from the source, left at random init", self.missing),
            ("in the source but unused", self.unused),
        ]
        out += [f"  {label} ({len(names)}): {_shorten(names)}" for label, names in parts if names]
        out += [f"  note: {note}" for note in self.notes]
        if self.normalisation is not None:
            mean, std = self.normalisation
            out.append(f"  input normalisation from the source: mean {mean:.4f}, std {std:.4f}")
        return out


def _shorten(names: list[str]) -> str:
    more = len(names) - _SHOWN
    return ", ".join(names[:_SHOWN]) + (f" and {more} more" if more > 0 else "")


def init_weights(
    model: nn.Module,
    spec: str,
    *,
    model_name: str,
    model_kwargs: Mapping[str, Any],
    class_names: list[str],
) -> InitReport:
    """Load the weights ``spec`` names into ``model`` (built as ``model_name(**model_kwargs)``
    for ``class_names``) and report what was taken; an error when nothing fits."""
    source = read_init_source(spec, model_name, model_kwargs)
    new_classes = source.class_names is not None and source.class_names != list(class_names)
    heads = head_names(model) if new_classes or _has_head_mismatch(model, source) else ()
    target = model.state_dict()
    report = InitReport(
        source=spec,
        kind=source.kind,
        total=len(target),
        unused=source.unused + sorted(set(source.tensors) - set(target)),
        notes=list(source.notes),
        normalisation=source.normalisation,
    )
    taken: dict[str, torch.Tensor] = {}
    for key, current in target.items():
        given = source.tensors.get(key)
        if in_head(key, heads) and (new_classes or given is None or given.shape != current.shape):
            report.reinitialised.append(key)
        elif given is None:
            if not key.endswith("num_batches_tracked"):
                report.missing.append(key)
        elif given.shape == current.shape:
            taken[key] = given.to(current.dtype)
        elif _rgb_to_gray(given, current):
            taken[key] = given.sum(dim=1, keepdim=True).to(current.dtype)
            report.notes.append(f"{key}: summed over the source's 3 RGB input channels")
        else:
            report.skipped.append(f"{key} {tuple(given.shape)} != {tuple(current.shape)}")
    if not taken:
        example = next(iter(source.tensors), "none")
        raise InceptionFerError(
            f"--init {spec} ({source.kind}): none of its {len(source.tensors)} tensors fit "
            f"{model_name} (e.g. {example}); is it a checkpoint of the same architecture?"
        )
    report.loaded = sorted(taken)
    if new_classes:
        report.notes.append(f"classes differ from the source's {source.class_names}")
    model.load_state_dict({**target, **taken})
    return report


def _has_head_mismatch(model: nn.Module, source: InitSource) -> bool:
    """Whether some head tensor of ``model`` has no same-shaped counterpart in ``source``."""
    heads = head_names(model)
    return any(
        key not in source.tensors or source.tensors[key].shape != value.shape
        for key, value in model.state_dict().items()
        if in_head(key, heads)
    )


def _rgb_to_gray(given: torch.Tensor, current: torch.Tensor) -> bool:
    """A conv weight (out, 3, kh, kw) for a model that takes (out, 1, kh, kw)."""
    return (
        given.dim() == 4
        and given.shape[1] == 3
        and current.shape[1] == 1
        and given.shape[:1] + given.shape[2:] == current.shape[:1] + current.shape[2:]
    )


def read_init_source(spec: str, model_name: str, model_kwargs: Mapping[str, Any]) -> InitSource:
    """The weights ``spec`` names, with torchvision's key names translated to ours."""
    path = _resolve(spec)
    if path.is_dir() or path.suffix == ".safetensors":
        header, tensors = read_checkpoint_file(path) if path.is_dir() else read_safetensors(path)
        if header is not None:
            meta = header["meta"]
            weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
            return InitSource(
                tensors=weights,
                kind=f"{meta['model_name']} checkpoint, epoch {meta.get('epoch', 0)}",
                class_names=list(meta["class_names"]),
                normalisation=(float(meta["mean"]), float(meta["std"])),
            )
    elif path.suffix in _TORCH_SUFFIXES:
        tensors = _torch_state_dict(path)
    else:
        raise InceptionFerError(
            f"--init {spec}: expected a checkpoint (.safetensors or run directory), a shipped "
            f"model name or a state_dict file ({', '.join(_TORCH_SUFFIXES)})"
        )
    return _translate(_strip_wrappers(tensors), model_name, model_kwargs)


def _resolve(spec: str) -> Path:
    path = Path(spec).expanduser()
    if path.exists():
        return path
    from ..pretrained import list_pretrained, pretrained_path

    if spec == "default" or spec in list_pretrained():
        return pretrained_path(spec)
    shipped = ", ".join(["default", *list_pretrained()])
    raise InceptionFerError(
        f"--init {spec}: no such checkpoint, run directory or state_dict file, and not a "
        f"shipped model ({shipped})"
    )


def _torch_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} is not a loadable state_dict: {first}") from error
    for key in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    if not isinstance(loaded, Mapping):
        raise CheckpointError(f"{path} holds a {type(loaded).__name__}, not a state_dict")
    tensors = {str(k): v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors")
    return tensors


def _strip_wrappers(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop DistributedDataParallel's ``module.`` and torch.compile's ``_orig_mod.`` prefixes."""
    out = {}
    for key, value in tensors.items():
        for prefix in _WRAPPER_PREFIXES:
            key = key.removeprefix(prefix)
        out[key] = value
    return out


def _translate(
    tensors: dict[str, torch.Tensor], model_name: str, model_kwargs: Mapping[str, Any]
) -> InitSource:
    """Rename torchvision keys to ours; other state_dicts are taken to use our names."""
    arch = torchvision_arch(tensors)
    if arch is None:
        return InitSource(tensors=tensors, kind="state_dict")
    if arch != model_name:
        raise InceptionFerError(
            f"--init holds torchvision {arch} weights, which fit --model {arch}, not {model_name}"
        )
    notes = []
    if arch == "googlenet":
        if model_kwargs.get("conv5x5_kernel", 5) != 3:
            raise InceptionFerError(
                "--init holds torchvision googlenet weights, whose '5x5' branches are 3x3 "
                "convolutions: add --model-arg conv5x5_kernel=3 (and --model-arg stem=imagenet "
                "to load its stem too)"
            )
        imagenet_stem = model_kwargs.get("stem", "fer") == "imagenet"
        key_map = googlenet_key_map(imagenet_stem)
        if not imagenet_stem:
            notes.append(
                "stem not loaded: googlenet's FER stem has no counterpart in torchvision's "
                "ImageNet stem (conv1-conv3); --model-arg stem=imagenet loads it"
            )
    else:
        key_map = inception_v3_key_map()
    return InitSource(
        tensors={key_map[k]: v for k, v in tensors.items() if k in key_map},
        kind=f"torchvision {arch}",
        normalisation=(TORCHVISION_MEAN, TORCHVISION_STD),
        unused=sorted(k for k in tensors if k not in key_map),
        notes=notes,
    )
