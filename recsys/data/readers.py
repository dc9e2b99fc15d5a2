"""Readers for the public click-log formats; each returns the rows and the format's default schema.

* `criteo`: label, 13 integer features I1-I13, 26 hashed categorical C1-C26. The released
  files are tab-separated without a header; the CSV-with-header sample (`label,I1,...,C26`) is
  recognized by its first line.
* `avazu`: CSV with header; label `click`; `id` dropped; `hour` (YYMMDDHH) becomes the hour of
  day and the weekday; every other column is categorical.
* `movielens`: a joined CSV (`user_id`, `movie_id` or `item_id`, `rating`, optional user and movie
  columns, `genres` joined by `|`) or a MovieLens-1M folder (`ratings.dat`, `users.dat`,
  `movies.dat`, `::`-separated); the click label is `rating >= rating_threshold`.
* `libfm`: libFM lines `label index:value ...` or libFFM lines `label field:index:value ...`;
  labels -1/1 or 0/1; a token with value 0 is absent (libFM's sparse convention). The layout
  (`libfm_layout`, `auto` by default) decides how tokens become model fields, so that memory
  stays linear in rows x fields and never grows with the number of distinct indices:
  - `positional` (auto: libFM lines that all have the same number K of tokens, every value 1,
    the one-hot layout of NFM's frappe and movielens-tag splits): token k of a line is
    categorical field `p<k>`, its index the category. Positions that share indices are logged
    (such lines may be bags of equal length; pass `bag`). A few lines of another length (at most
    `max_bad_fraction`, e.g. a truncated last line) are skipped and counted.
  - `bag` (auto: ragged libFM lines, or values other than 1): one multi-valued field `features`
    holding the line's indices, embedded and mean-pooled like every multi-valued field
    (`recsys.models.embedding`); its `max_values` is the longest line. Values other than 0/1
    are dropped with a logged count: the embeddings take ids, not weights. Being one field, a
    bag gives the models no interactions between its own indices.
  - `fields` (auto: libFFM lines): field `f<field>` per libFFM field, its index the category
    (when a field repeats in a line, its last token counts).
  Lines of the other kind (libFM tokens in a libFFM file or the reverse) are unparseable.
* `csv`: any CSV with a header; the schema must be given.

Unparseable lines (wrong field count, a non-numeric number, a missing or non-numeric label) are
skipped and counted; above `max_bad_fraction` of the lines the reader raises naming the file.

Rows to score (`require_label=False`, what `attn predict` reads) come in the training format with
the label column absent, or present and ignored: a Criteo TSV line may have 39 fields (no label),
a Criteo CSV header may start with any Criteo column, a MovieLens file needs no `rating`, and a
libFM line may start with its first `index:value` token. `ClickLog.rows` then gives each kept row's
position among the file's data rows (0-based, blank lines not counted), so skipped rows can be
named and predictions matched back to the input.
"""

from __future__ import annotations

import logging
import re
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from recsys.data.schema import FeatureSchema

log = logging.getLogger(__name__)

Format = Literal["synthetic", "criteo", "avazu", "movielens", "libfm", "csv"]
FORMATS: tuple[str, ...] = ("synthetic", "criteo", "avazu", "movielens", "libfm", "csv")
LibfmLayout = Literal["auto", "positional", "bag", "fields"]
BAG_COLUMN = "features"

CRITEO_NUMERIC = [f"I{i}" for i in range(1, 14)]
CRITEO_CATEGORICAL = [f"C{i}" for i in range(1, 27)]
CRITEO_COLUMNS = ["label", *CRITEO_NUMERIC, *CRITEO_CATEGORICAL]
MOVIELENS_CATEGORICAL = ["user_id", "movie_id", "gender", "age", "occupation", "zip"]


