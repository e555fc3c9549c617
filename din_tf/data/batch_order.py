"""Which rows go into which batch, and each batch's random seed.

`row_batches` is the row stream of a tf.data input pipeline without its
features: batches of row indices, each paired with a stateless seed for
whatever the batch draws at random (negatives). It has the semantics of
`din_tf.data.pipeline.make_dataset`'s order: sharding keeps every
`num_shards`-th row; `shuffle` permutes a pass with `seed`; with `pass_index`
the order and the seeds of pass `p` are a pure function of `(seed, p)`, so a
resumed run rebuilds exactly the batches it stopped in, and `skip_batches`
starts that many batches into the stream without building them.
"""

from typing import Optional

import numpy as np
import tensorflow as tf


def count_batches(rows, batch_size, drop_remainder):
    """Batches in one pass over `rows` rows."""
    return rows // batch_size if drop_remainder else -(-rows // batch_size)


def row_batches(n: int,
                batch_size: int,
                *,
                shuffle: bool = False,
                seed: int = 0,
                drop_remainder: bool = False,
                repeat: bool = False,
                pass_index: Optional[int] = None,
                skip_batches: int = 0,
                num_shards: int = 1,
                shard_index: int = 0,
                caller: str = "row_batches") -> tf.data.Dataset:
    """A dataset of `(rows int64 [b], batch_seed int64 [2])`.

    Arguments are those of `make_dataset` (already checked by the caller,
    named `caller` in errors); `n` is the number of rows.
    """
    if pass_index is None:
        ds = tf.data.Dataset.range(n)
        if num_shards > 1:
            ds = ds.shard(num_shards, shard_index)
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        if repeat:
            ds = ds.repeat()
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        return tf.data.Dataset.zip(ds, seeds.batch(2))

    shard = np.arange(shard_index, n, num_shards, dtype=np.int64)
    shard_rows = tf.constant(shard)

    def one_pass(number):
        # Independent stateless streams for the order and for each batch's
        # draws, all derived from (seed, pass number).
        pass_key = tf.random.experimental.stateless_fold_in(
            tf.constant([seed, 0], tf.int64), number)
        rows = shard_rows
        if shuffle:
            rows = tf.random.experimental.stateless_shuffle(
                rows, seed=tf.random.experimental.stateless_fold_in(pass_key, 0))
        batches = tf.data.Dataset.from_tensor_slices(rows).batch(
            batch_size, drop_remainder=drop_remainder)
        draws_key = tf.random.experimental.stateless_fold_in(pass_key, 1)
        seeds = tf.data.Dataset.counter().map(
            lambda b: tf.random.experimental.stateless_fold_in(draws_key, b))
        return tf.data.Dataset.zip(batches, seeds)

    first_pass = int(pass_index)
    skip = int(skip_batches)
    if skip:
        per_pass = count_batches(shard.size, batch_size, drop_remainder)
        if per_pass == 0:
            raise ValueError(f"{caller}: argument 'skip_batches'={skip} but a pass of shard "
                             f"{shard_index} holds no batch ({shard.size} rows, batch_size "
                             f"{batch_size}, drop_remainder={drop_remainder})")
        whole_passes, skip = divmod(skip, per_pass)
        if whole_passes and not repeat:
            raise ValueError(f"{caller}: argument 'skip_batches'={int(skip_batches)} goes past "
                             f"the single pass ({per_pass} batches) of a dataset without "
                             "repeat=True")
        first_pass += whole_passes
    if repeat:
        ds = tf.data.Dataset.counter(first_pass).flat_map(one_pass).apply(
            tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY))
    else:
        # Built directly (not through flat_map) so its length stays known.
        ds = one_pass(tf.constant(first_pass, tf.int64))
    if skip:
        ds = ds.skip(skip)  # skipped batches cost only their row ids
    return ds


__all__ = ["count_batches", "row_batches"]
