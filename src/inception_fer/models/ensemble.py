"""An ensemble: several registered networks that see the same faces, probabilities averaged.

``Ensemble`` outputs ``log(mean_i softmax(member_i(x)))``: log-probabilities, which every
consumer of logits (softmax, argmax, cross-entropy, TTA, ONNX export) treats as logits, so an
ensemble trains, evaluates, predicts and exports as one network. ``forward_features`` stacks the
members' last feature maps along the channels (they must share the grid) and ``forward_head``
splits them again, so Grad-CAM explains the ensemble's own decision; ``forward`` gives each member
its own map (no stack to copy or quantise). Members' auxiliary classifiers are not used: each
member contributes ``forward_head(forward_features(x))``.

``inception-fer ensemble`` (``training.ensemble``) builds one from trained checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

import torch
from torch import nn

from ..errors import InceptionFerError
from .layers import check_input
from .registry import create_model, register_model

MemberSpec = str | Mapping[str, Any]
"""A member: a registered model name, or ``{"model": name, **constructor arguments}``."""


def member_name_and_kwargs(spec: MemberSpec) -> tuple[str, dict[str, Any]]:
    """The registered name and constructor arguments a member spec stands for."""
    if isinstance(spec, str):
        return spec, {}
    if not isinstance(spec, Mapping) or not isinstance(spec.get("model"), str):
        raise InceptionFerError(
            f"an ensemble member is a model name or a mapping with a 'model' name, got {spec!r}"
        )
    kwargs = {key: value for key, value in spec.items() if key != "model"}
    shared = sorted({"num_classes", "in_chans"} & set(kwargs))
    if shared:
        raise InceptionFerError(
            f"ensemble member {spec['model']!r} sets {shared[0]}; give it to the ensemble, "
            "which passes it to every member"
        )
    return spec["model"], kwargs


class _Member(Protocol):
    """What the ensemble uses of a registered network (timm's contract)."""

    num_features: int
    min_input_size: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor: ...

    def head_names(self) -> tuple[str, ...]: ...


class Ensemble(nn.Module):
    """Registered networks averaged in probability (see the module docstring).

    ``members``: registered names or ``{"model": name, **arguments}`` mappings, one or more
    (one alone is that network with log-softmax outputs). ``num_classes``,
    ``in_chans`` and ``drop_rate`` (when given) go to every member. The members must share
    their default input size and the grid of their last feature map.
    """

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        drop_rate: float | None = None,
        members: Sequence[MemberSpec] = ("inception_fer_f", "inception_fer_f_silu"),
    ) -> None:
        super().__init__()
        if isinstance(members, str) or not members:
            raise InceptionFerError(f"an ensemble needs a list of members, got {members!r}")
        nets: list[nn.Module] = []
        for spec in members:
            name, kwargs = member_name_and_kwargs(spec)
            if drop_rate is not None:
                kwargs["drop_rate"] = drop_rate
            nets.append(create_model(name, num_classes=num_classes, in_chans=in_chans, **kwargs))
        self.members = nn.ModuleList(nets)
        self.num_classes = num_classes
        self.in_chans = in_chans
        sizes = {int(getattr(net, "default_input_size", 48)) for net in nets}
        if len(sizes) > 1:
            raise InceptionFerError(
                f"ensemble members take different input sizes {sorted(sizes)}; "
                "their faces must be the same"
            )
        self.default_input_size = sizes.pop()
        self.min_input_size = max(member.min_input_size for member in self._nets())
        self.feature_channels = self._probe_feature_channels()
        self.num_features = sum(member.num_features for member in self._nets())
        self._log_members = math.log(len(nets))

    def _nets(self) -> list[_Member]:
        return [cast(_Member, net) for net in self.members]

    def _probe_feature_channels(self) -> tuple[int, ...]:
        """Each member's feature-map channels, from one blank face at the default size; refuses
        members whose maps have different grids (their stack would not be one map)."""
        x = torch.zeros(1, self.in_chans, self.default_input_size, self.default_input_size)
        was_training = self.training
        self.eval()
        with torch.no_grad():
            shapes = [tuple(net.forward_features(x).shape[1:]) for net in self._nets()]
        self.train(was_training)
        grids = {shape[1:] for shape in shapes}
        if len(grids) > 1:
            found = ", ".join("x".join(map(str, grid)) for grid in sorted(grids))
            raise InceptionFerError(
                f"ensemble members' last feature maps have different grids ({found}) at "
                f"{self.default_input_size}x{self.default_input_size}; members must share it"
            )
        return tuple(shape[0] for shape in shapes)

    def head_names(self) -> tuple[str, ...]:
        """The submodules that output class scores: every member's head."""
        return tuple(
            f"members.{index}.{head}"
            for index, net in enumerate(self._nets())
            for head in net.head_names()
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([net.forward_features(x) for net in self._nets()], dim=1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        parts = torch.split(x, list(self.feature_channels), dim=1)
        outputs = [
            net.forward_head(part, pre_logits)
            for net, part in zip(self._nets(), parts, strict=True)
        ]
        return torch.cat(outputs, dim=1) if pre_logits else self._average(outputs)

    def _average(self, logits: list[torch.Tensor]) -> torch.Tensor:
        """log(mean_i softmax(logits_i)), computed stably in float32."""
        log_probs = torch.stack([out.float().log_softmax(dim=1) for out in logits])
        return torch.logsumexp(log_probs, dim=0) - self._log_members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, model="ensemble", in_chans=self.in_chans, min_size=self.min_input_size)
        # each member on its own map: forward_head(forward_features(x)) without the stack
        return self._average([net.forward_head(net.forward_features(x)) for net in self._nets()])


@register_model
def ensemble(num_classes: int = 7, in_chans: int = 1, **kwargs: Any) -> Ensemble:
    """Several networks averaged in probability (default: ``inception_fer_f`` and
    ``inception_fer_f_silu``); ``members=[...]`` names others."""
    return Ensemble(num_classes=num_classes, in_chans=in_chans, **kwargs)
