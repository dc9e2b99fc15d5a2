"""`attn predict` on a user's own series: the future after its last row, in the data's units, from a
checkpoint alone; the logged MLflow model serving a raw window in a fresh process; the run's dataset
name and split rule following the file (issue 16)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

import core.lightning_cli  # noqa: F401 - Lightning and MLflow log handlers bind the real stderr before capsys
from core.cli import main
from tests.timeseries.conftest import write_series_csv
from timeseries.data import ETTDataModule, time_features
from timeseries.data.future import future_dates, read_forecast_input, series_frequency
from timeseries.tasks import ForecastTask

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "timeseries" / "configs"
SEQ, PRED, ROWS, COLUMNS = 24, 8, 400, ("a", "b", "OT")
NET = "--model.init_args.model.init_args"
FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


# ---- frequencies and future time stamps --------------------------------------------------------
@pytest.mark.parametrize(("dates", "expected"), [
    (pd.date_range("2016-07-01", periods=5, freq="h"), ["2016-07-01 05:00", "2016-07-01 06:00"]),  # ETTh
    (pd.date_range("2016-07-01 23:30", periods=4, freq="15min"), ["2016-07-02 00:30", "2016-07-02 00:45"]),  # ETTm
    (pd.date_range("2002-01-01", periods=6, freq="W-TUE"), ["2002-02-12", "2002-02-19"]),  # ILI: weekly, on Tuesdays
    (pd.DatetimeIndex(["2020-01-01 00:00", "2020-01-01 02:00", "2020-01-01 04:00", "2020-01-01 10:00"]),
     ["2020-01-01 12:00", "2020-01-01 14:00"]),  # a gap: the median step, 2 h
], ids=["hourly", "15min", "weekly", "gap"])
def test_the_future_continues_at_the_series_frequency(dates, expected):
    assert list(future_dates(dates, 2)) == list(pd.DatetimeIndex(expected))


def test_a_single_time_stamp_takes_the_training_frequency():
    one = pd.DatetimeIndex(["2020-03-01 12:00"])
    assert series_frequency(one) is None
    assert list(future_dates(one, 2, fallback="15min")) == list(pd.DatetimeIndex(["2020-03-01 12:15", "2020-03-01 12:30"]))


# ---- the DataModule: fitted state, predict window, bad input -----------------------------------
@pytest.fixture()
def fitted_state(tmp_path):
    train = write_series_csv(tmp_path / "mine.csv", ROWS, COLUMNS)
    dm = ETTDataModule(path=str(train), seq_len=SEQ, pred_len=PRED)
    dm.setup("fit")
    return train, dm.state_dict()


def test_the_state_is_plain_and_predict_needs_no_training_rows(fitted_state, tmp_path):
    train, state = fitted_state
    torch.save({"ETTDataModule": state}, tmp_path / "state.ckpt")
    loaded = torch.load(tmp_path / "state.ckpt", weights_only=True)["ETTDataModule"]
    raw = pd.read_csv(train)
    train_rows = raw[list(COLUMNS)].to_numpy(np.float32)[: int(0.7 * ROWS)]  # the 7:1:2 train split
    np.testing.assert_allclose(loaded["mean"], train_rows.mean(0), rtol=1e-5)
    np.testing.assert_allclose(loaded["std"], train_rows.std(0), rtol=1e-5)
    assert (loaded["columns"], loaded["frequency"], loaded["date_column"]) == (list(COLUMNS), "h", "date")

    # the user's file: other rows of the series, columns reordered, one extra text column; the training file gone
    user = raw.iloc[300:340][["OT", "date", "b", "a"]].assign(note="x")
    user.to_csv(tmp_path / "user.csv", index=False)
    train.rename(tmp_path / "elsewhere.csv")
    dm = ETTDataModule(path=str(train), seq_len=SEQ, pred_len=PRED, predict_path=str(tmp_path / "user.csv"),
                       preprocessor_from=str(tmp_path / "state.ckpt"))
    assert dm.channels == 3  # from the checkpoint, not the (missing) training header
    dm.setup("predict")
    ((x, x_mark, y_mark),) = list(dm.predict_dataloader())
    window = user[list(COLUMNS)].to_numpy(np.float32)[-SEQ:]
    np.testing.assert_allclose(x[0].numpy(), (window - train_rows.mean(0)) / train_rows.std(0), rtol=1e-4, atol=1e-5)
    future = pd.date_range(pd.Timestamp(raw["date"][339]) + pd.Timedelta("1h"), periods=PRED, freq="h")
    assert list(dm.forecast_dates) == list(future)
    np.testing.assert_array_equal(x_mark[0].numpy(), time_features(pd.DatetimeIndex(user["date"][-SEQ:])))
    np.testing.assert_array_equal(y_mark[0].numpy(), time_features(future))
    frame = dm.forecast_frame(np.ones((PRED, 3), np.float32))
    assert list(frame.columns) == ["date", *COLUMNS] and len(frame) == PRED


def test_a_checkpoint_without_the_state_falls_back_to_the_training_file(fitted_state, tmp_path):
    train, state = fitted_state
    torch.save({"state_dict": {}}, tmp_path / "old.ckpt")  # written before the DataModule kept its state
    pd.read_csv(train).iloc[-SEQ:].to_csv(tmp_path / "user.csv", index=False)
    dm = ETTDataModule(path=str(train), seq_len=SEQ, pred_len=PRED, predict_path=str(tmp_path / "user.csv"),
                       preprocessor_from=str(tmp_path / "old.ckpt"))
    assert dm.channels == 3  # the training header
    dm.setup("predict")
    list(dm.predict_dataloader())
    assert dm.state_dict() == state  # the same scaling, fitted again on the training file


@pytest.mark.parametrize(("content", "message"), [
    ("date,a,b,OT\n" + "2020-01-01 00:00,1,2,3\n" * 1, "1 rows found; the model needs at least seq_len=24 rows"),
    ("date,a,OT\n2020-01-01 00:00,1,3\n", "missing the column(s) ['b'] the model was trained on; found ['date', 'a', 'OT']"),
    ("", "not a readable CSV file"),
    (None, "a folder; give one CSV of the series with the columns date,a,b,OT"),
    ("date,a,b,OT\n" + "".join(f"2020-01-02 {h:02d}:00,1,{'' if h == 3 else 2},3\n" for h in range(24)),
     "1 missing values (empty or NaN) in column(s) ['b'], first at line 5"),
], ids=["short", "column", "unreadable", "folder", "missing"])
def test_bad_input_is_named_in_one_line(tmp_path, content, message):
    path = tmp_path / "user.csv"
    if content is None:
        path.mkdir()
    else:
        path.write_text(content)
    with pytest.raises(ValueError) as error:
        read_forecast_input(path, COLUMNS, seq_len=SEQ)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value) and "\n" not in str(error.value)


# ---- issue 16: the dataset name and the split follow the file -------------------------------------
def test_configs_leave_the_dataset_name_to_the_file():
    for config in CONFIGS.glob("*.yaml"):
        assert "dataset_name" not in yaml.safe_load(config.read_text())["data"]["init_args"], config.name


def test_the_split_rule_says_which_and_why(fitted_state):
    train, _ = fitted_state
    mine = ETTDataModule(path=str(train), seq_len=SEQ, pred_len=PRED)
    mine.setup()
    assert mine.dataset_name == "mine"
    assert mine.split_rule == "ratio 7:1:2 in time order (280/40/80 rows): the dataset name mine starts with neither ETTh nor ETTm"
    etth1 = ETTDataModule(seq_len=SEQ, pred_len=PRED)  # the embedded ETTh1.csv
    etth1.setup()
    assert etth1.split_rule == "ETTh: 12/4/4 months (8640/2880/2880 rows), from the dataset name ETTh1"
    given = ETTDataModule(seq_len=SEQ, pred_len=PRED, split="ratio")
    given.setup()
    assert given.split_rule == "ratio 7:1:2 in time order (12194/1742/3484 rows), as split=ratio asks"  # 17420 rows


# ---- attn fit, then attn predict / test from the checkpoint alone, and the served model ---------
@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    """A two-step Transformer (its decoder reads the calendar features of the future) on `mine.csv`, its model
    logged. (Informer would do too, but its ProbSparse key sampling draws random numbers: no hand reference.)"""
    folder = tmp_path_factory.mktemp("predict")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(folder)
        train = write_series_csv(folder / "mine.csv", ROWS, COLUMNS)
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        main([
            "fit", "--config", str(CONFIGS / "transformer_etth1.yaml"), f"--data.init_args.path={train}",
            f"--data.init_args.seq_len={SEQ}", f"--data.init_args.pred_len={PRED}", f"{NET}.label_len=12",
            f"{NET}.d_model=16", f"{NET}.num_heads=2", f"{NET}.ffn_dim=32", "--trainer.max_steps=2",
            "--trainer.limit_val_batches=1", "--log_model=true", *FAST,
        ])
        (ckpt,) = folder.glob("checkpoints/**/last.ckpt")
        raw = pd.read_csv(train)
        user = raw.iloc[300:340][["OT", "date", "b", "a"]].assign(note="x")  # reordered, an extra column
        user.to_csv(folder / "user.csv", index=False)
        # the exact form of the README: no YAML, the checkpoint carries its config and the fitted scaling
        main(["predict", "--ckpt_path", str(ckpt), "--predict_path", str(folder / "user.csv"), "--output", str(folder / "out")])
        yield {"folder": folder, "store": MlflowClient(uri), "ckpt": ckpt, "train": train, "raw": raw, "user": user,
               "forecast": pd.read_csv(folder / "out" / "forecast.csv")}
        torch.set_num_threads(previous)


def test_the_run_is_named_after_the_file_with_its_split_rule(fit):
    store = fit["store"]
    experiment = store.get_experiment_by_name("timeseries/forecast/mine")
    (run,) = [r for r in store.search_runs([experiment.experiment_id]) if r.data.tags.get("subcommand") == "fit"]
    assert run.data.tags["dataset"] == "mine"
    assert run.data.params["split_rule"].startswith("ratio 7:1:2 in time order (280/40/80 rows)")


def test_predict_writes_the_future_in_the_data_units(fit):
    written = fit["forecast"]
    assert list(written.columns) == ["date", *COLUMNS]
    future = pd.date_range(pd.Timestamp(fit["raw"]["date"][339]) + pd.Timedelta("1h"), periods=PRED, freq="h")
    assert list(pd.to_datetime(written["date"])) == list(future)

    # the same forecast by hand: the checkpoint's network, the train split's statistics, the calendar features
    task = ForecastTask.load_from_checkpoint(fit["ckpt"], map_location="cpu").eval()
    train_rows = fit["raw"][list(COLUMNS)].to_numpy(np.float32)[: int(0.7 * ROWS)]
    mean, std = train_rows.mean(0), train_rows.std(0)
    user = fit["user"]
    x = (user[list(COLUMNS)].to_numpy(np.float32)[-SEQ:] - mean) / std
    x_mark = time_features(pd.DatetimeIndex(user["date"][-SEQ:]))
    with torch.no_grad():
        y = task.model(*(torch.from_numpy(a)[None] for a in (x, x_mark, time_features(future))))[0].numpy()
    np.testing.assert_allclose(written[list(COLUMNS)].to_numpy(), y * std + mean, rtol=1e-4, atol=1e-4)
    assert np.abs(y * std + mean - mean).max() > 0.01  # a forecast in the data's units, not the standardized one

    # the training CSV gone: the checkpoint's state is enough
    fit["train"].rename(fit["folder"] / "moved.csv")
    try:
        again = fit["folder"] / "again"
        main(["predict", "--ckpt_path", str(fit["ckpt"]), "--predict_path", str(fit["folder"] / "user.csv"),
              "--output", str(again), f"--data.init_args.preprocessor_from={fit['ckpt']}"])
    finally:
        (fit["folder"] / "moved.csv").rename(fit["train"])
    pd.testing.assert_frame_equal(pd.read_csv(again / "forecast.csv"), written)


def test_the_logged_model_serves_a_raw_window_in_a_fresh_process(fit):
    (run,) = [r for r in fit["store"].search_runs([e.experiment_id for e in fit["store"].search_experiments()])
              if r.data.tags.get("model_uri")]
    fit["user"][["date", *COLUMNS]].to_csv(fit["folder"] / "window.csv", index=False)  # the raw window, as served
    code = textwrap.dedent("""
        import sys
        import mlflow.pyfunc
        import pandas as pd
        window = pd.read_csv(sys.argv[2], dtype={"date": str})
        mlflow.pyfunc.load_model(sys.argv[1]).predict(window).to_csv(sys.argv[3], index=False)
    """)
    served = fit["folder"] / "served.csv"
    done = subprocess.run(
        [sys.executable, "-c", code, run.data.tags["model_uri"], str(fit["folder"] / "window.csv"), str(served)],
        cwd=fit["folder"], env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_csv(served), fit["forecast"])  # attn predict's numbers, to the last digit


def test_test_runs_from_the_checkpoint_alone(fit):
    main(["test", "--ckpt_path", str(fit["ckpt"]), "--trainer.limit_test_batches=1", *FAST])
    store = fit["store"]
    (test,) = [r for r in store.search_runs([store.get_experiment_by_name("timeseries/forecast/mine").experiment_id])
               if r.data.tags.get("subcommand") == "test"]
    assert 0 < test.data.metrics["test/mse"] < 10 and test.data.tags["checkpoint_run"]


@pytest.mark.parametrize(("rows", "columns", "message"), [
    (10, COLUMNS, "10 rows found; the model needs at least seq_len=24 rows"),
    (30, ("a", "OT"), "missing the column(s) ['b'] the model was trained on"),
], ids=["short", "column"])
def test_bad_input_fails_in_one_line_naming_the_file(fit, rows, columns, message, capsys):
    bad = write_series_csv(fit["folder"] / "bad.csv", rows, columns)
    with pytest.raises(SystemExit):
        main(["predict", "--ckpt_path", str(fit["ckpt"]), "--predict_path", str(bad), "--output", str(fit["folder"] / "x")],
             friendly=True)
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if ": error: " in line]
    assert f"attn predict: error: {bad}: " in line and message in line and "Traceback" not in err
