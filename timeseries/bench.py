"""`attn-bench ltsf`: the table of "Are Transformers Effective for Time Series Forecasting?".

    attn-bench ltsf --dataset ETTh1 --horizons 96 192 336 720
    attn-bench ltsf --models dlinear nlinear --horizons 96 --json ltsf.json
    attn-bench ltsf --dataset weather --data-path weather.csv --horizons 96

Every (model, horizon) is trained and tested through the same code path as `attn fit`: the
model's config in `timeseries/configs/<model>_etth1.yaml` (the paper's hyper-parameters) is
loaded by the suite's Lightning CLI with the horizon, data file and channel count overridden, the
model is fitted (early stopping and best-checkpoint selection on `val/mse`, as the configs say)
and tested on the best checkpoint. Each run lands in MLflow experiment `timeseries/<dataset>`;
the table (test MSE/MAE on the standardized scale beside the published numbers, train seconds,
parameters) is printed, written with `--json` and logged to MLflow experiment `bench/ltsf`.

Published numbers (multivariate ETTh1): Repeat, Linear, NLinear, DLinear, Informer and
Autoformer from Zeng et al. (AAAI 2023), Table 2 (the Transformer baselines use seq_len 96);
PatchTST/42 from Nie et al. (ICLR 2023), Table 3. The DLinear paper lists no vanilla Transformer.
"""

from __future__ import annotations

import argparse
import traceback
from pathlib import Path
from typing import Any

import torch
import yaml

from core.bench import add_common_arguments, report

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
    parser = subparsers.add_parser(
        "ltsf", help="LTSF-Linear vs Transformer forecasters (DLinear paper's table)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", default="ETTh1", help="dataset name: MLflow experiment timeseries/<dataset>, split layout (ETTh*/ETTm*/other) and published numbers")
    parser.add_argument("--data-path", default=None, help="CSV with a date column (default: the embedded ETTh1; required for other datasets)")
    parser.add_argument("--horizons", type=int, nargs="+", default=[96, 192, 336, 720])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--features", choices=["M", "S", "MS"], default="M")
    parser.add_argument("--seq-len", type=int, default=None, help="look-back window for every model (default: each config's; ILI: 104)")
    parser.add_argument("--max-epochs", type=int, default=None, help="cap on the configs' epochs (a shorter run than the paper's)")
    parser.add_argument(
        "--set", nargs="+", default=[], metavar="KEY=VALUE",
        help="extra Lightning CLI arguments for every run, without the leading dashes, e.g. "
        "trainer.limit_train_batches=0.25 or model.init_args.model.init_args.d_model=128",
    )
    parser.add_argument("--config-dir", type=Path, default=CONFIG_DIR, help="folder of <model>_etth1.yaml configs")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--root-dir", default="checkpoints/ltsf", help="where checkpoints are written")
    add_common_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Train and test every requested model at every horizon, then report the table."""
    if args.data_path is None and args.dataset != "ETTh1":
        raise SystemExit(f"attn-bench ltsf: --dataset {args.dataset} needs --data-path (only ETTh1 is embedded)")
    if args.threads:
        torch.set_num_threads(args.threads)
    channels = _channels(args)
    rows, failed = [], 0
    for horizon in args.horizons:
        for name in args.models:
            row = run_one(name, horizon, channels, args)
            failed += "error" in row
            rows.append(row)
    notes = [
        f"test metrics on the standardized scale, features {args.features}; vs_paper = (mse - paper) / paper",
        f"epochs capped at {args.max_epochs}" if args.max_epochs else "epochs as in the configs (the papers' settings)",
        *([f"overrides: {' '.join(args.set)}"] if args.set else []),
    ]
    report(
        rows, experiment="bench/ltsf", title=f"LTSF {args.dataset} ({args.features})", json_path=args.json,
        columns=["model", "role", "horizon", "mse", "mae", "paper_mse", "paper_mae", "vs_paper", "params", "epochs", "seconds"],
        log_mlflow=not args.no_mlflow, notes=notes,
    )
    if failed:
        raise SystemExit(f"attn-bench ltsf: {failed} run(s) failed; see 'error' in the rows")


def run_one(name: str, horizon: int, channels: int, args: argparse.Namespace) -> dict[str, Any]:
    """Fit and test one model at one horizon through the `attn` CLI; one table row."""
    from core.cli import fit_and_test

    config = args.config_dir / f"{name}_etth1.yaml"
    model_args = "--model.init_args.model.init_args"
    cli_args = [
        "--config", str(config),
        f"--data.init_args.pred_len={horizon}", f"{model_args}.pred_len={horizon}",
        f"{model_args}.channels={channels}", f"--data.init_args.features={args.features}",
        f"--data.init_args.dataset_name={args.dataset}",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={args.root_dir}",
    ]
    if args.data_path is not None:
        cli_args.append(f"--data.init_args.path={args.data_path}")
    if args.seq_len is not None:
        cli_args += [f"--data.init_args.seq_len={args.seq_len}", f"{model_args}.seq_len={args.seq_len}"]
    epochs = yaml.safe_load(config.read_text()).get("trainer", {}).get("max_epochs")
    if args.max_epochs is not None and (epochs is None or args.max_epochs < epochs):
        cli_args.append(f"--trainer.max_epochs={args.max_epochs}")
    cli_args += [f"--{item}" for item in args.set]
    published = PUBLISHED.get(args.dataset, {}).get(name, {}).get(horizon) if args.features == "M" else None
    row: dict[str, Any] = {"model": name, "role": None, "dataset": args.dataset, "horizon": horizon}
    print(f"[ltsf] {name} horizon {horizon}: attn fit {' '.join(cli_args)}", flush=True)
    try:
        task, trainer, result, seconds = fit_and_test(cli_args)
    except Exception as err:  # one failed model must not lose the others' rows
        traceback.print_exc()
        row.update(error=f"{type(err).__name__}: {err}"[:300], metrics={})
        return row
    mse, mae = float(result["test/mse"]), float(result["test/mae"])
    row.update(
        model=type(task.model).__name__, role=task.tracking_tags()["role"], params=task.num_parameters(),
        seconds=round(seconds, 1), epochs=trainer.current_epoch, metrics={"mse": mse, "mae": mae},
        paper_mse=published[0] if published else None, paper_mae=published[1] if published else None,
        vs_paper=f"{100 * (mse - published[0]) / published[0]:+.1f}%" if published else None,
    )
    print(f"[ltsf] {row['model']} horizon {horizon}: test mse {mse:.4f} mae {mae:.4f} ({seconds:.0f} s)", flush=True)
    return row


def _channels(args: argparse.Namespace) -> int:
    """Input channels of the data, for the models' `channels` argument."""
    from timeseries.data import ETTDataModule

    kwargs = {"path": args.data_path} if args.data_path else {}
    data = ETTDataModule(dataset_name=args.dataset, features=args.features, seq_len=1, pred_len=1, **kwargs)
    data.setup()
    return data.channels

