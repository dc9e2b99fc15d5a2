"""`attn predict` on your own hyperspectral cubes: detections equal to the checkpoint's model run by hand on the
same cube, prepared by hand; CEM's signatures travel in its checkpoint; the served model answers as `attn predict`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import spectral.io.envi as envi
import torch
from scipy import ndimage

import core.lightning_cli  # noqa: F401 - Lightning and MLflow are imported before any capsys test, so that
import mlflow  # noqa: F401 - their log handlers bind the real stderr, not a closed capture
from core.cli import main
from vision.data.hsi_simulation import SHARED_SCENES
from vision.tasks.hsi import HSIDetectionTask

CONFIGS = Path(__file__).resolve().parents[2] / "vision" / "configs"
FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.num_sanity_val_steps=0"]
DATA = ["--data.init_args.tile=16", "--data.init_args.val_per_tile=1", "--data.init_args.test_per_tile=1",
        "--data.init_args.batch_size=2"]
TINY = [f"--model.init_args.model.init_args.{k}={v}" for k, v in (
    ("embed_dim", 16), ("num_encoder_layers", 1), ("num_decoder_layers", 1), ("num_heads", 2), ("num_queries", 20))]
CLASSES = ["sandiego_plane", "hydice_vehicle", "sandiego_plane_tilted", "hydice_vehicle_tilted"]
pytestmark = pytest.mark.skipif(not (SHARED_SCENES / "sandiego.mat").is_file(), reason=f"shared scenes not in {SHARED_SCENES}")


def raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    content = scipy.io.loadmat(SHARED_SCENES / f"{name}.mat")
    return content["data"].astype(np.float32), content["map"].astype(bool)


def centres(total: int, low: float, high: float, removed: list[tuple[int, int]]) -> np.ndarray:
    """Evenly spaced band centres less the removed 1-based ranges (the shared scenes' documented bands)."""
    drop = [i for first, last in removed for i in range(first - 1, last)]
    return np.delete(np.linspace(low, high, total), drop)


WAVELENGTHS = {"sandiego": centres(224, 370, 2510, [(1, 6), (33, 35), (97, 97), (107, 113), (153, 166), (221, 224)]),
               "hydice": centres(210, 400, 2500, [(1, 4), (76, 76), (87, 87), (101, 111), (136, 153), (198, 210)])}


def prepared(cube: np.ndarray, wavelengths: np.ndarray | None = None, bands: int = 30) -> np.ndarray:
    """The documented preparation, by hand: with band centres, the mean of the bands in each of `bands` equal bins
    over 430-2370 nm (an empty bin: each pixel's spectrum interpolated at its centre); without, means of adjacent
    band groups (edges round(k B / bands)); then one affine map per cube from its 0.1 / 99.9 percentiles."""
    flat = cube.reshape(-1, cube.shape[-1]).astype(np.float64)
    if wavelengths is None:
        edges = np.round(np.linspace(0, cube.shape[-1], bands + 1)).astype(int)
        columns = [flat[:, a:b].mean(-1) for a, b in zip(edges, edges[1:], strict=False)]
    else:
        edges = np.linspace(430, 2370, bands + 1)
        columns = []
        for a, b in zip(edges, edges[1:], strict=False):
            inside = (wavelengths >= a) & (wavelengths < b)
            columns.append(flat[:, inside].mean(-1) if inside.any()
                           else np.array([np.interp((a + b) / 2, wavelengths, row) for row in flat]))
    means = np.stack(columns, -1).reshape(*cube.shape[:-1], bands).astype(np.float32)
    lo, hi = np.percentile(means, [0.1, 99.9])
    return ((means - lo) / (hi - lo)).astype(np.float32)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path | str]]:
    """A tiny SpecDETR (2 steps, model logged to MLflow) and CEM, fitted once in a scratch store."""
    root = tmp_path_factory.mktemp("hsi_predict")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(root)
        main(["fit", "--config", str(CONFIGS / "specdetr_small_hsi_sim.yaml"), "--trainer.max_steps=2",
              "--trainer.default_root_dir=specdetr", "--log_model=true", *DATA, *TINY, *FAST])
        main(["fit", "--config", str(CONFIGS / "cem_hsi_sim.yaml"), "--trainer.default_root_dir=cem", *DATA, *FAST])
        yield {"root": root, "uri": uri, "specdetr": next(root.glob("specdetr/**/last.ckpt")),
               "cem": next(root.glob("cem/**/last.ckpt"))}
    torch.set_num_threads(threads)


