"""Turns a DataConfig into training/evaluation datasets and vocabulary sizes."""

import dataclasses
import functools
import hashlib
import json
import os
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf
from absl import logging

from din_tf.data import load_dien_dir, load_din_dir, make_dataset, prepare
from din_tf.data.pipeline import NegativeSampler, bucketed_batches, dien_iterator_batches
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


def load(data_cfg, cache_dir):
    """Loads the protocol's files, preparing them from raw Amazon files into
    `cache_dir` first (once; reused while the inputs are unchanged)."""
    if data_cfg.protocol not in ("dien", "din"):
        raise ValueError(f"Invalid data.protocol={data_cfg.protocol!r}; expected 'dien' or 'din'.")
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


class Datasets(NamedTuple):
    train: tf.data.Dataset
    test: tf.data.Dataset
    test_order: np.ndarray  # the test rows in the order the test batches emit them


BATCHINGS = ("sequential", "dien_iterator")


def datasets(data, data_cfg, with_negatives, seed):
    """Training and test datasets. Test batches are formed like the training
    batches: the DIEN iterator's length-sorted chunks, buckets of the same
    boundaries, or file order; `test_order` maps their rows back to the file."""
    if data_cfg.batching not in BATCHINGS:
        raise ValueError(f"Invalid data.batching={data_cfg.batching!r}; expected one of "
                         f"{list(BATCHINGS)}.")
    if data_cfg.batching == "dien_iterator" and (data_cfg.shuffle or data_cfg.bucket_boundaries):
        raise ValueError("data.batching='dien_iterator' fixes the batch order (the DIEN repo's "
                         "length-sorted chunks); it cannot be combined with data.shuffle=true "
                         "or data.bucket_boundaries.")
    sampler = data.sampler if with_negatives else None
    train_batches = test_batches = None
    if data_cfg.batching == "dien_iterator":
        # The original sorts by the full history length, before truncation.
        train_batches = dien_iterator_batches(data.train.history_length,
                                              data_cfg.train_batch_size)
        test_batches = dien_iterator_batches(data.test.history_length, data_cfg.eval_batch_size)
    elif data_cfg.bucket_boundaries:
        test_batches = bucketed_batches(data.test.history_length, data_cfg.bucket_boundaries,
                                        data_cfg.eval_batch_size)
    train = make_dataset(data.train, data_cfg.train_batch_size, maxlen=data_cfg.maxlen,
                         negatives=sampler, shuffle=data_cfg.shuffle, seed=seed,
                         bucket_boundaries=data_cfg.bucket_boundaries, batches=train_batches)
    # Evaluation keeps full histories (spec §6.2 item 6).
    test = make_dataset(data.test, data_cfg.eval_batch_size, maxlen=None, negatives=sampler,
                        seed=seed + 1, batches=test_batches)
    order = (np.concatenate(test_batches) if test_batches is not None
             else np.arange(len(data.test)))
    return Datasets(train, test, order)
