"""`attn predict` on the user's own images (low light and super-resolution), and the served MLflow model.

Tiny fits (LYT-Net, HAT, and the parameter-free gamma and bicubic baselines) run once for the module
into a scratch MLflow store; every prediction is checked pixel for pixel against the model loaded with
`load_from_checkpoint` and called directly on the same file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import core.lightning_cli  # noqa: F401 - Lightning and MLflow are imported before any capsys test, so that
import mlflow  # noqa: F401 - their log handlers bind the real stderr, not a closed capture
from core.cli import main
from vision.data.io import read_image
from vision.data.predict_images import (
    CSV_COLUMNS,
    PredictImages,
    find_predict_images,
    read_predicted_images,
    serving_arrays,
    serving_signature,
    to_uint8,
    write_serving_images,
)
from vision.tasks.lowlight import LowLightTask
from vision.tasks.sr import SRTask, tiled_super_resolve
from vision.tiling import blend_window, enhance_whole, tile_starts, tiled_inference

CONFIGS = Path(__file__).resolve().parents[2] / "vision" / "configs"
FAST = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
TINY_LYT = ["--model.init_args.model.init_args.filters=16", "--model.init_args.model.init_args.se_reduction=4"]
TINY_HAT = [
    "--model.init_args.model.init_args.embed_dim=16", "--model.init_args.model.init_args.depths=[2]",
    "--model.init_args.model.init_args.num_heads=[2]", "--model.init_args.model.init_args.squeeze_factor=4",
]


def _save(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _photo(name: str, top: int, left: int, height: int, width: int, dark: float = 1.0) -> np.ndarray:
    """A crop of a scikit-image photo as uint8 RGB (real content, no download), optionally darkened."""
    import skimage.data

    crop = getattr(skimage.data, name)()[top:top + height, left:left + width, :3].astype(np.float64)
    return (crop * dark).round().astype(np.uint8)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Checkpoints of tiny fits in a scratch store: LYT-Net and HAT (with their models logged), gamma, bicubic."""
    root = tmp_path_factory.mktemp("fits")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.chdir(root)
        for split, shapes in {"train": [(0, 0, 96, 96), (200, 150, 96, 96)], "val": [(100, 100, 96, 128)]}.items():
            for i, (top, left, h, w) in enumerate(shapes):
                _save(_photo("astronaut", top, left, h, w), root / "sr" / split / f"{i}.png")
        sr_data = [f"--data.init_args.{k}_path={root / 'sr' / s}" for k, s in (("train", "train"), ("val", "val"), ("test", "val"))]
        sr_data.append("--data.init_args.dataset_name=tiny")
        runs = {
            "lyt": ["fit", "--config", str(CONFIGS / "lytnet_synthetic.yaml"), "--trainer.max_steps=2", "--log_model=true",
                    "--data.init_args.samples_per_epoch=4", "--data.init_args.batch_size=2", "--data.init_args.patch_size=32",
                    "--data.init_args.max_side=64", "--data.init_args.variants=1", *TINY_LYT],
            "hat": ["fit", "--config", str(CONFIGS / "hat_small_x4_skimage.yaml"), "--trainer.max_steps=2",
                    "--trainer.val_check_interval=2", "--log_model=true", "--data.init_args.patch_size=16",
                    "--data.init_args.batch_size=2", "--data.init_args.val_crop=0", *sr_data, *TINY_HAT],
            "gamma": ["fit", "--config", str(CONFIGS / "gamma_synthetic.yaml"), "--data.init_args.max_side=64",
                      "--data.init_args.variants=1", "--log_model=false"],
            "bicubic": ["fit", "--config", str(CONFIGS / "bicubic_x4_skimage.yaml"), *sr_data, "--data.init_args.patch_size=16",
                        "--log_model=false"],
        }
        checkpoints = {"root": root}
        for name, args in runs.items():
            before = set(root.glob("checkpoints/*/*/checkpoints/last.ckpt"))
            main([*args, *FAST])
            (checkpoints[name],) = set(root.glob("checkpoints/*/*/checkpoints/last.ckpt")) - before
        yield checkpoints
    torch.set_num_threads(threads)


