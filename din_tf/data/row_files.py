"""Rows of a `Samples` as TFRecord files, read back as `make_dataset` batches.

`make_dataset` puts every row of a `Samples` into its graph as constants.
Under a parameter-server strategy the chief traces each worker's
`dataset_fn` and ships the graph, so every worker would receive all of the
training rows (and the 2 GB graph limit would cap the data). Here the rows
live in files instead: `write_row_files` stores one `tf.train.Example` per
row, dealing the rows round-robin over `num_files` files, and
`read_row_files` builds, from a list of file names, a dataset whose batches
have the keys, dtypes and layout `make_dataset` gives. A worker reads only
its share of the files; the graph holds the file names (and, when
negatives are sampled, the sampler's pool and item->category table).

A stored example holds (`din_tf.features` names where one exists):

  user_id, item_id, category_id   int64, one value
  label                           float, one value
  history_item_ids                int64, the row's behaviours, oldest first
  history_category_ids            int64, their categories
  negative_item_ids               int64, only with fixed negatives: the
  negative_category_ids           row's [length, K] negatives, row-major
  num_negatives                   int64, K (only with fixed negatives)

Since row i goes to file i mod num_files, reading files f, f + n, ... one
row from each in turn gives back rows in their written order; with
`shuffle=False` `read_row_files` does this when a worker's share has at
most `_MAX_OPEN_FILES` files, so one worker reading every file yields the
batches of `make_dataset(samples, batch_size)`.
"""

import numbers
import os
import struct
from typing import Iterable, List, Optional

import numpy as np
import tensorflow as tf

from din_tf import features as F
from din_tf.data._io import atomic_output_dir
from din_tf.data.pipeline import NegativeSampler, history_features, sample_negatives
from din_tf.data.samples import Samples

NUM_NEGATIVES = "num_negatives"
LABEL = "label"
_MAX_OPEN_FILES = 16
_NEGATIVE_KEYS = frozenset({F.NEGATIVE_ITEM_IDS, F.NEGATIVE_CATEGORY_IDS, NUM_NEGATIVES})


# --------------------------------------------------------------------------
# Writing.

def _file_name(index, num_files):
    return f"rows-{index:05d}-of-{num_files:05d}.tfrecord"


def _int64s(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _example(samples, row, fixed_negatives):
    start = int(samples.history_start[row])
    stop = start + int(samples.history_length[row])
    feature = {
        F.USER_ID: _int64s([int(samples.user_id[row])]),
        F.ITEM_ID: _int64s([int(samples.item_id[row])]),
        F.CATEGORY_ID: _int64s([int(samples.category_id[row])]),
        LABEL: tf.train.Feature(float_list=tf.train.FloatList(value=[float(samples.label[row])])),
        F.HISTORY_ITEM_IDS: _int64s(samples.steps_item_id[start:stop].tolist()),
        F.HISTORY_CATEGORY_IDS: _int64s(samples.steps_category_id[start:stop].tolist()),
    }
    if fixed_negatives:
        feature[F.NEGATIVE_ITEM_IDS] = _int64s(
            samples.steps_negative_item_id[start:stop].reshape(-1).tolist())
        feature[F.NEGATIVE_CATEGORY_IDS] = _int64s(
            samples.steps_negative_category_id[start:stop].reshape(-1).tolist())
        feature[NUM_NEGATIVES] = _int64s([int(samples.steps_negative_item_id.shape[1])])
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _is_int(value):
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool)


