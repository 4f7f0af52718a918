"""InfoBatch-style pruning (Qin et al., ICLR 2024) as a patch of `inception-fer train`.

The thirty-fifth session's experiment (docs/experiments.md), kept to rerun it; not part of the
package: `python experiments/prune_easy_patch.py train ...` takes `inception-fer train`'s options.

Each epoch trains on a fixed fraction 1 - Q of the faces (so every epoch has the same number of
steps, which the schedule and the time budget are built from): Q n faces are dropped at random
from those whose loss at their last step was below the mean (faces not yet seen are kept), and
the below-mean faces kept are weighted L / (L - Q n), L being how many are below the mean, so the
expected gradient is that of the whole epoch. The first epoch drops
Q n faces at random (no losses yet). Env: PRUNE_Q (default 0.3).
"""

import math
import os
import sys

import torch
import torch.nn.functional as F

from inception_fer.cli.main import main
from inception_fer.training import fit
from inception_fer.training.optim import resize_schedule

Q = float(os.environ.get("PRUNE_Q", "0.3"))
orig_init = fit.Trainer.__init__


def __init__(self, *args, **kwargs):
    orig_init(self, *args, **kwargs)
    n = len(self.data.train)
    self._prune_k = round(Q * n)
    self.steps_per_epoch = math.ceil((n - self._prune_k) / self.config.batch_size)
    resize_schedule(self.scheduler, self.config.epochs, self.steps_per_epoch)


def train_epoch(self, epoch):
    net = self.begin_epoch(epoch)
    n, k = len(self.train_x), self._prune_k
    gen = self.shuffle_gen
    if not hasattr(self, "_seen"):
        self._seen = torch.full((n,), float("nan"))
    weight = torch.ones(n)
    seen = ~torch.isnan(self._seen)
    if not seen.any():
        dropped = torch.randperm(n, generator=gen)[:k]
        low_n = 0
    else:
        low = (seen & (self._seen < self._seen[seen].mean())).nonzero().squeeze(1)
        low_n = len(low)
        take = min(k, low_n)
        dropped = low[torch.randperm(low_n, generator=gen)[:take]]
        weight[low] = low_n / max(1, low_n - take)
        if take < k:
            rest = torch.ones(n, dtype=torch.bool)
            rest[dropped] = False
            others = rest.nonzero().squeeze(1)
            dropped = torch.cat(
                [dropped, others[torch.randperm(len(others), generator=gen)[: k - take]]]
            )
    keep = torch.ones(n, dtype=torch.bool)
    keep[dropped] = False
    kept = keep.nonzero().squeeze(1)
    order = kept[torch.randperm(len(kept), generator=gen)]
    self._weight = weight
    total_loss, correct = 0.0, 0
    for start in range(0, len(order), self.local_batch):
        index = order[start : start + self.local_batch]
        loss, logits = self.train_step(net, index)
        total_loss += loss.item() * len(index)
        correct += (logits.argmax(1) == self.train_y[index]).sum().item()
    print(
        f"prune epoch {epoch + 1}: trained {len(order)} of {n}, low-loss {low_n}, "
        f"weight {weight.max().item():.3f}",
        flush=True,
    )
    return total_loss / len(order), correct / len(order)


def train_step(self, net, index):
    x = self._batch(self.train_x[index], augment=True)
    y = self.train_y[index]
    with self._autocast():
        logits = net(x)
    per = F.cross_entropy(
        logits.float(), y, label_smoothing=self.config.label_smoothing, reduction="none"
    )
    if hasattr(self, "_seen"):
        self._seen[index] = per.detach()
    w = self._weight[index] if hasattr(self, "_weight") else torch.ones(len(index))
    loss = (per * w).mean()
    self.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    self.optimizer.step()
    self.scheduler.step()
    return loss, logits


fit.Trainer.__init__, fit.Trainer.train_epoch, fit.Trainer.train_step = (
    __init__,
    train_epoch,
    train_step,
)
sys.exit(main(sys.argv[1:]))
