"""The DIN repo's Amazon protocol: remap ids, then per user one training pair
per history prefix and the last behaviour for test
(docs/original_code.md#data-protocol-of-the-din-repo).

Steps, as coded in the original (`utils/1_convert_pd.py`, `utils/2_remap_id.py`,
`din/build_dataset.py`):

* Only items that have meta are kept in the id space (the original keeps the
  meta rows of reviewed items; a review of an item without meta makes it
  crash — here `missing_category='error'` raises a clear error and `'drop'`
  drops those reviews).
* Category of an item: last element of its last category path.
* Ids: sorted unique strings, 0..n-1, separately for items, categories, users.
* Reviews sorted by (user id, time); ties keep file order (stable sort).
* For every user in id order, one negative per behaviour, uniform over all item
  ids and redrawn while it is one of the user's clicked items.
* Behaviour i = 1..n-2 gives (history p_0..p_{i-1}, p_i, 1) and (same history,
  neg_i, 0); behaviour n-1 gives the test row (history p_0..p_{n-2},
  (p_{n-1}, neg_{n-1})). Users with a single review give nothing.
* The train list, then the test list, are shuffled.

Randomness: the original seeds Python 2 `random` with 1234; Python 3's `random`
draws differently, so the same seed does not reproduce the original's
negatives and order, only their distribution. Everything else is exact.
"""

import dataclasses
import json
import os
import pickle
import random
from typing import List

import numpy as np
from absl import logging

from din_tf.data import amazon
from din_tf.data._io import atomic_output_dir
from din_tf.data.samples import Samples

DEFAULT_SEED = 1234


@dataclasses.dataclass
class DinDataset:
    """Output of the DIN protocol.

    Per-user click sequences are stored once (`sequence`, sorted by user then
    time; user u owns `sequence[offsets[u]:offsets[u+1]]`); rows refer to
    prefixes of them.

    Attributes:
      train_user, train_length, train_item, train_label: training rows in their
        shuffled order (history = the user's first `train_length` clicks).
      test_user, test_positive, test_negative: one test row per user (history =
        all clicks but the last), shuffled.
      cate_list: int32 [n_items], category id of each item id.
      item_keys, category_keys, user_keys: the strings behind ids 0..n-1.
      example_count: number of reviews used.
    """

    sequence: np.ndarray
    offsets: np.ndarray
    train_user: np.ndarray
    train_length: np.ndarray
    train_item: np.ndarray
    train_label: np.ndarray
    test_user: np.ndarray
    test_positive: np.ndarray
    test_negative: np.ndarray
    cate_list: np.ndarray
    item_keys: List[str]
    category_keys: List[str]
    user_keys: List[str]
    example_count: int

    @property
    def counts(self):
        return dict(n_users=len(self.user_keys), n_items=len(self.item_keys),
                    n_categories=len(self.category_keys), example_count=self.example_count)

    def test_length(self):
        return (np.diff(self.offsets)[self.test_user] - 1).astype(np.int32)

    def train_samples(self) -> Samples:
        return Samples(user_id=self.train_user, item_id=self.train_item,
                       category_id=self.cate_list[self.train_item], label=self.train_label,
                       history_start=self.offsets[self.train_user],
                       history_length=self.train_length, steps_item_id=self.sequence,
                       steps_category_id=self.cate_list[self.sequence])

    def test_samples(self) -> Samples:
        """Two rows per test user, positive (label 1) then negative (label 0)."""
        user = np.repeat(self.test_user, 2)
        item = np.stack([self.test_positive, self.test_negative], 1).reshape(-1)
        return Samples(user_id=user, item_id=item, category_id=self.cate_list[item],
                       label=np.tile([1.0, 0.0], len(self.test_user)),
                       history_start=self.offsets[user],
                       history_length=np.repeat(self.test_length(), 2),
                       steps_item_id=self.sequence,
                       steps_category_id=self.cate_list[self.sequence])


