"""Reader for multivariate time-series CSVs: a date column plus numeric columns.

This is the layout of the ETT files (`date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT`) and of the other
long-term forecasting benchmarks (Weather, Electricity, Traffic, Exchange, ILI). Every problem is
reported with the file name, what is wrong and where (file line numbers count the header as 1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

FillMode = Literal["error", "ffill", "interpolate"]


@dataclass(frozen=True)
class SeriesTable:
    """A parsed series.

    Attributes:
        path: the file it came from.
        dates: `(time,)` time stamps, strictly increasing.
        columns: names of the value columns, in file order.
        values: `(time, len(columns))` float32.
        filled: how many missing values were filled (0 unless a fill mode was asked for).
    """

    path: str
    dates: pd.DatetimeIndex
    columns: tuple[str, ...]
    values: np.ndarray
    filled: int = 0


def read_series_csv(path: str | Path, *, date_column: str = "date", fill_missing: FillMode = "error") -> SeriesTable:
    """Read a CSV with a date column and numeric value columns.

    Args:
        path: the CSV file.
        date_column: name of the time-stamp column.
        fill_missing: `error` (default) raises on any empty/NaN value; `ffill` carries the last
            value forward (and the first value backward for leading gaps); `interpolate` fills
            linearly in time. The number of filled values is logged and returned in `filled`.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unreadable CSV, no date column, unparsable or non-increasing dates, no value
            column, non-numeric values, or missing values with `fill_missing="error"`.
    """
    path = str(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable CSV file ({err})") from err
    value_columns = _value_columns(path, list(frame.columns), date_column)
    if len(frame) == 0:
        raise ValueError(f"{path}: no data rows after the header")
    return series_table(path, frame, date_column, value_columns, fill_missing)


def series_table(
    path: str, frame: pd.DataFrame, date_column: str, value_columns: list[str], fill_missing: FillMode,
    fill_hint: str = "pass fill_missing='ffill' or 'interpolate' to fill them",
) -> SeriesTable:
    """The `SeriesTable` of a CSV's rows read as text (`frame`): dates and values parsed, missing values
    filled by `fill_missing` or refused with one line naming the columns, the first line and `fill_hint`."""
    dates = _parse_dates(path, frame[date_column], date_column)
    values, missing = _parse_values(path, frame[value_columns])
    filled = 0
    if missing.any():
        if fill_missing == "error":
            raise ValueError(
                f"{path}: {int(missing.sum())} missing values (empty or NaN) in column(s) "
                f"{_columns_with(missing, value_columns)}, first at line {int(np.argmax(missing.any(axis=1))) + 2}; "
                f"{fill_hint}"
            )
        values, filled = _fill(path, values, fill_missing, value_columns), int(missing.sum())
        log.warning("%s: filled %d missing values with %s", path, filled, fill_missing)
    return SeriesTable(path=path, dates=dates, columns=tuple(value_columns), values=values, filled=filled)


def read_series_header(path: str | Path, *, date_column: str = "date") -> tuple[str, ...]:
    """The value columns of a series CSV, in file order, from its header line alone.

    What `read_series_csv(path).columns` will be, without parsing the rows: the CLI sizes a model
    from it before the DataModule's `setup` reads the file. Raises as `read_series_csv` does for a
    missing file, an unreadable header, no date column or no value column.
    """
    path = str(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        header = pd.read_csv(path, nrows=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable CSV file ({err})") from err
    return tuple(_value_columns(path, list(header.columns), date_column))


def _value_columns(path: str, columns: list[str], date_column: str) -> list[str]:
    if date_column not in columns:
        raise ValueError(f"{path}: column '{date_column}' missing; found {columns}")
    value_columns = [c for c in columns if c != date_column]
    if not value_columns:
        raise ValueError(f"{path}: no value columns besides '{date_column}'")
    return value_columns


def _parse_dates(path: str, raw: pd.Series, date_column: str) -> pd.DatetimeIndex:
    raw = raw.str.strip()
    try:  # one inferred format: fast, vectorized
        parsed = pd.to_datetime(raw)
    except (ValueError, TypeError, OverflowError):  # mixed formats or bad values: per element
        parsed = pd.to_datetime(raw, errors="coerce", format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"{path}: column '{date_column}' has {int(bad.sum())} values that are not dates, "
            f"first at line {row + 2}: {raw.iloc[row]!r}"
        )
    dates = pd.DatetimeIndex(parsed)
    steps = np.diff(dates.asi8)
    if (steps <= 0).any():
        row = int(np.argmax(steps <= 0)) + 1
        raise ValueError(
            f"{path}: dates must be strictly increasing; line {row + 2} ({raw.iloc[row]!r}) "
            f"does not follow line {row + 1} ({raw.iloc[row - 1]!r})"
        )
    return dates


def _parse_values(path: str, raw: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Numeric values `(time, columns)` and a mask of the missing ones; raise on text."""
    stripped = raw.apply(lambda col: col.str.strip())
    empty = stripped.eq("") | stripped.apply(lambda col: col.str.lower().isin(("nan", "na", "null", "none")))
    numeric = stripped.apply(pd.to_numeric, errors="coerce")
    text = numeric.isna() & ~empty
    if text.to_numpy().any():
        col = next(c for c in raw.columns if text[c].any())
        row = int(np.argmax(text[col].to_numpy()))
        names = [c for c in raw.columns if text[c].any()]
        raise ValueError(
            f"{path}: non-numeric values in column(s) {names}, e.g. column '{col}' line {row + 2}: {raw[col].iloc[row]!r}"
        )
    values = numeric.to_numpy(dtype=np.float64)
    return values.astype(np.float32), ~np.isfinite(values)


def _columns_with(missing: np.ndarray, columns: list[str]) -> list[str]:
    return [c for c, m in zip(columns, missing.any(axis=0), strict=True) if m]


def _fill(path: str, values: np.ndarray, mode: FillMode, columns: list[str]) -> np.ndarray:
    frame = pd.DataFrame(values, columns=columns).replace([np.inf, -np.inf], np.nan)
    frame = frame.ffill() if mode == "ffill" else frame.interpolate(method="linear", limit_direction="both")
    frame = frame.bfill()
    empty = [c for c in columns if frame[c].isna().any()]
    if empty:
        raise ValueError(f"{path}: column(s) {empty} have no value at all; nothing to fill them from")
    return frame.to_numpy(dtype=np.float32)
