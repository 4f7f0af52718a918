"""Grad-CAM (Selvaraju et al. 2017) for our networks, on any of their layers.

The map of class ``c`` at a layer with activations ``A`` (K channels) is
``ReLU(sum_k alpha_k A_k)`` with ``alpha_k`` the spatial mean of ``d logit_c / d A_k``. By default
the layer is the output of ``forward_features`` (the last feature map, before global pooling:
6x6 for the Inception FER networks at 48x48); an earlier layer, named as in
``model.named_modules()``, gives a finer but less class-specific map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InceptionFerError


def find_layer(model: nn.Module, layer: str) -> nn.Module:
    """The submodule named ``layer`` (as in ``model.named_modules()``); a clear error naming the
    top-level layers otherwise."""
    modules = dict(model.named_modules())
    if layer not in modules or not layer:
        near = [name for name in modules if name and "." not in name]
        raise InceptionFerError(
            f"model has no layer {layer!r}; top-level layers: {', '.join(near)} "
            "(deeper ones as dotted names, e.g. stages.1)"
        )
    return modules[layer]


def _features_and_logits(model: nn.Module, x: Tensor, layer: str | None) -> tuple[Tensor, Tensor]:
    """The chosen layer's activations (kept for autograd) and the logits, in one pass."""
    if layer is None:
        forward_features = getattr(model, "forward_features", None)
        forward_head = getattr(model, "forward_head", None)
        if not callable(forward_features) or not callable(forward_head):
            raise InceptionFerError(
                f"{type(model).__name__} has no forward_features/forward_head; name a --layer"
            )
        features = forward_features(x)
        return features, forward_head(features)
    captured: list[Tensor] = []
    handle = find_layer(model, layer).register_forward_hook(
        lambda _m, _i, out: captured.append(out)
    )
    try:
        logits = model(x)
    finally:
        handle.remove()
    if not captured or not isinstance(captured[-1], Tensor) or captured[-1].ndim != 4:
        raise InceptionFerError(f"layer {layer!r} does not output a feature map (B, C, H, W)")
    return captured[-1], logits


def grad_cam(
    model: nn.Module, x: Tensor, targets: Tensor | None = None, layer: str | None = None
) -> tuple[Tensor, Tensor]:
    """Grad-CAM maps (B, H, W) in [0, 1] at ``x``'s resolution, and the softmax probabilities
    (B, K), for a normalised batch ``x`` (B, C, H, W).

    ``targets`` (B,) are the class indices to explain, the predicted ones by default. A map is
    normalised by its own maximum (all zeros where no evidence for the class is found). The
    model is run in eval mode; its mode and parameters' gradients are left as they were.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(False)
            features, logits = _features_and_logits(model, x, layer)
            if isinstance(logits, (tuple, list)):
                logits = logits[0]
            chosen = logits.argmax(dim=1) if targets is None else targets.to(logits.device)
            if (
                chosen.shape != (x.shape[0],)
                or (chosen < 0).any()
                or (chosen >= logits.shape[1]).any()
            ):
                raise InceptionFerError(f"targets must be {x.shape[0]} class indices below "
                                        f"{logits.shape[1]}")  # fmt: skip
            score = logits.gather(1, chosen[:, None]).sum()
            (gradients,) = torch.autograd.grad(score, features)
        weights = gradients.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * features.detach()).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        peak = cam.amax(dim=(1, 2), keepdim=True)
        cam = torch.where(peak > 0, cam / peak.clamp_min(1e-12), torch.zeros_like(cam))
        return cam, F.softmax(logits.detach().float(), dim=1)
    finally:
        model.train(was_training)