def write_row_files(samples: Samples, directory, num_files: int,
                    deal_seed: Optional[int] = None) -> List[str]:
    """Stores the rows of `samples` as `num_files` TFRecord files in `directory`.

    Row i goes to file `i % num_files`, named `rows-<i>-of-<num_files>.tfrecord`
    (five digits each). With `deal_seed` the rows are dealt in the order of a
    fixed permutation drawn from it (each file keeps its rows in stored
    order), so that no file inherits a pattern
    of the stored order (the protocols store a clicked and a non-clicked row
    in turn: dealt in turn over an even number of files, every file would hold
    one label, and so would every worker reading its share). The files are written into a temporary directory and
    moved into place once every file is complete (`atomic_output_dir`), so a
    failure leaves no partial output. An existing non-empty `directory` is
    refused.

    Returns:
      the paths of the files, in file order.
    """
    if not isinstance(samples, Samples):
        raise ValueError(f"write_row_files: argument 'samples' expected a Samples, got "
                         f"{type(samples).__name__}")
    if len(samples) == 0:
        raise ValueError("write_row_files: argument 'samples' is empty (0 rows)")
    if not _is_int(num_files) or not 1 <= num_files <= len(samples):
        raise ValueError(f"write_row_files: argument 'num_files' expected an int in "
                         f"[1, {len(samples)}] (at most one file per row, so none is "
                         f"empty), got {num_files!r}")
    if not isinstance(directory, (str, os.PathLike)) or not os.fspath(directory):
        raise ValueError(f"write_row_files: argument 'directory' expected a path, got "
                         f"{directory!r}")
    directory = os.path.abspath(os.fspath(directory))
    if os.path.exists(directory):
        if not os.path.isdir(directory):
            raise ValueError(f"write_row_files: argument 'directory' expected a directory "
                             f"path, got {directory!r}, which is a file")
        if os.listdir(directory):
            raise ValueError(f"write_row_files: argument 'directory' {directory!r} exists and "
                             f"is not empty; expected a new or empty directory")
    if deal_seed is not None and not _is_int(deal_seed):
        raise ValueError(f"write_row_files: argument 'deal_seed' expected an int or None, "
                         f"got {deal_seed!r}")
    num_files = int(num_files)
    fixed_negatives = samples.steps_negative_item_id is not None
    names = [_file_name(i, num_files) for i in range(num_files)]
    order = (np.arange(len(samples)) if deal_seed is None
             else np.random.default_rng(deal_seed).permutation(len(samples)))
    with atomic_output_dir(directory) as staging:
        for index, file_name in enumerate(names):
            with tf.io.TFRecordWriter(os.path.join(staging, file_name)) as writer:
                for row in np.sort(order[index::num_files]):
                    writer.write(_example(samples, int(row), fixed_negatives)
                                 .SerializeToString())
    return [os.path.join(directory, file_name) for file_name in names]


# --------------------------------------------------------------------------
# Reading.

def _first_example(files):
    """The first stored example found in `files`, read here in Python (it
    tells which columns the files hold). TFRecord framing: an 8-byte
    little-endian length, 4 bytes of its CRC, the record, 4 bytes of CRC."""
    for path in files:
        with tf.io.gfile.GFile(path, "rb") as f:
            header = f.read(12)
            if len(header) < 12:
                continue
            size, = struct.unpack("<Q", header[:8])
            record = f.read(size)
            if len(record) == size:
                return tf.train.Example.FromString(record)
    raise ValueError(f"read_row_files: argument 'files' holds no row in any of its "
                     f"{len(files)} files (first: {files[0]!r})")


def _check(name, ok, expected, value):
    if not ok:
        raise ValueError(f"read_row_files: argument {name!r} expected {expected}, got {value!r}")


