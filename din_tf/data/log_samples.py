"""`LogSamples`: examples of a feature schema in raw values (strings, int64
ids, floats), the in-memory form the log protocols produce and the schema
input pipeline consumes (it applies the schema's lookups in tf.data).

Like `Samples`, behaviour sequences are stored once per user as flat step
arrays and each row reads a (start, length) window, so the DIN protocol's
every-prefix rows cost no copies.
"""

import dataclasses
from typing import Dict, Optional

import numpy as np

from din_tf.schema.features import FeatureSchema


@dataclasses.dataclass
class SequenceColumns:
    """One behaviour sequence of every row.

    Attributes:
      start: int64 [N], offset of row i's first step in `steps`.
      length: int32 [N], steps of row i (oldest first, most recent last).
      steps: {candidate feature name: [M] (or [M, V] multi-valued)} raw values.
    """

    start: np.ndarray
    length: np.ndarray
    steps: Dict[str, np.ndarray]


@dataclasses.dataclass
class NegativePool:
    """Where a sequence's auxiliary-loss negatives come from.

    Attributes:
      items: {candidate feature name: [P] (or [P, V])} one entry per distinct
        item: its raw id and side features.
      draws: int64 [Q] indices into `items`, drawn uniformly (repeat an item
        to weight it, e.g. once per occurrence in the log).
    """

    items: Dict[str, np.ndarray]
    draws: np.ndarray


