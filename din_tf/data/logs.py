"""Interaction logs of one's own: `read_log` reads the columns a
`FeatureSchema` needs from the files a `LogSpec` (`din_tf.data.log_spec`)
describes into a `Log`.

A log is a table with one row per interaction (user, item, timestamp, and
optionally a 0/1 label and context columns), in CSV, TSV (either may be
gzipped) or Parquet. Side
tables give user features (joined by user id) and item features (joined by
item id). Multi-valued columns hold several values in one field
("Action|Comedy") or are spread over 0/1 flag columns (MovieLens' genres).

Every column but the timestamp (mostly distinct, so parsed straight to
numbers) is kept dictionary-coded: per-row int32 codes into the column's
distinct values. A 10-million-row log then costs a few int32 arrays, values
are parsed and checked once per distinct value, and side features are joined
by composing codes. `Coded.take(rows)` gives raw values for chosen rows.

CSV/TSV are read with `pyarrow.csv` (multi-threaded) when pyarrow is
installed, else with the `csv` module; Parquet needs pyarrow
(`pip install din_tf[parquet]`). Values are matched and joined by their text
(ids "7" and "007" differ). Errors name the file, the column, the value and
its line (counting a header, not blank lines).
"""

import array
import csv
import dataclasses
import gzip
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
from absl import logging

from din_tf.data._io import DataFormatError, describe, is_gzip
from din_tf.data.log_spec import LogSpec, LogSpecError, SideTable, TableSpec, spec_requires
from din_tf.schema.features import FeatureSchema

ENGINES = ("auto", "pyarrow", "python")


class MissingDependencyError(ImportError):
    """An optional package a file needs is not installed (the message says
    which extra to install)."""


@dataclasses.dataclass
class Coded:
    """A column as per-row codes into its distinct values.

    Attributes:
      codes: int32 [N], row i's value is `values[codes[i]]`.
      values: [K] (or [K, V] multi-valued) raw values: bytes ('S'), int64 or
        float32.
    """

    codes: np.ndarray
    values: np.ndarray

    def take(self, rows=None):
        """Raw values of `rows` (all rows when None)."""
        return self.values[self.codes if rows is None else self.codes[rows]]


@dataclasses.dataclass
class Log:
    """The columns of a log that a schema needs, joined with its side tables.

    Attributes:
      source: the log's path (for messages).
      user, item: `Coded` ids as text; codes number users / items by first
        appearance.
      timestamp: [N] int64 (float64 when the column has fractions).
      label: int8 [N] 0/1, or None when the spec has no label column.
      features: {schema feature name: `Coded`} per log row, side features
        joined by id.
    """

    source: str
    user: Coded
    item: Coded
    timestamp: np.ndarray
    label: Optional[np.ndarray]
    features: Dict[str, Coded]

    def __len__(self):
        return int(self.timestamp.shape[0])

    def column(self, name):
        """Feature `name`'s raw value on every log row ([N] or [N, V])."""
        return self.features[name].take()

    @property
    def n_users(self):
        return int(self.user.values.shape[0])

    @property
    def n_items(self):
        return int(self.item.values.shape[0])


@dataclasses.dataclass
class _Raw:
    """A table as read: per column (codes int32 [n], distinct texts); columns
    read as numbers directly (`numeric`) are in `numbers` instead."""

    path: str
    columns: Dict[str, Tuple[np.ndarray, List[str]]]
    rows: int
    first_line: int  # line number of row 0 (1-based; 2 with a header)
    numbers: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def line_of(self, column, code):
        row = int(np.argmax(self.columns[column][0] == code))
        return row + self.first_line


def _pyarrow(required_for=None):
    try:
        import pyarrow  # noqa: F401
        import pyarrow.csv  # noqa: F401
        import pyarrow.parquet  # noqa: F401
        return pyarrow
    except ImportError:
        if required_for:
            raise MissingDependencyError(f"{required_for}: reading Parquet needs pyarrow; "
                                         "install din_tf[parquet] (pip install pyarrow).") from None
        return None


