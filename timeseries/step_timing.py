"""PatchTST's ETTh1 training step with each attention kernel, timed side by side (issue: `auto` on CPU).

    python -m timeseries.step_timing [--rounds 15] [--threads 2]

The paper's setting (seq 336, patch 16, stride 8, d_model 16, 4 heads, 3 layers, FFN 128, batch 128,
7 channels) on seeded random input; one Adam step per call. `plain` is a hand-written
`softmax(q k^T / sqrt(d)) v` (`core.attention.bench.plain_attention`) swapped in for the kernel, the
yardstick `auto` must not lose to. Kernels are timed in alternating rounds and the median is printed,
so machine noise hits every kernel alike; the ratios, not the seconds, are the result.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

import core.attention.functional as functional
from core.attention.bench import plain_attention
from core.attention.multihead import MultiHeadAttention
from timeseries.models.patchtst import PatchTST

KERNELS = ("auto", "sdpa", "math", "plain")


def _plain(q, k, v, *, mask=None, bias=None, causal=False, scale=None, dropout_p=0.0):  # noqa: ANN001, ANN202
    return plain_attention(q, k, v, mask, bias, causal)


def build(kernel: str, seed: int = 0) -> PatchTST:
    """PatchTST at its ETTh1 size, with `kernel` ("plain": the hand-written softmax)."""
    torch.manual_seed(seed)
    model = PatchTST(seq_len=336, pred_len=96, channels=7, patch_len=16, stride=8, d_model=16, num_heads=4,
                     num_layers=3, ffn_dim=128, dropout=0.3, head_dropout=0.0, revin=True, revin_affine=False,
                     kernel="math" if kernel == "plain" else kernel)
    if kernel == "plain":
        for module in model.modules():
            if isinstance(module, MultiHeadAttention):
                module.kernel = "plain"
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    functional._KERNELS.setdefault("plain", _plain)  # the yardstick, for this process only
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(args.batch, 336, 7, generator=g), torch.randn(args.batch, 96, 7, generator=g)
    steps = {}
    for kernel in KERNELS:
        model = build(kernel).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step(model=model, optimizer=optimizer) -> None:
            optimizer.zero_grad(set_to_none=True)
            F.mse_loss(model(x), y).backward()
            optimizer.step()

        step()  # warm-up
        steps[kernel] = step
    times: dict[str, list[float]] = {k: [] for k in KERNELS}
    for _ in range(args.rounds):
        for kernel, step in steps.items():
            start = time.perf_counter()
            step()
            times[kernel].append(time.perf_counter() - start)
    median = {k: sorted(t)[len(t) // 2] for k, t in times.items()}
    print(f"PatchTST ETTh1 training step, batch {args.batch}, {args.threads} threads, {args.rounds} alternating rounds "
          f"[{platform.processor() or platform.machine()}]")
    print(f"{'kernel':>8} {'median s':>9} {'vs plain':>9}")
    for kernel in KERNELS:
        print(f"{kernel:>8} {median[kernel]:9.4f} {median[kernel] / median['plain']:9.3f}")


if __name__ == "__main__":
    main()
