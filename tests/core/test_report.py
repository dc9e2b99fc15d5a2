"""`attn report`: groups as attn-compare does, mean and spread over seeds, Markdown/HTML/plots, logged back."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from core.report import MAIN_METRICS, build, main, main_metric
from tests.core.runs import make_run

ETT, SR = "timeseries/forecast/ETTh1", "vision/sr/Set5"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """DLinear and PatchTST over three and two seeds, a horizon-192 row, an SR experiment, a smoke run."""
    store = MlflowClient(f"sqlite:///{tmp_path_factory.mktemp('report') / 'mlflow.db'}")
    for seed, mse in (("1", 0.40), ("2", 0.42), ("3", 0.47)):
        make_run(store, ETT, "DLinear", {"mse": mse, "mae": 0.4}, role="baseline", config="dlinear_etth1",
                 settings={"horizon": "96"}, seed=seed)
    make_run(store, ETT, "DLinear", {"mse": 0.30, "mae": 0.3}, role="baseline", config="dlinear_etth1",
             settings={"horizon": "96"}, seed="3")  # newer run of seed 3: replaces 0.47
    for seed, mse in (("1", 0.36), ("2", 0.38)):
        make_run(store, ETT, "PatchTST", {"mse": mse, "mae": 0.39}, config="patchtst_etth1", kernel="sdpa",
                 settings={"horizon": "96"}, seed=seed)
    make_run(store, ETT, "PatchTST", {"mse": 0.01, "mae": 0.01}, config="patchtst_etth1", kernel="sdpa",
             settings={"horizon": "96"}, seed="4", smoke="max_steps=5")
    make_run(store, ETT, "DLinear", {"mse": 0.45, "mae": 0.45}, role="baseline", config="dlinear_etth1", settings={"horizon": "192"})
    make_run(store, SR, "Bicubic", {"psnr": 28.4}, role="baseline", config="bicubic_x4", settings={"scale": "4"}, task="sr")
    make_run(store, SR, "HAT", {"psnr": 32.6}, config="hat_x4", kernel="math", settings={"scale": "4"}, task="sr")
    return store


def test_main_metric_table_covers_every_task():
    assert main_metric("forecast", ["mae", "mse"]) == ("mse", "min")
    assert main_metric("property", ["roc_auc"]) == ("roc_auc", "max")  # a classification dataset
    assert main_metric("property", ["rmse", "mae"]) == ("rmse", "min")
    assert {"forecast", "lowlight", "sr", "ctr", "property", "tagging", "separation", "hsi_detection"} <= set(MAIN_METRICS)
    assert main_metric("unknown", ["mse"]) is None


def test_groups_average_seeds_and_order_by_main_metric(runs):
    (etth1_192, etth1_96, sr) = build(runs)
    assert (etth1_96.experiment, etth1_96.settings, etth1_96.main) == (ETT, {"horizon": "96"}, ("mse", "min"))
    patchtst, dlinear = etth1_96.groups  # ordered by mean mse, lower first
    assert (patchtst.model, sorted(patchtst.seeds)) == ("PatchTST", ["1", "2"])  # the smoke run is left out
    assert patchtst.mean("mse") == pytest.approx(0.37) and patchtst.spread("mse") == pytest.approx(0.0141421356)
    assert sorted(dlinear.values["mse"]) == pytest.approx([0.30, 0.40, 0.42])  # newest run per seed
    assert dlinear.mean("mse") == pytest.approx(0.37333333) and dlinear.spread("mse") == pytest.approx(0.0642910051)
    assert etth1_96.best() is patchtst
    assert [g.model for g in etth1_192.groups] == ["DLinear"] and etth1_192.groups[0].spread("mse") is None
    assert (sr.main, sr.best().model) == (("psnr", "max"), "HAT")


def test_smoke_runs_count_when_asked(runs):
    etth1_96 = build(runs, [ETT], include_smoke=True, filters={"horizon": "96"})[0]
    patchtst = next(g for g in etth1_96.groups if g.model == "PatchTST")
    assert sorted(patchtst.seeds) == ["1", "2", "4"]


def test_command_writes_markdown_html_plots_and_logs_them(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", runs.tracking_uri)
    out = tmp_path / "report"
    main(["--out", str(out), "--experiment", ETT, SR])
    md = (out / "report.md").read_text()
    assert "## timeseries/forecast/ETTh1 (horizon=96)" in md and "## vision/sr/Set5 (scale=4)" in md
    assert "| **PatchTST** | model | patchtst_etth1 | sdpa | 2 | - | 0.37 ± 0.014 | 0.39 ± 0 |" in md
    assert "| DLinear | baseline | dlinear_etth1 | none | 3 | - | 0.3733 ± 0.064 | 0.3667 ± 0.058 |" in md
    page = (out / "report.html").read_text()
    assert "<tr class='best'><td>PatchTST</td>" in page and "<td>0.3733 ± 0.064</td>" in page
    plots = sorted(p.name for p in (out / "plots").iterdir())
    assert plots == ["timeseries_forecast_ETTh1_horizon_192.png", "timeseries_forecast_ETTh1_horizon_96.png",
                     "vision_sr_Set5_scale_4.png"]
    assert all((out / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)
    (run,) = runs.search_runs([runs.get_experiment_by_name("reports").experiment_id])
    logged = {a.path for a in runs.list_artifacts(run.info.run_id)} | {a.path for a in runs.list_artifacts(run.info.run_id, "plots")}
    assert {"report.md", "report.html", "plots/vision_sr_Set5_scale_4.png"} <= logged
    assert "3 tables, 5 rows" in capsys.readouterr().out
    # a second report leaves the `reports` experiment itself out
    assert [s.experiment for s in build(runs)] == [ETT, ETT, SR]
