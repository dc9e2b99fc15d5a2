"""Bad inputs raise clear errors that name the file and the problem."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from timeseries.data import ETTDataModule, read_series_csv


def _edit(path, edit) -> str:
    frame = pd.read_csv(path, dtype=str)
    edit(frame)
    frame.to_csv(path, index=False)
    return str(path)


def _setup(path, **kwargs) -> ETTDataModule:
    dm = ETTDataModule(path=str(path), seq_len=24, pred_len=8, **kwargs)
    dm.setup()
    return dm


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv: file not found"):
        _setup(tmp_path / "nope.csv")


def test_no_date_column(series_csv):
    path = _edit(series_csv, lambda f: f.rename(columns={"date": "time"}, inplace=True))
    with pytest.raises(ValueError, match=rf"{path}: column 'date' missing; found \['time', 'a', 'b', 'OT'\]"):
        _setup(path)


def test_unparsable_date(series_csv):
    path = _edit(series_csv, lambda f: f.__setitem__("date", f["date"].where(f.index != 7, "yesterday")))
    with pytest.raises(ValueError, match=rf"{path}: column 'date' has 1 values that are not dates, first at line 9: 'yesterday'"):
        _setup(path)


def test_non_numeric_column(series_csv):
    path = _edit(series_csv, lambda f: f.__setitem__("b", f["b"].where(f.index != 3, "n/a?")))
    with pytest.raises(ValueError, match=rf"{path}: non-numeric values in column\(s\) \['b'\], e.g. column 'b' line 5: 'n/a\?'"):
        _setup(path)


def test_nan_is_an_error_by_default(series_csv):
    path = _edit(series_csv, lambda f: f.__setitem__("a", f["a"].where(~f.index.isin([10, 11]), "")))
    with pytest.raises(ValueError, match=rf"{path}: 2 missing values \(empty or NaN\) in column\(s\) \['a'\], first at line 12"):
        _setup(path)


@pytest.mark.parametrize("mode", ["ffill", "interpolate"])
def test_nan_fill_option_fills_and_logs(series_csv, caplog, mode):
    path = _edit(series_csv, lambda f: f.__setitem__("a", f["a"].where(~f.index.isin([10, 11]), "NaN")))
    with caplog.at_level(logging.WARNING):
        table = read_series_csv(path, fill_missing=mode)
    assert table.filled == 2 and np.isfinite(table.values).all()
    assert f"{path}: filled 2 missing values with {mode}" in caplog.text
    frame = pd.read_csv(path)
    if mode == "ffill":
        assert table.values[10, 0] == table.values[11, 0] == pytest.approx(frame["a"][9])
    else:
        assert table.values[10, 0] == pytest.approx(frame["a"][9] + (frame["a"][12] - frame["a"][9]) / 3, rel=1e-5)
    assert _setup(path, fill_missing=mode).filled_values == 2


def test_series_shorter_than_seq_len_plus_horizon(make_csv):
    path = make_csv("short.csv", rows=40)  # train split int(0.7 * 40) = 28 < 24 + 8
    with pytest.raises(ValueError, match=rf"{path}: series of 40 rows is too short for seq_len 24 \+ pred_len 8: the train split has 28 rows"):
        _setup(path)


def test_ett_layout_needs_twenty_months(series_csv):
    with pytest.raises(ValueError, match=rf"{series_csv}: the ETTh split needs 14400 rows \(12/4/4 months\); the series has 400"):
        _setup(series_csv, split="ETTh")


def test_target_column_that_does_not_exist(series_csv):
    with pytest.raises(ValueError, match=rf"{series_csv}: target column 'OIL' missing; found \['a', 'b', 'OT'\]"):
        _setup(series_csv, target="OIL", features="S")


def test_dates_out_of_order(series_csv):
    path = _edit(series_csv, lambda f: f.__setitem__("date", f["date"].where(f.index != 5, f["date"][2])))
    with pytest.raises(ValueError, match=rf"{path}: dates must be strictly increasing; line 7"):
        _setup(path)


def test_bad_arguments():
    with pytest.raises(ValueError, match="features must be 'M', 'S' or 'MS'"):
        ETTDataModule(features="X")
    with pytest.raises(ValueError, match="features='S' needs a target column"):
        ETTDataModule(features="S", target=None)


def test_not_a_csv(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00\x01garbage\x00")
    with pytest.raises(ValueError, match=rf"{path}: "):
        _setup(path)
