"""`AttnCLI`: the suite's LightningCLI (what `attn fit|validate|test|predict` runs; `core.cli` is the entry).

    attn fit --config timeseries/configs/dlinear_etth1.yaml
    attn test --config ... --ckpt_path path/to/last.ckpt
    attn fit --config ... --print_config

Models and data are named by `class_path` (any `BaseTask` subclass and any LightningDataModule).
Every run logs to MLflow (experiment `<domain>/<task>/<dataset>`, see `BaseTask.experiment_name`),
saves its resolved config as an artifact, and keeps a `last.ckpt` for `--ckpt_path` resume.

Runs are named after what they are (`core.tracking.run_name`: model, config, the settings of
`BaseTask.run_settings`, kernel, and `smoke` / `resumed` / the subcommand) and tagged with the same
pieces (`config`, `settings`, `smoke`, `smoke_reason`, `run_key`); the trainer budget
(`trainer.max_steps`, `trainer.max_epochs`, `trainer.limit_*`, ...) is logged as params.

Resume: `--ckpt_path PATH` or `--ckpt_path last` starts a new MLflow run, tagged `resumed_from`
(the run that wrote the checkpoint, which every checkpoint records: `TrackCheckpoints`) and
`resumed_from_step`; its metric steps continue the first run's. `last` is the `last.ckpt` of the
newest earlier fit with the same `run_key` (model, config, settings, kernel, seed) in the same
experiment, found through the runs' `checkpoint_dir` tags; without one the fit starts from scratch.
`test`/`validate`/`predict` runs from a checkpoint are tagged `checkpoint_run`.

Every `lightning.pytorch.callbacks.EarlyStopping` of a config runs as `core.callbacks.EarlyStopping`,
which waits for a validation before it checks its metric, so `--trainer.max_steps=5` smoke runs of
configs with early stopping work.

Sizes that only the data decides are set once, on the data, and linked into the wrapped network
`model.init_args.model` with `link_arguments` on parse (the table `_DATA_SIZES`):

    data.init_args.seq_len   --> model.init_args.model.init_args.seq_len    (timeseries)
    data.init_args.pred_len  --> model.init_args.model.init_args.pred_len   (timeseries)
    data.init_args.scale     --> model.init_args.model.init_args.scale      (super-resolution)
    data.channels            --> model.init_args.model.init_args.channels   (timeseries: an attribute of
                                 the built DataModule, the CSV's value columns read from its header)

A link applies only where both sides have the name: a DataModule without the argument or attribute,
or a network without the parameter, is left alone, so the one CLI serves every domain. So
`--data.init_args.pred_len=192` resizes the model too, and `--print_config` and the saved config show
each size on the data only. A size given to the network as well must equal the data's (or be the
class default, which cannot be told from unset); otherwise parsing fails naming both keys. A
DataModule joins a link by taking the name with the same meaning (`ETTDataModule.scale`,
standardization, meets no network with a `scale`). Recsys models need no link:
`CTRTask.configure_model` builds them from the data's field layout.
"""

from __future__ import annotations

import inspect
import pickle
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from jsonargparse import ArgumentParser, Namespace, lazy_instance
from jsonargparse.typing import import_object
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from core.callbacks import Checkpoint, SaveConfigToMLflow, TrackCheckpoints
from core.predict import ConfigInCheckpoint, PredictionWriter, default_output
from core.task import BaseTask
from core.tracking import MLflowLogger, budget_params, check_tracking_uri, run_name, smoke_reason

# Config class paths of Lightning's EarlyStopping, run as `core.callbacks.EarlyStopping` (module docstring).
_STOCK_EARLY_STOPPING = (
    "lightning.pytorch.callbacks.EarlyStopping",
    "lightning.pytorch.callbacks.early_stopping.EarlyStopping",
    "pytorch_lightning.callbacks.EarlyStopping",
    "EarlyStopping",
)


class AttnParser(LightningArgumentParser):
    """Lightning's parser, whose errors are the message alone: no usage block before it.

    jsonargparse prints the whole usage (60 lines for a config) and then the error; the message
    names the key, the value and what was expected, which is what a user needs (`core.cli` keeps
    the innermost lines of a nested one).
    """

    def error(self, message: str, ex: Exception | None = None) -> None:
        from core.cli import short_parse_error

        if not self.exit_on_error:  # jsonargparse parsing internally, to try another type: it must raise
            super().error(message, ex)

        prog = self.prog.replace(" [options]", "")
        short = short_parse_error(message)
        hint = "`attn --help` lists the configs" if short.startswith("config: File does not exist") else f"`{prog} --help` lists every option"
        sys.stderr.write(f"{prog}: error: {short}\n  ({hint})\n")
        raise SystemExit(2)


