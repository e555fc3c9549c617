"""Reads a feature dict into the tensors every model needs, checking it on the
way in: errors name the model, the feature, what was received and what was
expected, instead of failing deep inside TensorFlow.

Checks cost nothing per step: dtypes, ranks and static sizes are checked in
Python when the function is traced (or on every eager call); what only the
values or dynamic shapes decide (history_length in [0, T], equal batch sizes
and history widths when they are unknown while tracing) becomes one
`tf.debugging` assert each in the graph. Ids may be int32 or int64 (cast to
int32, the embedding tables' index type); float ids are refused rather than
truncated.
"""

import collections

import numpy as np
import tensorflow as tf
from keras import backend, ops

from din_tf import features as F
from din_tf.schema.original import original_schema

ModelInputs = collections.namedtuple(
    "ModelInputs",
    "user item category history_items history_categories mask lengths "
    "negative_items negative_categories")

# What a schema-built model reads: `ids` {categorical feature: int32 [B] or
# [B, V]}, `numerics` {numeric feature: float32 [B]}, `sequences` {sequence
# name: SequenceInputs}.
SchemaInputs = collections.namedtuple("SchemaInputs", "ids numerics sequences")
# `steps` / `negatives` {candidate feature: int32 [B, T] or [B, T, V]}
# (negatives None when absent), `mask` float32 [B, T], `lengths` int32 [B].
SequenceInputs = collections.namedtuple("SequenceInputs", "steps mask lengths negatives")

_INTEGER_DTYPES = ("int32", "int64")
# The originals' inputs, read through their schema (sizes play no part here).
_ORIGINAL = original_schema(1, 1, 1)


def read_inputs(model_name, features, need_user=True, need_negatives=False):
    """The originals' inputs as `ModelInputs` (see `read_schema_inputs`)."""
    inputs = read_schema_inputs(model_name, _ORIGINAL, features, need_user, need_negatives)
    history = inputs.sequences["history"]
    negatives = history.negatives or {}
    return ModelInputs(
        user=inputs.ids.get(F.USER_ID), item=inputs.ids[F.ITEM_ID],
        category=inputs.ids[F.CATEGORY_ID], history_items=history.steps[F.ITEM_ID],
        history_categories=history.steps[F.CATEGORY_ID], mask=history.mask,
        lengths=history.lengths, negative_items=negatives.get(F.ITEM_ID),
        negative_categories=negatives.get(F.CATEGORY_ID))


class _Key(collections.namedtuple("_Key", "name kind ranks time_major multi_valued")):
    """How one batch key is read: kind "ids", "float", "length" or "mask";
    accepted ranks (with the batch axis); whether axis 1 is a history's T."""


def _keys(schema, need_user, need_negatives, features):
    """(keys to read in order, missing key descriptions)."""
    keys, missing = [], []
    for f in schema.features:
        if f.group == "user" and not need_user:
            continue
        multi = f.kind == "categorical" and f.multi_valued
        ranks = (2,) if multi else (1, 2)
        keys.append(_Key(f.name, "ids" if f.kind == "categorical" else "float", ranks,
                         False, multi))
    for seq in schema.sequences:
        multi = [schema.feature(n).multi_valued for n in seq.features]
        keys += [_Key(k, "ids", (3,) if m else (2,), True, m)
                 for k, m in zip(seq.step_keys, multi)]
        if seq.length in features or seq.mask_key is None or seq.mask_key not in features:
            keys.append(_Key(seq.length, "length", (1, 2), False, False))
        if seq.mask_key is not None and seq.mask_key in features:
            keys.append(_Key(seq.mask_key, "mask", (2,), True, False))
        if seq.negatives:
            negative = [_Key(k, "ids", (3,) if m else (2, 3), True, m)
                        for k, m in zip(seq.negative_step_keys, multi)]
            if need_negatives:
                keys += negative
            elif all(k.name in features for k in negative):
                keys += negative
    for key in keys:
        if key.name not in features:
            if key.kind == "length" and schema_mask_key(schema, key.name):
                missing.append(f"{key.name} (or {schema_mask_key(schema, key.name)})")
            else:
                missing.append(key.name)
    return keys, missing


