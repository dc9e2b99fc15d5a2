"""`core.bench`: the one training path of every benchmark (`train_row`), the row type and `report`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from core.bench import BenchRow, add_training_arguments, budget_arguments, report, train_row

TOY = Path(__file__).with_name("toy.yaml")


def options(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_training_arguments(parser, root_dir="checkpoints/test")
    return parser.parse_args(list(argv))



def test_budget_arguments_cap_but_never_lengthen():
    assert budget_arguments(options("--max-epochs", "2"), config_epochs=10) == ["--trainer.max_epochs=2"]
    assert budget_arguments(options("--max-epochs", "20"), config_epochs=10) == []
    assert budget_arguments(options("--max-epochs", "2"), config_epochs=-1) == ["--trainer.max_epochs=2"]
    assert budget_arguments(options("--max-steps", "5", "--max-seconds", "30")) == [
        "--trainer.max_steps=5", "--trainer.max_time={'seconds': 30}"]


def test_train_row_trains_through_the_cli_and_returns_a_typed_row(store, tmp_path):
    args = options("--max-steps", "4", "--set", "trainer.limit_val_batches=1")
    row, trained = train_row(TOY, args, dataset="toy", settings={"width": 16}, name="toy-run")
    assert row.error is None
    assert (row.model, row.role, row.dataset, row.config) == ("TinyTransformer", "model", "toy", "toy-run")
    assert row.steps == 4 and row.params == trained.task.num_parameters() > 0
    assert set(row.metrics) == {"loss", "accuracy"} and 0.0 <= row.metrics["accuracy"] <= 1.0
    assert row.settings == {"width": 16} and row.seconds is not None and row.seconds >= 0
    assert (tmp_path / "checkpoints" / "test" / "toy-run").is_dir()
    # the run landed in the task's experiment with the suite's tags, like `attn fit`
    exp = store.get_experiment_by_name(trained.task.experiment_name("toy"))
    (run,) = store.search_runs([exp.experiment_id])
    assert run.data.tags["model"] == "TinyTransformer" and "test/accuracy" in run.data.metrics


def test_train_row_measures_the_built_model_before_training(store):
    seen = []

    def cost(task):
        seen.append(task.trainer if task._trainer is not None else None)
        return {"latency_ms": 1.5}

    row, _ = train_row(TOY, options("--max-steps", "1"), on_built=cost, validate=False)
    assert seen == [None]  # called before the Trainer ran
    assert row.measures == {"latency_ms": 1.5} and row.steps == 1


def test_a_failed_run_is_a_row_with_its_error(store):
    row, trained = train_row(TOY, options("--set", "model.init_args.model.init_args.heads=3"))
    assert trained is None and row.metrics == {}
    assert row.error and "heads" in row.error


def test_report_logs_metrics_measures_and_settings_under_their_names(store, tmp_path):
    rows = [
        BenchRow(model="A", role="baseline", dataset="d", config="a", params=0, seconds=1.0, steps=3,
                 metrics={"mse": 0.5}, measures={"latency_ms": 2.0, "peak_gib": None}, settings={"horizon": 96},
                 reference={"paper_mse": 0.4}),
        BenchRow(model="B", role="model", dataset="d", config="b", metrics={"mse": 0.3}),
    ]
    out = tmp_path / "rows.json"
    text = report(rows, experiment="bench/test", title="T", json_path=out, columns=["model", "horizon", "mse", "latency_ms"])
    assert "horizon" in text.splitlines()[1] and "0.5" in text
    saved = json.loads(out.read_text())
    assert saved[0]["settings"] == {"horizon": 96} and saved[1]["metrics"] == {"mse": 0.3}
    exp = store.get_experiment_by_name("bench/test")
    children = [r for r in store.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    a = next(r for r in children if r.data.tags["model"] == "A")
    assert a.data.metrics["test/mse"] == 0.5 and a.data.metrics["latency_ms"] == 2.0
    assert "test/latency_ms" not in a.data.metrics and "peak_gib" not in a.data.metrics
    assert a.data.params["horizon"] == "96" and a.data.params["paper_mse"] == "0.4"


def test_report_exits_non_zero_after_printing_when_a_row_failed(store, tmp_path, capsys):
    rows = [BenchRow(model="A", metrics={"mse": 0.5}), BenchRow(model="B", config="b", error="ValueError: boom")]
    out = tmp_path / "rows.json"
    with pytest.raises(SystemExit, match="1 row\\(s\\) failed: b: ValueError: boom"):
        report(rows, experiment="bench/test", title="T", json_path=out, columns=["model", "mse"], log_mlflow=False)
    printed = capsys.readouterr().out
    assert "ValueError: boom" in printed and "0.5" in printed  # the table came first, with the error column
    assert len(json.loads(out.read_text())) == 2
