"""Run names, smoke runs and budget params (`core.tracking`), and the settings a task reads (`BaseTask.run_settings`)."""

from __future__ import annotations

import types

from torch import nn

from core.task import BaseTask
from core.tracking import budget_params, run_name, smoke_reason


def test_run_name_says_what_the_run_is():
    assert run_name("PatchTST", config="patchtst_etth1", settings={"horizon": "96"}, kernel="sdpa") == (
        "PatchTST patchtst_etth1 horizon=96 kernel=sdpa")
    assert run_name("Hiformer", config="hiformer_fast_synthetic", kernel="auto", smoke=True) == (
        "Hiformer hiformer_fast_synthetic kernel=auto smoke")
    assert run_name("DLinear", config="dlinear", subcommand="test", resumed=False) == "DLinear test"  # config = model
    assert run_name("HAT", settings={"scale": "4"}, kernel="math", resumed=True) == "HAT scale=4 kernel=math resumed"


def test_smoke_reason_follows_the_budget():
    assert smoke_reason({"fast_dev_run": True}) == "fast_dev_run=True"
    assert smoke_reason({"max_steps": 5, "max_epochs": 10}) == "max_steps=5"
    assert smoke_reason({"max_steps": 20}) == "max_steps=20" and smoke_reason({"max_steps": 21}) == ""
    assert smoke_reason({"max_steps": -1, "max_epochs": 1, "limit_train_batches": 4}) == "limit_train_batches=4 x max_epochs=1"
    assert smoke_reason({"max_epochs": 10, "limit_train_batches": 4}) == ""  # 40 steps
    assert smoke_reason({"max_epochs": 1, "limit_train_batches": 0.5}) == ""  # a fraction of an unknown size
    assert smoke_reason({"limit_test_batches": 2.0}) == "limit_test_batches=2"
    assert smoke_reason({"limit_test_batches": 0.25}) == "limit_test_batches=0.25"
    assert smoke_reason({"limit_test_batches": 1.0, "max_steps": 480}) == ""
    assert smoke_reason({"max_steps": 5}, "test") == ""  # a test's own max_steps trains nothing


def test_budget_params_log_what_is_set():
    trainer = {"max_steps": 5, "max_epochs": 10, "limit_val_batches": 2.0, "limit_test_batches": 0.5,
               "fast_dev_run": False, "max_time": None, "accelerator": "cpu"}
    assert budget_params(trainer) == {"trainer.max_steps": 5, "trainer.max_epochs": 10,
                                      "trainer.limit_val_batches": 2, "trainer.limit_test_batches": 0.5}


class Net(nn.Module):
    def __init__(self, **attributes) -> None:
        super().__init__()
        for key, value in attributes.items():
            setattr(self, key, value)


def test_run_settings_read_the_data_then_the_network():
    task = BaseTask(Net(pred_len=192, scale=4))
    assert task.run_settings(None) == {"horizon": "192", "scale": "4"}
    ett_like = types.SimpleNamespace(pred_len=96, scale=True, split="auto")  # scale=True: standardization
    assert BaseTask(Net()).run_settings(ett_like) == {"horizon": "96", "split": "auto"}
    assert BaseTask(Net(split=(0.8, 0.1, 0.1))).run_settings(None) == {}  # a tuple is no setting name
