"""`CTRTask`: the LightningModule of every click-through-rate model.

Loss is binary cross-entropy on the logits. `val/auc`, `val/logloss`, `test/auc` and `test/logloss`
are computed over the whole split from every collected prediction (not averaged over batches).
The model is built from the DataModule's `FieldLayout` in `configure_model` (see
`recsys.models.base`); its parameter count is logged as the metric `num_parameters` once built.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from matplotlib.figure import Figure
from torch import Tensor

from core.task import BaseTask, Role
from core.tracking import log_figure
from recsys.metrics import log_loss, roc_auc
from recsys.models.base import CTRModel
from recsys.models.embedding import Batch


class CTRTask(BaseTask):
    """Train and evaluate a CTR model `model(batch) -> logits (batch,)`.

    Args:
        model: the network (`class_path` in the config), e.g. `recsys.models.hiformer.Hiformer`.
        optimizer: optimizer callable (Adam; lr from the config).
        lr_scheduler: optional schedule.
        scheduler_interval: `epoch` or `step`.
        role: overrides the model's `baseline` / `model` tag.
    """

    domain = "recsys"
    model_from_data = True

    def __init__(
        self,
        model: CTRModel,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["epoch", "step"] = "epoch",
        role: Role = "auto",
    ) -> None:
        super().__init__(model, optimizer, lr_scheduler, scheduler_interval, role)
        self._outputs: dict[str, list[tuple[Tensor, Tensor]]] = {"val": [], "test": []}

    def configure_model(self) -> None:
        """Build the model for the DataModule's fields (vocabularies are known only after `setup`)."""
        if getattr(self.model, "built", True):
            return
        data = getattr(self.trainer, "datamodule", None)
        layout = getattr(data, "layout", None)
        if layout is None:
            raise RuntimeError(f"{type(self.model).__name__} is not built and the trainer has no CTR DataModule to build it from")
        self.model.build(layout)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        logits = self.model(batch)
        loss = F.binary_cross_entropy_with_logits(logits, batch["label"])
        self.log_metrics("train", {"logloss": loss}, batch_size=logits.shape[0])
        return loss

    def _collect(self, stage: str, batch: Batch) -> None:
        probabilities = torch.sigmoid(self.model(batch).float())
        self._outputs[stage].append((probabilities.detach().cpu(), batch["label"].detach().cpu()))

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._collect("val", batch)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._collect("test", batch)

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """Click probabilities `(batch,)`."""
        return torch.sigmoid(self.model(batch))

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    def on_test_epoch_end(self) -> None:
        probabilities, labels = self._finish("test")
        if self.trainer is not None and probabilities.numel() and labels.unique().numel() == 2:
            log_figure(self.trainer, roc_figure(probabilities, labels, type(self.model).__name__), "roc.png")

    def _finish(self, stage: str) -> tuple[Tensor, Tensor]:
        outputs, self._outputs[stage] = self._outputs[stage], []
        if not outputs:
            return torch.zeros(0), torch.zeros(0)
        probabilities = torch.cat([p for p, _ in outputs])
        labels = torch.cat([y for _, y in outputs])
        metrics = {"auc": roc_auc(probabilities, labels), "logloss": log_loss(probabilities, labels)}
        self.log_metrics(stage, {k: torch.tensor(v) for k, v in metrics.items()})
        return probabilities, labels

    def on_fit_start(self) -> None:
        self._log_sizes()

    def on_test_start(self) -> None:
        self._log_sizes()

    def _log_sizes(self) -> None:
        data = getattr(self.trainer, "datamodule", None)
        params: dict[str, int] = {}
        if data is not None and hasattr(data, "skipped_lines"):
            params["skipped_lines"] = data.skipped_lines
            params["filled_values"] = getattr(data, "filled_values", 0)
            params["fields"] = data.layout.num_fields
        for logger in self.loggers:
            logger.log_hyperparams(params)
            logger.log_metrics({"num_parameters": float(self.num_parameters())}, step=0)


def roc_figure(probabilities: Tensor, labels: Tensor, name: str) -> Figure:
    """ROC curve of one model's test predictions."""
    order = torch.argsort(probabilities, descending=True)
    y = labels[order].double()
    tpr = torch.cat([torch.zeros(1, dtype=torch.float64), y.cumsum(0) / y.sum()])
    fpr = torch.cat([torch.zeros(1, dtype=torch.float64), (1 - y).cumsum(0) / (1 - y).sum()])
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc(probabilities, labels):.4f})")
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig
