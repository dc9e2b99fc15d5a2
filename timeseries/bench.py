"""`attn-bench ltsf`: the table of "Are Transformers Effective for Time Series Forecasting?".

    attn-bench ltsf --dataset ETTh1 --horizons 96 192 336 720
    attn-bench ltsf --dataset ETTm1 --data-path ETTm1.csv --models linear nlinear dlinear
    attn-bench ltsf --dataset ILI --data-path national_illness.csv     # seq_len 104, horizons 24 36 48 60
    attn-bench ltsf --dataset mine --data-path mine.csv --horizons 96   # no published row: the configs' settings

Every (model, horizon) is trained and tested through the same code path as `attn fit`: the
model's config in `timeseries/configs/<model>_etth1.yaml` is loaded by the suite's Lightning CLI
with the horizon and data file overridden on the data (the CLI links the data's sizes to the
model), the model is fitted (early stopping and best-checkpoint selection on `val/mse`) and tested
on the best checkpoint. Each run lands in MLflow experiment `timeseries/forecast/<dataset>`; the
table (test MSE/MAE on the standardized scale beside the published numbers, the settings, train
seconds, parameters) is printed, written with `--json` and logged to MLflow experiment `bench/ltsf`.

A dataset of the paper's Table 2 (ETTh1, ETTh2, ETTm1, ETTm2, Weather, Electricity, Traffic,
Exchange, ILI; see `timeseries.published`) brings its own settings from the official scripts:
split, look-back (ILI: 104), horizons (ILI: 24 36 48 60), and per model the batch size, learning
rate, epochs, patience, schedule and model sizes. They are printed before each run and logged as
the row's params `settings` and `settings_source`; the published row is printed beside ours.
Any other name runs the configs' own (ETTh1) settings and says so. `--seq-len` and `--set`
override the dataset's settings; `--max-epochs` shortens them.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from core.bench import BenchRow, add_training_arguments, bench_parser, report, train_row
from timeseries.data import EMBEDDED_ETTH1, split_sizes
from timeseries.published import MODELS, Layout, LTSFDataset, TrainSettings, find_dataset

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_HORIZONS = (96, 192, 336, 720)

# the reference code's `lradj` values as this suite's schedulers (see timeseries.schedules)
_EPOCH_SCHEDULES: dict[str, dict[str, Any] | None] = {
    "type1": {"class_path": "timeseries.schedules.DelayedExponentialLR", "init_args": {"gamma": 0.5, "hold": 1}},
    "type3": {"class_path": "timeseries.schedules.DelayedExponentialLR", "init_args": {"gamma": 0.9, "hold": 3}},
    "constant": None,
}


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register `attn-bench ltsf` (entry point of the `attn.bench` group)."""
    parser = bench_parser(subparsers, "ltsf", help="LTSF-Linear vs Transformer forecasters (DLinear paper's table)", doc=__doc__)
    parser.add_argument("--dataset", default=None, help="a dataset of the paper (its settings and published rows; any case, e.g. ETTm1, weather, ili) or any name (the configs' settings); default: the --data-path file's name, else ETTh1")
    parser.add_argument("--data-path", default=None, help="the CSV, or a folder holding the dataset's file as the scripts name it (ETTm1.csv, national_illness.csv); default: the embedded ETTh1")
    parser.add_argument("--horizons", type=int, nargs="+", default=None, help="default: the dataset's (ILI: 24 36 48 60; others 96 192 336 720)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--features", choices=["M", "S", "MS"], default="M")
    parser.add_argument("--seq-len", type=int, default=None, help="look-back window for every model (default: the dataset's settings, else each config's)")
    parser.add_argument("--config-dir", type=Path, default=CONFIG_DIR, help="folder of <model>_etth1.yaml configs")
    add_training_arguments(parser, root_dir="checkpoints/ltsf")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    """Train and test every requested model at every horizon, then report the table."""
    if args.dataset is None:  # the name follows the file (mine.csv is not ETTh1, nor split as ETTh1)
        given = Path(args.data_path) if args.data_path else None
        args.dataset = given.stem if given is not None and given.is_file() else "ETTh1"
    dataset = find_dataset(args.dataset)
    name = dataset.name if dataset is not None else args.dataset
    path = data_path(args, dataset)
    horizons = args.horizons or (dataset.horizons if dataset is not None else DEFAULT_HORIZONS)
    notes = [f"test metrics on the standardized scale, features {args.features}; vs_paper = (mse - paper) / paper"]
    if dataset is None:
        line = f"no published row for {args.dataset}; settings: each config's own (ETTh1's, {args.config_dir}/<model>_etth1.yaml)"
        print(f"[ltsf] {line}", flush=True)
        notes.append(line)
    rows = [run_one(model, horizon, args, dataset=dataset, path=path) for horizon in horizons for model in args.models]
    if dataset is not None:
        sources: dict[str, list[str]] = {}
        for model in args.models:
            if model in dataset.published_source:
                sources.setdefault(dataset.published_source[model], []).append(model)
        if sources and args.features == "M":
            notes.append("published: " + "; ".join(f"{s} ({', '.join(m)})" for s, m in sources.items()))
        for model in args.models:
            used = sorted({row.settings["settings_source"] for row in rows if row.config == model and "settings_source" in row.settings})
            if used:
                notes.append(f"{model} settings: {'; '.join(used)}")
    report(
        rows, experiment="bench/ltsf", title=f"LTSF {name} ({args.features})", json_path=args.json,
        columns=["model", "role", "horizon", "mse", "mae", "paper_mse", "paper_mae", "vs_paper", "seq_len", "batch_size", "lr",
                 "params", "epochs", "seconds"],
        log_mlflow=not args.no_mlflow, notes=notes, budget=args,
    )


