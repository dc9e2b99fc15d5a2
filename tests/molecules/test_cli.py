"""`attn fit` trains R-MAT a few steps on a tiny CSV into a temporary MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_cli_fit_test_logs_metrics_skips_and_attention(tiny_csv, cache_dir, tmp_path, store):
    model = "--model.init_args.model.init_args"
    with pytest.warns(UserWarning, match="row 3: invalid SMILES"):
        main([
            "fit", "--config", str(ROOT / "molecules" / "configs" / "rmat_esol.yaml"),
            f"--data.init_args.path={tiny_csv}", "--data.init_args.dataset_name=tiny",
            "--data.init_args.target_columns=[logS]", f"--data.init_args.cache_dir={cache_dir}",
            "--data.init_args.featurize_workers=1", "--data.init_args.batch_size=4",
            "--data.init_args.split_sizes=[0.5,0.25,0.25]",
            f"{model}.dim=16", f"{model}.depth=1", f"{model}.heads=2", f"{model}.ffn_dim=16",
            "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={tmp_path}",
            "--test_after_fit=true",
        ])
    experiment = store.get_experiment_by_name("molecules/property/tiny")
    assert experiment is not None
    (run,) = store.search_runs([experiment.experiment_id])
    assert run.data.tags["model"] == "RMAT" and run.data.tags["domain"] == "molecules"
    assert run.data.params["skipped_rows"] == "1"
    assert {"test/rmse", "test/mae", "val/rmse"} <= set(run.data.metrics)
    assert run.data.metrics["test/rmse"] >= run.data.metrics["test/mae"] > 0
    artifacts = {a.path for a in store.list_artifacts(run.info.run_id, "attention")}
    assert "attention/RMAT.png" in artifacts
