"""Time-series data: CSV reader, the LTSF splits, calendar features, forecast windows, DataModule."""

from timeseries.data.datamodule import EMBEDDED_ETTH1, ETTDataModule, Features
from timeseries.data.reader import FillMode, SeriesTable, read_series_csv, read_series_header
from timeseries.data.splits import (
    SplitBorders,
    SplitLayout,
    check_length,
    resolve_layout,
    split_borders,
    split_sizes,
)
from timeseries.data.time_features import NUM_TIME_FEATURES, TIME_FEATURES, time_features
from timeseries.data.windows import ForecastWindows

__all__ = [
    "EMBEDDED_ETTH1",
    "ETTDataModule",
    "Features",
    "FillMode",
    "ForecastWindows",
    "NUM_TIME_FEATURES",
    "SeriesTable",
    "SplitBorders",
    "SplitLayout",
    "TIME_FEATURES",
    "check_length",
    "read_series_csv",
    "read_series_header",
    "resolve_layout",
    "split_borders",
    "split_sizes",
    "time_features",
]
