"""The `attn` CLI end to end: MLflow run contents and names, config artifact, resume, early stopping in
smoke runs, one-line errors, `attn --help`, attention maps, DDP."""

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
    # toy.yaml trains 6 steps: a smoke run by `core.tracking.SMOKE_MAX_STEPS`
    assert run.data.tags["mlflow.runName"] == "TinyTransformer toy kernel=math smoke"
    assert (run.data.tags["config"], run.data.tags["smoke"], run.data.tags["smoke_reason"]) == ("toy", "true", "max_steps=6")
    assert run.data.tags["run_key"] == "TinyTransformer toy kernel=math seed=0"
    assert run.data.params["trainer.max_steps"] == "6" and run.data.params["trainer.max_epochs"] == "3"
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
    first, resumed = runs
    assert state["mlflow_run"]["run_id"] == first.info.run_id  # every checkpoint names the run that wrote it
    steps = sorted(m.step for m in store.get_metric_history(resumed.info.run_id, "train/loss_step"))
    first_steps = sorted(m.step for m in store.get_metric_history(first.info.run_id, "train/loss_step"))
    assert len(steps) == 4 and steps[0] > max(first_steps)  # 4 more steps, numbered after the first run's
    assert resumed.data.tags["resumed_from"] == first.info.run_id and resumed.data.tags["resumed_from_step"] == "4"
    assert resumed.data.tags["mlflow.runName"] == "TinyTransformer toy kernel=math resumed smoke"
    (resumed_last,) = [p for p in tmp_path.glob("checkpoints/*/*/checkpoints/last.ckpt") if p != last]
    assert torch.load(resumed_last, weights_only=True)["global_step"] == 8


def test_last_checkpoint_is_the_last_step_when_the_best_is_earlier(store, tmp_path):
    # monitoring `step` with mode min keeps the first validation as the best; Lightning 2.6 alone
    # would leave last.ckpt at that step too
    main(["fit", "--config", TOY, "--trainer.max_steps=6", "--trainer.max_epochs=10", "--trainer.val_check_interval=2",
          "--checkpoint.monitor=step", "--checkpoint.mode=min"])
    (best,) = tmp_path.glob("checkpoints/*/*/checkpoints/epoch=*.ckpt")
    (last,) = tmp_path.glob("checkpoints/*/*/checkpoints/last.ckpt")
    assert torch.load(best, weights_only=True)["global_step"] == 2
    assert torch.load(last, weights_only=True)["global_step"] == 6


def test_ckpt_path_last_finds_the_same_configs_checkpoint(store, tmp_path, capsys):
    main(["fit", "--config", TOY, "--trainer.max_steps=3"])
    main(["fit", "--config", TOY, "--model.model=tests.core.toy.BagOfTokens", "--trainer.max_steps=2"])  # another model
    main(["fit", "--config", TOY, "--trainer.max_steps=5", "--ckpt_path=last"])
    first, other, resumed = only_run(store)
    assert resumed.data.tags["resumed_from"] == first.info.run_id and resumed.data.tags["resumed_from_step"] == "3"
    assert len(store.get_metric_history(resumed.info.run_id, "train/loss_step")) == 2
    # no earlier fit of this run key (another seed): a fresh start, said in one line
    main(["fit", "--config", TOY, "--seed_everything=7", "--trainer.max_steps=1", "--ckpt_path=last"])
    assert "no last.ckpt of an earlier `TinyTransformer toy kernel=math seed=7` fit" in capsys.readouterr().err
    assert "resumed_from" not in only_run(store)[-1].data.tags


def test_early_stopping_waits_for_a_validation(store, tmp_path):
    stop = ["--trainer.callbacks+=lightning.pytorch.callbacks.EarlyStopping", "--trainer.callbacks.monitor=val/loss"]
    # 2 of the 4 steps of an epoch: no validation ran (Lightning's own EarlyStopping raises here)
    main(["fit", "--config", TOY, "--trainer.max_steps=2", *stop])
    assert only_run(store)[0].info.status == "FINISHED"
    with pytest.raises(RuntimeError, match="Early stopping conditioned on metric `val/los`"):  # a typo still fails
        main(["fit", "--config", TOY, "--trainer.callbacks+=lightning.pytorch.callbacks.EarlyStopping",
              "--trainer.callbacks.monitor=val/los"])


def test_run_names_tell_test_runs_apart(store, tmp_path):
    main(["fit", "--config", TOY, "--trainer.max_steps=30", "--trainer.max_epochs=10"])
    (last,) = tmp_path.glob("checkpoints/*/*/checkpoints/last.ckpt")
    main(["test", "--config", TOY, f"--ckpt_path={last}", "--trainer.limit_test_batches=2"])
    fit, test = only_run(store)
    assert fit.data.tags["mlflow.runName"] == "TinyTransformer toy kernel=math" and fit.data.tags["smoke"] == "false"
    assert test.data.tags["mlflow.runName"] == "TinyTransformer toy kernel=math test smoke"
    assert test.data.tags["smoke_reason"] == "limit_test_batches=2" and test.data.tags["checkpoint_run"] == fit.info.run_id
    assert test.data.params["trainer.limit_test_batches"] == "2"


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
