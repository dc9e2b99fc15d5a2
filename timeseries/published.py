"""Published LTSF numbers and the official scripts' per-dataset settings, in one table.

`attn-bench ltsf --dataset NAME` reads everything dataset-specific from here: which file and split,
the look-back window and horizons, each model's training settings (batch size, learning rate,
epochs, patience, schedule, model sizes) and the published (MSE, MAE) row it is compared with.

Sources, cited by every entry below:

- Published numbers of Repeat, Linear, NLinear, DLinear, Informer and Autoformer: Zeng, Chen,
  Zhang, Xu, "Are Transformers Effective for Time Series Forecasting?" (AAAI 2023, arXiv
  2205.13504v3), Table 2, multivariate, standardized scale (the same table is
  `pics/Mul-results.png` of cure-lab/LTSF-Linear). The repository's `LTSF-Benchmark.md` prints the
  same numbers but with the NLinear and DLinear rows swapped for Electricity, Exchange, Traffic,
  Weather and ILI (e.g. it gives DLinear 0.089 on Exchange at 96, the paper 0.081); this table
  follows the paper. The Informer and Autoformer rows are FEDformer's numbers (look-back 96), as
  the paper says; the vanilla Transformer has no row.
- PatchTST/42 (look-back 336; ILI 104): Nie, Nguyen, Sinthong, Kalagnanam, "A Time Series is
  Worth 64 Words" (ICLR 2023, arXiv 2211.14730), Table 3, the PatchTST/42 columns (the
  repository's `pic/table3.png`); the paper has no Exchange row.
- Linear and NLinear settings: cure-lab/LTSF-Linear@0c11366, `scripts/EXP-LongForecasting/Linear/
  <file>.sh` (unchanged since 726695f, 2022-08-22; "Linear, NLinear, and DLinear use the same
  scripts"), with `run_longExp.py`'s defaults for what a script leaves out (10 epochs, patience
  3, lr 1e-4, batch 32, `lradj type1`). No Table 2 script passes `--individual` (that flag makes
  the benchmark's separate Linear-I rows), so `individual` is False everywhere.
- DLinear settings: Table 2's DLinear row equals, number for number, the DLinear-S row of the
  paper's first version (May 2022, its Table 7; the repository's `pics/DLinear/results.png`) on
  every dataset but ILI. Those results come from the code of that time, which initialised
  DLinear's weights to 1/seq_len (cure-lab/LTSF-Linear f7cbf46, 2022-05-27; commented out in
  7f7a25b, 2022-08-15, "Some results of DLinear are slightly different now"), trained with the
  May scripts, `scripts/EXP-LongForecasting/DLinear/<file>.sh`@b1c7019 (2022-05-28). The ILI row
  changed in the later versions (v1: 2.108 at the first horizon, AAAI: 2.215), so its settings
  are the August script's (lr 0.01 instead of 0.05) and, we infer, the August code's random init.
- Transformer, Informer, Autoformer settings: cure-lab/LTSF-Linear@0c11366
  `scripts/EXP-LongForecasting/Formers_Long.sh` ("ALL scripts in this file come from
  Autoformer"): look-back 96 and label 48 (ILI 36 and 18), 10 epochs except Exchange 1,
  Weather 2, Traffic 3; the model sizes are the configs'.
- PatchTST settings: yuqinie98/PatchTST@204c21e `PatchTST_supervised/scripts/PatchTST/<file>.sh`
  with `run_longExp.py`'s defaults (patience 100, `lradj type3`, `pct_start` 0.3). Its
  `fc_dropout` only reaches the pre-training head, so it has no counterpart here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Metrics = Mapping[int, tuple[float, float]]  # horizon -> (MSE, MAE)
Schedule = Literal["type1", "type3", "TST", "constant"]
Layout = Literal["ETTh", "ETTm", "ratio"]

ZENG_TABLE2 = "Zeng et al., AAAI 2023, Table 2"
NIE_TABLE3 = "Nie et al., ICLR 2023, Table 3 (PatchTST/42)"
_LINEAR_SCRIPT = "cure-lab/LTSF-Linear@0c11366 scripts/EXP-LongForecasting/Linear/{}.sh"
_DLINEAR_SCRIPT = "cure-lab/LTSF-Linear@b1c7019 scripts/EXP-LongForecasting/DLinear/{}.sh (+ 1/seq_len init of f7cbf46)"
_FORMERS_SCRIPT = "cure-lab/LTSF-Linear@0c11366 scripts/EXP-LongForecasting/Formers_Long.sh"
_PATCHTST_SCRIPT = "yuqinie98/PatchTST@204c21e PatchTST_supervised/scripts/PatchTST/{}.sh"

MODELS = ("repeat", "linear", "nlinear", "dlinear", "transformer", "informer", "autoformer", "patchtst")


@dataclass(frozen=True)
class TrainSettings:
    """What an official script sets for one model at one horizon; `None` keeps the config's value.

    Attributes:
        source: the script (repository@commit path) the values come from.
        batch_size: training batch size.
        lr: Adam learning rate (the peak rate of the `TST` schedule).
        seq_len: look-back window.
        epochs: most training epochs.
        patience: early-stopping patience in epochs on `val/mse`.
        schedule: the reference code's `lradj`: `type1` (halve every epoch after the second),
            `type3` (constant for four epochs, then x0.9 per epoch), `TST` (one-cycle over the
            run, stepped per batch, peak at `pct_start` of it), `constant`.
        pct_start: fraction of the `TST` cycle spent warming up.
        model: model constructor arguments the script sets (`average_init`, `d_model`, ...).
    """

    source: str
    batch_size: int | None = None
    lr: float | None = None
    seq_len: int | None = None
    epochs: int | None = None
    patience: int | None = None
    schedule: Schedule | None = None
    pct_start: float | None = None
    model: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line naming every value set, e.g. `batch 8, lr 0.0001, seq_len 336, 10 epochs, ...`."""
        parts = []
        if self.batch_size is not None:
            parts.append(f"batch {self.batch_size}")
        if self.lr is not None:
            parts.append(f"lr {self.lr:g}")
        if self.seq_len is not None:
            parts.append(f"seq_len {self.seq_len}")
        if self.epochs is not None:
            parts.append(f"{self.epochs} epochs")
        if self.patience is not None:
            parts.append(f"patience {self.patience}")
        if self.schedule is not None:
            parts.append(f"lradj {self.schedule}" + (f" pct_start {self.pct_start:g}" if self.schedule == "TST" else ""))
        parts += [f"{key} {value}" for key, value in self.model.items()]
        return ", ".join(parts) or "no training"