def _file_columns(table: TableSpec):
    """The column names of a table's file."""
    path = table.path
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file ({table._where()}; relative paths in a "
                                "spec file resolve against the data directory given, by "
                                "default the spec file's folder)")
    if table.format == "parquet":
        pa = _pyarrow(path)
        return list(pa.parquet.ParquetFile(path).schema_arrow.names)
    if os.path.getsize(path) == 0:
        raise DataFormatError(path, None, f"empty file ({table._where()}): no header and no "
                                          "rows")
    if table.names is not None:
        return list(table.names)  # with a header, the names given replace it
    with _open_text(table) as f:
        try:
            first = f.readline()
        except UnicodeDecodeError as e:
            raise DataFormatError(path, 1, f"not valid {table.encoding} text ({e})") from None
    if not first.strip():
        raise DataFormatError(path, None, "empty file: expected a header line naming the "
                                          "columns")
    return next(csv.reader([first.rstrip("\r\n")], delimiter=table.separator,
                           quoting=_quoting(table)))


def _open_text(table):
    """A csv/tsv table opened as text, gzip decompressed (by content)."""
    if is_gzip(table.path):
        return gzip.open(table.path, "rt", encoding=_text_encoding(table), newline="")
    return open(table.path, encoding=_text_encoding(table), newline="")


def _text_encoding(table):
    """The encoding to open a table with: UTF-8 also drops a byte-order mark
    (spreadsheet exports start with one)."""
    utf8 = table.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
    return "utf-8-sig" if utf8 else table.encoding


def _quoting(table):
    return csv.QUOTE_MINIMAL if table.quotes else csv.QUOTE_NONE


def _read_table(table: TableSpec, wanted, engine, numeric=()):
    """Reads the `wanted` file columns of `table` as `_Raw`; with pyarrow, the
    `numeric` ones (timestamps: mostly distinct, so not worth coding) are
    parsed as int64 / float64 when they all parse."""
    wanted = list(dict.fromkeys(wanted))
    path = table.path
    names = _file_columns(table)
    lacking = [c for c in wanted if c not in names]
    if lacking:
        raise DataFormatError(path, None, f"no column(s) {lacking} ({table._where()}); the "
                                          f"file's columns are {names}")
    if table.format == "parquet":
        pa = _pyarrow(path)
    else:
        pa = None if engine == "python" else _pyarrow()
    if engine == "pyarrow" and pa is None:
        raise MissingDependencyError(f"{path}: engine 'pyarrow' requested but pyarrow is not "
                                     "installed; install din_tf[parquet] (pip install "
                                     "pyarrow).")
    logging.info("reading %s (columns %s)", path, wanted)
    first_line = 2 if (table.header and table.format != "parquet") else 1
    if pa is not None:
        columns, rows, numbers = _read_with_pyarrow(pa, table, names, wanted, numeric)
    else:
        columns, rows, numbers = _read_with_csv(table, names, wanted, first_line, numeric)
    return _Raw(path, columns, rows, first_line, numbers)


def _read_with_pyarrow(pa, table, names, wanted, numeric=()):
    import pyarrow.compute as pc
    path = table.path
    try:
        if table.format == "parquet":
            data = pa.parquet.read_table(path, columns=wanted)
        else:
            read = pa.csv.ReadOptions(encoding=table.encoding, block_size=1 << 24,
                                      column_names=names,
                                      skip_rows=1 if table.header else 0)
            parse = pa.csv.ParseOptions(delimiter=table.separator,
                                        quote_char='"' if table.quotes else False)
            convert = pa.csv.ConvertOptions(include_columns=wanted,
                                            column_types={c: pa.string() for c in wanted},
                                            strings_can_be_null=False)
            source = pa.input_stream(path, compression="gzip" if is_gzip(path) else None)
            data = pa.csv.read_csv(source, read_options=read, parse_options=parse,
                                   convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowException, UnicodeDecodeError) as e:
        raise DataFormatError(path, None, f"cannot be read as {table.format} "
                                          f"({str(e).strip()})") from None
    columns, numbers = {}, {}
    for c in wanted:
        column = data.column(c)
        if c in numeric:
            parsed = _as_number(pa, column)
            if parsed is not None:
                numbers[c] = parsed
                continue
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            column = pc.cast(column, pa.string())  # parquet ints, floats, ...
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        column = pc.fill_null(column, "")
        encoded = column.dictionary_encode()
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)  # owned
        columns[c] = (codes, encoded.dictionary.to_pylist())
    rows = data.num_rows
    data = column = encoded = None
    pa.default_memory_pool().release_unused()  # arrow keeps freed blocks otherwise
    return columns, rows, numbers


