"""`CTRTask`: the LightningModule of every click-through-rate model.

Loss is binary cross-entropy on the logits. `val/roc_auc`, `val/logloss`, `test/roc_auc` and
`test/logloss` are computed over the whole split by torchmetrics metrics (`BinaryAUROC` keeps every
prediction, so the AUC is exact and never a mean of batch AUCs; under DDP the ranks' states are
gathered). Log loss is the mean per-row cross-entropy of the clipped probabilities, as scikit-learn's.
The model is built from the DataModule's `FieldLayout` in `configure_model` (see
`recsys.models.base`); its parameter count is logged as the metric `num_parameters` once built.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryAUROC
from torchmetrics.functional.classification import binary_auroc, binary_roc
from torchmetrics.utilities import dim_zero_cat

from core.task import BaseTask
from core.tracking import log_figure
from recsys.models.base import CTRModel
from recsys.models.embedding import Batch

# probabilities are clipped to [eps, 1 - eps] in the log loss, so one confident miss stays finite
LOGLOSS_EPS = 1e-7


class CTRTask(BaseTask):
    """Train and evaluate a CTR model `model(batch) -> logits (batch,)`.

    Args:
        model: the network (`class_path` in the config), e.g. `recsys.models.hiformer.Hiformer`.
        **kwargs: `BaseTask`'s optimizer, lr_scheduler, scheduler_interval and role.
    """

    domain = "recsys"
    task_name = "ctr"
    model_from_data = True

    def __init__(self, model: CTRModel, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        # thresholds=None: every probability is kept, the AUC is exact (ties count 1/2)
        self.val_roc_auc, self.test_roc_auc = BinaryAUROC(thresholds=None), BinaryAUROC(thresholds=None)
        # float64 sums, as scikit-learn's log_loss, over millions of rows
        self.val_logloss = MeanMetric().set_dtype(torch.float64)
        self.test_logloss = MeanMetric().set_dtype(torch.float64)

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

    def _update(self, batch: Batch, roc_auc: BinaryAUROC, logloss: MeanMetric) -> None:
        # probabilities, not logits: BinaryAUROC would squash a batch of logits with a sigmoid only
        # when one falls outside [0, 1], mixing scales between batches
        probabilities = torch.sigmoid(self.model(batch).float())
        labels = batch["label"]
        roc_auc.update(probabilities, labels.long())
        # written out: F.binary_cross_entropy refuses to run under autocast
        p, y = probabilities.double().clamp(LOGLOSS_EPS, 1 - LOGLOSS_EPS), labels.double()
        logloss.update(-(y * p.log() + (1 - y) * (1 - p).log()))

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._update(batch, self.val_roc_auc, self.val_logloss)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._update(batch, self.test_roc_auc, self.test_logloss)

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """Click probabilities `(batch,)`."""
        return torch.sigmoid(self.model(batch))

    def on_validation_epoch_end(self) -> None:
        self._finish("val", self.val_roc_auc, self.val_logloss)

    def on_test_epoch_end(self) -> None:
        if self.test_roc_auc.update_called:
            with self.test_roc_auc.sync_context():  # the whole split on every rank, as the AUC sees it
                probabilities = dim_zero_cat(self.test_roc_auc.preds).cpu()
                labels = dim_zero_cat(self.test_roc_auc.target).cpu()
            if labels.unique().numel() == 2:
                log_figure(self.trainer, roc_figure(probabilities, labels, type(self.model).__name__), "roc.png")
        self._finish("test", self.test_roc_auc, self.test_logloss)

    def _finish(self, stage: str, roc_auc: BinaryAUROC, logloss: MeanMetric) -> None:
        """Log the split's metrics (computed values are already synced across ranks) and reset them."""
        if roc_auc.update_called:
            self.log_metrics(stage, {"roc_auc": roc_auc.compute(), "logloss": logloss.compute()})
        roc_auc.reset()
        logloss.reset()

    def on_data_ready(self) -> None:
        """Log the data's cleaning counts and field count, and the size of the model built from it."""
        data = getattr(self.trainer, "datamodule", None)
        params: dict[str, int | str] = {}
        if data is not None and hasattr(data, "skipped_lines"):
            params["skipped_lines"] = data.skipped_lines
            params["filled_values"] = getattr(data, "filled_values", 0)
            params["fields"] = data.layout.num_fields
            params["split_protocol"] = getattr(data, "split_protocol", "")
        self.log_run_params(params, {"num_parameters": float(self.num_parameters())})


def roc_figure(probabilities: Tensor, labels: Tensor, name: str) -> Figure:
    """ROC curve of one model's test predictions: `probabilities` and 0/1 `labels`, both `(rows,)`."""
    labels = labels.long()
    fpr, tpr, _ = binary_roc(probabilities, labels)
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(fpr, tpr, label=f"{name} (AUC {binary_auroc(probabilities, labels).item():.4f})")
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig
