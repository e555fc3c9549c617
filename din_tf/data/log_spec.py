"""`LogSpec`: where an interaction log and its side tables are, how to read
them, and which columns mean what (read by `din_tf.data.logs.read_log`).

Specs round-trip through dicts and JSON, are checked on creation (every
error names the field), and resolve relative paths against a data
directory, so a shipped spec runs on the user's copy of the files.
"""

import dataclasses
import json
import os
from typing import Dict, Optional, Tuple

FORMATS = ("csv", "tsv", "parquet")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet",
               ".pq": "parquet", ".data": "tsv"}


class LogSpecError(ValueError):
    """A log spec that cannot be used; the message names the field at fault."""


def spec_requires(condition, message):
    if not condition:
        raise LogSpecError(message)


def _is_str_list(value):
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TableSpec:
    """How to read one table file.

    Args:
      path: the file; a relative path is resolved against a data directory
        (`resolve`).
      format: "csv", "tsv" or "parquet"; default from the file extension
        (unknown extensions read as csv).
      delimiter: field separator overriding the format's ("," / tab).
      header: whether the first line names the columns (csv/tsv).
      names: the column names when `header` is false (all columns, in order).
      encoding: the text encoding (csv/tsv).
      quoting: whether '"' quotes fields; default true for csv, false for tsv
        (tab- and other-delimited exports rarely quote, and a stray '"' in a
        title must not swallow the rest of the file).
      multi_valued: {column: separator} for columns holding several values.
      flags: {new column: [flag columns]}: a multi-valued column whose values
        are the names of the 0/1 flag columns set to 1.
      buckets: {column: [increasing edges]}: a numeric column read as the
        index of its bucket, 0 below the first edge, i for
        edges[i-1] <= value < edges[i] (e.g. ages [18, 25, 35, 45, 50, 56] give
        0..6), for a categorical feature.
    """

    path: str
    format: Optional[str] = None
    delimiter: Optional[str] = None
    header: bool = True
    names: Optional[Tuple[str, ...]] = None
    encoding: str = "utf-8"
    quoting: Optional[bool] = None
    multi_valued: Dict[str, str] = dataclasses.field(default_factory=dict)
    flags: Dict[str, Tuple[str, ...]] = dataclasses.field(default_factory=dict)
    buckets: Dict[str, Tuple[float, ...]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        where = self._where()
        spec_requires(isinstance(self.path, str) and self.path, f"{where}: path must be a non-empty "
              f"string, received {self.path!r}.")
        fmt = self.format
        if fmt is None:
            stem = self.path[:-3] if self.path.lower().endswith(".gz") else self.path
            fmt = _EXTENSIONS.get(os.path.splitext(stem)[1].lower(), "csv")
            object.__setattr__(self, "format", fmt)
        spec_requires(fmt in FORMATS, f"{where}: format must be one of {list(FORMATS)}, received "
              f"{fmt!r}.")
        spec_requires(self.delimiter is None or (isinstance(self.delimiter, str)
                                         and len(self.delimiter) == 1),
              f"{where}: delimiter must be one character, received {self.delimiter!r}.")
        spec_requires(isinstance(self.header, bool), f"{where}: header must be true or false, "
              f"received {self.header!r}.")
        spec_requires(self.quoting is None or isinstance(self.quoting, bool), f"{where}: quoting must "
              f"be true, false or null, received {self.quoting!r}.")
        if self.names is not None:
            spec_requires(_is_str_list(self.names), f"{where}: names must be a list of column names, "
                  f"received {self.names!r}.")
            object.__setattr__(self, "names", tuple(self.names))
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            spec_requires(not dup, f"{where}: names lists {dup} more than once.")
        spec_requires(fmt == "parquet" or self.header or self.names,
              f"{where}: header is false, so names must list the file's columns.")
        try:
            "".encode(self.encoding)
        except (LookupError, TypeError):
            raise LogSpecError(f"{where}: encoding {self.encoding!r} is not a known text "
                               "encoding.") from None
        spec_requires(isinstance(self.multi_valued, dict) and all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in self.multi_valued.items()),
            f"{where}: multi_valued must map column names to a separator, received "
            f"{self.multi_valued!r}.")
        spec_requires(isinstance(self.flags, dict) and all(
            isinstance(k, str) and _is_str_list(v) for k, v in self.flags.items()),
            f"{where}: flags must map a new column name to a list of flag column names, "
            f"received {self.flags!r}.")
        object.__setattr__(self, "flags", {k: tuple(v) for k, v in self.flags.items()})
        both = sorted(set(self.flags) & set(self.multi_valued))
        spec_requires(not both, f"{where}: column(s) {both} are in both multi_valued and flags.")
        spec_requires(isinstance(self.buckets, dict) and all(
            isinstance(k, str) and isinstance(v, (list, tuple)) and v
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            and all(a < b for a, b in zip(v, v[1:])) for k, v in self.buckets.items()),
            f"{where}: buckets must map column names to a non-empty list of increasing "
            f"numbers, received {self.buckets!r}.")
        object.__setattr__(self, "buckets", {k: tuple(v) for k, v in self.buckets.items()})
        both = sorted(set(self.buckets) & (set(self.flags) | set(self.multi_valued)))
        spec_requires(not both, f"{where}: column(s) {both} cannot be both bucketed and "
              "multi-valued.")

    def _where(self):
        return "log spec"

    @property
    def quotes(self):
        return self.format == "csv" if self.quoting is None else self.quoting

    @property
    def separator(self):
        if self.delimiter is not None:
            return self.delimiter
        return "\t" if self.format == "tsv" else ","

    def resolve(self, data_dir):
        """A copy whose relative `path` is joined to `data_dir`."""
        if data_dir is None or os.path.isabs(self.path):
            return self
        return dataclasses.replace(self, path=os.path.join(os.fspath(data_dir), self.path))

    def to_dict(self):
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            default = field.default if field.default is not dataclasses.MISSING else (
                field.default_factory() if field.default_factory is not dataclasses.MISSING
                else dataclasses.MISSING)
            if value == default and field.name != "path":
                continue
            if isinstance(value, SideTable):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
            out[field.name] = value
        return out


