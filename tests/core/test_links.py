"""`AttnCLI` links the data's sizes into the wrapped network (`core.cli._DATA_SIZES`).

A toy DataModule and network that both have `seq_len`, `pred_len` and `channels` check what a link
does; the toy task of `tests/core/toy.py` checks that pairs without those names are left alone.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from core.cli import AttnCLI, main

ROOT = Path(__file__).resolve().parents[2]
TOY = str(Path(__file__).with_name("toy.yaml"))
HERE = "tests.core.test_links"
NETWORK = "--model.init_args.model.init_args"


class SizedData(L.LightningDataModule):
    """Sequences of `seq_len` steps and `pred_len` targets over `columns` channels.

    `channels` is an attribute only, like `ETTDataModule.channels` (read from a file's header):
    the CLI links it from the built object.
    """

    def __init__(self, seq_len: int = 6, pred_len: int = 2, columns: int = 3, seed: int = 0) -> None:
        super().__init__()
        self.seq_len, self.pred_len, self.columns, self.seed = seq_len, pred_len, columns, seed

    @property
    def channels(self) -> int:
        return self.columns

    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(self.seed)
        x = torch.randn(8, self.seq_len, self.channels, generator=g)
        return DataLoader(TensorDataset(x, torch.zeros(8, dtype=torch.long)), batch_size=4)


class SizedNet(nn.Module):
    """A linear map of a `(batch, seq_len, channels)` window to two logits; sizes as the forecasters name them."""

    def __init__(self, seq_len: int = 1, pred_len: int = 1, channels: int = 1) -> None:
        super().__init__()
        self.seq_len, self.pred_len, self.channels = seq_len, pred_len, channels
        self.head = nn.Linear(seq_len * channels, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(x.flatten(1))


pytestmark = pytest.mark.usefixtures("mlflow_uri")  # every test builds the CLI against a temporary store


def build(*args: str) -> AttnCLI:
    return AttnCLI(args=["--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false", *args], run=False)


def sized(*extra: str, network: str = f"{HERE}.SizedNet", data: str = f"{HERE}.SizedData") -> list[str]:
    """A config that sets every size once, on the data."""
    return [
        "--model=tests.core.toy.ToyTask", f"--model.init_args.model={network}",
        f"--data={data}", "--data.init_args.seq_len=5", "--data.init_args.pred_len=4", "--data.init_args.columns=2",
        *extra,
    ]


def sizes(module: nn.Module) -> tuple:
    return tuple(getattr(module, name, None) for name in ("seq_len", "pred_len", "channels"))


def test_network_gets_the_data_sizes_and_trains():
    cli = build(*sized("--trainer.max_steps=2", "--trainer.enable_model_summary=false"))
    assert sizes(cli.model.model) == (5, 4, 2) == (cli.datamodule.seq_len, cli.datamodule.pred_len, cli.datamodule.channels)
    assert cli.model.model.head.in_features == 5 * 2
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)  # the linked sizes are the batches' sizes
    assert cli.trainer.global_step == 2


def test_command_line_override_of_the_data_reaches_the_network():
    cli = build(*sized("--data.init_args.pred_len=9", "--data.init_args.columns=6"))
    assert sizes(cli.model.model) == (5, 9, 6)


def test_an_equal_duplicate_is_accepted():
    cli = build(*sized(f"{NETWORK}.pred_len=4"))
    assert sizes(cli.model.model) == (5, 4, 2)


def test_a_contradicting_duplicate_is_refused_naming_both_keys(capsys):
    with pytest.raises(SystemExit):
        build(*sized(f"{NETWORK}.pred_len=7"))
    err = capsys.readouterr().err
    assert "pred_len is set twice and differently: data.init_args.pred_len=4 but model.init_args.model.init_args.pred_len=7" in err
    assert "set data.init_args.pred_len only" in err


def test_a_contradicting_attribute_duplicate_is_refused(capsys):
    assert build(*sized(f"{NETWORK}.channels=2")).model.model.channels == 2
    with pytest.raises(SystemExit):
        build(*sized(f"{NETWORK}.channels=5"))
    assert "the data's channels=2 but model.init_args.model.init_args.channels=5" in capsys.readouterr().err


def test_print_config_shows_each_size_on_the_data_only(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *sized(), "--print_config"])
    assert exit_info.value.code in (0, None)
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["data"]["init_args"]["seq_len"] == 5 and config["data"]["init_args"]["pred_len"] == 4
    assert not {"seq_len", "pred_len", "channels"} & set(config["model"]["init_args"]["model"].get("init_args", {}))


def test_printed_config_reruns_with_the_same_sizes(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["fit", *sized("--data.init_args.pred_len=3"), "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    for key in ("ckpt_path", "weights_only"):  # `fit` options; `build` parses without a subcommand
        printed.pop(key, None)
    path = tmp_path / "printed.yaml"
    path.write_text(yaml.safe_dump(printed))
    assert sizes(build("--config", str(path)).model.model) == (5, 3, 2)


def test_toy_pair_without_the_names_is_unaffected():
    # ToySequenceData has a `seq_len` and TinyTransformer none: nothing is linked, nothing fails
    cli = build("--config", TOY)
    network = cli.config["model"]["init_args"]["model"]["init_args"]
    assert dict(network) == {"vocab": 8, "dim": 16, "heads": 2, "layers": 1, "kernel": "math"}
    assert type(cli.model.model).__name__ == "TinyTransformer" and cli.datamodule.seq_len == 12


def test_data_with_sizes_and_network_without_them():
    cli = build(*sized(network="tests.core.toy.TinyTransformer"))
    assert type(cli.model.model).__name__ == "TinyTransformer"
    assert dict(cli.config["model"]["init_args"]["model"]["init_args"]) == {
        "vocab": 8, "dim": 16, "heads": 2, "layers": 1, "kernel": "math",
    }


def test_only_the_sizes_the_data_has_are_linked():
    # ToySequenceData gives seq_len, but neither pred_len nor channels: those keep the network's defaults
    cli = build(
        "--model=tests.core.toy.ToyTask", f"--model.init_args.model={HERE}.SizedNet",
        "--data=tests.core.toy.ToySequenceData", "--data.init_args.seq_len=7",
    )
    assert sizes(cli.model.model) == (7, 1, 1)


@pytest.mark.parametrize("name", ["bicubic_x4_skimage", "edsr_x4_skimage"])
def test_sr_scale_is_set_once_on_the_data(name):
    config = ROOT / "vision" / "configs" / f"{name}.yaml"
    assert "scale" not in yaml.safe_load(config.read_text())["model"]["init_args"]["model"]["init_args"]
    cli = build("--config", str(config))
    assert cli.model.model.scale == cli.datamodule.scale == 4
    cli = build("--config", str(config), "--data.init_args.scale=2")
    assert cli.model.model.scale == cli.model.scale == 2
