"""`Samples`: integer-id training examples with variable-length histories, the
in-memory form every reader produces and `pipeline.make_dataset` consumes.

Histories are stored as (start, length) windows into flat per-step arrays. Both
protocols build histories that are prefixes of a user's click sequence, so many
rows can share one stored sequence instead of holding quadratic copies.
"""

import dataclasses
import itertools
from typing import Optional

import numpy as np


@dataclasses.dataclass
class Samples:
    """N examples over M stored history steps.

    Attributes:
      user_id, item_id, category_id: int32 [N] (target item and its category).
      label: float32 [N], 1.0 for a click.
      history_start: int64 [N], offset of row i's first behaviour in `steps_*`.
      history_length: int32 [N], number of behaviours of row i (oldest first).
      steps_item_id, steps_category_id: int32 [M].
      steps_negative_item_id, steps_negative_category_id: optional int32 [M, K]
        fixed negatives per stored step (e.g. the golden inputs); when absent
        the input pipeline samples them.
    """

    user_id: np.ndarray
    item_id: np.ndarray
    category_id: np.ndarray
    label: np.ndarray
    history_start: np.ndarray
    history_length: np.ndarray
    steps_item_id: np.ndarray
    steps_category_id: np.ndarray
    steps_negative_item_id: Optional[np.ndarray] = None
    steps_negative_category_id: Optional[np.ndarray] = None

    def __post_init__(self):
        for name in ("user_id", "item_id", "category_id", "history_length",
                     "steps_item_id", "steps_category_id"):
            setattr(self, name, _int32(name, getattr(self, name)))
        self.history_start = np.asarray(self.history_start, np.int64)
        self.label = np.asarray(self.label, np.float32)
        for name in ("steps_negative_item_id", "steps_negative_category_id"):
            if getattr(self, name) is not None:
                setattr(self, name, _int32(name, getattr(self, name)))
        self.validate()

    def __len__(self):
        return int(self.user_id.shape[0])

    def validate(self):
        n = len(self)
        for name in ("item_id", "category_id", "label", "history_start", "history_length"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"Samples.{name}: expected shape ({n},), "
                                 f"got {getattr(self, name).shape}")
        m = self.steps_item_id.shape[0]
        if self.steps_category_id.shape != (m,):
            raise ValueError(f"Samples.steps_category_id: expected shape ({m},), "
                             f"got {self.steps_category_id.shape}")
        if n and (self.history_length.min() < 0 or self.history_start.min() < 0
                  or (self.history_start + self.history_length).max() > m):
            raise ValueError(f"Samples: history windows must lie inside the {m} stored steps")
        if n and not np.isin(self.label, (0.0, 1.0)).all():
            # NaN/inf labels turn every weight into NaN after one step, and a
            # label of 2 or -1 trains on a loss that is no cross-entropy.
            row = int(np.flatnonzero(~np.isin(self.label, (0.0, 1.0)))[0])
            raise ValueError(f"Samples.label: expected 0 or 1 in every row, got "
                             f"{float(self.label[row])} at row {row}")
        self._check_non_negative_ids()
        negatives = (self.steps_negative_item_id, self.steps_negative_category_id)
        if (negatives[0] is None) != (negatives[1] is None):
            raise ValueError("Samples: give both steps_negative_item_id and "
                             "steps_negative_category_id, or neither")
        if negatives[0] is not None:
            if negatives[0].ndim != 2 or negatives[0].shape[0] != m or \
                    negatives[1].shape != negatives[0].shape:
                raise ValueError(f"Samples: fixed negatives must both have shape ({m}, K), got "
                                 f"{negatives[0].shape} and {negatives[1].shape}")

    def _check_non_negative_ids(self):
        # Id 0 is padding/unknown; a negative id reads no embedding row.
        for name in ("user_id", "item_id", "category_id", "steps_item_id", "steps_category_id",
                     "steps_negative_item_id", "steps_negative_category_id"):
            ids = getattr(self, name)
            if ids is not None and ids.size and ids.min() < 0:
                index = np.unravel_index(int(np.argmin(ids)), ids.shape)
                raise ValueError(f"Samples.{name}: expected ids >= 0, got {int(ids.min())} at "
                                 f"index {index[0] if len(index) == 1 else index}")

    def history(self, i):
        """(items, categories) of row i, oldest first."""
        s, n = int(self.history_start[i]), int(self.history_length[i])
        return self.steps_item_id[s:s + n], self.steps_category_id[s:s + n]

    def select(self, rows):
        """A view-sharing subset of rows (the stored steps are not copied)."""
        rows = np.asarray(rows)
        return dataclasses.replace(
            self, user_id=self.user_id[rows], item_id=self.item_id[rows],
            category_id=self.category_id[rows], label=self.label[rows],
            history_start=self.history_start[rows], history_length=self.history_length[rows])

    @classmethod
    def from_lists(cls, user_id, item_id, category_id, label, history_items,
                   history_categories, negative_items=None, negative_categories=None):
        """Builds from per-row Python/NumPy sequences (each row stored separately)."""
        lengths = np.array([len(h) for h in history_items], np.int32)
        if [len(h) for h in history_categories] != lengths.tolist():
            raise ValueError("history_categories: every row must have as many "
                             "categories as history_items")
        starts = np.zeros(len(lengths), np.int64)
        if len(lengths):
            starts[1:] = np.cumsum(lengths)[:-1]
        total = int(lengths.sum())
        flat = lambda rows: np.fromiter(itertools.chain.from_iterable(rows), np.int64, total)
        items, cats = flat(history_items), flat(history_categories)
        neg_i = neg_c = None
        if negative_items is not None:
            stack = lambda rows: np.concatenate(
                [np.asarray(r, np.int64).reshape(len(r), -1) for r in rows if len(r)])
            neg_i, neg_c = stack(negative_items), stack(negative_categories)
        return cls(user_id=user_id, item_id=item_id, category_id=category_id, label=label,
                   history_start=starts, history_length=lengths, steps_item_id=items,
                   steps_category_id=cats, steps_negative_item_id=neg_i,
                   steps_negative_category_id=neg_c)