@dataclass(frozen=True)
class LTSFDataset:
    """One dataset of the LTSF benchmark: its file, split, windows, settings and published rows.

    Attributes:
        name: the paper's name (`ETTh1`, `Weather`, `ILI`); also the MLflow dataset name.
        file: the file's name in the Autoformer collection the scripts read (`national_illness.csv`).
        aliases: other names accepted by `find_dataset` (lower case).
        channels: value columns of the file (`enc_in` of the scripts).
        split: `ETTh` / `ETTm` (12/4/4 months) or `ratio` (7:1:2), as the reference data loader.
        seq_len: look-back window of the LTSF-Linear and PatchTST scripts (336; ILI 104).
        horizons: the paper's forecast horizons.
        settings: model name -> horizon -> `TrainSettings`.
        published: model name -> horizon -> (MSE, MAE), multivariate.
        published_source: model name -> where its row is printed.
    """

    name: str
    file: str
    aliases: tuple[str, ...]
    channels: int
    split: Layout
    seq_len: int
    horizons: tuple[int, ...]
    settings: Mapping[str, Mapping[int, TrainSettings]]
    published: Mapping[str, Metrics]
    published_source: Mapping[str, str]


def _rows(horizons: tuple[int, ...], *pairs: tuple[float, float]) -> dict[int, tuple[float, float]]:
    if len(pairs) != len(horizons):
        raise ValueError(f"{len(pairs)} published values for horizons {horizons}")
    return dict(zip(horizons, pairs, strict=True))


def _per_horizon(horizons: tuple[int, ...], value: Any) -> tuple[Any, ...]:
    """A value the same at every horizon, or one per horizon (a tuple as long as `horizons`)."""
    if isinstance(value, tuple):
        if len(value) != len(horizons):
            raise ValueError(f"{value} does not give one value per horizon {horizons}")
        return value
    return (value,) * len(horizons)


