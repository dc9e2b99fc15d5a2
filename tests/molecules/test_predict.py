"""Using a trained molecule model on new molecules: `attn predict` from the checkpoint alone (every row, original
units, invalid SMILES reported), `load_from_checkpoint`, the logged pyfunc model in a fresh process, bad input,
the dataset name and split rule of a user's file, and R-MAT's kernel tag."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

import core.lightning_cli  # noqa: F401 - Lightning and MLflow bind the real stderr before capsys tests
from core.cli import main
from molecules.data import (
    FeaturizerSettings,
    MoleculeDataModule,
    collate_molecules,
    featurize,
    random_split,
)
from molecules.models.rmat import RMAT
from molecules.tasks import MoleculePropertyTask

from .conftest import TINY_LOGS, TINY_SMILES

ROOT = Path(__file__).resolve().parents[2]
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
MODEL = "--model.init_args.model.init_args"
NEW = ["CCO", "not_a_smiles", "", "CC(C)O", "c1ccc(O)cc1"]  # an invalid and an empty SMILES


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A 2-step tiny R-MAT fit on 8 molecules with its model logged: (folder, store uri, last.ckpt, fit run)."""
    folder = tmp_path_factory.mktemp("mol_predict")
    (folder / "tinymols.csv").write_text("smiles,logS\n" + "".join(f"{s},{y}\n" for s, y in zip(TINY_SMILES, TINY_LOGS, strict=True)))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(folder)
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            main(["fit", "--config", str(ROOT / "molecules" / "configs" / "rmat_esol.yaml"),
                  "--data.init_args.path=tinymols.csv", "--data.init_args.target_columns=[logS]",
                  f"--data.init_args.cache_dir={folder / 'cache'}", "--data.init_args.featurize_workers=1",
                  "--data.init_args.batch_size=4", "--data.init_args.split_sizes=[0.5,0.25,0.25]",
                  f"{MODEL}.dim=16", f"{MODEL}.depth=1", f"{MODEL}.heads=2", f"{MODEL}.ffn_dim=16",
                  "--trainer.max_steps=2", "--log_model=true", *QUIET])
        finally:
            torch.set_num_threads(previous)
    (ckpt,) = folder.glob("checkpoints/*/*/checkpoints/last.ckpt")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("molecules/property/tinymols")  # named after the file, not ESOL
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id], "tags.subcommand = 'fit'")
    return folder, uri, ckpt, run


@pytest.fixture
def in_store(fitted, monkeypatch):
    folder, uri, _, _ = fitted
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(folder)
    return fitted


