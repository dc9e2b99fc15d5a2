import torch
from torch import nn

from core.profiling import count_parameters, gflops, gmacs, measure_cpu, median_seconds


def test_linear_flops_and_parameters():
    layer = nn.Linear(8, 4)
    x = torch.randn(3, 8)
    assert count_parameters(layer) == 8 * 4 + 4
    assert gflops(layer, x) == 2 * 3 * 8 * 4 / 1e9
    assert gmacs(layer, x) == 3 * 8 * 4 / 1e9


def test_trainable_only_and_timing():
    layer = nn.Linear(8, 4)
    layer.bias.requires_grad_(False)
    assert count_parameters(layer, trainable_only=True) == 32
    assert median_seconds(lambda: sum(range(1000)), repeats=3) >= 0
    seconds, peak = measure_cpu(lambda: torch.ones(2**24), repeats=1)  # 64 MiB
    assert seconds >= 0
    assert peak is None or peak > 0.05
