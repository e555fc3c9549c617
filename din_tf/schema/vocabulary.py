"""Fitting a schema on the training split: vocabularies of "vocabulary"
features and the mean / standard deviation of numeric features.

Vocabularies are fitted per embedding table over every feature sharing it
(a candidate item and the items of its behaviour sequences count together),
most frequent value first (ties by value), so row numbers are reproducible.
"""

import json

import numpy as np

from din_tf.schema.features import FeatureSchema, SchemaError


def fit_vocabularies(schema: FeatureSchema, values):
    """Returns (resolved schema, {table: np.ndarray of known raw values}).

    Args:
        schema: the declared schema.
        values: {feature name: list of arrays} holding every training-split
            value of the feature, wherever it occurs (candidate, sequence
            steps, negatives); multi-valued features may give padded 2-D
            arrays (the padding value is skipped). Numeric features: one
            float array.
    """
    vocabularies, changes = {}, {}
    for table, members in schema.tables().items():
        if members[0].lookup != "vocabulary":
            continue
        feature = members[0]
        arrays = [_text_decoded(np.asarray(a).reshape(-1))
                  for m in members for a in _listed(values.get(m.name))]
        if not arrays:
            raise SchemaError(f"feature {feature.name!r}: no training values to fit its "
                              f"vocabulary (table {table!r}).")
        pooled = np.concatenate(arrays)
        kind = pooled.dtype.kind
        if feature.dtype == "string" and kind not in "OSU":
            pooled = pooled.astype(str)
        if feature.dtype == "int64":
            if kind not in "iu":
                raise SchemaError(f"feature {feature.name!r}: dtype 'int64' but the data holds "
                                  f"{pooled.dtype} values (e.g. {pooled[:1].tolist()}).")
            pooled = pooled.astype(np.int64)
        else:
            pooled = pooled.astype(str).astype(object)
        pooled = pooled[pooled != feature.padding_value]
        known, counts = np.unique(pooled, return_counts=True)
        keep = counts >= feature.min_count
        known, counts = known[keep], counts[keep]
        if known.size == 0:
            raise SchemaError(
                f"feature {feature.name!r}: empty vocabulary (no value occurs at least "
                f"min_count={feature.min_count} times in the training data).")
        order = np.lexsort((known, -counts))  # most frequent first, ties by value
        vocabularies[table] = known[order]
        for member in members:
            changes[member.name] = {"size": int(known.size)}
    for feature in schema.numeric_features:
        if not feature.normalize:
            continue
        column = np.concatenate([np.asarray(a, np.float64).reshape(-1)
                                 for a in _listed(values.get(feature.name))] or [np.zeros(0)])
        if column.size == 0 or not np.all(np.isfinite(column)):
            raise SchemaError(f"feature {feature.name!r}: numeric values must be finite and "
                              "present in the training data to standardize them.")
        std = float(column.std())
        changes[feature.name] = {"mean": float(column.mean()), "std": std if std > 0 else 1.0}
    return schema.replace_features(**changes), vocabularies


def _text_decoded(array):
    """Bytes ('S') arrays as str, decoded as UTF-8 (NumPy's `astype(str)` decodes
    bytes as ASCII and fails on any other character)."""
    return np.char.decode(array, "utf-8") if array.dtype.kind == "S" else array


def _listed(value):
    if value is None:
        return []
    return value if isinstance(value, (list, tuple)) else [value]


def save_vocabularies(path, vocabularies):
    """Writes {table: values} as JSON (values as str or int)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump({t: np.asarray(v).tolist() for t, v in vocabularies.items()}, f)


def load_vocabularies(path):
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    return {t: np.asarray(v, dtype=object if v and isinstance(v[0], str) else np.int64)
            for t, v in raw.items()}


def as_lists(vocabularies):
    """JSON-friendly {table: list} (for get_config)."""
    return {t: np.asarray(v).tolist() for t, v in vocabularies.items()}


__all__ = ["fit_vocabularies", "save_vocabularies", "load_vocabularies", "as_lists"]
