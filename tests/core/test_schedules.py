"""`core.schedules.WarmupCosineLR` against hand-computed rates, resuming, and its argument checks."""

from __future__ import annotations

import math

import pytest
import torch

from core.schedules import WarmupCosineLR


def rates(schedule: WarmupCosineLR, steps: int) -> list[list[float]]:
    """The learning rate of every parameter group at steps 0 .. steps-1, stepped as Lightning does."""
    optimizer = schedule.optimizer
    seen = []
    for _ in range(steps):
        seen.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        schedule.step()
    return seen


def sgd(*lrs: float) -> torch.optim.Optimizer:
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs])


def test_warmup_then_cosine_to_the_floor_by_hand():
    # warmup 4, total 12, floor 0.1: ramp 1/4 .. 4/4, then 0.1 + 0.9 * (1 + cos(pi * (t - 4) / 8)) / 2
    half = math.sqrt(0.5)
    expected = [
        0.25, 0.5, 0.75, 1.0,  # t = 0..3: (t + 1) / 4
        1.0,  # t = 4: cos(0) = 1
        0.1 + 0.9 * (1 + math.cos(math.pi / 8)) / 2,
        0.1 + 0.9 * (1 + half) / 2,  # t = 6: cos(pi / 4)
        0.1 + 0.9 * (1 + math.cos(3 * math.pi / 8)) / 2,
        0.55,  # t = 8: half way, cos(pi / 2) = 0
        0.1 + 0.9 * (1 + math.cos(5 * math.pi / 8)) / 2,
        0.1 + 0.9 * (1 - half) / 2,  # t = 10: cos(3 pi / 4)
        0.1 + 0.9 * (1 + math.cos(7 * math.pi / 8)) / 2,
        0.1, 0.1, 0.1,  # t >= total stays at the floor
    ]
    seen = rates(WarmupCosineLR(sgd(1.0), warmup=4, total=12, floor=0.1), len(expected))
    assert [lr for (lr,) in seen] == pytest.approx(expected, abs=1e-12)


def test_every_group_is_scaled_by_the_same_factor():
    schedule = WarmupCosineLR(sgd(1e-3, 3e-2), warmup=2, total=6, floor=0.0)
    for t, (a, b) in enumerate(rates(schedule, 8)):
        factor = schedule.factor(t)
        assert (a, b) == pytest.approx((1e-3 * factor, 3e-2 * factor), rel=1e-12)
    assert schedule.factor(6) == 0.0 and schedule.factor(1) == 1.0


def test_no_warmup_starts_at_the_base_rate():
    seen = rates(WarmupCosineLR(sgd(2.0), warmup=0, total=4, floor=0.5), 5)
    assert [lr for (lr,) in seen] == pytest.approx([2.0, 2.0 * (0.5 + 0.5 * (1 + math.sqrt(0.5)) / 2), 1.5,
                                                   2.0 * (0.5 + 0.5 * (1 - math.sqrt(0.5)) / 2), 1.0], abs=1e-12)


def test_resuming_from_a_state_dict_continues_the_schedule():
    full = rates(WarmupCosineLR(sgd(1.0), warmup=3, total=10), 10)
    first = WarmupCosineLR(sgd(1.0), warmup=3, total=10)
    rates(first, 5)
    resumed = WarmupCosineLR(sgd(1.0), warmup=3, total=10)
    # as a checkpoint does: the optimizer's state holds the current rate, the schedule's the step
    resumed.optimizer.load_state_dict(first.optimizer.state_dict())
    resumed.load_state_dict(first.state_dict())
    assert [lr for (lr,) in rates(resumed, 5)] == pytest.approx([lr for (lr,) in full[5:]], abs=1e-12)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"warmup": 10, "total": 10}, "0 <= warmup < total; got warmup=10, total=10"),
    ({"warmup": -1, "total": 10}, "0 <= warmup < total"),
    ({"floor": 1.5}, r"floor .* in \[0, 1\]; got 1.5"),
])
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WarmupCosineLR(sgd(1.0), **kwargs)
