"""`attn-bench tagging`: the self-attention tagger against FCN, the short-chunk CNN and logistic regression.

    attn-bench tagging                                  # the rendered set (2,000 clips, seed 0), CPU configs
    attn-bench tagging --seed 1                         # a rendered set drawn with another seed
    attn-bench tagging --data-path data/mtat --format mtat --dataset MTAT
    attn-bench tagging --data-path my_songs --format folder

Every neural model trains through the same code path as `attn fit` with
`audio/configs/<model>_rendered.yaml` (data options overridden), for the configs' fixed step budget
(2000 steps, or `--max-steps`) without validation, and is tested on the final weights; runs go in
`--jobs` parallel processes of `--threads` threads. The logistic regression fits scikit-learn on
clip-level mel/MFCC statistics of the same training clips, in this process while the others train.
Every run lands in MLflow experiment `audio/tagging/<dataset>`; the table (test macro ROC-AUC and
PR-AUC over tags, parameters, training seconds; rendering and feature seconds underneath) is printed,
written with `--json` and logged to MLflow experiment `bench/tagging`.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from core.bench import BenchRow, add_training_arguments, bench_parser, report, train_row

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
NEURAL = {"tagger": "SelfAttentionTagger", "fcn": "FCN", "shortchunk": "ShortChunkCNN"}
MODELS = (*NEURAL, "logreg")
TARGET_ROC_AUC = 0.90


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    """Register `attn-bench tagging` (entry point of the `attn.bench` group)."""
    parser = bench_parser(subparsers, "tagging", help="self-attention music tagger vs FCN, short-chunk CNN, logistic regression", doc=__doc__)
    parser.add_argument("--data-path", default=None, help="an MTAT-layout folder or a folder with tags.csv (default: the rendered set)")
    parser.add_argument("--format", choices=["rendered", "mtat", "folder"], default=None,
                        help="format of --data-path (default: mtat when it holds annotations_final.csv, else folder)")
    parser.add_argument("--dataset", default=None, help="dataset name (MLflow experiment audio/tagging/<dataset>)")
    parser.add_argument("--seed", type=int, default=0, help="redraws the rendered set (and seeds training)")
    parser.add_argument("--num-clips", type=int, default=2000, help="clips of the rendered set")
    parser.add_argument("--max-compositions", type=int, default=None, help="render from the first N corpus scores only")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--jobs", type=int, default=2, help="neural runs trained in parallel processes")
    parser.add_argument("--cache-dir", default=None, help="rendered audio and mel cache (default ~/.cache/attn-suite/audio)")
    add_training_arguments(parser, root_dir=str(Path("checkpoints") / "bench-tagging"), threads=1)
    parser.set_defaults(func=run)


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """The TaggingDataModule arguments of this benchmark (the configs' data, with the bench's overrides)."""
    options: dict[str, Any] = {"seed": args.seed, "cache_dir": args.cache_dir}
    if args.data_path is None:
        options.update(format="rendered", num_clips=args.num_clips, max_compositions=args.max_compositions)
    else:
        fmt = args.format or ("mtat" if (Path(args.data_path) / "annotations_final.csv").exists() else "folder")
        options.update(format=fmt, path=str(args.data_path))
    if args.dataset:
        options["dataset_name"] = args.dataset
    return options


def run(args: argparse.Namespace) -> None:
    """Prepare the data once, train every model, print the table and the claims."""
    from audio.data import TaggingDataModule

    options = data_options(args)
    data = TaggingDataModule(**{**_config_data(CONFIG_DIR / "tagger_rendered.yaml"), **options, **_data_overrides(args)})
    start = time.perf_counter()
    data.setup()  # renders and computes the mel cache once, before the parallel runs
    prepare_seconds = time.perf_counter() - start
    counts = data.data_counts()
    print(f"[tagging] {data.dataset_name}: {counts['train_clips']}/{counts['val_clips']}/{counts['test_clips']} clips, "
          f"{data.num_tags} tags; data ready in {prepare_seconds:.0f} s ({counts['skipped_files']} skipped, "
          f"{counts['missing_files']} missing, {counts['padded_clips']} padded)", flush=True)
    if not args.no_mlflow:
        from core.tracking import create_store

        create_store()
    rows: list[BenchRow] = []
    neural = [m for m in args.models if m in NEURAL]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_neural, m, options, data.num_tags, data.dataset_name, args) for m in neural]
        if "logreg" in args.models:
            rows.append(run_logistic_regression(data, args))
        rows = [f.result() for f in futures] + rows
    notes = [
        f"{data.dataset_name}: {counts['train_clips']}/{counts['val_clips']}/{counts['test_clips']} train/val/test clips"
        + (" (composition-disjoint)" if options["format"] == "rendered" else "") + f", {data.num_tags} tags, seed {args.seed}; "
        f"rendering + log-mel features {prepare_seconds:.0f} s (0 when cached)",
        "roc_auc / pr_auc: macro over tags of the whole test split (tags with one class in the split left out); "
        f"clip scores average {data.eval_windows} windows of {data.input_seconds:g} s",
        f"seconds = training time of one run ({args.jobs} parallel jobs x {args.threads} thread(s)); "
        "no validation during the bench runs, the final weights are tested",
        *claims(rows),
        *per_tag_lines(rows, data.tags),
    ]
    columns = ["model", "role", "dataset", "roc_auc", "pr_auc", "tags_scored", "params", "steps", "seconds"]
    report(rows, experiment="bench/tagging", title=f"tagging {data.dataset_name} (seed {args.seed})", json_path=args.json,
           columns=columns, log_mlflow=not args.no_mlflow, notes=notes, budget=args)


def _config_data(config: Path) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load(config.read_text())["data"]["init_args"])


def _data_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The `--set data.init_args.<name>=<value>` items, so the data prepared here is the data the runs read."""
    import yaml

    out = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key.startswith("data.init_args."):
            out[key.removeprefix("data.init_args.")] = yaml.safe_load(value)
    return out