def direct(ckpt: Path, smiles: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions in logS units, the network's standardized outputs) of the loaded task on `smiles`."""
    task = MoleculePropertyTask.load_from_checkpoint(ckpt, map_location="cpu").eval()
    items = [featurize(s, FeaturizerSettings()) for s in smiles]
    batch = collate_molecules([(item, item.pair_features(), np.full(1, np.nan, dtype=np.float32)) for item in items])
    with torch.no_grad():
        raw = task.model(batch["atoms"], batch["pairs"], batch["distances"], batch["adjacency"], batch["mask"])
        return task.predict_batch(batch), raw


def test_predict_writes_every_molecule_in_the_targets_units(in_store, capsys):
    folder, uri, ckpt, fit_run = in_store
    pd.DataFrame({"name": list("abcde"), "smiles": NEW}).to_csv(folder / "mine.csv", index=False)
    main(["predict", "--ckpt_path", str(ckpt), "--predict_path", "mine.csv", "--output", "out", *QUIET])
    err = capsys.readouterr().err
    assert "mine.csv: 2 invalid SMILES not predicted (rows from 0: 1 'not_a_smiles', 2 '')" in err
    assert "2 input(s) skipped" in err
    written = pd.read_csv(folder / "out" / "predictions.csv", keep_default_na=False)
    assert list(written.columns) == ["index", "smiles", "valid", "error", "logS"]
    assert written["index"].tolist() == [0, 1, 2, 3, 4] and written["smiles"].tolist() == NEW  # every row, no split
    assert written["valid"].tolist() == [True, False, False, True, True]
    assert written["error"].tolist()[1:3] == ["invalid SMILES: RDKit cannot parse it", "empty SMILES"]
    assert written["logS"].tolist()[1:3] == ["", ""]
    predicted, raw = direct(ckpt, ["CCO", "CC(C)O", "c1ccc(O)cc1"])
    got = torch.tensor([float(written["logS"][i]) for i in (0, 3, 4)])
    torch.testing.assert_close(got, predicted[:, 0], rtol=0, atol=1e-5)
    # original units: the standardization with the training split's statistics (8 molecules, 0.5 of them) undone
    train = np.asarray(TINY_LOGS, dtype=np.float32)[random_split(8, (0.5, 0.25, 0.25), 0)[0]]
    torch.testing.assert_close(got, raw[:, 0] * float(np.std(train)) + float(np.mean(train)), rtol=0, atol=1e-4)
    (run,) = MlflowClient(uri).search_runs([fit_run.info.experiment_id], "tags.subcommand = 'predict'")
    assert run.data.tags["checkpoint_run"] == fit_run.info.run_id


def test_a_text_file_of_smiles_is_one_molecule_per_line(in_store, capsys):
    folder, _, ckpt, _ = in_store
    (folder / "mine.smi").write_text("CCO ethanol\n\nCC(C)O\nxyz\n")
    main(["predict", "--ckpt_path", str(ckpt), "--predict_path", "mine.smi", "--output", "smi", *QUIET])
    assert "mine.smi: 1 invalid SMILES not predicted (lines from 0: 3 'xyz')" in capsys.readouterr().err
    written = pd.read_csv(folder / "smi" / "predictions.csv")
    assert written["index"].tolist() == [0, 2, 3] and written["smiles"].tolist() == ["CCO", "CC(C)O", "xyz"]
    predicted, _ = direct(ckpt, ["CCO", "CC(C)O"])
    torch.testing.assert_close(torch.tensor(written["logS"][:2].to_numpy(), dtype=torch.float32), predicted[:, 0],
                               rtol=0, atol=1e-5)


def test_checkpoint_alone_loads_tests_and_names_the_run_after_the_file(in_store):
    _, uri, ckpt, fit_run = in_store
    state = torch.load(ckpt, map_location="cpu", weights_only=True)  # plain data: no pickled classes
    assert state["MoleculeDataModule"]["featurizer"]["conformer_seed"] == 42
    main(["test", "--ckpt_path", str(ckpt), *QUIET])
    (run,) = MlflowClient(uri).search_runs([fit_run.info.experiment_id], "tags.subcommand = 'test'")
    assert run.data.metrics["test/rmse"] >= run.data.metrics["test/mae"] > 0
    params, tags = fit_run.data.params, fit_run.data.tags
    assert tags["dataset"] == "tinymols" and params["split"] == "random"
    assert params["split_protocol"] == "seeded: random 0.5/0.25/0.25 split of tinymols.csv (8 usable molecules), seed 0"
    assert tags["kernel"] == "math+auto"  # relative layers: explicit math softmax; pooling: auto


def test_the_logged_model_serves_smiles_in_a_fresh_process(in_store):
    folder, uri, ckpt, fit_run = in_store
    model_uri = MlflowClient(uri).get_run(fit_run.info.run_id).data.tags["model_uri"]
    script = ("import sys, json, mlflow, pandas as pd; m = mlflow.pyfunc.load_model(sys.argv[1]); "
              "out = m.predict(pd.DataFrame({'smiles': json.loads(sys.argv[2])})); "
              "print(json.dumps({'valid': out['valid'].tolist(), 'logS': out['logS'].tolist()}))")
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script, model_uri, json.dumps(NEW[:2] + NEW[3:])],
                          capture_output=True, text=True, env=env, cwd=folder, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    served = json.loads(done.stdout.strip().splitlines()[-1].replace("NaN", "null"))
    (folder / "served.csv").write_text("smiles\n" + "\n".join(NEW[:2] + NEW[3:]) + "\n")
    main(["predict", "--ckpt_path", str(ckpt), "--predict_path", "served.csv", "--output", "direct", *QUIET])
    written = pd.read_csv(folder / "direct" / "predictions.csv")
    assert served["valid"] == written["valid"].tolist() == [True, False, True, True]
    assert served["logS"][1] is None
    assert [served["logS"][i] for i in (0, 2, 3)] == pytest.approx(written["logS"][[0, 2, 3]].tolist(), rel=1e-6)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("mols.csv", "name,structure\na,CCO\n", "mols.csv: no SMILES column 'smiles'; found ['name', 'structure']"),
    ("mols.csv", b"\xff\xfe\x00\x01binary", "mols.csv: not a readable CSV (UnicodeDecodeError"),
    ("mols.txt", b"\xff\xfe\x00\x01binary", "mols.txt: not a text file of SMILES (not UTF-8 text)"),
    ("mols.txt", "xyz\nnot_a_smiles\n", "mols.txt: none of its 2 SMILES is valid (first: 0 'xyz')"),
])
def test_bad_input_is_one_line_naming_the_file(in_store, capsys, name, content, message):
    folder, _, ckpt, _ = in_store
    path = folder / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    with pytest.raises(SystemExit):
        main(["predict", "--ckpt_path", str(ckpt), "--predict_path", str(path), "--output", "bad", *QUIET], friendly=True)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("attn predict: error")]
    assert len(err) == 1 and message in err[0], err


