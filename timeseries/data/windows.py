"""Sliding forecast windows over a series segment."""

from __future__ import annotations

from torch import Tensor
from torch.utils.data import Dataset


class ForecastWindows(Dataset):
    """Every window of `seq_len` inputs followed by `pred_len` targets, stride 1.

    Args:
        inputs: `(time, in_channels)` model inputs (standardized).
        targets: `(time, out_channels)` values to forecast (standardized; the same rows as `inputs`).
        marks: `(time, time_features)` calendar features of each row.
        seq_len: look-back window.
        pred_len: horizon.
        start_row: row of the full series where this segment starts (for bookkeeping and tests).

    Item `i` is `(x, y, x_mark, y_mark)`: `x: (seq_len, in_channels)` rows `[i, i + seq_len)`,
    `y: (pred_len, out_channels)` rows `[i + seq_len, i + seq_len + pred_len)`, and the calendar
    features of those rows (`y_mark` is known in advance: future time stamps, not values).
    """

    def __init__(
        self, inputs: Tensor, targets: Tensor, marks: Tensor, seq_len: int, pred_len: int, start_row: int = 0
    ) -> None:
        if not (inputs.shape[0] == targets.shape[0] == marks.shape[0]):
            raise ValueError(
                f"inputs, targets and marks must have the same rows; got {inputs.shape[0]}, {targets.shape[0]}, {marks.shape[0]}"
            )
        self.inputs, self.targets, self.marks = inputs, targets, marks
        self.seq_len, self.pred_len, self.start_row = seq_len, pred_len, start_row

    def __len__(self) -> int:
        return max(0, self.inputs.shape[0] - self.seq_len - self.pred_len + 1)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} out of range [0, {len(self)})")
        mid, end = i + self.seq_len, i + self.seq_len + self.pred_len
        return self.inputs[i:mid], self.targets[mid:end], self.marks[i:mid], self.marks[mid:end]

    def target_rows(self, i: int) -> range:
        """Rows of the full series that window `i` forecasts."""
        first = self.start_row + i + self.seq_len
        return range(first, first + self.pred_len)
