"""`CTRTask`: the LightningModule of every click-through-rate model.

Loss is binary cross-entropy on the logits. `val/roc_auc`, `val/logloss`, `test/roc_auc` and
`test/logloss` are computed over the whole split by torchmetrics metrics (`BinaryAUROC` keeps every
prediction, so the AUC is exact and never a mean of batch AUCs; under DDP the ranks' states are
gathered). Log loss is the mean per-row cross-entropy of the clipped probabilities, as scikit-learn's.
The model is built from the DataModule's `FieldLayout` in `configure_model` (see
`recsys.models.base`); its parameter count is logged as the metric `num_parameters` once built.
Every checkpoint stores that layout (key `ctr_layout`, plain lists), so `CTRTask.load_from_checkpoint(CKPT)`
rebuilds the model without the data.

`attn predict --ckpt_path CKPT --predict_path rows.csv --output DIR` writes `DIR/predictions.csv`:
`row` (the input row's position among the file's data rows, from 0), `id` (when the input has an
`id` column) and `probability` (of a click). The model logged to MLflow serves a DataFrame of the
original columns (`serving_input`) and answers that table (`serving_output`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
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
from recsys.models.embedding import Batch, FieldLayout

# probabilities are clipped to [eps, 1 - eps] in the log loss, so one confident miss stays finite
LOGLOSS_EPS = 1e-7
LAYOUT_KEY = "ctr_layout"  # the checkpoint entry the model is rebuilt from
# a served raw input with only this column is libFM lines (a model trained on `format: libfm`)
LIBFM_COLUMN = "libfm"


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
        """Build the model for the DataModule's fields (vocabularies are known only after `setup`).

        Without a trainer (`load_from_checkpoint`) the model is built in `on_load_checkpoint` instead.
        """
        if getattr(self.model, "built", True) or self._trainer is None:
            return
        data = getattr(self.trainer, "datamodule", None)
        layout = getattr(data, "layout", None)
        if layout is None:
            raise RuntimeError(f"{type(self.model).__name__} is not built and the trainer has no CTR DataModule to build it from")
        self.model.build(layout)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if getattr(self.model, "built", False):
            checkpoint[LAYOUT_KEY] = self.model.layout.to_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Build the model from the checkpoint's layout (its preprocessing's, for checkpoints older than the key)."""
        layout = checkpoint.get(LAYOUT_KEY)
        if layout is None and "preprocessor" in (checkpoint.get("CTRDataModule") or {}):
            from recsys.data.schema import Preprocessor

            layout = Preprocessor.from_state_dict(checkpoint["CTRDataModule"]["preprocessor"]).layout.to_dict()
        if layout is not None:
            self.model.build(FieldLayout.from_dict(layout))  # a no-op when built for the same layout
        elif not getattr(self.model, "built", True):
            raise ValueError(f"the checkpoint has no field layout to build {type(self.model).__name__} from "
                             f"(key {LAYOUT_KEY!r}); load it through `attn test|predict --ckpt_path` with its data")

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

    # ---- predictions on the user's rows and serving (core.predict, core.serving) ------------------
    def write_predictions(self, predictions: list[Tensor], datamodule: L.LightningDataModule, output: Path) -> list[Path]:
        """`output/predictions.csv`: `row`, `id` (if the input has one) and `probability`, one line per scored row."""
        probabilities = torch.cat([p.detach().float().cpu() for p in predictions]).tolist()
        rows = list(getattr(datamodule, "predict_rows", []) or range(len(probabilities)))
        if len(rows) != len(probabilities):
            raise ValueError(f"CTRTask: {len(probabilities)} predictions for {len(rows)} rows read")
        table = {"row": rows}
        ids = getattr(datamodule, "predict_ids", None)
        if ids is not None:
            table["id"] = ids
        table["probability"] = probabilities
        path = Path(output) / "predictions.csv"
        pd.DataFrame(table).to_csv(path, index=False)
        return [path]

    @classmethod
    def serving_input(cls, model_input: Any, folder: Path) -> Path:
        """Raw rows (a DataFrame of the original columns, the label not needed) as the CSV `predict_path` reads.

        A model trained on libFM files takes a DataFrame with the one column `libfm` of libFM lines.
        """
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if list(frame.columns) == [LIBFM_COLUMN]:
            path = Path(folder) / "rows.libfm"
            path.write_text("\n".join(frame[LIBFM_COLUMN].astype(str)) + "\n")
            return path
        path = Path(folder) / "rows.csv"
        frame.to_csv(path, index=False)
        return path

    @classmethod
    def serving_output(cls, paths: list[Path]) -> pd.DataFrame:
        """The written `predictions.csv`: `row`, `id` (if given) and `probability`."""
        return pd.read_csv(paths[0], dtype={"id": str})

    def serving_example(self, datamodule: L.LightningDataModule) -> pd.DataFrame | None:
        """Three rows of the original columns, without the label (numeric columns as floats, missing text as "").

        Rows of the test split; for Avazu and libFM, whose readers derive the model's columns, the test
        file's (or the file's) first three rows as written.
        """
        frame = (getattr(datamodule, "frames", None) or {}).get("test")
        preprocessor = getattr(datamodule, "preprocessor", None)
        if frame is None or preprocessor is None or len(frame) == 0:
            return None
        schema = preprocessor.schema
        if datamodule.format == "libfm":
            return pd.DataFrame({LIBFM_COLUMN: libfm_lines(datamodule, 3)})
        if datamodule.format == "avazu":  # its reader derives hour_of_day / weekday: the raw file has `hour`
            raw = pd.read_csv(example_file(datamodule), dtype=str, nrows=3).drop(columns=[schema.label], errors="ignore")
            return raw.fillna("").astype(str)
        columns = [*(["id"] if "id" in frame.columns and "id" not in schema.columns else []), *schema.columns]
        example = frame[columns].head(3).reset_index(drop=True)
        for column in columns:
            if column in schema.numeric:
                example[column] = pd.to_numeric(example[column], errors="coerce").astype("float64")
            else:  # missing cells as "" (the readers' missing value): a string column MLflow can type
                example[column] = example[column].fillna("").astype(str)
        return example

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


def example_file(datamodule: Any) -> Path:
    """The file a served input example is read from: the DataModule's test file, or its one file."""
    return (datamodule.split_files() or {}).get("test") or Path(str(datamodule.path))


def libfm_lines(datamodule: Any, count: int) -> list[str]:
    """The first `count` lines of the DataModule's libFM test file (or file), without their labels."""
    lines: list[str] = []
    with open(example_file(datamodule), encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            if parts:
                lines.append(" ".join(parts[1:] if ":" not in parts[0] else parts))
            if len(lines) == count:
                break
    return lines


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
