"""Hand-made MLflow runs with the tags the `attn` CLI sets, for testing `attn-compare` and `attn report`."""

from __future__ import annotations

from typing import Any

from mlflow.tracking import MlflowClient


def make_run(
    client: MlflowClient, experiment: str, model: str, metrics: dict[str, float], *, role: str = "model",
    config: str = "", kernel: str = "none", settings: dict[str, str] | None = None, seed: str = "0",
    task: str = "forecast", smoke: str = "", status: str = "FINISHED", params: dict[str, Any] | None = None,
) -> str:
    """A finished run of `experiment` tagged as the CLI tags one, with `metrics` logged as `test/<name>`."""
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    settings = settings or {}
    tags = {
        "model": model, "role": role, "config": config, "kernel": kernel, "seed": seed, "task": task,
        "settings": " ".join(f"{k}={v}" for k, v in settings.items()), **settings,
        "smoke": "true" if smoke else "false", "smoke_reason": smoke,
    }
    run = client.create_run(experiment_id, tags=tags, run_name=f"{model} {config}".strip())
    for key, value in (params or {}).items():
        client.log_param(run.info.run_id, key, value)
    for name, value in metrics.items():
        client.log_metric(run.info.run_id, f"test/{name}", value)
    client.set_terminated(run.info.run_id, status=status)
    return run.info.run_id
