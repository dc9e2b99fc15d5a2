"""Fixtures of the timeseries tests: small synthetic CSVs in the ETT layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def write_series_csv(path: Path, rows: int = 400, columns: tuple[str, ...] = ("a", "b", "OT"), seed: int = 0) -> Path:
    """An hourly CSV `date,<columns>` of smooth periodic series plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=rows, freq="h").strftime("%Y-%m-%d %H:%M:%S")})
    for i, name in enumerate(columns):
        frame[name] = np.sin(2 * np.pi * t / (12 + 5 * i)) * (i + 1) + 0.1 * rng.standard_normal(rows) + i
    frame.to_csv(path, index=False)
    return path


@pytest.fixture()
def make_csv(tmp_path: Path):
    """`make_csv(name, rows=400, columns=("a", "b", "OT"))` -> path of a new synthetic CSV."""

    def make(name: str = "toy_series.csv", rows: int = 400, columns: tuple[str, ...] = ("a", "b", "OT")) -> Path:
        return write_series_csv(tmp_path / name, rows, columns)

    return make


@pytest.fixture()
def series_csv(make_csv) -> Path:
    return make_csv()