def data_path(args: argparse.Namespace, dataset: LTSFDataset | None) -> str | None:
    """The CSV to read: `--data-path`, its folder's file of the dataset, or None for the embedded ETTh1."""
    if args.data_path is None:
        if dataset is not None and dataset.name == "ETTh1":
            return None
        wanted = f" (the scripts read {dataset.file})" if dataset is not None else ""
        raise SystemExit(f"attn-bench ltsf: --dataset {args.dataset} needs --data-path{wanted}; only ETTh1 is embedded")
    path = Path(args.data_path)
    if path.is_dir():
        if dataset is None:
            raise SystemExit(f"attn-bench ltsf: --data-path {path} is a folder; give the CSV of --dataset {args.dataset}")
        path = path / dataset.file
    if not path.is_file():
        raise SystemExit(f"attn-bench ltsf: {path}: file not found")
    return str(path)


def settings_for(dataset: LTSFDataset, model: str, horizon: int) -> tuple[TrainSettings | None, str]:
    """The scripts' settings of `model` at `horizon`, and a note when they are another horizon's.

    A horizon the paper does not run (e.g. 24 on ETTh1) takes the settings of the nearest one.
    """
    per_horizon = dataset.settings.get(model)
    if not per_horizon:
        return None, ""
    if horizon in per_horizon:
        return per_horizon[horizon], ""
    nearest = min(per_horizon, key=lambda h: (abs(h - horizon), h))
    return per_horizon[nearest], f" (horizon {horizon} is not in the paper: horizon {nearest}'s settings)"


def settings_overrides(
    settings: TrainSettings, *, seq_len: int, horizon: int, epochs: int | None, path: str | None, split: Layout,
    max_steps: int | None = None,
) -> list[str]:
    """The CLI arguments that apply `settings` to a `<model>_etth1.yaml` config.

    `seq_len` is the look-back actually used and `epochs` the epochs actually run (both after the
    user's `--seq-len` / `--max-epochs`); the one-cycle (`TST`) schedule spans those epochs.
    """
    out = [f"--data.init_args.split={split}", f"--data.init_args.seq_len={seq_len}"]
    if settings.batch_size is not None:
        out.append(f"--data.init_args.batch_size={settings.batch_size}")
    if settings.lr is not None:
        out.append(f"--model.init_args.optimizer.init_args.lr={json.dumps(settings.lr)}")
    if epochs is not None:
        out.append(f"--trainer.max_epochs={epochs}")
    if settings.patience is not None:
        stop = {"class_path": "lightning.pytorch.callbacks.EarlyStopping",
                "init_args": {"monitor": "val/mse", "mode": "min", "patience": settings.patience}}
        out.append(f"--trainer.callbacks={json.dumps([stop])}")
    if settings.schedule == "TST":
        if settings.lr is None or settings.batch_size is None or epochs is None:
            raise ValueError(f"{settings.source}: the TST schedule needs lr, batch_size and epochs")
        total = epochs * steps_per_epoch(path, split, seq_len, horizon, settings.batch_size)
        if max_steps is not None:
            total = min(total, max_steps)
        cycle = {"class_path": "torch.optim.lr_scheduler.OneCycleLR",
                 "init_args": {"max_lr": settings.lr, "total_steps": total, "pct_start": settings.pct_start}}
        out += [f"--model.init_args.lr_scheduler={json.dumps(cycle)}", "--model.init_args.scheduler_interval=step"]
    elif settings.schedule is not None:
        out += [f"--model.init_args.lr_scheduler={json.dumps(_EPOCH_SCHEDULES[settings.schedule])}",
                "--model.init_args.scheduler_interval=epoch"]
    out += [f"--model.init_args.model.init_args.{key}={json.dumps(value)}" for key, value in settings.model.items()]
    return out


