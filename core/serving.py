"""Trained models in MLflow that serve raw input, and `attn register`.

    attn fit --config C                          logs the model of every non-smoke fit (--log_model=false: not)
    attn register EXPERIMENT [--name NAME]       registers the experiment's best run (by its main metric)
    mlflow models serve -m models:/NAME/1 --env-manager local -p 5001

A fit logs its best checkpoint as an MLflow pyfunc model (`AttnPyfuncModel`, artifact `model` of
the run, tag `model_uri`). The checkpoint carries its config and the DataModule's fitted
preprocessing (`core.predict`), so the logged model takes the raw input a user has (CSV rows of
the original columns, SMILES strings, an image array, a window of a series) and runs exactly the
path of `attn predict`: the task's `serving_input` writes the input as the file `attn predict`
reads, `AttnCLI` predicts into a temporary folder, and `serving_output` reads the written
predictions back. So the served numbers are `attn predict`'s, by construction.

A task serves when it implements the three hooks (`BaseTask.serving_input`, `serving_output`,
`serving_example`); `serving_example` gives the signature's input example from the data.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import mlflow.pyfunc

import mlflow
from core.tracking import log_tag, mlflow_loggers

MODEL_ARTIFACT = "model"


def import_task_class(checkpoint: str | Path) -> type:
    """The task class a checkpoint of `attn fit` was trained with (from its saved hyper-parameters)."""
    import torch
    from jsonargparse.typing import import_object

    state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    class_path = (state.get("hyper_parameters") or {}).get("_class_path")
    if not class_path:
        raise ValueError(f"{checkpoint}: no task class recorded (a checkpoint of `attn fit` records it)")
    return import_object(class_path)


def predict_files(checkpoint: str | Path, predict_path: str | Path, output: str | Path) -> list[Path]:
    """Run `attn predict --ckpt_path checkpoint --predict_path predict_path --output output`, without MLflow.

    Returns the files the task wrote. The one prediction path of serving and `attn predict`.
    """
    from core.cli import config_of_checkpoint
    from core.lightning_cli import AttnCLI
    from core.predict import PredictionWriter

    argv = ["predict", "--ckpt_path", str(checkpoint), "--predict_path", str(predict_path), "--output", str(output),
            "--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
    with config_of_checkpoint(argv) as full:
        cli = AttnCLI(args=full)
    writers = [c for c in cli.trainer.callbacks if isinstance(c, PredictionWriter)]
    return writers[0].written if writers else []


class AttnPyfuncModel(mlflow.pyfunc.PythonModel):
    """A trained task as an MLflow pyfunc model on raw input (module docstring). Artifact: `checkpoint`."""

    def load_context(self, context: Any) -> None:
        self.checkpoint = context.artifacts["checkpoint"]
        self.task_class = import_task_class(self.checkpoint)

    def predict(self, context, model_input, params=None):  # noqa: ANN001, ANN201 - MLflow reads type hints as a schema
        return predict_raw(self.task_class, self.checkpoint, model_input)


def predict_raw(task_class: type, checkpoint: str | Path, model_input: Any) -> Any:
    """`model_input` (raw) -> the task's predictions, through `attn predict` in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="attn-serve-") as folder:
        folder = Path(folder)
        (folder / "input").mkdir()
        path = task_class.serving_input(model_input, folder / "input")
        files = predict_files(checkpoint, path, folder / "output")
        return task_class.serving_output(files)


