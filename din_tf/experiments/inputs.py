"""Turns a DataConfig into training/evaluation datasets and vocabulary sizes."""

import dataclasses
import functools
import hashlib
import os
from typing import Optional

import numpy as np

from din_tf.data import load_dien_dir, load_din_dir, make_dataset, prepare
from din_tf.data.row_files import read_row_files, write_row_files
from din_tf.data.pipeline import NegativeSampler, bucketed_batches, dien_iterator_batches
from din_tf.data.samples import Samples
from din_tf.experiments import atomic_files
from din_tf.training import recipes



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
        return ExperimentData(d.train, d.test, d.sampler, d.n_users, d.n_items, d.n_categories)
    d = load_din_dir(directory)
    # The DIN protocol has no popularity pool; DIEN's auxiliary loss on it draws
    # negatives uniformly over items.
    pool = np.arange(1, d.n_items, dtype=np.int32)
    sampler = NegativeSampler(pool=pool, item_category=np.asarray(d.cate_list, np.int32),
                              num_negatives=data_cfg.num_negatives)
    return ExperimentData(d.train, d.test, sampler, d.n_users, d.n_items, d.n_categories)


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
        raise ValueError(f"{key} lacks the {protocol} protocol's file(s) {missing}, and is not "
                         f"a prepared log either (python -m din_tf.data.prepare --log_spec=... "
                         f"writes one).{hint}")


def _prepared(data_cfg, cache_dir):
    """The protocol's files prepared from the raw files, in
    `cache_dir/<protocol>_<key>` (key: the inputs' identity and the seed;
    `atomic_files.prepared_directory`)."""
    if not data_cfg.reviews and not data_cfg.meta:
        raise ValueError("No data: give data.reviews + data.meta (raw Amazon files), "
                         "data.processed_dir (prepared files or a prepared log), or your own "
                         "log (data.log_spec + data.schema).")
    for arg in ("reviews", "meta"):
        path = getattr(data_cfg, arg)
        if not path or not os.path.exists(path):
            raise ValueError(f"data.{arg}={path!r} does not exist; give the raw Amazon file "
                             "or data.processed_dir.")
    stamp = {"protocol": data_cfg.protocol, "seed": data_cfg.prepare_seed,
             **{arg: atomic_files.file_identity(getattr(data_cfg, arg))
                for arg in ("reviews", "meta")}}

    def fill(directory):  # prepare.run flushes its files (`atomic_output_dir`)
        prepare.run(data_cfg.protocol, directory, seed=data_cfg.prepare_seed,
                    reviews=data_cfg.reviews, meta=data_cfg.meta)

    return atomic_files.prepared_directory(
        cache_dir, data_cfg.protocol, stamp, fill,
        f"the {data_cfg.protocol} protocol from {data_cfg.reviews}")


BATCHINGS = recipes.BATCHINGS


def test_set(data, data_cfg, with_negatives, seed):
    """(test dataset, test_order). Test batches are formed like the training
    batches: the DIEN iterator's length-sorted chunks, buckets of the training
    boundaries, or file order; `test_order` lists the rows in the order the
    batches emit them, to map scores back to the file. The negatives are the
    same on every pass, so each epoch's test losses (and a resumed run's) are
    comparable. Histories are kept whole
    (docs/original_code.md#batches-in-the-dien-repo)."""
    # Valid combinations: ExperimentConfig.validate (din_tf/experiments/config_checks.py).
    lengths, batch_size = data.test.history_length, data_cfg.eval_batch_size
    if data_cfg.batching == "dien_iterator":
        batches = dien_iterator_batches(lengths, batch_size)
    elif data_cfg.bucket_boundaries:
        batches = bucketed_batches(lengths, data_cfg.bucket_boundaries, batch_size)
    else:
        batches = None
    sampler = data.sampler if with_negatives else None
    dataset = make_dataset(data.test, batch_size, maxlen=None, negatives=sampler,
                           seed=seed + 1, batches=batches, pass_index=0)
    order = np.concatenate(batches) if batches is not None else np.arange(len(data.test))
    return dataset, order


