"""`attn-bench`: every benchmark of the suite as a subcommand, each printing and logging a table.

Domains register subcommands through the `attn.bench` entry-point group in pyproject.toml; each
entry point is a function `add_subcommand(subparsers)` that adds a parser with
`set_defaults(func=run)`. A benchmark is made of three shared pieces:

- `add_training_arguments(parser)`: the options of every training benchmark (`--set`,
  `--max-epochs`, `--max-steps`, `--max-seconds`, `--threads`, `--root-dir`);
- `train_row(config, ...)`: trains one config through the `attn` CLI (`core.cli.fit_and_test`)
  and returns a typed `BenchRow`; a failure becomes a row with `error` set, not a crash;
- `report(rows, ...)`: the printed table, the `--json` file and an MLflow run (one nested run per
  row); it exits non-zero after printing when a row failed.

A domain's bench file keeps only what is its own: which configs, the published numbers, the claims.
"""

from __future__ import annotations

import argparse
import json
import platform
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import torch


@dataclass
class BenchRow:
    """One row of a benchmark table.

    Attributes:
        model: the model's class name (e.g. `DLinear`), or the measured thing (a kernel name).
        role: `baseline` or `model`.
        dataset: the dataset's own name (`ETTh1`, `LOL`, `Set5`).
        config: the config (file stem or variant name) the row was trained from.
        params: trainable parameters.
        seconds: training seconds (fit only, test excluded); for a pure measurement, its time.
        epochs: epochs completed in training.
        steps: optimizer steps completed in training.
        metrics: test-split metrics under the shared names without the `test/` prefix (`mse`,
            `psnr`, `roc_auc`); logged to MLflow as `test/<name>`.
        measures: cost and speed measurements (`latency_ms`, `peak_gib`, `gmacs`, `tflops`);
            logged to MLflow under their own names.
        settings: what distinguishes this row from the others (horizon, scale, seed, split,
            sequence length); logged as MLflow params.
        reference: published numbers and comparisons with them (`paper_mse`, `vs_paper`).
        error: why the row failed (then its numbers are missing).
    """

    model: str
    role: str | None = None
    dataset: str = ""
    config: str = ""
    params: int | None = None
    seconds: float | None = None
    epochs: int | None = None
    steps: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    measures: dict[str, float | None] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def flat(self) -> dict[str, Any]:
        """The row as one dict of table columns (settings, metrics, measures and reference inlined)."""
        out: dict[str, Any] = {"model": self.model, "role": self.role, "dataset": self.dataset, "config": self.config}
        out.update(self.settings)
        out.update({"params": self.params, "epochs": self.epochs, "steps": self.steps, "seconds": self.seconds})
        out.update(self.metrics)
        out.update(self.measures)
        out.update(self.reference)
        if self.error:
            out["error"] = self.error
        return out


