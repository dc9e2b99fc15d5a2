"""`attn-compare EXPERIMENT ...`: the latest test results of every comparable group of runs.

Runs are comparable when they share an experiment (task and dataset) and the settings that the
CLI records on each run (`BaseTask.run_settings`: horizon, scale, split); within those, one row per
model, config and kernel (so `hiformer` and `hiformer_fast`, or a horizon-96 and a horizon-192
run, never hide each other), from the newest finished run with test metrics. The table shows
these columns beside the shared `test/*` metrics, models beside their baselines, the way the
MLflow UI's compare view lines them up.

    attn-compare timeseries/forecast/ETTh1 --filter horizon=96
    attn-compare recsys/ctr/synthetic --include-smoke

Smoke runs (fast_dev_run, a handful of steps: the `smoke` tag, `core.tracking.smoke_reason`) are
left out unless `--include-smoke`, which marks them. `core.report` aggregates the same groups over seeds.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Params that carried a run's settings before the CLI tagged them (runs of older versions, bench rows).
_SETTING_PARAMS = {"horizon": ("horizon", "data.pred_len"), "split": ("split", "data.split")}


def run_record(run: Any) -> dict[str, Any]:
    """What comparing needs of one MLflow run: identity, settings, seed, smoke flag, test metrics."""
    tags, params = run.data.tags, run.data.params
    if "settings" in tags:
        settings = dict(item.split("=", 1) for item in tags["settings"].split() if "=" in item)
    else:
        settings = {}
        for name, keys in _SETTING_PARAMS.items():
            value = next((params[k] for k in keys if k in params), None)
            if value is not None:
                settings[name] = value
    return {
        "model": tags.get("model", "?"), "role": tags.get("role", "?"), "config": tags.get("config", ""),
        "kernel": tags.get("kernel", "none"), "settings": settings, "seed": tags.get("seed", ""),
        "task": tags.get("task", ""), "dataset": tags.get("dataset", ""),
        "smoke": tags.get("smoke") == "true" or bool(params.get("trainer.fast_dev_run")),
        "smoke_reason": tags.get("smoke_reason", ""),
        "params": _parameter_count(run),
        "metrics": {k.removeprefix("test/"): v for k, v in run.data.metrics.items() if k.startswith("test/")},
        "run_id": run.info.run_id, "experiment_id": run.info.experiment_id, "run_name": tags.get("mlflow.runName", ""), "start_time": run.info.start_time,
        "fields": {**params, **tags, **settings},
    }


def group_key(record: Mapping[str, Any]) -> tuple:
    """The comparable group of a record: settings, then config, model and kernel (seeds are not part of it)."""
    return (tuple(sorted(record["settings"].items())), record["config"], record["model"], record["kernel"])


def parse_filters(items: Sequence[str]) -> dict[str, str]:
    """`["horizon=96", "kernel=sdpa"]` -> `{"horizon": "96", "kernel": "sdpa"}` (a bad item fails naming it)."""
    filters = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--filter {item!r}: expected KEY=VALUE, e.g. horizon=96 or kernel=sdpa")
        filters[key] = value
    return filters


def select(records: Iterable[dict[str, Any]], *, include_smoke: bool = False, filters: Mapping[str, str] | None = None) -> list[dict]:
    """The records with test metrics that pass `filters` (tags, settings, params) and, unless `include_smoke`, are no smoke runs."""
    out = []
    for record in records:
        if not record["metrics"] or (record["smoke"] and not include_smoke):
            continue
        if any(str(record["fields"].get(key)) != value for key, value in (filters or {}).items()):
            continue
        out.append(record)
    return out


def finished_records(client: Any, experiment_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Every finished run of the experiments as a record (`run_record`), newest first."""
    runs = client.search_runs(
        list(experiment_ids), "attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"], max_results=50000,
    )
    return [run_record(run) for run in runs]


def latest_results(
    experiment: str, client: Any | None = None, *, include_smoke: bool = False, filters: Mapping[str, str] | None = None,
) -> list[dict]:
    """One row per comparable group (`group_key`): the newest finished run that has test metrics."""
    from mlflow.tracking import MlflowClient

    from core.tracking import default_tracking_uri

    client = client or MlflowClient(default_tracking_uri())
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments())
        raise SystemExit(f"attn-compare: no experiment {experiment!r}; found {names}")
    newest: dict[tuple, dict] = {}
    for record in select(finished_records(client, [exp.experiment_id]), include_smoke=include_smoke, filters=filters):
        newest.setdefault(group_key(record), record)
    setting_names = list(dict.fromkeys(name for r in newest.values() for name in r["settings"]))
    rows = []
    for record in sorted(newest.values(), key=lambda r: (group_key(r)[0], r["role"] != "baseline", r["model"], r["config"])):
        row = {"config": record["config"] or "-"}
        row.update({name: record["settings"].get(name, "-") for name in setting_names})
        row.update({"model": record["model"], "role": record["role"], "kernel": record["kernel"], "params": record["params"]})
        if include_smoke:
            row["smoke"] = record["smoke_reason"] or ("yes" if record["smoke"] else "")
        row.update({"metrics": record["metrics"], "run_id": record["run_id"][:8]})
        rows.append(row)
    return rows


def _parameter_count(run: Any) -> int | None:
    """The `params` param logged by the CLI, else the `num_parameters` metric of lazily built models."""
    if "params" in run.data.params:
        return int(float(run.data.params["params"]))
    if "num_parameters" in run.data.metrics:
        return int(run.data.metrics["num_parameters"])
    return None


def main(argv: list[str] | None = None) -> None:
    """Console entry point of `attn-compare`."""
    parser = argparse.ArgumentParser(prog="attn-compare", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="+", help="MLflow experiment names, e.g. timeseries/forecast/ETTh1")
    parser.add_argument("--filter", nargs="+", default=[], metavar="KEY=VALUE",
                        help="keep runs whose tag, setting or param KEY equals VALUE (horizon=96 kernel=sdpa seed=2021)")
    parser.add_argument("--include-smoke", action="store_true", help="also list smoke runs (marked in a `smoke` column)")
    args = parser.parse_args(argv)
    from core.bench import format_table
    from core.tracking import default_tracking_uri

    filters = parse_filters(args.filter)
    for experiment in args.experiments:
        rows = latest_results(experiment, include_smoke=args.include_smoke, filters=filters)
        print(f"\n{experiment}  (tracking: {default_tracking_uri()})")
        hidden = "" if args.include_smoke else " (smoke runs left out: --include-smoke)"
        print(format_table(rows) if rows else f"  no finished runs with test metrics{hidden}")


if __name__ == "__main__":
    main()
