import numpy as np
import pytest


def make_batch(n=32, steps=6, n_users=9, n_items=30, n_categories=6, negatives=2, seed=0):
    """A small batch in the din_tf.features layout with a learnable signal:
    the label is 1 when the target's category appears in the history."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, steps + 1, size=n).astype("int32")
    history = rng.integers(1, n_items, size=(n, steps)).astype("int32")
    item_category = (np.arange(n_items) % (n_categories - 1) + 1).astype("int32")
    history[np.arange(steps)[None, :] >= lengths[:, None]] = 0
    items = rng.integers(1, n_items, size=n).astype("int32")
    labels = np.array([item_category[i] in item_category[h[:l]]
                       for i, h, l in zip(items, history, lengths)], "float32")
    neg = rng.integers(1, n_items, size=(n, steps, negatives)).astype("int32")
    features = {
        "user_id": rng.integers(0, n_users, size=n).astype("int32"),
        "item_id": items, "category_id": item_category[items],
        "history_item_ids": history, "history_category_ids": item_category[history] * (history > 0),
        "history_length": lengths,
        "negative_item_ids": neg, "negative_category_ids": item_category[neg],
    }
    return features, labels


@pytest.fixture
def batch():
    return make_batch()
