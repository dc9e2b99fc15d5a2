"""Cost measurements shared by the benchmarks: parameters, FLOPs, latency and peak CPU memory.

FLOPs come from torch's own `FlopCounterMode` (a multiply-add counts as 2 FLOPs; most vision
papers report multiply-adds, i.e. `gmacs`). Latency is the median of timed calls after warm-up;
compare models by ratios measured in the same run, never across runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of `module` (all, or only those that require grad)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def gflops(module: nn.Module, *inputs: Any, **kwargs: Any) -> float:
    """Forward-pass GFLOPs of `module(*inputs, **kwargs)` (multiply-add = 2 FLOPs)."""
    with FlopCounterMode(display=False) as counter:
        module(*inputs, **kwargs)
    return counter.get_total_flops() / 1e9


def gmacs(module: nn.Module, *inputs: Any, **kwargs: Any) -> float:
    """Forward-pass giga multiply-adds, the unit most papers call "FLOPs"."""
    return gflops(module, *inputs, **kwargs) / 2


def median_seconds(fn: Callable[[], Any], *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of `fn()` over `repeats` calls after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _rss(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (it has `malloc_trim` and `mallopt`), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def _release_free_heap() -> None:
    """Hand memory freed earlier back to the OS (glibc keeps it resident), so a peak is measured
    from what the process really holds; without it a long-lived process (a test worker, a
    benchmark after another model) reuses resident pages and reports no added memory."""
    if (libc := _glibc()) is not None:
        libc.malloc_trim(0)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
STEADY_MMAP_BYTES = 32 * 2**20  # glibc's own ceiling for its dynamic mmap threshold


def steady_allocator() -> bool:
    """Fix glibc's allocation thresholds at the values a long training loop settles on, for timing.

    glibc serves a block above its mmap threshold with fresh pages (faulted in on first touch) and
    raises that threshold as such blocks are freed, so the same call can take one time or twice it
    depending on what ran before; a training loop's repeated shapes soon raise it to its 32 MiB
    ceiling. Fixing the threshold there (and the trim threshold above it) times every candidate in
    that steady state. False where the C library is not glibc (nothing changes).
    """
    if (libc := _glibc()) is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, STEADY_MMAP_BYTES)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2 * STEADY_MMAP_BYTES))


def reset_peak_memory() -> bool:
    """Reset this process's peak resident memory (Linux VmHWM); False where that is impossible."""
    _release_free_heap()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure_cpu(fn: Callable[[], Any], repeats: int = 1) -> tuple[float, float | None]:
    """Median seconds of `fn` and the peak resident memory it added, in GiB (None if unmeasurable)."""
    gc.collect()
    can_reset = reset_peak_memory()
    base = _rss("VmRSS")
    times = []
    peak = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        # Read while the output is alive: the kernel updates the high-water mark lazily (at unmap
        # time), but VmHWM is never below the current VmRSS, so the output is always counted.
        peak = max(peak, _rss("VmHWM"))
        del out
    return sorted(times)[len(times) // 2], ((peak - base) / 2**30 if can_reset else None)


def peak_memory_gib() -> float:
    """Peak resident memory of this process since start (or the last reset), in GiB."""
    return _rss("VmHWM") / 2**30
