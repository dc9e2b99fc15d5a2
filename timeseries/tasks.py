"""`ForecastTask`: the LightningModule of every long-term forecasting model.

Loss is MSE on the standardized scale; `val/mse`, `test/mse` and `test/mae` are computed over the
whole split (sums of squared / absolute errors over every window, channel and step, divided by
their count, not a mean of batch means), as the LTSF papers report them.

`attn predict --ckpt_path CKPT --predict_path mine.csv --output DIR` writes `DIR/forecast.csv`: the
`pred_len` steps after the last row of `mine.csv`, in its original units (`ETTDataModule` keeps the
fit's scaling in the checkpoint). The model logged to MLflow serves the same from a DataFrame of the
training CSV's columns (the last `seq_len` rows or more of the series).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError

from core.task import BaseTask
from core.tracking import log_figure

Batch = tuple[Tensor, Tensor, Tensor, Tensor]


class ForecastTask(BaseTask):
    """Train and evaluate a forecaster `model(x, x_mark, y_mark) -> (batch, pred_len, channels)`.

    Batches are `(x, y, x_mark, y_mark)` from `timeseries.data.ETTDataModule`. When the data has
    fewer target channels than the model outputs (features `MS`), the forecast of the last channels
    is scored: the DataModule always puts the target column last.

    Args:
        model: the forecaster (`class_path` in the config), e.g. `timeseries.models.dlinear.DLinear`.
        plot_channels: how many target channels the forecast plot shows (the last ones).
        **kwargs: `BaseTask`'s optimizer, lr_scheduler (e.g. `timeseries.schedules.DelayedExponentialLR`),
            scheduler_interval and role.
    """

    domain = "timeseries"
    task_name = "forecast"

    def __init__(self, model: nn.Module, plot_channels: int = 3, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.plot_channels = plot_channels
        self.val_mse, self.val_mae = MeanSquaredError(), MeanAbsoluteError()
        self.test_mse, self.test_mae = MeanSquaredError(), MeanAbsoluteError()
        self._plot_sample: tuple[Tensor, Tensor, Tensor] | None = None

    def forecast(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """`(prediction, target)`, both `(batch, pred_len, target_channels)`."""
        x, y, x_mark, y_mark = batch
        prediction = self.model(x, x_mark, y_mark)
        return prediction[..., -y.shape[-1]:], y

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor | None:
        prediction, y = self.forecast(batch)
        loss = F.mse_loss(prediction, y)
        self.log_metrics("train", {"mse": loss}, batch_size=y.shape[0])
        if not loss.requires_grad:  # parameter-free baseline (Repeat): nothing to optimize
            return None
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        prediction, y = self.forecast(batch)
        self.val_mse.update(prediction.reshape(-1), y.reshape(-1))
        self.val_mae.update(prediction.reshape(-1), y.reshape(-1))
        self.log_metrics("val", {"mse": self.val_mse, "mae": self.val_mae}, batch_size=y.shape[0])

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        prediction, y = self.forecast(batch)
        self.test_mse.update(prediction.reshape(-1), y.reshape(-1))
        self.test_mae.update(prediction.reshape(-1), y.reshape(-1))
        self.log_metrics("test", {"mse": self.test_mse, "mae": self.test_mae}, batch_size=y.shape[0])
        if batch_idx == 0:
            history = batch[0][0, :, -y.shape[-1]:]
            self._plot_sample = (history.detach().cpu(), y[0].detach().cpu(), prediction[0].detach().cpu())

    def predict_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        """`(x, x_mark, y_mark)` of `ETTDataModule.predict_dataloader` -> the forecast of the steps after the
        window, `(batch, pred_len, target_channels)` in the data's original units (the fit's scaling undone)."""
        data = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if data is None or not hasattr(data, "inverse_transform"):
            raise ValueError(f"{type(self).__name__}.predict_step needs the ETTDataModule that scaled the input "
                             "(trainer.predict(task, datamodule=...)), to give the forecast in the data's units")
        x, x_mark, y_mark = batch
        prediction = self.model(x, x_mark, y_mark)[..., -data.target_channels:]
        return data.inverse_transform(prediction)

    def write_predictions(self, predictions: list[Tensor], datamodule: L.LightningDataModule, output: Path) -> list[Path]:
        """`forecast.csv`: one row per future step (the date column continued at the series' frequency),
        one column per forecast channel (the training names), in the data's original units."""
        (forecast,) = torch.cat(predictions)  # predict_dataloader holds the one window of the input file
        path = Path(output) / "forecast.csv"
        datamodule.forecast_frame(forecast).to_csv(path, index=False)
        return [path]

    # ---- serving raw input through MLflow (core.serving) ---------------------------------------
    @classmethod
    def serving_input(cls, model_input: Any, folder: Path) -> Path:
        """`model_input`: a DataFrame of the training CSV's columns (date and values, >= seq_len rows, the
        last row the latest) -> the CSV `predict_path` reads."""
        path = Path(folder) / "series.csv"
        pd.DataFrame(model_input).to_csv(path, index=False)
        return path

    @classmethod
    def serving_output(cls, paths: list[Path]) -> pd.DataFrame:
        """The forecast as `attn predict` writes it: the date column and one column per forecast channel."""
        return pd.read_csv(paths[0])

    def serving_example(self, datamodule: L.LightningDataModule) -> pd.DataFrame | None:
        """The last `seq_len` rows of the training CSV, as they are in the file."""
        window = getattr(datamodule, "example_window", None)
        return window() if window is not None else None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Write the sizes the CLI links from the data into the network (`seq_len`, `pred_len`, `channels`)
        into the saved config of the network, so that `ForecastTask.load_from_checkpoint(CKPT)` builds it
        at those sizes (the link targets are no part of the config Lightning saves)."""
        spec = (checkpoint.get("hyper_parameters") or {}).get("model")
        if not isinstance(spec, Mapping) or "class_path" not in spec:
            return  # built in Python: the network is no part of the saved hyper-parameters
        accepted = inspect.signature(type(self.model)).parameters
        sizes = {name: getattr(self.model, name) for name in ("seq_len", "pred_len", "channels")
                 if name in accepted and isinstance(getattr(self.model, name, None), int)}
        checkpoint["hyper_parameters"]["model"] = {**spec, "init_args": {**(spec.get("init_args") or {}), **sizes}}

    # ---- checks and tracking -------------------------------------------------------------------
    def on_data_ready(self) -> None:
        self._check_data()
        self._log_forecast_params()

    def on_test_epoch_end(self) -> None:
        if self._plot_sample is not None and self.trainer is not None and not self.trainer.sanity_checking:
            names = getattr(getattr(self.trainer, "datamodule", None), "target_columns", None)
            figure = forecast_figure(*self._plot_sample, channels=self.plot_channels, names=names)
            log_figure(self.trainer, figure, "forecast.png")
            self._plot_sample = None

    def _check_data(self) -> None:
        """Fail early, with names, when the model's sizes and the data's disagree."""
        data = getattr(self.trainer, "datamodule", None)
        if data is None:
            return
        for name in ("channels", "seq_len", "pred_len"):
            want, have = getattr(self.model, name, None), getattr(data, name, None)
            if want is not None and have is not None and want != have:
                raise ValueError(
                    f"{type(self.model).__name__} was built with {name}={want} but {type(data).__name__} "
                    f"({getattr(data, 'path', '')}, features={getattr(data, 'features', '?')!r}) gives {name}={have}; "
                    f"set it once, as data.init_args.{name} (the CLI passes the data's sizes to the model)"
                )

    def _log_forecast_params(self) -> None:
        params = {name: getattr(self.model, name) for name in ("seq_len", "pred_len", "channels") if hasattr(self.model, name)}
        if "pred_len" in params:
            params["horizon"] = params.pop("pred_len")
        data = getattr(self.trainer, "datamodule", None)
        if data is not None and hasattr(data, "features"):
            params["features"] = data.features
        if data is not None and hasattr(data, "filled_values"):  # missing values filled by fill_missing
            params["filled_values"] = data.filled_values
        if getattr(data, "split_rule", None):  # which split and why (a user's file is no ETTh1)
            params["split_rule"] = data.split_rule
        self.log_run_params(params)


def forecast_figure(
    history: Tensor, truth: Tensor, prediction: Tensor, *, channels: int = 3, names: Sequence[str] | None = None
) -> Figure:
    """One panel per channel: the input window, the true future and the forecast.

    `history: (seq_len, c)`, `truth` and `prediction: (pred_len, c)`; the last `channels` are drawn,
    labelled with `names` (one per channel) when given.
    """
    n = max(1, min(channels, truth.shape[-1]))
    fig = Figure(figsize=(9, 2.4 * n))
    seq_len, pred_len = history.shape[0], truth.shape[0]
    past, future = torch.arange(seq_len), torch.arange(seq_len, seq_len + pred_len)
    for row, channel in enumerate(range(truth.shape[-1] - n, truth.shape[-1])):
        ax = fig.add_subplot(n, 1, row + 1)
        ax.plot(past, history[:, channel], color="0.4", label="history")
        ax.plot(future, truth[:, channel], color="tab:blue", label="truth")
        ax.plot(future, prediction[:, channel], color="tab:orange", label="forecast")
        ax.set_ylabel(names[channel] if names is not None and len(names) == truth.shape[-1] else f"channel {channel}")
        if row == 0:
            ax.legend(loc="upper left", fontsize="small")
    fig.axes[-1].set_xlabel("time step (standardized values)")
    fig.tight_layout()
    return fig
