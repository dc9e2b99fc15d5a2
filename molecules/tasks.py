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

`attn predict --ckpt_path CKPT --predict_path mols.csv --output DIR` writes `DIR/predictions.csv`, one
line per input molecule: `index` (its row or line in the input, from 0), `smiles`, `valid`, `error`
and per target column its prediction in the target's own units (regression: the standardization
undone) or, for classification, `<target>_probability`; invalid SMILES have `valid` False and empty
predictions. The model logged to MLflow serves a DataFrame with a `smiles` column (or a list of
SMILES) and answers that table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import pandas as pd
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
        """`(batch, tasks)`: predictions in the targets' units (regression) or probabilities (classification)."""
        out = self.predict_batch(batch)
        return torch.sigmoid(out) if self.task_type == "classification" else out

    # ---- predictions on the user's molecules and serving (core.predict, core.serving) -------------
    def write_predictions(self, predictions: list[Tensor], datamodule: L.LightningDataModule, output: Path) -> list[Path]:
        """`output/predictions.csv`, one line per input molecule (module docstring)."""
        values = torch.cat([p.detach().double().cpu() for p in predictions]).numpy()
        table = dict(getattr(datamodule, "predict_table", None) or {})
        if not table:  # predicting on the test split (no predict_path)
            smiles = list(datamodule.test_set.smiles)
            table = {"index": list(range(len(smiles))), "smiles": smiles, "valid": [True] * len(smiles),
                     "error": [""] * len(smiles)}
        valid = np.asarray(table["valid"], dtype=bool)
        if int(valid.sum()) != len(values):
            raise ValueError(f"MoleculePropertyTask: {len(values)} predictions for {int(valid.sum())} valid molecules")
        columns = list(getattr(datamodule, "target_columns", None) or [f"target_{i}" for i in range(values.shape[1])])
        suffix = "_probability" if self.task_type == "classification" else ""
        for t, column in enumerate(columns):
            full = np.full(len(valid), np.nan)
            full[valid] = values[:, t]
            table[f"{column}{suffix}"] = full
        path = Path(output) / "predictions.csv"
        pd.DataFrame(table).to_csv(path, index=False)
        return [path]

    @classmethod
    def serving_input(cls, model_input: Any, folder: Path) -> Path:
        """Raw molecules (a DataFrame with a `smiles` column, any case, or a list of SMILES) as the CSV
        `predict_path` reads."""
        if isinstance(model_input, pd.DataFrame):
            column = next((c for c in model_input.columns if str(c).lower() == "smiles"), None)
            if column is None and len(model_input.columns) == 1:
                column = model_input.columns[0]
            if column is None:
                raise ValueError(f"the served model takes a DataFrame with a 'smiles' column; got {list(model_input.columns)}")
            smiles = model_input[column]
        else:
            smiles = pd.Series(list(model_input))
        path = Path(folder) / "molecules.csv"
        pd.DataFrame({"smiles": smiles.fillna("").astype(str).tolist()}).to_csv(path, index=False)
        return path

    @classmethod
    def serving_output(cls, paths: list[Path]) -> pd.DataFrame:
        """The written `predictions.csv` (module docstring)."""
        table = pd.read_csv(paths[0], dtype={"smiles": str, "error": str}, keep_default_na=False)
        for column in table.columns.difference(["index", "smiles", "valid", "error"]):  # empty cells: NaN
            table[column] = pd.to_numeric(table[column], errors="coerce")
        return table

    def serving_example(self, datamodule: L.LightningDataModule) -> pd.DataFrame | None:
        """Three SMILES of the test split (the input example of the logged model)."""
        test = getattr(datamodule, "test_set", None)
        return pd.DataFrame({"smiles": list(test.smiles[:3])}) if test is not None and len(test) else None

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
            "split_protocol": getattr(data, "split_protocol", ""),
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
