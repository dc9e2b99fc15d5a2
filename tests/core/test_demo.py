"""`make demo` (core.demo): the table's rows from hand-made MLflow runs, DOMAINS selection, the runner's screen and log."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from core.demo import COLUMNS, Part, main, parse_part, part_row, select_parts
from tests.core.runs import make_run

ROOT = Path(__file__).resolve().parents[2]
ETT, SR, CTR = "timeseries/forecast/ETTh1", "vision/sr/skimage", "recsys/ctr/synthetic"
PARTS = [
    Part("demo-timeseries", ETT, "PatchTST", "DLinear"),
    Part("demo-sr", SR, "HAT", "Bicubic"),
    Part("demo-recsys", CTR, "Hiformer", "DCNv2"),
    Part("demo-molecules", "molecules/property/ESOL", "RMAT", "FingerprintRF"),
    Part("demo-lowlight", "vision/lowlight/synthetic", "LYTNet", "GammaCorrection"),
]


def now_ms() -> int:
    time.sleep(0.01)  # MLflow start times are in milliseconds: keep "before" and "after" apart
    return int(time.time() * 1000)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Runs from before the demo began (must be ignored), then the demo's: ETTh1, SR, CTR (no baseline)."""
    client = MlflowClient(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'mlflow.db'}")
    make_run(client, ETT, "PatchTST", {"mse": 0.10}, config="patchtst_etth1")  # an older, better run
    make_run(client, SR, "Bicubic", {"psnr": 40.0}, role="baseline", task="sr")
    since = now_ms()
    make_run(client, ETT, "DLinear", {"mse": 0.4012, "mae": 0.41}, role="baseline", config="dlinear_etth1")
    make_run(client, ETT, "PatchTST", {"mse": 0.3871, "mae": 0.40}, config="patchtst_etth1")
    make_run(client, ETT, "PatchTST", {"mse": 0.01}, config="patchtst_etth1", smoke="max_steps=5")  # newest, but smoke
    make_run(client, SR, "Bicubic", {"psnr": 31.48, "ssim": 0.806}, role="baseline", task="sr")
    make_run(client, SR, "HAT", {"psnr": 31.89, "ssim": 0.823}, task="sr")
    make_run(client, SR, "HAT", {"psnr": 35.0}, task="sr", status="FAILED")
    exp_id = client.get_experiment_by_name(ETT).experiment_id
    start = now_ms()  # a run of known length: 83.4 s from start to end
    run = client.create_run(exp_id, start_time=start, tags={"model": "DLinear", "role": "baseline", "task": "forecast"})
    client.log_metric(run.info.run_id, "test/mse", 0.3990)
    client.set_terminated(run.info.run_id, end_time=start + 83_400)
    make_run(client, CTR, "Hiformer", {"roc_auc": 0.7811, "logloss": 0.52}, task="ctr")
    return client, since


def test_lower_is_better_metric_picks_the_lower_value(store):
    client, since = store
    row = part_row(client, PARTS[0], since)
    assert set(row) == set(COLUMNS)
    assert (row["domain"], row["task"], row["dataset"], row["metric"]) == ("timeseries", "forecast", "ETTh1", "mse ↓")
    # the newest non-smoke finished runs after `since`: PatchTST 0.3871 (not 0.10 from before, not the smoke 0.01),
    # DLinear 0.399 (the timed run, newer than 0.4012)
    assert (row["model value"], row["baseline value"], row["better"]) == ("0.3871", "0.399", "PatchTST")
    assert row["baseline s"] == "83"  # (end - start) of the run: 83.4 s


def test_higher_is_better_metric_picks_the_higher_value(store):
    client, since = store
    row = part_row(client, PARTS[1], since)
    # HAT 31.89 (the FAILED 35.0 is left out) against Bicubic 31.48 (not 40.0 from before the demo)
    assert (row["metric"], row["model value"], row["baseline value"], row["better"]) == ("psnr ↑", "31.89", "31.48", "HAT")
    flipped = part_row(client, Part("demo-sr", SR, "Bicubic", "HAT"), since)
    assert flipped["better"] == "HAT"  # the baseline wins when its psnr is higher


