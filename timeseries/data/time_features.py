"""Calendar features of each time stamp, the "timeF" encoding of Informer / Autoformer.

Every feature is scaled to [-0.5, 0.5] as in Zhou et al. (Informer, AAAI 2021) and Wu et al.
(Autoformer, NeurIPS 2021). The suite always computes the same five features whatever the
sampling rate, so a model's `mark_dim` never depends on the dataset; a feature that is constant at
a coarse rate (minute-of-hour for hourly data) just acts as a bias of the linear time embedding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TIME_FEATURES: tuple[str, ...] = ("minute_of_hour", "hour_of_day", "day_of_week", "day_of_month", "day_of_year")
NUM_TIME_FEATURES = len(TIME_FEATURES)


def time_features(dates: pd.DatetimeIndex) -> np.ndarray:
    """`(time, NUM_TIME_FEATURES)` float32 calendar features in [-0.5, 0.5], in `TIME_FEATURES` order."""
    columns = [
        dates.minute / 59.0,
        dates.hour / 23.0,
        dates.dayofweek / 6.0,
        (dates.day - 1) / 30.0,
        (dates.dayofyear - 1) / 365.0,
    ]
    return (np.stack([np.asarray(c, dtype=np.float64) for c in columns], axis=1) - 0.5).astype(np.float32)