@dataclass
class ClickLog:
    """Rows of a click log: `frame` (strings, label column included), its default schema, counts, and
    for `libfm` the layout the file was read with (`positional`, `bag` or `fields`)."""

    frame: pd.DataFrame
    schema: FeatureSchema
    bad_lines: int = 0
    total_lines: int = 0
    layout: str | None = None
    rows: np.ndarray | None = None  # rows to score only: each frame row's position among the file's data rows


def read_click_log(
    path: str | Path, format: Format, *, label: str | None = None, rating_threshold: float = 4.0,
    max_bad_fraction: float = 0.01, require_label: bool = True, libfm_layout: LibfmLayout = "auto",
) -> ClickLog:
    """Read `path` in `format`; `label` overrides the format's label column (for `csv`).

    `require_label=False` reads rows to score: the label column may be absent and is ignored when
    present, and the result's `rows` numbers the kept rows (module docstring). `libfm_layout` says
    how `libfm` tokens become fields (see the module docstring).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder (format {format!r})")
    scoring = not require_label
    if format == "criteo":
        result = _read_criteo(path, scoring)
    elif format == "avazu":
        result = _read_avazu(path, scoring)
    elif format == "movielens":
        result = _read_movielens(path, rating_threshold, scoring)
    elif format == "libfm":
        result = _read_libfm(path, libfm_layout, max_bad_fraction, scoring)
    elif format == "csv":
        result = _read_csv(path, label or "label", scoring)
    else:
        raise ValueError(f"{path}: unknown format {format!r}; choose one of {FORMATS[1:]}")
    if label is not None and format != "csv":
        result.schema.label = label
    return _drop_bad_rows(result, path, max_bad_fraction, require_label)


# the cells of a line that pandas cannot split (rows to score): it keeps the line's place, then is dropped
_BAD_LINE = "\x00unparseable line\x00"


class _BadLines:
    """Counts the lines pandas' python engine cannot split into the expected number of fields.

    With `width` (rows to score) each such line stays as a row of `_BAD_LINE` cells, so that the
    rows after it keep their positions; `_drop_bad_rows` drops and counts it.
    """

    def __init__(self, width: int | None = None) -> None:
        self.count, self.width = 0, width

    def __call__(self, line: list[str]) -> list[str] | None:
        if self.width is not None:
            return [_BAD_LINE] * self.width
        self.count += 1
        return None


def _read_table(
    path: Path, sep: str, header: int | None, names: list[str] | None, scoring: bool = False,
) -> tuple[pd.DataFrame, int]:
    try:
        width = None
        if scoring:
            width = len(names) if names is not None else len(pd.read_csv(path, sep=sep, nrows=0, engine="python").columns)
        bad = _BadLines(width)
        frame = pd.read_csv(
            path, sep=sep, header=header, names=names, dtype=str, engine="python", on_bad_lines=bad,
            skip_blank_lines=True,
        )
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        kind = "tab-separated" if sep == "\t" else "comma-separated"
        raise ValueError(f"{path}: not a readable {kind} file ({type(err).__name__}: {str(err).strip()[:120]}); "
                         "give the rows as text in the format the data was read in") from None
    return frame, bad.count


def _read_criteo(path: Path, scoring: bool = False) -> ClickLog:
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    if first.split(",")[0].strip() in CRITEO_COLUMNS:  # a CSV with header (the sample: `label,I1,...`)
        frame, bad = _read_table(path, ",", 0, None, scoring)
    elif scoring and first.rstrip("\r\n").count("\t") == len(CRITEO_COLUMNS) - 2:  # the TSV without its label
        frame, bad = _read_table(path, "\t", None, CRITEO_COLUMNS[1:], scoring)
    else:  # the released TSV: no header
        frame, bad = _read_table(path, "\t", None, CRITEO_COLUMNS, scoring)
    schema = FeatureSchema(label="label", categorical=list(CRITEO_CATEGORICAL), numeric=list(CRITEO_NUMERIC))
    return ClickLog(frame, schema, bad, len(frame) + bad)


def _read_avazu(path: Path, scoring: bool = False) -> ClickLog:
    frame, bad = _read_table(path, ",", 0, None, scoring)
    if "hour" in frame.columns:
        stamp = pd.to_datetime(frame["hour"], format="%y%m%d%H", errors="coerce")
        frame["hour_of_day"] = stamp.dt.hour.astype("Int64").astype(str).replace("<NA>", np.nan)
        frame["weekday"] = stamp.dt.weekday.astype("Int64").astype(str).replace("<NA>", np.nan)
        frame = frame.drop(columns=["hour"])
    categorical = [c for c in frame.columns if c not in ("id", "click")]
    return ClickLog(frame, FeatureSchema(label="click", categorical=categorical), bad, len(frame) + bad)


def _read_movielens(path: Path, threshold: float, scoring: bool = False) -> ClickLog:
    if path.is_dir():
        frame, bad = _read_movielens_folder(path)
    else:
        frame, bad = _read_table(path, ",", 0, None, scoring)
        if "item_id" in frame.columns and "movie_id" not in frame.columns:
            frame = frame.rename(columns={"item_id": "movie_id"})
    if "rating" not in frame.columns and not scoring:
        raise ValueError(f"{path}: MovieLens needs a 'rating' column; found {list(frame.columns)}")
    if "rating" in frame.columns:
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


def _read_libfm(path: Path, layout: LibfmLayout, max_bad_fraction: float, scoring: bool = False) -> ClickLog:
    if layout not in ("auto", "positional", "bag", "fields"):
        raise ValueError(f"{path}: unknown libfm_layout {layout!r}; choose auto, positional, bag or fields")
    lines = _LibfmLines.parse(path, scoring)
    result = _libfm_layout(path, lines, layout, max_bad_fraction)
    if scoring:  # the kept lines' places among the file's lines (a layout keeps a subset, in order)
        result.rows = np.frombuffer(lines.rows, dtype=np.int64)[result.rows]
    return result


def _libfm_layout(path: Path, lines: _LibfmLines, layout: LibfmLayout, max_bad_fraction: float) -> ClickLog:
    """The parsed lines as fields of `layout`; the result's `rows` indexes the parsed lines it kept."""
    arity = np.frombuffer(lines.arity, dtype=np.int8)
    libffm = int((arity == 3).sum()) > int((arity == 2).sum()) if layout == "auto" else layout == "fields"
    keep = arity != (2 if libffm else 3)  # lines of the other kind are unparseable
    bad = lines.bad + int((~keep).sum())
    total = lines.bad + len(arity)
    lengths = np.frombuffer(lines.lengths, dtype=np.int64)
    row = np.repeat(np.arange(len(lengths)), lengths)
    indices = np.frombuffer(lines.indices, dtype=np.int64)
    values = np.frombuffer(lines.values, dtype=np.float64)
    labels = np.asarray(lines.labels, dtype=object)
    if libffm:
        fields = np.frombuffer(lines.fields, dtype=np.int64)
        result = _libffm_fields(labels, keep, row, fields, indices, bad, total)
        result.rows = np.flatnonzero(keep)
        return result
    width = int(np.bincount(lengths[keep]).argmax()) if keep.any() else 0
    conform = keep & (lengths == width)
    if layout == "auto":
        ones = bool((values[conform[row]] == 1.0).all())
        dropped = int((keep & ~conform).sum())
        layout = "positional" if width > 0 and ones and (bad + dropped) <= max_bad_fraction * total else "bag"
    if layout == "positional":
        if width == 0:
            raise ValueError(f"{path}: no libFM index:value tokens to read by position")
        result = _libfm_positional(path, labels[conform], indices[conform[row]].reshape(-1, width),
                                   bad + int((keep & ~conform).sum()), total)
        result.rows = np.flatnonzero(conform)
        return result
    result = _libfm_bag(path, labels, keep, lengths, indices, values, bad, total)
    result.rows = np.flatnonzero(keep)
    return result


