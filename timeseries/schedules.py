"""Epoch-wise learning-rate schedules of the LTSF reference implementations."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class DelayedExponentialLR(LRScheduler):
    """`lr(epoch) = base_lr * gamma ** max(0, epoch - hold)`, stepped once per epoch (epoch from 0).

    The two schedules of the reference code, as they act on the epochs of a run:
    - DLinear / Informer / Autoformer ("type1": halve the rate every epoch after the first two):
      `gamma=0.5, hold=1`;
    - PatchTST ("type3": constant for four epochs, then times 0.9 per epoch): `gamma=0.9, hold=3`.

    Args:
        optimizer: the wrapped optimizer.
        gamma: multiplicative decay per epoch once the hold is over.
        hold: epochs after the first one that keep the base rate.
        last_epoch: index of the last epoch when resuming (-1 to start).
    """

    def __init__(self, optimizer: Optimizer, gamma: float = 0.5, hold: int = 1, last_epoch: int = -1) -> None:
        if gamma <= 0 or hold < 0:
            raise ValueError(f"DelayedExponentialLR needs gamma > 0 and hold >= 0; got gamma={gamma}, hold={hold}")
        self.gamma, self.hold = gamma, hold
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * self.gamma ** max(0, self.last_epoch - self.hold) for base in self.base_lrs]
