"""`attn-bench ctr`: Hiformer against the classic CTR baselines, trained the same way.

    attn-bench ctr                                   # embedded planted-interaction click log
    attn-bench ctr --dataset criteo                  # ../shared/data/recsys/criteo_sample.txt
    attn-bench ctr --dataset avazu --json ctr_avazu.json
    attn-bench ctr --dataset mydata --data-path clicks.csv --format csv --set data.init_args.label=clicked
    attn-bench ctr --format libfm --data-path data/frappe     # a folder of split files, used as given

Every model is trained through the same code path as `attn fit`, from its config in
`recsys/configs/<model>_synthetic.yaml` (same embedding size 16, Adam lr 1e-3, batch 512, early
stopping on validation AUC, seed), with the data overridden for other datasets; it is tested on its
best-validation-AUC checkpoint (AUC and log loss over the whole test split). A folder `--data-path`
holds predefined splits (FuxiCTR's `train.csv` / `valid.csv` / `test.csv`, NFM's `*.train.libfm` /
`*.validation.libfm` / `*.test.libfm`), used as given; a file is split at random with the seed. The
split protocol is printed under the table and logged as the MLflow param `split_protocol`. Then, side by side in
one process, the inference latency of every trained model is measured on the CPU at batch sizes 1
and 1024 (rounds interleaved across models, median of the rounds), reported per 1,000 rows.
The table is printed, written with `--json`, and logged to MLflow experiment `bench/ctr`; each
training run also lands in `recsys/ctr/<dataset>`. On the synthetic data the issue's claims are checked
and printed below the table (Hiformer within 0.005 AUC of the best, above LR and FM; the serving
variant >= 1.5x faster than full Hiformer with an AUC loss under 0.002).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from core.bench import BenchRow, add_training_arguments, bench_parser, report, train_row

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "recsys"
MODELS = ("lr", "fm", "dnn", "dcnv2", "autoint", "transformer", "hiformer", "hiformer_fast")
SAMPLES = {"criteo": "criteo_sample.txt", "avazu": "avazu_sample.txt", "movielens": "movielens_sample.txt"}
FORMATS = ("criteo", "avazu", "movielens", "libfm", "csv")


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register `attn-bench ctr` (entry point of the `attn.bench` group)."""
    parser = bench_parser(subparsers, "ctr", help="Hiformer vs LR/FM/DNN/DCN-v2/AutoInt/Transformer on click logs (AUC, log loss, latency)", doc=__doc__)
    parser.add_argument("--dataset", default=None, help="synthetic (embedded generator, the default), criteo, avazu, movielens (the shared samples by default) or any name with --data-path (default: its file or folder name)")
    parser.add_argument("--data-path", default=None, help="click-log file, folder of split files (train / valid|validation|val / test in the names) or MovieLens-1M folder")
    parser.add_argument("--format", choices=FORMATS, default=None, help="file format (default: the dataset name when it is a format)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--rows", type=int, default=None, help="rows drawn from the synthetic generator (default: the configs')")
    parser.add_argument("--latency-rounds", type=int, default=5, help="interleaved timing rounds (median reported)")
    parser.add_argument("--config-dir", type=Path, default=CONFIG_DIR)
    add_training_arguments(parser, root_dir="checkpoints/ctr")
    parser.set_defaults(func=run)


def dataset_name(args: argparse.Namespace) -> str:
    """`--dataset`, or the name of the `--data-path` file or folder, or `synthetic`."""
    if args.dataset is not None:
        return args.dataset
    return Path(args.data_path).stem if args.data_path is not None else "synthetic"


def data_arguments(args: argparse.Namespace) -> list[str]:
    """CLI overrides that point every config at the requested data."""
    dataset = dataset_name(args)
    if dataset == "synthetic" and args.data_path is None:
        out = [f"--data.init_args.synthetic_rows={args.rows}"] if args.rows else []
        return out
    fmt = args.format or (dataset if dataset in FORMATS else None)
    if fmt is None:
        raise SystemExit(f"attn-bench ctr: --dataset {dataset} needs --format ({'|'.join(FORMATS)})")
    path = args.data_path
    if path is None:
        if dataset not in SAMPLES:
            raise SystemExit(f"attn-bench ctr: --dataset {dataset} needs --data-path")
        path = str((SHARED_DATA / SAMPLES[dataset]).resolve())
        if not Path(path).exists():
            raise SystemExit(f"attn-bench ctr: {path} not found; pass --data-path")
    return [f"--data.init_args.format={fmt}", f"--data.init_args.path={path}", f"--data.init_args.dataset_name={dataset}"]


