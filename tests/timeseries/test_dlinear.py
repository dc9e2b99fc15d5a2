"""DLinear and the series decomposition against hand-computed references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from timeseries.models.decomposition import MovingAverage, SeriesDecomposition
from timeseries.models.dlinear import DLinear
from timeseries.models.linear import Linear
from timeseries.models.nlinear import NLinear
from timeseries.models.repeat import Repeat


def moving_average_by_hand(x: np.ndarray, kernel: int) -> np.ndarray:
    """trend[t] = mean of x[t-h .. t+h], indices clipped to the edges (edge padding)."""
    half = (kernel - 1) // 2
    length = x.shape[0]
    out = np.zeros_like(x)
    for t in range(length):
        idx = np.clip(np.arange(t - half, t + half + 1), 0, length - 1)
        out[t] = x[idx].mean(axis=0)
    return out


@pytest.mark.parametrize(("kernel", "length"), [(25, 48), (5, 9), (3, 3), (25, 10)])
def test_moving_average_matches_hand_computed_edge_padding(kernel, length):
    rng = np.random.default_rng(kernel)
    x = rng.standard_normal((2, length, 3))
    trend = MovingAverage(kernel)(torch.from_numpy(x)).numpy()
    for b in range(2):
        np.testing.assert_allclose(trend[b], moving_average_by_hand(x[b], kernel), rtol=1e-10, atol=1e-12)


def test_moving_average_small_example_by_hand():
    x = torch.tensor([1.0, 2.0, 6.0, 3.0]).view(1, 4, 1)
    # kernel 3: padded 1,1,2,6,3,3 -> (1+1+2)/3, (1+2+6)/3, (2+6+3)/3, (6+3+3)/3
    expected = torch.tensor([4 / 3, 3.0, 11 / 3, 4.0]).view(1, 4, 1)
    torch.testing.assert_close(MovingAverage(3)(x), expected)


def test_decomposition_sums_back_and_rejects_even_kernels():
    x = torch.randn(3, 40, 2)
    seasonal, trend = SeriesDecomposition(25)(x)
    torch.testing.assert_close(seasonal + trend, x)
    with pytest.raises(ValueError, match="odd"):
        MovingAverage(24)


def test_dlinear_is_two_linear_maps_of_the_components():
    torch.manual_seed(0)
    model = DLinear(seq_len=30, pred_len=6, channels=2, kernel_size=5).double()
    x = torch.randn(4, 30, 2, dtype=torch.float64)
    trend = torch.from_numpy(np.stack([moving_average_by_hand(s, 5) for s in x.numpy()]))
    seasonal = x - trend
    ws, bs = model.seasonal.linear.weight, model.seasonal.linear.bias
    wt, bt = model.trend.linear.weight, model.trend.linear.bias
    expected = torch.einsum("pl,blc->bpc", ws, seasonal) + bs[None, :, None] + torch.einsum("pl,blc->bpc", wt, trend) + bt[None, :, None]
    torch.testing.assert_close(model(x), expected)


def test_individual_option_gives_one_layer_per_channel():
    torch.manual_seed(0)
    shared, individual = DLinear(32, 8, 3), DLinear(32, 8, 3, individual=True)
    assert sum(p.numel() for p in individual.parameters()) == 3 * sum(p.numel() for p in shared.parameters())
    x = torch.randn(2, 32, 3)
    y = individual(x)
    # channel c depends only on channel c's past, through its own weights
    x2 = x.clone()
    x2[..., 1] += 1.0
    y2 = individual(x2)
    torch.testing.assert_close(y[..., [0, 2]], y2[..., [0, 2]])
    w, b = individual.seasonal.weight, individual.seasonal.bias
    seasonal, trend = individual.decomposition(x)
    manual = seasonal[0, :, 2] @ w[2].T + b[2] + trend[0, :, 2] @ individual.trend.weight[2].T + individual.trend.bias[2]
    torch.testing.assert_close(y[0, :, 2], manual)


def test_nlinear_and_repeat_by_hand():
    x = torch.randn(2, 16, 3)
    torch.testing.assert_close(Repeat(16, 4, 3)(x), x[:, -1:].expand(2, 4, 3))
    model = NLinear(16, 4, 3)
    last = x[:, -1:]
    w, b = model.linear.linear.weight, model.linear.linear.bias
    torch.testing.assert_close(model(x), torch.einsum("pl,blc->bpc", w, x - last) + b[None, :, None] + last)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in Linear(16, 4, 3).parameters()) == 16 * 4 + 4
    # NLinear is invariant to a constant shift of the input, up to the same shift of the output
    torch.testing.assert_close(model(x + 5.0), model(x) + 5.0)


def test_average_init_starts_from_the_window_mean():
    model = DLinear(20, 5, 2, average_init=True)
    assert torch.all(model.seasonal.linear.weight == 1 / 20) and torch.all(model.trend.linear.weight == 1 / 20)
    individual = DLinear(20, 5, 2, individual=True, average_init=True)
    assert torch.all(individual.trend.weight == 1 / 20)
    x = torch.randn(3, 20, 2)
    with torch.no_grad():
        bias = model.seasonal.linear.bias + model.trend.linear.bias
        torch.testing.assert_close(model(x), x.mean(1, keepdim=True) + bias[None, :, None])
