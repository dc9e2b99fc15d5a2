"""`attn fit/test/predict` with a recsys config and `attn-bench ctr`, into a temporary MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

from core.bench import main as bench_main
from core.cli import main
from recsys.data import load_preprocessor, make_click_log

from .conftest import write_nfm_folder

CONFIGS = Path(__file__).resolve().parents[2] / "recsys" / "configs"
FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
SMALL = ["--data.init_args.synthetic_rows=3000", "--trainer.max_epochs=1", "--trainer.limit_train_batches=3"]


def runs(client: MlflowClient, experiment: str):
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment} missing"
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])


def test_cli_trains_hiformer_tests_it_and_predicts_with_the_training_vocabulary(store, tmp_path):
    config = str(CONFIGS / "hiformer_fast_synthetic.yaml")
    main(["fit", "--config", config, *SMALL, "--test_after_fit=true", *FAST])
    (run,) = runs(store, "recsys/ctr/synthetic")
    tags, metrics = run.data.tags, run.data.metrics
    assert (tags["domain"], tags["dataset"], tags["model"], tags["role"]) == ("recsys", "synthetic", "Hiformer", "model")
    assert 0.3 < metrics["test/roc_auc"] <= 1 and 0 < metrics["test/logloss"] < 2
    assert "val/roc_auc" in metrics and metrics["num_parameters"] > 1000
    assert run.data.params["fields"] == "15"
    assert "roc.png" in [a.path for a in store.list_artifacts(run.info.run_id)]
    (last,) = tmp_path.glob("checkpoints/**/last.ckpt")
    # the checkpoint carries the fitted vocabulary (plain data: weights_only loading)
    state = torch.load(last, weights_only=True)
    assert "CTRDataModule" in state and "preprocessor" in state["CTRDataModule"]
    pre = load_preprocessor(last)
    new_rows = make_click_log(50, seed=99)
    new_rows.loc[0, "cat3"] = "never_seen"
    csv = tmp_path / "new.csv"
    new_rows.drop(columns=["label"]).to_csv(csv, index=False)
    assert pre.transform(new_rows)["categorical"][0, 3] == 0
    main(["predict", f"--ckpt_path={last}", f"--predict_path={csv}", "--output", str(tmp_path / "scored"), *FAST])
    assert len(pd.read_csv(tmp_path / "scored" / "predictions.csv")) == 50


def test_bench_rows_claims_and_mlflow_table(store, tmp_path):
    out = tmp_path / "ctr.json"
    bench_main([
        "ctr", "--models", "lr", "hiformer", "hiformer_fast", "--rows", "2000", "--max-epochs", "1",
        "--latency-rounds", "1", "--json", str(out), "--set", "trainer.limit_train_batches=2",
    ])
    rows = json.loads(out.read_text())
    assert [(r["config"], r["model"], r["role"]) for r in rows] == [
        ("lr", "LogisticRegression", "baseline"), ("hiformer", "Hiformer", "model"), ("hiformer_fast", "Hiformer", "model"),
    ]
    for row in rows:
        assert set(row["metrics"]) == {"roc_auc", "logloss"} and row["params"] > 0
        assert row["measures"]["ms_per_1k_b1"] > 0 and row["measures"]["ms_per_1k_b1024"] > 0
    assert rows[2]["params"] < rows[1]["params"]
    assert len(runs(store, "recsys/ctr/synthetic")) == 3
    parent = [r for r in runs(store, "bench/ctr") if "mlflow.parentRunId" not in r.data.tags]
    assert len(parent) == 1
    text = Path(store.download_artifacts(parent[0].info.run_id, "table.txt", str(tmp_path))).read_text()
    assert "claim serving speedup at batch 1024" in text and "claim Hiformer above LR" in text


def test_bench_on_the_real_criteo_sample(store, tmp_path):
    out = tmp_path / "ctr.json"
    bench_main(["ctr", "--dataset", "criteo", "--models", "fm", "--max-epochs", "1", "--latency-rounds", "1", "--json", str(out), "--no-mlflow"])
    (row,) = json.loads(out.read_text())
    assert row["dataset"] == "criteo" and row["model"] == "FM" and row["error"] is None
    assert runs(store, "recsys/ctr/criteo")


def test_bench_on_a_folder_of_nfm_libfm_split_files(store, tmp_path, criteo):
    folder = write_nfm_folder(criteo, tmp_path / "criteo_nfm")
    out = tmp_path / "ctr.json"
    bench_main([
        "ctr", "--format", "libfm", "--data-path", str(folder), "--models", "lr", "hiformer_fast", "--max-epochs", "1",
        "--latency-rounds", "1", "--json", str(out), "--set", "trainer.limit_train_batches=3", "data.init_args.batch_size=32",
    ])
    rows = json.loads(out.read_text())
    protocol = "predefined: train=criteo.train.libfm val=criteo.validation.libfm test=criteo.test.libfm"
    for row in rows:
        assert row["dataset"] == "criteo_nfm" and row["error"] is None and row["steps"] == 3
        assert row["settings"]["split_protocol"] == protocol
    assert len(runs(store, "recsys/ctr/criteo_nfm")) == 2
    (hiformer,) = [r for r in runs(store, "recsys/ctr/criteo_nfm") if r.data.tags["model"] == "Hiformer"]
    assert hiformer.data.params["fields"] == "26"  # one token per one-hot field, not per libFM index
    assert hiformer.data.params["split_protocol"] == protocol
    bench = runs(store, "bench/ctr")
    assert all(r.data.params["split_protocol"] == protocol for r in bench if "mlflow.parentRunId" in r.data.tags)
    (parent,) = [r for r in bench if "mlflow.parentRunId" not in r.data.tags]
    text = Path(store.download_artifacts(parent.info.run_id, "table.txt", str(tmp_path))).read_text()
    assert f"splits: {protocol}; rows train/val/test 140/40/20, 26 fields (libFM layout positional)" in text


def test_bench_needs_a_format_for_unknown_datasets():
    with pytest.raises(SystemExit, match="needs --format"):
        bench_main(["ctr", "--dataset", "mine", "--data-path", "x.csv", "--no-mlflow"])
