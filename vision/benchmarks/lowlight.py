"""`attn-bench lowlight`: LLFormer and LYT-Net against identity / gamma / CLAHE on held-out LOL pairs.

    attn-bench lowlight                                  # the shared 20-pair LOL subset, 480 s per learned model
    attn-bench lowlight --models gamma lytnet --max-steps 300 --json lowlight.json
    attn-bench lowlight --data-path LOL/ --train-dir our485 --test-dir eval15

For every model: parameters, forward GMACs at 256x256 (torch's FlopCounterMode; one multiply-add =
one MAC = 2 FLOPs; attention matmuls included), median CPU latency of one 256x256 forward, and PSNR /
SSIM (RGB, 8-bit rounded outputs, whole images padded to the model's size multiple) on the held-out
test pairs. Every model goes through the same code path as `attn fit` (`core.bench.train_row`) with
its config in `vision/configs/<model>_lol.yaml`: the classical baselines are tested as built (the
adaptive gamma's target mean is fitted on the training high images, their mean); the learned models
train on random crops with flips/rotations and the paper's loss (Smooth-L1 for LLFormer, the hybrid
loss without VGG for LYT-Net), Adam at a constant `--lr`, without validation, for `--max-seconds`
(or `--max-steps`, which does not depend on the machine's load), and their final weights are tested.
`llformer` is a small configuration that learns within minutes; `llformer-paper` is the paper's
24.5M configuration under the same budget (far fewer steps). Training runs land in MLflow experiment
`vision/lowlight/LOL`; the table goes to `bench/lowlight`.

`--uhd small|paper` adds tiled inference of LLFormer on a 3840x2160 image (a LOL test image resized
up) with its time and the peak resident memory it added (`core.profiling.measure_cpu`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from core.bench import BenchRow, add_training_arguments, bench_parser, report, train_row
from core.profiling import count_parameters, gmacs, measure_cpu, median_seconds
from vision.data.lol import SHARED_LOL, LOLDataModule
from vision.models.llformer import LLFormer
from vision.tiling import tile_starts, tiled_inference

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
# benchmark name -> config stem in vision/configs
CONFIGS = {"identity": "identity_lol", "gamma": "gamma_lol", "clahe": "clahe_lol", "lytnet": "lytnet_lol",
           "llformer": "llformer_small_lol", "llformer-paper": "llformer_lol"}
MODELS = tuple(CONFIGS)


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register `attn-bench lowlight` (entry point of the `attn.bench` group)."""
    parser = bench_parser(subparsers, "lowlight", help="LLFormer / LYT-Net vs classical baselines on held-out LOL pairs", doc=__doc__)
    parser.add_argument("--data-path", type=Path, default=SHARED_LOL, help="LOL-layout root (default ../shared/data/vision/LOL)")
    parser.add_argument("--train-dir", default="our485_subset", help="training folder under --data-path (our485 for full LOL)")
    parser.add_argument("--test-dir", default=None, help="test folder (eval15); default: hold out --test-count training pairs")
    parser.add_argument("--val-count", type=int, default=2)
    parser.add_argument("--test-count", type=int, default=4)
    parser.add_argument("--models", nargs="*", choices=MODELS, default=list(MODELS))
    parser.add_argument("--patch-size", type=int, default=128, help="LYT-Net training crop")
    parser.add_argument("--llformer-patch-size", type=int, default=64, help="LLFormer training crop")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--samples-per-epoch", type=int, default=400, help="random crops per training epoch")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam lr of the short budget (the papers: 2e-4 / 1e-4 over 1000 epochs)")
    parser.add_argument("--profile-size", type=int, default=256, help="side of the image for GMACs and latency")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config-dir", type=Path, default=CONFIG_DIR, help="folder of the <model>_lol.yaml configs")
    parser.add_argument("--uhd", choices=["none", "small", "paper"], default="none", help="also time tiled 3840x2160 inference")
    parser.add_argument("--uhd-tile", type=int, default=256)
    parser.add_argument("--uhd-overlap", type=int, default=16)
    parser.add_argument("--uhd-height", type=int, default=2160,
                        help="enhance only the top rows of the 3840x2160 image (a strip; the full time is extrapolated by tile rows)")
    add_training_arguments(parser, root_dir="checkpoints/lowlight", threads=1)
    parser.set_defaults(func=run, max_seconds=480.0)


