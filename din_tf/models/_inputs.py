"""Reads a feature dict into the tensors every model needs, with errors that
name a missing key."""

import collections

from keras import ops

from din_tf import features as F

ModelInputs = collections.namedtuple(
    "ModelInputs",
    "user item category history_items history_categories mask lengths "
    "negative_items negative_categories")


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
    history = ops.cast(features[F.HISTORY_ITEM_IDS], "int32")
    steps = ops.shape(history)[1]
    if F.HISTORY_MASK in features:
        mask = ops.cast(features[F.HISTORY_MASK], "float32")
        lengths = ops.cast(ops.sum(mask, axis=1), "int32")
    else:
        lengths = _flat(ops.cast(features[F.HISTORY_LENGTH], "int32"))
        mask = ops.cast(ops.arange(steps)[None, :] < lengths[:, None], "float32")
    negatives = (None, None)
    if F.NEGATIVE_ITEM_IDS in features and F.NEGATIVE_CATEGORY_IDS in features:
        negatives = tuple(ops.cast(_first_negative(features[k]), "int32")
                          for k in F.NEGATIVE_KEYS)
    return ModelInputs(
        user=_flat(features[F.USER_ID]) if F.USER_ID in features else None,
        item=_flat(features[F.ITEM_ID]),
        category=_flat(features[F.CATEGORY_ID]),
        history_items=history,
        history_categories=ops.cast(features[F.HISTORY_CATEGORY_IDS], "int32"),
        mask=mask,
        lengths=lengths,
        negative_items=negatives[0],
        negative_categories=negatives[1],
    )


def _flat(x):
    x = ops.cast(x, "int32")
    return ops.squeeze(x, -1) if len(x.shape) == 2 and x.shape[-1] == 1 else x


def _first_negative(x):
    # The DIEN repo samples 5 negatives per step and uses only the first.
    return x[:, :, 0] if len(x.shape) == 3 else x