class AttnCLI(LightningCLI):
    """LightningCLI with MLflow logging, run names, tags and config artifacts wired in (module docstring)."""

    # why the tracked run is a smoke run ("" if it is not), as its tags say; set when the run is configured
    run_smoke_reason: str = ""

    def __init__(self, args: list[str] | None = None, run: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("parser_class", AttnParser)
        super().__init__(
            BaseTask,
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=SaveConfigToMLflow,
            trainer_defaults={"logger": lazy_instance(MLflowLogger), "default_root_dir": "checkpoints"},
            auto_configure_optimizers=False,
            args=args,
            run=run,
            **kwargs,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(Checkpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True})
        parser.add_argument(
            "--test_after_fit", type=bool, default=False,
            help="after `fit`, test the best checkpoint (by checkpoint.monitor, else the last) in the same MLflow run",
        )
        parser.add_argument(
            "--log_model", type=bool | None, default=None,
            help="after `fit`, log the model (best checkpoint) to MLflow as a pyfunc model that serves raw input "
                 "(core.serving); default: unless the fit is a smoke run",
        )
        parser.add_argument(
            "--predict_path", type=str | None, default=None,
            help="`predict`: a file or folder of your own input, in the domain's format (its README); passed to the "
                 "DataModule's predict_path",
        )
        parser.add_argument(
            "--output", type=str | None, default=None,
            help="`predict`: the folder predictions are written to (default predictions/<checkpoint>-<time>)",
        )
        _link_data_sizes(parser)

    def _parse_ckpt_path(self) -> None:
        """Checks that `--ckpt_path` is a readable checkpoint, naming the file if not.

        Lightning's version also merges the checkpoint's model hyper-parameters over the config, so
        `attn test --ckpt_path C --model...kernel=sdpa` would silently test the training kernel; here
        the config and the command line win (a checkpoint that does not fit them fails in one line,
        `_run_subcommand`), and a command without `--config` takes the checkpoint's whole config
        (`core.cli.config_of_checkpoint`).
        """
        if not self.config.get("subcommand"):
            return
        ckpt = self.config[self.config.subcommand].get("ckpt_path")
        if not ckpt or not Path(ckpt).is_file():
            return
        try:
            torch.load(ckpt, weights_only=True, map_location="cpu", mmap=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, KeyError) as err:
            raise ValueError(f"--ckpt_path {ckpt}: not a readable Lightning checkpoint ({_load_error(err)}); "
                             "give a .ckpt written by `attn fit`") from None

    def before_instantiate_classes(self) -> None:
        config = self.config.get(str(self.subcommand), self.config) if self.subcommand else self.config
        for callback in config.get("trainer.callbacks") or []:
            if isinstance(callback, Namespace) and callback.get("class_path") in _STOCK_EARLY_STOPPING:
                callback.class_path = "core.callbacks.EarlyStopping"
        if self.subcommand == "predict":
            _route_predict_path(config)

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        if self.subcommand == "fit":
            trainer.callbacks.append(ConfigInCheckpoint(
                self._parser("fit").dump(self.config["fit"], skip_none=False), _config_name(self._get(self.config, "config")),
            ))
        elif self.subcommand == "predict":
            config = self.config["predict"]
            output = config.get("output") or default_output(config.get("ckpt_path"))
            trainer.callbacks.append(PredictionWriter(output))
        return trainer

    def before_fit(self) -> None:
        self.trainer.callbacks.append(TrackCheckpoints())
        self._configure_tracking("fit")

    def after_fit(self) -> None:
        best = self.trainer.checkpoint_callback.best_model_path if self.trainer.checkpoint_callback else ""
        if self._get(self.config, "test_after_fit"):
            self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)
        log_model = self._get(self.config, "log_model")
        if log_model or (log_model is None and not self.run_smoke_reason):
            from core.serving import log_trained_model

            last = self.trainer.checkpoint_callback.last_model_path if self.trainer.checkpoint_callback else ""
            log_trained_model(self.trainer, self.model, self.datamodule, best or last)

    def before_validate(self) -> None:
        self._configure_tracking("validate")

    def before_test(self) -> None:
        self._configure_tracking("test")

    def before_predict(self) -> None:
        self._configure_tracking("predict")

    def _run_subcommand(self, subcommand: str) -> None:
        """Lightning's, with a checkpoint that does not fit the config named in one line."""
        try:
            super()._run_subcommand(subcommand)
        except RuntimeError as err:
            ckpt = self._get(self.config_init, "ckpt_path")
            if "Error(s) in loading state_dict" not in str(err) or not ckpt:
                raise
            first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), str(err))
            raise ValueError(
                f"--ckpt_path {ckpt}: the checkpoint does not fit the config ({first}); use the config it was "
                "trained with (its run's config.yaml artifact) or a checkpoint of this one"
            ) from None

    def _configure_tracking(self, subcommand: str) -> None:
        """Name the experiment and the run and tag it, before the logger creates the run (module docstring)."""
        task: BaseTask = self.model
        loggers = [logger for logger in self.trainer.loggers if isinstance(logger, MLflowLogger)]
        if not loggers:
            return
        for logger in loggers:  # a server that is down fails here, in seconds, naming its URI
            check_tracking_uri(logger._tracking_uri)
        dataset = str(getattr(self.datamodule, "dataset_name", type(self.datamodule).__name__))
        experiment = task.experiment_name(dataset)
        self._dump_config()
        trainer = self.config_dump.get("trainer") or {}
        settings = task.run_settings(self.datamodule)
        tags = {**task.tracking_tags(), "dataset": dataset, "seed": str(self._get(self.config, "seed_everything"))}
        config = _config_name(self._get(self.config, "config"))
        reason = smoke_reason(trainer, subcommand, trainable=task.model_from_data or task.num_parameters() > 0)
        identity = {"config": config, "settings": settings, "kernel": tags["kernel"]}
        tags.update({
            "subcommand": subcommand, "config": config, **settings,
            "settings": " ".join(f"{k}={v}" for k, v in settings.items()),
            "smoke": str(bool(reason)).lower(), "smoke_reason": reason,
            "run_key": f"{run_name(tags['model'], **identity)} seed={tags['seed']}",
        })
        source = self._checkpoint_source(subcommand, experiment, tags["run_key"], loggers[0])
        if source:
            tags.update({"resumed_from" if subcommand == "fit" else "checkpoint_run": source[0]})
            if subcommand == "fit":
                tags["resumed_from_step"] = str(source[1])
            elif not reason:  # testing a smoke fit's weights is a smoke run too
                reason = _smoke_of_run(loggers[0], source[0])
            tags.update({"smoke": str(bool(reason)).lower(), "smoke_reason": reason})
        self.run_smoke_reason = reason
        name = run_name(
            tags["model"], subcommand=subcommand, smoke=bool(reason), resumed=bool(source) and subcommand == "fit", **identity,
        )
        sizes = {} if task.model_from_data else {"params": task.num_parameters()}
        for logger in loggers:
            logger.configure(experiment, name, {k: v for k, v in tags.items() if v != ""})
            # Lightning's resolved config of the running subcommand, as a plain dict, and the budget
            logger.log_hyperparams({**sizes, **_flat_config(self.config_dump), **budget_params(trainer)})

    def _checkpoint_source(
        self, subcommand: str, experiment: str, run_key: str, logger: MLflowLogger,
    ) -> tuple[str, int] | None:
        """The (run id, global step) of the checkpoint this subcommand starts from, None without one.

        Resolves `--ckpt_path last` first (module docstring), in place, for Lightning to load.
        """
        if self.subcommand is None:  # built with run=False (`fit_and_test`): no ckpt_path argument
            return None
        arguments = self.config_init[self.subcommand]
        ckpt = arguments.get("ckpt_path")
        if ckpt == "last" and subcommand == "fit":
            ckpt = _last_checkpoint(logger, experiment, run_key)
            arguments["ckpt_path"] = ckpt
            if ckpt is None:
                print(f"attn fit: --ckpt_path last: no last.ckpt of an earlier `{run_key}` fit in {experiment}; "
                      "training from the start", file=sys.stderr)
        if not ckpt or not Path(ckpt).is_file():
            return None
        try:
            state = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
        except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear message
            raise ValueError(f"--ckpt_path {ckpt}: not a readable Lightning checkpoint ({_load_error(err)}); "
                             "give a .ckpt written by `attn fit`") from None
        run = (state.get("mlflow_run") or {}).get("run_id") or _run_id_from_path(Path(ckpt))
        return (run, int(state.get("global_step", 0))) if run else None


