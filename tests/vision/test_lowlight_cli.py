"""`attn fit` with the low-light task into a temporary MLflow store, and `attn-bench lowlight`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.bench import main as bench_main
from core.cli import main
from vision.data.lol import SHARED_LOL

CONFIGS = Path(__file__).resolve().parents[2] / "vision" / "configs"
FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]




def test_cli_trains_lyt_net_on_synthetic_then_tests(store, tmp_path):
    main([
        "fit", "--config", str(CONFIGS / "lytnet_synthetic.yaml"), "--test_after_fit=true",
        "--trainer.max_epochs=1", "--trainer.limit_train_batches=3", "--model.init_args.model.init_args.filters=8",
        "--data.init_args.patch_size=32", "--data.init_args.batch_size=2", "--data.init_args.max_side=64", *FAST,
    ])
    exp = store.get_experiment_by_name("vision/lowlight/synthetic")
    assert exp is not None
    (run,) = store.search_runs([exp.experiment_id])
    tags, metrics = run.data.tags, run.data.metrics
    assert (tags["domain"], tags["model"], tags["role"], tags["dataset"]) == ("vision", "LYTNet", "model", "synthetic")
    for name in ("val/psnr", "val/ssim", "test/psnr", "test/ssim"):
        assert name in metrics
    assert 3 < metrics["test/psnr"] < 40 and 0 < metrics["test/ssim"] <= 1
    artifacts = [a.path for a in store.list_artifacts(run.info.run_id, "images")]
    assert "images/test.png" in artifacts and any(p.startswith("images/val_epoch") for p in artifacts)


@pytest.mark.skipif(not (SHARED_LOL / "our485_subset").is_dir(), reason="../shared/data/vision/LOL not present")
def test_bench_baselines_on_held_out_lol(store, tmp_path):
    out = tmp_path / "lowlight.json"
    bench_main(["lowlight", "--models", "identity", "gamma", "--json", str(out)])
    rows = json.loads(out.read_text())
    assert [(r["model"], r["role"]) for r in rows] == [("IdentityEnhancer", "baseline"), ("GammaCorrection", "baseline")]
    identity, gamma = (r["metrics"] for r in rows)
    assert 3 < identity["psnr"] < gamma["psnr"] < 30  # brightening beats the dark input
    assert all(r["error"] is None and r["steps"] == 0 for r in rows)  # classical: tested as built, not fitted
    assert rows[0]["measures"]["latency_s"] > 0
    # each row trained through the `attn` CLI into the task's experiment; the table into bench/lowlight
    trained = store.search_runs([store.get_experiment_by_name("vision/lowlight/LOL").experiment_id])
    assert sorted(r.data.tags["model"] for r in trained) == ["GammaCorrection", "IdentityEnhancer"]
    assert all(r.data.tags["dataset"] == "LOL" for r in trained)
    table = store.search_runs([store.get_experiment_by_name("bench/lowlight").experiment_id])
    assert len(table) == 3  # table run + one per row