MISSING_POLICIES = ("error", "default")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SideTable(TableSpec):
    """A table of user or item features, one row per id.

    Args:
      id: the column holding the user / item id.
      missing: "error" (a log id absent from the table is an error) or
        "default" (its features read "" / -1 / 0.0, no values if
        multi-valued).
      role: "user_features" or "item_features" (set by `LogSpec`).
    """

    id: str = ""
    missing: str = "error"
    role: str = dataclasses.field(default="side table", compare=False)

    def __post_init__(self):
        super().__post_init__()
        spec_requires(isinstance(self.id, str) and self.id, f"{self._where()}: id must name the id "
              f"column, received {self.id!r}.")
        spec_requires(self.missing in MISSING_POLICIES, f"{self._where()}: missing must be one of "
              f"{list(MISSING_POLICIES)}, received {self.missing!r}.")

    def _where(self):
        return f"log spec: {self.role}"

    def to_dict(self):
        out = super().to_dict()
        out.pop("role", None)
        out["id"] = self.id
        return out


def _side_table(entry, role):
    if entry is None or isinstance(entry, SideTable):
        return dataclasses.replace(entry, role=role) if entry is not None else None
    spec_requires(isinstance(entry, dict), f"log spec: {role} must be an object, received {entry!r}.")
    known = {f.name for f in dataclasses.fields(SideTable)} - {"role"}
    unknown = sorted(set(entry) - known)
    spec_requires(not unknown, f"log spec: {role}: unknown field(s) {unknown}; a side table has "
          f"{sorted(known)}.")
    missing = sorted({"path", "id"} - set(entry))
    spec_requires(not missing, f"log spec: {role}: missing field(s) {missing}.")
    return SideTable(role=role, **entry)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LogSpec(TableSpec):
    """An interaction log: its file (see `TableSpec`), what its columns mean,
    and its side tables.

    Args:
      user, item, timestamp: the columns of the user id, item id and time
        (a number; ties keep file order).
      label: optional 0/1 column (1 = click); without it every row is a click
        and the protocols sample negatives.
      user_features, item_features: optional `SideTable`s (or dicts).
    """

    user: str = ""
    item: str = ""
    timestamp: str = ""
    label: Optional[str] = None
    user_features: Optional[SideTable] = None
    item_features: Optional[SideTable] = None

    def __post_init__(self):
        super().__post_init__()
        for field in ("user", "item", "timestamp"):
            value = getattr(self, field)
            spec_requires(isinstance(value, str) and value, f"log spec: {field} must name a column of "
                  f"the log, received {value!r}.")
        spec_requires(self.label is None or (isinstance(self.label, str) and self.label),
              f"log spec: label must name a column of the log or be null, received "
              f"{self.label!r}.")
        used = [self.user, self.item, self.timestamp] + ([self.label] if self.label else [])
        dup = sorted({c for c in used if used.count(c) > 1})
        spec_requires(not dup, f"log spec: user, item, timestamp and label must be different columns; "
              f"{dup} is used twice.")
        object.__setattr__(self, "user_features",
                           _side_table(self.user_features, "user_features"))
        object.__setattr__(self, "item_features",
                           _side_table(self.item_features, "item_features"))

    def resolve(self, data_dir):
        """A copy with the log's and side tables' relative paths joined to
        `data_dir`."""
        out = super().resolve(data_dir)
        changes = {}
        for role in ("user_features", "item_features"):
            table = getattr(out, role)
            if table is not None:
                changes[role] = table.resolve(data_dir)
        return dataclasses.replace(out, **changes) if changes else out

    # -- serialization -----------------------------------------------------------
    @classmethod
    def from_dict(cls, config):
        if isinstance(config, LogSpec):
            return config
        spec_requires(isinstance(config, dict), f"log spec: expected an object, received "
              f"{type(config).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        spec_requires(not unknown, f"log spec: unknown field(s) {unknown}; a log spec has "
              f"{sorted(known)}.")
        missing = sorted({"path", "user", "item", "timestamp"} - set(config))
        spec_requires(not missing, f"log spec: missing field(s) {missing}.")
        return cls(**config)

    def to_json(self, indent=1):
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text):
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            raise LogSpecError(f"log spec: not valid JSON ({error}).") from None
        return cls.from_dict(config)

    @classmethod
    def load(cls, path, data_dir=None):
        """Reads a spec file; relative paths in it resolve against `data_dir`,
        by default the spec file's own directory."""
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            spec = cls.from_json(text)
        except LogSpecError as error:
            raise LogSpecError(f"{path}: {error}") from None
        base = data_dir if data_dir is not None else os.path.dirname(os.path.abspath(path))
        return spec.resolve(base)


# -- reading -------------------------------------------------------------------------