def read_row_files(files: Iterable,
                   batch_size: int,
                   *,
                   maxlen: Optional[int] = None,
                   negatives: Optional[NegativeSampler] = None,
                   shuffle: bool = False,
                   seed: int = 0,
                   repeat: bool = False,
                   num_shards: int = 1,
                   shard_index=0,
                   shuffle_buffer: int = 10_000) -> tf.data.Dataset:
    """A `tf.data.Dataset` of `(features, label)` batches read from row files.

    The batches are those `make_dataset` builds from the same rows: keys from
    `din_tf.features` (no `history_mask`), int32 ids, histories right-padded
    with 0 to the longest (truncated) history of the batch, `history_length`
    after truncation, float32 labels.

    Args:
      files: paths written by `write_row_files` (every file of the data set;
        each worker keeps its own share).
      batch_size: rows per batch (the last batch of a pass may be shorter).
      maxlen: keep the last `maxlen` behaviours of longer histories (with
        their negatives). None keeps whole histories.
      negatives: a `NegativeSampler` to draw `negative_item_ids` /
        `negative_category_ids` [B, T, K] with. If None and the files hold
        fixed negatives, those are returned; otherwise there are no
        negative keys.
      shuffle: shuffle the order of the worker's files and, within a buffer
        of `shuffle_buffer` rows, the rows; each pass has a new order.
      seed: seeds the shuffles and the drawn negatives: the same arguments
        build the same stream. Batch b of an iterator (counted across passes
        with `repeat`) draws its negatives from a stateless seed made of
        (seed, shard_index, b). Iterating the same dataset object again
        gives a new row order (tf.data reshuffles) but the same draws per
        batch number.
      repeat: repeat forever.
      num_shards, shard_index: this worker reads files `shard_index`,
        `shard_index + num_shards`, ... of `files`. `shard_index` may be a
        scalar int tensor, e.g. the worker index a parameter-server worker
        gets from
        `tf.distribute.coordinator.experimental_get_current_worker_index()`
        (TF's ParameterServerStrategy gives every worker an `input_context`
        of pipeline 0 of 1, so that index cannot come from there).
      shuffle_buffer: rows in the shuffle buffer.

    The first row of the files is read here, in Python, to learn whether the
    files hold fixed negatives and their K; everything else runs as TF ops in
    the dataset, on whichever machine iterates it.
    """
    if isinstance(files, (str, bytes, os.PathLike)) or not hasattr(files, "__iter__"):
        raise ValueError(f"read_row_files: argument 'files' expected a list of file paths "
                         f"(e.g. what write_row_files returns), got {files!r}")
    files = list(files)
    for path in files:
        _check("files", isinstance(path, (str, os.PathLike)), "a list of file paths", path)
    files = [os.fspath(f) for f in files]
    _check("files", len(files) > 0, "a non-empty list of file paths", files)
    for path in files:
        _check("files", tf.io.gfile.exists(path), "existing files", path)
    _check("batch_size", _is_int(batch_size) and batch_size >= 1, "a positive int", batch_size)
    _check("maxlen", maxlen is None or (_is_int(maxlen) and maxlen >= 1),
           "a positive int or None", maxlen)
    _check("negatives", negatives is None or isinstance(negatives, NegativeSampler),
           "a NegativeSampler or None", negatives)
    _check("shuffle", isinstance(shuffle, bool), "a bool", shuffle)
    _check("repeat", isinstance(repeat, bool), "a bool", repeat)
    _check("seed", _is_int(seed) and -2**63 <= seed < 2**63, "an int64", seed)
    _check("shuffle_buffer", _is_int(shuffle_buffer) and shuffle_buffer >= 1, "a positive int",
           shuffle_buffer)
    _check("num_shards", _is_int(num_shards) and num_shards >= 1, "a positive int", num_shards)
    _check("num_shards", num_shards <= len(files),
           f"at most one shard per file ({len(files)} files)", num_shards)
    if isinstance(shard_index, (tf.Tensor, tf.Variable)):
        _check("shard_index", shard_index.shape.rank == 0 and shard_index.dtype.is_integer,
               "a scalar int tensor", shard_index)
        shard_index = tf.cast(shard_index, tf.int64)
    else:
        _check("shard_index", _is_int(shard_index) and 0 <= shard_index < num_shards,
               f"an int in [0, num_shards={num_shards})", shard_index)
        shard_index = int(shard_index)

    first = _first_example(files).features.feature
    fixed_neg = negatives is None and _NEGATIVE_KEYS <= set(first)
    num_neg = int(first[NUM_NEGATIVES].int64_list.value[0]) if fixed_neg else None
    schema = {
        F.USER_ID: tf.io.FixedLenFeature([], tf.int64),
        F.ITEM_ID: tf.io.FixedLenFeature([], tf.int64),
        F.CATEGORY_ID: tf.io.FixedLenFeature([], tf.int64),
        LABEL: tf.io.FixedLenFeature([], tf.float32),
        F.HISTORY_ITEM_IDS: tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64),
        F.HISTORY_CATEGORY_IDS: tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64),
    }
    if fixed_neg:
        schema[F.NEGATIVE_ITEM_IDS] = tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64)
        schema[F.NEGATIVE_CATEGORY_IDS] = tf.io.RaggedFeature(tf.int64,
                                                              row_splits_dtype=tf.int64)
        schema[NUM_NEGATIVES] = tf.io.FixedLenFeature([], tf.int64)
    if negatives is not None:
        pool = tf.constant(negatives.pool)
        item_category = tf.constant(negatives.item_category)

    # Independent stateless streams per worker: file order, row order, draws.
    # (fold_in returns the dtype of its data: int64 throughout, as
    # sample_negatives expects.)
    fold_in = lambda key, data: tf.random.experimental.stateless_fold_in(  # noqa: E731
        key, tf.cast(data, tf.int64))
    shard_key = fold_in(tf.constant([seed, 0], tf.int64), shard_index)
    file_seed = fold_in(shard_key, 0)[0]
    row_seed = fold_in(shard_key, 1)[0]
    draws_key = fold_in(shard_key, 2)

    def flat_steps(ragged, width=None):
        """Values of a [B, None] ragged batch, one zero step appended (so
        gathers stay valid when every history is empty); [steps + 1, width]
        when `width` is given."""
        values = tf.cast(ragged.flat_values, tf.int32)
        if width is None:
            return tf.concat([values, tf.zeros([1], tf.int32)], 0)
        return tf.concat([tf.reshape(values, [-1, width]), tf.zeros([1, width], tf.int32)], 0)

    def build(serialized, batch_number):
        ex = tf.io.parse_example(serialized, schema)
        items, cats = ex[F.HISTORY_ITEM_IDS], ex[F.HISTORY_CATEGORY_IDS]
        s = items.row_splits[:-1]
        l = items.row_lengths()
        checks = [tf.debugging.assert_equal(
            cats.row_lengths(), l, message="row files: a row has as many history "
                                           "categories as items")]
        if fixed_neg:
            for key in (F.NEGATIVE_ITEM_IDS, F.NEGATIVE_CATEGORY_IDS):
                checks.append(tf.debugging.assert_equal(
                    ex[key].row_lengths(), l * num_neg,
                    message=f"row files: {key} holds K={num_neg} ids per history step"))
            checks.append(tf.debugging.assert_equal(
                ex[NUM_NEGATIVES], tf.constant(num_neg, tf.int64),
                message=f"row files: every row has K={num_neg} negatives"))
        with tf.control_dependencies(checks):
            steps_item = flat_steps(items)
        if fixed_neg:
            draw = lambda history, where: (  # noqa: E731
                tf.gather(flat_steps(ex[F.NEGATIVE_ITEM_IDS], num_neg), where),
                tf.gather(flat_steps(ex[F.NEGATIVE_CATEGORY_IDS], num_neg), where))
        elif negatives is not None:
            draw = lambda history, where: sample_negatives(  # noqa: E731
                history, pool, item_category, negatives.num_negatives,
                fold_in(draws_key, batch_number))
        else:
            draw = None
        feats = {key: tf.cast(ex[key], tf.int32) for key in (F.USER_ID, F.ITEM_ID,
                                                             F.CATEGORY_ID)}
        feats.update(history_features(s, l, steps_item, flat_steps(cats), maxlen,
                                      negatives=draw))
        return feats, ex[LABEL]

    ds = tf.data.Dataset.from_tensor_slices(files)
    if num_shards > 1:
        ds = ds.shard(num_shards, shard_index)
    per_shard = -(-len(files) // num_shards)  # the most files a shard can get
    if shuffle:
        ds = ds.shuffle(per_shard, seed=file_seed, reshuffle_each_iteration=True)
    # One row from each open file in turn: with every file of the shard open,
    # rows come back in their written order.
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(per_shard, _MAX_OPEN_FILES),
                       block_length=1, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=row_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if repeat:
        ds = ds.repeat()
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.counter())
    ds = ds.map(build, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


__all__ = ["read_row_files", "write_row_files"]
