"""Readers for the DIN authors' processed Amazon dataset (and our
`din_protocol.write` output): `train_set.csv` (`user,"[hist]",item,label`),
`test_set.csv` (`user,"[hist]","(positive, negative)"`), `cate_list.csv` (line i
= category of item i), or the original `dataset.pkl`.

Test rows become two samples each, positive (label 1) then negative (label 0),
so the DIN repo's per-user "GAUC" is the per-user AUC over consecutive pairs.
Item ids must lie inside `cate_list` (the DIN id space has no unknown id).
"""

import dataclasses
import os
import pickle
import re

import numpy as np

from din_tf.data._io import DataFormatError, MalformedLines, describe, iter_lines, \
    require_nonempty
from din_tf.data.samples import Samples

# CSV writers quote a field only if it contains a comma, so quotes are optional.
_TRAIN_RE = re.compile(r'^\s*(\d+)\s*,\s*"?\[([\d,\s]*)\]"?\s*,\s*(\d+)\s*,\s*([01])\s*$')
_TEST_RE = re.compile(
    r'^\s*(\d+)\s*,\s*"?\[([\d,\s]*)\]"?\s*,\s*"?\(\s*(\d+)\s*,\s*(\d+)\s*\)"?\s*$')


def _ints(text):
    return [int(x) for x in text.split(",") if x.strip()]


def read_cate_list(path):
    """`cate_list.csv` → int32 [n_items]."""
    values = []
    for number, text in iter_lines(path):
        if not text.strip().isdigit():
            raise DataFormatError(path, number, f"expected a category id (non-negative int), "
                                                f"got {describe(text)}")
        values.append(int(text))
    require_nonempty(path, len(values), "categories")
    return np.asarray(values, np.int32)


def _check_items(path, number, ids, n_items):
    bad = [i for i in ids if i >= n_items]
    if bad:
        raise DataFormatError(path, number, f"item id {bad[0]} is outside cate_list "
                                            f"(expected < {n_items})")


def read_train_set(path, cate_list, skip_malformed=False):
    users, items, labels, hists = [], [], [], []
    with MalformedLines(path, skip_malformed) as bad:
        for number, text in iter_lines(path):
            m = _TRAIN_RE.match(text)
            if not m:
                bad.handle(number, f'expected user,"[hist ids]",item,label(0/1), got '
                                   f"{describe(text)}")
                continue
            hist = _ints(m.group(2))
            _check_items(path, number, hist + [int(m.group(3))], len(cate_list))
            users.append(int(m.group(1)))
            hists.append(hist)
            items.append(int(m.group(3)))
            labels.append(float(m.group(4)))
    require_nonempty(path, len(users), "training rows")
    items = np.asarray(items, np.int64)
    return Samples.from_lists(users, items, cate_list[items], labels, hists,
                              [cate_list[np.asarray(h, np.int64)] for h in hists])


def read_test_set(path, cate_list, skip_malformed=False):
    users, items, labels, hists = [], [], [], []
    with MalformedLines(path, skip_malformed) as bad:
        for number, text in iter_lines(path):
            m = _TEST_RE.match(text)
            if not m:
                bad.handle(number, f'expected user,"[hist ids]","(positive, negative)", got '
                                   f"{describe(text)}")
                continue
            hist, pos, neg = _ints(m.group(2)), int(m.group(3)), int(m.group(4))
            _check_items(path, number, hist + [pos, neg], len(cate_list))
            for item, label in ((pos, 1.0), (neg, 0.0)):
                users.append(int(m.group(1)))
                hists.append(hist)
                items.append(item)
                labels.append(label)
    require_nonempty(path, len(users), "test rows")
    items = np.asarray(items, np.int64)
    return Samples.from_lists(users, items, cate_list[items], labels, hists,
                              [cate_list[np.asarray(h, np.int64)] for h in hists])


@dataclasses.dataclass
class DinData:
    train: Samples
    test: Samples
    cate_list: np.ndarray
    n_users: int
    n_items: int
    n_categories: int


def load_din_csv(train_path, test_path, cate_list_path, skip_malformed=False):
    """The CSV form. Counts: items = len(cate_list), categories = max + 1, users =
    max user id seen + 1 (a sample may not contain every user)."""
    cate_list = read_cate_list(cate_list_path)
    train = read_train_set(train_path, cate_list, skip_malformed)
    test = read_test_set(test_path, cate_list, skip_malformed)
    users = int(max(train.user_id.max(), test.user_id.max())) + 1
    return DinData(train, test, cate_list, users, len(cate_list), int(cate_list.max()) + 1)


def load_din_dir(directory, skip_malformed=False):
    p = lambda name: os.path.join(os.fspath(directory), name)
    return load_din_csv(p("train_set.csv"), p("test_set.csv"), p("cate_list.csv"),
                        skip_malformed)


def load_din_pickle(path):
    """The original `dataset.pkl` (Python 2 pickle of train_set, test_set,
    cate_list, (user_count, item_count, cate_count))."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            train_set = pickle.load(f, encoding="latin1")
            test_set = pickle.load(f, encoding="latin1")
            cate_list = np.asarray(pickle.load(f, encoding="latin1"), np.int32)
            n_users, n_items, n_categories = pickle.load(f, encoding="latin1")
    except Exception as e:  # truncated or foreign pickles raise many types
        raise DataFormatError(path, None, "expected four pickled objects (train_set, test_set, "
                                          f"cate_list, counts), got {type(e).__name__}: {e}") from None
    train = Samples.from_lists(
        [t[0] for t in train_set], [t[2] for t in train_set],
        cate_list[np.asarray([t[2] for t in train_set], np.int64)], [t[3] for t in train_set],
        [t[1] for t in train_set], [cate_list[np.asarray(t[1], np.int64)] for t in train_set])
    rows = [(t[0], t[1], item, label) for t in test_set for item, label in
            ((t[2][0], 1.0), (t[2][1], 0.0))]
    test = Samples.from_lists(
        [r[0] for r in rows], [r[2] for r in rows],
        cate_list[np.asarray([r[2] for r in rows], np.int64)], [r[3] for r in rows],
        [r[1] for r in rows], [cate_list[np.asarray(r[1], np.int64)] for r in rows])
    return DinData(train, test, cate_list, int(n_users), int(n_items), int(n_categories))
