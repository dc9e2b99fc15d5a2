"""Runs that survive faults and load: a SIGKILLed fit resumes with `--ckpt_path last`; four fits logging
at once into one SQLite store, or one tracking server, all land; a tracking server that is down at
start fails in seconds naming its URI; one that goes down mid-run costs no checkpoint."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

import core.lightning_cli  # noqa: F401 - Lightning and MLflow are imported before any capsys test, so that
import mlflow  # noqa: F401 - their log handlers bind the real stderr, not a closed capture
from core.cli import main
from tests.core.servers import TOY, fit_process, free_port, mlflow_server, stop_server

pytestmark = pytest.mark.slow  # subprocess fits and servers: tens of seconds each on a loaded 2-core machine
SLOW_STEPS = ["--trainer.callbacks+=tests.core.toy.Sleep", "--trainer.callbacks.seconds=0.25"]


def toy_runs(client: MlflowClient):
    exp = client.get_experiment_by_name("toy/classify/toy")
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"]) if exp else []


def steps(client: MlflowClient, run, metric: str = "train/loss_step") -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run.info.run_id, metric))


def last_step(folder: Path) -> int:
    """The global step of the newest `last.ckpt` under `folder` (-1 while there is none or it is being written)."""
    found = sorted(folder.glob("*/*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    try:
        return torch.load(found[-1], weights_only=True, map_location="cpu")["global_step"] if found else -1
    except Exception:  # noqa: BLE001 - a checkpoint half written at that instant
        return -1


def _logged_up_to(client: MlflowClient) -> int:
    """The highest `train/loss_step` step the first toy run has logged (-1 before it has one)."""
    runs = toy_runs(client)
    return max(steps(client, runs[0]), default=-1) if runs else -1


def wait_for(condition, timeout: float, what: str, process=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the fit ended first (exit {process.returncode}): {process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.3)


def finish(process, timeout: float = 600) -> str:
    _, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return err


def test_a_killed_fit_resumes_from_last_ckpt(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    budget = ["--trainer.max_steps=24", "--trainer.max_epochs=100", "--checkpoint.every_n_train_steps=4", *SLOW_STEPS]
    first = fit_process(uri, tmp_path, *budget)
    # Lightning writes a step's checkpoint before it logs that step's metrics: kill once the store has
    # step 9, so that every step before the step-8 checkpoint has landed (a SIGKILL between a checkpoint
    # and its step's metrics loses that one step, which the resumed fit does not repeat)
    client = MlflowClient(uri)
    wait_for(lambda: last_step(tmp_path) >= 8 and _logged_up_to(client) >= 9, 300, "step 9 logged after a last.ckpt of step 8", first)
    first.send_signal(signal.SIGKILL)  # halfway: no teardown, no finalize
    first.communicate()
    killed_at = last_step(tmp_path)
    assert 8 <= killed_at < 24
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", TOY, f"--trainer.default_root_dir={tmp_path}", *budget, "--ckpt_path", "last"])
    killed, resumed = toy_runs(client)
    assert killed.info.status == "RUNNING" and resumed.info.status == "FINISHED"  # SIGKILL leaves no end
    assert resumed.data.tags["resumed_from"] == killed.info.run_id
    assert resumed.data.tags["resumed_from_step"] == str(killed_at)
    assert last_step(tmp_path) == 24  # the same final step count as an uninterrupted fit
    assert len(steps(client, resumed)) == 24 - killed_at and min(steps(client, resumed)) >= killed_at - 1
    assert set(range(killed_at)) <= set(steps(client, killed)) | set(steps(client, resumed))  # no step lost


def _four_fits_land(uri: str, folder: Path) -> None:
    fits = [fit_process(uri, folder, f"--seed_everything={seed}", "--trainer.max_steps=12", "--trainer.max_epochs=10")
            for seed in range(4)]
    try:
        for fit in fits:
            finish(fit)
    finally:
        for fit in fits:
            if fit.poll() is None:
                fit.kill()
    client = MlflowClient(uri)
    runs = toy_runs(client)
    assert sorted(r.data.tags["seed"] for r in runs) == ["0", "1", "2", "3"]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert len(steps(client, run)) == 12  # every step of every run is there
        assert len(steps(client, run, "val/loss")) == 3  # 3 epochs of 4 steps


def test_four_fits_into_one_sqlite_store_all_land(tmp_path):
    _four_fits_land(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path)


def test_four_fits_into_one_tracking_server_all_land(tmp_path):
    with mlflow_server(tmp_path) as (uri, _server):
        _four_fits_land(uri, tmp_path)


def test_a_server_that_is_down_fails_in_seconds_naming_it(tmp_path, monkeypatch, capsys):
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", TOY], friendly=True)
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and f"attn fit: error: MLflow tracking server {uri} is not reachable" in err
    assert "unset MLFLOW_TRACKING_URI" in err and "Traceback" not in err
    assert seconds < 30, f"{seconds:.0f} s"  # MLflow's own client retries for minutes
    assert not list(tmp_path.glob("checkpoints/**/*.ckpt"))


def test_a_server_going_down_mid_run_keeps_the_checkpoints(tmp_path):
    with mlflow_server(tmp_path) as (uri, server):
        client = MlflowClient(uri)
        fit = fit_process(uri, tmp_path, "--trainer.max_steps=40", "--trainer.max_epochs=100", *SLOW_STEPS)

        def logged_some_steps() -> bool:
            runs = toy_runs(client)
            return bool(runs) and len(steps(client, runs[0])) >= 4

        wait_for(logged_some_steps, 300, "4 logged steps", fit)
        stop_server(server)
    err = finish(fit)
    assert f"MLflow tracking server {uri} stopped answering" in err
    assert last_step(tmp_path) == 40  # trained to the end and checkpointed
    assert os.path.getsize(sorted(tmp_path.glob("*/*/checkpoints/last.ckpt"))[-1]) > 0
