"""`attn-bench`: every benchmark of the suite as a subcommand, each printing and logging a table.

Domains register subcommands through the `attn.bench` entry-point group in pyproject.toml; each
entry point is a function `add_subcommand(subparsers)` that adds a parser with
`set_defaults(func=run)`. `report()` is the one way a benchmark publishes its rows: a printed
table, a JSON file (`--json`) and an MLflow run with one nested run per row.
"""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import torch

ROW_KEYS = ("model", "role", "dataset", "params", "seconds", "metrics")


def hardware() -> str:
    """The machine a benchmark ran on, for its table and tags."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every subcommand has."""
    parser.add_argument("--json", type=Path, default=None, help="write the table as a JSON list of rows to this path")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log the table to MLflow")


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A plain-text table; `metrics` entries become their own columns."""
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
    rows: Sequence[dict[str, Any]], *, experiment: str, title: str, json_path: Path | str | None = None,
    columns: Sequence[str] | None = None, log_mlflow: bool = True, notes: Sequence[str] = (),
) -> str:
    """Print the table, write `json_path`, log it to MLflow experiment `experiment`; returns the text."""
    text = "\n".join([f"{title}  [{hardware()}]", format_table(rows, columns), *notes])
    print(text, flush=True)
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(list(rows), indent=2, default=str))
    if log_mlflow:
        _log_to_mlflow(rows, experiment=experiment, title=title, text=text)
    return text


def _log_to_mlflow(rows: Sequence[dict[str, Any]], *, experiment: str, title: str, text: str) -> None:
    from mlflow.tracking import MlflowClient

    from core.tracking import default_tracking_uri, local_artifact_location

    client = MlflowClient(default_tracking_uri())
    found = client.get_experiment_by_name(experiment)
    exp_id = found.experiment_id if found else client.create_experiment(
        experiment, artifact_location=local_artifact_location(experiment)
    )
    parent = client.create_run(exp_id, run_name=title, tags={"benchmark": title, "hardware": hardware()})
    client.log_text(parent.info.run_id, text, "table.txt")
    client.log_text(parent.info.run_id, json.dumps(list(rows), indent=2, default=str), "table.json")
    for row in rows:
        tags = {"mlflow.parentRunId": parent.info.run_id, "hardware": hardware()}
        tags.update({k: str(row[k]) for k in ("model", "role", "dataset") if k in row})
        run = client.create_run(exp_id, run_name=str(row.get("model", "row")), tags=tags)
        for key, value in row.items():
            if key == "metrics":
                for name, metric in value.items():
                    if isinstance(metric, int | float):
                        client.log_metric(run.info.run_id, f"test/{name}", float(metric))
            elif isinstance(value, int | float) and key in ("seconds", "params"):
                client.log_metric(run.info.run_id, key, float(value))
            elif value is not None:
                client.log_param(run.info.run_id, key, str(value)[:500])
        client.set_terminated(run.info.run_id)
    client.set_terminated(parent.info.run_id)


def _flatten(row: dict[str, Any]) -> dict[str, Any]:
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
    args.func(args)


if __name__ == "__main__":
    main()
