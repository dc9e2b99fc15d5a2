"""The `attn` CLI end to end: MLflow run contents, config artifact, resume, attention maps, DDP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from core.cli import main

TOY = str(Path(__file__).with_name("toy.yaml"))


def only_run(client: MlflowClient, experiment: str = "toy/classify/toy"):
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment} missing"
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    return runs


def test_fit_logs_metrics_params_tags_and_config(store, tmp_path):
    main(["fit", "--config", TOY, "--trainer.enable_progress_bar=false"])
    (run,) = only_run(store)
    assert run.data.tags["domain"] == "toy" and run.data.tags["task"] == "classify"
    assert run.data.tags["dataset"] == "toy"
    assert run.data.tags["model"] == "TinyTransformer"
    assert run.data.tags["role"] == "model"
    assert run.data.tags["kernel"] == "math"
    assert run.data.tags["seed"] == "0"
    assert run.data.tags["mlflow.runName"] == "TinyTransformer"
    assert "train/loss_step" in run.data.metrics
    assert "val/loss" in run.data.metrics and "val/accuracy" in run.data.metrics
    assert int(run.data.params["params"]) > 0
    assert run.data.params["model.model.kernel"] == "math"
    assert run.data.params["model.optimizer.lr"] == "0.01"
    config_path = store.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    config = yaml.safe_load(Path(config_path).read_text())
    assert config["model"]["init_args"]["model"]["class_path"] == "tests.core.toy.TinyTransformer"
    assert config["trainer"]["max_steps"] == 6
    history = store.get_metric_history(run.info.run_id, "train/loss_step")
    assert len(history) == 6


def test_config_artifact_reruns_and_baseline_is_tagged(store, tmp_path):
    main(["fit", "--config", TOY, "--model.model=tests.core.toy.BagOfTokens"])
    (run,) = only_run(store)
    assert run.data.tags["role"] == "baseline"
    assert run.data.tags["kernel"] == "none"
    saved = store.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    main(["fit", "--config", saved])
    first, second = only_run(store)
    assert second.data.tags["model"] == "BagOfTokens"
    assert first.data.metrics["val/loss"] == pytest.approx(second.data.metrics["val/loss"], rel=1e-6)


def test_resume_from_last_checkpoint_continues_step_count(store, tmp_path):
    main(["fit", "--config", TOY, "--trainer.max_steps=4", "--trainer.max_epochs=10"])
    (last,) = tmp_path.glob("checkpoints/*/*/checkpoints/last.ckpt")
    state = torch.load(last, weights_only=True)
    assert state["global_step"] == 4
    main(["fit", "--config", TOY, "--trainer.max_steps=8", "--trainer.max_epochs=10", f"--ckpt_path={last}"])
    runs = only_run(store)
    resumed = runs[-1]
    steps = sorted(m.step for m in store.get_metric_history(resumed.info.run_id, "train/loss_step"))
    first_steps = sorted(m.step for m in store.get_metric_history(runs[0].info.run_id, "train/loss_step"))
    assert len(steps) == 4 and steps[0] > max(first_steps)  # 4 more steps, numbered after the first run's
    (resumed_last,) = [p for p in tmp_path.glob("checkpoints/*/*/checkpoints/last.ckpt") if p != last]
    assert torch.load(resumed_last, weights_only=True)["global_step"] == 8


def test_attention_map_callback_logs_png(store, tmp_path):
    main([
        "fit", "--config", TOY,
        "--trainer.callbacks+=core.callbacks.AttentionMapCallback",
        "--trainer.callbacks.module=model.encoder.layers.0.self_attn",
    ])
    (run,) = only_run(store)
    listed = store.list_artifacts(run.info.run_id, "attention/model.encoder.layers.0.self_attn")
    assert listed and all(a.path.endswith(".png") for a in listed)


def test_attention_map_callback_rejects_a_module_without_weights(store):
    with pytest.raises(ValueError, match="has no attention_weights"):
        main([
            "fit", "--config", TOY,
            "--trainer.callbacks+=core.callbacks.AttentionMapCallback",
            "--trainer.callbacks.module=model.head",
        ])


def test_print_config_prints_resolved_yaml(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", TOY, "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["init_args"]["optimizer"]["class_path"] == "torch.optim.Adam"
    assert printed["checkpoint"]["save_last"] is True


@pytest.mark.slow
def test_ddp_two_cpu_processes_with_gloo(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "PYTHONPATH": os.getcwd()}
    cmd = [
        sys.executable, "-m", "core.cli", "fit", "--config", TOY,
        "--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu",
        f"--trainer.default_root_dir={tmp_path / 'ckpt'}",
    ]
    done = subprocess.run(cmd, env=env, cwd=os.getcwd(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "distributed_backend=gloo" in done.stderr + done.stdout
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    (run,) = only_run(client)
    assert run.info.status == "FINISHED"
    assert "val/loss" in run.data.metrics