def run(args: argparse.Namespace) -> None:
    """Profile, train within the budget and test every requested model; report the table."""
    torch.set_num_threads(args.threads)
    data = LOLDataModule(root=str(args.data_path), train_dir=args.train_dir, test_dir=args.test_dir,
                         val_count=args.val_count, test_count=args.test_count, seed=args.seed)
    data.setup("fit")
    target_mean = float(torch.stack([h.mean() for _, h in data.train_pairs]).mean())
    test_names = ", ".join(data.split_names["test"])
    rows = [run_model(name, target_mean, args) for name in args.models]
    notes = [
        f"train {len(data.train_pairs)} / val {len(data.val_pairs)} (unused) / test {len(data.test_pairs)} pairs "
        f"(test: {args.test_dir or test_names}); gamma target mean {target_mean:.3f} fitted on the training high images",
        f"learned models: Adam lr {args.lr:g} constant, batch {args.batch_size}, crops {args.patch_size} (LYT-Net) / "
        f"{args.llformer_patch_size} (LLFormer), final weights tested; configs in {args.config_dir}",
        f"gmacs: forward multiply-adds at {args.profile_size}x{args.profile_size} (FLOPs = 2x); latency_s: median CPU forward at that size, "
        f"{args.threads} thread(s); 'seconds' = training time",
    ]
    if args.uhd != "none":
        rows.append(run_uhd(args.uhd, data, args))
        notes.append(f"UHD row: tiled {args.uhd_tile}px tiles, {args.uhd_overlap}px overlap, 3840x2160 input; "
                     "'seconds' = enhancement time, peak_gib = peak resident memory added")
    report(rows, experiment="bench/lowlight", title="attn-bench lowlight", json_path=args.json,
           columns=["model", "config", "role", "params", "gmacs", "latency_s", "steps", "seconds", "psnr", "ssim",
                    "uhd_s_extrapolated_3840x2160", "peak_gib"],
           log_mlflow=not args.no_mlflow, notes=notes, budget=args)


def run_model(name: str, target_mean: float, args: argparse.Namespace) -> BenchRow:
    """One model through `core.bench.train_row`: cost of the built model, training (learned ones), test."""
    data = [
        f"--data.init_args.root={args.data_path}", f"--data.init_args.train_dir={args.train_dir}",
        f"--data.init_args.test_dir={args.test_dir or 'null'}", f"--data.init_args.val_count={args.val_count}",
        f"--data.init_args.test_count={args.test_count}", f"--data.init_args.seed={args.seed}",
        f"--seed_everything={args.seed}",
    ]
    if name == "gamma":
        data.append(f"--model.init_args.model.init_args.target_mean={target_mean}")
    if name in ("lytnet", "llformer", "llformer-paper"):
        patch = args.llformer_patch_size if name.startswith("llformer") else args.patch_size
        data += [
            f"--data.init_args.patch_size={patch}", f"--data.init_args.batch_size={args.batch_size}",
            f"--data.init_args.samples_per_epoch={args.samples_per_epoch}",
            f"--model.init_args.optimizer.init_args.lr={args.lr}", "--model.init_args.lr_scheduler=null",
            "--trainer.max_epochs=-1", "--trainer.log_every_n_steps=10",
        ]
    repeats = 1 if name == "llformer-paper" else 3
    row, _ = train_row(args.config_dir / f"{CONFIGS[name]}.yaml", args, overrides=data, dataset="LOL", name=name,
                       validate=False, on_built=lambda task: _profile(task.model, args.profile_size, repeats), tag="lowlight")
    return row


def _profile(model: torch.nn.Module, size: int, repeats: int) -> dict[str, float | None]:
    """GMACs and median latency (s) of one `size`x`size` forward of the untrained model."""
    profile = torch.rand(1, 3, size, size)
    model.eval()
    macs = gmacs(model, profile) if count_parameters(model) else None
    with torch.no_grad():
        latency = median_seconds(lambda: model(profile), repeats=repeats, warmup=1 if repeats > 1 else 0)
    model.train()
    return {"gmacs": macs, "latency_s": latency}


def run_uhd(kind: str, data: LOLDataModule, args: argparse.Namespace) -> BenchRow:
    """Tiled LLFormer inference on a 3840x2160 image: time and added peak memory."""
    small = {"dim": 8, "num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1, "heads": (1, 1, 2, 4)}
    model = (LLFormer() if kind == "paper" else LLFormer(**small)).eval()
    low = data.test_pairs[0][0][None]
    image = F.interpolate(low, size=(2160, 3840), mode="bilinear", align_corners=False)[..., : args.uhd_height, :]
    enhance: Callable[[], torch.Tensor] = lambda: tiled_inference(  # noqa: E731
        model, image, tile=args.uhd_tile, overlap=args.uhd_overlap, multiple=model.size_multiple, progress=True
    )
    seconds, peak = measure_cpu(enhance, repeats=1)
    rows_done = len(tile_starts(image.shape[-2], args.uhd_tile, args.uhd_overlap))
    rows_full = len(tile_starts(2160, args.uhd_tile, args.uhd_overlap))
    extrapolated = None if rows_done == rows_full else round(seconds * rows_full / rows_done, 1)
    return BenchRow(model="LLFormer", role="model", dataset="UHD timing", config=f"tiled 3840x{image.shape[-2]} ({kind})",
                    params=count_parameters(model), seconds=round(seconds, 1),
                    measures={"uhd_s_extrapolated_3840x2160": extrapolated, "peak_gib": None if peak is None else round(peak, 3)})
