"""MLflow tracking with the suite's conventions.

Without `MLFLOW_TRACKING_URI`, runs go to a SQLite store `./mlflow/mlflow.db` with artifacts under
`./mlflow/artifacts/`, so `make ui` (mlflow ui on that store) shows them. Experiments are named
`<domain>/<task>/<dataset>` (`BaseTask.experiment_name`); runs carry the tags domain, task, dataset,
model, role, kernel and seed, and the CLI names them after what they are (`run_name`).

A shared tracking server (`MLFLOW_TRACKING_URI=http://host:port`) is checked before a run starts
(`check_tracking_uri`: a server that is down fails in seconds, naming the URI). If it goes away
during a run, the logger warns once and training goes on without it, so its checkpoints are still
written (`MLflowLogger`).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.request import urlopen

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files, never shown

from lightning.pytorch import Trainer  # noqa: E402
from lightning.pytorch.loggers import Logger, MLFlowLogger  # noqa: E402
from lightning.pytorch.loggers.logger import rank_zero_experiment  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

LOCAL_STORE_DIR = Path("mlflow")

# A run whose training budget allows at most this many optimizer steps (or uses fast_dev_run) is a
# smoke run: it checks that a config runs, its metrics compare with nothing (`smoke_reason`).
SMOKE_MAX_STEPS = 20

# The trainer arguments that bound a run's work, logged as params (`trainer.<name>`).
BUDGET_KEYS = (
    "max_epochs", "max_steps", "max_time", "limit_train_batches", "limit_val_batches",
    "limit_test_batches", "limit_predict_batches", "fast_dev_run",
)


def default_tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else the local SQLite store under `./mlflow/`."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    LOCAL_STORE_DIR.mkdir(exist_ok=True)
    return f"sqlite:///{(LOCAL_STORE_DIR / 'mlflow.db').resolve()}"


def create_store() -> None:
    """Create the tracking store (the SQLite tables of a fresh local store) now, once: benchmarks call it
    before their parallel runs, which would otherwise race to create it from several processes."""
    from mlflow.tracking import MlflowClient

    MlflowClient(default_tracking_uri()).search_experiments(max_results=1)


def local_artifact_location(experiment_name: str) -> str | None:
    """Artifact folder for an experiment in the local store (None for a user-provided server)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment_name)
    return (LOCAL_STORE_DIR / "artifacts" / slug).resolve().as_uri()


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock beside a SQLite store while a process opens it (no-op for other stores).

    Opening a store creates or migrates its schema; four runs that open a new store at once would
    race on it ("table experiments already exists"), so each waits for the one before.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock, as before
        yield
        return
    path = Path(uri.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_remote(uri: str) -> bool:
    """True for a tracking server (`http(s)://`), False for a local store (SQLite file, folder)."""
    return uri.startswith(("http://", "https://"))


class TrackingServerUnavailable(ConnectionError):
    """The tracking server named by a URI does not answer."""


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds, naming `uri`, when a tracking server does not answer its `/health` endpoint.

    MLflow's own client retries a refused connection for minutes (7 retries with exponential
    backoff) before the first run is even created; local stores are not checked.
    """
    if not is_remote(uri):
        return
    try:
        with urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:  # noqa: S310 - http(s) only
            response.read()
    except (URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise TrackingServerUnavailable(
            f"MLflow tracking server {uri} is not reachable ({reason}); start it (mlflow server "
            "--backend-store-uri sqlite:///mlflow/mlflow.db --serve-artifacts --host HOST --port PORT) "
            "or unset MLFLOW_TRACKING_URI to use the local store ./mlflow/mlflow.db"
        ) from None


def budget_params(trainer: Mapping[str, Any]) -> dict[str, Any]:
    """The trainer budget of a run (`BUDGET_KEYS` that are set) as params `trainer.<name>`."""
    # a batch count parsed as a float (`2.0`) is logged as the count Lightning uses
    return {
        f"trainer.{key}": int(value) if _whole(value) else value
        for key in BUDGET_KEYS if (value := trainer.get(key)) not in (None, False)
    }


def smoke_reason(trainer: Mapping[str, Any], subcommand: str = "fit", trainable: bool = True) -> str:
    """Why a run with this trainer budget is a smoke run ("" when it is not; `SMOKE_MAX_STEPS`).

    fast_dev_run, a fit whose step budget is at most `SMOKE_MAX_STEPS` (`max_steps`, or whole-number
    `limit_train_batches` times `max_epochs`), or a test on part of the test split. (A run from a
    checkpoint of a smoke fit is one too; the CLI reads that from the checkpoint's run.) The fit of a
    model with nothing to train (`trainable=False`: bicubic, CEM, gamma), whose configs take one step,
    is complete at any budget.
    """
    if trainer.get("fast_dev_run"):
        return f"fast_dev_run={trainer['fast_dev_run']}"
    if subcommand == "fit" and trainable:
        max_steps = trainer.get("max_steps")
        if isinstance(max_steps, int) and 0 < max_steps <= SMOKE_MAX_STEPS:
            return f"max_steps={max_steps}"
        batches, epochs = trainer.get("limit_train_batches"), trainer.get("max_epochs")
        if _whole(batches) and isinstance(epochs, int) and 0 < epochs and batches * epochs <= SMOKE_MAX_STEPS:
            return f"limit_train_batches={batches:g} x max_epochs={epochs}"
    test = trainer.get("limit_test_batches")
    if _whole(test) or (isinstance(test, float) and test < 1.0):
        return f"limit_test_batches={test:g}"
    return ""


def _whole(value: Any) -> bool:
    """A batch limit given as a count (Lightning reads 1.0 as "all", a smaller float as a fraction; the
    parsed config may hold a count as a float, `2.0`)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value > 1.0 and value.is_integer())


