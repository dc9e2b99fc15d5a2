"""`attn`: the suite's Lightning CLI.

    attn fit --config timeseries/configs/dlinear_etth1.yaml
    attn test --config ... --ckpt_path path/to/last.ckpt
    attn fit --config ... --print_config

Models and data are named by `class_path` (any `BaseTask` subclass and any LightningDataModule).
Every run logs to MLflow (experiment `<domain>/<dataset>`), saves its resolved config as an
artifact, and keeps a `last.ckpt` for `--ckpt_path` resume.
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from jsonargparse import lazy_instance
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
        """Name the experiment `<domain>/<dataset>` and tag the run before the logger creates it."""
        task: BaseTask = self.model
        dataset = getattr(self.datamodule, "dataset_name", type(self.datamodule).__name__)
        tags = {**task.tracking_tags(), "dataset": str(dataset), "seed": str(self._get(self.config, "seed_everything"))}
        tags["subcommand"] = str(self.subcommand)
        for logger in self.trainer.loggers:
            if isinstance(logger, MLflowLogger):
                logger.configure(f"{task.domain}/{dataset}", tags["model"], tags)
                # Lightning's resolved config of the running subcommand, as a plain dict
                sizes = {} if task.model_from_data else {"params": task.num_parameters()}
                logger.log_hyperparams({**sizes, **_flat_config(self.config_dump)})


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


def fit_and_test(args: list[str]) -> tuple[BaseTask, L.Trainer, dict[str, float], float]:
    """Fit `args` exactly as `attn fit` would and test the best checkpoint (the last one if none).

    The one code path of every training benchmark. Returns the task, its trainer, the test metrics
    and the seconds spent fitting.
    """
    cli = AttnCLI(args=args, run=False)
    task, trainer = cli.model, cli.trainer
    cli.before_fit()  # MLflow experiment <domain>/<dataset>, run tags, config params
    start = time.perf_counter()
    trainer.fit(task, datamodule=cli.datamodule)
    seconds = time.perf_counter() - start
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    (result,) = trainer.test(task, datamodule=cli.datamodule, ckpt_path=best or None, verbose=False)
    return task, trainer, {name: float(value) for name, value in result.items()}, seconds

