"""`ForecastTask`: the LightningModule of every long-term forecasting model.

Loss is MSE on the standardized scale; `val/mse`, `test/mse` and `test/mae` are computed over the
whole split (sums of squared / absolute errors over every window, channel and step, divided by
their count, not a mean of batch means), as the LTSF papers report them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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

    def predict_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self.forecast(batch)[0]

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
