"""The small-loss trick (Han et al. 2018, co-teaching's selection, on one network) as a patch.

The thirty-fifth session's experiment (docs/experiments.md), kept to rerun it; not part of the
package: `python experiments/small_loss_patch.py train ...` takes `inception-fer train`'s options.

Each step drops from its loss the faces with the largest loss in the batch, a share that rises
from 0 to FORGET over the first RAMP of the run's steps, then stays (FER2013's labels are
noisy: the largest losses are where wrong labels concentrate). Env: SMALL_LOSS_FORGET (0.1),
SMALL_LOSS_RAMP (0.5).
"""

import os
import sys

import torch.nn.functional as F

from inception_fer.cli.main import main
from inception_fer.training import fit

FORGET = float(os.environ.get("SMALL_LOSS_FORGET", "0.1"))
RAMP = float(os.environ.get("SMALL_LOSS_RAMP", "0.5"))


def train_step(self, net, index):
    x = self._batch(self.train_x[index], augment=True)
    y = self.train_y[index]
    with self._autocast():
        logits = net(x)
    per = F.cross_entropy(
        logits.float(), y, label_smoothing=self.config.label_smoothing, reduction="none"
    )
    progress = self.scheduler.last_epoch / max(1, self.config.epochs * self.steps_per_epoch)
    drop = int(FORGET * min(1.0, progress / RAMP) * len(index))
    loss = per[per.detach().argsort()[: len(index) - drop]].mean() if drop else per.mean()
    self.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    self.optimizer.step()
    self.scheduler.step()
    return loss, logits


fit.Trainer.train_step = train_step
sys.exit(main(sys.argv[1:]))
