"""`attn-bench molecules`: R-MAT against MAT and fingerprint / descriptor random forests.

    attn-bench molecules --dataset ESOL --split random --seeds 0 1 2
    attn-bench molecules --dataset BBBP --split scaffold --seeds 0 1 2
    attn-bench molecules --dataset mine --data-path mine.csv --smiles-column smiles \\
        --target-columns logS --task-type regression --json mine.json

Models: `rmat` (R-MAT), `rmat_plain` (the ablation: R-MAT with plain attention over the same atom
features, relative attention off), `mat` (MAT), `rf_ecfp4` (random forest on ECFP4) and
`rf_descriptors` (random forest on RDKit 2D descriptors). Every (model, seed) trains on the same
seeded split (80/10/10) and is tested once; the neural models go through the same code path as
`attn fit` with `molecules/configs/<model>_<esol|bbbp>.yaml` (data options overridden), testing
the best-validation checkpoint, in `--jobs` parallel processes of `--threads` threads each.
Every run lands in MLflow experiment `molecules/property/<dataset>`; the table of mean and standard
deviation over seeds, featurization time included, is printed, written with `--json` and
logged to MLflow experiment `bench/molecules`.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from core.bench import BenchRow, add_training_arguments, bench_parser, report, train_row

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "molecules"
NEURAL = {"rmat": "R-MAT", "rmat_plain": "R-MAT (relative off)", "mat": "MAT"}
FORESTS = {"rf_ecfp4": "RF on ECFP4", "rf_descriptors": "RF on RDKit 2D"}
MODELS = (*NEURAL, *FORESTS)

# dataset -> (file, task type, split, target candidates): the first candidate present is used
KNOWN: dict[str, tuple[Path | None, str, str, tuple[str, ...]]] = {
    "ESOL": (None, "regression", "random", ("measured log solubility in mols per litre",)),
    "BBBP": (SHARED_DATA / "BBBP.csv", "classification", "scaffold", ("p_np", "BBBP")),
}


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register `attn-bench molecules` (entry point of the `attn.bench` group)."""
    parser = bench_parser(subparsers, "molecules", help="R-MAT vs MAT and fingerprint / descriptor random forests (MoleculeNet CSVs)", doc=__doc__)
    parser.add_argument("--dataset", default="ESOL", help="name: MLflow experiment molecules/property/<dataset>; ESOL and BBBP have defaults")
    parser.add_argument("--data-path", default=None, help="MoleculeNet-style CSV (default: embedded ESOL, or ../shared/data/molecules/BBBP.csv)")
    parser.add_argument("--smiles-column", default="smiles")
    parser.add_argument("--target-columns", nargs="+", default=None, help="target column(s) (default: the dataset's)")
    parser.add_argument("--task-type", choices=["regression", "classification"], default=None)
    parser.add_argument("--split", choices=["random", "scaffold"], default=None, help="default: random for regression, scaffold for classification")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--jobs", type=int, default=2, help="neural runs trained in parallel processes")
    parser.add_argument("--trees", type=int, default=500, help="trees per random forest (MoleculeNet: 500)")
    parser.add_argument("--cache-dir", default=None, help="featurization cache (default ~/.cache/attn-suite/molecules)")
    add_training_arguments(parser, root_dir=str(Path("checkpoints") / "bench-molecules"), threads=1)
    parser.set_defaults(func=run)


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Path, task type, split and target columns of the requested dataset."""
    from molecules.data.datamodule import EMBEDDED_ESOL

    known = KNOWN.get(args.dataset)
    if args.data_path is None and known is None:
        raise SystemExit(f"attn-bench molecules: --dataset {args.dataset} needs --data-path (known: {sorted(KNOWN)})")
    path = Path(args.data_path) if args.data_path else (known[0] or EMBEDDED_ESOL)
    task_type = args.task_type or (known[1] if known else "regression")
    split = args.split or (known[2] if known else ("random" if task_type == "regression" else "scaffold"))
    targets = args.target_columns
    if targets is None:
        if known is None:
            raise SystemExit("attn-bench molecules: --target-columns is required with --data-path")
        import pandas as pd

        columns = list(pd.read_csv(path, nrows=1).columns)
        found = [c for c in known[3] if c in columns]
        if not found:
            raise SystemExit(f"attn-bench molecules: {path}: none of {list(known[3])} in columns {columns}")
        targets = found[:1]
    return {"path": str(path), "task_type": task_type, "split": split, "targets": list(targets)}


def run(args: argparse.Namespace) -> None:
    """Featurize once, run every (model, seed), report mean and std over seeds."""
    from molecules.data import MoleculeDataModule

    spec = resolve(args)
    data = MoleculeDataModule(path=spec["path"], dataset_name=args.dataset, smiles_column=args.smiles_column,
                              target_columns=spec["targets"], task_type=spec["task_type"], split=spec["split"],
                              cache_dir=args.cache_dir)
    data.setup()  # featurizes (or reads the cache) once, before the parallel runs
    stats = data.featurize_stats
    print(f"[molecules] {args.dataset}: {len(data.train_set)}/{len(data.val_set)}/{len(data.test_set)} molecules, "
          f"{data.skipped_rows} skipped; featurized in {data.featurize_seconds:.1f} s "
          f"({stats.computed} computed, {stats.cached} from cache, {stats.fallbacks} conformer fallbacks)", flush=True)
    if not args.no_mlflow:
        from core.tracking import create_store

        create_store()
    runs: list[BenchRow] = []
    neural = [(m, s) for m in args.models if m in NEURAL for s in args.seeds]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_neural, m, s, spec, args) for m, s in neural]
        for name in args.models:  # forests run here while the neural runs train
            if name in FORESTS:
                runs += run_forest(name, spec, args)
        runs += [f.result() for f in futures]
    rows = summarize(runs, args, spec)
    metric = "rmse" if spec["task_type"] == "regression" else "roc_auc"
    notes = [
        f"{spec['split']} split 80/10/10, seeds {args.seeds}; test {metric} mean and std over seeds; "
        f"seconds = mean training time of one run ({args.jobs} parallel jobs x {args.threads} thread(s))",
        f"featurization: {data.featurize_seconds:.1f} s for {len(data.train_set) + len(data.val_set) + len(data.test_set)} "
        f"molecules ({stats.computed} computed, {stats.cached} cached, {stats.fallbacks} conformer fallbacks, "
        f"{data.skipped_rows} rows skipped)",
        *target_notes(rows, spec["task_type"]),
    ]
    std = f"{metric}_std"
    columns = ["model", "role", "dataset", "split", "seeds", metric, std]
    columns += ["mae", "mae_std"] if metric == "rmse" else []
    report(rows, experiment="bench/molecules", title=f"molecules {args.dataset} ({spec['split']} split)",
           json_path=args.json, columns=[*columns, "params", "epochs", "seconds"], log_mlflow=not args.no_mlflow, notes=notes, budget=args)


def run_neural(name: str, seed: int, spec: dict[str, Any], args: argparse.Namespace) -> BenchRow:
    """Fit and test one neural model through the `attn` CLI (runs in a worker process)."""
    base = "rmat" if name == "rmat_plain" else name
    suffix = "esol" if spec["task_type"] == "regression" else "bbbp"
    m = "--model.init_args.model.init_args"
    overrides = [
        f"--seed_everything={seed}",
        f"--data.init_args.path={spec['path']}", f"--data.init_args.dataset_name={args.dataset}",
        f"--data.init_args.smiles_column={args.smiles_column}",
        f"--data.init_args.target_columns={spec['targets']}", f"--data.init_args.task_type={spec['task_type']}",
        f"--data.init_args.split={spec['split']}", f"--data.init_args.seed={seed}",
        "--data.init_args.featurize_workers=1", f"--model.init_args.task_type={spec['task_type']}",
        f"{m}.outputs={len(spec['targets'])}",
        *([f"--data.init_args.cache_dir={args.cache_dir}"] if args.cache_dir is not None else []),
    ]
    if name == "rmat_plain":
        overrides.append(f"{m}.relative=false")
    row, _ = train_row(CONFIG_DIR / f"{base}_{suffix}.yaml", args, overrides=overrides, dataset=args.dataset,
                       settings={"seed": seed}, name=f"{name}-{seed}", tag="molecules")
    row.config = name
    return row


def run_forest(name: str, spec: dict[str, Any], args: argparse.Namespace) -> list[BenchRow]:
    """Fit and test one random forest per seed (the seed's split), logging each to MLflow like the CLI runs."""
    from molecules.data import MoleculeDataModule
    from molecules.models.descriptor_rf import DescriptorRF
    from molecules.models.fingerprint_rf import FingerprintRF
    from molecules.tasks import evaluate_split

    cls = FingerprintRF if name == "rf_ecfp4" else DescriptorRF
    features: dict[str, np.ndarray] = {}
    rows = []
    for seed in args.seeds:
        data = MoleculeDataModule(path=spec["path"], dataset_name=args.dataset, smiles_column=args.smiles_column,
                                  target_columns=spec["targets"], task_type=spec["task_type"], split=spec["split"],
                                  seed=seed, precompute=False, cache_dir=args.cache_dir)
        data.setup()  # the same split as the neural runs of this seed
        forest = cls(task_type=spec["task_type"], n_estimators=args.trees, seed=seed, n_jobs=1)
        (train_smiles, _, test_smiles), (train_y, _, test_y) = data.split_smiles, data.split_targets
        missing = [s for s in train_smiles + test_smiles if s not in features]
        if missing:  # the representation is computed once per molecule, not once per seed
            features.update(zip(missing, forest.featurize(missing), strict=True))
        start = time.perf_counter()
        forest.fit_features(np.stack([features[s] for s in train_smiles]), train_y)
        seconds = time.perf_counter() - start
        prediction = forest.predict_features(np.stack([features[s] for s in test_smiles]))
        label_mask = ~np.isnan(test_y)
        metrics = evaluate_split(spec["task_type"], prediction, np.nan_to_num(test_y), label_mask)
        if not args.no_mlflow:
            log_forest_run(cls.__name__, seed, metrics, args.dataset, spec, args.trees)
        print(f"[molecules] {name} seed {seed}: {metrics} ({seconds:.0f} s)", flush=True)
        rows.append(BenchRow(model=cls.__name__, role="baseline", dataset=args.dataset, config=name,
                             seconds=seconds, metrics=metrics, settings={"seed": seed}))
    return rows


def log_forest_run(model: str, seed: int, metrics: dict[str, float], dataset: str, spec: dict[str, Any], trees: int) -> None:
    """One MLflow run in the task's experiment (`molecules/property/<dataset>`) with the suite's tags and `test/*` metrics."""
    from mlflow.tracking import MlflowClient

    from core.tracking import default_tracking_uri, local_artifact_location
    from molecules.tasks import MoleculePropertyTask

    client = MlflowClient(default_tracking_uri())
    experiment = MoleculePropertyTask.experiment_name(dataset)
    found = client.get_experiment_by_name(experiment)
    exp_id = found.experiment_id if found else client.create_experiment(
        experiment, artifact_location=local_artifact_location(experiment))
    tags = {"domain": "molecules", "task": MoleculePropertyTask.task_name, "model": model, "role": "baseline", "kernel": "none", "dataset": dataset,
            "seed": str(seed)}
    run = client.create_run(exp_id, run_name=model, tags=tags)
    for key, value in {"split": spec["split"], "targets": ",".join(spec["targets"]), "n_estimators": trees}.items():
        client.log_param(run.info.run_id, key, value)
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, f"test/{key}", value)
    client.set_terminated(run.info.run_id)


