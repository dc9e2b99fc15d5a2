"""`timeseries.published` against the papers' tables and the official scripts, read by hand."""

from __future__ import annotations

import pytest

from timeseries.bench import settings_for, settings_overrides, steps_per_epoch
from timeseries.published import DATASETS, find_dataset

TABLE2 = ("ETTh1", "ETTh2", "ETTm1", "ETTm2", "Weather", "Electricity", "Traffic", "Exchange", "ILI")


def test_the_nine_datasets_of_table_2_with_their_files_and_splits():
    assert tuple(DATASETS) == TABLE2
    files = {d.name: (d.file, d.split, d.channels) for d in DATASETS.values()}
    assert files["ETTm1"] == ("ETTm1.csv", "ETTm", 7)
    assert files["ETTh2"] == ("ETTh2.csv", "ETTh", 7)
    assert files["Weather"] == ("weather.csv", "ratio", 21)
    assert files["Electricity"] == ("electricity.csv", "ratio", 321)
    assert files["Traffic"] == ("traffic.csv", "ratio", 862)
    assert files["Exchange"] == ("exchange_rate.csv", "ratio", 8)
    assert files["ILI"] == ("national_illness.csv", "ratio", 7)


@pytest.mark.parametrize(("name", "expected"), [
    ("ETTm1", "ETTm1"), ("ettm1", "ETTm1"), ("weather", "Weather"), ("exchange_rate", "Exchange"),
    ("national_illness", "ILI"), ("illness", "ILI"), ("ECL", "Electricity"), ("my_series", None),
])
def test_names_and_aliases(name, expected):
    found = find_dataset(name)
    assert (found.name if found else None) == expected


def test_ettm1_settings_are_its_scripts():
    ettm1 = DATASETS["ETTm1"]
    assert (ettm1.seq_len, ettm1.horizons) == (336, (96, 192, 336, 720))
    for model in ("linear", "nlinear", "dlinear"):
        s = ettm1.settings[model][96]
        # scripts/EXP-LongForecasting/Linear/ettm1.sh and DLinear/ettm1.sh: --batch_size 8 --learning_rate 0.0001
        assert (s.batch_size, s.lr, s.seq_len, s.epochs, s.patience, s.schedule) == (8, 1e-4, 336, 10, 3, "type1")
        assert s.model["individual"] is False
    assert ettm1.settings["dlinear"][720].model["average_init"] is True
    assert "b1c7019" in ettm1.settings["dlinear"][96].source
    assert "Linear/ettm1.sh" in ettm1.settings["nlinear"][96].source
    p = ettm1.settings["patchtst"][336]
    assert (p.batch_size, p.lr, p.epochs, p.patience, p.schedule, p.pct_start) == (128, 1e-4, 100, 20, "TST", 0.4)
    assert dict(p.model) == {"d_model": 128, "num_heads": 16, "num_layers": 3, "ffn_dim": 256, "dropout": 0.2,
                             "head_dropout": 0.0, "patch_len": 16, "stride": 8}
    assert ettm1.settings["informer"][96].seq_len == 96 and ettm1.settings["informer"][96].model == {"label_len": 48}


def test_ili_settings_are_its_scripts():
    ili = DATASETS["ILI"]
    assert (ili.seq_len, ili.horizons) == (104, (24, 36, 48, 60))
    for model in ("linear", "nlinear", "dlinear"):
        s = ili.settings[model][60]
        assert (s.batch_size, s.lr, s.seq_len) == (32, 0.01, 104)  # ili.sh: --batch_size 32 --learning_rate 0.01
    assert ili.settings["dlinear"][24].model["average_init"] is False  # the row re-run after the August change
    p = ili.settings["patchtst"][24]  # illness.sh
    assert (p.batch_size, p.lr, p.seq_len, p.schedule, p.patience) == (16, 0.0025, 104, "constant", 100)
    assert (p.model["patch_len"], p.model["stride"], p.model["d_model"]) == (24, 2, 16)
    assert (ili.settings["autoformer"][36].seq_len, ili.settings["autoformer"][36].model["label_len"]) == (36, 18)


def test_settings_that_change_with_the_horizon():
    # ETTm2: lr 0.001 / 0.001 / 0.01 / 0.01 (Linear, August) and ... / 0.1 at 720 (DLinear, May)
    assert [DATASETS["ETTm2"].settings["linear"][h].lr for h in (96, 192, 336, 720)] == [0.001, 0.001, 0.01, 0.01]
    assert DATASETS["ETTm2"].settings["dlinear"][720].lr == 0.1
    # Exchange: batch 8 / 8 / 32 / 32
    assert [DATASETS["Exchange"].settings["nlinear"][h].batch_size for h in (96, 192, 336, 720)] == [8, 8, 32, 32]
    assert DATASETS["Exchange"].settings["dlinear"][720].lr == 0.005
    # the vanilla Transformer family trains one epoch on Exchange, two on Weather, three on Traffic
    assert [DATASETS[d].settings["transformer"][96].epochs for d in ("Exchange", "Weather", "Traffic", "ETTh1")] == [1, 2, 3, 10]