@dataclass
class _LibfmLines:
    """The parsed lines of a libFM / libFFM file, flat (typed arrays: a few bytes per token)."""

    labels: list[str]  # "0" / "1" per parsed line
    arity: array  # per line: 2 (index:value tokens), 3 (field:index:value) or 0 (no token)
    lengths: array  # per line: tokens kept (value != 0)
    fields: array  # per kept token: the libFFM field (-1 for libFM)
    indices: array  # per kept token
    values: array  # per kept token
    rows: array  # per parsed line: its place among the file's non-blank lines
    bad: int = 0

    @classmethod
    def parse(cls, path: Path, scoring: bool = False) -> _LibfmLines:
        """The lines of `path`; `scoring`: a line may lack its label (it starts with a token)."""
        out = cls([], array("b"), array("q"), array("q"), array("q"), array("d"), array("q"))
        number = -1
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if not parts:
                    continue
                number += 1
                if scoring and ":" in parts[0]:
                    parts = ["0", *parts]  # no label: a placeholder, ignored for rows to score
                parsed = _parse_libfm_line(parts)
                if parsed is None:
                    out.bad += 1
                    continue
                label, arity, tokens = parsed
                out.rows.append(number)
                out.labels.append(label)
                out.arity.append(arity)
                out.lengths.append(len(tokens))
                for field, index, value in tokens:
                    out.fields.append(field)
                    out.indices.append(index)
                    out.values.append(value)
        return out


