"""Progressive crops (``--crop-schedule``): the random crop size of each epoch.

Epochs of ``inception_fer_f`` on 32x32 crops took 46 s against 67 s on 40x40 (2 cores, bf16;
docs/experiments.md), so starting small buys epochs within a time budget (progressive resizing,
as in EfficientNetV2), while the last epochs train at the size that validation and inference are
closest to. ``'32:16,36:16,40'`` trains 16 epochs on 32x32 crops, 16 on 36x36, then 40x40 to
the end.

Exactly one stage has no number of epochs: it takes the epochs the others leave, so the stages
after it are counted back from the end of the run. ``'40,48:6'`` trains on 40x40 crops and then
on whole 48x48 faces for the last 6 epochs, however long the run is (a time budget sets its
length): the network ends on the images it is scored on (FixRes, Touvron et al. 2019).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..data.augment import MIN_CROP
from ..errors import InceptionFerError


@dataclass(frozen=True)
class CropSchedule:
    """``stages``: (crop size, number of epochs) in order; the one stage with 0 epochs takes
    the epochs the others leave."""

    stages: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, spec: str, input_size: int) -> CropSchedule:
        """Parse ``'SIZE:EPOCHS,...,SIZE,...'`` (one stage without a number of epochs),
        checking each size against ``input_size``."""
        stages: list[tuple[int, int]] = []
        for item in (item.strip() for item in spec.split(",")):
            size_text, sep, count_text = item.partition(":")
            try:
                size = int(size_text)
                count = int(count_text) if sep else 0
            except ValueError:
                raise InceptionFerError(
                    f"bad crop schedule item {item!r} in {spec!r}: expected SIZE:EPOCHS or SIZE"
                ) from None
            if not MIN_CROP <= size <= input_size:
                raise InceptionFerError(
                    f"crop schedule {spec!r}: crop size {size} is outside {MIN_CROP}..{input_size}"
                )
            if sep and count < 1:
                raise InceptionFerError(f"crop schedule {spec!r}: {item!r} lasts under one epoch")
            stages.append((size, count))
        open_ended = sum(1 for _, count in stages if count == 0)
        if open_ended != 1:
            raise InceptionFerError(
                f"crop schedule {spec!r}: exactly one stage must be a SIZE without a number of "
                f"epochs (it takes the epochs the others leave), found {open_ended}"
            )
        return cls(tuple(stages))

    @property
    def head(self) -> int:
        """Epochs of the stages before the open-ended one."""
        return sum(count for _, count in self._before())

    @property
    def tail(self) -> int:
        """Epochs of the stages after the open-ended one (the last epochs of a run)."""
        return sum(count for _, count in self._after())

    @property
    def fixed_epochs(self) -> int:
        """Epochs of the stages with a number of epochs: a run needs at least one more."""
        return self.head + self.tail

    def finishing(self, epoch: int, epochs: int) -> bool:
        """Whether 0-based ``epoch`` of an ``epochs``-epoch run is in a stage after the
        open-ended one (the run's finish)."""
        return epoch >= epochs - self.tail

    def size_at(self, epoch: int, epochs: int) -> int:
        """The crop size of 0-based ``epoch`` of an ``epochs``-epoch run."""
        start = 0
        for size, count in self._before():
            start += count
            if epoch < start:
                return size
        end = epochs
        for size, count in reversed(self._after()):
            end -= count
            if epoch >= end:
                return size
        return self.stages[self._open_at()][0]

    def stage_start(self, epoch: int, epochs: int) -> int:
        """The first 0-based epoch of the stage that holds 0-based ``epoch`` of an
        ``epochs``-epoch run."""
        start = 0
        for _, count in self._before():
            if epoch < start + count:
                return start
            start += count
        end = epochs
        for _, count in reversed(self._after()):
            end -= count
            if epoch >= end:
                return end
        return start

    def sizes(self, finish: bool) -> list[int]:
        """The crop sizes of the stages after the open-ended one (``finish``), or of the others:
        the images ``--finish-augment``, or ``--augment`` alongside it, applies to."""
        split = self._open_at() + 1
        stages = self.stages[split:] if finish else self.stages[:split]
        return [size for size, _ in stages]

    def _open_at(self) -> int:
        return [count for _, count in self.stages].index(0)

    def _before(self) -> tuple[tuple[int, int], ...]:
        return self.stages[: self._open_at()]

    def _after(self) -> tuple[tuple[int, int], ...]:
        return self.stages[self._open_at() + 1 :]
