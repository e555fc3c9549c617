"""The feature schema: the one declaration of a model's inputs.

A schema names every feature a model consumes and how its raw values become
embedding rows. The data pipeline, the models, the regularizer's frequency
tables, the exported serving signature and the request helper all read it.

Kinds of feature:

* `CategoricalFeature`: an id. Raw values are strings or int64. `lookup`
  says how a raw value becomes a row of its embedding table:
    - "integer": the value is already the row (ids below `size`; anything
      else reads row 0, as the originals treat unknown ids);
    - "vocabulary": a vocabulary fitted on the training split (values seen at
      least `min_count` times); row 0 is padding, rows 1..`num_oov` take the
      values never seen in training, then one row per known value;
    - "hashing": `size` hash buckets, rows 1..size (row 0 is padding).
  `max_values` makes it multi-valued (e.g. a movie's genres): up to that many
  values per row, pooled (`pooling` "mean" or "sum") into one vector; padded
  values read row 0 and are left out of the pool.
  Features naming the same `table` share one embedding table (they must agree
  on lookup, size, raw dtype and width).
* `NumericFeature`: a float, standardized with the training split's mean and
  standard deviation (`normalize=True`) and fed to the MLP as it is.
* `SequenceGroup`: a behaviour sequence. Each step holds one value of each
  of the candidate features it names (e.g. item + shop + category), embedded
  with the candidate feature's own table, so that the sequence can be matched
  against the candidate (DIN's attention, DIEN's interest evolution). It has a
  maximum length, a length feature, and optionally, for DIEN's auxiliary loss,
  per-step negatives: items sampled for the sequence's item feature that carry
  their own side features.

A schema round-trips through JSON (`to_json` / `from_json`) and through
`get_config` / `from_config`, so it can live in an experiment config file.
Sizes of "vocabulary" features are unknown until a vocabulary is fitted
(`din_tf.schema.vocabulary.fit_vocabularies`); a model needs a resolved
schema (`FeatureSchema.is_resolved`).
"""

import dataclasses
import json
from typing import Optional, Tuple

GROUPS = ("user", "candidate", "context")
LOOKUPS = ("integer", "vocabulary", "hashing")
RAW_DTYPES = ("string", "int64")
POOLINGS = ("mean", "sum")


class SchemaError(ValueError):
    """A schema that cannot describe a model's inputs; the message names the
    feature or group and the field at fault."""


def _check(condition, message):
    if not condition:
        raise SchemaError(message)


def _positive_int(where, field, value, allow_none=False):
    if value is None and allow_none:
        return None
    _check(isinstance(value, int) and not isinstance(value, bool) and value > 0,
           f"{where}: {field} must be a positive integer, received {value!r}.")
    return value