def _int32(name, values):
    """`values` as int32, refusing what the cast would silently change: a
    fractional id (1.5 would read row 1) or one outside int32 (it would wrap)."""
    values = np.asarray(values)
    if values.dtype == np.int32:
        return values
    if values.size and values.dtype.kind == "f" and not np.all(np.mod(values, 1) == 0):
        bad = values[np.mod(values, 1) != 0].flat[0]
        raise ValueError(f"Samples.{name}: expected integer ids, got {float(bad)}")
    if values.size and values.dtype.kind in "iuf" and (
            values.min() < np.iinfo(np.int32).min or values.max() > np.iinfo(np.int32).max):
        raise ValueError(f"Samples.{name}: expected ids that fit int32, got values in "
                         f"[{values.min()}, {values.max()}]")
    return values.astype(np.int32)


def concatenate(parts):
    """Stacks several `Samples` (stored steps are concatenated, windows shifted)."""
    parts = list(parts)
    offsets = np.cumsum([0] + [p.steps_item_id.shape[0] for p in parts[:-1]])
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])
    has_neg = all(p.steps_negative_item_id is not None for p in parts)
    return Samples(
        user_id=cat("user_id"), item_id=cat("item_id"), category_id=cat("category_id"),
        label=cat("label"),
        history_start=np.concatenate([p.history_start + o for p, o in zip(parts, offsets)]),
        history_length=cat("history_length"), steps_item_id=cat("steps_item_id"),
        steps_category_id=cat("steps_category_id"),
        steps_negative_item_id=cat("steps_negative_item_id") if has_neg else None,
        steps_negative_category_id=cat("steps_negative_category_id") if has_neg else None)
