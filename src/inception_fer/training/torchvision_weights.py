"""torchvision's ``googlenet`` and ``inception_v3`` state_dict key names, mapped onto ours.

torchvision's ``BasicConv2d`` (``.conv`` then ``.bn``) is our ``ConvBNAct`` (``.0`` then ``.1``)
and its named branches are our ``branches.N``. The maps list every weight-bearing layer of
torchvision's architectures (``torchvision/models/googlenet.py`` and ``inception.py``); both are
ported from TensorFlow and, with ``transform_input``, take inputs scaled to [-1, 1].
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

TORCHVISION_MEAN = 0.5
TORCHVISION_STD = 0.5
"""Normalisation the TensorFlow-ported weights expect ((x - 0.5) / 0.5 for every channel, which is
what torchvision's ``transform_input`` produces from ImageNet-normalised input)."""


def _conv(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """BasicConv2d ``tv`` -> ConvBNAct ``ours``, for every (tv, ours) prefix pair."""
    keys: dict[str, str] = {}
    for tv, ours in pairs:
        keys[f"{tv}.conv.weight"] = f"{ours}.0.weight"
        keys.update({f"{tv}.bn.{name}": f"{ours}.1.{name}" for name in _BN})
    return keys


def _linear(tv: str, ours: str) -> dict[str, str]:
    return {f"{tv}.weight": f"{ours}.weight", f"{tv}.bias": f"{ours}.bias"}


def _prefixed(tv: str, ours: str, pairs: Mapping[str, str]) -> list[tuple[str, str]]:
    return [(f"{tv}.{a}", f"{ours}.{b}") for a, b in pairs.items()]


GOOGLENET_MODULES = ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
_GOOGLENET_INCEPTION = {
    "branch1": "branches.0",
    "branch2.0": "branches.1.0",
    "branch2.1": "branches.1.1",
    "branch3.0": "branches.2.0",
    "branch3.1": "branches.2.1",
    "branch4.1": "branches.3.1",
}
GOOGLENET_STEM = {"conv1": "stem.0", "conv2": "stem.2", "conv3": "stem.3"}
"""torchvision's stem convolutions and their place in our ``stem="imagenet"`` stem."""


def googlenet_key_map(imagenet_stem: bool) -> dict[str, str]:
    """torchvision ``googlenet`` key -> our ``googlenet`` key (the stem only for our ImageNet
    stem: the FER stem has no 7x7 convolution)."""
    pairs = list(GOOGLENET_STEM.items()) if imagenet_stem else []
    for name in GOOGLENET_MODULES:
        pairs += _prefixed(f"inception{name}", f"inception{name}", _GOOGLENET_INCEPTION)
    pairs += [("aux1.conv", "aux1.conv"), ("aux2.conv", "aux2.conv")]
    keys = _conv(pairs)
    for aux in ("aux1", "aux2"):
        keys |= _linear(f"{aux}.fc1", f"{aux}.fc1") | _linear(f"{aux}.fc2", f"{aux}.fc2")
    return keys | _linear("fc", "fc")


_V3_STEM = {
    "Conv2d_1a_3x3": "stem.0",
    "Conv2d_2a_3x3": "stem.1",
    "Conv2d_2b_3x3": "stem.2",
    "Conv2d_3b_1x1": "stem.4",
    "Conv2d_4a_3x3": "stem.5",
}
_V3_A = {
    "branch1x1": "branches.0",
    "branch5x5_1": "branches.1.0",
    "branch5x5_2": "branches.1.1",
    "branch3x3dbl_1": "branches.2.0",
    "branch3x3dbl_2": "branches.2.1",
    "branch3x3dbl_3": "branches.2.2",
    "branch_pool": "branches.3.1",
}
_V3_B = {
    "branch3x3": "branches.0",
    "branch3x3dbl_1": "branches.1.0",
    "branch3x3dbl_2": "branches.1.1",
    "branch3x3dbl_3": "branches.1.2",
}
_V3_C = {
    "branch1x1": "branches.0",
    **{f"branch7x7_{i + 1}": f"branches.1.{i}" for i in range(3)},
    **{f"branch7x7dbl_{i + 1}": f"branches.2.{i}" for i in range(5)},
    "branch_pool": "branches.3.1",
}
_V3_D = {
    "branch3x3_1": "branches.0.0",
    "branch3x3_2": "branches.0.1",
    **{f"branch7x7x3_{i + 1}": f"branches.1.{i}" for i in range(4)},
}
_V3_E = {
    "branch1x1": "branches.0",
    "branch3x3_1": "branches.1.0",
    "branch3x3_2a": "branches.1.1.branches.0",
    "branch3x3_2b": "branches.1.1.branches.1",
    "branch3x3dbl_1": "branches.2.0",
    "branch3x3dbl_2": "branches.2.1",
    "branch3x3dbl_3a": "branches.2.2.branches.0",
    "branch3x3dbl_3b": "branches.2.2.branches.1",
    "branch_pool": "branches.3.1",
}
_V3_MIXED: dict[str, tuple[str, dict[str, str]]] = {
    "Mixed_5b": ("mixed_5.0", _V3_A),
    "Mixed_5c": ("mixed_5.1", _V3_A),
    "Mixed_5d": ("mixed_5.2", _V3_A),
    "Mixed_6a": ("mixed_6.0", _V3_B),
    "Mixed_6b": ("mixed_6.1", _V3_C),
    "Mixed_6c": ("mixed_6.2", _V3_C),
    "Mixed_6d": ("mixed_6.3", _V3_C),
    "Mixed_6e": ("mixed_6.4", _V3_C),
    "Mixed_7a": ("mixed_7.0", _V3_D),
    "Mixed_7b": ("mixed_7.1", _V3_E),
    "Mixed_7c": ("mixed_7.2", _V3_E),
}


def inception_v3_key_map() -> dict[str, str]:
    """torchvision ``inception_v3`` (``Inception3``) key -> our ``inception_v3`` key."""
    pairs = list(_V3_STEM.items())
    for tv, (ours, branches) in _V3_MIXED.items():
        pairs += _prefixed(tv, ours, branches)
    pairs += [("AuxLogits.conv0", "aux.conv0"), ("AuxLogits.conv1", "aux.conv1")]
    return _conv(pairs) | _linear("AuxLogits.fc", "aux.fc") | _linear("fc", "fc")


def torchvision_arch(keys: Iterable[str]) -> str | None:
    """``googlenet`` or ``inception_v3`` when ``keys`` are that torchvision model's, else None."""
    found = set(keys)
    if "inception3a.branch1.conv.weight" in found:
        return "googlenet"
    if "Mixed_5b.branch1x1.conv.weight" in found:
        return "inception_v3"
    return None
