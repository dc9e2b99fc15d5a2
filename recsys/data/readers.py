"""Readers for the public click-log formats; each returns the rows and the format's default schema.

* `criteo`: label, 13 integer features I1-I13, 26 hashed categorical C1-C26. The released
  files are tab-separated without a header; the CSV-with-header sample (`label,I1,...,C26`) is
  recognized by its first line.
* `avazu`: CSV with header; label `click`; `id` dropped; `hour` (YYMMDDHH) becomes the hour of
  day and the weekday; every other column is categorical.
* `movielens`: a joined CSV (`user_id`, `movie_id` or `item_id`, `rating`, optional user and movie
  columns, `genres` joined by `|`) or a MovieLens-1M folder (`ratings.dat`, `users.dat`,
  `movies.dat`, `::`-separated); the click label is `rating >= rating_threshold`.
* `libfm`: `label field:index[:value] ...` per line (libFFM style); a field becomes a categorical
  column `f<field>`; labels -1/1 or 0/1.
* `csv`: any CSV with a header; the schema must be given.

Unparseable lines (wrong field count, a non-numeric number, a missing or non-numeric label) are
skipped and counted; above `max_bad_fraction` of the lines the reader raises naming the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from recsys.data.schema import FeatureSchema

log = logging.getLogger(__name__)

Format = Literal["synthetic", "criteo", "avazu", "movielens", "libfm", "csv"]
FORMATS: tuple[str, ...] = ("synthetic", "criteo", "avazu", "movielens", "libfm", "csv")

CRITEO_NUMERIC = [f"I{i}" for i in range(1, 14)]
CRITEO_CATEGORICAL = [f"C{i}" for i in range(1, 27)]
CRITEO_COLUMNS = ["label", *CRITEO_NUMERIC, *CRITEO_CATEGORICAL]
MOVIELENS_CATEGORICAL = ["user_id", "movie_id", "gender", "age", "occupation", "zip"]


@dataclass
class ClickLog:
    """Rows of a click log: `frame` (strings, label column included), its default schema, and counts."""

    frame: pd.DataFrame
    schema: FeatureSchema
    bad_lines: int = 0
    total_lines: int = 0


def read_click_log(
    path: str | Path, format: Format, *, label: str | None = None, rating_threshold: float = 4.0,
    max_bad_fraction: float = 0.01, require_label: bool = True,
) -> ClickLog:
    """Read `path` in `format`; `label` overrides the format's label column (for `csv`).

    `require_label=False` reads rows to score (the label column may be absent).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder (format {format!r})")
    if format == "criteo":
        result = _read_criteo(path)
    elif format == "avazu":
        result = _read_avazu(path)
    elif format == "movielens":
        result = _read_movielens(path, rating_threshold)
    elif format == "libfm":
        result = _read_libfm(path)
    elif format == "csv":
        result = _read_csv(path, label or "label")
    else:
        raise ValueError(f"{path}: unknown format {format!r}; choose one of {FORMATS[1:]}")
    if label is not None and format != "csv":
        result.schema.label = label
    return _drop_bad_rows(result, path, max_bad_fraction, require_label)