def _dataset(
    name: str, file: str, aliases: tuple[str, ...], channels: int, split: Layout, *,
    linear: tuple[Any, Any], dlinear: tuple[Any, Any], dlinear_may: bool = True,
    formers_epochs: int = 10, patchtst: dict[str, Any] | None, published: dict[str, Metrics],
    seq_len: int = 336, horizons: tuple[int, ...] = (96, 192, 336, 720), formers_window: tuple[int, int] = (96, 48),
    script: str | None = None,
) -> LTSFDataset:
    """Build one dataset's entry from its scripts' values.

    `linear` / `dlinear` are (batch, lr) of the LTSF-Linear scripts, each a value or one value per
    horizon; `dlinear_may` says DLinear's row is the May 2022 result (May script, 1/seq_len init),
    else the August one (the Linear script, random init); `patchtst` holds its script's values;
    `script` is the LTSF-Linear script's name (default: the file's, lower case).
    """
    script = script or file.removesuffix(".csv").lower()
    linear_batch, linear_lr = (_per_horizon(horizons, v) for v in linear)
    dlinear_batch, dlinear_lr = (_per_horizon(horizons, v) for v in dlinear)
    common = {"seq_len": seq_len, "epochs": 10, "patience": 3, "schedule": "type1"}
    settings: dict[str, dict[int, TrainSettings]] = {name_: {} for name_ in MODELS}
    for i, h in enumerate(horizons):
        for model in ("linear", "nlinear"):
            settings[model][h] = TrainSettings(
                _LINEAR_SCRIPT.format(script), linear_batch[i], linear_lr[i], **common, model={"individual": False},
            )
        settings["dlinear"][h] = TrainSettings(
            _DLINEAR_SCRIPT.format(script) if dlinear_may else _LINEAR_SCRIPT.format(script) + " (random init)",
            dlinear_batch[i], dlinear_lr[i], **common, model={"individual": False, "average_init": dlinear_may},
        )
        settings["repeat"][h] = TrainSettings("Zeng et al. (Repeat: the last value; nothing to train)", seq_len=seq_len)
        for model in ("transformer", "informer", "autoformer"):
            settings[model][h] = TrainSettings(
                _FORMERS_SCRIPT, 32, 1e-4, formers_window[0], formers_epochs, 3, "type1",
                model={"label_len": formers_window[1]},
            )
        if patchtst is not None:
            p = dict(patchtst)
            settings["patchtst"][h] = TrainSettings(
                _PATCHTST_SCRIPT.format(p.pop("script")), p.pop("batch_size"), p.pop("lr"), seq_len,
                100, p.pop("patience", 100), p.pop("schedule", "type3"), p.pop("pct_start", None), model=p,
            )
    settings = {k: v for k, v in settings.items() if v}
    sources = {m: ZENG_TABLE2 for m in published if m != "patchtst"}
    if "patchtst" in published:
        sources["patchtst"] = NIE_TABLE3
    return LTSFDataset(name, file, aliases, channels, split, seq_len, horizons, settings, published, sources)


_H = (96, 192, 336, 720)
_ILI_H = (24, 36, 48, 60)
# PatchTST's two architectures in its scripts: the small one (ETTh*, ILI) and the large one
_PATCHTST_SMALL = {"d_model": 16, "num_heads": 4, "num_layers": 3, "ffn_dim": 128, "dropout": 0.3, "head_dropout": 0.0}
_PATCHTST_LARGE = {"d_model": 128, "num_heads": 16, "num_layers": 3, "ffn_dim": 256, "dropout": 0.2, "head_dropout": 0.0}
_PATCH_16_8 = {"patch_len": 16, "stride": 8}

