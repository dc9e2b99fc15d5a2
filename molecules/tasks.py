"""`MoleculePropertyTask`: the LightningModule of MAT and R-MAT (regression or classification).

Regression trains MSE on targets standardized with the training split's mean and standard
deviation (stored as buffers, so checkpoints predict on the original scale) and reports
`rmse`/`mae` on the original scale over the whole split (torchmetrics `MeanSquaredError(squared=False)`,
`MeanAbsoluteError`). Classification trains binary cross-entropy per task and reports `roc_auc`,
the mean over tasks of each task's exact whole-split ROC-AUC (`core.metrics.MaskedMultilabelAUROC`:
tasks whose split holds a single class are left out, as scikit-learn refuses them). Missing labels
are masked out of the loss and the metrics. The metrics accumulate per batch and are synced across
DDP ranks by torchmetrics. After testing, the attention of one test molecule is drawn over its
structure and logged as the MLflow artifact `attention/<model>.png`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

from core.metrics import MaskedMultilabelAUROC
from core.task import BaseTask
from core.tracking import log_figure

Batch = dict[str, Tensor]


def masked_loss(prediction: Tensor, target: Tensor, label_mask: Tensor, task_type: str) -> Tensor:
    """Mean MSE (regression) or BCE-with-logits (classification) over present labels only."""
    if task_type == "regression":
        per_label = (prediction - target) ** 2
    else:
        per_label = F.binary_cross_entropy_with_logits(prediction, target, reduction="none")
    weights = label_mask.to(per_label.dtype)
    return (per_label * weights).sum() / weights.sum().clamp_min(1.0)


def split_metrics(task_type: Literal["regression", "classification"]) -> MetricCollection:
    """The whole-split metrics of `task_type`, fed batch by batch with `update_split_metrics`.

    Regression: `rmse` and `mae` over every present label; classification: `roc_auc`. States are
    float64, as the numpy code before them, so long splits lose no precision in their sums.
    """
    if task_type == "regression":
        metrics = MetricCollection({"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError()})
    else:
        metrics = MetricCollection({"roc_auc": MaskedMultilabelAUROC()})
    return metrics.set_dtype(torch.float64)


def update_split_metrics(metrics: MetricCollection, prediction: Tensor, target: Tensor, label_mask: Tensor) -> None:
    """Add one batch `(batch, tasks)` to `split_metrics(...)`: only labels where `label_mask` is True count."""
    prediction, target, label_mask = prediction.detach().double(), target.double(), label_mask.bool()
    if "roc_auc" in metrics:
        metrics.update(prediction, target, label_mask)
    else:
        metrics.update(prediction[label_mask], target[label_mask])


def evaluate_split(task_type: Literal["regression", "classification"], prediction: np.ndarray | Tensor,
                   target: np.ndarray | Tensor, label_mask: np.ndarray | Tensor) -> dict[str, float]:
    """`split_metrics(task_type)` of one whole split at once (e.g. a random forest's test predictions)."""
    metrics = split_metrics(task_type)
    update_split_metrics(metrics, *(torch.as_tensor(a) for a in (prediction, target, label_mask)))
    return {name: float(value) for name, value in metrics.compute().items()}


class MoleculePropertyTask(BaseTask):
    """Train and evaluate `model(atoms, pairs, distances, adjacency, mask) -> (batch, tasks)`.

    Batches come from `molecules.data.MoleculeDataModule`.

    Args:
        model: `molecules.models.rmat.RMAT` or `molecules.models.mat.MAT` (`class_path`).
        task_type: `regression` or `classification`; must match the data module's.
        attention_molecule: index (in the test split) of the molecule whose attention is drawn.
        **kwargs: `BaseTask`'s optimizer, lr_scheduler (e.g. `core.schedules.WarmupCosineLR`),
            scheduler_interval and role.
    """

    domain = "molecules"
    task_name = "property"

    def __init__(
        self,
        model: nn.Module,
        task_type: Literal["regression", "classification"] = "regression",
        attention_molecule: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self.task_type = task_type
        self.attention_molecule = attention_molecule
        outputs = getattr(model, "head", None)
        tasks = outputs.out_features if isinstance(outputs, nn.Linear) else 1
        self.register_buffer("target_mean", torch.zeros(tasks))
        self.register_buffer("target_std", torch.ones(tasks))
        self.val_metrics, self.test_metrics = split_metrics(task_type), split_metrics(task_type)

    def predict_batch(self, batch: Batch) -> Tensor:
        """Predictions on the original target scale (logits for classification)."""
        out = self.model(batch["atoms"], batch["pairs"], batch["distances"], batch["adjacency"], batch["mask"])
        if self.task_type == "regression":
            out = out * self.target_std + self.target_mean
        return out

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        out = self.model(batch["atoms"], batch["pairs"], batch["distances"], batch["adjacency"], batch["mask"])
        target = batch["y"]
        if self.task_type == "regression":
            target = (target - self.target_mean) / self.target_std
        loss = masked_loss(out, target, batch["y_mask"], self.task_type)
        self.log_metrics("train", {"loss": loss}, batch_size=target.shape[0])
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        update_split_metrics(self.val_metrics, self.predict_batch(batch), batch["y"], batch["y_mask"])

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        update_split_metrics(self.test_metrics, self.predict_batch(batch), batch["y"], batch["y_mask"])

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        out = self.predict_batch(batch)
        return torch.sigmoid(out) if self.task_type == "classification" else out

    @staticmethod
    def epoch_metrics(metrics: MetricCollection) -> dict[str, float]:
        """The split's metrics (already synced across ranks; empty when no batch came), then a reset."""
        updated = any(metric.update_called for metric in metrics.values())
        values = {name: float(v) for name, v in metrics.compute().items()} if updated else {}
        metrics.reset()
        return values

    def on_validation_epoch_end(self) -> None:
        metrics = self.epoch_metrics(self.val_metrics)
        if metrics:
            # checkpoint.monitor on val/loss works for both task types: rmse, or 1 - roc_auc
            loss = metrics["rmse"] if "rmse" in metrics else 1.0 - metrics["roc_auc"]
            self.log_metrics("val", {**metrics, "loss": 0.0 if math.isnan(loss) else loss})

    def on_test_epoch_end(self) -> None:
        metrics = self.epoch_metrics(self.test_metrics)
        if metrics:
            self.log_metrics("test", metrics)
        self._log_attention_map()

    # ---- setup and tracking --------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        data = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if data is None:
            return
        if getattr(data, "task_type", self.task_type) != self.task_type:
            raise ValueError(
                f"tasks.py: model.init_args.task_type={self.task_type!r} but the data module has "
                f"task_type={data.task_type!r}; set both to the same value"
            )
        want = self.target_mean.numel()
        if getattr(data, "num_tasks", want) != want:
            raise ValueError(
                f"tasks.py: the model predicts {want} target(s) but {data.path} gives {data.num_tasks} "
                f"({data.target_columns}); set model.init_args.model.init_args.outputs: {data.num_tasks}"
            )
        if stage == "fit" and data.target_mean is not None:
            self.target_mean.copy_(torch.tensor(data.target_mean))
            self.target_std.copy_(torch.tensor(data.target_std))

    def on_data_ready(self) -> None:
        """Log what featurization found and the split sizes."""
        data = getattr(self.trainer, "datamodule", None)
        if data is None or not hasattr(data, "skipped_rows"):
            return
        stats = data.featurize_stats
        params = {
            "skipped_rows": data.skipped_rows, "featurize_seconds": round(data.featurize_seconds, 2),
            "featurize_computed": stats.computed, "featurize_cached": stats.cached,
            "conformer_fallbacks": stats.fallbacks, "split": data.split,
            "train_size": len(data.train_set), "val_size": len(data.val_set), "test_size": len(data.test_set),
        }
        self.log_run_params(params, {"data/skipped_rows": float(data.skipped_rows)})

    def _log_attention_map(self) -> None:
        from molecules.data.datamodule import collate_molecules
        from molecules.drawing import attention_figure

        data = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if data is None or getattr(data, "test_set", None) is None or not hasattr(self.model, "attention_maps"):
            return
        if self.trainer.sanity_checking or not self.loggers:
            return
        index = min(self.attention_molecule, len(data.test_set) - 1)
        batch = collate_molecules([data.test_set[index]])
        batch = {k: v.to(self.device) for k, v in batch.items()}
        maps = self.model.attention_maps(batch["atoms"], batch["pairs"], batch["distances"], batch["adjacency"], batch["mask"])
        smiles = data.test_set.smiles[index]
        figure = attention_figure(smiles, [m[0].float().cpu().numpy() for m in maps],
                                  title=f"{type(self.model).__name__}: {smiles}")
        log_figure(self.trainer, figure, f"attention/{type(self.model).__name__}.png")
