"""Test-time augmentation (TTA) and batched prediction of class probabilities."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError, InceptionFerError

TTA_MODES: tuple[str, ...] = ("none", "flip", "tencrop", "shift")
"""Valid ``tta`` values: 1, 2, 10 and 10 views per image."""

TENCROP_PAD_FRACTION = 0.0833
"""Ten-crop reflect padding as a fraction of the image size (4 px at 48x48)."""

SHIFT_FRACTION = 1 / 24
"""``shift`` TTA: the shift as a fraction of the image size (2 px at 48x48)."""


def _check_mode(mode: str) -> None:
    if mode not in TTA_MODES:
        raise InceptionFerError(f"unknown TTA mode {mode!r}; valid modes: {', '.join(TTA_MODES)}")


def tta_views(x: Tensor, mode: str) -> Tensor:
    """The views of a batch ``x`` (B, C, H, W) for TTA ``mode``, shaped (V, B, C, H, W).

    View 0 is always ``x`` itself.

    - ``none``: 1 view.
    - ``flip``: 2 views, ``x`` and its horizontal (left-right) flip.
    - ``tencrop``: 10 views. Khaireddin & Chen (2021) train on random crops and test on the
      average of ten crops (4 corners + centre, each with its horizontal flip). Our networks take
      the full image, so the crops are taken from ``x`` reflect-padded by
      ``p = round(0.0833 * size)`` on each side (4 px at 48x48): five full-size crops of the
      padded image, which are ``x`` itself (centre) and ``x`` shifted by ``+-p`` pixels on both
      axes (corners), like the random translations of training augmentation. Order: centre,
      top-left, top-right, bottom-left, bottom-right, then the flips of these five in that order.
    - ``shift``: 10 views, ``x`` and ``x`` moved by ``s = round(size / 24)`` pixels (2 at 48x48)
      up, down, left and right, the uncovered border repeating the edge pixels, then the flips of
      these five in that order. On the shipped ``inception_fer_f`` (PublicTest): 69.5 %, against
      69.0 % for ``flip`` and 68.9 % for ``tencrop`` (whose corner views move the face 4 pixels
      on both axes at once and mirror, rather than repeat, the border).
    """
    _check_mode(mode)
    if x.ndim != 4:
        raise DataError(f"TTA expects a batch shaped (B, C, H, W), got shape {tuple(x.shape)}")
    if mode == "none":
        return x.unsqueeze(0)
    if mode == "flip":
        return torch.stack([x, x.flip(-1)])
    if mode == "shift":
        return _shift_views(x)
    h, w = x.shape[-2:]
    ph, pw = round(TENCROP_PAD_FRACTION * h), round(TENCROP_PAD_FRACTION * w)
    padded = F.pad(x, (pw, pw, ph, ph), mode="reflect")
    offsets = [(ph, pw), (0, 0), (0, 2 * pw), (2 * ph, 0), (2 * ph, 2 * pw)]
    crops = [padded[..., top : top + h, left : left + w] for top, left in offsets]
    return torch.stack(crops + [c.flip(-1) for c in crops])


def _shift_views(x: Tensor) -> Tensor:
    """The ``shift`` views of ``x`` (see :func:`tta_views`)."""
    h, w = x.shape[-2:]
    sh, sw = max(1, round(SHIFT_FRACTION * h)), max(1, round(SHIFT_FRACTION * w))
    padded = F.pad(x, (sw, sw, sh, sh), mode="replicate")
    offsets = [(sh, sw), (2 * sh, sw), (0, sw), (sh, 2 * sw), (sh, 0)]
    views = [padded[..., top : top + h, left : left + w] for top, left in offsets]
    return torch.stack(views + [v.flip(-1) for v in views])


def _as_uint8_batch(images: Tensor | np.ndarray) -> Tensor:
    """``images`` as a uint8 tensor (N, C, H, W); (N, H, W) gains a channel axis."""
    tensor = (
        torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    )
    if tensor.dtype != torch.uint8:
        raise DataError(f"images must be uint8 (0-255), got dtype {tensor.dtype}")
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(1)
    if tensor.ndim != 4:
        raise DataError(
            f"images must be shaped (N, H, W) or (N, C, H, W), got shape {tuple(tensor.shape)}"
        )
    if tensor.shape[0] == 0:
        raise DataError("no images to predict")
    return tensor


def _logits(model: nn.Module, x: Tensor) -> Tensor:
    """The model's logits (B, K); a tuple output (main, aux...) gives its first element."""
    out = model(x)
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, Tensor) or out.ndim != 2 or out.shape[0] != x.shape[0]:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise InceptionFerError(f"model must return logits shaped ({x.shape[0]}, K), got {shape}")
    return out


