"""`attn fit` with the hyperspectral configs trains a few steps into a temporary MLflow store; `attn-bench hsi` rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.bench import main as bench_main
from core.cli import main
from vision.data.hsi_simulation import SHARED_SCENES

CONFIGS = Path(__file__).resolve().parents[2] / "vision" / "configs"
FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
SMALL_DATA = ["--data.init_args.val_per_tile=1", "--data.init_args.test_per_tile=1", "--data.init_args.batch_size=2"]
TINY = [
    "--model.init_args.model.init_args.embed_dim=16", "--model.init_args.model.init_args.num_encoder_layers=1",
    "--model.init_args.model.init_args.num_decoder_layers=1", "--model.init_args.model.init_args.num_queries=20",
]
pytestmark = pytest.mark.skipif(not (SHARED_SCENES / "sandiego.mat").is_file(), reason=f"shared scenes not in {SHARED_SCENES}")


def test_cli_trains_specdetr_then_tests_it(store, tmp_path):
    main([
        "fit", "--config", str(CONFIGS / "specdetr_small_hsi_sim.yaml"), "--trainer.max_steps=3", "--trainer.val_check_interval=3",
        "--test_after_fit=true", "--trainer.log_every_n_steps=1", *SMALL_DATA, *TINY, *FAST,
    ])
    exp = store.get_experiment_by_name("vision/hsi_detection/hsi_sim")
    assert exp is not None
    (run,) = store.search_runs([exp.experiment_id])
    tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
    assert (tags["domain"], tags["task"], tags["dataset"], tags["model"], tags["role"]) == (
        "vision", "hsi_detection", "hsi_sim", "SpecDETR", "model")
    assert tags["kernel"] == "auto"
    assert {"val/map", "val/map25", "val/map50", "val/pixel_roc_auc", "test/map", "test/map50", "train/loss_step"} <= set(metrics)
    assert 0 <= metrics["test/map"] <= metrics["test/map50"] <= metrics["test/map25"] <= 1
    assert params["data.class_0"].startswith("sandiego_plane: mean of the 58 labelled pixels")
    images = [a.path for a in store.list_artifacts(run.info.run_id, "images")]
    assert "images/test_detections.png" in images
    assert list(tmp_path.glob("checkpoints/**/last.ckpt"))


def test_cli_ace_baseline_scores_the_test_scenes(store):
    main(["fit", "--config", str(CONFIGS / "ace_hsi_sim.yaml"), "--test_after_fit=true", *SMALL_DATA, *FAST])
    exp = store.get_experiment_by_name("vision/hsi_detection/hsi_sim")
    (run,) = store.search_runs([exp.experiment_id])
    assert run.data.tags["role"] == "baseline" and run.data.params["params"] == "0"
    assert 0.3 < run.data.metrics["test/map50"] <= 1 and 0.9 < run.data.metrics["test/pixel_roc_auc"] <= 1


@pytest.mark.slow
def test_bench_rows_and_cross_sensor_protocol(store, tmp_path):
    other = tmp_path / "other_sensor"
    other.mkdir()
    (other / "hydice.mat").symlink_to(SHARED_SCENES.resolve() / "hydice.mat")
    out = tmp_path / "hsi.json"
    bench_main([
        "hsi", "--models", "specdetr", "cem", "rx", "--max-steps", "2", "--data-path", str(other), "--json", str(out),
        "--root-dir", str(tmp_path / "ckpt"), "--set", *(a.removeprefix("--") for a in SMALL_DATA),
    ])
    rows = json.loads(out.read_text())
    assert [(r["model"], r["role"]) for r in rows] == [("SpecDETR", "model"), ("CEM", "baseline"), ("RX", "baseline")]
    for row in rows:
        assert row["error"] is None and row["dataset"] == "hsi_sim_other_sensor"
        assert {"map", "map25", "map50", "pixel_roc_auc", "real_pixel_roc_auc", "real_pixel_roc_auc_hydice"} <= set(row["metrics"])
    assert rows[0]["params"] > 0 and rows[1]["params"] == 0
    exp = store.get_experiment_by_name("vision/hsi_detection/hsi_sim_other_sensor")
    runs = store.search_runs([exp.experiment_id])
    assert {r.data.params.get("data.test_tiles", "").split("@")[0] for r in runs} == {"hydice"}
