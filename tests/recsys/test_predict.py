"""Using a trained CTR model on new rows: `attn predict` from the checkpoint alone, `CTRTask.load_from_checkpoint`,
the logged pyfunc model in a fresh process, the training-format readers for rows to score, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

import core.lightning_cli  # noqa: F401 - Lightning and MLflow bind the real stderr before capsys tests
from core.cli import main
from recsys.data import CTRDataModule, load_preprocessor, make_click_log, read_click_log
from recsys.tasks import LAYOUT_KEY, CTRTask

from .conftest import nfm_encode

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "recsys" / "configs" / "hiformer_fast_synthetic.yaml")
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
NUMERIC = ["num0", "num1"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A 2-step Hiformer fit on 600 generated rows with its model logged: (folder, store uri, last.ckpt, fit run)."""
    folder = tmp_path_factory.mktemp("ctr_predict")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(folder)
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            main(["fit", "--config", CONFIG, "--data.init_args.synthetic_rows=600", "--data.init_args.batch_size=64",
                  "--trainer.max_steps=2", "--log_model=true", *QUIET])
        finally:
            torch.set_num_threads(previous)
    (ckpt,) = folder.glob("checkpoints/*/*/checkpoints/last.ckpt")
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("recsys/ctr/synthetic").experiment_id], "tags.subcommand = 'fit'")
    return folder, uri, ckpt, run


@pytest.fixture
def in_store(fitted, monkeypatch, one_torch_thread):
    folder, uri, _, _ = fitted
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(folder)
    return fitted


def new_rows() -> pd.DataFrame:
    """Ten generated rows of the training columns with a junk label (ignored), an unseen value and token,
    and one row whose numeric cell is no number (row 2: skipped)."""
    frame = make_click_log(10, seed=99)
    frame["label"] = "?"
    frame.loc[1, "cat3"] = "never_seen"
    frame.loc[4, "tags"] = "t1|unseen_tag"
    frame.loc[2, "num0"] = "abc"
    return frame


def direct_probabilities(ckpt: Path, frame: pd.DataFrame) -> torch.Tensor:
    """The loaded model on `frame`, mapped with the checkpoint's preprocessing: the reference for `attn predict`."""
    task = CTRTask.load_from_checkpoint(ckpt, map_location="cpu").eval()
    batch = load_preprocessor(ckpt).transform(frame.drop(columns=["label"]))
    with torch.no_grad():
        return torch.sigmoid(task.model(batch))


def test_predict_from_the_checkpoint_alone_gives_the_models_probabilities(in_store, capsys):
    folder, uri, ckpt, fit_run = in_store
    rows = new_rows()
    rows.to_csv(folder / "new_rows.csv", index=False)
    main(["predict", "--ckpt_path", str(ckpt), "--predict_path", "new_rows.csv", "--output", "out", *QUIET])
    err = capsys.readouterr().err
    assert "new_rows.csv: 1 row(s) skipped as unparseable (rows 2;" in err and "9 scored" in err
    assert "2 value(s) not in the training vocabulary mapped to the OOV bucket (cat3: 1, tags: 1)" in err
    assert "1 input(s) skipped" in err
    written = pd.read_csv(folder / "out" / "predictions.csv")
    assert list(written.columns) == ["row", "probability"]
    assert written["row"].tolist() == [0, 1, 3, 4, 5, 6, 7, 8, 9]
    expected = direct_probabilities(ckpt, rows.drop(index=2))
    torch.testing.assert_close(torch.tensor(written["probability"].to_numpy(), dtype=torch.float32), expected,
                               rtol=0, atol=1e-6)
    assert load_preprocessor(ckpt).transform(rows.drop(columns=["label"]))["categorical"][1, 3] == 0  # the OOV id
    client = MlflowClient(uri)
    (predict_run,) = client.search_runs([fit_run.info.experiment_id], "tags.subcommand = 'predict'")
    assert predict_run.data.tags["checkpoint_run"] == fit_run.info.run_id