# ---- without the trainer (fast) --------------------------------------------------------------------------
def test_classification_predictions_are_probabilities(tmp_path, cache_dir):
    (tmp_path / "mols.smi").write_text("CCO\nc1ccccc1\n")
    data = MoleculeDataModule(target_columns=["p_np"], task_type="classification", cache_dir=str(cache_dir),
                              featurize_workers=1, predict_path=str(tmp_path / "mols.smi"))
    data.setup("predict")
    assert data.train_set is None  # no training data read to predict
    torch.manual_seed(0)
    task = MoleculePropertyTask(RMAT(outputs=1, dim=16, depth=1, heads=2, ffn_dim=16), task_type="classification").eval()
    (batch,) = list(data.predict_dataloader())
    with torch.no_grad():
        probabilities = task.predict_step(batch, 0)
        logits = task.model(batch["atoms"], batch["pairs"], batch["distances"], batch["adjacency"], batch["mask"])
    (path,) = task.write_predictions([probabilities], data, tmp_path)
    written = pd.read_csv(path)
    assert list(written.columns) == ["index", "smiles", "valid", "error", "p_np_probability"]
    torch.testing.assert_close(torch.tensor(written["p_np_probability"].to_numpy(), dtype=torch.float32),
                               torch.sigmoid(logits[:, 0]), rtol=0, atol=1e-6)


def test_predict_featurizes_with_the_checkpoints_settings(tmp_path, cache_dir):
    (tmp_path / "mols.smi").write_text("CCCCCCCCO\n")
    data = MoleculeDataModule(conformer_seed=42, cache_dir=str(cache_dir), featurize_workers=1,
                              predict_path=str(tmp_path / "mols.smi"))
    trained = MoleculeDataModule(conformer_seed=7).state_dict()
    data.load_state_dict(trained)
    (item,) = data.read_predict_molecules().items
    np.testing.assert_array_equal(item.distances, featurize("CCCCCCCCO", FeaturizerSettings(conformer_seed=7)).distances)
    assert not np.array_equal(item.distances, featurize("CCCCCCCCO", FeaturizerSettings(conformer_seed=42)).distances)


def test_dataset_name_follows_the_file_unless_given():
    assert MoleculeDataModule().dataset_name == "ESOL"
    assert MoleculeDataModule(path="data/mine.csv").dataset_name == "mine"
    assert MoleculeDataModule(path="data/mine.csv", dataset_name="ESOL").dataset_name == "ESOL"


@pytest.mark.parametrize(("relative", "kernel", "tag"), [
    (True, "auto", "math+auto"), (True, "math", "math"), (True, "sdpa", "math+sdpa"), (False, "sdpa", "sdpa"),
])
def test_rmat_kernel_attribute_names_the_kernels_that_run(relative, kernel, tag):
    model = RMAT(dim=16, depth=1, heads=2, ffn_dim=16, relative=relative, kernel=kernel)
    assert model.kernel == tag and model.pool.kernel == kernel