def _route_predict_path(config: Namespace) -> None:
    """`--predict_path` into the DataModule's `predict_path`, and the checkpoint into its `preprocessor_from`.

    A DataModule whose `setup` needs training-time state before the model is built (recsys: the
    vocabularies size the embeddings) takes `preprocessor_from`; it gets the checkpoint being predicted with.
    """
    path, data = config.get("predict_path"), config.get("data")
    if not path:
        raise ValueError("attn predict: --predict_path is required (a file or folder of your own input, in the "
                         "format the domain's README gives)")
    if not Path(path).exists():
        raise FileNotFoundError(f"--predict_path {path}: no such file or folder")
    accepted = inspect.signature(import_object(data.class_path)).parameters
    if "predict_path" not in accepted:
        raise ValueError(f"--predict_path: {data.class_path} does not read your own input (it takes no predict_path)")
    data.init_args.predict_path = str(path)
    ckpt = config.get("ckpt_path")
    if "preprocessor_from" in accepted and ckpt and not data.init_args.get("preprocessor_from"):
        data.init_args.preprocessor_from = str(ckpt)


def _load_error(err: BaseException) -> str:
    """Why `torch.load` refused a file, in a few words (torch's own text advises `weights_only=False`)."""
    if isinstance(err, pickle.UnpicklingError):
        return "not a torch file, or one holding pickled classes"
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0][:120]}" if str(err).strip() else type(err).__name__


