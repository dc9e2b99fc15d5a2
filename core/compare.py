"""`attn-compare EXPERIMENT`: the latest test results of every model in an MLflow experiment.

Prints models beside their baselines with the shared `test/*` metrics, the way the MLflow UI's
compare view lines them up.
"""

from __future__ import annotations

import argparse
from typing import Any

from mlflow.tracking import MlflowClient

from core.bench import format_table
from core.tracking import default_tracking_uri


def latest_results(experiment: str, client: MlflowClient | None = None) -> list[dict]:
    """One row per (model, kernel): the newest finished run that has test metrics."""
    client = client or MlflowClient(default_tracking_uri())
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments())
        raise SystemExit(f"attn-compare: no experiment {experiment!r}; found {names}")
    rows: dict[tuple[str, str], dict] = {}
    for run in client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"]):
        tags, metrics = run.data.tags, run.data.metrics
        test = {k.removeprefix("test/"): v for k, v in metrics.items() if k.startswith("test/")}
        key = (tags.get("model", "?"), tags.get("kernel", "none"))
        if not test or key in rows:
            continue
        rows[key] = {
            "model": key[0], "role": tags.get("role", "?"), "kernel": key[1],
            "params": _parameter_count(run),
            "metrics": test, "run_id": run.info.run_id[:8],
        }
    return sorted(rows.values(), key=lambda r: (r["role"] != "baseline", r["model"]))


def _parameter_count(run: Any) -> int | None:
    """The `params` param logged by the CLI, else the `num_parameters` metric of lazily built models."""
    if "params" in run.data.params:
        return int(float(run.data.params["params"]))
    if "num_parameters" in run.data.metrics:
        return int(run.data.metrics["num_parameters"])
    return None


def main(argv: list[str] | None = None) -> None:
    """Console entry point of `attn-compare`."""
    parser = argparse.ArgumentParser(prog="attn-compare", description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="+", help="MLflow experiment names, e.g. timeseries/forecast/ETTh1")
    args = parser.parse_args(argv)
    for experiment in args.experiments:
        rows = latest_results(experiment)
        print(f"\n{experiment}  (tracking: {default_tracking_uri()})")
        print(format_table(rows) if rows else "  no finished runs with test metrics")


if __name__ == "__main__":
    main()
