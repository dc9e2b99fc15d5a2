"""`attn` fails in one clear line: bad values, configs, files and checkpoints; `--debug` shows the traceback;
`attn --help` answers fast and lists every domain's configs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import core.lightning_cli  # noqa: F401 - Lightning and MLflow are imported before any capsys test, so that
import mlflow  # noqa: F401 - their log handlers bind the real stderr, not a closed capture
from core.cli import describe_error, domain_configs, main, short_parse_error, suite_help

ROOT = Path(__file__).resolve().parents[2]
TOY = str(Path(__file__).with_name("toy.yaml"))
DLINEAR = str(ROOT / "timeseries" / "configs" / "dlinear_etth1.yaml")
ATTN = Path(sys.executable).with_name("attn")


def fails(args: list[str], capsys) -> tuple[int, str]:
    """Run `attn` as the console does; its exit code and stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(args, friendly=True)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    at = next(i for i, line in enumerate(lines) if ": error: " in line)  # after the framework's progress lines
    assert "Traceback" not in err and len(lines) - at <= 2, err
    return exit_info.value.code, "\n".join(lines[at:]) + "\n"


@pytest.mark.parametrize(("args", "expected"), [
    (["--model.init_args.model.init_args.kernel=flashy"],
     "model.init_args.model.init_args.kernel: Expected one of 'auto', 'math', 'sdpa', 'chunked', 'triton', 'linear'. Got value: flashy"),
    (["--trainer.max_steps=five"], "trainer.max_steps: Expected int. Got value: five"),
    (["--model.init_args.model=tests.core.toy.Nope"],
     "model.init_args.model: class_path 'tests.core.toy.Nope': module 'tests.core.toy' has no attribute 'Nope'"),
    (["--trainer.max_stepz=3"], "unrecognized arguments: --trainer.max_stepz=3"),
], ids=["kernel", "type", "class_path", "key"])
def test_bad_values_name_the_key_and_what_was_expected(args, expected, capsys):
    code, err = fails(["fit", "--config", TOY, *args], capsys)
    assert code == 2 and f"fit: error: {expected}\n" in err


def test_a_missing_config_points_to_the_list(tmp_path, capsys):
    code, err = fails(["fit", "--config", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and f"config: File does not exist: '{tmp_path / 'nope.yaml'}'" in err and "attn --help" in err


def test_a_bad_data_file_is_named(tmp_path, capsys, mlflow_uri):
    bad = tmp_path / "mine.csv"
    bad.write_text("a,b\n1,2\n")
    code, err = fails(["fit", "--config", DLINEAR, f"--data.init_args.path={bad}"], capsys)
    assert code == 2 and f"{bad}: column 'date' missing; found ['a', 'b']" in err


def test_checkpoints_that_are_no_checkpoint_or_do_not_fit(store, tmp_path, capsys):
    junk = tmp_path / "junk.ckpt"
    junk.write_text("not a checkpoint")
    code, err = fails(["test", "--config", TOY, f"--ckpt_path={junk}"], capsys)
    assert code == 1 and f"--ckpt_path {junk}: not a readable Lightning checkpoint" in err
    main(["fit", "--config", TOY, "--trainer.max_steps=1"])
    (last,) = tmp_path.glob("checkpoints/*/*/checkpoints/last.ckpt")
    wider = ["test", "--config", TOY, f"--ckpt_path={last}", "--model.init_args.model.init_args.dim=32"]
    code, err = fails(wider, capsys)
    assert code == 1 and f"--ckpt_path {last}: the checkpoint does not fit the config (size mismatch for model.embed.weight" in err
    assert "use the config it was trained with" in err
    with pytest.raises(ValueError, match="does not fit the config"):  # --debug: the exception itself, with its traceback
        main([*wider, "--debug"], friendly=True)


def test_debug_environment_variable_raises(tmp_path, monkeypatch, mlflow_uri):
    junk = tmp_path / "junk.ckpt"
    torch.save({"no": "state"}, junk)
    monkeypatch.setenv("ATTN_DEBUG", "1")
    with pytest.raises(Exception):  # noqa: B017 - whichever error, it is raised, not turned into one line
        main(["test", "--config", TOY, f"--ckpt_path={junk}"], friendly=True)


def test_describe_error_and_short_parse_error():
    assert describe_error(ValueError("x.csv: column 'date' missing\nmore\nand more")) == "x.csv: column 'date' missing more"
    assert describe_error(KeyError("state_dict")) == "KeyError: 'state_dict'"
    assert short_parse_error('Parser key "seed_everything":\n  Expected a <class \'int\'>. Got value: x') == (
        "seed_everything: Expected int. Got value: x")


def test_help_lists_every_domains_configs_and_mlflow():
    text = suite_help()
    configs = domain_configs()
    assert {"timeseries", "vision", "recsys", "molecules"} <= set(configs)
    for domain, names in configs.items():
        assert f"  {domain} " in text and all(name in text for name in names)
    assert sorted(configs["timeseries"]) == sorted(p.stem for p in (ROOT / "timeseries" / "configs").glob("*.yaml"))
    assert "MLFLOW_TRACKING_URI" in text and "make ui" in text and "--trainer.max_steps=5" in text


@pytest.mark.skipif(not ATTN.exists(), reason="the attn console script is not installed next to this Python")
def test_console_help_is_fast_and_errors_have_no_traceback(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run([str(ATTN), "--help"], capture_output=True, text=True, env=env, timeout=60)
    seconds = time.perf_counter() - start
    assert done.returncode == 0 and "configs (attn fit --config" in done.stdout
    assert seconds < 3.0, f"attn --help took {seconds:.1f} s"  # it imports neither torch nor Lightning
    done = subprocess.run([str(ATTN), "fit", "--config", TOY, "--trainer.max_steps=five"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "attn fit: error: trainer.max_steps: Expected int. Got value: five", "  (`attn fit --help` lists every option)"]