def _smoke_of_run(logger: MLflowLogger, run_id: str) -> str:
    """`checkpoint of a smoke fit (...)` when the run `run_id` is a smoke run of this store, else ""."""
    from mlflow.exceptions import MlflowException

    try:
        tags = logger._mlflow_client.get_run(run_id).data.tags
    except MlflowException:  # a checkpoint from another store
        return ""
    return f"checkpoint of a smoke fit ({tags.get('smoke_reason', '')})" if tags.get("smoke") == "true" else ""


def _config_name(configs: Any) -> str:
    """The stem of the first `--config` file (`patchtst_etth1`); "" for none or a saved `config.yaml`."""
    if not configs:
        return ""
    first = configs[0] if isinstance(configs, list | tuple) else configs
    stem = Path(str(getattr(first, "relative", first))).stem
    return "" if stem == "config" else stem


def _run_id_from_path(ckpt: Path) -> str | None:
    """The run id in Lightning's default checkpoint folder `<root>/<experiment id>/<run id>/checkpoints/`."""
    run = ckpt.parent.parent.name if ckpt.parent.name == "checkpoints" else ""
    return run if re.fullmatch(r"[0-9a-f]{32}", run) else None


def _last_checkpoint(logger: MLflowLogger, experiment: str, run_key: str) -> str | None:
    """The `last.ckpt` of the newest earlier fit with `run_key` in `experiment` (None if there is none)."""
    client = logger._mlflow_client
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    key = run_key.replace("'", "\\'")
    runs = client.search_runs(
        [found.experiment_id], f"tags.run_key = '{key}' and tags.subcommand = 'fit'",
        order_by=["attributes.start_time DESC"], max_results=50,
    )
    for run in runs:
        folder = run.data.tags.get("checkpoint_dir")
        if folder and (Path(folder) / "last.ckpt").is_file():
            return str(Path(folder) / "last.ckpt")
    return None


# The sizes a network takes from its data (module docstring): the name, and whether the DataModule
# gives it as its `__init__` argument or as an attribute of the built object (known without `setup`).
_DATA_SIZES: tuple[tuple[str, Literal["argument", "attribute"]], ...] = (
    ("seq_len", "argument"),
    ("pred_len", "argument"),
    ("scale", "argument"),
    ("channels", "attribute"),
)
_NETWORK = "model.init_args.model"


def _link_data_sizes(parser: LightningArgumentParser) -> None:
    """Link each size of `_DATA_SIZES` from the data into the network, on parse.

    Each link's sources are the data's value (`data.init_args.<name>`, or the whole `data` spec for
    an attribute), the network's own `<name>` and the network's class path. jsonargparse skips a
    parse link when a source key is missing from the parsed config, so a link applies only where
    the DataModule takes the argument and the network the parameter. (An `apply_on="instantiate"`
    link from `data.channels` would be the textbook form of the attribute links, but Lightning 2.6
    then fails to build any network all of whose arguments are linked, such as `Repeat`.)
    """
    for name, kind in _DATA_SIZES:
        target = f"{_NETWORK}.init_args.{name}"
        source = f"data.init_args.{name}" if kind == "argument" else "data"
        parser.link_arguments(
            (source, target, f"{_NETWORK}.class_path"), target, compute_fn=_size_from_data(name, kind), apply_on="parse",
        )