def _place(model: nn.Module, device: torch.device, memory_format: torch.memory_format) -> None:
    """Move ``model`` to ``device`` and its 4-D weights to ``memory_format``, unless they are
    there already (moving is a copy of every weight: 3 ms a call for inception_fer_m)."""
    placed = all(
        p.device == device and (p.ndim != 4 or p.is_contiguous(memory_format=memory_format))
        for p in model.parameters()
    )
    if not placed:
        model.to(device)
        if memory_format == torch.channels_last:  # the stubs of Module.to lack memory_format
            model.to(memory_format=memory_format)  # type: ignore[call-overload]


def _check_options(tta: str, batch_size: int, std: float) -> None:
    _check_mode(tta)
    if batch_size < 1:
        raise InceptionFerError(f"batch_size must be at least 1, got {batch_size}")
    if not std > 0:
        raise InceptionFerError(f"std must be positive, got {std}")


@torch.inference_mode()
def predict_probs(
    model: nn.Module,
    images: Tensor | np.ndarray,
    *,
    mean: float,
    std: float,
    tta: str = "none",
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    channels_last: bool = True,
) -> np.ndarray:
    """Softmax probabilities (N, K), float32, for uint8 ``images`` (N, H, W) or (N, C, H, W).

    Pixels are scaled to [0, 1] and normalised as ``(x - mean) / std``. With TTA the softmax
    probabilities (not the logits) are averaged over the views of :func:`tta_views`. The model
    is moved to ``device`` (and to channels-last memory if ``channels_last``) and run in eval
    mode; its train/eval mode is restored afterwards.
    """
    _check_options(tta, batch_size, std)
    data = _as_uint8_batch(images)
    device = torch.device(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    was_training = model.training
    _place(model, device, memory_format)
    switch_mode = any(module.training for module in model.modules())
    if switch_mode:
        model.eval()
    try:
        return predict_placed(
            model,
            data,
            mean=mean,
            std=std,
            tta=tta,
            batch_size=batch_size,
            device=device,
            channels_last=channels_last,
        )
    finally:
        if switch_mode:
            model.train(was_training)


@torch.inference_mode()
def predict_placed(
    model: nn.Module,
    images: Tensor | np.ndarray,
    *,
    mean: float,
    std: float,
    tta: str = "none",
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    channels_last: bool = True,
) -> np.ndarray:
    """:func:`predict_probs` for a model already on ``device``, in channels-last memory if
    ``channels_last``, and in eval mode (as :class:`~inception_fer.inference.backends.TorchBackend`
    keeps its own), without :func:`predict_probs`'s walk over every weight and module on each
    call, which made one face through ``inception_fer_f`` take 12.0 ms instead of 5.8 on 2 CPU
    cores."""
    _check_options(tta, batch_size, std)
    data = _as_uint8_batch(images)
    device = torch.device(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    chunks: list[Tensor] = []
    for start in range(0, data.shape[0], batch_size):
        batch = data[start : start + batch_size].to(device, non_blocking=True)
        x = (batch.float() / 255.0 - mean) / std
        probs = [
            F.softmax(_logits(model, v.contiguous(memory_format=memory_format)).float(), dim=1)
            for v in tta_views(x, tta)
        ]
        chunks.append(torch.stack(probs).mean(dim=0).cpu())
    return torch.cat(chunks).numpy()
