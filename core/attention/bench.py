"""`attn-bench attention`: time and peak memory of every kernel over sequence length.

Dispatch (`--dispatch`): on each attention call the suite's models make (`SUITE_SHAPES`), in
training (forward + backward) and inference (forward), every exact CPU kernel (`math`, `sdpa`,
`chunked`) and a plain `softmax(q k^T) v` written here are timed in alternating rounds (median),
with the kernel `auto` picks and its time against the best candidate, and `math` against plain.

CPU (always): batch 1, 8 heads, head_dim 64, fp32, forward pass, seq 512..32768; the extra peak
resident memory of each call is read from the kernel's VmHWM after resetting it, and time ratios
are taken against `sdpa` measured in the same run. `math` is skipped where its score matrix alone
would not fit the budget. GPU (when CUDA is present): triton vs sdpa in bf16, forward and
forward+backward, causal and not, head_dim 64 and 128, in TFLOP/s.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Callable

import torch

from core.attention.dispatch import SUITE_SHAPES, AttentionShape, auto_kernel
from core.attention.functional import attention
from core.bench import BenchRow, add_common_arguments, report
from core.profiling import measure_cpu, steady_allocator

CPU_KERNELS = ("math", "sdpa", "chunked", "linear")
CPU_SEQS = (512, 1024, 2048, 4096, 8192, 16384, 32768)
GPU_SEQS = (1024, 2048, 4096, 8192, 16384)


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("attention", help="kernel time and peak memory over sequence length")
    p.add_argument("--seqs", type=int, nargs="+", default=list(CPU_SEQS))
    p.add_argument("--kernels", nargs="+", default=list(CPU_KERNELS))
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3, help="timed calls per point (median); 1 above seq 8192")
    p.add_argument("--math-budget-gib", type=float, default=6.0, help="skip math when its scores exceed this")
    p.add_argument("--gpu", action="store_true", help="also run the GPU triton-vs-sdpa table (needs CUDA)")
    p.add_argument("--dispatch", action="store_true", help="time auto's choice against every exact kernel on the suite's shapes")
    p.add_argument("--dispatch-only", action="store_true", help="only the dispatch table (no sequence sweep)")
    p.add_argument("--rounds", type=int, default=15, help="alternating timing rounds per dispatch shape (median)")
    p.add_argument("--shapes", nargs="+", help="dispatch shape names to time (default: all)")
    add_common_arguments(p)
    p.set_defaults(func=run)


def cpu_rows(args: argparse.Namespace) -> list[BenchRow]:
    rows = []
    with torch.inference_mode():
        for seq in args.seqs:
            g = torch.Generator().manual_seed(seq)
            q, k, v = (torch.randn(1, args.heads, seq, args.head_dim, generator=g) for _ in range(3))
            repeats = args.repeats if seq <= 8192 else 1
            point: dict[str, tuple[float, float | None]] = {}
            for kernel in args.kernels:
                score_gib = args.heads * seq * seq * 4 / 2**30
                if kernel == "math" and score_gib > args.math_budget_gib:
                    rows.append(_row(kernel, seq, args, None, None, f"skipped: scores alone need {score_gib:.0f} GiB"))
                    continue
                attention(q[:, :, :64], k[:, :, :64], v[:, :, :64], kernel=kernel)  # warm-up
                point[kernel] = measure_cpu(lambda kernel=kernel, q=q, k=k, v=v: attention(q, k, v, kernel=kernel), repeats)
            for kernel, (seconds, peak) in point.items():
                ratio = seconds / point["sdpa"][0] if "sdpa" in point else None
                rows.append(_row(kernel, seq, args, seconds, peak, ratio=ratio))
            print(f"  seq {seq}: " + ", ".join(f"{k} {s:.3f}s" for k, (s, _) in point.items()), flush=True)
    return rows


def _row(kernel: str, seq: int, args: argparse.Namespace, seconds: float | None, peak: float | None,
         note: str | None = None, ratio: float | None = None) -> BenchRow:
    return BenchRow(
        model=kernel, role="baseline" if kernel == "sdpa" else "model", dataset="random", params=0, seconds=seconds,
        settings={"seq": seq, "heads": args.heads, "head_dim": args.head_dim, "device": "cpu"},
        measures={"peak_gib": peak, "time_vs_sdpa": ratio}, reference={"note": note} if note else {},
    )


DISPATCH_CANDIDATES = ("math", "sdpa", "chunked")
MIN_SAMPLE_S = 20e-3


def plain_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                    bias: torch.Tensor | None, causal: bool) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias) v as one would write it by hand: the yardstick for `math`."""
    scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
    if bias is not None:
        scores = scores + bias
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    if causal:
        scores = scores.masked_fill(torch.ones(scores.shape[-2:], dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def time_shape(shape: AttentionShape, train: bool, rounds: int) -> dict[str, float]:
    """Median seconds of each candidate, `plain` and `auto` on `shape`, timed in alternating rounds."""
    inputs = shape.tensors(train)
    q, k, v, mask, bias, causal = (inputs[n] for n in ("q", "k", "v", "mask", "bias", "causal"))
    calls: dict[str, Callable[[], torch.Tensor]] = {"plain": lambda: plain_attention(q, k, v, mask, bias, causal)}
    for kernel in (*DISPATCH_CANDIDATES, "auto"):
        calls[kernel] = lambda kernel=kernel: attention(q, k, v, mask=mask, bias=bias, causal=causal, kernel=kernel)

    def run(fn: Callable[[], torch.Tensor]) -> None:
        if train:
            fn().sum().backward()
        else:
            with torch.inference_mode():
                fn()

    first = {}
    for name, fn in calls.items():  # warm-up, and the cost of one call
        run(fn)
        start = time.perf_counter()
        run(fn)
        first[name] = time.perf_counter() - start
    # Sub-millisecond calls are timed in loops of `inner` calls (the same for every candidate), so
    # one sample spans at least MIN_SAMPLE_S and the timer's and the scheduler's jitter average out.
    inner = max(1, min(400, math.ceil(MIN_SAMPLE_S / max(min(first.values()), 1e-6))))
    times: dict[str, list[float]] = {name: [] for name in calls}
    order = random.Random(0)
    for _ in range(rounds):  # a fresh seeded order each round: no candidate always follows the same one
        for name in order.sample(list(calls), len(calls)):
            fn = calls[name]
            start = time.perf_counter()
            for _ in range(inner):
                run(fn)
            times[name].append((time.perf_counter() - start) / inner)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


def dispatch_rows(args: argparse.Namespace) -> list[BenchRow]:
    """One row per (suite shape, mode): each candidate's milliseconds, auto's pick and ratios, timed with
    the allocator in a training loop's steady state (`core.profiling.steady_allocator`)."""
    steady_allocator()
    rows = []
    shapes = [s for s in SUITE_SHAPES if not args.shapes or s.name in args.shapes]
    for shape in shapes:
        for mode in ("train", "infer"):
            train = mode == "train"
            inputs = shape.tensors(train)
            with torch.inference_mode(not train):
                picked = auto_kernel(inputs["q"], inputs["k"], inputs["v"], inputs["mask"], inputs["bias"])
            med = time_shape(shape, train, args.rounds)
            best = min(DISPATCH_CANDIDATES, key=med.__getitem__)
            rows.append(BenchRow(
                model=shape.name, role="model", dataset="random", params=0, seconds=med["auto"],
                settings={"mode": mode, "q": "x".join(map(str, shape.q)), "k_len": shape.k[2],
                          "mask": shape.mask or "", "bias": "trained" if shape.bias_grad else ("fixed" if shape.bias else ""),
                          "auto": picked, "best": best, "device": "cpu"},
                measures={**{f"{n}_ms": med[n] * 1e3 for n in (*DISPATCH_CANDIDATES, "plain")},
                          "auto_vs_best": med["auto"] / med[best], "pick_vs_best": med[picked] / med[best],
                          "math_vs_plain": med["math"] / med["plain"]},
            ))
            print(f"  {shape.name} {mode}: auto={picked} best={best} auto/best {med['auto'] / med[best]:.2f} "
                  f"math/plain {med['math'] / med['plain']:.2f}", flush=True)
    return rows


def gpu_rows(args: argparse.Namespace) -> list[BenchRow]:
    rows = []
    device = torch.device("cuda")
    for head_dim in (64, 128):
        heads = 2048 // head_dim  # constant model width 2048
        for causal in (False, True):
            for seq in GPU_SEQS:
                batch = max(1, 16384 // seq)
                shape = (batch, heads, seq, head_dim)
                q, k, v = (torch.randn(shape, device=device, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
                flops_fwd = 4 * batch * heads * seq * seq * head_dim * (0.5 if causal else 1.0)
                for kernel in ("sdpa", "triton"):
                    for mode in ("fwd", "fwd+bwd"):
                        def call(kernel=kernel, mode=mode, causal=causal, q=q, k=k, v=v):
                            out = attention(q, k, v, causal=causal, kernel=kernel)
                            if mode == "fwd+bwd":
                                out.backward(torch.ones_like(out))
                        seconds = _cuda_time(call)
                        flops = flops_fwd * (3.5 if mode == "fwd+bwd" else 1.0)  # bwd ~2.5x fwd
                        rows.append(BenchRow(
                            model=kernel, role="baseline" if kernel == "sdpa" else "model", dataset="random",
                            params=0, seconds=seconds, measures={"tflops": flops / seconds / 1e12},
                            settings={"seq": seq, "heads": heads, "head_dim": head_dim, "causal": causal, "mode": mode,
                                      "device": torch.cuda.get_device_name(0)},
                        ))
    return rows


def _cuda_time(fn: Callable[[], None], repeats: int = 10) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1000 / repeats


def run(args: argparse.Namespace) -> None:
    if args.dispatch or args.dispatch_only:
        rows = dispatch_rows(args)
        worst = max(rows, key=lambda r: r.measures["auto_vs_best"])
        worst_pick = max(rows, key=lambda r: r.measures["pick_vs_best"])
        slow_math = max(rows, key=lambda r: r.measures["math_vs_plain"])
        report(
            rows, experiment="bench/attention", title=f"attention dispatch on the suite's shapes ({torch.get_num_threads()} threads)",
            json_path=None if not args.dispatch_only else args.json, log_mlflow=not args.no_mlflow,
            notes=[f"auto vs the best exact kernel: worst {worst.measures['auto_vs_best']:.2f}x ({worst.model}, {worst.settings['mode']}); target <= 1.05",
                   f"auto's pick, timed as that kernel, vs the best: worst {worst_pick.measures['pick_vs_best']:.2f}x "
                   f"({worst_pick.model}, {worst_pick.settings['mode']}) (auto_vs_best - pick_vs_best: dispatch cost and timing noise)",
                   f"math vs plain softmax: worst {slow_math.measures['math_vs_plain']:.2f}x ({slow_math.model}, {slow_math.settings['mode']}); target <= 1.10"],
            columns=["model", "mode", "q", "k_len", "mask", "bias", "math_ms", "sdpa_ms", "chunked_ms", "plain_ms",
                     "auto", "best", "auto_vs_best", "pick_vs_best", "math_vs_plain"],
        )
        if args.dispatch_only:
            return
    rows = cpu_rows(args)
    notes = []
    linear = {r.settings["seq"]: r.seconds for r in rows if r.model == "linear" and r.seconds}
    if 16384 in linear and 32768 in linear:
        notes.append(f"linear attention time 16384 -> 32768: x{linear[32768] / linear[16384]:.2f} (target < 2.3)")
    chunked = [r for r in rows if r.model == "chunked" and r.settings["seq"] == max(args.seqs)]
    if chunked and chunked[0].measures["peak_gib"] is not None:
        notes.append(f"chunked extra peak memory at seq {max(args.seqs)}: {chunked[0].measures['peak_gib']:.2f} GiB")
    if args.gpu:
        if not torch.cuda.is_available():
            raise SystemExit("attn-bench attention --gpu: no CUDA device available")
        rows += gpu_rows(args)
    report(
        rows, experiment="bench/attention", title="attention kernels: seconds and extra peak memory",
        json_path=args.json, log_mlflow=not args.no_mlflow, notes=notes,
        columns=["model", "device", "seq", "head_dim", "causal", "mode", "seconds", "peak_gib", "time_vs_sdpa", "tflops", "note"],
    )


__all__ = ["add_subcommand", "run"]
