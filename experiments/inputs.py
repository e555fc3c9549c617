"""Turns a DataConfig into training/evaluation datasets and vocabulary sizes."""

import dataclasses
import functools
import hashlib
import json
import os
from typing import Optional

import numpy as np
from absl import logging

from din_tf.data import load_dien_dir, load_din_dir, make_dataset, prepare
from din_tf.data.pipeline import NegativeSampler
from din_tf.data.samples import Samples


@dataclasses.dataclass
class ExperimentData:
    train: Samples
    test: Samples
    sampler: Optional[NegativeSampler]
    n_users: int
    n_items: int
    n_categories: int

    @functools.cached_property
    def test_groups(self):
        """One group per (user, history): the rows of one user's impression,
        a (negative, positive) pair in both protocols. (DIEN test users all
        map to uid 0, so the history has to tell them apart.)"""
        keys = {}
        groups = np.empty(len(self.test), np.int64)
        for row in range(len(self.test)):
            items, _ = self.test.history(row)
            key = (int(self.test.user_id[row]), items.tobytes())
            groups[row] = keys.setdefault(key, len(keys))
        return groups


# The files each protocol's loader reads from data.processed_dir.
PROTOCOL_FILES = {
    "dien": ("local_train_splitByUser", "local_test_splitByUser", "uid_voc.pkl", "mid_voc.pkl",
             "cat_voc.pkl", "item-info", "reviews-info"),
    "din": ("train_set.csv", "test_set.csv", "cate_list.csv"),
}


def load(data_cfg, cache_dir):
    """Loads the protocol's files, preparing them from raw Amazon files into
    `cache_dir` first (once; reused while the inputs are unchanged)."""
    if data_cfg.protocol not in ("dien", "din"):
        raise ValueError(f"Invalid data.protocol={data_cfg.protocol!r}; expected 'dien' or 'din'.")
    if data_cfg.processed_dir:
        check_processed_dir(data_cfg.processed_dir, data_cfg.protocol)
    directory = data_cfg.processed_dir or _prepared(data_cfg, cache_dir)
    if data_cfg.protocol == "dien":
        d = load_dien_dir(directory, num_negatives=data_cfg.num_negatives)
        return ExperimentData(d.train, d.test, d.sampler, d.n_uid, d.n_mid, d.n_cat)
    d = load_din_dir(directory)
    # The DIN protocol has no popularity pool; DIEN's auxiliary loss on it draws
    # negatives uniformly over items.
    pool = np.arange(1, d.item_count, dtype=np.int32)
    sampler = NegativeSampler(pool=pool, item_category=np.asarray(d.cate_list, np.int32),
                              num_negatives=data_cfg.num_negatives)
    return ExperimentData(d.train, d.test, sampler, d.user_count, d.item_count, d.cate_count)


def check_processed_dir(directory, protocol):
    """A missing directory, or one without the protocol's files (empty, or the
    other protocol's), is an error naming it and what it lacks."""
    key = f"data.processed_dir={directory!r}"
    if not os.path.isdir(directory):
        raise ValueError(f"{key} is not a directory; expected the {protocol} protocol's files "
                         "(python -m din_tf.data.prepare writes them).")
    lacking = lambda p: [f for f in PROTOCOL_FILES[p] if not
                         os.path.isfile(os.path.join(directory, f))]
    missing = lacking(protocol)
    if missing:
        other = "din" if protocol == "dien" else "dien"
        hint = (f" It holds the {other} protocol's files: set data.protocol={other}."
                if not lacking(other) else "")
        raise ValueError(f"{key} lacks the {protocol} protocol's file(s) {missing}.{hint}")


def _prepared(data_cfg, cache_dir):
    for arg in ("reviews", "meta"):
        path = getattr(data_cfg, arg)
        if not path or not os.path.exists(path):
            raise ValueError(f"data.{arg}={path!r} does not exist; give the raw Amazon file "
                             "or data.processed_dir.")
    stamp = {"protocol": data_cfg.protocol, "seed": data_cfg.prepare_seed,
             **{arg: _file_id(getattr(data_cfg, arg)) for arg in ("reviews", "meta")}}
    key = hashlib.sha1(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:12]
    directory = os.path.join(cache_dir, f"{data_cfg.protocol}_{key}")
    if not os.path.isdir(directory):
        logging.info("Preparing the %s protocol from %s into %s", data_cfg.protocol,
                     data_cfg.reviews, directory)
        prepare.run(data_cfg.protocol, directory, seed=data_cfg.prepare_seed,
                    reviews=data_cfg.reviews, meta=data_cfg.meta)
    return directory


def _file_id(path):
    st = os.stat(path)
    return [os.path.abspath(path), st.st_size, int(st.st_mtime)]


def datasets(data, data_cfg, with_negatives, seed):
    sampler = data.sampler if with_negatives else None
    train = make_dataset(data.train, data_cfg.train_batch_size, maxlen=data_cfg.maxlen,
                         negatives=sampler, shuffle=data_cfg.shuffle, seed=seed,
                         bucket_boundaries=data_cfg.bucket_boundaries)
    # Evaluation keeps full histories and the file order (spec §6.2 item 6).
    test = make_dataset(data.test, data_cfg.eval_batch_size, maxlen=None, negatives=sampler,
                        seed=seed + 1)
    return train, test