class _BadLines:
    """Counts the lines pandas' python engine cannot split into the expected number of fields."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, line: list[str]) -> None:
        self.count += 1
        return None


def _read_table(path: Path, sep: str, header: int | None, names: list[str] | None) -> tuple[pd.DataFrame, int]:
    bad = _BadLines()
    frame = pd.read_csv(
        path, sep=sep, header=header, names=names, dtype=str, engine="python", on_bad_lines=bad,
        skip_blank_lines=True,
    )
    return frame, bad.count


def _read_criteo(path: Path) -> ClickLog:
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    if first.startswith("label"):  # the CSV-with-header sample
        frame, bad = _read_table(path, ",", 0, None)
    else:  # the released TSV: no header
        frame, bad = _read_table(path, "\t", None, CRITEO_COLUMNS)
    schema = FeatureSchema(label="label", categorical=list(CRITEO_CATEGORICAL), numeric=list(CRITEO_NUMERIC))
    return ClickLog(frame, schema, bad, len(frame) + bad)


def _read_avazu(path: Path) -> ClickLog:
    frame, bad = _read_table(path, ",", 0, None)
    if "hour" in frame.columns:
        stamp = pd.to_datetime(frame["hour"], format="%y%m%d%H", errors="coerce")
        frame["hour_of_day"] = stamp.dt.hour.astype("Int64").astype(str).replace("<NA>", np.nan)
        frame["weekday"] = stamp.dt.weekday.astype("Int64").astype(str).replace("<NA>", np.nan)
        frame = frame.drop(columns=["hour"])
    categorical = [c for c in frame.columns if c not in ("id", "click")]
    return ClickLog(frame, FeatureSchema(label="click", categorical=categorical), bad, len(frame) + bad)


def _read_movielens(path: Path, threshold: float) -> ClickLog:
    if path.is_dir():
        frame, bad = _read_movielens_folder(path)
    else:
        frame, bad = _read_table(path, ",", 0, None)
        if "item_id" in frame.columns and "movie_id" not in frame.columns:
            frame = frame.rename(columns={"item_id": "movie_id"})
    if "rating" not in frame.columns:
        raise ValueError(f"{path}: MovieLens needs a 'rating' column; found {list(frame.columns)}")
    rating = pd.to_numeric(frame["rating"], errors="coerce")
    frame["label"] = np.where(rating.isna(), None, (rating >= threshold).astype(int).astype(str))
    categorical = [c for c in MOVIELENS_CATEGORICAL if c in frame.columns]
    multi = {"genres": "|"} if "genres" in frame.columns else {}
    return ClickLog(frame, FeatureSchema(label="label", categorical=categorical, multi_valued=multi), bad, len(frame) + bad)


def _read_movielens_folder(path: Path) -> tuple[pd.DataFrame, int]:
    """MovieLens-1M layout: ratings.dat, users.dat, movies.dat with `::` separators."""
    files = {name: path / f"{name}.dat" for name in ("ratings", "users", "movies")}
    if not files["ratings"].exists():
        raise ValueError(f"{path}: a MovieLens folder needs ratings.dat; found {sorted(p.name for p in path.iterdir())}")
    read = lambda p, names: pd.read_csv(p, sep="::", header=None, names=names, dtype=str, engine="python", encoding="latin-1")  # noqa: E731
    frame = read(files["ratings"], ["user_id", "movie_id", "rating", "timestamp"])
    if files["users"].exists():
        frame = frame.merge(read(files["users"], ["user_id", "gender", "age", "occupation", "zip"]), on="user_id", how="left")
    if files["movies"].exists():
        frame = frame.merge(read(files["movies"], ["movie_id", "title", "genres"]), on="movie_id", how="left")
    return frame, 0


def _read_libfm(path: Path) -> ClickLog:
    rows: list[dict[str, str]] = []
    bad = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            row = _parse_libfm_line(parts)
            if row is None:
                bad += 1
            else:
                rows.append(row)
    frame = pd.DataFrame(rows, dtype=str)
    fields = sorted((c for c in frame.columns if c != "label"), key=lambda c: int(c[1:]))
    return ClickLog(frame, FeatureSchema(label="label", categorical=fields), bad, len(rows) + bad)


def _parse_libfm_line(parts: list[str]) -> dict[str, str] | None:
    try:
        label = float(parts[0])
    except ValueError:
        return None
    row = {"label": "1" if label > 0 else "0"}
    for token in parts[1:]:
        pieces = token.split(":")
        if len(pieces) not in (2, 3) or not pieces[0].isdigit() or not pieces[1].lstrip("-").isdigit():
            return None
        if len(pieces) == 3:
            try:
                if float(pieces[2]) == 0.0:
                    continue
            except ValueError:
                return None
        row[f"f{pieces[0]}"] = pieces[1]
    return row


def _read_csv(path: Path, label: str) -> ClickLog:
    frame, bad = _read_table(path, ",", 0, None)
    return ClickLog(frame, FeatureSchema(label=label, categorical=[c for c in frame.columns if c != label]), bad, len(frame) + bad)


def _drop_bad_rows(result: ClickLog, path: Path, max_bad_fraction: float, require_label: bool = True) -> ClickLog:
    """Skip rows whose label is missing / not a number or whose numeric cells do not parse."""
    frame, schema = result.frame, result.schema
    if schema.label not in frame.columns:
        if require_label:
            raise ValueError(f"{path}: label column '{schema.label}' missing; found {list(frame.columns)}")
        bad = pd.Series(False, index=frame.index)
    else:
        bad = pd.to_numeric(frame[schema.label], errors="coerce").isna()
    for name in schema.numeric:
        if name in frame.columns:
            cells = frame[name]
            bad |= cells.notna() & pd.to_numeric(cells, errors="coerce").isna()
    skipped = result.bad_lines + int(bad.sum())
    total = max(result.total_lines, 1)
    if skipped:
        log.warning("%s: skipped %d unparseable line(s) of %d", path, skipped, total)
    if skipped / total > max_bad_fraction:
        first = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else None
        where = f"; first bad data row {first}" if first is not None else ""
        raise ValueError(
            f"{path}: {skipped} of {total} lines unparseable ({100 * skipped / total:.1f}% > "
            f"max_bad_fraction {100 * max_bad_fraction:.1f}%){where}"
        )
    return ClickLog(frame[~bad].reset_index(drop=True), schema, skipped, result.total_lines)
