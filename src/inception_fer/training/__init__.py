"""Training: the ``fit`` loop, optimizers and schedules, checkpoints and run history."""
