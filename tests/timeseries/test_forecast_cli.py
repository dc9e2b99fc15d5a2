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