@pytest.fixture()
def in_store(fitted: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test in the fits' folder and store (predict runs are logged next to their fits)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{fitted['root'] / 'mlflow.db'}")
    monkeypatch.chdir(fitted["root"])
    return fitted["root"]


def _predict(ckpt: Path, inputs: Path, output: Path, *extra: str) -> None:
    """`attn predict` from the checkpoint alone: no --config."""
    main(["predict", "--ckpt_path", str(ckpt), "--predict_path", str(inputs), "--output", str(output), *extra, *FAST])


def _expected(array: torch.Tensor) -> np.ndarray:
    return to_uint8(array)[0].numpy()


# -- the reader and the serving conversions, without a model ---------------------------------------------------


def test_a_folder_tree_is_read_as_training_images_are_and_bad_files_are_skipped(tmp_path):
    rgb = _save(_photo("coffee", 0, 0, 13, 17), tmp_path / "in" / "b.png")
    gray = _save(_photo("coffee", 20, 20, 9, 11)[..., 0], tmp_path / "in" / "sub" / "g.jpg")
    rgba = np.dstack([_photo("chelsea", 0, 0, 8, 6), np.full((8, 6), 7, np.uint8)])
    _save(rgba, tmp_path / "in" / "sub" / "a.png")
    _save(rgba, tmp_path / "in" / "sub" / "a.tif")  # same stem as a.png: both keep their suffix
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    truncated = (tmp_path / "in" / "trunc.png")
    truncated.write_bytes(rgb.read_bytes()[:60])
    (tmp_path / "in" / "notes.txt").write_text("not an image, not counted")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images, skipped = find_predict_images(tmp_path / "in")
    assert [(i.output.as_posix(), i.height, i.width) for i in images] == [
        ("b.png", 13, 17), ("sub/a.png.png", 8, 6), ("sub/a.tif.png", 8, 6), ("sub/g.png", 9, 11)]
    assert [m.split(":")[0] for m in skipped] == [str(tmp_path / "in" / "broken.png"), str(truncated)]
    assert all("re-save it as PNG or JPEG" in m for m in skipped)
    assert any(str(gray) in str(w.message) and "grayscale" in str(w.message) for w in caught)
    loaded = [PredictImages(images)[i][0] for i in range(len(images))]
    torch.testing.assert_close(loaded[0], torch.from_numpy(_photo("coffee", 0, 0, 13, 17)).permute(2, 0, 1) / 255.0)
    torch.testing.assert_close(loaded[1], torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1) / 255.0)  # alpha dropped
    assert torch.equal(loaded[3], read_image(gray)) and torch.equal(loaded[3][0], loaded[3][2])  # gray replicated
    one, none = find_predict_images(rgb)
    assert [i.output for i in one] == [Path("b.png")] and none == []


def test_serving_arrays_become_the_pngs_predict_reads(tmp_path):
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    folder = write_serving_images(batch, tmp_path)
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == ["000000.png", "000001.png"]
    assert np.array_equal(np.stack([_png(f) for f in files]), batch)
    gray = rng.integers(0, 256, (4, 3), dtype=np.uint8)
    assert [a.shape for a in serving_arrays([batch[0], gray])] == [(5, 7, 3), (4, 3)]
    with pytest.raises(ValueError, match="dtype float32; give uint8"):
        serving_arrays(batch.astype(np.float32))
    with pytest.raises(ValueError, match=r"shape \(5, 7, 2\)"):
        serving_arrays(batch[0, ..., :2])


def test_the_served_signature_takes_images_of_any_size():
    from mlflow.models.utils import validate_schema

    schema = serving_signature().inputs
    for shape in ((1, 20, 28, 3), (3, 517, 33, 3)):
        validate_schema(np.zeros(shape, np.uint8), schema)
    with pytest.raises(Exception, match="[Ss]hape"):
        validate_schema(np.zeros((1, 8, 8, 4), np.uint8), schema)


def test_tiled_super_resolution_blends_lr_tiles_exactly_as_a_direct_computation():
    torch.manual_seed(0)
    scale, tile, overlap = 3, 8, 3
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 3 * scale**2, 3, padding=1), torch.nn.PixelShuffle(scale))
    lr = torch.rand(1, 3, 13, 19)
    with torch.no_grad():
        tiled = tiled_super_resolve(net, lr, scale, tile=tile, overlap=overlap, multiple=4)
        # reference: each LR tile (padded to 4) upscaled, weighted by its LR ramps repeated over scale x scale blocks
        out, norm = torch.zeros(1, 3, 13 * scale, 19 * scale), torch.zeros(1, 1, 13 * scale, 19 * scale)
        for y in tile_starts(13, tile, overlap):
            for x in tile_starts(19, tile, overlap):
                th, tw = min(tile, 13 - y), min(tile, 19 - x)
                wy = blend_window(th, overlap, start=y == 0, end=y + th >= 13).repeat_interleave(scale)
                wx = blend_window(tw, overlap, start=x == 0, end=x + tw >= 19).repeat_interleave(scale)
                piece = enhance_whole(net, lr[..., y:y + th, x:x + tw], 4, scale)
                out[..., y * scale:(y + th) * scale, x * scale:(x + tw) * scale] += piece * wy[:, None] * wx
                norm[..., y * scale:(y + th) * scale, x * scale:(x + tw) * scale] += wy[:, None] * wx
        torch.testing.assert_close(tiled, out / norm, atol=1e-5, rtol=1e-5)
        # an image within one tile: exactly the whole-image output
        assert torch.equal(tiled_super_resolve(net, lr[..., :8, :7], scale, tile=tile, overlap=overlap, multiple=4),
                           enhance_whole(net, lr[..., :8, :7], 4, scale))


