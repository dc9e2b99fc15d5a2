"""`attn`: the suite's Lightning CLI.

    attn fit --config timeseries/configs/dlinear_etth1.yaml
    attn test --config ... --ckpt_path path/to/last.ckpt
    attn fit --config ... --print_config

Models and data are named by `class_path` (any `BaseTask` subclass and any LightningDataModule).
Every run logs to MLflow (experiment `<domain>/<task>/<dataset>`, see `BaseTask.experiment_name`),
saves its resolved config as an artifact, and keeps a `last.ckpt` for `--ckpt_path` resume.

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
import time
from collections.abc import Callable
from typing import Any, Literal

import lightning as L
from jsonargparse import ArgumentParser, Namespace, lazy_instance
from jsonargparse.typing import import_object
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from core.callbacks import SaveConfigToMLflow
from core.task import BaseTask
from core.tracking import MLflowLogger


class AttnCLI(LightningCLI):
    """LightningCLI with MLflow logging, tags and config artifacts wired in."""

    def __init__(self, args: list[str] | None = None, run: bool = True, **kwargs: Any) -> None:
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
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True})
        parser.add_argument(
            "--test_after_fit", type=bool, default=False,
            help="after `fit`, test the best checkpoint (by checkpoint.monitor, else the last) in the same MLflow run",
        )
        _link_data_sizes(parser)

    def before_fit(self) -> None:
        self._configure_tracking()

    def after_fit(self) -> None:
        if not self._get(self.config, "test_after_fit"):
            return
        best = self.trainer.checkpoint_callback.best_model_path if self.trainer.checkpoint_callback else ""
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)

    def before_validate(self) -> None:
        self._configure_tracking()

    def before_test(self) -> None:
        self._configure_tracking()

    def before_predict(self) -> None:
        self._configure_tracking()

    def _configure_tracking(self) -> None:
        """Name the experiment `<domain>/<task>/<dataset>` and tag the run before the logger creates it."""
        task: BaseTask = self.model
        dataset = getattr(self.datamodule, "dataset_name", type(self.datamodule).__name__)
        tags = {**task.tracking_tags(), "dataset": str(dataset), "seed": str(self._get(self.config, "seed_everything"))}
        tags["subcommand"] = str(self.subcommand)
        for logger in self.trainer.loggers:
            if isinstance(logger, MLflowLogger):
                logger.configure(task.experiment_name(str(dataset)), tags["model"], tags)
                # Lightning's resolved config of the running subcommand, as a plain dict
                sizes = {} if task.model_from_data else {"params": task.num_parameters()}
                logger.log_hyperparams({**sizes, **_flat_config(self.config_dump)})


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


def main(args: list[str] | None = None) -> None:
    """Console entry point of `attn`."""
    AttnCLI(args=args)


if __name__ == "__main__":
    main()


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
