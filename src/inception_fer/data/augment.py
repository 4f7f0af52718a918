"""Batch augmentation as tensor ops: one affine warp (flip, rotation, scale, translation, random
crop), whole-pixel shifts and random erasing, applied to whole (B, C, H, W) float batches on any
device.

Apply it after normalisation, so that erasing with 0 fills with the dataset mean. The warp pads with
reflection: rotated or shifted faces keep plausible borders instead of black wedges that never occur
at test time (and reflection does not depend on whether the batch is normalised).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InceptionFerError

ERASE_AREA = (0.02, 0.2)
"""Random erasing: fraction of the image area covered by the rectangle."""
ERASE_LOG_RATIO = (math.log(0.3), math.log(1 / 0.3))
"""Random erasing: range of log(height / width) of the rectangle."""
ERASE_FILLS = ("zero", "random")
MIN_CROP = 8
"""The smallest random crop side (smaller crops leave the networks' deepest maps empty)."""
_TRUE = frozenset({"", "1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

Sampler = Callable[[float, float, int], torch.Tensor]
"""``uniform(low, high, n)``: n uniform random numbers on the batch's device."""


@dataclass
class AugmentConfig:
    """Which augmentations run and how strongly; a zero (or False, or scale (1, 1)) disables one.

    ``translate`` is a fraction of the image size, ``rotate`` a maximum angle in degrees, ``scale``
    the zoom range, ``crop`` the side of a random square crop at whole-pixel offsets (0: none; the
    networks are fully convolutional, so they train on crops and evaluate on whole images),
    ``shift`` the largest whole-pixel move on each axis (0: none; no resampling, the uncovered
    border repeats the edge pixels, as the views of ``--tta shift`` do), ``erase_prob`` the chance of
    erasing one rectangle (2-20% of the area) per image, filled with 0 (``erase_fill='zero'``) or
    standard normal noise (``'random'``).
    """

    flip: bool = True
    translate: float = 0.1
    rotate: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    crop: int = 0
    shift: int = 0
    erase_prob: float = 0.25
    erase_fill: str = "zero"

    def __post_init__(self) -> None:
        self.scale = (float(self.scale[0]), float(self.scale[1]))
        if not 0.0 <= self.translate < 1.0:
            raise InceptionFerError(f"augment translate must be in [0, 1), got {self.translate}")
        if not 0.0 <= self.rotate <= 180.0:
            raise InceptionFerError(f"augment rotate must be 0..180 degrees, got {self.rotate}")
        if not 0.0 < self.scale[0] <= self.scale[1]:
            raise InceptionFerError(f"augment scale must be 0 < low <= high, got {self.scale}")
        if self.crop != 0 and self.crop < MIN_CROP:
            raise InceptionFerError(
                f"augment crop must be 0 (off) or at least {MIN_CROP}, got {self.crop}"
            )
        if self.shift < 0:
            raise InceptionFerError(
                f"augment shift must be 0 (off) or more pixels, got {self.shift}"
            )
        if not 0.0 <= self.erase_prob <= 1.0:
            raise InceptionFerError(f"augment erase must be a probability, got {self.erase_prob}")
        if self.erase_fill not in ERASE_FILLS:
            raise InceptionFerError(
                f"augment erase_fill must be one of {', '.join(ERASE_FILLS)}, "
                f"got {self.erase_fill!r}"
            )

    @classmethod
    def none(cls) -> AugmentConfig:
        """No augmentation at all."""
        return cls(flip=False, translate=0.0, rotate=0.0, scale=(1.0, 1.0), erase_prob=0.0)

    @property
    def geometric(self) -> bool:
        """Whether rotation, scaling, translation or cropping is on (the affine warp is needed)."""
        return self.translate > 0 or self.rotate > 0 or self.scale != (1.0, 1.0) or self.crop > 0

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is on."""
        return self.flip or self.geometric or self.shift > 0 or self.erase_prob > 0

    @classmethod
    def from_string(cls, spec: str) -> AugmentConfig:
        """Parse the CLI form: 'none', 'default', or comma-separated items
        'flip,translate=0.1,rotate=10,scale=0.1,crop=40,shift=2,erase=0.25,erase_fill=random'.

        Only the listed items are on, unless the list starts with 'default'. A bare item takes its
        default strength; 'scale=S' means zoom 1-S..1+S and 'scale=LOW:HIGH' the range itself.
        """
        text = spec.strip().lower()
        if text in ("none", "off", ""):
            return cls.none()
        items = [item.strip() for item in text.split(",") if item.strip()]
        start_default = items[0] == "default"
        values = {
            field.name: getattr(cls() if start_default else cls.none(), field.name)
            for field in fields(cls)
        }
        defaults = cls()
        for item in items[1:] if start_default else items:
            key, _, value = (part.strip() for part in item.partition("="))
            try:
                name, parsed = _parse_item(key, value, defaults)
            except ValueError:
                raise InceptionFerError(f"bad augmentation value {item!r} in {spec!r}") from None
            values[name] = parsed
        return cls(**values)

    def to_string(self) -> str:
        """The canonical string form, accepted back by ``from_string``."""
        items = ["flip"] if self.flip else []
        if self.translate:
            items.append(f"translate={self.translate:g}")
        if self.rotate:
            items.append(f"rotate={self.rotate:g}")
        if self.scale != (1.0, 1.0):
            items.append(f"scale={self.scale[0]:g}:{self.scale[1]:g}")
        if self.crop:
            items.append(f"crop={self.crop}")
        if self.shift:
            items.append(f"shift={self.shift}")
        if self.erase_prob:
            items.append(f"erase={self.erase_prob:g}")
            if self.erase_fill != "zero":
                items.append(f"erase_fill={self.erase_fill}")
        return ",".join(items) or "none"


def _parse_item(key: str, value: str, defaults: AugmentConfig) -> tuple[str, object]:
    """(field name, value) of one 'key=value' item; ValueError for a bad value."""
    if key == "flip":
        if value not in _TRUE | _FALSE:
            raise ValueError(value)
        return "flip", value in _TRUE
    if key in ("translate", "rotate"):
        return key, float(value) if value else getattr(defaults, key)
    if key == "scale":
        if not value:
            return "scale", defaults.scale
        low, sep, high = value.partition(":")
        if sep:
            return "scale", (float(low), float(high))
        return "scale", (1.0 - float(value), 1.0 + float(value))
    if key == "crop":
        return "crop", int(value) if value else 40
    if key == "shift":
        return "shift", int(value) if value else 2
    if key == "erase":
        return "erase_prob", float(value) if value else defaults.erase_prob
    if key == "erase_fill":
        return "erase_fill", value
    raise InceptionFerError(
        f"unknown augmentation {key!r}; valid: flip, translate, rotate, scale, crop, shift, "
        "erase, erase_fill, or 'none' / 'default'"
    )


class BatchAugment(nn.Module):
    """Random augmentation of a float batch (B, C, H, W); identity in eval mode.

    Random numbers are drawn from ``generator`` on its device (or the default CPU generator), so a
    seeded generator gives the same result on any device of ``x``.
    """

    def __init__(self, config: AugmentConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else AugmentConfig()

    def extra_repr(self) -> str:
        return self.config.to_string()

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training or not self.config.enabled:
            return x
        if x.dim() != 4 or not x.is_floating_point():
            raise InceptionFerError(
                f"BatchAugment expects a float (B, C, H, W) batch, got {x.dtype} {tuple(x.shape)}"
            )
        device = generator.device if generator is not None else torch.device("cpu")

        def uniform(low: float, high: float, n: int) -> torch.Tensor:
            values = torch.rand(n, generator=generator, device=device, dtype=torch.float32)
            return (values * (high - low) + low).to(x.device)

        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        work = x if x.dtype in (torch.float32, torch.float64) else x.float()
        if self._warps(x.shape[-2], x.shape[-1]):
            work = self._warp(work, uniform)
        elif self.config.flip:
            flips = uniform(0.0, 1.0, len(x)) < 0.5
            work = torch.where(flips[:, None, None, None], work.flip(-1), work)
        if self.config.shift:
            work = self._shift(work, uniform)
        if self.config.erase_prob > 0:
            work = self._erase(work, uniform, generator, device)
        work = work.to(x.dtype)
        return work.contiguous(memory_format=torch.channels_last) if channels_last else work

    def _warps(self, height: int, width: int) -> bool:
        """Whether ``height`` x ``width`` images need the affine warp (a crop of the whole image
        alone does not: it would only resample every pixel onto itself)."""
        config = self.config
        whole_crop = config.crop == height == width
        return config.geometric and not (
            whole_crop and not config.translate and not config.rotate and config.scale == (1, 1)
        )

    def _warp(self, x: torch.Tensor, uniform: Sampler) -> torch.Tensor:
        """Flip, rotate, scale, translate and crop every image with one affine_grid +
        grid_sample."""
        config = self.config
        batch, channels, height, width = x.shape
        flip = torch.ones(batch, device=x.device)
        if config.flip:
            flip = torch.where(uniform(0.0, 1.0, batch) < 0.5, -flip, flip)
        angle = uniform(-config.rotate, config.rotate, batch) * (math.pi / 180.0)
        scale = uniform(config.scale[0], config.scale[1], batch)
        shift_x = uniform(-config.translate, config.translate, batch) * 2.0
        shift_y = uniform(-config.translate, config.translate, batch) * 2.0
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        # Inverse of (translate . rotate . scale . flip) in pixel units, expressed in the
        # normalised [-1, 1] coordinates of affine_grid (hence the aspect factors).
        a, b = flip * cos, flip * sin * (height / width)
        c, d = -sin * (width / height), cos
        offset_x = -(a * shift_x + b * shift_y)
        offset_y = -(c * shift_x + d * shift_y)
        out_h, out_w = height, width
        if config.crop:
            # Output coordinate u samples the warped image at crop_xy + u * crop / size.
            crop_x, crop_y = self._crop_offsets(uniform, batch, height, width)
            offset_x = offset_x + a * crop_x + b * crop_y
            offset_y = offset_y + c * crop_x + d * crop_y
            out_h = out_w = config.crop
            a, c = a * (out_w / width), c * (out_w / width)
            b, d = b * (out_h / height), d * (out_h / height)
        theta = torch.stack(
            [torch.stack([a, b, offset_x], dim=1), torch.stack([c, d, offset_y], dim=1)], dim=1
        ).to(x.dtype)
        grid = F.affine_grid(theta, [batch, channels, out_h, out_w], align_corners=False)
        return F.grid_sample(
            x, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )

    def _crop_offsets(
        self, uniform: Sampler, batch: int, height: int, width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Centres of random ``crop``-pixel windows at whole-pixel offsets, in normalised
        coordinates (0 is the image centre)."""
        crop = self.config.crop
        if crop > min(height, width):
            raise InceptionFerError(
                f"augment crop={crop} is larger than the {height}x{width} images"
            )
        left = (uniform(0.0, 1.0, batch) * (width - crop + 1)).floor()
        top = (uniform(0.0, 1.0, batch) * (height - crop + 1)).floor()
        return (crop + 2 * left) / width - 1, (crop + 2 * top) / height - 1

    def _shift(self, x: torch.Tensor, uniform: Sampler) -> torch.Tensor:
        """Move every image by a random whole number of pixels, up to ``shift`` on each axis; the
        uncovered border repeats the edge pixels."""
        batch, channels, height, width = x.shape
        limit = self.config.shift
        if 2 * limit >= min(height, width):
            raise InceptionFerError(
                f"augment shift={limit} is too large for {height}x{width} images"
            )

        def moves() -> torch.Tensor:
            return (uniform(0.0, 1.0, batch) * (2 * limit + 1)).floor().long() - limit

        down, right = moves(), moves()
        rows = (torch.arange(height, device=x.device) - down[:, None]).clamp(0, height - 1)
        cols = (torch.arange(width, device=x.device) - right[:, None]).clamp(0, width - 1)
        index = (rows[:, :, None] * width + cols[:, None, :]).reshape(batch, 1, -1)
        flat = x.reshape(batch, channels, height * width)
        return flat.gather(2, index.expand(-1, channels, -1)).reshape(
            batch, channels, height, width
        )

    def _erase(
        self,
        x: torch.Tensor,
        uniform: Sampler,
        generator: torch.Generator | None,
        device: torch.device,
    ) -> torch.Tensor:
        """Erase one random rectangle in each image with probability ``erase_prob``."""
        batch, _, height, width = x.shape
        chosen = uniform(0.0, 1.0, batch) < self.config.erase_prob
        area = uniform(*ERASE_AREA, batch) * (height * width)
        ratio = torch.exp(uniform(*ERASE_LOG_RATIO, batch))
        box_h = torch.sqrt(area * ratio).round().clamp(1, height)
        box_w = torch.sqrt(area / ratio).round().clamp(1, width)
        top = (uniform(0.0, 1.0, batch) * (height - box_h + 1)).floor()
        left = (uniform(0.0, 1.0, batch) * (width - box_w + 1)).floor()
        rows = torch.arange(height, device=x.device)[None, :]
        cols = torch.arange(width, device=x.device)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])
        in_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])
        mask = (in_rows[:, :, None] & in_cols[:, None, :] & chosen[:, None, None])[:, None]
        if self.config.erase_fill == "zero":
            return x.masked_fill(mask, 0.0)
        noise = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
        return torch.where(mask, noise.to(x.device), x)
