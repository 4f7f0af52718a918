"""Progressive crops (``--crop-schedule``): small random crops in the first epochs, larger later.

Epochs of ``inception_fer_f`` on 32x32 crops took 46 s against 67 s on 40x40 (2 cores, bf16;
docs/experiments.md), so starting small buys epochs within a time budget (progressive resizing,
as in EfficientNetV2), while the last epochs train at the size that validation and inference are
closest to. ``'32:16,36:16,40'`` trains 16 epochs on 32x32 crops, 16 on 36x36, then 40x40 to
the end.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..data.augment import MIN_CROP
from ..errors import InceptionFerError


@dataclass(frozen=True)
class CropSchedule:
    """``stages``: (crop size, number of epochs) in order; the last stage lasts to the end."""

    stages: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, spec: str, input_size: int) -> CropSchedule:
        """Parse ``'SIZE:EPOCHS,...,SIZE'`` (the last stage without a count), checking each size
        against ``input_size``."""
        items = [item.strip() for item in spec.split(",")]
        stages: list[tuple[int, int]] = []
        for position, item in enumerate(items):
            last = position == len(items) - 1
            size_text, sep, count_text = item.partition(":")
            try:
                size = int(size_text)
                count = int(count_text) if sep else 0
            except ValueError:
                raise InceptionFerError(
                    f"bad crop schedule item {item!r} in {spec!r}: expected SIZE:EPOCHS "
                    "(the last one SIZE alone)"
                ) from None
            if sep and last:
                raise InceptionFerError(
                    f"crop schedule {spec!r}: the last stage lasts to the end, write it as "
                    f"'{size}' without a number of epochs"
                )
            if not sep and not last:
                raise InceptionFerError(
                    f"crop schedule {spec!r}: stage {item!r} needs a number of epochs (SIZE:EPOCHS)"
                )
            if not MIN_CROP <= size <= input_size:
                raise InceptionFerError(
                    f"crop schedule {spec!r}: crop size {size} is outside {MIN_CROP}..{input_size}"
                )
            if sep and count < 1:
                raise InceptionFerError(f"crop schedule {spec!r}: {item!r} lasts under one epoch")
            stages.append((size, count))
        return cls(tuple(stages))

    def size_at(self, epoch: int) -> int:
        """The crop size of 0-based ``epoch``."""
        start = 0
        for size, count in self.stages[:-1]:
            if epoch < start + count:
                return size
            start += count
        return self.stages[-1][0]
