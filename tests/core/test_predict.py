"""`attn predict` from a checkpoint alone, the prediction writer, `load_from_checkpoint`, the logged pyfunc
model in a fresh process, and `attn register` + `mlflow models serve` over loopback (the toy task of
`tests/core/toy.py` implements the whole contract of `core.predict` and `core.serving`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

import core.lightning_cli  # noqa: F401 - Lightning and MLflow bind the real stderr before capsys tests
from core.cli import main
from tests.core.servers import TOY, free_port
from tests.core.toy import ToyTask

ROOT = Path(__file__).resolve().parents[2]
QUIET = ["--trainer.enable_progress_bar=false"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A toy fit (6 steps) with its model logged, in a scratch store: (folder, uri, last.ckpt, fit run)."""
    folder = tmp_path_factory.mktemp("predict")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(folder)
        main(["fit", "--config", TOY, "--log_model=true", "--test_after_fit=true", *QUIET])
    (ckpt,) = folder.glob("checkpoints/*/*/checkpoints/last.ckpt")
    run = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("toy/classify/toy").experiment_id])[0]
    return folder, uri, ckpt, run


@pytest.fixture
def in_store(fitted, monkeypatch):
    folder, uri, _, _ = fitted
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(folder)
    return fitted


def sequences(folder: Path, rows: list[str]) -> Path:
    path = folder / "mine.txt"
    path.write_text("\n".join(rows) + "\n")
    return path


ROWS = ["0 1 2 3 4 5 6 7 0 1 2 3", "3 3 3 3 3 3 3 3 3 3 3 3", "not a sequence", "7 6 5 4 3 2 1 0 1 2 3 4"]


def test_predict_from_a_checkpoint_alone_writes_the_models_numbers(in_store, capsys):
    folder, uri, ckpt, fit_run = in_store
    source = sequences(folder, ROWS)
    main(["predict", "--ckpt_path", str(ckpt), "--predict_path", str(source), "--output", str(folder / "out"), *QUIET])
    err = capsys.readouterr().err
    assert "mine.txt:3: skipped" in err and "wrote 1 file(s)" in err and "1 input(s) skipped" in err
    written = pd.read_csv(folder / "out" / "predictions.csv")
    assert written["tokens"].tolist() == [ROWS[0], ROWS[1], ROWS[3]]

    task = ToyTask.load_from_checkpoint(ckpt, map_location="cpu")  # no YAML: the checkpoint's hyper-parameters
    task.eval()
    x = torch.tensor([[int(t) for t in r.split()] for r in (ROWS[0], ROWS[1], ROWS[3])])
    with torch.no_grad():
        expected = torch.softmax(task(x), dim=-1)[:, 1]
    torch.testing.assert_close(torch.tensor(written["probability"].to_numpy(), dtype=torch.float32), expected)

    client = MlflowClient(uri)
    runs = client.search_runs([fit_run.info.experiment_id], "tags.subcommand = 'predict'")
    assert runs and "predict" in runs[0].info.run_name.split()
    assert runs[0].data.tags["checkpoint_run"] == fit_run.info.run_id
    assert [a.path for a in client.list_artifacts(runs[0].info.run_id, "predictions")] == ["predictions/predictions.csv"]


def test_test_runs_from_a_checkpoint_alone(in_store):
    _, uri, ckpt, fit_run = in_store
    main(["test", "--ckpt_path", str(ckpt), *QUIET])
    (run,) = MlflowClient(uri).search_runs([fit_run.info.experiment_id], "tags.subcommand = 'test'")
    assert "test/accuracy" in run.data.metrics
    assert run.data.tags["config"] == "toy"  # named after the fit's config, not the temporary file


@pytest.mark.parametrize(("args", "message"), [
    (["--predict_path", "missing.txt"], "--predict_path missing.txt: no such file or folder"),
    ([], "--predict_path is required"),
])
def test_bad_predict_input_is_one_line(in_store, capsys, args, message):
    _, _, ckpt, _ = in_store
    with pytest.raises(SystemExit):
        main(["predict", "--ckpt_path", str(ckpt), *args, *QUIET], friendly=True)
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[0] and len(err) <= 2


def test_a_checkpoint_without_config_names_the_fix(tmp_path, capsys):
    bare = tmp_path / "bare.ckpt"
    torch.save({"state_dict": {}}, bare)
    with pytest.raises(SystemExit):
        main(["predict", "--ckpt_path", str(bare), "--predict_path", str(bare)], friendly=True)
    assert "carries no config" in capsys.readouterr().err


def test_the_logged_model_serves_raw_input_in_a_fresh_process(in_store):
    folder, uri, _, fit_run = in_store
    run = MlflowClient(uri).get_run(fit_run.info.run_id)
    model_uri = run.data.tags["model_uri"]
    raw = pd.DataFrame({"tokens": [ROWS[0], ROWS[1]]})
    script = ("import sys, json, mlflow, pandas as pd; m = mlflow.pyfunc.load_model(sys.argv[1]); "
              "print(json.dumps(m.predict(pd.DataFrame(json.loads(sys.argv[2])))['probability'].tolist()))")
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script, model_uri, raw.to_json(orient="columns")],
                          capture_output=True, text=True, env=env, cwd=folder, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    source = sequences(folder, list(raw["tokens"]))
    main(["predict", "--ckpt_path", run.data.tags["checkpoint_dir"] + "/last.ckpt", "--predict_path", str(source),
          "--output", str(folder / "direct"), *QUIET])
    assert served == pd.read_csv(folder / "direct" / "predictions.csv")["probability"].tolist()


@pytest.mark.slow
def test_register_and_serve_over_loopback(in_store, capsys):
    folder, uri, _, _ = in_store
    main(["register", "toy/classify/toy", "--metric", "accuracy:max"])
    out = capsys.readouterr().out
    assert "toy-classify-toy version 1" in out and "test/accuracy" in out
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # `mlflow models serve` runs the venv's uvicorn by name
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(ROOT), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", "models:/toy-classify-toy/1",
         "--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)],
        env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        body = json.dumps({"dataframe_split": {"columns": ["tokens"], "data": [[ROWS[0]], [ROWS[3]]]}}).encode()
        deadline, answer = time.monotonic() + 180, None
        while answer is None:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                                 headers={"Content-Type": "application/json"})
                answer = json.loads(urllib.request.urlopen(request, timeout=60).read())
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"mlflow models serve did not answer: {server.stderr.read()[-2000:]}") from None
                time.sleep(1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    probabilities = [row["probability"] for row in answer["predictions"]]
    source = sequences(folder, [ROWS[0], ROWS[3]])
    main(["predict", "--ckpt_path", str(next(folder.glob("checkpoints/*/*/checkpoints/last.ckpt"))),
          "--predict_path", str(source), "--output", str(folder / "served"), *QUIET])
    assert probabilities == pytest.approx(pd.read_csv(folder / "served" / "predictions.csv")["probability"].tolist())