def test_missing_runs_are_shown_not_raised(store):
    client, since = store
    ctr = part_row(client, PARTS[2], since)
    assert (ctr["metric"], ctr["model value"], ctr["baseline value"], ctr["better"], ctr["baseline s"]) == (
        "roc_auc ↑", "0.7811", "missing", "-", "-")
    esol = part_row(client, PARTS[3], since)  # no experiment at all: the task's first main metric
    assert (esol["metric"], esol["model value"], esol["baseline value"], esol["better"]) == ("rmse ↓", "missing", "missing", "-")


def test_domains_select_parts_in_order_and_unknown_names_fail_in_one_line():
    assert [p.target for p in select_parts(PARTS, "vision timeseries")] == ["demo-timeseries", "demo-sr", "demo-lowlight"]
    assert [p.target for p in select_parts(PARTS, "molecules")] == ["demo-molecules"]
    assert select_parts(PARTS, "") == PARTS
    with pytest.raises(SystemExit) as err:
        select_parts(PARTS, "timeseries visoin")
    message = str(err.value)
    assert "\n" not in message and "'visoin'" in message and "molecules, recsys, timeseries, vision" in message


def test_part_spec_is_parsed_or_refused():
    part = parse_part("demo-hsi vision/hsi_detection/hsi_sim SpecDETR CEM")
    assert (part.domain, part.task, part.dataset, part.model, part.baseline) == ("vision", "hsi_detection", "hsi_sim", "SpecDETR", "CEM")
    with pytest.raises(SystemExit, match="expected 'TARGET DOMAIN/TASK/DATASET MODEL BASELINE'"):
        parse_part("demo-hsi vision/hsi SpecDETR CEM")


def test_runner_logs_parts_keeps_claims_off_the_screen_and_reports_failures(tmp_path, monkeypatch, capsys):
    """Two make targets: one logs its model and baseline runs and prints a bench claim, one fails."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    make_run(client, ETT, "DLinear", {"mse": 0.2}, role="baseline")  # from before the demo: ignored
    (tmp_path / "runs.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from mlflow.tracking import MlflowClient
        from tests.core.runs import make_run
        client = MlflowClient({uri!r})
        make_run(client, {ETT!r}, "DLinear", {{"mse": 0.45}}, role="baseline")
        make_run(client, {ETT!r}, "PatchTST", {{"mse": 0.42}})
        print("target PatchTST mse <= 0.30: MISSED (0.420)")
    """))
    (tmp_path / "Makefile").write_text(
        f"demo-timeseries:\n\t{sys.executable} runs.py\n"
        "demo-sr:\n\t@echo 'training...'\n\t@echo 'claim: HAT above bicubic'\n\t@echo 'attn: bad.png: not an image' && echo '  (--debug shows the traceback)' && exit 3\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MAKEFLAGS", raising=False)
    specs = [f"{p.target} {p.experiment} {p.model} {p.baseline}" for p in PARTS[:2]]
    with pytest.raises(SystemExit) as err:
        main(["--log", "demo.log", *specs])
    assert err.value.code == 1
    screen = capsys.readouterr().out
    log = (tmp_path / "demo.log").read_text()
    assert "[1/2] timeseries: PatchTST vs DLinear ... done in" in screen
    assert "[2/2] vision: HAT vs Bicubic ... FAILED (exit 2)" in screen and "attn: bad.png: not an image" in screen
    assert "MISSED" not in screen and "claim:" not in screen and "training..." not in screen
    assert "target PatchTST mse <= 0.30: MISSED (0.420)" in log and "claim: HAT above bicubic" in log
    # domain task dataset model baseline metric (two words: "mse ↓") model-value baseline-value better seconds
    table = {r[0]: r for r in (line.split() for line in screen.splitlines()) if r and r[0] in ("timeseries", "vision")}
    assert table["timeseries"][5:10] == ["mse", "↓", "0.42", "0.45", "PatchTST"]
    assert table["vision"][5:12] == ["psnr", "↑", "missing", "missing", "-", "-", "-"]
    assert "Failed parts: demo-sr" in screen and f"--backend-store-uri {uri}" in screen