@dataclasses.dataclass
class LogSamples:
    """N examples of `schema` in raw values.

    Attributes:
      schema: the declared schema the columns follow.
      columns: {feature name: [N] (or [N, V])} for every user, candidate and
        context feature; strings as bytes ('S') arrays, ids int64, numerics
        float32.
      label: float32 [N], 1.0 for a click.
      sequences: {sequence name: SequenceColumns}.
      negatives: {sequence name: NegativePool} for sequences with negatives.
    """

    schema: FeatureSchema
    columns: Dict[str, np.ndarray]
    label: np.ndarray
    sequences: Dict[str, SequenceColumns]
    negatives: Optional[Dict[str, NegativePool]] = None

    def __post_init__(self):
        self.label = np.asarray(self.label, np.float32)
        self.negatives = self.negatives or {}
        self.validate()

    def __len__(self):
        return int(self.label.shape[0])

    def validate(self):
        n = len(self)
        if self.label.shape != (n,) or (n and not np.isin(self.label, (0.0, 1.0)).all()):
            raise ValueError(f"LogSamples.label: expected shape ({n},) with 0 or 1 in every row")
        for feature in self.schema.features:
            column = self.columns.get(feature.name)
            if column is None:
                raise ValueError(f"LogSamples: no column for feature {feature.name!r}")
            _check_values(f"column {feature.name!r}", feature, column, n)
        for seq in self.schema.sequences:
            part = self.sequences.get(seq.name)
            if part is None:
                raise ValueError(f"LogSamples: no sequence {seq.name!r}")
            if part.start.shape != (n,) or part.length.shape != (n,):
                raise ValueError(f"LogSamples: sequence {seq.name!r} start/length must have "
                                 f"shape ({n},)")
            m = None
            for name in seq.features:
                steps = part.steps.get(name)
                if steps is None:
                    raise ValueError(f"LogSamples: sequence {seq.name!r} has no steps of "
                                     f"{name!r}")
                m = steps.shape[0] if m is None else m
                _check_values(f"sequence {seq.name!r} steps of {name!r}",
                              self.schema.feature(name), steps, m)
            if n and (part.length.min() < 0 or part.start.min() < 0
                      or (part.start + part.length).max() > m):
                raise ValueError(f"LogSamples: sequence {seq.name!r} windows must lie inside "
                                 f"its {m} stored steps")
            if seq.negatives and seq.name in self.negatives:
                pool = self.negatives[seq.name]
                p = None
                for name in seq.features:
                    items = pool.items.get(name)
                    if items is None:
                        raise ValueError(f"LogSamples: negatives of {seq.name!r} lack "
                                         f"{name!r}")
                    p = items.shape[0] if p is None else p
                    _check_values(f"negatives of {seq.name!r}: {name!r}",
                                  self.schema.feature(name), items, p)
                if pool.draws.size == 0 or pool.draws.min() < 0 or pool.draws.max() >= p:
                    raise ValueError(f"LogSamples: negatives of {seq.name!r}: draws must be "
                                     f"indices into its {p} items")

    def select(self, rows):
        """A subset of rows (stored steps and pools shared, not copied)."""
        rows = np.asarray(rows)
        return dataclasses.replace(
            self, columns={k: v[rows] for k, v in self.columns.items()},
            label=self.label[rows],
            sequences={k: dataclasses.replace(s, start=s.start[rows], length=s.length[rows])
                       for k, s in self.sequences.items()})

    def raw_rows(self, rows=None):
        """Rows as raw request dicts (e.g. for `din_tf.export.raw_serving_request`
        or a served model): every feature's value, and per sequence its last
        `max_length` steps (oldest first) and their count."""
        out = []
        for i in range(len(self)) if rows is None else rows:
            row = {name: _plain(column[i]) for name, column in self.columns.items()}
            for seq in self.schema.sequences:
                part = self.sequences[seq.name]
                end = int(part.start[i]) + int(part.length[i])
                begin = max(int(part.start[i]), end - seq.max_length)
                for name, key in zip(seq.features, seq.step_keys):
                    row[key] = [_plain(v) for v in part.steps[name][begin:end]]
                row[seq.length] = end - begin
            out.append(row)
        return out

    # -- files ---------------------------------------------------------------------
    def save(self, path):
        """Writes one uncompressed .npz (arrays) with the schema inside."""
        arrays = {"label": self.label}
        for name, column in self.columns.items():
            arrays[f"column/{name}"] = column
        for name, part in self.sequences.items():
            arrays[f"sequence/{name}/start"] = part.start
            arrays[f"sequence/{name}/length"] = part.length
            for feature, steps in part.steps.items():
                arrays[f"sequence/{name}/steps/{feature}"] = steps
        for name, pool in self.negatives.items():
            arrays[f"negatives/{name}/draws"] = pool.draws
            for feature, items in pool.items.items():
                arrays[f"negatives/{name}/items/{feature}"] = items
        arrays["schema"] = np.frombuffer(self.schema.to_json().encode(), np.uint8)
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path):
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        schema = FeatureSchema.from_json(arrays.pop("schema").tobytes().decode())
        columns, sequences, negatives = {}, {}, {}
        for key, value in arrays.items():
            parts = key.split("/")
            if parts[0] == "column":
                columns[parts[1]] = value
            elif parts[0] == "sequence":
                entry = sequences.setdefault(parts[1], {"steps": {}})
                if parts[2] == "steps":
                    entry["steps"][parts[3]] = value
                else:
                    entry[parts[2]] = value
            elif parts[0] == "negatives":
                entry = negatives.setdefault(parts[1], {"items": {}})
                if parts[2] == "items":
                    entry["items"][parts[3]] = value
                else:
                    entry[parts[2]] = value
        return cls(schema=schema, columns=columns, label=arrays["label"],
                   sequences={k: SequenceColumns(**v) for k, v in sequences.items()},
                   negatives={k: NegativePool(**v) for k, v in negatives.items()})


def _plain(value):
    """A NumPy value as a Python one (bytes decoded; multi-valued rows as
    lists without their padding)."""
    if isinstance(value, np.ndarray):
        return [v for v in (_plain(x) for x in value) if v not in ("", -1)]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value.item() if isinstance(value, np.generic) else value


def _check_values(where, feature, values, rows):
    values = np.asarray(values)
    rank = 2 if getattr(feature, "max_values", None) else 1
    if values.ndim != rank or values.shape[0] != rows:
        expected = f"({rows}, V)" if rank == 2 else f"({rows},)"
        raise ValueError(f"LogSamples: {where} has shape {values.shape}, expected {expected}")
    kind = values.dtype.kind
    if feature.kind == "numeric":
        ok = kind == "f"
    elif feature.dtype == "string":
        ok = kind in "SU"
    else:
        ok = kind in "iu"
    if not ok:
        expected = {"numeric": "float"}.get(feature.kind, getattr(feature, "dtype", ""))
        raise ValueError(f"LogSamples: {where} holds {values.dtype} values, the schema's "
                         f"feature {feature.name!r} expects {expected}")


__all__ = ["LogSamples", "NegativePool", "SequenceColumns"]
