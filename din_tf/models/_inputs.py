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

ModelInputs = collections.namedtuple(
    "ModelInputs",
    "user item category history_items history_categories mask lengths "
    "negative_items negative_categories")

_INTEGER_DTYPES = ("int32", "int64")
# Accepted ranks per feature: [B] features may also come as [B, 1] (the
# originals' placeholders), negatives as [B, T] (one per step) or [B, T, K].
_RANKS = {F.USER_ID: (1, 2), F.ITEM_ID: (1, 2), F.CATEGORY_ID: (1, 2),
          F.HISTORY_ITEM_IDS: (2,), F.HISTORY_CATEGORY_IDS: (2,), F.HISTORY_LENGTH: (1, 2),
          F.HISTORY_MASK: (2,), F.NEGATIVE_ITEM_IDS: (2, 3), F.NEGATIVE_CATEGORY_IDS: (2, 3)}
# Features whose axis 1 is the history's time axis T.
_TIME_MAJOR = (F.HISTORY_ITEM_IDS, F.HISTORY_CATEGORY_IDS, F.HISTORY_MASK,
               F.NEGATIVE_ITEM_IDS, F.NEGATIVE_CATEGORY_IDS)


def read_inputs(model_name, features, need_user=True, need_negatives=False):
    if not isinstance(features, dict):
        raise ValueError(
            f"{model_name} expects a dict of named features (see din_tf.features), "
            f"received {type(features).__name__}.")
    required = [F.ITEM_ID, F.CATEGORY_ID, F.HISTORY_ITEM_IDS, F.HISTORY_CATEGORY_IDS]
    if need_user:
        required.insert(0, F.USER_ID)
    if need_negatives:
        required += list(F.NEGATIVE_KEYS)
    missing = [k for k in required if k not in features]
    if F.HISTORY_LENGTH not in features and F.HISTORY_MASK not in features:
        missing.append(f"{F.HISTORY_LENGTH} (or {F.HISTORY_MASK})")
    if missing:
        raise ValueError(
            f"{model_name}: missing input(s) {missing}; received keys "
            f"{sorted(features)}.")
    used = [k for k in _RANKS if k in features and (k != F.USER_ID or need_user)]
    if not (F.NEGATIVE_ITEM_IDS in features and F.NEGATIVE_CATEGORY_IDS in features):
        used = [k for k in used if k not in F.NEGATIVE_KEYS]
    given = {k: _checked(model_name, k, features[k]) for k in used}
    size_checks = _check_sizes(model_name, given)
    if size_checks:  # every feature is read only after its sizes are asserted
        with tf.control_dependencies(size_checks):
            given = {k: tf.identity(v) for k, v in given.items()}

    history = ops.cast(given[F.HISTORY_ITEM_IDS], "int32")
    steps = ops.shape(history)[1]
    if F.HISTORY_MASK in given:
        mask = ops.cast(given[F.HISTORY_MASK], "float32")
        lengths = ops.cast(ops.sum(mask, axis=1), "int32")
    else:
        lengths = _flat(ops.cast(given[F.HISTORY_LENGTH], "int32"))
        length_checks = _check_lengths(model_name, lengths, history.shape[1], steps)
        if length_checks:
            with tf.control_dependencies(length_checks):
                lengths = tf.identity(lengths)
        mask = ops.cast(ops.arange(steps)[None, :] < lengths[:, None], "float32")
    negatives = (None, None)
    if F.NEGATIVE_ITEM_IDS in given:
        negatives = tuple(ops.cast(_first_negative(given[k]), "int32")
                          for k in F.NEGATIVE_KEYS)
    return ModelInputs(
        user=_flat(given[F.USER_ID]) if F.USER_ID in given else None,
        item=_flat(given[F.ITEM_ID]),
        category=_flat(given[F.CATEGORY_ID]),
        history_items=history,
        history_categories=ops.cast(given[F.HISTORY_CATEGORY_IDS], "int32"),
        mask=mask,
        lengths=lengths,
        negative_items=negatives[0],
        negative_categories=negatives[1],
    )


