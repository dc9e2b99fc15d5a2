"""Callbacks shared by every task: config saved to MLflow, early stopping that smoke runs survive,
a `last.ckpt` that is the last, the MLflow run recorded in checkpoints, attention heat maps."""

from __future__ import annotations

from typing import Any

import lightning as L
import matplotlib.pyplot as plt
import torch
from lightning.pytorch import callbacks as lightning_callbacks
from lightning.pytorch.cli import SaveConfigCallback
from torch import nn

from core.tracking import log_figure, log_tag, log_text, mlflow_loggers


class SaveConfigToMLflow(SaveConfigCallback):
    """Saves the resolved CLI config as the artifact `config.yaml` of the MLflow run.

    Lightning's stock callback writes into `trainer.log_dir`, which an MLflow logger on a
    database URI does not have; here the config goes to the run itself so
    `attn fit --config config.yaml` re-runs it exactly.
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs["save_to_log_dir"] = False
        super().__init__(*args, **kwargs)

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not mlflow_loggers(trainer):
            return
        log_text(trainer, self.parser.dump(self.config, skip_none=False), "config.yaml")


class EarlyStopping(lightning_callbacks.EarlyStopping):
    """Lightning's `EarlyStopping`, without the crash of a fit whose validation never ran.

    Lightning checks the monitored metric at the end of every training epoch; a fit cut short
    before its first validation (`--trainer.max_steps=5`, a resume that only finishes its epoch,
    `limit_val_batches=0`) has no such metric and Lightning raises ("Early stopping conditioned on
    metric `val/mse` which is not available"). Here the check waits for validation to have run,
    the rule Lightning's `ModelCheckpoint` already follows; once it has, a metric that is still
    missing (a misspelt `monitor`) raises as before. The arguments are Lightning's.
    `AttnCLI` uses this class for every `lightning.pytorch.callbacks.EarlyStopping` of a config.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._validated = False

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validated = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated = True
        super().on_validation_end(trainer, pl_module)

    def _run_early_stopping_check(self, trainer: L.Trainer) -> None:
        if not self._validated and self.monitor not in trainer.callback_metrics:
            return
        super()._run_early_stopping_check(trainer)


class Checkpoint(lightning_callbacks.ModelCheckpoint):
    """Lightning's `ModelCheckpoint`, with `last.ckpt` written at every validation and at the end of training.

    Lightning 2.6 writes `last.ckpt` only in a step where a top-k checkpoint is saved too, so with a
    monitored metric it holds the best weights, not the last, and resuming from it repeats the
    steps after the best. Here it is refreshed whenever the training step moved on since the last
    save, so `attn fit --ckpt_path last` continues where the run stopped. `AttnCLI`'s `checkpoint`.
    """

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self._refresh_last(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._refresh_last(trainer)

    def _refresh_last(self, trainer: L.Trainer) -> None:
        # skips sanity checks, fast_dev_run and a step already saved (Lightning's own rule)
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class TrackCheckpoints(L.Callback):
    """Links checkpoints and MLflow runs both ways, so a resumed fit knows the run it continues.

    Every checkpoint gets the key `mlflow_run` (`{"run_id", "experiment_id"}` of the run that
    wrote it), and the run gets the tag `checkpoint_dir` (where its `last.ckpt` is), which
    `attn fit --ckpt_path last` searches. `AttnCLI` adds it to every fit.
    """

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        folder = getattr(trainer.checkpoint_callback, "dirpath", None)
        if not folder:
            return
        log_tag(trainer, "checkpoint_dir", str(folder))

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        for logger in mlflow_loggers(trainer)[:1]:
            checkpoint["mlflow_run"] = {"run_id": logger.run_id, "experiment_id": logger.experiment_id}


class AttentionMapCallback(L.Callback):
    """Logs a heat map of one attention layer's weights on the first validation batch.

    The chosen module must offer `attention_weights(*args, **kwargs)` with the signature of its
    `forward` (every attention module of `core.attention` does). A forward hook records the
    layer's inputs; the weights are recomputed from them, so `forward` stays pure.

    Args:
        module: dotted name of the attention module inside the LightningModule,
            e.g. `model.encoder.layers.0.self_attn`.
        every_n_epochs: log every n validation epochs.
        head: plot this head; None averages over heads.
        sample: index of the batch element to plot.
    """

    def __init__(self, module: str, every_n_epochs: int = 1, head: int | None = None, sample: int = 0) -> None:
        self.module_name, self.every_n_epochs, self.head, self.sample = module, every_n_epochs, head, sample
        self._handle = None
        self._captured: tuple | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        module = self._module(pl_module)
        if not hasattr(module, "attention_weights"):
            raise ValueError(
                f"AttentionMapCallback: module {self.module_name!r} ({type(module).__name__}) has no attention_weights()"
            )

    def _module(self, pl_module: L.LightningModule) -> nn.Module:
        try:
            return pl_module.get_submodule(self.module_name)
        except AttributeError as err:
            raise ValueError(f"AttentionMapCallback: no module named {self.module_name!r} in {type(pl_module).__name__}") from err

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx != 0 or trainer.sanity_checking or trainer.current_epoch % self.every_n_epochs:
            return
        if not mlflow_loggers(trainer):
            return

        def hook(_module, args, kwargs):
            if self._captured is None:
                self._captured = (args, kwargs)

        self._captured = None
        self._handle = self._module(pl_module).register_forward_pre_hook(hook, with_kwargs=True)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self._handle is None:
            return
        self._handle.remove()
        self._handle = None
        if self._captured is None:
            return
        args, kwargs = self._captured
        self._captured = None
        with torch.no_grad():
            weights = self._module(pl_module).attention_weights(*args, **kwargs)
        sample = min(self.sample, weights.shape[0] - 1)
        w = weights[sample].float()
        w = w.mean(0) if self.head is None else w[self.head]
        fig, ax = plt.subplots(figsize=(5, 4.5))
        image = ax.imshow(w.cpu().numpy(), cmap="viridis", aspect="auto")
        fig.colorbar(image, ax=ax)
        title = "mean over heads" if self.head is None else f"head {self.head}"
        ax.set(title=f"{self.module_name} ({title}), epoch {trainer.current_epoch}", xlabel="key", ylabel="query")
        log_figure(trainer, fig, f"attention/{self.module_name}/epoch_{trainer.current_epoch:03d}.png")
