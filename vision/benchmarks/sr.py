"""`attn-bench sr`: HAT against bicubic and EDSR-baseline under a fixed CPU training budget.

    attn-bench sr --scale 4                                  # Set5 from ../shared/data/vision when present
    attn-bench sr --scale 4 --data-path Set5/ --train-path DIV2K_train_HR/ --max-seconds 1200 --json sr.json
    attn-bench sr --scale 2 --models bicubic                 # the protocol check: bicubic's Set5 numbers

Per model: parameters, forward GMACs (multiply-adds, the unit SR papers call "FLOPs") and median
CPU latency on a `--latency-size` LR input, then PSNR / SSIM (Y channel, intensity for grayscale
images, `scale` border pixels cropped, 8-bit outputs, mean over images) on the evaluation folder
after `--max-seconds` (or `--max-steps`) of training each. Every trained model goes through the same code path as `attn fit`: its config
(`vision/configs/<model>_x4_skimage.yaml`), the same data (random LR patches of the training photos
with flips/rotations), the loss of its paper (L1), Trainer `max_time` as the budget, no
validation, and the final weights tested. The paper-size HAT-S and HAT are listed for their cost
(parameters, GMACs, latency) only: they cannot train in a CPU budget. Runs land in MLflow
experiment `vision/sr/<dataset>`; the table goes to `bench/sr`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import yaml

from core.bench import BenchRow, add_training_arguments, bench_parser, report, train_row
from core.profiling import count_parameters, gmacs, median_seconds
from vision.tiling import enhance_whole

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
SET5 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "vision" / "Set5"
TRAINED = ("bicubic", "edsr", "hat_small")
COST_ONLY = ("hat_s", "hat")
PUBLISHED_BICUBIC_SET5 = {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)}
PUBLISHED_SET5_X4 = {"edsr": 32.09, "hat_s": 32.92, "hat": 33.04}  # PSNR-Y after full DIV2K/DF2K training


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register `attn-bench sr` (entry point of the `attn.bench` group)."""
    parser = bench_parser(subparsers, "sr", help="HAT vs bicubic and EDSR-baseline super-resolution (Set5 protocol)", doc=__doc__)
    parser.add_argument("--scale", type=int, default=4, choices=[2, 3, 4])
    parser.add_argument("--data-path", type=Path, default=None, help="folder of HR evaluation images (default: Set5 in ../shared/data/vision, else the embedded test photo)")
    parser.add_argument("--train-path", type=Path, default=None, help="folder of HR training images (default: the embedded scikit-image photos)")
    parser.add_argument("--models", nargs="+", choices=TRAINED, default=list(TRAINED), help="models trained and scored")
    parser.add_argument("--cost-models", nargs="*", choices=COST_ONLY, default=list(COST_ONLY), help="paper-size models: cost only")
    parser.add_argument("--lr", type=float, default=None, help="one Adam learning rate for every trained network (default: each config's)")
    parser.add_argument("--latency-size", type=int, default=64, help="LR side of the input for GMACs and latency")
    add_training_arguments(parser, root_dir="checkpoints/sr")
    parser.set_defaults(max_seconds=420.0)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Measure cost, train within the budget and test every requested model; report the table."""
    data_path = args.data_path if args.data_path is not None else (SET5.resolve() if SET5.is_dir() else None)
    if data_path is not None and not Path(data_path).is_dir():
        raise SystemExit(f"attn-bench sr: --data-path {data_path} is not a folder of HR images")
    dataset = Path(data_path).name if data_path is not None else "skimage"
    rows = [run_one(name, args, data_path, dataset) for name in args.models]
    for name in args.cost_models:
        rows.append(cost_row(name, args, dataset))
    published = PUBLISHED_BICUBIC_SET5.get(args.scale)
    notes = [
        f"x{args.scale}; PSNR/SSIM on Y (grayscale images: intensity), {args.scale}-pixel border cropped, 8-bit outputs, "
        f"mean over {dataset} images",
        f"training on {args.train_path or 'the embedded scikit-image photos'}, final weights tested (no selection on the test set)",
        f"gmacs / latency_ms: one forward of a {args.latency_size}x{args.latency_size} LR image (multiply-adds; FLOPs = 2 x MACs)",
        "paper_psnr: published Set5 numbers after full training (bicubic: the protocol's own value)",
        *(["hat_small = HAT architecture at reduced size (see vision/configs/hat_small_x4_skimage.yaml)"] if "hat_small" in args.models else []),
        *(["hat_s / hat rows: paper-size models, cost only (not trained)"] if args.cost_models else []),
        *([f"learning rate {args.lr} for every trained network"] if args.lr is not None else []),
    ]
    if published and dataset == "Set5":
        notes.append(f"literature bicubic Set5 x{args.scale}: PSNR {published[0]}, SSIM {published[1]}")
    report(
        rows, experiment="bench/sr", title=f"SR x{args.scale} {dataset}", json_path=args.json,
        columns=["model", "config", "role", "params", "gmacs", "latency_ms", "seconds", "steps", "psnr", "ssim", "paper_psnr"],
        log_mlflow=not args.no_mlflow, notes=notes, budget=args,
    )


def _config(name: str) -> Path:
    return CONFIG_DIR / f"{name}_x4_skimage.yaml"


def run_one(name: str, args: argparse.Namespace, data_path: Path | None, dataset: str) -> BenchRow:
    """Cost, then fit for the budget and test the final weights through the `attn` CLI; one table row."""
    overrides = [
        f"--data.init_args.scale={args.scale}",  # the CLI links it to the model
        f"--data.init_args.dataset_name={dataset}", "--trainer.max_steps=-1", "--trainer.max_epochs=-1",
        "--trainer.accumulate_grad_batches=1", "--trainer.log_every_n_steps=20",
    ]
    if data_path is not None:
        overrides.append(f"--data.init_args.test_path={data_path}")
    if args.train_path is not None:
        overrides.append(f"--data.init_args.train_path={args.train_path}")
    if args.lr is not None and name != "bicubic":
        overrides.append(f"--model.init_args.optimizer.init_args.lr={args.lr}")
    row, _ = train_row(_config(name), args, overrides=overrides, dataset=dataset, settings={"scale": args.scale},
                       name=name, validate=False, on_built=lambda task: _cost(task.model, args), tag="sr")
    paper = PUBLISHED_BICUBIC_SET5.get(args.scale, (None,))[0] if name == "bicubic" else PUBLISHED_SET5_X4.get(name)
    if dataset == "Set5" and (name == "bicubic" or args.scale == 4):
        row.reference["paper_psnr"] = paper
    return row


def cost_row(name: str, args: argparse.Namespace, dataset: str) -> BenchRow:
    """Parameters, GMACs and latency of a paper-size model built from its config (not trained)."""
    from vision.models.hat import HAT

    init = yaml.safe_load(_config(name).read_text())["model"]["init_args"]["model"]["init_args"]
    model = HAT(**{**init, "scale": args.scale, "depths": tuple(init["depths"]), "num_heads": tuple(init["num_heads"])})
    row = BenchRow(model="HAT", role="model", dataset=dataset, config=name, params=count_parameters(model),
                   settings={"scale": args.scale}, measures=_cost(model, args))
    if args.scale == 4:
        row.reference["paper_psnr"] = PUBLISHED_SET5_X4.get(name)
    print(f"[sr] {name}: {row.params} parameters, {row.measures['gmacs']:.1f} GMACs, {row.measures['latency_ms']:.0f} ms", flush=True)
    return row


class _Whole(torch.nn.Module):
    """`model` behind the whole-image padding of `SRTask`, for the FLOP counter."""

    def __init__(self, model: torch.nn.Module, multiple: int) -> None:
        super().__init__()
        self.model, self.multiple = model, multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return enhance_whole(self.model, x, self.multiple, int(getattr(self.model, "scale", 1)))


def _cost(model: torch.nn.Module, args: argparse.Namespace) -> dict[str, Any]:
    """GMACs and median latency (ms) of one forward of a `latency_size` LR image."""
    model = model.eval()
    x = torch.rand(1, 3, args.latency_size, args.latency_size)
    multiple = int(getattr(model, "size_multiple", 1))
    with torch.no_grad():  # through the task's whole-image path: padded to the model's multiple
        macs = gmacs(_Whole(model, multiple), x)
        latency = median_seconds(lambda: enhance_whole(model, x, multiple, int(getattr(model, "scale", 1))), repeats=3, warmup=1)
    model.train()
    return {"gmacs": round(macs, 3), "latency_ms": round(1000 * latency, 1)}
