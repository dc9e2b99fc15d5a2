"""ETTDataModule on the embedded ETTh1: the paper's splits, windows, standardization, seeding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from timeseries.data import EMBEDDED_ETTH1, ETTDataModule, split_borders, time_features


@pytest.fixture(scope="module")
def etth1() -> ETTDataModule:
    dm = ETTDataModule(seq_len=336, pred_len=96)
    dm.setup()
    return dm


@pytest.fixture(scope="module")
def raw() -> np.ndarray:
    return pd.read_csv(EMBEDDED_ETTH1).drop(columns="date").to_numpy(np.float64)


def test_etth1_borders_and_window_counts_by_hand(etth1):
    # 12/4/4 months of 30 days at one row per hour: 8640 / 2880 / 2880 rows
    assert etth1.layout == "ETTh"
    assert etth1.borders.train == (0, 8640)
    assert etth1.borders.val == (8640 - 336, 8640 + 2880)
    assert etth1.borders.test == (8640 + 2880 - 336, 8640 + 2880 + 2880)
    # windows = segment rows - seq_len - pred_len + 1
    assert len(etth1.datasets["train"]) == 8640 - 336 - 96 + 1 == 8209
    assert len(etth1.datasets["val"]) == 2880 - 96 + 1 == 2785
    assert len(etth1.datasets["test"]) == 2785
    assert etth1.channels == etth1.target_channels == 7
    assert etth1.columns[-1] == "OT"


def test_etth1_window_counts_at_720():
    dm = ETTDataModule(seq_len=336, pred_len=720)
    dm.setup()
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [8640 - 336 - 720 + 1, 2880 - 720 + 1, 2880 - 720 + 1]


def test_ettm_and_ratio_borders_by_hand():
    assert split_borders(69680, 96, "ETTm") == split_borders(69680, 96, "ETTm")
    ettm = split_borders(69680, 96, "ETTm")
    assert (ettm.train, ettm.val, ettm.test) == ((0, 34560), (34560 - 96, 46080), (46080 - 96, 57600))
    ratio = split_borders(1000, 24, "ratio")  # train int(0.7 n), test int(0.2 n), val the rest
    assert (ratio.train, ratio.val, ratio.test) == ((0, 700), (676, 800), (776, 1000))


def test_first_and_last_test_windows_are_the_right_rows(etth1, raw):
    x, y, x_mark, y_mark = etth1.datasets["test"][0]
    scaled = (raw - raw[:8640].mean(0)) / raw[:8640].std(0)
    np.testing.assert_allclose(x.numpy(), scaled[11520 - 336 : 11520], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y.numpy(), scaled[11520 : 11520 + 96], rtol=1e-5, atol=1e-5)
    dates = pd.DatetimeIndex(pd.read_csv(EMBEDDED_ETTH1, usecols=["date"])["date"])
    np.testing.assert_allclose(y_mark.numpy(), time_features(dates[11520 : 11520 + 96]))
    _, y_last, _, _ = etth1.datasets["test"][len(etth1.datasets["test"]) - 1]
    np.testing.assert_allclose(y_last.numpy()[-1], scaled[14399], rtol=1e-5, atol=1e-5)
    with pytest.raises(IndexError):
        etth1.datasets["test"][len(etth1.datasets["test"])]


def test_no_test_or_val_target_overlaps_training_targets(etth1):
    def target_rows(split: str) -> set[int]:
        ds = etth1.datasets[split]
        return {r for i in (0, len(ds) - 1) for r in ds.target_rows(i)} | set(
            range(ds.target_rows(0)[0], ds.target_rows(len(ds) - 1)[-1] + 1)
        )

    train, val, test = target_rows("train"), target_rows("val"), target_rows("test")
    assert max(train) == 8639 and min(val) == 8640 and max(val) == 11519 and min(test) == 11520
    assert not train & test and not val & test and not train & val
    # every row of every split is forecast at least once (nothing lost to the seq_len history)
    assert len(val) == 2880 and len(test) == 2880


def test_standardization_uses_train_rows_only(etth1, raw, tmp_path):
    np.testing.assert_allclose(etth1.mean, raw[:8640].mean(0), rtol=1e-5)
    np.testing.assert_allclose(etth1.std, raw[:8640].std(0), rtol=1e-5)
    # changing values after the train rows leaves the statistics (and the train windows) unchanged
    frame = pd.read_csv(EMBEDDED_ETTH1)
    frame.loc[9000:, "OT"] += 1000.0
    shifted = tmp_path / "ETTh1.csv"
    frame.to_csv(shifted, index=False)
    dm = ETTDataModule(path=str(shifted))
    dm.setup()
    np.testing.assert_allclose(dm.mean, etth1.mean, rtol=1e-6)
    np.testing.assert_allclose(dm.std, etth1.std, rtol=1e-6)
    torch.testing.assert_close(dm.datasets["train"][5][0], etth1.datasets["train"][5][0])
    x = dm.datasets["train"].inputs
    torch.testing.assert_close(x.mean(0), torch.zeros(7), atol=1e-4, rtol=0)
    np.testing.assert_allclose(dm.inverse_transform(dm.datasets["test"][0][1].numpy()), frame.iloc[11520:11616, 1:].to_numpy(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(("features", "channels", "targets"), [("M", 3, 3), ("S", 1, 1), ("MS", 3, 1)])
def test_features_select_inputs_and_targets(series_csv, features, channels, targets):
    dm = ETTDataModule(path=str(series_csv), seq_len=24, pred_len=8, features=features, batch_size=4)
    dm.setup()
    assert dm.layout == "ratio"
    assert (dm.channels, dm.target_channels) == (channels, targets)
    x, y, x_mark, y_mark = next(iter(dm.val_dataloader()))
    assert x.shape == (4, 24, channels) and y.shape == (4, 8, targets)
    assert x_mark.shape == (4, 24, 5) and y_mark.shape == (4, 8, 5)
    assert dm.target_columns[-1] == "OT"
    # the target is the last input channel: its future equals y
    full = dm.datasets["val"].inputs
    torch.testing.assert_close(dm.datasets["val"][3][1][:, -1], full[3 + 24 : 3 + 32, -1])


def test_target_moves_last_in_m(make_csv):
    path = make_csv("x.csv", columns=("OT", "a", "b"))
    dm = ETTDataModule(path=str(path), seq_len=24, pred_len=8)
    dm.setup()
    assert dm.columns == ("a", "b", "OT")
    keep = ETTDataModule(path=str(path), seq_len=24, pred_len=8, target=None)
    keep.setup()
    assert keep.columns == ("OT", "a", "b")


def test_no_io_in_init_and_seeded_shuffling(series_csv):
    ETTDataModule(path=str(series_csv.with_name("missing.csv")))  # nothing is read yet
    orders = []
    for seed in (0, 0, 1):
        dm = ETTDataModule(path=str(series_csv), seq_len=24, pred_len=8, batch_size=8, seed=seed)
        dm.setup()
        orders.append(torch.cat([b[0][:, 0, 0] for b in dm.train_dataloader()]))
    torch.testing.assert_close(orders[0], orders[1])
    assert not torch.equal(orders[0], orders[2])
    assert ETTDataModule().dataset_name == "ETTh1"


def test_ettm_file_gets_the_15_minute_borders(make_csv):
    # Dataset_ETT_minute of the reference code: borders 12*30*24*4 = 34560 and 16*30*24*4 = 46080, end 57600
    path = make_csv("ETTm1.csv", rows=57600 + 100)  # rows past the 20 months are unused, as in ETTm1's 69680
    dm = ETTDataModule(path=str(path), seq_len=336, pred_len=96)
    dm.setup()
    assert dm.dataset_name == "ETTm1" and dm.layout == "ETTm"
    assert (dm.borders.train, dm.borders.val, dm.borders.test) == ((0, 34560), (34224, 46080), (45744, 57600))
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [34560 - 336 - 96 + 1, 11520 - 96 + 1, 11520 - 96 + 1]


@pytest.mark.parametrize(("rows", "seq_len", "expected"), [
    # Dataset_Custom: train int(0.7 n), test int(0.2 n), val the rest; val/test start seq_len early
    (966, 104, ((0, 676), (572, 773), (669, 966))),  # national_illness.csv
    (52696, 336, ((0, 36887), (36551, 42157), (41821, 52696))),  # weather.csv
    (7588, 336, ((0, 5311), (4975, 6071), (5735, 7588))),  # exchange_rate.csv
])
def test_custom_datasets_get_the_reference_ratio_borders(rows, seq_len, expected):
    b = split_borders(rows, seq_len, "ratio")
    assert (b.train, b.val, b.test) == expected


def test_an_ili_file_splits_7_1_2_with_its_104_step_window(make_csv):
    path = make_csv("national_illness.csv", rows=966)
    dm = ETTDataModule(path=str(path), dataset_name="ILI", seq_len=104, pred_len=24)
    dm.setup()
    assert dm.layout == "ratio"
    # segments 676, 201 and 297 rows -> rows - 104 - 24 + 1 windows
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [549, 74, 170]
    assert dm.datasets["test"].target_rows(len(dm.datasets["test"]) - 1)[-1] == 965