def _as_number(pa, column):
    """int64 (else float64) numpy values of a pyarrow column, or None when
    some value is not a number (the caller then names it)."""
    import pyarrow.compute as pc
    for kind in (pa.int64(), pa.float64()):
        try:
            return pc.cast(column, kind).to_numpy()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return None


def _read_with_csv(table, names, wanted, first_line, numeric=()):
    """The csv-module reader: codes grow in C int arrays; `numeric` columns
    are kept as text and parsed by numpy at the end."""
    path = table.path
    coded = [c for c in wanted if c not in numeric]
    texts = [c for c in wanted if c in numeric]
    coded_index = [names.index(c) for c in coded]
    text_index = [names.index(c) for c in texts]
    dicts = [{} for _ in coded]
    codes = [array.array("i") for _ in coded]
    kept = [[] for _ in texts]
    width = len(names)
    with _open_text(table) as f:
        reader = csv.reader(f, delimiter=table.separator, quoting=_quoting(table))
        try:
            if table.header:
                next(reader, None)
            for number, fields in enumerate(reader, start=first_line):
                if not fields:
                    continue
                if len(fields) != width:
                    raise DataFormatError(path, number, f"expected {width} fields "
                                          f"({names}), got {len(fields)}: {describe(fields)}")
                for d, out, i in zip(dicts, codes, coded_index):
                    value = fields[i]
                    code = d.get(value)
                    if code is None:
                        code = d[value] = len(d)
                    out.append(code)
                for out, i in zip(kept, text_index):
                    out.append(fields[i])
                if number % 1_000_000 == 0:
                    logging.info("%s: read %d lines", path, number)
        except UnicodeDecodeError as e:
            raise DataFormatError(path, None, f"not valid {table.encoding} text "
                                              f"({e})") from None
        except csv.Error as e:
            raise DataFormatError(path, reader.line_num, f"cannot be parsed ({e})") from None
    columns = {c: (np.frombuffer(codes[k], np.int32), list(dicts[k]))
               for k, c in enumerate(coded)}
    numbers = {}
    for c, values in zip(texts, kept):
        parsed = _texts_as_number(values)
        if parsed is not None:
            numbers[c] = parsed
        else:  # coded, so that the bad value can be named
            d = {}
            columns[c] = (np.fromiter((d.setdefault(v, len(d)) for v in values), np.int32,
                                      len(values)), list(d))
    rows = len(codes[0]) if codes else len(kept[0]) if kept else 0
    return columns, rows, numbers


def _texts_as_number(values):
    """int64 (else float64) values of a list of texts, or None."""
    for kind in (np.int64, np.float64):
        try:
            return np.asarray(values, dtype=np.str_).astype(kind)
        except (ValueError, OverflowError):
            continue
    return None


# -- typing values ---------------------------------------------------------------


def _default(feature):
    if feature.kind == "numeric":
        return np.float32(0.0)
    return b"" if feature.dtype == "string" else np.int64(-1)


