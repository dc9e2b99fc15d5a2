"""A tiny task for exercising the CLI, tracking and DDP in tests (not shipped with the suite).

The label of a token sequence is whether its first token reappears later in it, which a
one-layer transformer learns and a bag-of-tokens baseline cannot fully.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import lightning as L
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from core.attention import Kernel
from core.blocks import TransformerEncoder
from core.task import BaseTask


class ToySequenceData(L.LightningDataModule):
    """Random token sequences labelled by whether token 0 reappears.

    `predict_path`: a text file of sequences to score, one per line (`seq_len` integers below `vocab`,
    space-separated); other lines are skipped, counted in `predict_skipped` and named on stderr.
    """

    dataset_name = "toy"

    def __init__(self, vocab: int = 8, seq_len: int = 12, size: int = 64, batch_size: int = 16, seed: int = 0,
                 predict_path: str | None = None) -> None:
        super().__init__()
        self.vocab, self.seq_len, self.size, self.batch_size, self.seed = vocab, seq_len, size, batch_size, seed
        self.predict_path = predict_path
        self.predict_lines: list[str] = []
        self.predict_skipped = 0

    def predict_dataloader(self) -> DataLoader:
        rows, self.predict_lines, self.predict_skipped = [], [], 0
        for number, line in enumerate(Path(self.predict_path).read_text().splitlines(), 1):
            try:
                tokens = [int(t) for t in line.split()]
            except ValueError:
                tokens = []
            if len(tokens) != self.seq_len or not all(0 <= t < self.vocab for t in tokens):
                print(f"{self.predict_path}:{number}: skipped (need {self.seq_len} integers below {self.vocab})",
                      file=sys.stderr)
                self.predict_skipped += 1
                continue
            rows.append(tokens)
            self.predict_lines.append(line.strip())
        if not rows:
            raise ValueError(f"{self.predict_path}: no valid sequence to predict")
        return DataLoader(TensorDataset(torch.tensor(rows)), batch_size=self.batch_size)

    def _split(self, offset: int) -> TensorDataset:
        g = torch.Generator().manual_seed(self.seed + offset)
        x = torch.randint(0, self.vocab, (self.size, self.seq_len), generator=g)
        y = (x[:, 1:] == x[:, :1]).any(dim=1).long()
        return TensorDataset(x, y)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self._split(0), batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._split(1), batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self._split(2), batch_size=self.batch_size)


class TinyTransformer(nn.Module):
    """Embedding, one encoder layer, mean pool, linear head."""

    role = "model"

    def __init__(self, vocab: int = 8, dim: int = 16, heads: int = 2, layers: int = 1, kernel: Kernel = "math") -> None:
        super().__init__()
        self.kernel = kernel
        self.embed = nn.Embedding(vocab, dim)
        self.encoder = TransformerEncoder(layers, dim, heads, 2 * dim, dropout=0.0, kernel=kernel)
        self.head = nn.Linear(dim, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(self.embed(x)).mean(dim=1))


class BagOfTokens(nn.Module):
    """Baseline: mean of token embeddings, linear head."""

    role = "baseline"

    def __init__(self, vocab: int = 8, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.embed(x).mean(dim=1))


class ToyTask(BaseTask):
    domain = "toy"
    task_name = "classify"

    def _step(self, batch, stage: str) -> Tensor:
        x, y = batch
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(-1) == y).float().mean()
        self.log_metrics(stage, {"loss": loss, "accuracy": acc}, batch_size=len(y))
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx) -> Tensor:
        return torch.softmax(self.model(batch[0]), dim=-1)[:, 1]

    def write_predictions(self, predictions, datamodule, output: Path) -> list[Path]:
        path = output / "predictions.csv"
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["tokens", "probability"])
            for line, p in zip(datamodule.predict_lines, torch.cat(predictions).tolist(), strict=True):
                writer.writerow([line, repr(p)])
        return [path]

    @classmethod
    def serving_input(cls, model_input, folder: Path) -> Path:
        path = folder / "sequences.txt"
        path.write_text("\n".join(pd.DataFrame(model_input)["tokens"].astype(str)) + "\n")
        return path

    @classmethod
    def serving_output(cls, paths: list[Path]) -> pd.DataFrame:
        return pd.read_csv(paths[0])[["probability"]]

    def serving_example(self, datamodule) -> pd.DataFrame:
        x = datamodule._split(2).tensors[0][:3]
        return pd.DataFrame({"tokens": [" ".join(map(str, row)) for row in x.tolist()]})


class Sleep(L.Callback):
    """Sleeps after every training batch, so that a test can act on a run while it trains (kill it,
    stop its tracking server)."""

    def __init__(self, seconds: float = 0.2) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        import time

        time.sleep(self.seconds)