# -- attn predict end to end -----------------------------------------------------------------------------------


def test_lowlight_predict_from_the_checkpoint_alone_tiles_large_images(fitted, in_store, capsys):
    inputs = in_store / "lowlight_in"
    big = _save(_photo("astronaut", 40, 40, 45, 70, dark=0.15), inputs / "big.jpg")
    small = _save(_photo("coffee", 10, 10, 11, 9, dark=0.2)[..., 1], inputs / "deep" / "small.png")
    (inputs / "deep" / "corrupt.bmp").write_bytes(b"BM not a bitmap")
    output = in_store / "lowlight_out"
    _predict(fitted["lyt"], inputs, output, "--model.init_args.predict_tile=16", "--model.init_args.tile_overlap=4")
    err = capsys.readouterr().err
    assert f"{inputs / 'deep' / 'corrupt.bmp'}: skipped, not a readable image" in err
    assert f"wrote 3 file(s) to {output}; 1 input(s) skipped" in err
    rows = [line.split(",") for line in (output / "predictions.csv").read_text().splitlines()]
    assert rows == [list(CSV_COLUMNS), [str(big), "big.png", "45", "70", "45", "70"],
                    [str(small), "deep/small.png", "11", "9", "11", "9"]]
    torch.load(fitted["lyt"], weights_only=True)  # plain tensors and python values: no pickled classes
    task = LowLightTask.load_from_checkpoint(fitted["lyt"]).eval()
    assert type(task.model).__name__ == "LYTNet" and task.model.size_multiple == 8
    with torch.no_grad():
        x = read_image(big)[None]
        tiled = tiled_inference(task.model, x, tile=16, overlap=4, multiple=8)
        assert np.array_equal(_png(output / "big.png"), _expected(tiled))
        whole = enhance_whole(task.model, x, 8)
        assert not np.array_equal(_expected(tiled), _expected(whole))  # the 45x70 image really went in tiles
        gray = read_image(small)[None]  # one padded tile: the whole-image result
        assert np.array_equal(_png(output / "deep" / "small.png"), _expected(task.enhance(gray)))


def test_sr_predict_upscales_by_the_models_scale_in_padded_tiles(fitted, in_store):
    inputs = in_store / "sr_in"
    big = _save(_photo("chelsea", 20, 30, 21, 37), inputs / "big.png")
    small = _save(np.dstack([_photo("rocket", 50, 50, 11, 13), np.full((11, 13), 255, np.uint8)]), inputs / "small.tif")
    output = in_store / "sr_out"
    _predict(fitted["hat"], inputs, output, "--model.init_args.predict_tile=16", "--model.init_args.predict_tile_overlap=4")
    task = SRTask.load_from_checkpoint(fitted["hat"]).eval()
    assert (task.scale, task.size_multiple) == (4, 8)
    with torch.no_grad():
        x = read_image(big)[None]
        expected = tiled_super_resolve(task.model, x, 4, tile=16, overlap=4, multiple=8)
        assert _png(output / "big.png").shape == (84, 148, 3)
        assert np.array_equal(_png(output / "big.png"), _expected(expected))
        assert np.array_equal(_png(output / "small.png"), _expected(task.super_resolve(read_image(small)[None])))
    assert (output / "predictions.csv").read_text().splitlines()[2] == f"{small},small.png,11,13,44,52"


@pytest.mark.parametrize(("name", "task_class"), [("gamma", LowLightTask), ("bicubic", SRTask)])
def test_parameter_free_baselines_predict_whole_images(fitted, in_store, name, task_class):
    image = _save(_photo("astronaut", 100, 200, 40, 50, dark=0.2), in_store / f"{name}_in" / "x.png")
    output = in_store / f"{name}_out"
    _predict(fitted[name], image, output, "--model.init_args.predict_tile=16")  # ignored: no parameters
    task = task_class.load_from_checkpoint(fitted[name]).eval()
    assert task.num_parameters() == 0
    with torch.no_grad():
        direct = task.model(read_image(image)[None])  # adaptive gamma uses the whole image's mean
    assert np.array_equal(_png(output / "x.png"), _expected(direct))