def _typed(raw: _Raw, column, texts, feature, split=None):
    """The distinct `texts` of `column` as raw values of `feature`: [K] or
    [K, V] for a multi-valued feature (`split` separates the values)."""
    where = lambda code, what: DataFormatError(  # noqa: E731
        raw.path, raw.line_of(column, code),
        f"column {column!r} (feature {feature.name!r}): {what}")
    if feature.kind == "numeric":
        try:
            return np.asarray(texts, dtype=np.float64).astype(np.float32)
        except ValueError:
            pass
        for code, text in enumerate(texts):
            try:
                float(text)
            except ValueError:
                raise where(code, f"expected a number, got {describe(text)}") from None
        raise where(0, "expected numbers")
    multi = getattr(feature, "max_values", None)
    if multi:
        parts = [([v.strip() for v in t.split(split)] if split else [t]) if t != "" else []
                 for t in texts]
        longest = max((len(p) for p in parts), default=0)
        if longest > multi:
            logging.warning("%s: column %r has up to %d values per row; feature %r keeps the "
                            "first max_values=%d", raw.path, column, longest, feature.name,
                            multi)
        flat = [v for p in parts for v in p[:multi]]
        values = _scalars(flat, feature, lambda i, what: where(
            _code_of_flat(parts, multi, i), what))
        out = np.full((len(texts), multi), _default(feature), dtype=values.dtype
                      if values.size else _empty(feature).dtype)
        if values.dtype.kind == "S" and out.dtype.itemsize < values.dtype.itemsize:
            out = out.astype(values.dtype)
        position = 0
        for code, p in enumerate(parts):
            n = min(len(p), multi)
            out[code, :n] = values[position:position + n]
            position += n
        return out
    return _scalars(texts, feature, where)


def _code_of_flat(parts, multi, index):
    for code, p in enumerate(parts):
        n = min(len(p), multi)
        if index < n:
            return code
        index -= n
    return 0


def _empty(feature):
    return np.zeros(0, "S1" if feature.dtype == "string" else np.int64)