def log_trained_model(trainer: L.Trainer, task: Any, datamodule: L.LightningDataModule, checkpoint: str) -> str | None:
    """Log `checkpoint` as the pyfunc model of the fit's MLflow run(s); returns its model URI (None if not logged).

    Skipped with a note for a task without serving hooks or a fit without checkpoint.
    """
    loggers = mlflow_loggers(trainer)
    if not loggers or getattr(loggers[0], "offline", False) or not checkpoint or not Path(checkpoint).is_file():
        return None
    example = task.serving_example(datamodule)
    if example is None:
        print(f"attn fit: {type(task).__name__} does not serve raw input yet; no model logged", file=sys.stderr)
        return None
    output = predict_raw(type(task), checkpoint, example)
    signature = task.serving_signature(example, output)
    logger = loggers[0]

    def log() -> str:
        mlflow.set_tracking_uri(logger._tracking_uri)
        with mlflow.start_run(run_id=logger.run_id):
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT, python_model=str(Path(__file__).with_name("pyfunc_model.py")),
                artifacts={"checkpoint": str(checkpoint)}, signature=signature, input_example=example,
                pip_requirements=_requirements(),
            )
        return info.model_uri

    # through the logger's guard: a tracking server that went down costs the logged model, not the fit
    uri = logger.guarded(log) if hasattr(logger, "guarded") else log()
    if uri:
        log_tag(trainer, "model_uri", uri)
    return uri

def _requirements() -> list[str]:
    """The pinned stack the model was trained with (given, so MLflow does not infer them by running it)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("torch", "lightning", "mlflow", "pandas", "numpy")]


def best_run(client: Any, experiment: str, metric: str | None = None) -> tuple[Any, str, str]:
    """The run of `experiment` with a logged model and the best test value of its main metric.

    Returns (run, metric name, direction). The metric and direction come from `core.report.MAIN_METRICS`
    for the experiment's task unless `metric` ("rmse" or "rmse:min") is given.
    """
    from core.report import main_metric

    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ValueError(f"attn register: no experiment {experiment!r} in {mlflow.get_tracking_uri()}")
    runs = [r for r in client.search_runs([found.experiment_id], "tags.model_uri != ''", max_results=5000)
            if r.data.tags.get("model_uri")]
    if not runs:
        raise ValueError(f"attn register: no run of {experiment} has a logged model (fits log one unless they are "
                         "smoke runs or --log_model=false)")
    if metric:
        name, _, direction = metric.partition(":")
        direction = direction or "max"
    else:
        names = sorted({k.removeprefix("test/") for r in runs for k in r.data.metrics if k.startswith("test/")})
        chosen = main_metric(experiment.split("/")[1] if experiment.count("/") >= 2 else "", names)
        if chosen is None:
            raise ValueError(f"attn register: no main metric known for {experiment}; give --metric NAME:min|max")
        name, direction = chosen
    scored = [r for r in runs if f"test/{name}" in r.data.metrics]
    if not scored:
        raise ValueError(f"attn register: no run of {experiment} with a logged model has test/{name}")
    pick = min if direction == "min" else max
    return pick(scored, key=lambda r: r.data.metrics[f"test/{name}"]), name, direction


def register_main(argv: list[str] | None = None) -> None:
    """`attn register EXPERIMENT [--name NAME] [--metric NAME:min|max]`."""
    parser = argparse.ArgumentParser(prog="attn register", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", help="the MLflow experiment, e.g. timeseries/forecast/ETTh1")
    parser.add_argument("--name", help="registered model name (default: the experiment with '/' as '-')")
    parser.add_argument("--metric", help="rank by this test metric (NAME:min or NAME:max) instead of the task's main one")
    args = parser.parse_args(argv)
    from core.tracking import default_tracking_uri
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(default_tracking_uri())
    run, metric, direction = best_run(MlflowClient(), args.experiment, args.metric)
    name = args.name or args.experiment.replace("/", "-")
    version = mlflow.register_model(run.data.tags["model_uri"], name)
    value = run.data.metrics[f"test/{metric}"]
    print(f"attn register: {name} version {version.version} <- run {run.info.run_name} ({run.info.run_id}), "
          f"test/{metric} {value:.4g} ({direction} is best)")
    print(f"  serve it: mlflow models serve -m models:/{name}/{version.version} --env-manager local -p 5001")