def run(args: argparse.Namespace) -> None:
    """Train and test every requested model, time them side by side, report the table."""
    args.dataset = dataset_name(args)
    data_args = data_arguments(args)
    rows, trained, protocols = [], {}, []
    for name in args.models:
        row, fitted = train_row(args.config_dir / f"{name}_synthetic.yaml", args, overrides=data_args,
                             dataset=args.dataset, name=name, tag="ctr")
        rows.append(row)
        if fitted is not None:
            data = fitted.trainer.datamodule
            trained[name] = (fitted.task.model.eval(), data.datasets["test"])
            row.settings["split_protocol"] = data.split_protocol  # an MLflow param of the row
            protocols.append(f"splits: {data.split_protocol}; rows train/val/test "
                             f"{'/'.join(str(len(data.datasets[s])) for s in ('train', 'val', 'test'))}, {data.layout.num_fields} fields"
                             + (f" (libFM layout {data.libfm_read})" if data.libfm_read else ""))
    if trained:
        latency = measure_latency(trained, args.latency_rounds)
        for row in rows:
            row.measures.update(latency.get(row.config, {}))
    notes = [
        *dict.fromkeys(protocols),  # one line when every run read the same data
        "roc_auc/logloss over the whole test split at the best validation-AUC checkpoint; seconds = training wall time",
        f"ms_per_1k_b1 / ms_per_1k_b1024: CPU inference per 1,000 rows at batch 1 / 1024, median of {args.latency_rounds} interleaved rounds, same process (the machine is named in the title)",
        *claims(rows, args.dataset),
    ]
    report(
        rows, experiment="bench/ctr", title=f"CTR {args.dataset}", json_path=args.json,
        columns=["config", "model", "role", "roc_auc", "logloss", "params", "epochs", "seconds", "ms_per_1k_b1", "ms_per_1k_b1024"],
        log_mlflow=not args.no_mlflow, notes=notes, budget=args,
    )


def _batch(dataset: Any, size: int) -> dict[str, torch.Tensor]:
    rows = [i % len(dataset) for i in range(size)]
    batch = dataset[rows]
    batch.pop("label", None)
    return batch


@torch.no_grad()
def measure_latency(trained: dict[str, tuple[Any, Any]], rounds: int) -> dict[str, dict[str, float]]:
    """ms per 1,000 rows at batch 1 and 1024; every round times every model once (interleaved)."""
    sizes = {"ms_per_1k_b1": (1, 50), "ms_per_1k_b1024": (1024, 2)}  # (batch size, calls per timing)
    times: dict[str, dict[str, list[float]]] = {n: {k: [] for k in sizes} for n in trained}
    batches = {n: {k: _batch(data, b) for k, (b, _) in sizes.items()} for n, (_, data) in trained.items()}
    for name, (model, _) in trained.items():  # warm-up
        for key in sizes:
            model(batches[name][key])
    for _ in tqdm(range(rounds), desc="latency rounds"):
        for name, (model, _) in trained.items():
            for key, (size, calls) in sizes.items():
                start = time.perf_counter()
                for _ in range(calls):
                    model(batches[name][key])
                times[name][key].append((time.perf_counter() - start) / (calls * size) * 1e6)  # ms per 1k rows
    return {n: {k: round(sorted(v)[len(v) // 2], 3) for k, v in t.items()} for n, t in times.items()}


def claims(rows: list[BenchRow], dataset: str) -> list[str]:
    """The issue's checks, as lines under the table (PASS / FAIL with the numbers)."""
    by = {r.config: r for r in rows if r.metrics}
    auc = {n: r.metrics["roc_auc"] for n, r in by.items()}
    lines = []
    if "hiformer" in auc and dataset == "synthetic":
        best_name = max(auc, key=auc.get)
        gap = auc[best_name] - auc["hiformer"]
        lines.append(f"claim Hiformer AUC within 0.005 of the best ({best_name} {auc[best_name]:.4f}): gap {gap:.4f} -> {'PASS' if gap <= 0.005 else 'FAIL'}")
        for base in ("lr", "fm"):
            if base in auc:
                lift = auc["hiformer"] - auc[base]
                lines.append(f"claim Hiformer above {base.upper()}: +{lift:.4f} AUC -> {'PASS' if lift > 0.01 else 'FAIL'}")
    if "hiformer" in by and "hiformer_fast" in by and "ms_per_1k_b1024" in by["hiformer"].measures:
        full, fast = by["hiformer"].measures, by["hiformer_fast"].measures
        loss = auc["hiformer"] - auc["hiformer_fast"]
        for key in ("ms_per_1k_b1024", "ms_per_1k_b1"):
            speedup = full[key] / fast[key]
            lines.append(f"claim serving speedup at batch {key.rsplit('b', 1)[1]}: {speedup:.2f}x -> {'PASS' if speedup >= 1.5 else 'FAIL'} (>= 1.5x)")
        lines.append(f"claim serving AUC loss: {loss:+.4f} -> {'PASS' if loss < 0.002 else 'FAIL'} (< 0.002)")
    return lines
