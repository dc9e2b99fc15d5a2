"""`ETTDataModule`: ETT and other date-column CSVs under the long-term forecasting protocol."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from timeseries.data.reader import FillMode, read_series_csv, read_series_header
from timeseries.data.splits import (
    SplitBorders,
    SplitLayout,
    check_length,
    resolve_layout,
    split_borders,
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

    Args:
        path: the CSV; default: the ETTh1 file carried in the repository (`timeseries/data/ETTh1.csv`).
        dataset_name: name used for the MLflow experiment `timeseries/<dataset_name>`; default:
            the file name without extension (`ETTh1`).
        seq_len: look-back window (336 in DLinear / PatchTST, 96 for the Transformer baselines,
            104 for ILI).
        pred_len: forecast horizon (96 / 192 / 336 / 720; ILI 24 / 36 / 48 / 60).
        features: `M` multivariate in and out, `S` the target alone in and out, `MS` every column
            in and the target out. The target is always the last input channel.
        target: the column to forecast in `S` / `MS` (`OT` for ETT); in `M` it is moved last when
            given. `None` (only with `M`) keeps the file's column order.
        split: `ETTh`, `ETTm`, `ratio` (7:1:2) or `auto` (from a `dataset_name` starting with ETTh/ETTm).
        scale: standardize with train statistics (the protocol); False keeps raw values.
        fill_missing: `error` (default) rejects missing values; `ffill` / `interpolate` fill them
            and log how many.
        date_column: name of the time-stamp column.
        batch_size: training batch size (32 in DLinear, 128 in PatchTST).
        eval_batch_size: validation/test batch size, default `batch_size`.
        num_workers: DataLoader workers.
        seed: seeds the training loader's shuffling.
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
        self.datasets: dict[str, ForecastWindows] = {}
        self.filled_values = 0  # missing values filled at setup (fill_missing), logged by the task

    # ---- set up (all I/O happens here) ---------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
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
        self.borders: SplitBorders = split_borders(len(values), self.seq_len, layout)
        train_rows = values[: self.borders.train[1]]
        self.mean = train_rows.mean(axis=0) if self.scale else np.zeros(values.shape[1], np.float32)
        std = train_rows.std(axis=0) if self.scale else np.ones(values.shape[1], np.float32)
        self.std = np.where(std > 0, std, 1.0).astype(np.float32)  # a constant column stays finite
        scaled = torch.from_numpy(((values - self.mean) / self.std).astype(np.float32))
        marks = torch.from_numpy(time_features(table.dates))
        self.columns = tuple(columns)
        self.target_columns = self.columns[-1:] if self.features in ("S", "MS") else self.columns
        n_out = len(self.target_columns)
        for split in ("train", "val", "test"):
            start, end = self.borders[split]
            self.datasets[split] = ForecastWindows(
                scaled[start:end], scaled[start:end, -n_out:], marks[start:end], self.seq_len, self.pred_len, start
            )
        log.info(
            "%s: %s split, windows train/val/test = %d/%d/%d", self.path, layout,
            *(len(self.datasets[s]) for s in ("train", "val", "test")),
        )

    @property
    def channels(self) -> int:
        """Input channels of the model: the file's value columns (1 with features `S`).

        Known before `setup` from the CSV header alone, so that the CLI links it into the model's
        `channels` when it builds both (see `core.cli`); ETTh1's 7 and any other file's N alike.
        """
        if self.datasets:
            return len(self.columns)
        if self.features == "S":
            return 1
        return len(read_series_header(self.path, date_column=self.date_column))

    @property
    def target_channels(self) -> int:
        """Forecast channels (after `setup`): all for `M`, 1 for `S` / `MS`."""
        return len(self._ready().target_columns)

    def inverse_transform(self, values: Tensor | np.ndarray, *, targets_only: bool = True) -> Tensor | np.ndarray:
        """Undo the standardization of `(..., channels)` values (the target channels by default)."""
        self._ready()
        n = len(self.target_columns) if targets_only else len(self.columns)
        mean, std = self.mean[-n:], self.std[-n:]
        if isinstance(values, Tensor):
            return values * torch.as_tensor(std, device=values.device) + torch.as_tensor(mean, device=values.device)
        return values * std + mean

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
        return self._eval_loader("test")

    def _eval_loader(self, split: str) -> DataLoader:
        # every window counts: no drop_last on evaluation
        return DataLoader(
            self._ready().datasets[split], batch_size=self.eval_batch_size, shuffle=False, num_workers=self.num_workers
        )