def predict(ckpt: Path, path: Path, output: Path, *extra: str) -> pd.DataFrame:
    main(["predict", "--ckpt_path", str(ckpt), "--predict_path", str(path), "--output", str(output), *extra, *FAST[:2]])
    return pd.read_csv(output / "detections.csv")


def test_predict_writes_the_tiled_detections_of_the_model(fitted, capsys):
    root = fitted["root"]
    cubes = root / "mine"
    cubes.mkdir()
    sandiego, _ = raw("sandiego")
    crop = sandiego[10:30, 5:42]  # 20 x 37: tiles of 16 at rows 0, 4 and columns 0, 16, 21 (overlapping)
    np.save(cubes / "crop.npy", crop)
    scipy.io.savemat(cubes / "other.mat", {"cube": sandiego[40:80, 40:80, :120]})  # no 'data' key: its one 3-D array
    envi.save_image(str(cubes / "envi.hdr"), sandiego[60:76, 60:84], dtype=np.float32, ext=".raw")
    (cubes / "broken.mat").write_bytes(b"not a mat file")
    table = predict(fitted["specdetr"], cubes, root / "out")

    err = capsys.readouterr().err
    assert "broken.mat: unreadable .mat file" in err and "1 input(s) skipped" in err
    assert set(table["cube"]) == {"crop.npy", "envi.hdr", "other.mat"} and list(table.columns) == [
        "cube", "x", "y", "score", "label", "class", "x0", "y0", "x1", "y1"]
    for stem in ("crop", "envi", "other"):
        assert (root / "out" / f"{stem}_detections.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.load(root / "out" / "other_scores.npy").shape == (40, 40)
    assert np.load(root / "out" / "envi_scores.npy").shape == (16, 24)

    # the reference: the checkpoint's model on each tile of the hand-prepared cube, boxes moved to the cube,
    # each kept by the tile owning its centre (overlaps split in the middle: rows 10, columns 16 and 26.5)
    task = HSIDetectionTask.load_from_checkpoint(fitted["specdetr"], map_location="cpu").eval()
    # crop.npy carries no wavelengths; with San Diego's 189 bands it is read as San Diego's (the training scene)
    x = torch.from_numpy(prepared(crop, WAVELENGTHS["sandiego"]).transpose(2, 0, 1).copy())[None]
    owned_rows, owned_cols = {0: (-np.inf, 10), 4: (10, np.inf)}, {0: (-np.inf, 16), 16: (16, 26.5), 21: (26.5, np.inf)}
    boxes, scores, labels = [], [], []
    score_map = np.full((20, 37), -np.inf, np.float32)
    with torch.no_grad():
        for r, (top, bottom) in owned_rows.items():
            for c, (left, right) in owned_cols.items():
                tile = x[:, :, r:r + 16, c:c + 16]
                out = task.model(tile)
                score_map[r:r + 16, c:c + 16] = np.maximum(score_map[r:r + 16, c:c + 16], task.model.pixel_scores(out)[0].numpy())
                det = task.model.detect(out, tile)[0]  # the tile: the config's flip ensemble needs it
                b = det.boxes.numpy() + [c, r, c, r]
                cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
                keep = (cy >= top) & (cy < bottom) & (cx >= left) & (cx < right)
                boxes.append(b[keep])
                scores.append(det.scores.numpy()[keep])
                labels.append(det.labels.numpy()[keep])
    boxes, scores, labels = np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels)
    order = np.argsort(-scores, kind="stable")
    mine = table[table["cube"] == "crop.npy"]
    assert len(mine) == len(scores) > 0
    np.testing.assert_allclose(mine[["x0", "y0", "x1", "y1"]].to_numpy(), boxes[order], atol=1e-5)
    np.testing.assert_allclose(mine["score"].to_numpy(), scores[order], rtol=1e-5)
    assert mine["label"].tolist() == labels[order].tolist()
    assert mine["class"].tolist() == [CLASSES[k] for k in labels[order]]
    np.testing.assert_allclose(mine["x"], (boxes[order, 0] + boxes[order, 2]) / 2 - 0.5, atol=1e-5)
    np.testing.assert_allclose(np.load(root / "out" / "crop_scores.npy"), score_map, rtol=1e-5)

    threshold = float(np.median(scores))
    kept = predict(fitted["specdetr"], cubes / "crop.npy", root / "out_threshold",
                   f"--data.init_args.predict_score_threshold={threshold}")
    assert len(kept) == int((scores >= threshold).sum()) and kept["score"].min() >= threshold