def test_test_and_load_from_checkpoint_without_the_yaml(in_store, tmp_path):
    _, uri, ckpt, fit_run = in_store
    main(["test", "--ckpt_path", str(ckpt), *QUIET])
    (run,) = MlflowClient(uri).search_runs([fit_run.info.experiment_id], "tags.subcommand = 'test'")
    assert 0 <= run.data.metrics["test/roc_auc"] <= 1
    state = torch.load(ckpt, map_location="cpu", weights_only=True)  # plain data: no pickled classes
    assert state[LAYOUT_KEY]["names"][:2] == ["cat0", "cat1"]
    task = CTRTask.load_from_checkpoint(ckpt, map_location="cpu")
    assert task.model.built and task.num_parameters() == run.data.metrics["num_parameters"] > 1000
    # a checkpoint without the layout key (written before it) is rebuilt from its preprocessing state
    del state[LAYOUT_KEY]
    torch.save(state, tmp_path / "older.ckpt")
    older = CTRTask.load_from_checkpoint(tmp_path / "older.ckpt", map_location="cpu")
    for name, value in task.state_dict().items():
        torch.testing.assert_close(older.state_dict()[name], value, rtol=0, atol=0)


def test_the_logged_model_serves_raw_rows_in_a_fresh_process(in_store):
    folder, uri, ckpt, fit_run = in_store
    model_uri = MlflowClient(uri).get_run(fit_run.info.run_id).data.tags["model_uri"]
    raw = make_click_log(5, seed=7).drop(columns=["label"])
    raw.to_csv(folder / "raw.csv", index=False)
    # the served input: the original columns, numbers as floats, missing text as "" (the logged signature)
    script = (
        "import sys, json, mlflow, pandas as pd; raw = pd.read_csv(sys.argv[2], dtype=str, keep_default_na=False); "
        "raw[['num0', 'num1']] = raw[['num0', 'num1']].apply(pd.to_numeric, errors='coerce'); "
        "out = mlflow.pyfunc.load_model(sys.argv[1]).predict(raw); "
        "print(json.dumps({'columns': list(out.columns), 'probability': out['probability'].tolist()}))"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script, model_uri, str(folder / "raw.csv")],
                          capture_output=True, text=True, env=env, cwd=folder, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    main(["predict", "--ckpt_path", str(ckpt), "--predict_path", "raw.csv", "--output", "direct", *QUIET])
    written = pd.read_csv(folder / "direct" / "predictions.csv")
    assert served["columns"] == ["row", "probability"]
    assert served["probability"] == pytest.approx(written["probability"].tolist(), rel=1e-6, abs=1e-7)


@pytest.mark.parametrize(("content", "message"), [
    ("drop cat5", "rows.csv: column(s) ['cat5'] the model was trained on are missing"),
    ("garble every num0", "rows.csv: no row to score: every row has a numeric column"),
    (b"\xff\xfe\x00binary\x00", "rows.csv: not a readable comma-separated file (UnicodeDecodeError"),
    (b"", "rows.csv: not a readable comma-separated file (EmptyDataError"),
])
def test_bad_rows_give_one_line_naming_the_file(in_store, capsys, content, message):
    folder, _, ckpt, _ = in_store
    path = folder / "rows.csv"
    rows = make_click_log(4, seed=3).drop(columns=["label"])
    if content == "drop cat5":
        rows.drop(columns=["cat5"]).to_csv(path, index=False)
    elif content == "garble every num0":
        rows.assign(num0="n/a?").to_csv(path, index=False)
    else:
        path.write_bytes(content)
    with pytest.raises(SystemExit):
        main(["predict", "--ckpt_path", str(ckpt), "--predict_path", str(path), "--output", "bad", *QUIET], friendly=True)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("attn predict: error")]
    assert len(err) == 1 and message in err[0], err


# ---- rows to score in the training formats, without the trainer (fast) -----------------------------------
@pytest.fixture
def criteo_module(shared_data):
    """A CTRDataModule fitted on the shared Criteo sample (its CSV with header)."""
    dm = CTRDataModule(format="criteo", path=str(shared_data / "criteo_sample.txt"))
    dm.setup()
    return dm


def scored(dm: CTRDataModule, path: Path) -> CTRDataModule:
    """A DataModule scoring `path` with `dm`'s fitted preprocessing, as `attn predict` does (no training data read)."""
    out = CTRDataModule(format=dm.format, path="never-read", predict_path=str(path))
    out.preprocessor = dm.preprocessor
    out.setup("predict")
    assert not out.frames  # setup("predict") read no training split
    return out


