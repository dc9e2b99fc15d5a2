"""Attention heat maps over time for the self-attention tagger (the paper's interpretability figures)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402


def window_starts(frames: int, input_frames: int, windows: int) -> np.ndarray:
    """First frame of each of `windows` windows evenly spaced over a clip of `frames` (the data's eval windows)."""
    return np.linspace(0, max(frames - input_frames, 0), max(windows, 1)).round().astype(int)


@torch.no_grad()
def clip_attention(model: nn.Module, mel: np.ndarray, input_frames: int, windows: int,
                   device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """The [CLS] attention of the last encoder layer over a whole clip, and each window's tag probabilities.

    mel: `(n_mels, frames)` with `frames >= input_frames`. Returns `curve: (frames,)`, the
    head-averaged weight of [CLS] on the token covering each frame (averaged where windows overlap),
    and `(windows, tags)` probabilities.
    """
    starts = window_starts(mel.shape[1], input_frames, windows)
    x = torch.from_numpy(np.stack([mel[:, s:s + input_frames] for s in starts])).to(device)
    maps = model.attention_maps(x)
    cls = maps[-1][:, :, 0, 1:].float().mean(dim=1).cpu().numpy()  # (windows, tokens)
    stride = model.time_stride
    total, count = np.zeros(mel.shape[1]), np.zeros(mel.shape[1])
    for w, s in enumerate(starts):
        per_frame = np.repeat(cls[w], stride)[:input_frames]
        total[s:s + len(per_frame)] += per_frame
        count[s:s + len(per_frame)] += 1
    probs = torch.sigmoid(model(x).float()).cpu().numpy()
    return total / np.maximum(count, 1), probs


def attention_figure(mel: np.ndarray, curve: np.ndarray, seconds_per_frame: float, title: str = "") -> Figure:
    """The log-mel spectrogram over the [CLS] attention curve, on one time axis (seconds)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    extent = (0, mel.shape[1] * seconds_per_frame, 0, mel.shape[0])
    top.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=extent)
    top.set(ylabel="mel band", title=title)
    times = np.arange(len(curve)) * seconds_per_frame
    bottom.imshow(curve[None, :], aspect="auto", cmap="viridis", extent=(0, times[-1] + seconds_per_frame, 0, 1))
    bottom.set(xlabel="time (s)", yticks=[], ylabel="[CLS]\nattention")
    fig.tight_layout()
    return fig
