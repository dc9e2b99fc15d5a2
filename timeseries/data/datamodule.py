"""`ETTDataModule`: ETT and other date-column CSVs under the long-term forecasting protocol."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from timeseries.data.future import future_dates, read_forecast_input, series_frequency
from timeseries.data.reader import FillMode, read_series_csv, read_series_header
from timeseries.data.splits import (
    SplitBorders,
    SplitLayout,
    check_length,
    resolve_layout,
    split_borders,
    split_sizes,
)
from timeseries.data.time_features import time_features
from timeseries.data.windows import ForecastWindows

log = logging.getLogger(__name__)

Features = Literal["M", "S", "MS"]

EMBEDDED_ETTH1 = Path(__file__).resolve().parent / "ETTh1.csv"


class ETTDataModule(L.LightningDataModule):
    """Forecast windows from an ETT file or any CSV with a date column and numeric columns.

    The splits follow the protocol of Informer / DLinear exactly (see `timeseries.data.splits`):
    ETTh 8640/2880/2880 rows, ETTm four times that, other files 7:1:2 in time order; validation and
    test segments start `seq_len` rows before their split; every column is standardized with the
    mean and standard deviation of the train rows only. Metrics are reported on that scale.
    Under `attn`, the forecaster takes `seq_len`, `pred_len` and `channels` from here (links of
    `core.cli`): a config sets them on the data only.

    Predicting (`attn predict --ckpt_path CKPT --predict_path mine.csv`) forecasts the `pred_len`
    steps after the last row of `predict_path`, from its last `seq_len` rows, standardized with the
    train statistics of the fit. Those statistics, the columns, the target and the series' frequency
    are this DataModule's `state_dict()`, which Lightning stores in every checkpoint, so predict
    reads no training rows. The CLI sizes the model from `channels` when it parses the config,
    before any checkpoint is read: that reads the header of the training CSV unless
    `preprocessor_from` names the checkpoint.

    Args:
        path: the CSV; default: the ETTh1 file carried in the repository (`timeseries/data/ETTh1.csv`).
        dataset_name: the dataset's name: the MLflow experiment `timeseries/forecast/<dataset_name>`,
            and (with `split="auto"`) which split rule applies; default: the file name without
            extension (`ETTh1` for `ETTh1.csv`, `mine` for `mine.csv`).
        seq_len: look-back window (336 in DLinear / PatchTST, 96 for the Transformer baselines,
            104 for ILI).
        pred_len: forecast horizon (96 / 192 / 336 / 720; ILI 24 / 36 / 48 / 60).
        features: `M` multivariate in and out, `S` the target alone in and out, `MS` every column
            in and the target out. The target is always the last input channel.
        target: the column to forecast in `S` / `MS` (`OT` for ETT); in `M` it is moved last when
            given. `None` (only with `M`) keeps the file's column order.
        split: `ETTh`, `ETTm`, `ratio` (7:1:2) or `auto` (from a `dataset_name` starting with ETTh/ETTm).
            The rule used, and why, is the run param `split_rule`.
        scale: standardize with train statistics (the protocol); False keeps raw values.
        fill_missing: `error` (default) rejects missing values; `ffill` / `interpolate` fill them
            and log how many (in the training file and in `predict_path` alike).
        date_column: name of the time-stamp column.
        batch_size: training batch size (32 in DLinear, 128 in PatchTST).
        eval_batch_size: validation/test batch size, default `batch_size`.
        num_workers: DataLoader workers.
        seed: seeds the training loader's shuffling.
        predict_path: the CSV `predict` forecasts from: the date column and the training value
            columns (extra columns are ignored), at least `seq_len` rows; the forecast covers the
            `pred_len` steps after its last row (`attn predict --predict_path` sets it).
        preprocessor_from: a checkpoint of a fit with this DataModule; `predict` then takes the
            fitted state (scaler, columns, frequency) and `channels` from it instead of the training
            CSV (`attn predict` fills it with `--ckpt_path`).
    """

    def __init__(
        self,
        path: str | None = None,
        dataset_name: str | None = None,
        seq_len: int = 336,
        pred_len: int = 96,
        features: Features = "M",
        target: str | None = "OT",
        split: SplitLayout = "auto",
        scale: bool = True,
        fill_missing: FillMode = "error",
        date_column: str = "date",
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        predict_path: str | None = None,
        preprocessor_from: str | None = None,
    ) -> None:
        super().__init__()
        if features not in ("M", "S", "MS"):
            raise ValueError(f"features must be 'M', 'S' or 'MS'; got {features!r}")
        if features != "M" and target is None:
            raise ValueError(f"features={features!r} needs a target column")
        if seq_len < 1 or pred_len < 1:
            raise ValueError(f"seq_len and pred_len must be positive; got {seq_len}, {pred_len}")
        self.path = str(path) if path is not None else str(EMBEDDED_ETTH1)
        self.dataset_name = dataset_name or Path(self.path).stem
        self.seq_len, self.pred_len = seq_len, pred_len
        self.features, self.target = features, target
        self.split, self.scale = split, scale
        self.fill_missing, self.date_column = fill_missing, date_column
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.seed = num_workers, seed
        self.predict_path, self.preprocessor_from = predict_path, preprocessor_from
        self.datasets: dict[str, ForecastWindows] = {}
        self.filled_values = 0  # missing values filled at setup (fill_missing), logged by the task
        # the fitted state (`state_dict`): set by setup from the train rows, or from a checkpoint
        self.columns: tuple[str, ...] | None = None
        self.target_columns: tuple[str, ...] | None = None
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.frequency: str | None = None
        self.n_rows = 0
        self.forecast_dates: pd.DatetimeIndex | None = None  # the future `predict_dataloader` forecasts

    # ---- set up (all I/O happens here) ---------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if stage == "predict":  # the fitted state comes from the checkpoint; no training rows are read
            if self.columns is None and self.preprocessor_from:
                self.load_state_dict(checkpoint_state(self.preprocessor_from, type(self).__qualname__))
            return  # without it, predict_dataloader fits the scaler on the training file
        if self.datasets:
            return
        table = read_series_csv(self.path, date_column=self.date_column, fill_missing=self.fill_missing)
        self.filled_values = table.filled
        columns = list(table.columns)
        if self.target is not None:
            if self.target not in columns:
                raise ValueError(f"{self.path}: target column '{self.target}' missing; found {columns}")
            columns.remove(self.target)
            columns.append(self.target)
        values = table.values[:, [table.columns.index(c) for c in columns]]
        if self.features == "S":
            columns, values = columns[-1:], values[:, -1:]
        layout = resolve_layout(self.split, self.dataset_name)
        check_length(self.path, len(values), self.seq_len, self.pred_len, layout)
        self.layout = layout
        self.n_rows = len(values)
        self.split_rule = split_rule(self.split, layout, self.dataset_name, len(values))
        self.borders: SplitBorders = split_borders(len(values), self.seq_len, layout)
        train_rows = values[: self.borders.train[1]]
        self.mean = train_rows.mean(axis=0) if self.scale else np.zeros(values.shape[1], np.float32)
        std = train_rows.std(axis=0) if self.scale else np.ones(values.shape[1], np.float32)
        self.std = np.where(std > 0, std, 1.0).astype(np.float32)  # a constant column stays finite
        scaled = torch.from_numpy(((values - self.mean) / self.std).astype(np.float32))
        marks = torch.from_numpy(time_features(table.dates))
        self.frequency = series_frequency(table.dates)
        self.columns = tuple(columns)
        self.target_columns = self.columns[-1:] if self.features in ("S", "MS") else self.columns
        n_out = len(self.target_columns)
        for split in ("train", "val", "test"):
            start, end = self.borders[split]
            self.datasets[split] = ForecastWindows(
                scaled[start:end], scaled[start:end, -n_out:], marks[start:end], self.seq_len, self.pred_len, start
            )
        log.info(
            "%s: %s, windows train/val/test = %d/%d/%d", self.path, self.split_rule,
            *(len(self.datasets[s]) for s in ("train", "val", "test")),
        )

    # ---- the fitted state, kept in every checkpoint ---------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What `predict` needs of the fit, as plain python values (checkpoints load with `weights_only=True`)."""
        if self.columns is None:
            return {}
        return {
            "columns": list(self.columns), "target_columns": list(self.target_columns),
            "mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std],
            "features": self.features, "target": self.target, "date_column": self.date_column,
            "frequency": self.frequency, "seq_len": self.seq_len, "pred_len": self.pred_len,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take the fitted state of a checkpoint (predict). Once `setup` has read the training CSV (test,
        resumed fit), its own statistics stay: they scale the windows already built from that file."""
        if not state_dict or self.datasets:
            return
        if (state_dict["seq_len"], state_dict["pred_len"]) != (self.seq_len, self.pred_len):
            raise ValueError(
                f"the checkpoint's data has seq_len={state_dict['seq_len']}, pred_len={state_dict['pred_len']}; "
                f"this DataModule seq_len={self.seq_len}, pred_len={self.pred_len}: predict with the fit's sizes"
            )
        self.columns, self.target_columns = tuple(state_dict["columns"]), tuple(state_dict["target_columns"])
        self.mean = np.asarray(state_dict["mean"], dtype=np.float32)
        self.std = np.asarray(state_dict["std"], dtype=np.float32)
        self.features, self.target = state_dict["features"], state_dict["target"]
        self.date_column, self.frequency = state_dict["date_column"], state_dict["frequency"]

    @property
    def channels(self) -> int:
        """Input channels of the model: the file's value columns (1 with features `S`).

        Known before `setup` from the CSV header alone, so that the CLI links it into the model's
        `channels` when it builds both (see `core.cli`); ETTh1's 7 and any other file's N alike.
        With `preprocessor_from`, the checkpoint's columns (no training file needed).
        """
        if self.columns is not None:
            return len(self.columns)
        if self.features == "S":
            return 1
        state = checkpoint_state(self.preprocessor_from, type(self).__qualname__) if self.preprocessor_from else {}
        if state:
            return len(state["columns"])
        return len(read_series_header(self.path, date_column=self.date_column))

    @property
    def target_channels(self) -> int:
        """Forecast channels (after `setup` or a checkpoint's state): all for `M`, 1 for `S` / `MS`."""
        return len(self._fitted().target_columns)

    def inverse_transform(self, values: Tensor | np.ndarray, *, targets_only: bool = True) -> Tensor | np.ndarray:
        """Undo the standardization of `(..., channels)` values (the target channels by default)."""
        self._fitted()
        n = len(self.target_columns) if targets_only else len(self.columns)
        mean, std = self.mean[-n:], self.std[-n:]
        if isinstance(values, Tensor):
            return values * torch.as_tensor(std, device=values.device) + torch.as_tensor(mean, device=values.device)
        return values * std + mean

    def _fitted(self) -> ETTDataModule:
        if self.columns is None:
            raise RuntimeError("ETTDataModule: call setup() first, or load the state of a checkpoint")
        return self

    def _ready(self) -> ETTDataModule:
        if not self.datasets:
            raise RuntimeError("ETTDataModule: call setup() first")
        return self

    # ---- loaders -------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        dataset = self._ready().datasets["train"]
        return DataLoader(
            dataset, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers,
            drop_last=len(dataset) > self.batch_size,  # the protocol drops the ragged last batch
            generator=torch.Generator().manual_seed(self.seed),
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        """One batch `(x, x_mark, y_mark)`: the last `seq_len` rows of `predict_path`, standardized, their
        calendar features and those of the `pred_len` future time stamps (`forecast_dates`)."""
        if not self.predict_path:
            raise ValueError("ETTDataModule: predict_path is not set; give the CSV to forecast from "
                             "(attn predict --predict_path FILE)")
        if self.columns is None:  # no checkpoint state (a Python predict without ckpt_path): fit the scaler here
            self.setup("fit")
        table = read_forecast_input(
            self.predict_path, self.columns, seq_len=self.seq_len, date_column=self.date_column,
            fill_missing=self.fill_missing,
        )
        self.forecast_dates = future_dates(table.dates, self.pred_len, fallback=self.frequency)
        x = ((table.values[-self.seq_len:] - self.mean) / self.std).astype(np.float32)
        x_mark = time_features(table.dates[-self.seq_len:])
        y_mark = time_features(self.forecast_dates)
        window = [torch.from_numpy(a)[None] for a in (x, x_mark, y_mark)]
        return DataLoader(TensorDataset(*window), batch_size=1)

    def forecast_frame(self, forecast: Tensor | np.ndarray) -> pd.DataFrame:
        """`forecast: (pred_len, target_channels)` in original units -> the table `attn predict` writes:
        the date column (`forecast_dates`) and one column per forecast channel (the training names)."""
        if self.forecast_dates is None:
            raise RuntimeError("ETTDataModule: forecast_frame needs predict_dataloader() first")
        values = forecast.detach().cpu().numpy() if isinstance(forecast, Tensor) else np.asarray(forecast)
        frame = pd.DataFrame(values, columns=list(self._fitted().target_columns))
        frame.insert(0, self.date_column, self.forecast_dates)
        return frame

    def example_window(self) -> pd.DataFrame:
        """The last `seq_len` rows of the training CSV as it is (every column, dates as written): raw
        input for `predict`, the served model's input example."""
        self._ready()
        # skip the earlier data lines unparsed (a Traffic CSV is 130 MB)
        frame = pd.read_csv(self.path, dtype={self.date_column: str}, skiprows=range(1, 1 + self.n_rows - self.seq_len))
        return frame.tail(self.seq_len).reset_index(drop=True)

    def _eval_loader(self, split: str) -> DataLoader:
        # every window counts: no drop_last on evaluation
        return DataLoader(
            self._ready().datasets[split], batch_size=self.eval_batch_size, shuffle=False, num_workers=self.num_workers
        )


def split_rule(split: SplitLayout, layout: Literal["ETTh", "ETTm", "ratio"], dataset_name: str, n_rows: int) -> str:
    """Which split a run used and why, e.g. `ETTh: 12/4/4 months (8640/2880/2880 rows), from the dataset
    name ETTh1` (the run param `split_rule`)."""
    sizes = "/".join(str(n) for n in split_sizes(n_rows, layout))
    rule = f"{layout}: 12/4/4 months ({sizes} rows)" if layout != "ratio" else f"ratio 7:1:2 in time order ({sizes} rows)"
    if split != "auto":
        return f"{rule}, as split={split} asks"
    if layout != "ratio":
        return f"{rule}, from the dataset name {dataset_name}"
    return f"{rule}: the dataset name {dataset_name} starts with neither ETTh nor ETTm"


def checkpoint_state(path: str | Path, key: str) -> dict[str, Any]:
    """The state a DataModule class (`key`, its `__qualname__`) saved in the Lightning checkpoint `path`;
    empty for a checkpoint written before the state was kept (then the training CSV is read instead)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint (preprocessor_from)")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    state = checkpoint.get(key) if isinstance(checkpoint, dict) else None
    if not state:
        log.warning("%s: no %s state in the checkpoint; the scaling is fitted on the training CSV again", path, key)
    return state or {}
