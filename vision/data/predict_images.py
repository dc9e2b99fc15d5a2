"""The user's own images for `attn predict` (low light and super-resolution), and what predict writes.

    attn predict --ckpt_path CKPT --predict_path PATH --output DIR

`PATH` is one image file or a folder (searched recursively) of png / jpg / jpeg / bmp / tif / tiff
files of any size. Each is read as the training data is (`vision.data.io.read_image`: grayscale
replicated to RGB, an alpha channel dropped, each with a warning naming the file); a file that
cannot be decoded is skipped, named on stderr and counted in the DataModule's `predict_skipped`;
files with other suffixes are not images and are left alone. The outputs are 8-bit RGB PNGs under
`DIR` with the input's name (`photo.jpg` -> `photo.png`; a folder's sub-folders are kept; two inputs
that would share a name, `a.jpg` and `a.png`, keep their suffix: `a.jpg.png`), and
`DIR/predictions.csv` lists `input, output, height_in, width_in, height_out, width_out`.

Serving (`core.serving`) takes raw uint8 arrays: one image `(H, W, 3)` (or `(H, W)` grayscale,
`(H, W, 4)` RGBA), a list of them, or a batch `(N, H, W, 3)`. `write_serving_images` writes them
as the PNGs predict reads, so a served model converts them exactly as it converts files, and
`read_predicted_images` returns the PNGs written, pixel for pixel: an `(N, H', W', 3)` uint8 array
(a list of arrays when the outputs differ in size).
"""

from __future__ import annotations

import csv
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from vision.data.io import IMAGE_SUFFIXES, read_image

CSV_NAME = "predictions.csv"
CSV_COLUMNS = ("input", "output", "height_in", "width_in", "height_out", "width_out")


@dataclass(frozen=True)
class PredictImage:
    """One readable input image: its file, the PNG it becomes (relative to the output folder) and its size."""

    path: Path
    output: Path
    height: int
    width: int


def find_predict_images(path: str | Path) -> tuple[list[PredictImage], list[str]]:
    """The readable images of `path` (a file, or a folder searched recursively, sorted) and the skipped files.

    Every image is decoded once here, so a corrupt or truncated file is skipped (and named in the
    returned messages) before any prediction runs.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: `path` is a file that is no readable image, or a folder without one.
    """
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"--predict_path {path}: not an image file; give a {_suffixes()} file or a folder of them")
        files, names = [path], [Path(path.name)]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        names = [p.relative_to(path) for p in files]
    else:
        raise FileNotFoundError(f"--predict_path {path}: no such file or folder")
    if not files:
        raise ValueError(f"--predict_path {path}: no image files ({_suffixes()}) in this folder")
    outputs = _output_names(names)
    images, skipped = [], []
    for file, output in zip(files, outputs, strict=True):
        try:
            image = read_image(file)
        except (ValueError, Image.DecompressionBombError) as err:
            reason = _first_line(err).removeprefix(f"{file}: ")
            if path.is_file():
                raise ValueError(f"--predict_path {file}: not a readable image ({reason}); re-save it as PNG or JPEG") from None
            skipped.append(f"{file}: skipped, not a readable image ({reason}); re-save it as PNG or JPEG")
            continue
        images.append(PredictImage(file, output, int(image.shape[1]), int(image.shape[2])))
    if not images:
        raise ValueError(f"--predict_path {path}: none of its {len(files)} image file(s) could be read: "
                         f"{[str(f) for f in files[:5]]}; re-save them as PNG or JPEG")
    return images, skipped


def predict_loader(path: str | Path, num_workers: int = 0) -> tuple[DataLoader, list[PredictImage], int]:
    """The predict DataLoader of `path` (batch size 1: the images differ in size), its images, and how many
    files were skipped (each named on stderr)."""
    images, skipped = find_predict_images(path)
    for message in skipped:
        print(message, file=sys.stderr)
    loader = DataLoader(PredictImages(images), batch_size=1, shuffle=False, num_workers=num_workers)
    return loader, images, len(skipped)


class PredictImages(Dataset):
    """The images of `find_predict_images` as 1-tuples `(image: (3, H, W),)`, like the `(input, target)` pairs
    of training, so a task's `predict_step` reads `batch[0]: (1, 3, H, W)`."""

    def __init__(self, images: Sequence[PredictImage]) -> None:
        self.images = list(images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor]:
        with warnings.catch_warnings():  # the conversion was announced when the folder was read
            warnings.simplefilter("ignore")
            return (read_image(self.images[index].path),)


def to_uint8(image: Tensor) -> Tensor:
    """`image: (batch, 3, H, W)` in [0, 1] -> `(batch, H, W, 3)` uint8 on the CPU, rounded as `save_image` rounds."""
    return image.detach().float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu()