def schema_mask_key(schema, length_key):
    for seq in schema.sequences:
        if seq.length == length_key:
            return seq.mask_key
    return None


def read_schema_inputs(model_name, schema, features, need_user=True, need_negatives=False):
    """Reads a feature dict as `schema` declares it, checking dtypes, ranks and
    sizes (see the module docstring)."""
    if not isinstance(features, dict):
        raise ValueError(
            f"{model_name} expects a dict of named features (see din_tf.features), "
            f"received {type(features).__name__}.")
    keys, missing = _keys(schema, need_user, need_negatives, features)
    if missing:
        raise ValueError(
            f"{model_name}: missing input(s) {missing}; received keys "
            f"{sorted(features)}.")
    by_name = {k.name: k for k in keys}
    given = {k.name: _checked(model_name, k, features[k.name]) for k in keys}
    size_checks = _check_sizes(model_name, schema, keys, given)
    if size_checks:  # every feature is read only after its sizes are asserted
        with tf.control_dependencies(size_checks):
            given = {k: tf.identity(v) for k, v in given.items()}

    ids, numerics = {}, {}
    for f in schema.features:
        if f.name not in given:
            continue
        if f.kind == "numeric":
            numerics[f.name] = _one_per_row(ops.cast(given[f.name], "float32"))
        elif f.multi_valued:
            ids[f.name] = ops.cast(given[f.name], "int32")
        else:
            ids[f.name] = _flat(ops.cast(given[f.name], "int32"))
    sequences = {}
    for seq in schema.sequences:
        steps = {n: ops.cast(given[k], "int32") for n, k in zip(seq.features, seq.step_keys)}
        first = steps[seq.features[0]]
        width = ops.shape(first)[1]
        if seq.mask_key is not None and seq.mask_key in given:
            mask = ops.cast(given[seq.mask_key], "float32")
            lengths = ops.cast(ops.sum(mask, axis=1), "int32")
        else:
            lengths = _flat(ops.cast(given[seq.length], "int32"))
            length_checks = _check_lengths(model_name, seq, lengths, first.shape[1], width)
            if length_checks:
                with tf.control_dependencies(length_checks):
                    lengths = tf.identity(lengths)
            mask = ops.cast(ops.arange(width)[None, :] < lengths[:, None], "float32")
        negatives = None
        if seq.negatives and all(k in given for k in seq.negative_step_keys):
            negatives = {n: ops.cast(
                given[k] if by_name[k].multi_valued else _first_negative(given[k]), "int32")
                for n, k in zip(seq.features, seq.negative_step_keys)}
        sequences[seq.name] = SequenceInputs(steps, mask, lengths, negatives)
    return SchemaInputs(ids, numerics, sequences)