@dataclasses.dataclass(frozen=True)
class CategoricalFeature:
    """An id feature (see the module docstring)."""

    name: str
    group: str
    lookup: str = "vocabulary"
    dtype: str = "string"
    size: Optional[int] = None
    min_count: int = 1
    num_oov: int = 1
    embedding_dim: int = 18
    table: Optional[str] = None
    max_values: Optional[int] = None
    pooling: str = "mean"
    column: Optional[str] = None

    kind = "categorical"

    def __post_init__(self):
        where = f"feature {self.name!r}"
        _check(isinstance(self.name, str) and self.name, f"A feature needs a non-empty name, "
               f"received {self.name!r}.")
        _check(self.group in GROUPS, f"{where}: group must be one of {list(GROUPS)}, "
               f"received {self.group!r} (behaviour sequences are declared as "
               "`sequences`, naming candidate features).")
        _check(self.lookup in LOOKUPS, f"{where}: lookup must be one of {list(LOOKUPS)}, "
               f"received {self.lookup!r}.")
        _check(self.dtype in RAW_DTYPES, f"{where}: dtype must be one of {list(RAW_DTYPES)}, "
               f"received {self.dtype!r}.")
        _check(self.pooling in POOLINGS, f"{where}: pooling must be one of {list(POOLINGS)}, "
               f"received {self.pooling!r}.")
        _positive_int(where, "embedding_dim", self.embedding_dim)
        _positive_int(where, "min_count", self.min_count)
        _positive_int(where, "num_oov", self.num_oov)
        _positive_int(where, "max_values", self.max_values, allow_none=True)
        if self.lookup == "integer":
            _check(self.dtype == "int64", f"{where}: lookup 'integer' reads int64 ids, "
                   f"received dtype {self.dtype!r}.")
        if self.lookup in ("integer", "hashing"):
            _check(self.size is not None, f"{where}: lookup {self.lookup!r} needs a size "
                   "(ids below it / hash buckets).")
        _positive_int(where, "size", self.size, allow_none=True)

    @property
    def table_name(self):
        return self.table or self.name

    @property
    def source_column(self):
        return self.column or self.name

    @property
    def multi_valued(self):
        return self.max_values is not None

    @property
    def rows(self):
        """Rows of the embedding table (None until a vocabulary is fitted)."""
        if self.size is None:
            return None
        if self.lookup == "integer":
            return self.size
        if self.lookup == "hashing":
            return self.size + 1
        return self.size + self.num_oov + 1

    @property
    def padding_value(self):
        """The raw value that fills unused slots of a multi-valued feature."""
        return "" if self.dtype == "string" else -1

    def to_dict(self):
        out = {"kind": self.kind}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value != field.default:
                out[field.name] = value
        out.setdefault("group", self.group)
        return out


@dataclasses.dataclass(frozen=True)
class NumericFeature:
    """A float feature, standardized (see the module docstring)."""

    name: str
    group: str
    normalize: bool = True
    mean: float = 0.0
    std: float = 1.0
    column: Optional[str] = None

    kind = "numeric"

    def __post_init__(self):
        where = f"feature {self.name!r}"
        _check(isinstance(self.name, str) and self.name, f"A feature needs a non-empty name, "
               f"received {self.name!r}.")
        _check(self.group in GROUPS, f"{where}: group must be one of {list(GROUPS)}, "
               f"received {self.group!r}.")
        _check(float(self.std) > 0, f"{where}: std must be > 0, received {self.std!r}.")

    @property
    def source_column(self):
        return self.column or self.name

    def to_dict(self):
        out = {"kind": self.kind, "name": self.name, "group": self.group}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name not in out and value != field.default:
                out[field.name] = value
        return out


@dataclasses.dataclass(frozen=True)
class SequenceGroup:
    """A behaviour sequence matched against candidate features.

    Args:
        name: the group's name ("history").
        features: the candidate features each step holds, in order; the
            first is the sequence's item feature (negatives are sampled for
            it).
        max_length: the longest history kept (the most recent steps).
        keys: batch key of each step feature (default `{name}_{feature}`).
        length_key: batch key of the number of real steps
            (default `{name}_length`).
        mask_key: optional batch key of a float step mask accepted instead of
            the length (the originals' `history_mask`).
        negative_keys: batch keys of the auxiliary loss's negatives, one per
            step feature (default `{name}_negative_{feature}` when
            `negatives` is true).
        negatives: whether the sequence carries negatives (DIEN's auxiliary
            loss).
    """

    name: str
    features: Tuple[str, ...]
    max_length: int = 100
    keys: Optional[Tuple[str, ...]] = None
    length_key: Optional[str] = None
    mask_key: Optional[str] = None
    negative_keys: Optional[Tuple[str, ...]] = None
    negatives: bool = False

    def __post_init__(self):
        where = f"sequence {self.name!r}"
        _check(isinstance(self.name, str) and self.name,
               f"A sequence needs a non-empty name, received {self.name!r}.")
        features = tuple(self.features or ())
        _check(features and all(isinstance(f, str) for f in features),
               f"{where}: features must name at least one candidate feature, "
               f"received {self.features!r}.")
        object.__setattr__(self, "features", features)
        _positive_int(where, "max_length", self.max_length)
        for field in ("keys", "negative_keys"):
            value = getattr(self, field)
            if value is not None:
                value = tuple(value)
                _check(len(value) == len(features), f"{where}: {field} must give one key per "
                       f"step feature {list(features)}, received {list(value)}.")
                object.__setattr__(self, field, value)
        if self.negative_keys is not None:
            object.__setattr__(self, "negatives", True)

    @property
    def step_keys(self):
        return self.keys or tuple(f"{self.name}_{f}" for f in self.features)

    @property
    def length(self):
        return self.length_key or f"{self.name}_length"

    @property
    def negative_step_keys(self):
        if not self.negatives:
            return ()
        return self.negative_keys or tuple(f"{self.name}_negative_{f}" for f in self.features)

    @property
    def item_feature(self):
        return self.features[0]

    def to_dict(self):
        out = {"name": self.name, "features": list(self.features)}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name not in out and value != field.default:
                out[field.name] = list(value) if isinstance(value, tuple) else value
        return out


