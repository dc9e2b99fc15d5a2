"""`attn-bench lowlight`: LLFormer and LYT-Net against identity / gamma / CLAHE on held-out LOL pairs.

For every model: parameters, forward GMACs at 256x256 (torch's FlopCounterMode; one multiply-add =
one MAC = 2 FLOPs; attention matmuls included), median CPU latency of one 256x256 forward, and PSNR /
SSIM (RGB, 8-bit rounded outputs, whole images padded to the model's size multiple) on the held-out
test pairs after a fixed CPU training budget per learned model. The classical baselines have no
training; the adaptive gamma's target mean is fitted on the training high images (their mean).
The learned models train on random crops with flips/rotations, Adam, a constant learning rate and
the paper's loss (Smooth-L1 for LLFormer, the hybrid loss without VGG for LYT-Net) until the time
budget runs out. `llformer` is a small configuration that learns within minutes; `llformer-paper` is
the paper's 24.5M configuration under the same budget (far fewer steps).

`--uhd small|paper` adds tiled inference of LLFormer on a 3840x2160 image (a LOL test image resized
up) with its time and the peak resident memory it added (`core.profiling.measure_cpu`).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from core.bench import add_common_arguments, report
from core.profiling import count_parameters, gmacs, measure_cpu, median_seconds
from vision.data.lol import SHARED_LOL, LOLDataModule
from vision.losses import LYTHybridLoss
from vision.metrics import psnr, quantize, ssim
from vision.models.classical_lowlight import CLAHE, GammaCorrection, IdentityEnhancer
from vision.models.llformer import LLFormer
from vision.models.lyt_net import LYTNet
from vision.tiling import enhance_whole, tile_starts, tiled_inference

MODELS = ("identity", "gamma", "clahe", "lytnet", "llformer", "llformer-paper")
SMALL_LLFORMER: dict[str, Any] = {"dim": 8, "num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1, "heads": (1, 1, 2, 4)}


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register `attn-bench lowlight`."""
    parser = subparsers.add_parser("lowlight", help="LLFormer / LYT-Net vs classical baselines on held-out LOL pairs")
    parser.add_argument("--data-path", type=Path, default=SHARED_LOL, help="LOL-layout root (default ../shared/data/vision/LOL)")
    parser.add_argument("--train-dir", default="our485_subset", help="training folder under --data-path (our485 for full LOL)")
    parser.add_argument("--test-dir", default=None, help="test folder (eval15); default: hold out --test-count training pairs")
    parser.add_argument("--val-count", type=int, default=2)
    parser.add_argument("--test-count", type=int, default=4)
    parser.add_argument("--models", nargs="*", choices=MODELS, default=list(MODELS))
    parser.add_argument("--budget-seconds", type=float, default=480.0, help="CPU training time per learned model")
    parser.add_argument("--max-steps", type=int, default=None, help="stop training after this many steps (tests)")
    parser.add_argument("--patch-size", type=int, default=128, help="LYT-Net training crop")
    parser.add_argument("--llformer-patch-size", type=int, default=64, help="LLFormer training crop")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam lr of the short budget (the papers: 2e-4 / 1e-4 over 1000 epochs)")
    parser.add_argument("--profile-size", type=int, default=256, help="side of the image for GMACs and latency")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: fastest on a shared 2-core box)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--uhd", choices=["none", "small", "paper"], default="none", help="also time tiled 3840x2160 inference")
    parser.add_argument("--uhd-tile", type=int, default=256)
    parser.add_argument("--uhd-overlap", type=int, default=16)
    parser.add_argument("--uhd-height", type=int, default=2160,
                        help="enhance only the top rows of the 3840x2160 image (a strip; the full time is extrapolated by tile rows)")
    add_common_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = LOLDataModule(
        root=str(args.data_path), train_dir=args.train_dir, test_dir=args.test_dir, val_count=args.val_count,
        test_count=args.test_count, patch_size=args.patch_size, batch_size=args.batch_size, seed=args.seed,
    )
    data.setup("fit")
    target_mean = float(torch.stack([h.mean() for _, h in data.train_pairs]).mean())
    dataset = f"LOL/{args.train_dir}" + (f"+{args.test_dir}" if args.test_dir else f" (test: {', '.join(data.split_names['test'])})")
    rows = []
    for name in args.models:
        rows.append(run_model(name, data, target_mean, dataset, args))
    notes = [
        f"train {len(data.train_pairs)} / val {len(data.val_pairs)} (unused) / test {len(data.test_pairs)} pairs; "
        f"gamma target mean {target_mean:.3f} fitted on the training high images",
        f"learned models: {args.budget_seconds:.0f} s CPU training each, Adam lr {args.lr:g} constant, batch {args.batch_size}, "
        f"crops {args.patch_size} (LYT-Net) / {args.llformer_patch_size} (LLFormer); small LLFormer = {SMALL_LLFORMER}",
        f"gmacs: forward multiply-adds at {args.profile_size}x{args.profile_size} (FLOPs = 2x); latency_s: median CPU forward at that size, "
        f"{args.threads} thread(s); 'seconds' = training time",
    ]
    if args.uhd != "none":
        rows.append(run_uhd(args.uhd, data, args))
        notes.append(f"UHD row: tiled {args.uhd_tile}px tiles, {args.uhd_overlap}px overlap, 3840x2160 input; "
                     "'seconds' = enhancement time, peak_gib = peak resident memory added")
    report(rows, experiment="vision/lowlight-LOL", title="attn-bench lowlight", json_path=args.json,
           log_mlflow=not args.no_mlflow, notes=notes)