def run_neural(name: str, options: dict[str, Any], num_tags: int, dataset: str, args: argparse.Namespace) -> BenchRow:
    """Fit and test one neural model through the `attn` CLI (runs in a worker process)."""
    overrides = [f"--seed_everything={args.seed}", f"--model.init_args.model.init_args.num_tags={num_tags}",
                 "--data.init_args.progress=false", "--data.init_args.render_workers=1"]
    overrides += [f"--data.init_args.{key}={value}" for key, value in options.items() if value is not None]
    row, _ = train_row(CONFIG_DIR / f"{name}_rendered.yaml", args, overrides=overrides, dataset=dataset,
                       settings={"seed": args.seed}, name=name, validate=False, tag="tagging")
    row.config = name
    return row


def run_logistic_regression(data: Any, args: argparse.Namespace) -> BenchRow:
    """Fit the logistic regression on the training clips' statistics, test it, log it like the CLI runs."""
    from audio.models.logistic_regression import LogisticRegressionTagger
    from audio.tasks import macro_tag_scores

    model = LogisticRegressionTagger(seed=args.seed)
    start = time.perf_counter()
    train = model.features([data.train_set.full(i) for i in range(len(data.train_set))])
    model.fit(train, data.train_set.labels)
    seconds = time.perf_counter() - start
    test = model.features([data.test_set.full(i) for i in range(len(data.test_set))])
    metrics = macro_tag_scores(model.predict_proba(test), data.test_set.labels, data.tags)
    if not args.no_mlflow:
        log_baseline_run("LogisticRegression", metrics, data, args, params={"C": model.C, "n_mfcc": model.n_mfcc})
    print(f"[tagging] LogisticRegression: test {metrics} ({seconds:.1f} s)", flush=True)
    return BenchRow(model="LogisticRegression", role="baseline", dataset=data.dataset_name, config="logreg",
                    params=model.num_parameters(), seconds=round(seconds, 1), metrics=metrics, settings={"seed": args.seed})


def log_baseline_run(model: str, metrics: dict[str, float], data: Any, args: argparse.Namespace, params: dict[str, Any]) -> None:
    """One MLflow run in the task's experiment (`audio/tagging/<dataset>`) with the suite's tags and `test/*` metrics."""
    from mlflow.tracking import MlflowClient

    from audio.tasks import TaggingTask
    from core.tracking import default_tracking_uri, local_artifact_location

    client = MlflowClient(default_tracking_uri())
    experiment = TaggingTask.experiment_name(data.dataset_name)
    found = client.get_experiment_by_name(experiment)
    exp_id = found.experiment_id if found else client.create_experiment(experiment, artifact_location=local_artifact_location(experiment))
    tags = {"domain": TaggingTask.domain, "task": TaggingTask.task_name, "model": model, "role": "baseline", "kernel": "none",
            "dataset": data.dataset_name, "seed": str(args.seed), "subcommand": "bench"}
    run = client.create_run(exp_id, run_name=model, tags=tags)
    for key, value in {**params, "data.format": data.format, "data.seed": data.seed, **data.data_counts()}.items():
        client.log_param(run.info.run_id, key, value)
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, f"test/{key}", value)
    client.set_terminated(run.info.run_id)


def per_tag_lines(rows: list[BenchRow], tags: list[str]) -> list[str]:
    """The test ROC-AUC of every tag and model (where the macro mean hides which tags a model misses)."""
    scored = [r for r in rows if not r.error and any(f"roc_auc_{t}" in r.metrics for t in tags)]
    if not scored:
        return []
    width = max(len(t) for t in tags)
    columns = [max(len(r.model), 5) for r in scored]
    lines = ["per-tag test roc_auc:", f"  {'':<{width}}  " + "  ".join(f"{r.model:>{c}}" for r, c in zip(scored, columns, strict=True))]
    for tag in tags:
        values = "  ".join(f"{r.metrics.get(f'roc_auc_{tag}', float('nan')):>{c}.3f}" for r, c in zip(scored, columns, strict=True))
        lines.append(f"  {tag:<{width}}  {values}")
    return lines


def claims(rows: list[BenchRow]) -> list[str]:
    """The issue's targets, stated against the measured numbers."""
    by = {r.model: r.metrics for r in rows if not r.error}
    tagger = by.get("SelfAttentionTagger", {}).get("roc_auc")
    if tagger is None:
        return []
    notes = [f"target SelfAttentionTagger roc_auc >= {TARGET_ROC_AUC}: {'met' if tagger >= TARGET_ROC_AUC else 'MISSED'} ({tagger:.3f})"]
    if "roc_auc" in by.get("LogisticRegression", {}):
        lr = by["LogisticRegression"]["roc_auc"]
        notes.append(f"target SelfAttentionTagger above LogisticRegression: {'met' if tagger > lr else 'MISSED'} ({tagger:.3f} vs {lr:.3f})")
    for other in ("FCN", "ShortChunkCNN"):
        if "roc_auc" in by.get(other, {}):
            value = by[other]["roc_auc"]
            word = "above" if tagger > value else "below" if tagger < value else "equal to"
            notes.append(f"SelfAttentionTagger is {word} {other}: roc_auc {tagger:.3f} vs {value:.3f} "
                         f"(pr_auc {by['SelfAttentionTagger'].get('pr_auc', float('nan')):.3f} vs {by[other].get('pr_auc', float('nan')):.3f})")
    return notes