_DIGITS, _SIGNED = re.compile(r"[0-9]+"), re.compile(r"-?[0-9]+")  # ASCII only: int() must accept them


def _parse_libfm_line(parts: list[str]) -> tuple[str, int, list[tuple[int, int, float]]] | None:
    """`(label, arity, [(field, index, value), ...])` of a line without its zero-valued tokens; None if unparseable."""
    try:
        label = float(parts[0])
    except ValueError:
        return None
    tokens, arity = [], 0
    for token in parts[1:]:
        pieces = token.split(":")
        if len(pieces) not in (2, 3) or (arity and len(pieces) != arity):
            return None
        arity = len(pieces)
        if arity == 3 and not _DIGITS.fullmatch(pieces[0]):
            return None
        if not (_SIGNED if arity == 3 else _DIGITS).fullmatch(pieces[-2]):  # libFFM indices may be negative
            return None
        try:
            value = float(pieces[-1])
        except ValueError:
            return None
        if value != 0.0:
            tokens.append((int(pieces[0]) if arity == 3 else -1, int(pieces[-2]), value))
    return ("1" if label > 0 else "0"), arity, tokens


def _libfm_positional(path: Path, labels: np.ndarray, indices: np.ndarray, bad: int, total: int) -> ClickLog:
    """Token k of every line is field `p<k>`; `indices: (rows, fields)`."""
    width = indices.shape[1]
    pairs = np.unique(indices * width + np.arange(width))  # (index, position) pairs seen
    shared = len(pairs) - len(np.unique(pairs // width))
    if shared:
        log.warning("%s: %d libFM index(es) occur at more than one position; fields are still taken by position "
                    "(pass libfm_layout=bag if the lines are bags of indices)", path, shared)
    names = [f"p{k}" for k in range(width)]
    frame = pd.DataFrame({"label": labels, **{n: indices[:, k].astype(str) for k, n in enumerate(names)}}, dtype=str)
    log.info("%s: libFM lines read by position: %d fields, %d distinct indices", path, width, len(pairs) - shared)
    return ClickLog(frame, FeatureSchema(label="label", categorical=names), bad, total, "positional")


def _libfm_bag(path: Path, labels: np.ndarray, keep: np.ndarray, lengths: np.ndarray, indices: np.ndarray,
               values: np.ndarray, bad: int, total: int) -> ClickLog:
    """One multi-valued field `features`: the indices of each line, joined by spaces."""
    ends = np.cumsum(lengths)
    starts = ends - lengths
    text = indices.astype(str)
    bags = [" ".join(text[a:b]) for a, b, k in zip(starts.tolist(), ends.tolist(), keep.tolist(), strict=True) if k]
    weighted = int((values[np.repeat(keep, lengths)] != 1.0).sum())
    if weighted:
        log.warning("%s: the values of %d token(s) (other than 0/1) ignored: the bag field keeps the indices, not their values", path, weighted)
    longest = int(lengths[keep].max()) if keep.any() else 1
    frame = pd.DataFrame({"label": labels[keep], BAG_COLUMN: bags}, dtype=str)
    log.info("%s: libFM lines read as one bag-of-indices field (%d to %d tokens per line)", path,
             int(lengths[keep].min()) if keep.any() else 0, longest)
    schema = FeatureSchema(label="label", multi_valued={BAG_COLUMN: " "}, max_values=max(1, longest))
    return ClickLog(frame, schema, bad, total, "bag")


def _libffm_fields(labels: np.ndarray, keep: np.ndarray, row: np.ndarray, fields: np.ndarray, indices: np.ndarray,
                   bad: int, total: int) -> ClickLog:
    """Field `f<field>` per libFFM field; a field repeated in a line keeps its last token."""
    kept_rows = np.flatnonzero(keep)
    position = np.full(len(keep), -1)
    position[kept_rows] = np.arange(len(kept_rows))
    token_row = position[row]
    use = token_row >= 0
    columns: dict[str, np.ndarray] = {"label": labels[kept_rows]}
    for field in np.unique(fields[use]).tolist():
        mine = use & (fields == field)
        rows, ids = token_row[mine][::-1], indices[mine][::-1]  # reversed: the first occurrence is the last token
        _, last = np.unique(rows, return_index=True)
        column = np.full(len(kept_rows), None, dtype=object)
        column[rows[last]] = ids[last].astype(str)
        columns[f"f{field}"] = column
    frame = pd.DataFrame(columns, dtype=str)
    names = [c for c in columns if c != "label"]
    return ClickLog(frame, FeatureSchema(label="label", categorical=names), bad, total, "fields")


def libfm_layout_of(schema: FeatureSchema) -> LibfmLayout:
    """The layout a libFM schema came from, to read new rows (`predict_path`) the same way."""
    if BAG_COLUMN in schema.multi_valued:
        return "bag"
    if schema.categorical and all(re.fullmatch(r"p\d+", c) for c in schema.categorical):
        return "positional"
    return "fields"


def _read_csv(path: Path, label: str, scoring: bool = False) -> ClickLog:
    frame, bad = _read_table(path, ",", 0, None, scoring)
    return ClickLog(frame, FeatureSchema(label=label, categorical=[c for c in frame.columns if c != label]), bad, len(frame) + bad)


def _drop_bad_rows(result: ClickLog, path: Path, max_bad_fraction: float, require_label: bool = True) -> ClickLog:
    """Skip rows whose label is missing / not a number or whose numeric cells do not parse.

    Rows to score (`require_label=False`): the label is not checked, lines pandas could not split
    (`_BAD_LINE` rows) are dropped here, and `rows` keeps the positions of the rows that stay.
    """
    frame, schema = result.frame, result.schema
    if not require_label:
        bad = (frame.astype(object) == _BAD_LINE).any(axis=1) if len(frame.columns) else pd.Series(False, index=frame.index)
    elif schema.label not in frame.columns:
        raise ValueError(f"{path}: label column '{schema.label}' missing; found {list(frame.columns)}")
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
    rows = None
    if not require_label:
        positions = result.rows if result.rows is not None else np.arange(len(frame))
        rows = np.asarray(positions, dtype=np.int64)[~bad.to_numpy()]
    return ClickLog(frame[~bad].reset_index(drop=True), schema, skipped, result.total_lines, result.layout, rows)