_FEATURE_KINDS = {"categorical": CategoricalFeature, "numeric": NumericFeature}


def _feature_from_dict(entry):
    _check(isinstance(entry, dict), f"Each feature must be an object, received {entry!r}.")
    entry = dict(entry)
    kind = entry.pop("kind", "categorical")
    _check(kind in _FEATURE_KINDS, f"feature {entry.get('name')!r}: kind must be one of "
           f"{sorted(_FEATURE_KINDS)}, received {kind!r}.")
    cls = _FEATURE_KINDS[kind]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(entry) - known)
    _check(not unknown, f"feature {entry.get('name')!r}: unknown field(s) {unknown}; a "
           f"{kind} feature has {sorted(known)}.")
    missing = sorted(k for k in ("name", "group") if k not in entry)
    _check(not missing, f"feature {entry.get('name')!r}: missing field(s) {missing}.")
    return cls(**entry)


def _sequence_from_dict(entry):
    _check(isinstance(entry, dict), f"Each sequence must be an object, received {entry!r}.")
    known = {f.name for f in dataclasses.fields(SequenceGroup)}
    unknown = sorted(set(entry) - known)
    _check(not unknown, f"sequence {entry.get('name')!r}: unknown field(s) {unknown}; a "
           f"sequence has {sorted(known)}.")
    _check("name" in entry and "features" in entry,
           f"sequence {entry.get('name')!r}: needs 'name' and 'features'.")
    return SequenceGroup(**entry)


