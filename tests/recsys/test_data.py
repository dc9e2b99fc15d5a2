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

from .conftest import CRITEO_CATEGORICAL, nfm_encode, write_nfm_folder


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


# ---- libFM / libFFM: NFM's one-hot split files, ragged lines, libFFM fields --------------------------
def test_libfm_one_hot_lines_are_read_by_position(criteo, tmp_path):
    indices, lines = nfm_encode(criteo)
    path = tmp_path / "criteo.train.libfm"
    path.write_text("\n".join(lines) + "\n")
    clicks = read_click_log(path, "libfm")
    assert clicks.layout == "positional" and clicks.bad_lines == 0 and len(clicks.frame) == 200
    assert clicks.schema.categorical == [f"p{k}" for k in range(26)] and not clicks.schema.multi_valued
    assert clicks.frame["label"].tolist() == criteo["label"].tolist()
    for k in (0, 5, 21, 25):  # field k holds the k-th token's index
        assert clicks.frame[f"p{k}"].tolist() == [str(i) for i in indices[:, k]]
    # one category per distinct value of the Criteo column (missing included), nothing across fields
    pre = Preprocessor(clicks.schema).fit(clicks.frame)
    assert [len(pre.vocab[f"p{k}"]) for k in range(26)] == criteo[CRITEO_CATEGORICAL].nunique(dropna=False).tolist()


def test_libfm_tensors_are_rows_by_fields_whatever_the_number_of_indices(criteo, tmp_path):
    indices, lines = nfm_encode(criteo)
    distinct = len(np.unique(indices))
    assert distinct > 80 * indices.shape[1]  # 2,278 distinct indices, 26 fields
    path = tmp_path / "criteo.libfm"
    path.write_text("\n".join(lines) + "\n")
    clicks = read_click_log(path, "libfm")
    assert clicks.frame.shape == (200, 1 + 26)  # label + one column per field, not per index
    pre = Preprocessor(clicks.schema).fit(clicks.frame)
    out = pre.transform(clicks.frame)
    assert out["categorical"].shape == (200, 26) and out["multi_valued"].numel() == 0
    # the same rows with every index renumbered into a range 1,000x wider: the same tensor sizes
    wide = [" ".join([line.split()[0], *(f"{1000 * i + 7}:1" for i in row)]) for line, row in zip(lines, indices.tolist(), strict=True)]
    path.write_text("\n".join(wide) + "\n")
    clicks_wide = read_click_log(path, "libfm")
    pre_wide = Preprocessor(clicks_wide.schema).fit(clicks_wide.frame)
    out_wide = pre_wide.transform(clicks_wide.frame)
    assert out_wide["categorical"].shape == (200, 26) and pre_wide.layout.categorical == pre.layout.categorical


def test_ragged_libfm_lines_become_one_bag_of_indices(criteo, tmp_path):
    indices, _ = nfm_encode(criteo)
    missing = criteo[CRITEO_CATEGORICAL].isna().to_numpy()
    # libFM writers often leave missing values out: the lines are then of different lengths
    bags = [[int(i) for i, m in zip(row, gone, strict=True) if not m] for row, gone in zip(indices, missing, strict=True)]
    lines = [" ".join([lab, *(f"{i}:1" for i in bag)]) for lab, bag in zip(criteo["label"], bags, strict=True)]
    path = tmp_path / "ragged.libfm"
    path.write_text("\n".join(lines) + "\n")
    clicks = read_click_log(path, "libfm")
    longest = max(len(b) for b in bags)
    assert clicks.layout == "bag" and clicks.schema.categorical == []
    assert clicks.schema.multi_valued == {"features": " "} and clicks.schema.max_values == longest == 26
    pre = Preprocessor(clicks.schema).fit(clicks.frame)
    ids = pre.transform(clicks.frame)["multi_valued"]
    assert ids.shape == (200, 1, longest) and pre.layout.num_fields == 1
    back = {v: k for k, v in pre.multi_vocab["features"].items()}
    for r in (0, 7, 199):
        assert sorted(int(back[i]) for i in ids[r, 0].tolist() if i > 0) == sorted(bags[r])


def test_libfm_weighted_values_become_a_bag_and_zero_values_are_absent(tmp_path, caplog):
    path = tmp_path / "weighted.libfm"
    path.write_text("1 3:0.5 8:1 9:0\n-1 4:2 8:1 9:1\n")
    with caplog.at_level("WARNING"):
        clicks = read_click_log(path, "libfm")
    assert clicks.layout == "bag" and clicks.frame["features"].tolist() == ["3 8", "4 8 9"]
    assert "the values of 2 token(s)" in caplog.text


def test_truncated_or_garbled_libfm_lines_are_skipped_and_counted(criteo, tmp_path, caplog):
    _, lines = nfm_encode(criteo)
    lines[-1] = " ".join(lines[-1].split()[:5])  # a truncated last line
    lines[50] = "1 12:one 13:1"
    path = tmp_path / "cut.libfm"
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level("WARNING"):
        clicks = read_click_log(path, "libfm", max_bad_fraction=0.02)
    assert clicks.layout == "positional" and clicks.bad_lines == 2 and len(clicks.frame) == 198
    assert "skipped 2 unparseable line(s) of 200" in caplog.text
    # more lines of another length than max_bad_fraction allows: not the one-hot layout, a bag
    assert read_click_log(path, "libfm", max_bad_fraction=0.005).layout == "bag"
    with pytest.raises(ValueError, match=r"cut.libfm: 2 of 200 lines unparseable \(1.0% > max_bad_fraction 0.5%\)"):
        read_click_log(path, "libfm", max_bad_fraction=0.005, libfm_layout="positional")