def run_name(
    model: str, *, config: str = "", settings: Mapping[str, Any] | None = None, kernel: str = "none",
    subcommand: str = "fit", smoke: bool = False, resumed: bool = False,
) -> str:
    """What a run is, as its MLflow name: `PatchTST patchtst_etth1 horizon=96 kernel=sdpa`.

    The model, the config it came from, the settings that tell runs of one task and dataset apart
    (`BaseTask.run_settings`), the attention kernel (none for models without one), then `test` /
    `validate` / `predict` for runs that do not fit, `resumed` for a fit continued from a
    checkpoint and `smoke` for a smoke run (`smoke_reason`).
    """
    parts = [model]
    if config and config.lower() != model.lower():
        parts.append(config)
    parts += [f"{key}={value}" for key, value in (settings or {}).items()]
    if kernel not in ("", "none"):
        parts.append(f"kernel={kernel}")
    if subcommand not in ("fit", "None", ""):
        parts.append(subcommand)
    if resumed:
        parts.append("resumed")
    if smoke:
        parts.append("smoke")
    return " ".join(parts)


class MLflowLogger(MLFlowLogger):
    """Lightning's MLflow logger with the suite's defaults.

    It opens a SQLite store and creates its experiment race-free (four runs starting at once into a
    new store all land: `store_lock`) and, on a tracking server, survives the server going away:
    the first failed call warns once, naming the URI, and the run goes on without tracking (its
    checkpoints are unaffected).
    MLflow's HTTP retries are shortened for it (`MLFLOW_HTTP_REQUEST_MAX_RETRIES` 2 and
    `MLFLOW_HTTP_REQUEST_TIMEOUT` 30 s unless set), else each logged step would wait minutes.

    Args:
        experiment_name: default None: the CLI names it `<domain>/<task>/<dataset>` from the task and data.
        run_name: default None: the CLI names the run after what it is (`core.tracking.run_name`).
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
        uri = tracking_uri or default_tracking_uri()
        if is_remote(uri):
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        with store_lock(uri):
            super().__init__(
                experiment_name=name, run_name=run_name, tracking_uri=uri,
                tags=dict(tags or {}), save_dir=None, artifact_location=local_artifact_location(name),
            )
            if uri.startswith("sqlite:"):  # open (create, migrate) the store now, under the lock
                self._mlflow_client.search_experiments(max_results=1)
        self.named = experiment_name is not None
        self.offline = False  # set when a tracking server stopped answering during the run

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

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The MLflow client, with the experiment and the run created on first use."""
        if not self._initialized and self._experiment_id is None and self._run_id is None:
            self._experiment_id = self._get_or_create_experiment()
        return MLFlowLogger.experiment.fget(self)

    def _get_or_create_experiment(self) -> str:
        """The experiment's id; another process creating it at the same moment is not an error."""
        from mlflow.exceptions import MlflowException

        client = self._mlflow_client
        found = client.get_experiment_by_name(self._experiment_name)
        if found is not None and found.lifecycle_stage != "deleted":
            return found.experiment_id
        try:
            return client.create_experiment(self._experiment_name, artifact_location=self._artifact_location)
        except MlflowException:
            found = client.get_experiment_by_name(self._experiment_name)
            if found is None:
                raise
            return found.experiment_id

    def guarded(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """`call(*args, **kwargs)`, unless the tracking server is gone (then None, after one warning)."""
        if self.offline:
            return None
        if not is_remote(self._tracking_uri):
            return call(*args, **kwargs)
        from mlflow.exceptions import MlflowException

        try:
            return call(*args, **kwargs)
        except (MlflowException, OSError) as err:
            self.offline = True
            warnings.warn(
                f"MLflow tracking server {self._tracking_uri} stopped answering ({str(err)[:200]}); the run "
                "goes on without tracking from here (its checkpoints are still written)",
                RuntimeWarning, stacklevel=2,
            )
            return None

    def log_hyperparams(self, params: Any) -> None:
        self.guarded(super().log_hyperparams, params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.guarded(super().log_metrics, metrics, step)

    def finalize(self, status: str = "success") -> None:
        self.guarded(super().finalize, status)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self.guarded(super().after_save_checkpoint, checkpoint_callback)


def mlflow_loggers(target: Trainer | Logger | None) -> list[MLFlowLogger]:
    """The MLflow loggers of a Trainer (or the logger itself), for logging artifacts."""
    if target is None:
        return []
    loggers = target.loggers if isinstance(target, Trainer) else [target]
    return [lg for lg in loggers if isinstance(lg, MLFlowLogger)]


def _client_call(logger: MLFlowLogger, method: str, *args: Any) -> None:
    """`client.<method>(run_id, *args)`, through the suite logger's guard (a stock MLFlowLogger has none)."""

    def call() -> None:
        getattr(logger.experiment, method)(logger.run_id, *args)

    if isinstance(logger, MLflowLogger):
        logger.guarded(call)
    else:
        call()


def log_figure(target: Trainer | Logger | None, fig: Figure, artifact_path: str) -> None:
    """Log a matplotlib figure as a PNG artifact of the current run(s) and close it."""
    import matplotlib.pyplot as plt

    for logger in mlflow_loggers(target):
        _client_call(logger, "log_figure", fig, artifact_path)
    plt.close(fig)


def log_text(target: Trainer | Logger | None, text: str, artifact_path: str) -> None:
    """Log a text file (a config, a table) as an artifact of the current run(s)."""
    for logger in mlflow_loggers(target):
        _client_call(logger, "log_text", text, artifact_path)


def log_file(target: Trainer | Logger | None, path: str | Path, artifact_dir: str | None = None) -> None:
    """Log a file on disk as an artifact of the current run(s), under `artifact_dir`."""
    for logger in mlflow_loggers(target):
        _client_call(logger, "log_artifact", str(path), artifact_dir)


def log_tag(target: Trainer | Logger | None, key: str, value: str) -> None:
    """Set a tag of the current run(s) (once the run exists)."""
    for logger in mlflow_loggers(target):
        _client_call(logger, "set_tag", key, value)


def log_dict(target: Trainer | Logger | None, data: Any, artifact_path: str) -> None:
    """Log JSON-serializable data as an artifact."""
    log_text(target, json.dumps(data, indent=2, default=str), artifact_path)