@dataclasses.dataclass(frozen=True)
class FeatureSchema:
    """Features and behaviour sequences; checked for consistency on creation.

    Args:
        features: `CategoricalFeature`s and `NumericFeature`s, in the order
            their vectors enter the model within each group.
        sequences: `SequenceGroup`s over the candidate features.
        label: the name of the label column in logs (1 = click).
    """

    features: Tuple[object, ...]
    sequences: Tuple[SequenceGroup, ...] = ()
    label: str = "label"

    def __post_init__(self):
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "sequences", tuple(self.sequences))
        names = [f.name for f in self.features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        _check(not duplicates, f"Feature name(s) {duplicates} declared more than once.")
        _check(any(f.group == "candidate" and f.kind == "categorical" for f in self.features),
               "The schema needs at least one categorical feature in group 'candidate' "
               "(the item being scored).")
        by_name = {f.name: f for f in self.features}
        seq_names = [s.name for s in self.sequences]
        _check(len(set(seq_names)) == len(seq_names),
               f"Sequence name(s) declared more than once: {seq_names}.")
        for seq in self.sequences:
            for name in seq.features:
                feature = by_name.get(name)
                _check(feature is not None, f"sequence {seq.name!r}: step feature {name!r} has "
                       "no candidate counterpart; declare a categorical feature "
                       f"{name!r} in group 'candidate' (candidate features: "
                       f"{[f.name for f in self.candidate_features]}).")
                _check(feature.group == "candidate" and feature.kind == "categorical",
                       f"sequence {seq.name!r}: step feature {name!r} must be a categorical "
                       f"feature in group 'candidate', it is a {feature.kind} feature in "
                       f"group {feature.group!r}.")
        keys = [k for f in self.features for k in [f.name]]
        for seq in self.sequences:
            keys += list(seq.step_keys) + [seq.length] + list(seq.negative_step_keys)
            if seq.mask_key:
                keys.append(seq.mask_key)
        clashes = sorted({k for k in keys if keys.count(k) > 1})
        _check(not clashes, f"Batch key(s) {clashes} used twice (feature names and sequence "
               "keys must differ).")
        self._check_tables()

    def _check_tables(self):
        for table, members in self.tables().items():
            first = members[0]
            for other in members[1:]:
                for field in ("lookup", "dtype", "size", "embedding_dim", "num_oov"):
                    _check(getattr(first, field) == getattr(other, field),
                           f"features {first.name!r} and {other.name!r} share table {table!r} "
                           f"but differ in {field}: {getattr(first, field)!r} vs "
                           f"{getattr(other, field)!r}.")

    # -- views -----------------------------------------------------------------
    def feature(self, name):
        for f in self.features:
            if f.name == name:
                return f
        raise SchemaError(f"No feature named {name!r}; the schema has "
                          f"{[f.name for f in self.features]}.")

    def group(self, group, kind=None):
        return tuple(f for f in self.features
                     if f.group == group and (kind is None or f.kind == kind))

    @property
    def categorical_features(self):
        return tuple(f for f in self.features if f.kind == "categorical")

    @property
    def numeric_features(self):
        return tuple(f for f in self.features if f.kind == "numeric")

    @property
    def candidate_features(self):
        return self.group("candidate", "categorical")

    def tables(self):
        """{table name: [member features]} in first-declared order."""
        tables = {}
        for f in self.categorical_features:
            tables.setdefault(f.table_name, []).append(f)
        return tables

    @property
    def is_resolved(self):
        return all(f.size is not None for f in self.categorical_features)

    def check_resolved(self, where):
        unresolved = [f.name for f in self.categorical_features if f.size is None]
        _check(not unresolved, f"{where}: feature(s) {unresolved} use a vocabulary that has not "
               "been fitted; fit the schema on the training data first "
               "(din_tf.schema.fit_vocabularies) or give their size.")

    def replace_features(self, **changes_by_name):
        """A copy with `changes_by_name[name]` (a dict of fields) applied."""
        features = [dataclasses.replace(f, **changes_by_name.get(f.name, {}))
                    for f in self.features]
        return dataclasses.replace(self, features=features)

    # -- serialization -----------------------------------------------------------
    def get_config(self):
        config = {"features": [f.to_dict() for f in self.features],
                  "sequences": [s.to_dict() for s in self.sequences]}
        if self.label != "label":
            config["label"] = self.label
        return config

    @classmethod
    def from_config(cls, config):
        if isinstance(config, FeatureSchema):
            return config
        _check(isinstance(config, dict), f"A schema must be an object with 'features' (and "
               f"'sequences'), received {type(config).__name__}.")
        unknown = sorted(set(config) - {"features", "sequences", "label"})
        _check(not unknown, f"schema: unknown field(s) {unknown}; expected 'features', "
               "'sequences', 'label'.")
        _check(isinstance(config.get("features"), list),
               "schema: 'features' must be a list of feature objects.")
        return cls(features=[_feature_from_dict(e) for e in config["features"]],
                   sequences=[_sequence_from_dict(e) for e in config.get("sequences", [])],
                   label=config.get("label", "label"))

    def to_json(self, indent=1):
        return json.dumps(self.get_config(), indent=indent)

    @classmethod
    def from_json(cls, text):
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            raise SchemaError(f"schema: not valid JSON ({error}).") from None
        return cls.from_config(config)

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            return cls.from_json(text)
        except SchemaError as error:
            raise SchemaError(f"{path}: {error}") from None