def build(reviews: amazon.Reviews, categories: dict, seed=DEFAULT_SEED,
          missing_category="error") -> DinDataset:
    """Runs the protocol on reviews and `{asin: category string}`.

    `categories` may hold extra items; only reviewed ones enter the id space.
    """
    if missing_category not in ("error", "drop"):
        raise ValueError(f"din_protocol.build: argument 'missing_category' expected 'error' "
                         f"or 'drop', got {missing_category!r}")
    keep = np.fromiter((a in categories for a in reviews.item), bool, len(reviews))
    if not keep.all():
        missing = sorted({a for a, k in zip(reviews.item, keep) if not k})
        if missing_category == "error":
            raise ValueError(f"{reviews.source}: {len(missing)} reviewed item(s) have no meta "
                             f"record (first: {missing[0]!r}); expected every reviewed asin in "
                             f"the meta file (pass missing_category='drop' to drop them)")
        logging.warning("%s: dropping %d reviews of %d items without meta", reviews.source,
                        int((~keep).sum()), len(missing))
    user_str = [u for u, k in zip(reviews.user, keep) if k]
    item_str = [a for a, k in zip(reviews.item, keep) if k]
    times = reviews.time[keep]
    if not item_str:
        raise ValueError(f"{reviews.source}: no reviews left to build the DIN dataset from")

    item_keys = sorted(set(item_str))
    category_keys = sorted({categories[a] for a in item_keys})
    user_keys = sorted(set(user_str))
    item_id = {k: i for i, k in enumerate(item_keys)}
    cat_id = {k: i for i, k in enumerate(category_keys)}
    user_id = {k: i for i, k in enumerate(user_keys)}
    cate_list = np.array([cat_id[categories[a]] for a in item_keys], np.int32)
    items = np.fromiter((item_id[a] for a in item_str), np.int32, len(item_str))
    users = np.fromiter((user_id[u] for u in user_str), np.int32, len(user_str))

    order = np.lexsort((times, users))  # stable: equal times keep file order
    sequence, users = items[order], users[order]
    offsets = np.zeros(len(user_keys) + 1, np.int64)
    np.cumsum(np.bincount(users, minlength=len(user_keys)), out=offsets[1:])

    rng = random.Random(seed)
    n_items = len(item_keys)
    negatives = np.empty_like(sequence)
    for u in range(len(user_keys)):
        lo, hi = offsets[u], offsets[u + 1]
        clicked = set(sequence[lo:hi].tolist())
        if len(clicked) >= n_items:
            raise ValueError(f"{reviews.source}: user {user_keys[u]!r} reviewed every item; "
                             "no negative can be drawn")
        for p in range(lo, hi):
            neg = int(sequence[lo])
            while neg in clicked:
                neg = rng.randint(0, n_items - 1)
            negatives[p] = neg

    lengths = np.diff(offsets)
    # Training rows: behaviours 1..n-2 of each user, positive then negative.
    train_users, train_pos = [], []
    for u in np.flatnonzero(lengths >= 3):
        train_users.append(np.full(lengths[u] - 2, u, np.int32))
        train_pos.append(np.arange(1, lengths[u] - 1, dtype=np.int64))
    train_users = np.concatenate(train_users) if train_users else np.zeros(0, np.int32)
    train_pos = np.concatenate(train_pos) if train_pos else np.zeros(0, np.int64)
    flat = offsets[train_users] + train_pos
    train_user = np.repeat(train_users, 2)
    train_length = np.repeat(train_pos, 2).astype(np.int32)
    train_item = np.stack([sequence[flat], negatives[flat]], 1).reshape(-1)
    train_label = np.tile(np.array([1.0, 0.0], np.float32), len(flat))

    test_user = np.flatnonzero(lengths >= 2).astype(np.int32)
    last = offsets[test_user + 1] - 1
    test_positive, test_negative = sequence[last], negatives[last]

    perm = list(range(len(train_user)))
    rng.shuffle(perm)
    perm = np.asarray(perm, np.int64)
    test_perm = list(range(len(test_user)))
    rng.shuffle(test_perm)
    test_perm = np.asarray(test_perm, np.int64)
    if len(test_user) != len(user_keys):
        logging.warning("DIN protocol: %d users have a single review and get no test row",
                        len(user_keys) - len(test_user))
    return DinDataset(
        sequence=sequence, offsets=offsets, train_user=train_user[perm],
        train_length=train_length[perm], train_item=train_item[perm],
        train_label=train_label[perm], test_user=test_user[test_perm],
        test_positive=test_positive[test_perm], test_negative=test_negative[test_perm],
        cate_list=cate_list, item_keys=item_keys, category_keys=category_keys,
        user_keys=user_keys, example_count=len(item_str))