def _scalars(texts, feature, where):
    if feature.dtype == "string":
        if not texts:
            return np.zeros(0, "S1")
        return np.array([t.encode("utf-8") for t in texts], dtype="S")
    try:
        return np.array([int(t) for t in texts], dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    for i, text in enumerate(texts):
        try:
            np.int64(int(text))
        except (ValueError, OverflowError):
            raise where(i, f"expected an integer (the feature's dtype is int64), got "
                           f"{describe(text)}") from None
    raise AssertionError("unreachable")


def _timestamps(raw: _Raw, column):
    if column in raw.numbers:
        return raw.numbers[column]
    codes, texts = raw.columns[column]
    try:
        values = np.array([int(t) for t in texts], dtype=np.int64)
    except (ValueError, OverflowError):
        try:
            values = np.asarray(texts, dtype=np.float64)
        except ValueError:
            for code, text in enumerate(texts):
                try:
                    float(text)
                except ValueError:
                    raise DataFormatError(raw.path, raw.line_of(column, code),
                                          f"column {column!r} (timestamp): expected a number, "
                                          f"got {describe(text)}") from None
            raise
    return values[codes]


def _labels(raw: _Raw, column):
    codes, texts = raw.columns[column]
    values = np.zeros(len(texts), np.int8)
    for code, text in enumerate(texts):
        try:
            number = float({"true": 1, "false": 0}.get(text.strip().lower(), text))
        except ValueError:
            number = None
        if number not in (0.0, 1.0):
            raise DataFormatError(raw.path, raw.line_of(column, code),
                                  f"column {column!r} (label): expected 0 or 1, got "
                                  f"{describe(text)}")
        values[code] = int(number)
    return values[codes]


# -- planning: where each feature comes from ------------------------------------------


def _plan(spec: LogSpec, schema: FeatureSchema):
    """{feature name: (source, column)}, source "user"/"item" (the id),
    "log", "user_features", "item_features"."""
    plan = {}
    log_columns = set(_file_columns(spec)) | set(spec.flags)
    tables = {}
    for role in ("user_features", "item_features"):
        table = getattr(spec, role)
        if table is not None:
            tables[role] = set(_file_columns(table)) | set(table.flags)
    id_role = {"user": ("user", "user_features"), "candidate": ("item", "item_features"),
               "context": (None, None)}
    for feature in schema.features:
        column = feature.source_column
        id_column, role = id_role[feature.group]
        if id_column is not None and column == getattr(spec, id_column):
            plan[feature.name] = (id_column, column)
        elif role in tables and column in tables[role] and column != getattr(spec, role).id:
            plan[feature.name] = (role, column)
        elif column in log_columns:
            plan[feature.name] = ("log", column)
        else:
            places = [f"the log {spec.path} ({sorted(log_columns)})"]
            if role in tables:
                places.append(f"{role} {getattr(spec, role).path} ({sorted(tables[role])})")
            raise DataFormatError(spec.path, None, f"feature {feature.name!r} (group "
                                  f"{feature.group!r}) reads column {column!r}, which is not "
                                  f"in " + " nor in ".join(places))
    items = [f for f in schema.candidate_features if plan[f.name][0] == "item"]
    spec_requires(items, f"log spec: the schema has no candidate feature for the item column "
          f"{spec.item!r}; declare a categorical candidate feature with column {spec.item!r}.")
    for seq in schema.sequences:
        first = schema.feature(seq.item_feature)
        spec_requires(plan[first.name][0] == "item", f"sequence {seq.name!r}: its item feature "
              f"{first.name!r} must read the log's item column {spec.item!r}, it reads "
              f"{first.source_column!r}.")
    for name, (source, column) in plan.items():
        feature = schema.feature(name)
        table = spec if source in ("log", "user", "item") else getattr(spec, source)
        if column in table.multi_valued or column in table.flags:
            spec_requires(getattr(feature, "max_values", None), f"feature {name!r}: column {column!r} "
                  f"is multi-valued in the log spec, so the feature needs max_values.")
    return plan


def _file_wants(table, columns):
    """File columns to read for `columns` (flag columns expand to their flags)."""
    out = []
    for c in columns:
        out.extend(table.flags.get(c, (c,)))
    return out


def _flag_texts(raw: _Raw, table, column, flag_columns):
    """Per row, "flag1|flag2" of the flags set to 1, dictionary-coded."""
    bits = []
    for flag in flag_columns:
        codes, texts = raw.columns[flag]
        lookup = np.zeros(len(texts), bool)
        for code, text in enumerate(texts):
            if text.strip() not in ("0", "1", ""):
                raise DataFormatError(raw.path, raw.line_of(flag, code),
                                      f"column {flag!r} (a flag of {column!r}): expected 0 or "
                                      f"1, got {describe(text)}")
            lookup[code] = text.strip() == "1"
        bits.append(lookup[codes])
    bits = np.stack(bits, 1) if bits else np.zeros((raw.rows, 0), bool)
    patterns, codes = np.unique(bits, axis=0, return_inverse=True)
    texts = ["\x1f".join(f for f, b in zip(flag_columns, p) if b) for p in patterns]
    return codes.reshape(-1).astype(np.int32), texts


def _coded_column(raw: _Raw, table, column, feature):
    """`Coded` of a table column for `feature` (flags and multi-values split)."""
    if column in table.flags:
        codes, texts = _flag_texts(raw, table, column, table.flags[column])
        raw.columns[column] = (codes, texts)
        return Coded(codes, _typed(raw, column, texts, feature, "\x1f"))
    codes, texts = raw.columns[column]
    if column in table.buckets:
        if feature.kind != "categorical":
            raise LogSpecError(f"feature {feature.name!r}: column {column!r} is bucketed in "
                               "the log spec, so the feature must be categorical.")
        codes, texts = _bucketed(raw, column, table.buckets[column])
    return Coded(codes, _typed(raw, column, texts, feature, table.multi_valued.get(column)))


def _bucketed(raw: _Raw, column, edges):
    """(codes, texts) of the bucket indices of a numeric column's values."""
    codes, texts = raw.columns[column]
    numbers = np.empty(len(texts))
    for code, text in enumerate(texts):
        try:
            numbers[code] = float(text)
        except ValueError:
            raise DataFormatError(raw.path, raw.line_of(column, code),
                                  f"column {column!r} (bucketed): expected a number, got "
                                  f"{describe(text)}") from None
    index = np.searchsorted(np.asarray(edges, float), numbers, side="right")
    return index[codes].astype(np.int32), [str(i) for i in range(len(edges) + 1)]


def _join(ids: Coded, id_texts, raw: _Raw, table: SideTable, features, schema):
    """Side-table features per log row: table row of each log id, then the
    table column's codes."""
    id_codes, table_texts = raw.columns[table.id]
    counts = np.bincount(id_codes, minlength=len(table_texts))
    if (counts > 1).any():
        code = int(np.argmax(counts > 1))
        raise DataFormatError(raw.path, None, f"{table.role}: id {table_texts[code]!r} "
                              f"(column {table.id!r}) has {int(counts[code])} rows; expected "
                              "one row per id")
    row_of_text = np.empty(len(table_texts), np.int64)
    row_of_text[id_codes] = np.arange(raw.rows)
    position = {t: row_of_text[c] for c, t in enumerate(table_texts)}
    row_of_id = np.array([position.get(t, -1) for t in id_texts], np.int64)
    absent = row_of_id < 0
    if absent.any():
        example = id_texts[int(np.argmax(absent))]
        if table.missing == "error":
            raise DataFormatError(raw.path, None, f"{table.role}: {int(absent.sum())} id(s) of "
                                  f"the log are not in column {table.id!r} (e.g. "
                                  f"{example!r}); add them or set \"missing\": \"default\"")
        logging.warning("%s: %d id(s) missing from %s (e.g. %r) read default features",
                        raw.path, int(absent.sum()), table.role, example)
    out = {}
    for name, column in features:
        feature = schema.feature(name)
        coded = _coded_column(raw, table, column, feature)
        default = np.full((1,) + coded.values.shape[1:], _default(feature))
        values = np.concatenate([coded.values, default.astype(coded.values.dtype)
                                 if coded.values.dtype.kind != "S" else default])
        per_id = np.where(absent, len(coded.values), coded.codes[np.maximum(row_of_id, 0)]
                          ).astype(np.int32)
        out[name] = Coded(per_id[ids.codes], values)
    return out


def read_log(spec: LogSpec, schema: FeatureSchema, engine="auto") -> Log:
    """Reads what `schema` needs from the log of `spec` and its side tables.

    `engine`: "auto" (pyarrow when installed), "pyarrow" or "python" (the
    csv module; csv/tsv only). Raises `DataFormatError` naming the file,
    column and value/line for bad input, `LogSpecError` for an unusable spec.
    """
    spec_requires(engine in ENGINES, f"read_log: engine must be one of {list(ENGINES)}, received "
          f"{engine!r}.")
    spec = LogSpec.from_dict(spec)
    plan = _plan(spec, schema)
    by_source = {}
    for name, (source, column) in plan.items():
        by_source.setdefault(source, []).append((name, column))
    log_wanted = [spec.user, spec.item, spec.timestamp] + ([spec.label] if spec.label else [])
    log_wanted += _file_wants(spec, [c for _, c in by_source.get("log", [])])
    raw = _read_table(spec, log_wanted, engine, numeric=(spec.timestamp,))
    if raw.rows == 0:
        raise DataFormatError(spec.path, None, "the log is empty (no rows)")
    user_codes, user_texts = raw.columns[spec.user]
    item_codes, item_texts = raw.columns[spec.item]
    timestamp = _timestamps(raw, spec.timestamp)
    label = _labels(raw, spec.label) if spec.label else None
    features = {}
    ids = {}
    for source, column, codes, texts in (("user", spec.user, user_codes, user_texts),
                                         ("item", spec.item, item_codes, item_texts)):
        ids[source] = Coded(codes, np.array([t.encode("utf-8") for t in texts], "S")
                            if texts else np.zeros(0, "S1"))
        for name, _ in by_source.get(source, []):
            features[name] = Coded(codes, _typed(raw, column, texts, schema.feature(name)))
    for name, column in by_source.get("log", []):
        features[name] = _coded_column(raw, spec, column, schema.feature(name))
    for role, source in (("user_features", "user"), ("item_features", "item")):
        wanted = by_source.get(role, [])
        table = getattr(spec, role)
        if not wanted or table is None:
            continue
        side = _read_table(table, [table.id] + _file_wants(table, [c for _, c in wanted]),
                           engine)
        texts = user_texts if source == "user" else item_texts
        features.update(_join(ids[source], texts, side, table, wanted, schema))
    logging.info("%s: %d rows, %d users, %d items", spec.path, raw.rows, len(user_texts),
                 len(item_texts))
    return Log(source=spec.path, user=ids["user"], item=ids["item"], timestamp=timestamp,
               label=label, features={f.name: features[f.name] for f in schema.features})


__all__ = ["Coded", "Log", "LogSpec", "LogSpecError", "MissingDependencyError", "SideTable",
           "TableSpec", "read_log"]
