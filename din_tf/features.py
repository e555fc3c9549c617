"""The explicit input spec shared by every model and every data pipeline.

A batch is a dict of named tensors; nothing is inferred from name prefixes.
Histories are right-padded with id 0
(docs/original_code.md#padding-id-0-and-unknown-ids) and `history_length` gives the
number of real steps (the mask is derived from it, or given as
`history_mask`, float 1.0 on real steps, 0.0 on padding).

| key | dtype | shape | meaning |
| --- | --- | --- | --- |
| `user_id` | int32 | [B] | user id (0 = unknown, as the DIEN vocabularies map it) |
| `item_id` | int32 | [B] | target item id |
| `category_id` | int32 | [B] | target item's category id |
| `history_item_ids` | int32 | [B, T] | clicked items, oldest first, 0-padded |
| `history_category_ids` | int32 | [B, T] | their categories, 0-padded |
| `history_length` | int32 | [B] | real steps per row |
| `history_mask` | float32 | [B, T] | optional, 1.0 on real steps |
| `negative_item_ids` | int32 | [B, T, K] | DIEN auxiliary loss: K sampled non-clicks per step (slot 0 is used, as coded) |
| `negative_category_ids` | int32 | [B, T, K] | their categories |

Labels are a separate float32 [B] tensor, 1.0 for a click.
"""

import dataclasses

import tensorflow as tf

USER_ID = "user_id"
ITEM_ID = "item_id"
CATEGORY_ID = "category_id"
HISTORY_ITEM_IDS = "history_item_ids"
HISTORY_CATEGORY_IDS = "history_category_ids"
HISTORY_LENGTH = "history_length"
HISTORY_MASK = "history_mask"
NEGATIVE_ITEM_IDS = "negative_item_ids"
NEGATIVE_CATEGORY_IDS = "negative_category_ids"


@dataclasses.dataclass(frozen=True)
class Feature:
    name: str
    dtype: tf.DType
    rank: int  # including the batch axis
    doc: str


FEATURES = (
    Feature(USER_ID, tf.int32, 1, "user id"),
    Feature(ITEM_ID, tf.int32, 1, "target item id"),
    Feature(CATEGORY_ID, tf.int32, 1, "target category id"),
    Feature(HISTORY_ITEM_IDS, tf.int32, 2, "history item ids, 0-padded"),
    Feature(HISTORY_CATEGORY_IDS, tf.int32, 2, "history category ids, 0-padded"),
    Feature(HISTORY_LENGTH, tf.int32, 1, "number of real history steps"),
    Feature(HISTORY_MASK, tf.float32, 2, "1.0 on real history steps"),
    Feature(NEGATIVE_ITEM_IDS, tf.int32, 3, "sampled non-clicked items per step"),
    Feature(NEGATIVE_CATEGORY_IDS, tf.int32, 3, "their categories"),
)
FEATURES_BY_NAME = {f.name: f for f in FEATURES}

BASE_KEYS = (USER_ID, ITEM_ID, CATEGORY_ID, HISTORY_ITEM_IDS, HISTORY_CATEGORY_IDS,
             HISTORY_LENGTH)
NEGATIVE_KEYS = (NEGATIVE_ITEM_IDS, NEGATIVE_CATEGORY_IDS)


def tensor_specs(max_length=None, num_negatives=None, with_negatives=False, with_mask=False):
    """`tf.TensorSpec`s for a batch (batch axis None; T = `max_length`)."""
    keys = list(BASE_KEYS)
    if with_mask:
        keys.append(HISTORY_MASK)
    if with_negatives:
        keys.extend(NEGATIVE_KEYS)
    specs = {}
    for key in keys:
        feature = FEATURES_BY_NAME[key]
        shape = [None, max_length, num_negatives][: feature.rank]
        specs[key] = tf.TensorSpec(shape, feature.dtype, name=key)
    return specs
