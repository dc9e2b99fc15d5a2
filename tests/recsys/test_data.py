"""Schema, train-only vocabularies, OOV, numeric transforms, readers of the real formats, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recsys.data import (
    CTRDataModule,
    FeatureSchema,
    Preprocessor,
    make_click_log,
    read_click_log,
    split_frame,
)


def frame(rows: dict[str, list]) -> pd.DataFrame:
    return pd.DataFrame(rows, dtype=object)


def test_vocabulary_is_built_on_train_only_with_min_count_and_oov():
    schema = FeatureSchema(label="y", categorical=["c"], min_count=2)
    train = frame({"y": ["0", "1", "0", "1", "1"], "c": ["a", "a", "b", "b", "rare"]})
    pre = Preprocessor(schema).fit(train)
    assert pre.vocab["c"] == {"a": 1, "b": 2}  # "rare" (count 1) is below min_count
    test = frame({"y": ["1", "0", "1", "0"], "c": ["b", "only_in_test", None, "rare"]})
    out = pre.transform(test)
    assert out["categorical"][:, 0].tolist() == [2, 0, 0, 0]  # unseen, missing and rare -> OOV 0
    assert out["label"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert pre.layout.categorical == (3,)


def test_datamodule_vocabulary_ignores_validation_and_test_values(tmp_path):
    rows = make_click_log(400, seed=3)
    rows.loc[rows.index[-40:], "cat0"] = "late_value"
    path = tmp_path / "clicks.csv"
    rows.to_csv(path, index=False)
    dm = CTRDataModule(format="csv", path=str(path), categorical=["cat0", "cat1"], numeric=["num0"], seed=0)
    dm.setup()
    train_values = set(dm.frames["train"]["cat0"].dropna())
    assert set(dm.preprocessor.vocab["cat0"]) == train_values
    for split in ("val", "test"):
        unseen = ~dm.frames[split]["cat0"].isin(train_values)
        assert (dm.datasets[split].tensors["categorical"][torch.tensor(unseen.to_numpy()), 0] == 0).all()


def test_numeric_log_and_bucketize_with_missing_values():
    train = frame({"y": ["0", "1", "0", "1"], "x": ["1", "3", None, "100"]})
    pre = Preprocessor(FeatureSchema(label="y", numeric=["x"])).fit(train)
    assert pre.numeric_stats["x"]["median"] == 3.0
    values = np.log1p(np.array([1, 3, 3, 100.0]))  # missing filled with the train median
    out = pre.transform(train)["numeric"][:, 0].numpy()
    np.testing.assert_allclose(out, (values - values.mean()) / values.std(), rtol=1e-5)
    assert pre.filled_values == 1
    buckets = Preprocessor(FeatureSchema(label="y", numeric=["x"], numeric_transform="bucketize", num_buckets=2)).fit(train)
    ids = buckets.transform(train)["categorical"][:, 0].tolist()
    assert ids[2] == 0 and ids[0] < ids[3] and buckets.layout.numeric == 0


def test_multi_valued_tokens_pad_and_oov():
    schema = FeatureSchema(label="y", multi_valued={"g": "|"}, max_values=3)
    pre = Preprocessor(schema).fit(frame({"y": ["0", "1"], "g": ["a|b", "a"]}))
    out = pre.transform(frame({"y": ["0", "1"], "g": ["a|zzz|b|a", None]}))["multi_valued"][:, 0]
    assert out.tolist() == [[2, 1, 3], [0, 0, 0]]  # a=2 (most frequent), OOV=1, b=3, truncated; 0 = padding


def test_preprocessing_state_round_trips(tmp_path):
    pre = Preprocessor(FeatureSchema(label="y", categorical=["c"], numeric=["x"], multi_valued={"g": ";"}))
    pre.fit(frame({"y": ["0", "1", "1"], "c": ["a", "b", "b"], "x": ["1", "2", None], "g": ["p;q", "q", ""]}))
    torch.save({"state": pre.state_dict()}, tmp_path / "state.pt")
    restored = Preprocessor.from_state_dict(torch.load(tmp_path / "state.pt", weights_only=True)["state"])
    rows = frame({"y": ["1", "0"], "c": ["b", "new"], "x": ["5", None], "g": ["q;p", "z"]})
    for key, value in pre.transform(rows).items():
        torch.testing.assert_close(restored.transform(rows)[key], value)


def test_split_is_stratified_and_deterministic():
    rows = make_click_log(1000, seed=1)
    a = split_frame(rows, "label", (0.8, 0.1, 0.1), 5, "x")
    b = split_frame(rows, "label", (0.8, 0.1, 0.1), 5, "x")
    assert [len(a[s]) for s in ("train", "val", "test")] == [800, 100, 100]
    pd.testing.assert_frame_equal(a["test"], b["test"])
    rate = (rows["label"] == "1").mean()
    assert abs((a["val"]["label"] == "1").mean() - rate) < 0.01


# ---- readers of the real formats (the shared samples) ----------------------------------------------
def test_criteo_sample_csv_with_header(shared_data):
    clicks = read_click_log(shared_data / "criteo_sample.txt", "criteo")
    assert len(clicks.frame) == 200 and clicks.bad_lines == 0
    assert clicks.schema.numeric == [f"I{i}" for i in range(1, 14)] and len(clicks.schema.categorical) == 26


def test_criteo_released_tsv_without_header(shared_data, tmp_path):
    sample = pd.read_csv(shared_data / "criteo_sample.txt", dtype=str)
    tsv = tmp_path / "train.txt"
    sample.head(30).to_csv(tsv, sep="\t", header=False, index=False)
    clicks = read_click_log(tsv, "criteo")
    assert len(clicks.frame) == 30
    assert clicks.frame["C1"].tolist() == sample["C1"].head(30).tolist()


def test_avazu_sample(shared_data):
    dm = CTRDataModule(format="avazu", path=str(shared_data / "avazu_sample.txt"))
    dm.setup()
    assert dm.dataset_name == "avazu_sample" and "hour_of_day" in dm.layout.names and "id" not in dm.layout.names
    assert sum(len(dm.datasets[s]) for s in ("train", "val", "test")) == 100


def test_movielens_joined_csv_and_folder(shared_data, tmp_path):
    clicks = read_click_log(shared_data / "movielens_sample.txt", "movielens", rating_threshold=4)
    ratings = pd.read_csv(shared_data / "movielens_sample.txt")
    assert clicks.frame["label"].astype(int).tolist() == (ratings["rating"] >= 4).astype(int).tolist()
    assert clicks.schema.multi_valued == {"genres": "|"}
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "ratings.dat").write_text("1::10::5::0\n2::10::2::0\n1::20::4::0\n")
    (tmp_path / "ml" / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    (tmp_path / "ml" / "movies.dat").write_text("10::Toy Story (1995)::Animation|Comedy\n20::Heat (1995)::Action\n")
    folder = read_click_log(tmp_path / "ml", "movielens")
    assert folder.frame["label"].tolist() == ["1", "0", "1"] and folder.frame["genres"].iloc[2] == "Action"


def test_libfm_format(tmp_path):
    path = tmp_path / "train.libfm"
    path.write_text("1 0:5 1:7\n-1 0:3 1:7:1 2:9:0\n0 0:5\n")
    clicks = read_click_log(path, "libfm")
    assert clicks.frame["label"].tolist() == ["1", "0", "0"]
    assert clicks.frame["f0"].tolist() == ["5", "3", "5"] and clicks.schema.categorical == ["f0", "f1"]


# ---- bad input -----------------------------------------------------------------------------------------
def test_missing_label_or_schema_column(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame({"click": [0, 1], "a": ["u", "v"]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"x.csv: label column 'label' missing; found \['click', 'a'\]"):
        read_click_log(path, "csv")
    dm = CTRDataModule(format="csv", path=str(path), label="click", categorical=["a", "b"])
    with pytest.raises(ValueError, match=r"x.csv: column\(s\) \['b'\] of the schema missing"):
        dm.setup()


def test_label_that_is_not_binary(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame({"label": [0, 1, 2] * 10, "a": ["u", "v", "w"] * 10}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"label must be binary 0/1; found values \[0, 1, 2\]"):
        CTRDataModule(format="csv", path=str(path)).setup()


def test_empty_split(tmp_path):
    path = tmp_path / "x.csv"
    pd.DataFrame({"label": [0, 1, 0, 1], "a": ["u", "v", "w", "z"]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="x.csv: the val split is empty"):
        CTRDataModule(format="csv", path=str(path)).setup()


def test_unparseable_lines_are_skipped_and_counted_or_raise(tmp_path, caplog):
    good = "\t".join(["1", *["2"] * 13, *["ab"] * 26])
    lines = [good] * 98 + ["0\tonly\tthree", "\t".join(["0", "x1", *["2"] * 12, *["ab"] * 26])]
    path = tmp_path / "day_0.txt"
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level("WARNING"):
        clicks = read_click_log(path, "criteo", max_bad_fraction=0.05)
    assert clicks.bad_lines == 2 and len(clicks.frame) == 98
    assert "skipped 2 unparseable line(s) of 100" in caplog.text
    with pytest.raises(ValueError, match=r"day_0.txt: 2 of 100 lines unparseable \(2.0% > max_bad_fraction 1.0%\)"):
        read_click_log(path, "criteo", max_bad_fraction=0.01)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt: no such file"):
        read_click_log(tmp_path / "nope.txt", "criteo")
