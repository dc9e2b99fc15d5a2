"""Chronological train/val/test borders of the long-term forecasting protocol.

The protocol of Informer (Zhou et al., AAAI 2021), kept by Autoformer, DLinear (Zeng et al.,
"Are Transformers Effective for Time Series Forecasting?", AAAI 2023) and PatchTST:

- ETTh*: 12 / 4 / 4 months of 30 days at one row per hour: 8640 / 2880 / 2880 rows; rows past
  the 20 months are unused. ETTm*: the same months at 15 minutes: 34560 / 11520 / 11520 rows.
- any other dataset: 70 % / 10 % / 20 % in time order (test = int(0.2 n), train = int(0.7 n)).
- the validation and test segments start `seq_len` rows before their split so that their first
  window's forecast starts at the split's first row: no target is lost, and the only rows two
  splits share are input history, never targets.
- standardization statistics come from the train rows only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SplitLayout = Literal["auto", "ETTh", "ETTm", "ratio"]

_HOURS_PER_MONTH = 30 * 24
ETT_MONTHS = (12, 4, 4)


@dataclass(frozen=True)
class SplitBorders:
    """Row ranges `[start, end)` of each split's segment (history rows included).

    `train[1]` is also the end of the rows the scaler is fitted on. A split with segment
    `[a, b)` yields `b - a - seq_len - pred_len + 1` windows; its targets are rows `[a + seq_len, b)`.
    """

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]

    def __getitem__(self, split: str) -> tuple[int, int]:
        return {"train": self.train, "val": self.val, "test": self.test}[split]


def resolve_layout(layout: SplitLayout, name: str) -> Literal["ETTh", "ETTm", "ratio"]:
    """`auto` picks ETTh / ETTm from a dataset name starting with it, else the 7:1:2 ratio."""
    if layout != "auto":
        return layout
    if name.startswith("ETTh"):
        return "ETTh"
    if name.startswith("ETTm"):
        return "ETTm"
    return "ratio"


def split_sizes(n_rows: int, layout: Literal["ETTh", "ETTm", "ratio"]) -> tuple[int, int, int]:
    """Rows of train, val and test (before the `seq_len` history of val/test is added)."""
    if layout in ("ETTh", "ETTm"):
        per_month = _HOURS_PER_MONTH * (4 if layout == "ETTm" else 1)
        return tuple(m * per_month for m in ETT_MONTHS)  # type: ignore[return-value]
    n_train, n_test = int(n_rows * 0.7), int(n_rows * 0.2)
    return n_train, n_rows - n_train - n_test, n_test


def split_borders(n_rows: int, seq_len: int, layout: Literal["ETTh", "ETTm", "ratio"]) -> SplitBorders:
    """Segments of the three splits for a series of `n_rows` rows (see the module docstring)."""
    n_train, n_val, n_test = split_sizes(n_rows, layout)
    return SplitBorders(
        train=(0, n_train),
        val=(n_train - seq_len, n_train + n_val),
        test=(n_train + n_val - seq_len, n_train + n_val + n_test),
    )


def check_length(
    path: str, n_rows: int, seq_len: int, pred_len: int, layout: Literal["ETTh", "ETTm", "ratio"]
) -> None:
    """Raise a `ValueError` naming the file when a split cannot hold one window."""
    n_train, n_val, n_test = split_sizes(n_rows, layout)
    needed = n_train + n_val + n_test
    if layout != "ratio" and n_rows < needed:
        raise ValueError(
            f"{path}: the {layout} split needs {needed} rows (12/4/4 months); the series has {n_rows}. "
            "Use split='ratio' for a shorter series."
        )
    if n_train < seq_len + pred_len or n_train < seq_len:
        raise ValueError(
            f"{path}: series of {n_rows} rows is too short for seq_len {seq_len} + pred_len {pred_len}: "
            f"the train split has {n_train} rows, it needs at least {seq_len + pred_len}"
        )
    for name, rows in (("val", n_val), ("test", n_test)):
        if rows < pred_len:
            raise ValueError(
                f"{path}: series of {n_rows} rows is too short for pred_len {pred_len}: "
                f"the {name} split has {rows} rows, it needs at least {pred_len}"
            )