def build(name: str, target_mean: float) -> tuple[nn.Module, nn.Module | None, str]:
    """Model, its training loss (None: no training) and a config description."""
    if name == "identity":
        return IdentityEnhancer(), None, "-"
    if name == "gamma":
        return GammaCorrection(target_mean=target_mean), None, f"adaptive, target mean {target_mean:.3f}"
    if name == "clahe":
        return CLAHE(), None, "clip 0.01"
    if name == "lytnet":
        return LYTNet(), LYTHybridLoss(), "paper (filters 32)"
    if name == "llformer":
        return LLFormer(**SMALL_LLFORMER), nn.SmoothL1Loss(), "small (dim 8, blocks 1-1-1-1)"
    if name == "llformer-paper":
        return LLFormer(), nn.SmoothL1Loss(), "paper (dim 16, blocks 2-4-8-16)"
    raise ValueError(f"vision/benchmarks/lowlight.py: unknown model {name!r}; choose from {MODELS}")


def run_model(name: str, data: LOLDataModule, target_mean: float, dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    model, loss, config = build(name, target_mean)
    multiple = int(getattr(model, "size_multiple", 1))
    profile = torch.rand(1, 3, args.profile_size, args.profile_size)
    model.eval()
    macs = gmacs(model, profile) if count_parameters(model) else None
    with torch.no_grad():
        repeats = 1 if name == "llformer-paper" else 3
        latency = median_seconds(lambda: model(profile), repeats=repeats, warmup=1 if repeats > 1 else 0)
    seconds, steps = 0.0, 0
    if loss is not None:
        patch = args.llformer_patch_size if name.startswith("llformer") else args.patch_size
        seconds, steps = train(model, loss, data, patch, args)
    metrics = evaluate(model, data, multiple, desc=name)
    row = {"model": type(model).__name__, "role": model.role, "dataset": dataset, "config": config,
           "params": count_parameters(model), "gmacs": macs, "latency_s": latency, "seconds": round(seconds, 1),
           "steps": steps, "metrics": metrics}
    print(row, flush=True)
    return row


def train(model: nn.Module, loss_fn: nn.Module, data: LOLDataModule, patch: int, args: argparse.Namespace) -> tuple[float, int]:
    """Adam on random crops until `args.budget_seconds` (or `args.max_steps`); returns (seconds, steps)."""
    data.patch_size = patch
    loader = data.train_dataloader()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    model.train()
    start, steps = time.perf_counter(), 0
    bar = tqdm(desc=f"train {type(model).__name__}", unit="step")
    while True:
        for low, high in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(low), high)
            loss.backward()
            optimizer.step()
            steps += 1
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.4f}")
            elapsed = time.perf_counter() - start
            if elapsed >= args.budget_seconds or (args.max_steps is not None and steps >= args.max_steps):
                bar.close()
                model.eval()
                return elapsed, steps


@torch.no_grad()
def evaluate(model: nn.Module, data: LOLDataModule, multiple: int, desc: str) -> dict[str, float]:
    """Mean PSNR / SSIM over the held-out test pairs (whole images, 8-bit rounded output)."""
    model.eval()
    scores_p, scores_s = [], []
    for low, high in tqdm(data.test_pairs, desc=f"test {desc}"):
        out = quantize(enhance_whole(model, low[None], multiple).clamp(0, 1))
        scores_p.append(float(psnr(out, high[None])[0]))
        scores_s.append(float(ssim(out, high[None])[0]))
    return {"psnr": sum(scores_p) / len(scores_p), "ssim": sum(scores_s) / len(scores_s)}


def run_uhd(kind: str, data: LOLDataModule, args: argparse.Namespace) -> dict[str, Any]:
    """Tiled LLFormer inference on a 3840x2160 image: time and added peak memory."""
    model = (LLFormer() if kind == "paper" else LLFormer(**SMALL_LLFORMER)).eval()
    low = data.test_pairs[0][0][None]
    image = F.interpolate(low, size=(2160, 3840), mode="bilinear", align_corners=False)[..., : args.uhd_height, :]
    enhance: Callable[[], torch.Tensor] = lambda: tiled_inference(  # noqa: E731
        model, image, tile=args.uhd_tile, overlap=args.uhd_overlap, multiple=LLFormer.size_multiple, progress=True
    )
    seconds, peak = measure_cpu(enhance, repeats=1)
    rows_done = len(tile_starts(image.shape[-2], args.uhd_tile, args.uhd_overlap))
    rows_full = len(tile_starts(2160, args.uhd_tile, args.uhd_overlap))
    extrapolated = None if rows_done == rows_full else round(seconds * rows_full / rows_done, 1)
    return {"model": f"LLFormer tiled 3840x{image.shape[-2]} ({kind})", "uhd_s_extrapolated_3840x2160": extrapolated, "role": "model", "dataset": "UHD timing", "config": kind,
            "params": count_parameters(model), "gmacs": None, "latency_s": None, "seconds": round(seconds, 1),
            "steps": 0, "peak_gib": None if peak is None else round(peak, 3), "metrics": {}}