def summarize(runs: list[BenchRow], args: argparse.Namespace, spec: dict[str, Any]) -> list[BenchRow]:
    """One row per model: mean and standard deviation (ddof 0) of each test metric over seeds."""
    rows = []
    for name in args.models:
        mine = [r for r in runs if r.config == name]
        done = [r for r in mine if not r.error]
        metrics: dict[str, float] = {}
        for key in sorted({k for r in done for k in r.metrics}):
            values = np.array([r.metrics[key] for r in done if key in r.metrics])
            metrics[key], metrics[f"{key}_std"] = float(values.mean()), float(values.std())
        errors = [f"seed {r.settings['seed']}: {r.error}" for r in mine if r.error]
        rows.append(BenchRow(
            model=NEURAL.get(name) or FORESTS[name], role=done[0].role if done else None, dataset=args.dataset,
            config=name, params=done[0].params if done else None,
            seconds=round(float(np.mean([r.seconds for r in done])), 1) if done else None,
            epochs=round(float(np.mean([r.epochs for r in done]))) if done and done[0].epochs is not None else None,
            metrics=metrics, settings={"split": spec["split"], "seeds": len(done)},
            reference={"per_seed": {r.settings["seed"]: r.metrics for r in done}},
            error="; ".join(errors) or None,
        ))
    return rows


def target_notes(rows: list[BenchRow], task_type: str) -> list[str]:
    """Plain statements of the issue's targets against the measured means."""
    by = {r.model: r.metrics for r in rows}
    rmat, rf = by.get("R-MAT", {}), by.get("RF on ECFP4", {})
    if task_type != "regression" or "rmse" not in rmat:
        return []
    notes = [f"target R-MAT rmse <= 0.65: {'met' if rmat['rmse'] <= 0.65 else 'MISSED'} ({rmat['rmse']:.3f})"]
    if "rmse" in rf:
        below = rmat["rmse"] < rf["rmse"]
        notes.append(f"target R-MAT below RF on ECFP4: {'met' if below else 'MISSED'} ({rmat['rmse']:.3f} vs {rf['rmse']:.3f})")
    return notes