DATASETS: dict[str, LTSFDataset] = {
    d.name: d
    for d in (
        _dataset(
            "ETTh1", "ETTh1.csv", ("etth1",), 7, "ETTh",
            linear=(32, 0.005), dlinear=(8, 1e-4),
            patchtst={"script": "etth1", "batch_size": 128, "lr": 1e-4, **_PATCHTST_SMALL, **_PATCH_16_8},
            published={
                "repeat": _rows(_H, (1.295, 0.713), (1.325, 0.733), (1.323, 0.744), (1.339, 0.756)),
                "linear": _rows(_H, (0.375, 0.397), (0.418, 0.429), (0.479, 0.476), (0.624, 0.592)),
                "nlinear": _rows(_H, (0.374, 0.394), (0.408, 0.415), (0.429, 0.427), (0.440, 0.453)),
                "dlinear": _rows(_H, (0.375, 0.399), (0.405, 0.416), (0.439, 0.443), (0.472, 0.490)),
                "informer": _rows(_H, (0.865, 0.713), (1.008, 0.792), (1.107, 0.809), (1.181, 0.865)),
                "autoformer": _rows(_H, (0.449, 0.459), (0.500, 0.482), (0.521, 0.496), (0.514, 0.512)),
                "patchtst": _rows(_H, (0.375, 0.399), (0.414, 0.421), (0.431, 0.436), (0.449, 0.466)),
            },
        ),
        _dataset(
            "ETTh2", "ETTh2.csv", ("etth2",), 7, "ETTh",
            linear=(32, 0.05), dlinear=(32, 0.05),
            patchtst={"script": "etth2", "batch_size": 128, "lr": 1e-4, **_PATCHTST_SMALL, **_PATCH_16_8},
            published={
                "repeat": _rows(_H, (0.432, 0.422), (0.534, 0.473), (0.591, 0.508), (0.588, 0.517)),
                "linear": _rows(_H, (0.288, 0.352), (0.377, 0.413), (0.452, 0.461), (0.698, 0.595)),
                "nlinear": _rows(_H, (0.277, 0.338), (0.344, 0.381), (0.357, 0.400), (0.394, 0.436)),
                "dlinear": _rows(_H, (0.289, 0.353), (0.383, 0.418), (0.448, 0.465), (0.605, 0.551)),
                "informer": _rows(_H, (3.755, 1.525), (5.602, 1.931), (4.721, 1.835), (3.647, 1.625)),
                "autoformer": _rows(_H, (0.358, 0.397), (0.456, 0.452), (0.482, 0.486), (0.515, 0.511)),
                "patchtst": _rows(_H, (0.274, 0.336), (0.339, 0.379), (0.331, 0.380), (0.379, 0.422)),
            },
        ),
        _dataset(
            "ETTm1", "ETTm1.csv", ("ettm1",), 7, "ETTm",
            linear=(8, 1e-4), dlinear=(8, 1e-4),
            patchtst={
                "script": "ettm1", "batch_size": 128, "lr": 1e-4, "patience": 20, "schedule": "TST", "pct_start": 0.4,
                **_PATCHTST_LARGE, **_PATCH_16_8,
            },
            published={
                "repeat": _rows(_H, (1.214, 0.665), (1.261, 0.690), (1.283, 0.707), (1.319, 0.729)),
                "linear": _rows(_H, (0.308, 0.352), (0.340, 0.369), (0.376, 0.393), (0.440, 0.435)),
                "nlinear": _rows(_H, (0.306, 0.348), (0.349, 0.375), (0.375, 0.388), (0.433, 0.422)),
                "dlinear": _rows(_H, (0.299, 0.343), (0.335, 0.365), (0.369, 0.386), (0.425, 0.421)),
                "informer": _rows(_H, (0.672, 0.571), (0.795, 0.669), (1.212, 0.871), (1.166, 0.823)),
                "autoformer": _rows(_H, (0.505, 0.475), (0.553, 0.496), (0.621, 0.537), (0.671, 0.561)),
                "patchtst": _rows(_H, (0.290, 0.342), (0.332, 0.369), (0.366, 0.392), (0.420, 0.424)),
            },
        ),
        _dataset(
            "ETTm2", "ETTm2.csv", ("ettm2",), 7, "ETTm",
            linear=(32, (0.001, 0.001, 0.01, 0.01)), dlinear=(32, (0.001, 0.001, 0.01, 0.1)),
            patchtst={
                "script": "ettm2", "batch_size": 128, "lr": 1e-4, "patience": 20, "schedule": "TST", "pct_start": 0.4,
                **_PATCHTST_LARGE, **_PATCH_16_8,
            },
            published={
                "repeat": _rows(_H, (0.266, 0.328), (0.340, 0.371), (0.412, 0.410), (0.521, 0.465)),
                "linear": _rows(_H, (0.168, 0.262), (0.232, 0.308), (0.320, 0.373), (0.413, 0.435)),
                "nlinear": _rows(_H, (0.167, 0.255), (0.221, 0.293), (0.274, 0.327), (0.368, 0.384)),
                "dlinear": _rows(_H, (0.167, 0.260), (0.224, 0.303), (0.281, 0.342), (0.397, 0.421)),
                "informer": _rows(_H, (0.365, 0.453), (0.533, 0.563), (1.363, 0.887), (3.379, 1.338)),
                "autoformer": _rows(_H, (0.255, 0.339), (0.281, 0.340), (0.339, 0.372), (0.433, 0.432)),
                "patchtst": _rows(_H, (0.165, 0.255), (0.220, 0.292), (0.278, 0.329), (0.367, 0.385)),
            },
        ),
        _dataset(
            "Weather", "weather.csv", ("weather",), 21, "ratio",
            linear=(16, 1e-4), dlinear=(16, 1e-4), formers_epochs=2,
            patchtst={"script": "weather", "batch_size": 128, "lr": 1e-4, "patience": 20, **_PATCHTST_LARGE, **_PATCH_16_8},
            published={
                "repeat": _rows(_H, (0.259, 0.254), (0.309, 0.292), (0.377, 0.338), (0.465, 0.394)),
                "linear": _rows(_H, (0.176, 0.236), (0.218, 0.276), (0.262, 0.312), (0.326, 0.365)),
                "nlinear": _rows(_H, (0.182, 0.232), (0.225, 0.269), (0.271, 0.301), (0.338, 0.348)),
                "dlinear": _rows(_H, (0.176, 0.237), (0.220, 0.282), (0.265, 0.319), (0.323, 0.362)),
                "informer": _rows(_H, (0.300, 0.384), (0.598, 0.544), (0.578, 0.523), (1.059, 0.741)),
                "autoformer": _rows(_H, (0.266, 0.336), (0.307, 0.367), (0.359, 0.395), (0.419, 0.428)),
                "patchtst": _rows(_H, (0.152, 0.199), (0.197, 0.243), (0.249, 0.283), (0.320, 0.335)),
            },
        ),
        _dataset(
            "Electricity", "electricity.csv", ("electricity", "ecl"), 321, "ratio",
            linear=(16, 0.001), dlinear=(16, 0.001),
            patchtst={
                "script": "electricity", "batch_size": 32, "lr": 1e-4, "patience": 10, "schedule": "TST", "pct_start": 0.2,
                **_PATCHTST_LARGE, **_PATCH_16_8,
            },
            published={
                "repeat": _rows(_H, (1.588, 0.946), (1.595, 0.950), (1.617, 0.961), (1.647, 0.975)),
                "linear": _rows(_H, (0.140, 0.237), (0.153, 0.250), (0.169, 0.268), (0.203, 0.301)),
                "nlinear": _rows(_H, (0.141, 0.237), (0.154, 0.248), (0.171, 0.265), (0.210, 0.297)),
                "dlinear": _rows(_H, (0.140, 0.237), (0.153, 0.249), (0.169, 0.267), (0.203, 0.301)),
                "informer": _rows(_H, (0.274, 0.368), (0.296, 0.386), (0.300, 0.394), (0.373, 0.439)),
                "autoformer": _rows(_H, (0.201, 0.317), (0.222, 0.334), (0.231, 0.338), (0.254, 0.361)),
                "patchtst": _rows(_H, (0.130, 0.222), (0.148, 0.240), (0.167, 0.261), (0.202, 0.291)),
            },
        ),
        _dataset(
            "Traffic", "traffic.csv", ("traffic",), 862, "ratio",
            linear=(16, 0.05), dlinear=(16, 0.05), formers_epochs=3,
            patchtst={
                "script": "traffic", "batch_size": 24, "lr": 1e-4, "patience": 10, "schedule": "TST", "pct_start": 0.2,
                **_PATCHTST_LARGE, **_PATCH_16_8,
            },
            published={
                "repeat": _rows(_H, (2.723, 1.079), (2.756, 1.087), (2.791, 1.095), (2.811, 1.097)),
                "linear": _rows(_H, (0.410, 0.282), (0.423, 0.287), (0.436, 0.295), (0.466, 0.315)),
                "nlinear": _rows(_H, (0.410, 0.279), (0.423, 0.284), (0.435, 0.290), (0.464, 0.307)),
                "dlinear": _rows(_H, (0.410, 0.282), (0.423, 0.287), (0.436, 0.296), (0.466, 0.315)),
                "informer": _rows(_H, (0.719, 0.391), (0.696, 0.379), (0.777, 0.420), (0.864, 0.472)),
                "autoformer": _rows(_H, (0.613, 0.388), (0.616, 0.382), (0.622, 0.337), (0.660, 0.408)),
                "patchtst": _rows(_H, (0.367, 0.251), (0.385, 0.259), (0.398, 0.265), (0.434, 0.287)),
            },
        ),
        _dataset(
            "Exchange", "exchange_rate.csv", ("exchange", "exchange_rate", "exchange-rate"), 8, "ratio",
            linear=((8, 8, 32, 32), 0.0005), dlinear=((8, 8, 32, 32), (0.0005, 0.0005, 0.0005, 0.005)),
            formers_epochs=1, patchtst=None,
            published={
                "repeat": _rows(_H, (0.081, 0.196), (0.167, 0.289), (0.305, 0.396), (0.823, 0.681)),
                "linear": _rows(_H, (0.082, 0.207), (0.167, 0.304), (0.328, 0.432), (0.964, 0.750)),
                "nlinear": _rows(_H, (0.089, 0.208), (0.180, 0.300), (0.331, 0.415), (1.033, 0.780)),
                "dlinear": _rows(_H, (0.081, 0.203), (0.157, 0.293), (0.305, 0.414), (0.643, 0.601)),
                "informer": _rows(_H, (0.847, 0.752), (1.204, 0.895), (1.672, 1.036), (2.478, 1.310)),
                "autoformer": _rows(_H, (0.197, 0.323), (0.300, 0.369), (0.509, 0.524), (1.447, 0.941)),
            },
        ),
        _dataset(
            "ILI", "national_illness.csv", ("ili", "illness", "national_illness"), 7, "ratio",
            linear=(32, 0.01), dlinear=(32, 0.01), dlinear_may=False,
            seq_len=104, horizons=_ILI_H, formers_window=(36, 18), script="ili",
            patchtst={
                "script": "illness", "batch_size": 16, "lr": 0.0025, "schedule": "constant",
                **_PATCHTST_SMALL, "patch_len": 24, "stride": 2,
            },
            published={
                "repeat": _rows(_ILI_H, (6.587, 1.701), (7.130, 1.884), (6.575, 1.798), (5.893, 1.677)),
                "linear": _rows(_ILI_H, (1.947, 0.985), (2.182, 1.036), (2.256, 1.060), (2.390, 1.104)),
                "nlinear": _rows(_ILI_H, (1.683, 0.858), (1.703, 0.859), (1.719, 0.884), (1.819, 0.917)),
                "dlinear": _rows(_ILI_H, (2.215, 1.081), (1.963, 0.963), (2.130, 1.024), (2.368, 1.096)),
                "informer": _rows(_ILI_H, (5.764, 1.677), (4.755, 1.467), (4.763, 1.469), (5.264, 1.564)),
                "autoformer": _rows(_ILI_H, (3.483, 1.287), (3.103, 1.148), (2.669, 1.085), (2.770, 1.125)),
                "patchtst": _rows(_ILI_H, (1.522, 0.814), (1.430, 0.834), (1.673, 0.854), (1.529, 0.862)),
            },
        ),
    )
}


def find_dataset(name: str) -> LTSFDataset | None:
    """The dataset called `name` (its paper name or an alias, any case), or None when unknown."""
    key = name.strip().lower()
    for dataset in DATASETS.values():
        if key == dataset.name.lower() or key in dataset.aliases or key == dataset.file.lower().removesuffix(".csv"):
            return dataset
    return None