def _checked(model_name, key, value):
    """`value` with a dtype and a rank the key allows (checked in Python)."""
    if not hasattr(value, "dtype") or not hasattr(value, "shape"):
        value = np.asarray(value)
    dtype = backend.standardize_dtype(value.dtype)
    name = key.name
    if key.kind == "mask":
        if not (dtype.startswith("float") or dtype.startswith("bfloat") or dtype == "bool"):
            raise ValueError(f"{model_name}: feature {name!r} has dtype {dtype}; expected "
                             "float32 (1.0 on real steps) or bool.")
    elif key.kind == "float":
        if not (dtype.startswith("float") or dtype.startswith("bfloat")
                or dtype in _INTEGER_DTYPES):
            raise ValueError(f"{model_name}: feature {name!r} has dtype {dtype}; expected "
                             "float32 values.")
    elif dtype not in _INTEGER_DTYPES:
        what = "step counts" if key.kind == "length" else "ids"
        raise ValueError(f"{model_name}: feature {name!r} has dtype {dtype}; expected int32 "
                         f"(or int64) {what}. Floats are refused rather than truncated: cast "
                         "them where they are made.")
    if value.shape is not None and len(value.shape) not in key.ranks:
        if key.multi_valued:
            shapes = {2: "[B, V]", 3: "[B, T, V]"}
        else:
            shapes = {1: "[B]", 2: "[B, T]" if key.time_major else "[B, 1]", 3: "[B, T, K]"}
        raise ValueError(f"{model_name}: feature {name!r} has shape {tuple(value.shape)}; "
                         f"expected {' or '.join(shapes[r] for r in key.ranks)}.")
    if (not key.time_major and not key.multi_valued and len(value.shape) == 2
            and value.shape[1] not in (None, 1)):
        raise ValueError(f"{model_name}: feature {name!r} has shape {tuple(value.shape)}; "
                         "expected [B] or [B, 1] (one value per row).")
    return value


def _check_sizes(model_name, schema, keys, given):
    """Equal batch sizes across features and equal T within each sequence:
    compared in Python where the shapes are static, else one graph assert per
    kind (returned, for control dependencies)."""
    asserts = []
    groups = [(0, [k.name for k in keys], "batch size")]
    for seq in schema.sequences:
        time_keys = set(seq.step_keys) | set(seq.negative_step_keys) | {seq.mask_key}
        groups.append((1, [k.name for k in keys if k.time_major and k.name in time_keys],
                       "history width T"))
    for axis, names, what in groups:
        static = {k: given[k].shape[axis] for k in names if given[k].shape[axis] is not None}
        if len(set(static.values())) > 1:
            (first, a), (key, b) = next(iter(static.items())), next(
                (k, v) for k, v in static.items() if v != next(iter(static.values())))
            raise ValueError(f"{model_name}: feature {key!r} has {what} {b} but {first!r} has "
                             f"{a}; expected equal {what}s.")
        if len(static) < len(names):
            sizes = tf.stack([tf.shape(given[k])[axis] for k in names])
            # Unquoted names: TensorFlow escapes quotes in assert messages.
            asserts.append(tf.debugging.Assert(
                tf.reduce_all(tf.equal(sizes, sizes[0])),
                [f"{model_name}: features {', '.join(names)} differ in {what} (in this order):",
                 sizes, f"expected equal {what}s"], summarize=len(names)))
    return asserts


def _check_lengths(model_name, seq, lengths, static_steps, steps):
    length_key, width_key = seq.length, seq.step_keys[0]
    if tf.executing_eagerly() and hasattr(lengths, "numpy") and static_steps is not None:
        values = lengths.numpy()
        bad = values[(values < 0) | (values > static_steps)]
        if bad.size:
            raise ValueError(f"{model_name}: feature {length_key!r} must lie in [0, T], "
                             f"T being the width of {width_key!r} = {static_steps}; "
                             f"received {int(bad[0])}.")
        return []
    steps = tf.cast(steps, lengths.dtype)
    in_range = tf.logical_and(tf.reduce_min(lengths) >= 0, tf.reduce_max(lengths) <= steps)
    return [tf.debugging.Assert(in_range, [
        f"{model_name}: feature {length_key} must lie in [0, T], T being the width of "
        f"{width_key} =", steps, f"; received {length_key} =", lengths],
        summarize=32)]


def _flat(x):
    return _one_per_row(ops.cast(x, "int32"))


def _one_per_row(x):
    """[B, 1] → [B]."""
    return ops.squeeze(x, -1) if len(x.shape) == 2 and x.shape[-1] == 1 else x


def _first_negative(x):
    # The DIEN repo samples 5 negatives per step and uses only the first.
    return x[:, :, 0] if len(x.shape) == 3 else x