def steps_per_epoch(path: str | None, split: Layout, seq_len: int, horizon: int, batch_size: int) -> int:
    """Optimizer steps of one training epoch, as `ETTDataModule`'s loader gives them (ragged batch dropped)."""
    n_rows = 0
    if split == "ratio":
        with open(path or EMBEDDED_ETTH1, "rb") as file:
            n_rows = sum(1 for line in file if line.strip()) - 1  # minus the header
    windows = max(0, split_sizes(n_rows, split)[0] - seq_len - horizon + 1)
    return windows // batch_size if windows > batch_size else 1


def run_one(
    name: str, horizon: int, args: argparse.Namespace, *, dataset: LTSFDataset | None = None, path: str | None = None,
) -> BenchRow:
    """Fit and test one model at one horizon through the `attn` CLI; one table row.

    Sizes are set on the data only (`seq_len`, `pred_len`; `channels` from the file): the CLI links
    them to the model. With a dataset of the paper its scripts' settings are applied (and printed).
    """
    config = args.config_dir / f"{name}_etth1.yaml"
    dataset_name = dataset.name if dataset is not None else args.dataset
    overrides = [
        f"--data.init_args.pred_len={horizon}", f"--data.init_args.features={args.features}",
        f"--data.init_args.dataset_name={dataset_name}",
    ]
    if path is not None:
        overrides.append(f"--data.init_args.path={path}")
    settings, note = settings_for(dataset, name, horizon) if dataset is not None else (None, "")
    train_args = args
    if dataset is not None and settings is not None:
        seq_len = args.seq_len or settings.seq_len or dataset.seq_len
        epochs = settings.epochs
        if epochs is not None and args.max_epochs is not None:
            epochs = min(epochs, args.max_epochs)
            train_args = argparse.Namespace(**{**vars(args), "max_epochs": None})  # the cap is applied here
        overrides += settings_overrides(
            settings, seq_len=seq_len, horizon=horizon, epochs=epochs, path=path, split=dataset.split,
            max_steps=args.max_steps,
        )
        shown = replace(settings, seq_len=seq_len, epochs=epochs).describe()  # what runs, after the user's caps
        if args.set:
            note += f"; --set {' '.join(args.set)} wins over them"
        row_settings = {"seq_len": seq_len, "batch_size": settings.batch_size, "lr": settings.lr,
                        "settings": shown + note, "settings_source": settings.source}
        row_settings.update(_set_values(args.set))
        print(f"[ltsf] {dataset_name} {name} horizon {horizon}: settings {shown}{note} ({settings.source})", flush=True)
    else:
        if dataset is not None:  # a dataset of the paper without a script for this model (PatchTST on Exchange)
            overrides.append(f"--data.init_args.split={dataset.split}")
        if args.seq_len is not None:
            overrides.append(f"--data.init_args.seq_len={args.seq_len}")
        own = _config_settings(config)
        if args.seq_len is not None:
            own["seq_len"] = args.seq_len
        row_settings = {**own, **_set_values(args.set), "settings": "the config's own", "settings_source": str(config)}
        why = f" (no {name} script for {dataset_name})" if dataset is not None else ""
        print(f"[ltsf] {dataset_name} {name} horizon {horizon}: settings of {config.name}{why}: "
              + ", ".join(f"{k} {v}" for k, v in own.items()), flush=True)
    row, _ = train_row(config, train_args, overrides=overrides, dataset=dataset_name,
                       settings={"horizon": horizon, **row_settings}, name=name, tag="ltsf")
    published = dataset.published.get(name, {}).get(horizon) if dataset is not None and args.features == "M" else None
    if published and not row.error:
        mse = row.metrics["mse"]
        row.reference = {"paper_mse": published[0], "paper_mae": published[1],
                         "vs_paper": f"{100 * (mse - published[0]) / published[0]:+.1f}%"}
    return row


def _config_settings(config: Path) -> dict[str, Any]:
    """`seq_len`, `batch_size` and `lr` as a config sets them (what a dataset without settings runs)."""
    try:
        loaded = yaml.safe_load(config.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}  # the CLI reports an unreadable config itself
    data = (loaded.get("data") or {}).get("init_args") or {}
    optimizer = ((loaded.get("model") or {}).get("init_args") or {}).get("optimizer") or {}
    out = {"seq_len": data.get("seq_len"), "batch_size": data.get("batch_size"),
           "lr": (optimizer.get("init_args") or {}).get("lr")}
    return {k: v for k, v in out.items() if v is not None}


_SET_KEYS = {"seq_len": "data.init_args.seq_len", "batch_size": "data.init_args.batch_size",
             "lr": "model.init_args.optimizer.init_args.lr"}


def _set_values(items: list[str]) -> dict[str, Any]:
    """The table's `seq_len` / `batch_size` / `lr` columns as `--set` overrides them (the user's last word)."""
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        for column, cli_key in _SET_KEYS.items():
            if key.removeprefix("--") == cli_key:
                out[column] = yaml.safe_load(value)
    return out
