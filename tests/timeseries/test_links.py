"""The forecasters take `seq_len`, `pred_len` and `channels` from `ETTDataModule` (links of `core.cli`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.cli import AttnCLI, main
from timeseries.data import EMBEDDED_ETTH1, ETTDataModule, read_series_csv, read_series_header

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "timeseries" / "configs").glob("*.yaml"))
DLINEAR = CONFIGS[0].with_name("dlinear_etth1.yaml")
SIZES = ("seq_len", "pred_len", "channels")
FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]



@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_config_sets_the_sizes_once_and_the_model_gets_them(config, make_csv, store):
    network = yaml.safe_load(config.read_text())["model"]["init_args"]["model"].get("init_args", {})
    assert not set(SIZES) & set(network), f"{config.name} sets a data size on the model"
    path = make_csv(columns=("a", "b", "c", "OT"))
    cli = AttnCLI(args=[
        "--config", str(config), f"--data.init_args.path={path}", "--data.init_args.seq_len=48",
        "--data.init_args.pred_len=24",
    ], run=False)
    assert tuple(getattr(cli.model.model, name) for name in SIZES) == (48, 24, 4)


def test_a_horizon_set_on_the_data_sizes_dlinear(store):
    cli = AttnCLI(args=["--config", str(DLINEAR), "--data.init_args.pred_len=192"], run=False)
    assert cli.model.num_parameters() == 2 * (336 * 192 + 192)  # two Linear(336, 192)


def test_a_horizon_set_on_the_model_alone_is_refused(store, capsys):
    with pytest.raises(SystemExit):
        AttnCLI(args=["--config", str(DLINEAR), "--model.init_args.model.init_args.pred_len=192"], run=False)
    assert "data.init_args.pred_len=96 but model.init_args.model.init_args.pred_len=192" in capsys.readouterr().err


@pytest.mark.parametrize(("features", "channels"), [("M", 4), ("MS", 4), ("S", 1)])
def test_channels_before_setup_equal_channels_after(make_csv, features, channels):
    dm = ETTDataModule(path=str(make_csv(columns=("a", "b", "c", "OT"))), seq_len=24, pred_len=8, features=features)
    before = dm.channels
    dm.setup()
    assert before == dm.channels == channels


def test_header_columns_equal_the_parsed_columns():
    assert read_series_header(EMBEDDED_ETTH1) == read_series_csv(EMBEDDED_ETTH1).columns
    assert ETTDataModule().channels == 7


def test_header_errors_name_the_file(tmp_path):
    bad = tmp_path / "nodate.csv"
    bad.write_text("time,a,b\n2020-01-01,1,2\n")
    with pytest.raises(ValueError, match=r"nodate\.csv: column 'date' missing; found \['time', 'a', 'b'\]"):
        _ = ETTDataModule(path=str(bad)).channels
    with pytest.raises(FileNotFoundError, match=r"nope\.csv: file not found"):
        _ = ETTDataModule(path=str(tmp_path / "nope.csv")).channels


def test_a_custom_csv_trains_without_typing_its_channels(make_csv, store):
    path = make_csv(columns=("a", "b", "c", "d", "OT"))
    main([
        "fit", "--config", str(DLINEAR), f"--data.init_args.path={path}", "--data.init_args.dataset_name=toy",
        "--data.init_args.seq_len=24", "--data.init_args.pred_len=8", "--model.init_args.model.init_args.individual=true",
        "--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1", *FAST,
    ])
    (experiment,) = [e for e in store.search_experiments() if e.name.startswith("timeseries/") and e.name.endswith("/toy")]
    (run,) = store.search_runs([experiment.experiment_id])
    params = run.data.params
    assert (params["seq_len"], params["horizon"], params["data.seq_len"], params["data.pred_len"]) == ("24", "8", "24", "8")
    assert int(params["params"]) == 2 * 5 * (24 * 8 + 8)  # DLinear individual: a Linear(24, 8) per channel and part
