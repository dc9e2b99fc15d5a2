"""Learning-rate schedules shared by the domains that `torch.optim.lr_scheduler` lacks.

A config names one by `class_path` under `model.init_args.lr_scheduler`; `core.task.BaseTask`
calls it with the optimizer and steps it every epoch, or every optimizer step with
`scheduler_interval: step`.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


class WarmupCosineLR(LambdaLR):
    """Linear warm-up to the base rate, then cosine decay to `floor` x the base rate.

    The factor applied to every parameter group's base rate at step `t` (counted from 0):
    `(t + 1) / warmup` for `t < warmup`, then `floor + (1 - floor) * (1 + cos(pi * p)) / 2` with
    `p = min(1, (t - warmup) / (total - warmup))`, so the rate reaches the base rate at
    `t = warmup - 1` and stays at `floor` x it from `t = total` on. Unlike torch's
    `CosineAnnealingLR` it ramps up first, so the first Adam steps, taken on poor second-moment
    estimates, stay small.

    Args:
        optimizer: the wrapped optimizer.
        warmup: steps (or epochs: the unit it is stepped in) of the linear ramp; 0 = none.
        total: step at which the decay ends (usually the run's optimizer steps); above `warmup`.
        floor: final rate as a fraction of the base rate, in [0, 1].
        last_epoch: index of the last step when resuming (-1 to start).
    """

    def __init__(
        self, optimizer: Optimizer, warmup: int = 100, total: int = 2000, floor: float = 0.05,
        last_epoch: int = -1,
    ) -> None:
        if warmup < 0 or total <= warmup:
            raise ValueError(
                f"WarmupCosineLR: need 0 <= warmup < total; got warmup={warmup}, total={total}"
            )
        if not 0.0 <= floor <= 1.0:
            raise ValueError(
                f"WarmupCosineLR: floor is a fraction of the base rate in [0, 1]; got {floor}"
            )
        self.warmup, self.total, self.floor = warmup, total, floor
        super().__init__(optimizer, self.factor, last_epoch)

    def factor(self, step: int) -> float:
        """Multiplier of the base rate at `step` (0-based)."""
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / (self.total - self.warmup))
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))
