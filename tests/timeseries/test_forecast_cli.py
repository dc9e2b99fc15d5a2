"""`attn fit/test` with a timeseries config and `attn-bench ltsf`, into a temporary MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from core.bench import main as bench_main
from core.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "timeseries" / "configs"
FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def runs(client: MlflowClient, experiment: str):
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment} missing"
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def test_cli_trains_dlinear_then_tests_it(store, tmp_path):
    config = str(CONFIGS / "dlinear_etth1.yaml")
    main(["fit", "--config", config, "--trainer.max_epochs=1", "--trainer.limit_train_batches=4", "--trainer.limit_val_batches=2", *FAST])
    (fit,) = runs(store, "timeseries/forecast/ETTh1")
    tags, params = fit.data.tags, fit.data.params
    assert (tags["domain"], tags["dataset"], tags["model"], tags["role"]) == ("timeseries", "ETTh1", "DLinear", "baseline")
    assert params["horizon"] == "96" and params["seq_len"] == "336" and params["features"] == "M"
    assert int(params["params"]) == 2 * (336 * 96 + 96)  # DLinear: two Linear(336, 96)
    assert "val/mse" in fit.data.metrics and "val/mae" in fit.data.metrics
    (last,) = tmp_path.glob("checkpoints/**/last.ckpt")
    main(["test", "--config", config, f"--ckpt_path={last}", "--trainer.limit_test_batches=2", *FAST])
    test = runs(store, "timeseries/forecast/ETTh1")[-1]
    assert 0 < test.data.metrics["test/mse"] < 5 and 0 < test.data.metrics["test/mae"] < 5
    assert "forecast.png" in [a.path for a in store.list_artifacts(test.info.run_id)]


def test_bench_rows_and_mlflow_table(store, tmp_path):
    out = tmp_path / "ltsf.json"
    bench_main([
        "ltsf", "--models", "repeat", "dlinear", "--horizons", "24", "--max-epochs", "1", "--json", str(out),
        "--set", "trainer.limit_train_batches=2", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2",
    ])
    rows = json.loads(out.read_text())
    assert [(r["model"], r["role"], r["settings"]["horizon"]) for r in rows] == [("Repeat", "baseline", 24), ("DLinear", "baseline", 24)]
    for row in rows:
        assert row["error"] is None and row["seconds"] is not None
        assert set(row["metrics"]) == {"mse", "mae"} and row["dataset"] == "ETTh1"
    # the horizon set on the data reached the model (linked): DLinear's two 336 -> 24 maps
    assert rows[0]["params"] == 0 and rows[1]["params"] == 2 * (336 * 24 + 24)
    assert rows[0]["steps"] == 0 and rows[1]["steps"] == 2  # Repeat has nothing to fit
    assert len(runs(store, "timeseries/forecast/ETTh1")) == 2
    assert runs(store, "bench/ltsf")


def test_bench_needs_a_path_for_other_datasets():
    with pytest.raises(SystemExit, match="needs --data-path"):
        bench_main(["ltsf", "--dataset", "weather", "--no-mlflow"])


def test_bench_applies_a_datasets_settings_and_prints_its_row(store, tmp_path, make_csv, capsys):
    # ILI's scripts: seq_len 104, horizons 24..60, NLinear batch 32 and lr 0.01; a 400-row file splits 280/40/80
    make_csv("national_illness.csv", rows=400)  # found in the --data-path folder by the scripts' file name
    out = tmp_path / "ili.json"
    bench_main([
        "ltsf", "--dataset", "ili", "--data-path", str(tmp_path), "--models", "nlinear", "--horizons", "24",
        "--max-epochs", "1", "--json", str(out), "--no-mlflow", "--set", "trainer.limit_train_batches=2",
    ])
    (row,) = json.loads(out.read_text())
    assert row["dataset"] == "ILI" and row["error"] is None
    settings = row["settings"]
    assert (settings["seq_len"], settings["batch_size"], settings["lr"]) == (104, 32, 0.01)
    assert "Linear/ili.sh" in settings["settings_source"] and "1 epochs" in settings["settings"]
    assert row["params"] == 104 * 24 + 24  # the dataset's look-back reached the model
    assert row["reference"]["paper_mse"] == 1.683 and row["reference"]["paper_mae"] == 0.858  # Table 2, NLinear, ILI 24
    printed = capsys.readouterr().out
    assert "LTSF ILI (M)" in printed and "1.683" in printed
    assert "published: Zeng et al., AAAI 2023, Table 2 (nlinear)" in printed


def test_bench_on_an_unknown_dataset_runs_the_configs_settings(store, tmp_path, make_csv, capsys):
    path = make_csv("mine.csv", rows=400)
    out = tmp_path / "mine.json"
    bench_main([
        "ltsf", "--dataset", "mine", "--data-path", str(path), "--models", "linear", "--horizons", "8",
        "--seq-len", "48", "--max-epochs", "1", "--json", str(out), "--no-mlflow",
        "--set", "trainer.limit_train_batches=2", "trainer.limit_val_batches=2",
    ])
    (row,) = json.loads(out.read_text())
    assert row["error"] is None and row["reference"] == {}
    assert (row["settings"]["seq_len"], row["settings"]["batch_size"], row["settings"]["lr"]) == (48, 32, 0.005)
    assert row["settings"]["settings_source"].endswith("linear_etth1.yaml")
    assert "no published row for mine; settings: each config's own" in capsys.readouterr().out


def test_bench_names_the_file_a_dataset_needs(tmp_path):
    with pytest.raises(SystemExit, match="ETTm1.csv"):
        bench_main(["ltsf", "--dataset", "ETTm1", "--no-mlflow"])
    with pytest.raises(SystemExit, match="file not found"):
        bench_main(["ltsf", "--dataset", "ETTm1", "--data-path", str(tmp_path), "--no-mlflow"])


def test_bench_runs_patchtst_with_its_one_cycle_schedule(store, tmp_path, make_csv):
    # Electricity's PatchTST script: the large model, batch 32, lradj TST (one cycle stepped per batch)
    path = make_csv("electricity.csv", rows=400)
    out = tmp_path / "ecl.json"
    bench_main([
        "ltsf", "--dataset", "Electricity", "--data-path", str(path), "--models", "patchtst", "--horizons", "8",
        "--seq-len", "48", "--max-epochs", "1", "--json", str(out), "--no-mlflow",
        "--set", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
    ])
    (row,) = json.loads(out.read_text())
    assert row["error"] is None and row["steps"] == 2
    assert "lradj TST pct_start 0.2" in row["settings"]["settings"] and "d_model 128" in row["settings"]["settings"]
    assert "horizon 96's settings" in row["settings"]["settings"]