def hardware() -> str:
    """The machine a benchmark ran on, for its table and tags."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def bench_parser(subparsers: argparse._SubParsersAction, name: str, *, help: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser of `attn-bench <name>`: `help` in the list of benchmarks, the module docstring `doc` in its --help."""
    return subparsers.add_parser(name, help=help, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every subcommand has."""
    parser.add_argument("--json", type=Path, default=None, help="write the table as a JSON list of rows to this path")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log the table to MLflow")


def add_training_arguments(parser: argparse.ArgumentParser, *, root_dir: str, threads: int | None = None) -> None:
    """Options of every benchmark that trains configs through the `attn` CLI (and `add_common_arguments`)."""
    parser.add_argument(
        "--set", nargs="+", default=[], metavar="KEY=VALUE",
        help="extra Lightning CLI arguments for every trained run, without the leading dashes, e.g. "
        "trainer.limit_train_batches=10 or model.init_args.model.init_args.kernel=math",
    )
    parser.add_argument("--max-epochs", type=int, default=None, help="cap on the configs' epochs (a shorter run than the paper's)")
    parser.add_argument("--max-steps", type=int, default=None, help="train each run for at most this many optimizer steps (a budget that does not depend on the machine's load)")
    parser.add_argument("--max-seconds", type=float, default=None, help="wall-clock cap per trained run (results then depend on the machine's load; prefer --max-steps)")
    parser.add_argument("--threads", type=int, default=threads, help="torch CPU threads" + (" (default: torch's choice)" if threads is None else ""))
    parser.add_argument("--root-dir", default=root_dir, help="where checkpoints are written")
    add_common_arguments(parser)


def budget_arguments(args: argparse.Namespace, config_epochs: int | None = None) -> list[str]:
    """The Trainer overrides of `--max-epochs/--max-steps/--max-seconds` (a cap never lengthens a config's run)."""
    out = []
    if args.max_epochs is not None and (config_epochs is None or config_epochs < 0 or args.max_epochs < config_epochs):
        out.append(f"--trainer.max_epochs={args.max_epochs}")
    if args.max_steps is not None:
        out.append(f"--trainer.max_steps={args.max_steps}")
    if args.max_seconds is not None:
        out.append(f"--trainer.max_time={{'seconds': {int(args.max_seconds)}}}")
    return out


def budget_notes(args: argparse.Namespace) -> list[str]:
    """Lines under a table that say how the runs were shortened or changed (`report(..., budget=args)`)."""
    notes = []
    if args.max_epochs is not None:
        notes.append(f"epochs capped at {args.max_epochs}")
    if args.max_steps is not None:
        notes.append(f"steps capped at {args.max_steps}")
    if args.max_seconds is not None:
        notes.append(f"wall time capped at {args.max_seconds:.0f} s per run")
    if args.set:
        notes.append(f"overrides: {' '.join(args.set)}")
    return notes or ["training budgets as in the configs (no --max-epochs / --max-steps / --max-seconds cap, no --set)"]


@dataclass
class Trained:
    """What `train_row` trained, for measurements after training (latency of the trained model)."""

    task: Any  # core.task.BaseTask
    trainer: Any  # lightning.Trainer


def train_row(
    config: Path | str, args: argparse.Namespace, *, overrides: Sequence[str] = (), dataset: str = "",
    settings: dict[str, Any] | None = None, name: str | None = None, validate: bool = True,
    on_built: Callable[[Any], dict[str, float | None]] | None = None, tag: str = "bench",
) -> tuple[BenchRow, Trained | None]:
    """Train `config` through the `attn` CLI exactly as `attn fit` would, test it, and return its row.

    Args:
        config: the YAML config of the run.
        args: the parsed benchmark options (`add_training_arguments`): `--set`, budgets, threads, root dir.
        overrides: the benchmark's own CLI arguments for this run (data path, horizon, ...).
        dataset: the dataset's name for the row.
        settings: what distinguishes this row (horizon, scale, seed); also printed.
        name: the row's `config` (default: the config's file stem).
        validate: True keeps the config's validation and tests the best checkpoint by its
            `checkpoint.monitor`; False trains without validation (a pure step or time budget) and
            tests the final weights.
        on_built: called with the built task before training; its dict goes to `row.measures`
            (cost of the untrained model: parameters, GMACs, latency).
        tag: prefix of the printed progress lines.

    Returns the row (with `error` set when anything failed) and the trained task and trainer.
    """
    from core.cli import fit_and_test

    config = Path(config)
    name = name or config.stem
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    config_epochs = _config_epochs(config)
    no_validation = [] if validate else [
        "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0", "--checkpoint.monitor=null",
    ]
    cli_args = [
        "--config", str(config), *overrides, *no_validation,
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={Path(args.root_dir) / name}",
        *budget_arguments(args, config_epochs), *(f"--{item}" for item in args.set),  # the user's last: they win
    ]
    settings = dict(settings or {})
    row = BenchRow(model=name, dataset=dataset, config=name, settings=settings)
    where = " ".join(f"{k} {v}" for k, v in settings.items())
    print(f"[{tag}] {name} {where}: attn fit {' '.join(cli_args)}", flush=True)
    measures: dict[str, float | None] = {}
    hook = None if on_built is None else (lambda task: measures.update(on_built(task)))
    try:
        task, trainer, result, seconds = fit_and_test(cli_args, test="best" if validate else "last", on_built=hook)
    except Exception as err:  # one failed run must not lose the other rows
        traceback.print_exc()
        row.error = f"{type(err).__name__}: {err}"[:300]
        row.measures = measures
        return row, None
    row.model, row.role = type(task.model).__name__, task.tracking_tags()["role"]
    row.params, row.seconds = task.num_parameters(), round(seconds, 1)
    row.epochs, row.steps = trainer.current_epoch, trainer.global_step
    row.metrics = {k.removeprefix("test/"): float(v) for k, v in result.items() if k.startswith("test/")}
    row.measures = measures
    shown = ", ".join(f"{k} {v:.4g}" for k, v in row.metrics.items())
    print(f"[{tag}] {row.model} ({name}) {where}: test {shown} after {seconds:.0f} s, {row.steps} steps", flush=True)
    return row, Trained(task, trainer)


def _config_epochs(config: Path) -> int | None:
    import yaml

    try:
        return (yaml.safe_load(config.read_text()) or {}).get("trainer", {}).get("max_epochs")
    except (OSError, yaml.YAMLError):
        return None  # the CLI reports an unreadable config itself


def format_table(rows: Sequence[BenchRow | dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A plain-text table of rows (`BenchRow`s, or dicts whose `metrics` entries become columns)."""
    flat = [_flatten(r) for r in rows]
    if columns is None:
        columns = []
        for r in flat:
            columns += [c for c in r if c not in columns]
    cells = [[_fmt(r.get(c)) for c in columns] for r in flat]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.rjust(w) for v, w in zip(values, widths, strict=True))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def report(
    rows: Sequence[BenchRow], *, experiment: str, title: str, json_path: Path | str | None = None,
    columns: Sequence[str] | None = None, log_mlflow: bool = True, notes: Sequence[str] = (),
    budget: argparse.Namespace | None = None,
) -> str:
    """Print the table, write `json_path`, log it to MLflow experiment `experiment`; returns the text.

    `notes` are printed under the table, then, given the parsed options of a training benchmark as
    `budget`, how its runs were capped (`budget_notes`).

    Rows with an `error` are listed under the table; the command then exits non-zero (after the
    table is printed, written and logged, so the other rows are kept).
    """
    failed = [r for r in rows if r.error]
    if failed and columns is not None and "error" not in columns:
        columns = [*columns, "error"]
    notes = [*notes, *(budget_notes(budget) if budget is not None else [])]
    text = "\n".join([f"{title}  [{hardware()}]", format_table(rows, columns), *notes])
    print(text, flush=True)
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps([asdict(r) for r in rows], indent=2, default=str))
    if log_mlflow:
        _log_to_mlflow(rows, experiment=experiment, title=title, text=text)
    if failed:
        raise SystemExit(f"{title}: {len(failed)} row(s) failed: " + "; ".join(f"{r.config or r.model}: {r.error}" for r in failed))
    return text


def _log_to_mlflow(rows: Sequence[BenchRow], *, experiment: str, title: str, text: str) -> None:
    """One parent run holding the table, one nested run per row (tags, settings as params, metrics)."""
    from mlflow.tracking import MlflowClient

    from core.tracking import default_tracking_uri, local_artifact_location

    client = MlflowClient(default_tracking_uri())
    found = client.get_experiment_by_name(experiment)
    exp_id = found.experiment_id if found else client.create_experiment(
        experiment, artifact_location=local_artifact_location(experiment)
    )
    parent = client.create_run(exp_id, run_name=title, tags={"benchmark": title, "hardware": hardware()})
    client.log_text(parent.info.run_id, text, "table.txt")
    client.log_text(parent.info.run_id, json.dumps([asdict(r) for r in rows], indent=2, default=str), "table.json")
    for row in rows:
        tags = {"mlflow.parentRunId": parent.info.run_id, "hardware": hardware(), "model": row.model,
                "role": str(row.role), "dataset": row.dataset, "config": row.config}
        run = client.create_run(exp_id, run_name=f"{row.model} {row.config}".strip(), tags=tags)
        rid = run.info.run_id
        for key, value in {**row.settings, **row.reference, **({"error": row.error} if row.error else {})}.items():
            if value is not None:
                client.log_param(rid, key, str(value)[:500])
        numbers = {f"test/{k}": v for k, v in row.metrics.items()}
        numbers.update(row.measures)
        numbers.update({"params": row.params, "seconds": row.seconds, "epochs": row.epochs, "steps": row.steps})
        for key, value in numbers.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                client.log_metric(rid, key, float(value))
        client.set_terminated(rid, status="FAILED" if row.error else "FINISHED")
    client.set_terminated(parent.info.run_id)


def _flatten(row: BenchRow | dict[str, Any]) -> dict[str, Any]:
    if isinstance(row, BenchRow):
        return row.flat()
    out = {k: v for k, v in row.items() if k != "metrics"}
    out.update(row.get("metrics", {}))
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    return str(value)


def _add_broken(subparsers: argparse._SubParsersAction, name: str, target: str, error: ImportError) -> None:
    """Register `name` so that running it says why its benchmark cannot load."""
    parser = subparsers.add_parser(name, help=f"(unavailable: {error})", add_help=False)
    parser.add_argument("rest", nargs=argparse.REMAINDER)

    def fail(_args: argparse.Namespace) -> None:
        raise SystemExit(f"attn-bench {name}: cannot import {target}: {error}")

    parser.set_defaults(func=fail)


def main(argv: list[str] | None = None) -> None:
    """Console entry point of `attn-bench`."""
    parser = argparse.ArgumentParser(prog="attn-bench", description="Benchmarks of the attention suite.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for entry in sorted(entry_points(group="attn.bench"), key=lambda e: e.name):
        try:
            add_subcommand = entry.load()
        except ImportError as error:  # one broken domain must not take the other benchmarks down
            _add_broken(subparsers, entry.name, entry.value, error)
            continue
        add_subcommand(subparsers)
    args = parser.parse_args(argv)
    from core.cli import quiet_framework

    quiet_framework()  # the frameworks' tips and known deprecation warnings, as under `attn`
    args.func(args)


if __name__ == "__main__":
    main()
