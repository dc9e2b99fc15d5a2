"""`attn fit` with the SR configs trains a few steps into a temporary MLflow store; `attn-bench sr` rows."""

from __future__ import annotations

import json
from pathlib import Path

from core.bench import main as bench_main
from core.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "vision" / "configs"
FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
TINY_HAT = [
    "--model.init_args.model.init_args.embed_dim=16", "--model.init_args.model.init_args.depths=[2]",
    "--model.init_args.model.init_args.num_heads=[2]", "--model.init_args.model.init_args.squeeze_factor=4",
]




def test_cli_trains_hat_then_tests_it(store, tmp_path):
    config = str(CONFIGS / "hat_small_x4_skimage.yaml")
    main([
        "fit", "--config", config, "--trainer.max_steps=3", "--trainer.val_check_interval=3",
        "--data.init_args.batch_size=2", "--data.init_args.patch_size=16", "--data.init_args.val_crop=128",
        "--test_after_fit=true", "--trainer.log_every_n_steps=1", *TINY_HAT, *FAST,
    ])
    exp = store.get_experiment_by_name("vision/sr/skimage")
    assert exp is not None
    (run,) = store.search_runs([exp.experiment_id])
    tags, metrics = run.data.tags, run.data.metrics
    assert (tags["domain"], tags["dataset"], tags["model"], tags["role"]) == ("vision", "skimage", "HAT", "model")
    assert tags["kernel"] == "auto"
    assert {"val/psnr", "val/ssim", "test/psnr", "test/ssim", "train/l1_step"} <= set(metrics)
    assert 5 < metrics["test/psnr"] < 50 and -1 < metrics["test/ssim"] <= 1
    images = [a.path for a in store.list_artifacts(run.info.run_id, "images")]
    assert "images/test.png" in images and any(p.startswith("images/val_epoch") for p in images)
    assert list(tmp_path.glob("checkpoints/**/last.ckpt"))


def test_cli_bicubic_baseline_scores_the_test_photo(store):
    main(["fit", "--config", str(CONFIGS / "bicubic_x4_skimage.yaml"), "--test_after_fit=true", *FAST])
    exp = store.get_experiment_by_name("vision/sr/skimage")
    (run,) = store.search_runs([exp.experiment_id])
    assert run.data.tags["role"] == "baseline" and run.data.params["params"] == "0"
    assert 20 < run.data.metrics["test/psnr"] < 40


def test_bench_rows(store, tmp_path):
    out = tmp_path / "sr.json"
    bench_main([
        "sr", "--scale", "2", "--models", "bicubic", "hat_small", "--cost-models", "--max-steps", "3", "--latency-size", "16",
        "--json", str(out), "--set", "data.init_args.patch_size=16", "data.init_args.batch_size=2",
    ])
    rows = json.loads(out.read_text())
    assert [(r["model"], r["role"]) for r in rows] == [("Bicubic", "baseline"), ("HAT", "model")]
    for row in rows:
        assert {"gmacs", "latency_ms"} == set(row["measures"]) and row["error"] is None
        assert set(row["metrics"]) == {"psnr", "ssim"} and row["settings"] == {"scale": 2}
    assert rows[0]["params"] == 0 and rows[1]["params"] > 0
    assert rows[0]["steps"] == 0 and rows[1]["steps"] == 3  # bicubic is not fitted; HAT trains the fixed budget
    assert store.get_experiment_by_name("bench/sr")