def test_criteo_tsv_rows_without_label_or_with_it_score_alike(criteo_module, criteo, tmp_path):
    rows = criteo.iloc[:6]
    with_label, without = tmp_path / "with.txt", tmp_path / "without.txt"
    rows.to_csv(with_label, sep="\t", header=False, index=False)
    rows.drop(columns=["label"]).to_csv(without, sep="\t", header=False, index=False)
    expected = criteo_module.preprocessor.transform(rows.drop(columns=["label"]))
    for path in (with_label, without):
        dm = scored(criteo_module, path)
        assert dm.predict_rows == list(range(6)) and dm.predict_skipped == 0
        for name in ("categorical", "numeric"):
            torch.testing.assert_close(dm.datasets["predict"].tensors[name], expected[name])
        assert "label" not in dm.datasets["predict"].tensors
    # a CSV header without the label column (what the served model writes) is read by name
    rows.drop(columns=["label"])[[*rows.columns[14:], *rows.columns[1:14]]].to_csv(tmp_path / "h.csv", index=False)
    torch.testing.assert_close(scored(criteo_module, tmp_path / "h.csv").datasets["predict"].tensors["numeric"], expected["numeric"])


def test_unsplittable_lines_are_skipped_counted_and_keep_the_other_rows_places(criteo_module, criteo, tmp_path, capsys):
    lines = criteo.iloc[:5].drop(columns=["label"]).fillna("").to_csv(index=False).splitlines()
    lines.insert(3, lines[3] + ",one,field,too,many")  # data row 2: pandas cannot split it
    (tmp_path / "rows.csv").write_text("\n".join(lines) + "\n")
    dm = scored(criteo_module, tmp_path / "rows.csv")
    assert dm.predict_rows == [0, 1, 3, 4, 5] and dm.predict_skipped == 1
    assert "rows.csv: 1 row(s) skipped as unparseable (rows 2;" in capsys.readouterr().err
    expected = criteo_module.preprocessor.transform(criteo.iloc[[0, 1, 2, 3, 4]].drop(columns=["label"]))
    torch.testing.assert_close(dm.datasets["predict"].tensors["categorical"], expected["categorical"])


def test_libfm_rows_without_labels_are_read_with_the_training_layout(criteo, tmp_path):
    indices, lines = nfm_encode(criteo)
    (tmp_path / "train.libfm").write_text("\n".join(lines[:150]) + "\n")
    (tmp_path / "test.libfm").write_text("\n".join(lines[150:]) + "\n")
    dm = CTRDataModule(format="libfm", path=str(tmp_path))
    dm.setup()
    unlabeled = [line.split(" ", 1)[1] for line in lines[150:156]]
    unlabeled.insert(2, "3:1 garbled")  # line 2: unparseable
    (tmp_path / "new.libfm").write_text("\n".join(unlabeled) + "\n")
    out = scored(dm, tmp_path / "new.libfm")
    assert out.predict_rows == [0, 1, 3, 4, 5, 6] and out.predict_skipped == 1
    torch.testing.assert_close(out.datasets["predict"].tensors["categorical"], dm.datasets["test"].tensors["categorical"][:6])


def test_rows_to_score_ignore_a_label_and_number_rows_by_position(tmp_path):
    (tmp_path / "rows.csv").write_text("a,label\nx,\ny,yes\n\nz,1\n")
    clicks = read_click_log(tmp_path / "rows.csv", "csv", require_label=False)
    assert clicks.frame["a"].tolist() == ["x", "y", "z"] and clicks.rows.tolist() == [0, 1, 2]
    training = read_click_log(tmp_path / "rows.csv", "csv", max_bad_fraction=1.0)  # training rows need their label
    assert training.frame["a"].tolist() == ["z"] and training.bad_lines == 2 and training.rows is None


def test_a_file_with_the_synthetic_format_is_refused_and_the_name_follows_the_file(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", CONFIG, f"--data.init_args.path={tmp_path / 'mine.csv'}", *QUIET], friendly=True)
    err = capsys.readouterr().err
    assert "format is 'synthetic'" in err and "--data.init_args.format=csv" in err
    make_click_log(40, seed=1).to_csv(tmp_path / "mine.csv", index=False)
    dm = CTRDataModule(format="csv", path=str(tmp_path / "mine.csv"), categorical=["cat0", "cat1"], numeric=NUMERIC)
    dm.setup()
    assert dm.dataset_name == "mine"
    assert dm.split_protocol == "seeded: stratified 0.8/0.1/0.1 split of mine.csv, seed 0"
