"""The input of `attn predict`: the user's own CSV window, and the time stamps of the future it forecasts.

A trained forecaster maps the last `seq_len` rows of a series to the `pred_len` steps after them.
`read_forecast_input` reads those rows from a CSV in the training file's format (a date column and
the training value columns; extra columns are ignored), with the reader's checks and messages
(`timeseries.data.reader`). `future_dates` continues the series' time stamps at its sampling
frequency, which the calendar features of Informer / Autoformer / Transformer decoders need.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from pandas.tseries.frequencies import to_offset

from timeseries.data.reader import FillMode, SeriesTable, series_table

log = logging.getLogger(__name__)


def read_forecast_input(
    path: str | Path, columns: Sequence[str], *, seq_len: int, date_column: str = "date", fill_missing: FillMode = "error",
) -> SeriesTable:
    """The rows of `path` with `columns` in that order (the training order), checked for a forecast.

    Args:
        path: the CSV to forecast from.
        columns: the value columns the model was trained on, in its channel order.
        seq_len: the model's look-back: the file must hold at least this many rows.
        date_column: name of the time-stamp column.
        fill_missing: as in `read_series_csv` (the training run's mode).

    Raises:
        FileNotFoundError: no such file.
        ValueError: in one line naming the file: a folder, unreadable CSV, no date column, training columns
            missing (named), fewer than `seq_len` rows, bad dates or values (the reader's messages).
    """
    path = str(path)
    if Path(path).is_dir():
        raise ValueError(f"{path}: a folder; give one CSV of the series with the columns {date_column},{','.join(columns)}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: file not found; give a CSV with the columns {date_column},{','.join(columns)}")
    try:
        header = list(pd.read_csv(path, nrows=0).columns)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable CSV file ({str(err).strip()}); give a CSV with the columns "
                         f"{date_column},{','.join(columns)}") from None
    missing = [c for c in (date_column, *columns) if c not in header]
    if missing:
        raise ValueError(f"{path}: missing the column(s) {missing} the model was trained on; found {header}; "
                         f"give a CSV with the columns {date_column},{','.join(columns)} (others are ignored)")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=[date_column, *columns])
    if len(frame) < seq_len:
        raise ValueError(f"{path}: {len(frame)} rows found; the model needs at least seq_len={seq_len} rows "
                         "(its look-back) to forecast what follows the last one")
    return series_table(path, frame, date_column, list(columns), fill_missing,
                        fill_hint="fill them, or pass --data.init_args.fill_missing=ffill (or interpolate)")


def series_frequency(dates: pd.DatetimeIndex) -> str | None:
    """The sampling frequency of `dates` as a pandas offset alias (`h`, `15min`, `W-TUE`, `B`).

    `pandas.infer_freq` where the stamps are regular (it also knows calendar offsets such as
    weeks or business days), else the median step (a series with gaps); None for a single stamp.
    """
    if len(dates) >= 3:
        with warnings.catch_warnings():  # pandas 3 announces that infer_freq will return an offset
            warnings.simplefilter("ignore")
            inferred = pd.infer_freq(dates)
        if inferred is not None:
            return to_offset(inferred).freqstr
    if len(dates) >= 2:
        return to_offset(pd.Series(dates).diff().median()).freqstr  # dates may be in us or ns: keep Timedelta
    return None


def future_dates(dates: pd.DatetimeIndex, steps: int, fallback: str | None = None) -> pd.DatetimeIndex:
    """The `steps` time stamps after the last of `dates`, at the series' frequency.

    `fallback` (the training series' frequency) is used when `dates` cannot tell (one stamp).
    """
    frequency = series_frequency(dates) or fallback
    if frequency is None:
        raise ValueError("cannot tell the series' frequency from a single time stamp and no training frequency")
    return pd.date_range(start=dates[-1], periods=steps + 1, freq=frequency)[1:]
