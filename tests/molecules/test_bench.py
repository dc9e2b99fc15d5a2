"""`attn-bench molecules`: neural runs through `core.bench.train_row` in a worker, forests beside them."""

from __future__ import annotations

import json

import pytest

from core.bench import main as bench_main


@pytest.mark.slow
def test_bench_rows_of_a_forest_and_mat_on_a_tiny_csv(tiny_csv, cache_dir, tmp_path, store):
    out = tmp_path / "molecules.json"
    with pytest.warns(UserWarning, match="invalid SMILES"):
        bench_main([
            "molecules", "--dataset", "tiny", "--data-path", str(tiny_csv), "--target-columns", "logS",
            "--task-type", "regression", "--models", "mat", "rf_ecfp4", "--seeds", "0", "--jobs", "1",
            "--trees", "5", "--max-epochs", "1", "--cache-dir", str(cache_dir), "--json", str(out),
            "--set", "data.init_args.split_sizes=[0.5,0.25,0.25]", "data.init_args.batch_size=4",
            "model.init_args.model.init_args.dim=16", "model.init_args.model.init_args.depth=1",
            "model.init_args.model.init_args.heads=2", "model.init_args.model.init_args.ffn_dim=16",
        ])
    mat, forest = json.loads(out.read_text())
    assert (mat["config"], mat["role"], mat["error"]) == ("mat", "baseline", None)  # MAT is R-MAT's baseline
    assert (forest["config"], forest["role"], forest["error"]) == ("rf_ecfp4", "baseline", None)
    for row in (mat, forest):
        assert row["settings"] == {"split": "random", "seeds": 1}
        assert row["metrics"]["rmse"] >= row["metrics"]["mae"] > 0 and row["metrics"]["rmse_std"] == 0.0
    assert mat["params"] > 0 and mat["epochs"] == 1
    # both kinds of run land in the task's experiment, the table in bench/molecules
    runs = store.search_runs([store.get_experiment_by_name("molecules/property/tiny").experiment_id])
    assert sorted(r.data.tags["model"] for r in runs) == ["FingerprintRF", "MAT"]
    assert store.get_experiment_by_name("bench/molecules") is not None
