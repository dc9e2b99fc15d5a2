"""`attn-bench ltsf`: the table of "Are Transformers Effective for Time Series Forecasting?".

    attn-bench ltsf --dataset ETTh1 --horizons 96 192 336 720
    attn-bench ltsf --models dlinear nlinear --horizons 96 --json ltsf.json
    attn-bench ltsf --dataset weather --data-path weather.csv --horizons 96

Every (model, horizon) is trained and tested through the same code path as `attn fit`: the
model's config in `timeseries/configs/<model>_etth1.yaml` (the paper's hyper-parameters) is
loaded by the suite's Lightning CLI with the horizon and data file overridden on the data (the CLI
links the data's sizes to the model), the model is fitted (early stopping and best-checkpoint selection on `val/mse`, as the configs say)
and tested on the best checkpoint. Each run lands in MLflow experiment `timeseries/forecast/<dataset>`;
the table (test MSE/MAE on the standardized scale beside the published numbers, train seconds,
parameters) is printed, written with `--json` and logged to MLflow experiment `bench/ltsf`.

Published numbers (multivariate ETTh1): Repeat, Linear, NLinear, DLinear, Informer and
Autoformer from Zeng et al. (AAAI 2023), Table 2 (the Transformer baselines use seq_len 96);
PatchTST/42 from Nie et al. (ICLR 2023), Table 3. The DLinear paper lists no vanilla Transformer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.bench import BenchRow, add_training_arguments, bench_parser, report, train_row

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
MODELS = ("repeat", "linear", "nlinear", "dlinear", "transformer", "informer", "autoformer", "patchtst")

# (mse, mae) per horizon, multivariate, standardized scale
PUBLISHED: dict[str, dict[str, dict[int, tuple[float, float]]]] = {
    "ETTh1": {
        "repeat": {96: (1.295, 0.713), 192: (1.325, 0.733), 336: (1.323, 0.744), 720: (1.339, 0.756)},
        "linear": {96: (0.375, 0.397), 192: (0.418, 0.429), 336: (0.479, 0.476), 720: (0.624, 0.592)},
        "nlinear": {96: (0.374, 0.394), 192: (0.408, 0.415), 336: (0.429, 0.427), 720: (0.440, 0.453)},
        "dlinear": {96: (0.375, 0.399), 192: (0.405, 0.416), 336: (0.439, 0.443), 720: (0.472, 0.490)},
        "informer": {96: (0.865, 0.713), 192: (1.008, 0.792), 336: (1.107, 0.809), 720: (1.181, 0.865)},
        "autoformer": {96: (0.449, 0.459), 192: (0.500, 0.482), 336: (0.521, 0.496), 720: (0.514, 0.512)},
        "patchtst": {96: (0.370, 0.400), 192: (0.413, 0.429), 336: (0.422, 0.440), 720: (0.447, 0.468)},
    },
}


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register `attn-bench ltsf` (entry point of the `attn.bench` group)."""
    parser = bench_parser(subparsers, "ltsf", help="LTSF-Linear vs Transformer forecasters (DLinear paper's table)", doc=__doc__)
    parser.add_argument("--dataset", default="ETTh1", help="dataset name: MLflow experiment timeseries/forecast/<dataset>, split layout (ETTh*/ETTm*/other) and published numbers")
    parser.add_argument("--data-path", default=None, help="CSV with a date column (default: the embedded ETTh1; required for other datasets)")
    parser.add_argument("--horizons", type=int, nargs="+", default=[96, 192, 336, 720])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--features", choices=["M", "S", "MS"], default="M")
    parser.add_argument("--seq-len", type=int, default=None, help="look-back window for every model (default: each config's; ILI: 104)")
    parser.add_argument("--config-dir", type=Path, default=CONFIG_DIR, help="folder of <model>_etth1.yaml configs")
    add_training_arguments(parser, root_dir="checkpoints/ltsf")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Train and test every requested model at every horizon, then report the table."""
    if args.data_path is None and args.dataset != "ETTh1":
        raise SystemExit(f"attn-bench ltsf: --dataset {args.dataset} needs --data-path (only ETTh1 is embedded)")
    rows = [run_one(name, horizon, args) for horizon in args.horizons for name in args.models]
    notes = [
        f"test metrics on the standardized scale, features {args.features}; vs_paper = (mse - paper) / paper",
    ]
    report(
        rows, experiment="bench/ltsf", title=f"LTSF {args.dataset} ({args.features})", json_path=args.json,
        columns=["model", "role", "horizon", "mse", "mae", "paper_mse", "paper_mae", "vs_paper", "params", "epochs", "seconds"],
        log_mlflow=not args.no_mlflow, notes=notes, budget=args,
    )


def run_one(name: str, horizon: int, args: argparse.Namespace) -> BenchRow:
    """Fit and test one model at one horizon through the `attn` CLI; one table row.

    Sizes are set on the data only (`seq_len`, `pred_len`; `channels` from the file): the CLI links them to the model.
    """
    overrides = [
        f"--data.init_args.pred_len={horizon}", f"--data.init_args.features={args.features}",
        f"--data.init_args.dataset_name={args.dataset}",
    ]
    if args.data_path is not None:
        overrides.append(f"--data.init_args.path={args.data_path}")
    if args.seq_len is not None:
        overrides.append(f"--data.init_args.seq_len={args.seq_len}")
    row, _ = train_row(args.config_dir / f"{name}_etth1.yaml", args, overrides=overrides, dataset=args.dataset,
                       settings={"horizon": horizon}, name=name, tag="ltsf")
    published = PUBLISHED.get(args.dataset, {}).get(name, {}).get(horizon) if args.features == "M" else None
    if published and not row.error:
        mse = row.metrics["mse"]
        row.reference = {"paper_mse": published[0], "paper_mae": published[1],
                         "vs_paper": f"{100 * (mse - published[0]) / published[0]:+.1f}%"}
    return row