def _checked(model_name, key, value):
    """`value` with a dtype and a rank the feature allows (checked in Python)."""
    if not hasattr(value, "dtype") or not hasattr(value, "shape"):
        value = np.asarray(value)
    dtype = backend.standardize_dtype(value.dtype)
    if key == F.HISTORY_MASK:
        if not (dtype.startswith("float") or dtype.startswith("bfloat") or dtype == "bool"):
            raise ValueError(f"{model_name}: feature {key!r} has dtype {dtype}; expected "
                             "float32 (1.0 on real steps) or bool.")
    elif dtype not in _INTEGER_DTYPES:
        what = "step counts" if key == F.HISTORY_LENGTH else "ids"
        raise ValueError(f"{model_name}: feature {key!r} has dtype {dtype}; expected int32 "
                         f"(or int64) {what}. Floats are refused rather than truncated: cast "
                         "them where they are made.")
    if value.shape is not None and len(value.shape) not in _RANKS[key]:
        shapes = {1: "[B]", 2: "[B, T]" if key in _TIME_MAJOR else "[B, 1]", 3: "[B, T, K]"}
        raise ValueError(f"{model_name}: feature {key!r} has shape {tuple(value.shape)}; "
                         f"expected {' or '.join(shapes[r] for r in _RANKS[key])}.")
    if key not in _TIME_MAJOR and len(value.shape) == 2 and value.shape[1] not in (None, 1):
        raise ValueError(f"{model_name}: feature {key!r} has shape {tuple(value.shape)}; "
                         "expected [B] or [B, 1] (one value per row).")
    return value


def _check_sizes(model_name, given):
    """Equal batch sizes across features and equal T across the history
    features: compared in Python where the shapes are static, else one graph
    assert per kind (returned, for control dependencies)."""
    asserts = []
    for axis, keys, what in ((0, list(given), "batch size"),
                             (1, [k for k in _TIME_MAJOR if k in given], "history width T")):
        static = {k: given[k].shape[axis] for k in keys if given[k].shape[axis] is not None}
        if len(set(static.values())) > 1:
            (first, a), (key, b) = next(iter(static.items())), next(
                (k, v) for k, v in static.items() if v != next(iter(static.values())))
            raise ValueError(f"{model_name}: feature {key!r} has {what} {b} but {first!r} has "
                             f"{a}; expected equal {what}s.")
        if len(static) < len(keys):
            sizes = tf.stack([tf.shape(given[k])[axis] for k in keys])
            # Unquoted names: TensorFlow escapes quotes in assert messages.
            asserts.append(tf.debugging.Assert(
                tf.reduce_all(tf.equal(sizes, sizes[0])),
                [f"{model_name}: features {', '.join(keys)} differ in {what} (in this order):",
                 sizes, f"expected equal {what}s"], summarize=len(keys)))
    return asserts


def _check_lengths(model_name, lengths, static_steps, steps):
    if tf.executing_eagerly() and hasattr(lengths, "numpy") and static_steps is not None:
        values = lengths.numpy()
        bad = values[(values < 0) | (values > static_steps)]
        if bad.size:
            raise ValueError(f"{model_name}: feature {F.HISTORY_LENGTH!r} must lie in [0, T], "
                             f"T being the width of {F.HISTORY_ITEM_IDS!r} = {static_steps}; "
                             f"received {int(bad[0])}.")
        return []
    steps = tf.cast(steps, lengths.dtype)
    in_range = tf.logical_and(tf.reduce_min(lengths) >= 0, tf.reduce_max(lengths) <= steps)
    return [tf.debugging.Assert(in_range, [
        f"{model_name}: feature {F.HISTORY_LENGTH} must lie in [0, T], T being the width of "
        f"{F.HISTORY_ITEM_IDS} =", steps, f"; received {F.HISTORY_LENGTH} =", lengths],
        summarize=32)]


def _flat(x):
    x = ops.cast(x, "int32")
    return ops.squeeze(x, -1) if len(x.shape) == 2 and x.shape[-1] == 1 else x


def _first_negative(x):
    # The DIEN repo samples 5 negatives per step and uses only the first.
    return x[:, :, 0] if len(x.shape) == 3 else x
