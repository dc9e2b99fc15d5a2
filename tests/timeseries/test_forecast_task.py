"""ForecastTask: whole-split metrics, parameter-free baselines, size checks, plot, LR schedule."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from timeseries.data import ETTDataModule
from timeseries.models import DLinear, Repeat
from timeseries.schedules import DelayedExponentialLR
from timeseries.tasks import ForecastTask, forecast_figure


def trainer(**kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, **kwargs,
    )


def test_test_metrics_are_over_the_whole_split_not_a_mean_of_batch_means(series_csv):
    dm = ETTDataModule(path=str(series_csv), seq_len=24, pred_len=8, eval_batch_size=7)  # ragged last batch
    dm.setup()
    torch.manual_seed(0)
    task = ForecastTask(DLinear(24, 8, 3))
    (result,) = trainer().test(task, datamodule=dm, verbose=False)
    windows = dm.datasets["test"]
    assert len(windows) % 7 != 0
    x, y, xm, ym = (torch.stack(t) for t in zip(*(windows[i] for i in range(len(windows))), strict=True))
    with torch.no_grad():
        prediction = task.model(x, xm, ym)
    assert result["test/mse"] == pytest.approx(((prediction - y) ** 2).mean().item(), rel=1e-5)
    assert result["test/mae"] == pytest.approx((prediction - y).abs().mean().item(), rel=1e-5)
    batch_means = [((prediction[i : i + 7] - y[i : i + 7]) ** 2).mean().item() for i in range(0, len(windows), 7)]
    assert sum(batch_means) / len(batch_means) != pytest.approx(result["test/mse"], rel=1e-6)


def test_ms_scores_the_target_channel_only(series_csv):
    dm = ETTDataModule(path=str(series_csv), seq_len=24, pred_len=8, features="MS")
    dm.setup()
    task = ForecastTask(Repeat(24, 8, 3))
    (result,) = trainer().test(task, datamodule=dm, verbose=False)
    windows = dm.datasets["test"]
    errors = [windows[i][0][-1, -1] - windows[i][1][:, 0] for i in range(len(windows))]
    assert result["test/mse"] == pytest.approx(torch.cat(errors).pow(2).mean().item(), rel=1e-5)


def test_parameter_free_repeat_trains_through_the_trainer(series_csv):
    dm = ETTDataModule(path=str(series_csv), seq_len=24, pred_len=8, batch_size=8)
    trainer(max_steps=2, limit_val_batches=1).fit(ForecastTask(Repeat(24, 8, 3)), datamodule=dm)


def test_size_mismatch_between_model_and_data_is_named(series_csv):
    dm = ETTDataModule(path=str(series_csv), seq_len=24, pred_len=8, features="S")
    with pytest.raises(ValueError, match=r"DLinear was built with channels=3 but ETTDataModule .*features='S'.* gives channels=1"):
        trainer(max_steps=1).fit(ForecastTask(DLinear(24, 8, 3)), datamodule=dm)


def test_forecast_figure_has_one_panel_per_channel():
    fig = forecast_figure(torch.randn(24, 4), torch.randn(8, 4), torch.randn(8, 4), channels=3)
    assert len(fig.axes) == 3
    assert len(forecast_figure(torch.randn(24, 1), torch.randn(8, 1), torch.randn(8, 1)).axes) == 1


@pytest.mark.parametrize(("gamma", "hold", "expected"), [(0.5, 1, [1, 1, 0.5, 0.25, 0.125]), (0.9, 3, [1, 1, 1, 1, 0.9, 0.81])])
def test_delayed_exponential_lr_reproduces_the_reference_schedules(gamma, hold, expected):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = DelayedExponentialLR(optimizer, gamma=gamma, hold=hold)
    rates = []
    for _ in expected:
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx(expected)