def _size_from_data(name: str, kind: Literal["argument", "attribute"]) -> Callable[[Any, Any, str], Any]:
    """The compute_fn of the link of `name`: the data's value, unless the network contradicts it.

    The network's own value is read only to refuse a contradiction: one that is neither the data's
    nor the network class's default was typed by someone (a stale duplicate in a config, an
    override of the wrong key), and replacing it silently would hide that. A DataModule without
    the attribute leaves the network's value as it is.
    """

    def from_data(data: Any, network_value: Any, network_class_path: str) -> Any:
        if kind == "argument":
            data_value, key = data, f"data.init_args.{name}"
        else:
            data_value, key = getattr(_build_data(data), name, network_value), f"the data's {name}"
        if network_value != data_value and network_value != _init_default(network_class_path, name):
            raise ValueError(
                f"{name} is set twice and differently: {key}={data_value!r} but "
                f"{_NETWORK}.init_args.{name}={network_value!r}; the network takes it from the data, so "
                + (f"set data.init_args.{name} only" if kind == "argument" else f"drop {_NETWORK}.init_args.{name}")
            )
        return data_value

    from_data.__name__ = f"{name}_from_data"  # how `attn fit --help` lists the link
    return from_data


def _build_data(spec: Namespace | None) -> L.LightningDataModule | None:
    """The DataModule of a parsed `data` spec (`class_path`, `init_args`); cheap, as a DataModule's `__init__` does no I/O."""
    if spec is None:
        return None
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(L.LightningDataModule, "data")
    return parser.instantiate(parser.parse_object({"data": spec.clone().as_dict()})).data


def _init_default(class_path: str, name: str) -> Any:
    """The default of `__init__` argument `name` of the class at `class_path` (`inspect.Parameter.empty` if none)."""
    parameter = inspect.signature(import_object(class_path)).parameters.get(name)
    return inspect.Parameter.empty if parameter is None else parameter.default


def _flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten the model, data and seed entries of a config into `a.b.c` keys for MLflow params."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if not prefix and key not in ("model", "data", "seed_everything"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat_config(value, prefix=f"{name}."))
        elif value is not None:
            flat[name.replace(".init_args", "")] = value
    return flat


def fit_and_test(
    args: list[str], *, test: Literal["best", "last"] = "best", on_built: Callable[[BaseTask], None] | None = None,
) -> tuple[BaseTask, L.Trainer, dict[str, float], float]:
    """Fit `args` exactly as `attn fit` would, then test; the one code path of every training benchmark.

    Args:
        args: `attn fit` arguments (`--config ...` and overrides).
        test: `best` tests the best checkpoint by `checkpoint.monitor` (the last one if none was
            saved); `last` tests the weights as training left them (runs without validation).
        on_built: called with the task once the CLI has built it, before training (to measure the
            untrained model's cost).

    A task without trainable parameters (classical baselines) is not fitted: it is tested as built.
    Returns the task, its trainer, the test metrics and the seconds spent fitting.
    """
    if test not in ("best", "last"):
        raise ValueError(f"fit_and_test: test must be 'best' or 'last', got {test!r}")
    cli = AttnCLI(args=args, run=False)
    task, trainer = cli.model, cli.trainer
    if on_built is not None:
        on_built(task)
    cli.before_fit()  # MLflow experiment, run tags, config params
    start = time.perf_counter()
    fitted = task.model_from_data or task.num_parameters() > 0
    if fitted:
        trainer.fit(task, datamodule=cli.datamodule)
    seconds = time.perf_counter() - start
    ckpt = None  # the weights in memory: as built, or as training left them
    if fitted and test == "best" and trainer.checkpoint_callback is not None:
        ckpt = trainer.checkpoint_callback.best_model_path or None
    (result,) = trainer.test(task, datamodule=cli.datamodule, ckpt_path=ckpt, verbose=False)
    return task, trainer, {name: float(value) for name, value in result.items()}, seconds