def test_cem_predicts_from_its_checkpoint_alone(fitted, monkeypatch):
    """Prediction reads no training scene: the signatures come from CEM's checkpoint, the classes from the data state."""
    monkeypatch.setattr("vision.data.hsi_simulation.SHARED_SCENES", fitted["root"] / "nowhere")
    hydice, hydice_map = raw("hydice")
    crop = hydice[10:40, 20:60]
    path = fitted["root"] / "hydice_crop.mat"  # a user's cube with its band centres, in micrometres
    scipy.io.savemat(path, {"data": crop, "wavelength": WAVELENGTHS["hydice"] / 1000})
    table = predict(fitted["cem"], path, fitted["root"] / "out_cem")

    # the training library by hand: mean spectra of the labelled pixels on the wavelength grid, and the two ramped copies
    sandiego, sandiego_map = raw("sandiego")
    plane = prepared(sandiego, WAVELENGTHS["sandiego"])[sandiego_map].mean(0)
    vehicle = prepared(hydice, WAVELENGTHS["hydice"])[hydice_map].mean(0)
    ramp = np.linspace(0.7, 1.3, 30)
    signatures = np.stack([plane, vehicle, plane * ramp, vehicle * ramp[::-1]])
    state = torch.load(fitted["cem"], map_location="cpu", weights_only=True)
    np.testing.assert_allclose(state["state_dict"]["model.signatures"].numpy(), signatures, rtol=1e-5)

    # CEM by hand on the whole cube: w = R^-1 d / (d^T R^-1 d), R the correlation matrix with its ridge
    pixels = prepared(crop, WAVELENGTHS["hydice"]).reshape(-1, 30).astype(np.float64)
    corr = pixels.T @ pixels / len(pixels)
    corr += 1e-6 * np.trace(corr) / 30 * np.eye(30)
    r_inv_d = np.linalg.solve(corr, signatures.T)
    maps = (pixels @ (r_inv_d / (signatures.T * r_inv_d).sum(0))).T.reshape(4, 30, 40)
    np.testing.assert_allclose(np.load(fitted["root"] / "out_cem" / "hydice_crop_scores.npy"), maps.max(0), rtol=1e-4, atol=1e-5)
    expected = 0
    for k in range(4):
        _, count = ndimage.label(maps[k] > np.quantile(maps[k], 0.98), structure=np.ones((3, 3)))
        expected += count
    assert len(table) == expected > 0
    for _, row in table.iterrows():
        peak = maps[row["label"], int(row["y0"]):int(row["y1"]), int(row["x0"]):int(row["x1"])].max()
        assert row["score"] == pytest.approx(peak, rel=1e-4) and row["class"] == CLASSES[row["label"]]