def test_libffm_fields(tmp_path):
    path = tmp_path / "train.libffm"
    path.write_text("1 0:5:1 1:7:1\n-1 0:3:1 1:7:1 2:9:0 1:8:1\n0 0:5:1\n1 3:2\n")
    clicks = read_click_log(path, "libfm", max_bad_fraction=0.5)
    assert clicks.layout == "fields" and clicks.bad_lines == 1  # "3:2" is a libFM token in a libFFM file
    assert clicks.frame["label"].tolist() == ["1", "0", "0"] and clicks.schema.categorical == ["f0", "f1"]
    assert clicks.frame["f0"].tolist() == ["5", "3", "5"]
    assert clicks.frame["f1"].tolist()[:2] == ["7", "8"] and pd.isna(clicks.frame["f1"].iloc[2])  # last token of a field wins


# ---- folders of predefined split files ---------------------------------------------------------------
def test_folder_of_nfm_libfm_splits_is_used_as_given(criteo, tmp_path):
    folder = write_nfm_folder(criteo, tmp_path / "criteo_nfm")
    (folder / "README.md").write_text("NFM-style split")
    dm = CTRDataModule(format="libfm", path=str(folder), seed=0)
    dm.setup()
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [140, 40, 20]
    assert dm.split_protocol == "predefined: train=criteo.train.libfm val=criteo.validation.libfm test=criteo.test.libfm"
    assert dm.dataset_name == "criteo_nfm" and dm.libfm_read == "positional" and dm.layout.num_fields == 26
    # the files' rows in their order, vocabularies from the train file only
    labels = criteo["label"].astype(float).tolist()
    assert dm.datasets["test"].tensors["label"].tolist() == labels[180:]
    assert set(dm.preprocessor.vocab["p3"]) == set(dm.frames["train"]["p3"])
    unseen = ~dm.frames["test"]["p3"].isin(set(dm.frames["train"]["p3"])).to_numpy()
    assert unseen.any() and (dm.datasets["test"].tensors["categorical"][torch.from_numpy(unseen), 3] == 0).all()
    # rows to score are read with the training layout
    dm_predict = CTRDataModule(format="libfm", path=str(folder), predict_path=str(folder / "criteo.test.libfm"))
    dm_predict.setup("predict")
    torch.testing.assert_close(dm_predict.datasets["predict"].tensors["categorical"], dm.datasets["test"].tensors["categorical"])


def test_folder_of_fuxictr_csv_splits_is_used_as_given(criteo, tmp_path):
    folder = tmp_path / "criteo_x1"
    folder.mkdir()
    for name, rows in (("train", slice(0, 120)), ("valid", slice(120, 160)), ("test", slice(160, 200))):
        criteo.iloc[rows].to_csv(folder / f"{name}.csv", index=False)
    (folder / "feature_map.json").write_text("{}")  # FuxiCTR's preprocessing outputs are not split files
    (folder / "train.h5").write_bytes(b"\x89HDF")
    dm = CTRDataModule(format="criteo", path=str(folder))
    dm.setup()
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [120, 40, 40]
    assert dm.split_protocol == "predefined: train=train.csv val=valid.csv test=test.csv"
    assert dm.frames["val"]["C1"].tolist() == criteo["C1"].iloc[120:160].tolist()
    train_median = np.median(pd.to_numeric(criteo["I2"].iloc[:120]).dropna())
    assert dm.preprocessor.numeric_stats["I2"]["median"] == train_median


def test_folder_without_validation_file_carves_it_from_train(criteo, tmp_path):
    folder = write_nfm_folder(criteo, tmp_path / "two", sizes=(180, 20), names=("train", "test"))
    dm = CTRDataModule(format="libfm", path=str(folder), split=(0.8, 0.1, 0.1), seed=3)
    dm.setup()
    assert len(dm.datasets["train"]) + len(dm.datasets["val"]) == 180 and len(dm.datasets["test"]) == 20
    assert len(dm.datasets["val"]) == 20  # 1/9 of the train file: split[1] / (split[0] + split[1])
    assert dm.split_protocol == ("predefined: train=criteo.train.libfm test=criteo.test.libfm; "
                                 "no validation file: val = 11.1% of criteo.train.libfm, stratified, seed 3")


def test_folder_without_a_train_file_lists_what_it_found(criteo, tmp_path):
    folder = tmp_path / "no_train"
    folder.mkdir()
    for name in ("valid.csv", "test.csv", "README.md"):
        (folder / name).write_text("label,C1\n0,a\n")
    with pytest.raises(ValueError, match=r"no_train: a folder of split files needs a train and a test file .*"
                                         r"no train file among \['README.md', 'test.csv', 'valid.csv'\]"):
        CTRDataModule(format="csv", path=str(folder)).setup()


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
