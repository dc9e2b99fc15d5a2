"""The base LightningModule every domain task derives from.

A task owns the loss, the metrics and the optimizer; the wrapped `model` is a plain `nn.Module`
that knows nothing about Lightning. The optimizer and LR schedule come from the config as
callables (Lightning CLI's dependency injection), e.g.::

    optimizer:
      class_path: torch.optim.Adam
      init_args: {lr: 0.005}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from torch import Tensor, nn

Role = Literal["auto", "baseline", "model"]


class BaseTask(L.LightningModule):
    """Shared training glue: optimizer/scheduler from config, metric names, tracking tags.

    Args:
        model: the network (`class_path` in the config); its class attribute `role`
            (`"baseline"` or `"model"`) and attribute `kernel` become MLflow tags.
        optimizer: a callable taking the parameters (default Adam with torch's default lr).
        lr_scheduler: optional callable taking the optimizer; stepped every epoch unless it is
            a `OneCycleLR`-style per-step schedule (see `scheduler_interval`).
        scheduler_interval: `"epoch"` or `"step"`.
        role: overrides the model's own role tag.
    """

    domain: ClassVar[str] = "core"
    # what the task does (`forecast`, `lowlight`, `sr`, ...): the middle of its MLflow experiment name
    task_name: ClassVar[str] = "task"
    # True where the model is built from the data in `configure_model` (its size is unknown when
    # the CLI logs the `params` param; such a task logs the metric `num_parameters` once built)
    model_from_data: ClassVar[bool] = False

    def __init__(
        self,
        model: nn.Module,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["epoch", "step"] = "epoch",
        role: Role = "auto",
    ) -> None:
        super().__init__()
        # Under the CLI this stores the config (class paths and arguments), so `Task.load_from_checkpoint(CKPT)`
        # rebuilds the task without YAML and the checkpoint loads with `weights_only=True`; built in Python,
        # the modules and callables are left out (they would be pickled).
        under_cli = _given_hyperparameters.get() is not None
        self.save_hyperparameters(logger=False, ignore=None if under_cli else ["model", "optimizer", "lr_scheduler"])
        self.model = model
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.scheduler_interval = scheduler_interval
        self.role = role

    def forward(self, *args, **kwargs):  # noqa: D102 - delegates to the model
        return self.model(*args, **kwargs)

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:  # parameter-free baselines (e.g. Repeat) still run through the Trainer
            params = [nn.Parameter(torch.zeros(1))]
        optimizer = self.optimizer(params)
        if self.lr_scheduler is None:
            return optimizer
        scheduler = self.lr_scheduler(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval}}

    def on_fit_start(self) -> None:
        self.on_data_ready()

    def on_test_start(self) -> None:
        self.on_data_ready()

    def on_data_ready(self) -> None:
        """Called when fitting or testing starts, once the DataModule is set up: a task checks the
        data against its model here and logs what the data holds (`log_run_params`)."""

    def log_run_params(self, params: Mapping[str, Any], metrics: Mapping[str, float] | None = None) -> None:
        """Log `params` (and, once, `metrics` at step 0) to every logger of the run."""
        for logger in self.loggers:
            logger.log_hyperparams(dict(params))
            if metrics:
                logger.log_metrics(dict(metrics), step=0)

    def log_metrics(self, stage: str, metrics: Mapping[str, Tensor | float], batch_size: int | None = None) -> None:
        """Log `metrics` under the shared names `<stage>/<name>` (e.g. `test/mse`)."""
        on_step = stage == "train"
        self.log_dict(
            {f"{stage}/{name}": value for name, value in metrics.items()},
            on_step=on_step, on_epoch=True, prog_bar=stage != "test", batch_size=batch_size, sync_dist=not on_step,
        )

    @classmethod
    def experiment_name(cls, dataset: str) -> str:
        """The MLflow experiment of this task on `dataset`: `<domain>/<task>/<dataset>`, e.g. `vision/sr/Set5`.

        Settings that vary inside a task and dataset (horizon, scale, split, seed) are run params and tags.
        """
        return f"{cls.domain}/{cls.task_name}/{dataset}"

    # The settings that tell runs of one task and dataset apart (besides model, config and kernel),
    # as (name shown, attribute read from the DataModule, then from the network); see `run_settings`.
    distinguishing_settings: ClassVar[tuple[tuple[str, str], ...]] = (
        ("horizon", "pred_len"), ("scale", "scale"), ("split", "split"),
    )

    def run_settings(self, data: L.LightningDataModule | None = None) -> dict[str, str]:
        """The settings of `distinguishing_settings` this run has, e.g. `{"horizon": "96"}`.

        They go into the run's name and tags and are the columns `attn-compare` and `attn report`
        group by, so a horizon-192 run never hides a horizon-96 one. A value is read from the data
        first, then the network; booleans are skipped (`ETTDataModule.scale` is standardization,
        not an upscaling factor). A task whose distinguishing settings live elsewhere overrides
        `distinguishing_settings` or this method.
        """
        settings: dict[str, str] = {}
        for name, attribute in self.distinguishing_settings:
            for source in (data, self.model):
                value = getattr(source, attribute, None) if source is not None else None
                if isinstance(value, int | str) and not isinstance(value, bool) and value != "":
                    settings[name] = str(value)
                    break
        return settings

    def tracking_tags(self) -> dict[str, str]:
        """MLflow tags describing this run: domain, model, role and attention kernel."""
        role = self.role if self.role != "auto" else getattr(self.model, "role", "model")
        return {
            "domain": self.domain,
            "task": self.task_name,
            "model": type(self.model).__name__,
            "role": role,
            "kernel": str(getattr(self.model, "kernel", "none")),
        }

    def write_predictions(self, predictions: list[Any], datamodule: L.LightningDataModule, output: Path) -> list[Path]:
        """Write the outputs of `predict_step` (one entry per batch) under `output`; return the paths written.

        `attn predict` calls it through `core.predict.PredictionWriter`; each domain's task writes its
        outputs in its field's format (the contract: `core.predict`).
        """
        raise ValueError(f"{type(self).__name__} cannot write predictions yet: `attn predict` is not supported for "
                         f"the {self.domain} {self.task_name} task")

    # Serving raw input through MLflow (`core.serving`): a task that serves implements all three.
    @classmethod
    def serving_input(cls, model_input: Any, folder: Path) -> Path:
        """Write raw `model_input` (a DataFrame, array or list, as the domain's README gives) as the file or
        folder its DataModule's `predict_path` reads; return that path."""
        raise ValueError(f"{cls.__name__} does not serve raw input through MLflow yet")

    @classmethod
    def serving_output(cls, paths: list[Path]) -> Any:
        """The predictions `write_predictions` wrote to `paths`, as the served answer (a DataFrame or array)."""
        raise ValueError(f"{cls.__name__} does not serve raw input through MLflow yet")

    def serving_example(self, datamodule: L.LightningDataModule) -> Any | None:
        """A small raw input from the data (the logged model's input example); None: the task does not serve."""
        return None

    def serving_signature(self, example: Any, output: Any) -> Any:
        """The logged model's MLflow signature, inferred from the example; for an array example (audio, images,
        cubes) every axis is left free, as MLflow's inference would fix all but the first (only rank and dtype stay)."""
        import numpy as np
        from mlflow.models import infer_signature
        from mlflow.types.schema import Schema, TensorSpec

        signature = infer_signature(example, output)
        if isinstance(example, np.ndarray):
            signature.inputs = Schema([TensorSpec(example.dtype, (-1,) * example.ndim)])
        if isinstance(output, np.ndarray):
            signature.outputs = Schema([TensorSpec(output.dtype, (-1,) * output.ndim)])
        return signature

    def num_parameters(self) -> int:
        """Trainable parameters of the wrapped model."""
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)
