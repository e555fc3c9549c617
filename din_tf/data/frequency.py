"""Feature-frequency table n_j for the mini-batch-aware regulariser (DIN paper
eq. 4-7; docs/original_code.md#mini-batch-aware-regularisation): occurrences of
every id of every feature in the training set.

Computed in one vectorised pass over `Samples`: targets are counted directly;
history steps are weighted by how many rows' windows cover them (a prefix shared
by many rows counts once per row), using a difference array instead of
expanding the windows.
"""

import numpy as np

from din_tf import features as F
from din_tf.data.samples import Samples


def _coverage(samples):
    m = samples.steps_item_id.shape[0]
    diff = np.zeros(m + 1, np.int64)
    np.add.at(diff, samples.history_start, 1)
    np.add.at(diff, samples.history_start + samples.history_length, -1)
    return np.cumsum(diff[:-1])


def feature_frequencies(samples: Samples, n_users=None, n_items=None, n_categories=None,
                        include_history=True):
    """`{feature: int64 counts}` for `user_id`, `item_id`, `category_id`.

    Item (category) counts include target and history occurrences when
    `include_history`, since both look up the same embedding table. Sizes
    default to max id + 1; ids beyond a given size raise ValueError.
    """
    cover = _coverage(samples) if include_history else None

    def count(ids, hist_ids, size, name):
        top = int(max(ids.max(initial=-1), -1 if hist_ids is None else hist_ids.max(initial=-1)))
        if size is None:
            size = top + 1
        elif top >= size:
            raise ValueError(f"feature_frequencies: argument for {name!r} size expected > max id "
                             f"{top}, got {size}")
        out = np.bincount(ids, minlength=size).astype(np.int64)
        if hist_ids is not None:
            out += np.bincount(hist_ids, weights=cover, minlength=size).astype(np.int64)
        return out

    hist = (lambda a: a) if include_history else (lambda a: None)
    return {
        F.USER_ID: count(samples.user_id, None, n_users, F.USER_ID),
        F.ITEM_ID: count(samples.item_id, hist(samples.steps_item_id), n_items, F.ITEM_ID),
        F.CATEGORY_ID: count(samples.category_id, hist(samples.steps_category_id), n_categories,
                             F.CATEGORY_ID),
    }