def test_checkpoints_load_and_test_without_the_yaml(fitted):
    task = HSIDetectionTask.load_from_checkpoint(fitted["cem"], map_location="cpu")
    assert type(task.model).__name__ == "CEM" and task.model.signatures.abs().sum() > 0
    assert type(HSIDetectionTask.load_from_checkpoint(fitted["specdetr"], map_location="cpu").model).__name__ == "SpecDETR"
    main(["test", "--ckpt_path", str(fitted["cem"]), *FAST[:2]])
    client = mlflow.MlflowClient(fitted["uri"])
    exp = client.get_experiment_by_name("vision/hsi_detection/hsi_sim")
    (run,) = client.search_runs([exp.experiment_id], "tags.subcommand = 'test'")
    assert run.data.tags["model"] == "CEM" and 0 < run.data.metrics["test/map50"] <= 1


def test_the_served_model_answers_like_attn_predict(fitted):
    client = mlflow.MlflowClient(fitted["uri"])
    exp = client.get_experiment_by_name("vision/hsi_detection/hsi_sim")
    logged = {r.data.tags["model"]: r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("model_uri")}
    assert "CEM" in logged  # a parameter-free detector's one-step fit is complete: its model is logged too
    run = logged["SpecDETR"]
    hydice, _ = raw("hydice")
    cube = hydice[0:24, 30:47]  # any size: the signature fixes only the rank and dtype (the example is 32 x 32)
    folder = fitted["root"] / "served"
    folder.mkdir()
    np.save(folder / "cube.npy", cube)
    written = predict(fitted["specdetr"], folder / "cube.npy", folder / "out")
    code = ("import sys, numpy as np, mlflow; "
            "mlflow.pyfunc.load_model(sys.argv[1]).predict(np.load(sys.argv[2])).to_csv(sys.argv[3], index=False)")
    env = {**os.environ, "MLFLOW_TRACKING_URI": fitted["uri"], "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", code, run.data.tags["model_uri"], str(folder / "cube.npy"), str(folder / "served.csv")],
                   env=env, cwd=folder, check=True, timeout=300, capture_output=True)
    pd.testing.assert_frame_equal(pd.read_csv(folder / "served.csv"), written)
    assert len(written) > 0


@pytest.mark.parametrize(("content", "message"), [
    (b"not a mat file", "bad.mat: unreadable .mat file (Mat file appears to be truncated); save it as MATLAB v5"),
    ({"a": np.ones((4, 4, 3)), "b": np.ones((4, 4, 5))}, "bad.mat: no 'data' key and 2 3-D arrays (keys ['a', 'b']); store the cube as 'data'"),
    ({"data": np.ones((4, 4, 30))}, "bad.mat: every band is NaN or constant"),
], ids=["unreadable", "no_cube", "constant"])
def test_a_bad_cube_fails_in_one_line_naming_it(fitted, capsys, content, message):
    path = fitted["root"] / "bad.mat"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        scipy.io.savemat(path, content)
    with pytest.raises(SystemExit):
        main(["predict", "--ckpt_path", str(fitted["cem"]), "--predict_path", str(path), "--output", str(fitted["root"] / "o")],
             friendly=True)
    lines = capsys.readouterr().err.strip().splitlines()
    at = next(i for i, line in enumerate(lines) if ": error: " in line)
    assert len(lines) - at <= 2 and lines[at].startswith("attn predict: error: ") and message in lines[at], lines


def test_serving_input_takes_one_cube():
    with pytest.raises(ValueError, match=r"serves one hyperspectral cube: a numeric array \(height, width, bands\); got float64 of shape \(4, 4\)"):
        HSIDetectionTask.serving_input(np.zeros((4, 4)), Path("."))


def test_the_serving_signature_takes_a_cube_of_any_size():
    from mlflow.models.utils import _enforce_tensor_spec

    task = HSIDetectionTask(torch.nn.Identity())
    output = pd.DataFrame({"cube": ["cube.npy"], "x": [1.0], "score": [0.5]})
    spec = task.serving_signature(np.zeros((16, 16, 162), np.float32), output)
    assert spec.outputs.input_names() == ["cube", "x", "score"]
    assert _enforce_tensor_spec(np.zeros((40, 23, 224), np.float32), spec.inputs.inputs[0]).shape == (40, 23, 224)
