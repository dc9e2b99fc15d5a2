import subprocess
import sys

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


def test_peak_counts_memory_after_the_process_freed_a_lot():
    # A test worker or a benchmark has freed big tensors before; glibc keeps such memory resident
    # and hands it to the next allocation, which then "added" nothing. A fresh process shows it.
    script = """
import torch
from core.profiling import measure_cpu
for _ in range(3):
    freed = [torch.randn(2**20) for _ in range(300)] + [torch.randn(2**28)]
    del freed
    print(measure_cpu(lambda: torch.ones(2**24), repeats=1)[1])  # 64 MiB
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    peaks = [None if line == "None" else float(line) for line in out.stdout.split()]
    assert len(peaks) == 3
    assert all(peak is None or 0.05 < peak < 0.5 for peak in peaks), peaks