def test_attn_test_runs_from_the_checkpoint_alone(fitted, in_store):
    from mlflow import MlflowClient

    main(["test", "--ckpt_path", str(fitted["bicubic"]), *FAST])
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("vision/sr/tiny").experiment_id], "tags.subcommand = 'test'")
    assert len(runs) == 1 and runs[0].data.tags["model"] == "Bicubic" and 15 < runs[0].data.metrics["test/psnr"] < 50


def test_the_logged_models_serve_raw_arrays_in_a_fresh_process(fitted, in_store):
    # The raw arrays have the size of the logged input example (20x28): a signature inferred from the example
    # fixes H and W; the tasks' `serving_signature` (tested above) frees them where core logs it.
    from mlflow import MlflowClient

    client = MlflowClient()
    uris = {}
    for experiment, key in (("vision/lowlight/synthetic", "lyt"), ("vision/sr/tiny", "hat")):
        runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], "tags.model_uri != ''")
        (uris[key],) = [r.data.tags["model_uri"] for r in runs if r.data.tags.get("model_uri")]
    raw = {"lyt": np.stack([_photo("chelsea", 0, 0, 20, 28, 0.2), _photo("coffee", 50, 60, 20, 28, 0.1)]),
           "hat": _photo("astronaut", 7, 9, 23, 31)[None]}
    for key, array in raw.items():
        np.save(in_store / f"raw_{key}.npy", array)
    script = (
        "import json, sys, numpy as np, mlflow.pyfunc\n"
        "for key, uri in json.loads(sys.argv[1]).items():\n"
        "    np.save(f'served_{key}.npy', mlflow.pyfunc.load_model(uri).predict(np.load(f'raw_{key}.npy')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, json.dumps(uris)], cwd=in_store, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for key, array in raw.items():
        inputs = write_serving_images(array, _fresh(in_store / f"serve_in_{key}"))
        _predict(fitted[key], inputs, in_store / f"serve_out_{key}")
        predicted = read_predicted_images(sorted((in_store / f"serve_out_{key}").iterdir()))
        served = np.load(in_store / f"served_{key}.npy")
        assert served.dtype == np.uint8 and served.shape == predicted.shape
        assert np.array_equal(served, predicted)
    assert served.shape == (1, 92, 124, 3)  # HAT x4


def _fresh(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- bad input: one line naming the file -----------------------------------------------------------------------


def _fails(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args, friendly=True)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    at = next(i for i, line in enumerate(lines) if ": error: " in line)
    assert exit_info.value.code != 0 and "Traceback" not in err and len(lines) - at <= 2, err
    return lines[at]


def test_bad_inputs_fail_in_one_line_naming_the_file(fitted, in_store, capsys):
    ckpt = str(fitted["lyt"])
    notes = in_store / "bad" / "notes.txt"
    notes.parent.mkdir(exist_ok=True)
    notes.write_text("hello")
    line = _fails(["predict", "--ckpt_path", ckpt, "--predict_path", str(notes), "--output", "o"], capsys)
    assert f"--predict_path {notes}: not an image file; give a png/jpg/jpeg/bmp/tif/tiff file" in line
    (in_store / "bad" / "x.jpg").write_bytes(b"\xff\xd8 no jpeg")
    line = _fails(["predict", "--ckpt_path", ckpt, "--predict_path", str(notes.parent / "x.jpg"), "--output", "o"], capsys)
    assert f"--predict_path {notes.parent / 'x.jpg'}: not a readable image (unreadable or truncated image" in line
    line = _fails(["predict", "--ckpt_path", ckpt, "--predict_path", str(notes.parent), "--output", "o"], capsys)
    assert f"--predict_path {notes.parent}: none of its 1 image file(s) could be read" in line and "x.jpg" in line
    empty = _fresh(in_store / "bad" / "empty")
    line = _fails(["predict", "--ckpt_path", ckpt, "--predict_path", str(empty), "--output", "o"], capsys)
    assert f"--predict_path {empty}: no image files" in line
    same = _save(_photo("coffee", 0, 0, 8, 8), in_store / "bad" / "same" / "a.png")
    line = _fails(["predict", "--ckpt_path", ckpt, "--predict_path", str(same.parent), "--output", str(same.parent)], capsys)
    assert f"would overwrite the input {same}; choose another folder" in line