def test_published_rows_spot_checked_against_the_papers():
    # Zeng et al. Table 2, read off the paper (not off LTSF-Benchmark.md, which swaps NLinear and DLinear here)
    exchange, weather, ili = DATASETS["Exchange"].published, DATASETS["Weather"].published, DATASETS["ILI"].published
    assert exchange["dlinear"][96] == (0.081, 0.203) and exchange["nlinear"][96] == (0.089, 0.208)
    assert exchange["dlinear"][720] == (0.643, 0.601) and exchange["nlinear"][720] == (1.033, 0.780)
    assert weather["nlinear"][96] == (0.182, 0.232) and weather["dlinear"][96] == (0.176, 0.237)
    assert ili["nlinear"][24] == (1.683, 0.858) and ili["dlinear"][24] == (2.215, 1.081)
    assert DATASETS["Electricity"].published["nlinear"][720] == (0.210, 0.297)
    assert DATASETS["Traffic"].published["nlinear"][336] == (0.435, 0.290)
    # the ETT rows are not swapped anywhere
    assert DATASETS["ETTm1"].published["dlinear"][96] == (0.299, 0.343)
    assert DATASETS["ETTh2"].published["nlinear"][720] == (0.394, 0.436)
    assert DATASETS["ETTh1"].published["repeat"][336] == (1.323, 0.744)
    # Nie et al. Table 3, PatchTST/42 (look-back 336), not the PatchTST/64 column (0.370 on ETTh1 at 96)
    assert DATASETS["ETTh1"].published["patchtst"][96] == (0.375, 0.399)
    assert DATASETS["ETTm1"].published["patchtst"][720] == (0.420, 0.424)
    assert DATASETS["ILI"].published["patchtst"][36] == (1.430, 0.834)
    assert "patchtst" not in DATASETS["Exchange"].published and "patchtst" not in DATASETS["Exchange"].settings


def test_every_table_2_row_is_complete():
    for dataset in DATASETS.values():
        for model in ("repeat", "linear", "nlinear", "dlinear", "informer", "autoformer"):
            assert set(dataset.published[model]) == set(dataset.horizons), (dataset.name, model)
            assert all(0 < mse < 10 and 0 < mae < 3 for mse, mae in dataset.published[model].values())
        for model, per_horizon in dataset.settings.items():
            assert set(per_horizon) == set(dataset.horizons), (dataset.name, model)
        # in Table 2 the best linear model is never worse than Repeat (they tie on Exchange at 96 and 336)
        best = {h: min(dataset.published[m][h][0] for m in ("linear", "nlinear", "dlinear")) for h in dataset.horizons}
        assert all(best[h] <= dataset.published["repeat"][h][0] for h in dataset.horizons), dataset.name


def test_a_horizon_outside_the_paper_takes_the_nearest_ones_settings():
    settings, note = settings_for(DATASETS["ETTh1"], "dlinear", 24)
    assert settings is DATASETS["ETTh1"].settings["dlinear"][96] and "horizon 96" in note
    assert settings_for(DATASETS["Exchange"], "patchtst", 96) == (None, "")


def test_overrides_carry_every_setting():
    s = DATASETS["ETTm1"].settings["dlinear"][96]
    out = settings_overrides(s, seq_len=336, horizon=96, epochs=10, path=None, split="ETTm")
    assert "--data.init_args.batch_size=8" in out and "--model.init_args.optimizer.init_args.lr=0.0001" in out
    assert "--data.init_args.split=ETTm" in out and "--data.init_args.seq_len=336" in out
    assert "--model.init_args.model.init_args.average_init=true" in out and "--trainer.max_epochs=10" in out
    assert any(a.startswith("--trainer.callbacks=") and '"patience": 3' in a for a in out)
    assert any("DelayedExponentialLR" in a and '"gamma": 0.5' in a for a in out)
    constant = settings_overrides(DATASETS["ILI"].settings["patchtst"][24], seq_len=104, horizon=24, epochs=100, path=None, split="ratio")
    assert "--model.init_args.lr_scheduler=null" in constant


def test_one_cycle_spans_the_epochs_run(make_csv):
    # ETTm1 at 96: 34560 train rows -> 34560 - 336 - 96 + 1 = 34129 windows -> 266 batches of 128
    assert steps_per_epoch(None, "ETTm", 336, 96, 128) == 34129 // 128 == 266
    p = DATASETS["ETTm1"].settings["patchtst"][96]
    out = settings_overrides(p, seq_len=336, horizon=96, epochs=20, path=None, split="ETTm")
    (cycle,) = [a for a in out if a.startswith("--model.init_args.lr_scheduler=")]
    assert "torch.optim.lr_scheduler.OneCycleLR" in cycle
    assert f'"total_steps": {20 * 266}' in cycle and '"pct_start": 0.4' in cycle and '"max_lr": 0.0001' in cycle
    assert "--model.init_args.scheduler_interval=step" in out
    capped = settings_overrides(p, seq_len=336, horizon=96, epochs=20, path=None, split="ETTm", max_steps=50)
    assert any('"total_steps": 50' in a for a in capped)
    # a 7:1:2 file: 400 rows -> 280 train rows -> 280 - 104 - 24 + 1 = 153 windows -> 9 batches of 16
    path = make_csv("ili.csv", rows=400)
    assert steps_per_epoch(str(path), "ratio", 104, 24, 16) == 153 // 16 == 9


def test_describe_names_what_runs():
    text = DATASETS["ETTm1"].settings["patchtst"][96].describe()
    assert text.startswith("batch 128, lr 0.0001, seq_len 336, 100 epochs, patience 20, lradj TST pct_start 0.4")
    assert "d_model 128" in text and "stride 8" in text


def test_steps_per_epoch_equal_the_datamodules_loader(make_csv):
    from timeseries.data import ETTDataModule

    path = make_csv("electricity.csv", rows=400)
    for batch in (16, 32, 500):
        dm = ETTDataModule(path=str(path), dataset_name="Electricity", seq_len=48, pred_len=8, batch_size=batch)
        dm.setup()
        assert steps_per_epoch(str(path), "ratio", 48, 8, batch) == len(dm.train_dataloader())
