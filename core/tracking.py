"""MLflow tracking with the suite's conventions.

Without `MLFLOW_TRACKING_URI`, runs go to a SQLite store `./mlflow/mlflow.db` with artifacts under
`./mlflow/artifacts/`, so `make ui` (mlflow ui on that store) shows them. Experiments are named
`<domain>/<task>/<dataset>` (`BaseTask.experiment_name`); runs carry the tags domain, task, dataset,
model, role, kernel and seed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files, never shown

from lightning.pytorch import Trainer  # noqa: E402
from lightning.pytorch.loggers import Logger, MLFlowLogger  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

LOCAL_STORE_DIR = Path("mlflow")


def default_tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else the local SQLite store under `./mlflow/`."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    LOCAL_STORE_DIR.mkdir(exist_ok=True)
    return f"sqlite:///{(LOCAL_STORE_DIR / 'mlflow.db').resolve()}"


def local_artifact_location(experiment_name: str) -> str | None:
    """Artifact folder for an experiment in the local store (None for a user-provided server)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment_name)
    return (LOCAL_STORE_DIR / "artifacts" / slug).resolve().as_uri()


class MLflowLogger(MLFlowLogger):
    """Lightning's MLflow logger with the suite's defaults.

    Args:
        experiment_name: default None: the CLI names it `<domain>/<task>/<dataset>` from the task and data.
        run_name: default None: the CLI uses the model's class name.
        tracking_uri: default `MLFLOW_TRACKING_URI`, else `sqlite:///./mlflow/mlflow.db`.
        tags: extra run tags, merged with the suite's.
    """

    def __init__(
        self,
        experiment_name: str | None = None,
        run_name: str | None = None,
        tracking_uri: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        name = experiment_name or "default"
        super().__init__(
            experiment_name=name, run_name=run_name, tracking_uri=tracking_uri or default_tracking_uri(),
            tags=dict(tags or {}), save_dir=None, artifact_location=local_artifact_location(name),
        )
        self.named = experiment_name is not None

    def configure(self, experiment_name: str, run_name: str, tags: dict[str, str]) -> None:
        """Fill in the experiment and run names (unless given explicitly) and the suite's tags.

        Must run before the run is created, i.e. before the Trainer first touches `experiment`.
        """
        if not self.named:
            self._experiment_name = experiment_name
            self._artifact_location = local_artifact_location(experiment_name)
        if self._run_name is None:
            self._run_name = run_name
        self.tags = {**tags, **(self.tags or {})}


def mlflow_loggers(target: Trainer | Logger | None) -> list[MLFlowLogger]:
    """The MLflow loggers of a Trainer (or the logger itself), for logging artifacts."""
    if target is None:
        return []
    loggers = target.loggers if isinstance(target, Trainer) else [target]
    return [lg for lg in loggers if isinstance(lg, MLFlowLogger)]


def log_figure(target: Trainer | Logger | None, fig: Figure, artifact_path: str) -> None:
    """Log a matplotlib figure as a PNG artifact of the current run(s) and close it."""
    import matplotlib.pyplot as plt

    for logger in mlflow_loggers(target):
        logger.experiment.log_figure(logger.run_id, fig, artifact_path)
    plt.close(fig)


def log_text(target: Trainer | Logger | None, text: str, artifact_path: str) -> None:
    """Log a text file (a config, a table) as an artifact of the current run(s)."""
    for logger in mlflow_loggers(target):
        logger.experiment.log_text(logger.run_id, text, artifact_path)


def log_dict(target: Trainer | Logger | None, data: Any, artifact_path: str) -> None:
    """Log JSON-serializable data as an artifact."""
    log_text(target, json.dumps(data, indent=2, default=str), artifact_path)
