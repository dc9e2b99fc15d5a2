"""`attn-compare`: one row per comparable group (settings, config, model, kernel), filters, smoke runs."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from core.compare import latest_results, main, parse_filters
from tests.core.runs import make_run

EXP = "timeseries/forecast/ETTh1"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two horizons, two configs of one model, a kernel variant, a smoke run, a failed run (one store for the module)."""
    store = MlflowClient(f"sqlite:///{tmp_path_factory.mktemp('compare') / 'mlflow.db'}")
    make_run(store, EXP, "DLinear", {"mse": 0.40}, role="baseline", config="dlinear_etth1", settings={"horizon": "96"})
    make_run(store, EXP, "DLinear", {"mse": 0.38}, role="baseline", config="dlinear_etth1", settings={"horizon": "96"})  # newer
    make_run(store, EXP, "DLinear", {"mse": 0.44}, role="baseline", config="dlinear_etth1", settings={"horizon": "192"})
    make_run(store, EXP, "PatchTST", {"mse": 0.37}, config="patchtst_etth1", kernel="sdpa", settings={"horizon": "96"})
    make_run(store, EXP, "PatchTST", {"mse": 0.36}, config="patchtst_etth1", kernel="math", settings={"horizon": "96"})
    make_run(store, EXP, "PatchTST", {"mse": 0.36}, config="patchtst_fast_etth1", kernel="sdpa", settings={"horizon": "96"})
    make_run(store, EXP, "PatchTST", {"mse": 9.9}, config="patchtst_etth1", kernel="sdpa", settings={"horizon": "96"},
             smoke="max_steps=5")
    make_run(store, EXP, "PatchTST", {"mse": 7.7}, config="patchtst_etth1", kernel="sdpa", settings={"horizon": "96"},
             status="FAILED")
    return store


def keys(rows):
    return [(r["horizon"], r["model"], r["config"], r["kernel"]) for r in rows]


def test_rows_are_kept_apart_by_horizon_config_and_kernel(runs):
    rows = latest_results(EXP, runs)
    assert keys(rows) == [
        ("192", "DLinear", "dlinear_etth1", "none"),
        ("96", "DLinear", "dlinear_etth1", "none"),
        ("96", "PatchTST", "patchtst_etth1", "math"),
        ("96", "PatchTST", "patchtst_etth1", "sdpa"),
        ("96", "PatchTST", "patchtst_fast_etth1", "sdpa"),
    ]
    by_key = {k: r for k, r in zip(keys(rows), rows, strict=True)}
    assert by_key[("96", "DLinear", "dlinear_etth1", "none")]["metrics"] == {"mse": pytest.approx(0.38)}  # the newest run
    assert by_key[("96", "PatchTST", "patchtst_etth1", "sdpa")]["metrics"] == {"mse": pytest.approx(0.37)}  # not smoke, not failed
    assert "smoke" not in rows[0]


def test_filter_keeps_one_horizon(runs):
    rows = latest_results(EXP, runs, filters={"horizon": "96", "kernel": "sdpa"})
    assert keys(rows) == [("96", "PatchTST", "patchtst_etth1", "sdpa"), ("96", "PatchTST", "patchtst_fast_etth1", "sdpa")]


def test_smoke_runs_are_marked_when_included(runs):
    rows = latest_results(EXP, runs, include_smoke=True, filters={"config": "patchtst_etth1", "kernel": "sdpa"})
    ((row),) = rows
    assert row["smoke"] == "max_steps=5" and row["metrics"]["mse"] == pytest.approx(9.9)


def test_command_prints_the_grouping_columns(runs, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", runs.tracking_uri)
    main([EXP, "--filter", "horizon=192"])
    out = capsys.readouterr().out
    header = out.splitlines()[2].split()
    assert header[:6] == ["config", "horizon", "model", "role", "kernel", "params"] and "mse" in header
    assert "0.44" in out and "0.38" not in out


def test_bad_filter_and_unknown_experiment_name_the_problem(runs):
    with pytest.raises(SystemExit, match="expected KEY=VALUE"):
        parse_filters(["horizon96"])
    with pytest.raises(SystemExit, match="no experiment 'nope'"):
        latest_results("nope", runs)