def _hist(dataset, user, length):
    lo = dataset.offsets[user]
    return "[" + ", ".join(map(str, dataset.sequence[lo:lo + length].tolist())) + "]"


def write(dataset: DinDataset, output_dir, write_pickle=False):
    """Writes the dataset in the DIN authors' processed formats, all or nothing:

    * `train_set.csv`: `user,"[hist]",item,label` per training row;
    * `test_set.csv`: `user,"[hist]","(positive, negative)"` per user;
    * `cate_list.csv`: line i = category id of item i;
    * `counts.json`, `item_keys.txt`, `category_keys.txt`, `user_keys.txt` (line
      i = original string of id i);
    * with `write_pickle`, `dataset.pkl` laid out like the original's
      (train_set, test_set, cate_list, (user_count, item_count, cate_count)).
    """
    with atomic_output_dir(output_dir) as tmp:
        with open(os.path.join(tmp, "train_set.csv"), "w", encoding="utf-8") as f:
            for u, n, i, y in zip(dataset.train_user.tolist(), dataset.train_length.tolist(),
                                  dataset.train_item.tolist(), dataset.train_label.tolist()):
                f.write(f'{u},"{_hist(dataset, u, n)}",{i},{int(y)}\n')
        test_length = dataset.test_length().tolist()
        with open(os.path.join(tmp, "test_set.csv"), "w", encoding="utf-8") as f:
            for u, n, p, q in zip(dataset.test_user.tolist(), test_length,
                                  dataset.test_positive.tolist(), dataset.test_negative.tolist()):
                f.write(f'{u},"{_hist(dataset, u, n)}","({p}, {q})"\n')
        with open(os.path.join(tmp, "cate_list.csv"), "w", encoding="utf-8") as f:
            f.write("".join(f"{c}\n" for c in dataset.cate_list.tolist()))
        with open(os.path.join(tmp, "counts.json"), "w", encoding="utf-8") as f:
            json.dump(dataset.counts, f, indent=1)
        for name, keys in (("item_keys.txt", dataset.item_keys),
                           ("category_keys.txt", dataset.category_keys),
                           ("user_keys.txt", dataset.user_keys)):
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.write("".join(k.replace("\n", " ") + "\n" for k in keys))
        if write_pickle:
            seq, off = dataset.sequence.tolist(), dataset.offsets.tolist()
            train = [(u, seq[off[u]:off[u] + n], i, int(y)) for u, n, i, y in zip(
                dataset.train_user.tolist(), dataset.train_length.tolist(),
                dataset.train_item.tolist(), dataset.train_label.tolist())]
            test = [(u, seq[off[u]:off[u] + n], (p, q)) for u, n, p, q in zip(
                dataset.test_user.tolist(), test_length, dataset.test_positive.tolist(),
                dataset.test_negative.tolist())]
            c = dataset.counts
            with open(os.path.join(tmp, "dataset.pkl"), "wb") as f:
                for obj in (train, test, dataset.cate_list,
                            (c["n_users"], c["n_items"], c["n_categories"])):
                    pickle.dump(obj, f, protocol=2)
    logging.info("DIN protocol: wrote %s (%s)", output_dir, dataset.counts)
