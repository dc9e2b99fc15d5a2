"""Learning-rate schedules of the molecule models."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


class WarmupCosineLR(LambdaLR):
    """Linear warm-up for `warmup` steps, then cosine decay to `floor` x lr at `total` steps.

    Step it per optimizer step (`scheduler_interval: step`) or per epoch, with `warmup` and
    `total` in the same unit.
    """

    def __init__(self, optimizer: Optimizer, warmup: int = 100, total: int = 2000, floor: float = 0.05) -> None:
        if total <= warmup:
            raise ValueError(f"WarmupCosineLR: total ({total}) must exceed warmup ({warmup})")
        self.warmup, self.total, self.floor = warmup, total, floor
        super().__init__(optimizer, self._factor)

    def _factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / (self.total - self.warmup))
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))