def training_epoch(data, data_cfg, with_negatives, seed, epoch, steps_per_epoch):
    """The batches of epoch `epoch` (0-based): a pure function of the data, the
    config, `seed` and `epoch`, whichever process builds it.

    Without `steps_per_epoch` epoch e is pass e over the training rows (its
    order and negatives drawn from (seed, e)). With it, the epochs cut one
    endless stream of such passes into `steps_per_epoch`-batch pieces: epoch e
    is batches [e * steps, (e + 1) * steps) of the stream.
    """
    common = _training_options(data, data_cfg, with_negatives, seed)
    if steps_per_epoch is None:
        return make_dataset(data.train, data_cfg.train_batch_size, pass_index=epoch, **common)
    return make_dataset(data.train, data_cfg.train_batch_size, pass_index=0, repeat=True,
                        skip_batches=epoch * steps_per_epoch, **common)


def worker_stream(data, data_cfg, with_negatives, seed, rows_dir):
    """`dataset_fn(input_context)` for training on parameter servers: worker
    i of n reads an endless, reshuffled stream of its share of the rows.

    Sequential batching (`data.batching="sequential"`, no buckets): the rows
    are written once to TFRecord files in `rows_dir`
    (`din_tf.data.write_row_files`) and worker i reads files i, i + n, ...;
    only file names travel with the function. The DIEN repo's fixed batch
    order (`"dien_iterator"`) and length buckets need every row's history
    length up front: worker i then builds its share (the fixed batches i,
    i + n, ...; or its rows) from the rows in memory, which travel to every
    worker inside the function (fine for data of a few hundred MB; the graph
    limit is 2 GB). Rows are dealt to workers by a fixed permutation
    (`SHARD_SEED`), not in stored order.
    """
    if data_cfg.batching == "sequential" and not data_cfg.bucket_boundaries:
        files = _row_files(data.train, rows_dir)
        negatives = data.sampler if with_negatives else None

        def read_files(input_context):
            return read_row_files(files, data_cfg.train_batch_size, maxlen=data_cfg.maxlen,
                                  negatives=negatives, shuffle=data_cfg.shuffle, seed=seed,
                                  repeat=True, num_shards=input_context.num_input_pipelines,
                                  shard_index=input_context.input_pipeline_id)

        return read_files
    common = _training_options(data, data_cfg, with_negatives, seed)

    def dataset_fn(input_context):
        return make_dataset(data.train, data_cfg.train_batch_size, pass_index=0, repeat=True,
                            num_shards=input_context.num_input_pipelines,
                            shard_index=input_context.input_pipeline_id,
                            shard_seed=SHARD_SEED, **common)

    return dataset_fn


ROW_FILES = 64  # files of training rows: at most this many workers read a share
# Workers' shares are dealt in a fixed pseudo-random order, not in stored
# order (which alternates clicked and non-clicked rows).
SHARD_SEED = 0


def _row_files(samples, rows_dir):
    """The training rows as files in `rows_dir/<fingerprint of the rows>`,
    written once: a restarted chief reuses them, other data gets its own."""
    digest = hashlib.sha256(f"dealt by permutation {SHARD_SEED}".encode())
    for field in dataclasses.fields(samples):
        value = getattr(samples, field.name)
        if value is not None:
            digest.update(np.ascontiguousarray(value).tobytes())
    directory = os.path.join(rows_dir, digest.hexdigest()[:16])
    if os.path.isdir(directory) and os.listdir(directory):
        return sorted(os.path.join(directory, name) for name in os.listdir(directory))
    return write_row_files(samples, directory, min(ROW_FILES, len(samples)),
                           deal_seed=SHARD_SEED)


def _training_options(data, data_cfg, with_negatives, seed):
    # The original sorts by the full history length, before truncation.
    train_batches = (dien_iterator_batches(data.train.history_length,
                                           data_cfg.train_batch_size)
                     if data_cfg.batching == "dien_iterator" else None)
    return dict(maxlen=data_cfg.maxlen, negatives=data.sampler if with_negatives else None,
                shuffle=data_cfg.shuffle, seed=seed,
                bucket_boundaries=data_cfg.bucket_boundaries, batches=train_batches)