def write_image_predictions(predictions: Sequence[Tensor], images: Sequence[PredictImage], output: Path) -> list[Path]:
    """Write each prediction `(1, H, W, 3)` uint8 as the PNG of its input, then `predictions.csv`; the paths written.

    Raises:
        ValueError: an output would overwrite its own input (`--output` is the input folder and the input a PNG).
    """
    if len(predictions) != len(images):
        raise ValueError(f"vision/data/predict_images.py: {len(predictions)} predictions for {len(images)} images")
    output = Path(output)
    targets = [output / image.output for image in images]
    for image, target in zip(images, targets, strict=True):
        if target.resolve() == image.path.resolve():
            raise ValueError(f"--output {output}: would overwrite the input {image.path}; choose another folder")
    written, rows = [], []
    for prediction, image, target in zip(predictions, images, targets, strict=True):
        array = prediction.numpy() if isinstance(prediction, Tensor) else np.asarray(prediction)
        array = array.reshape(array.shape[-3:])
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array, mode="RGB").save(target)
        written.append(target)
        rows.append((str(image.path), image.output.as_posix(), image.height, image.width, *array.shape[:2]))
    table = output / CSV_NAME
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)
    return [*written, table]


def serving_arrays(model_input: Any) -> list[np.ndarray]:
    """Raw serving input as a list of uint8 images: `(H, W, 3)`, `(H, W)`, `(H, W, 4)`, a list of those, or `(N, H, W, 3)`.

    Raises:
        ValueError: not uint8, or a shape that is no image.
    """
    if isinstance(model_input, np.ndarray) and model_input.ndim == 4:
        arrays = list(model_input)
    elif isinstance(model_input, np.ndarray):
        arrays = [model_input]
    elif isinstance(model_input, list | tuple):
        arrays = [np.asarray(a) for a in model_input]
    else:
        raise ValueError(f"serving input: expected a uint8 array (H, W, 3), a list of them or (N, H, W, 3); "
                         f"got {type(model_input).__name__}")
    if not arrays:
        raise ValueError("serving input: no image given")
    for i, array in enumerate(arrays):
        if array.dtype != np.uint8:
            raise ValueError(f"serving input: image {i} has dtype {array.dtype}; give uint8 pixels 0-255 "
                             "(e.g. np.asarray(PIL.Image.open(path).convert('RGB')))")
        if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))) or min(array.shape[:2]) < 1:
            raise ValueError(f"serving input: image {i} has shape {array.shape}; expected (H, W, 3), (H, W) or (H, W, 4)")
    return arrays


def write_serving_images(model_input: Any, folder: Path) -> Path:
    """Write raw serving input (`serving_arrays`) as PNGs `000000.png`, ... in `folder` (in input order); the folder."""
    for i, array in enumerate(serving_arrays(model_input)):
        Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array).save(folder / f"{i:06d}.png")
    return folder


def read_predicted_images(paths: Sequence[Path]) -> np.ndarray | list[np.ndarray]:
    """The PNGs listed in the `predictions.csv` among `paths`, in its order: `(N, H, W, 3)` uint8, or a list
    of `(H, W, 3)` arrays when their sizes differ."""
    table = next((Path(p) for p in paths if Path(p).name == CSV_NAME), None)
    if table is None:
        raise ValueError(f"vision/data/predict_images.py: no {CSV_NAME} among the predicted files {list(paths)[:5]}")
    with table.open(newline="") as f:
        names = [row["output"] for row in csv.DictReader(f)]
    arrays = [np.asarray(Image.open(table.parent / name).convert("RGB")) for name in names]
    if len({a.shape for a in arrays}) == 1:
        return np.stack(arrays)
    return arrays


def serving_signature() -> Any:
    """The MLflow signature of a served image model: uint8 `(N, H, W, 3)` in and out, any N, H and W.

    The signature inferred from one example would fix H and W to the example's size.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    images = Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, -1, 3))])
    return ModelSignature(inputs=images, outputs=images)


def serving_example_of(image: Tensor, height: int = 20, width: int = 28) -> np.ndarray:
    """A small serving input from a data image `(3, H, W)` in [0, 1]: its top-left crop as `(1, h, w, 3)` uint8.

    The default size is no multiple of any model's window, so the example exercises the padding.
    """
    return to_uint8(image[None, :, :height, :width]).numpy()


def _output_names(names: Sequence[Path]) -> list[Path]:
    """`name.png` for each input name; inputs whose PNG names collide keep their suffix (`a.jpg.png`)."""
    stems = [n.with_suffix(".png") for n in names]
    counts: dict[Path, int] = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    return [stem if counts[stem] == 1 else name.with_name(name.name + ".png") for name, stem in zip(names, stems, strict=True)]


def _suffixes() -> str:
    return "/".join(s.lstrip(".") for s in IMAGE_SUFFIXES)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
