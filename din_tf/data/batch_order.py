"""Which rows go into which batch, and each batch's random seed.

`row_batches` is the row stream of a tf.data input pipeline without its
features: batches of row indices, each paired with a stateless seed for
whatever the batch draws at random (negatives). It has the semantics of
`din_tf.data.pipeline.make_dataset`'s order: sharding keeps every
`num_shards`-th row; `shuffle` permutes a pass with `seed`; batches are
consecutive, length buckets or fixed lists; with `pass_index`
the order and the seeds of pass `p` are a pure function of `(seed, p)`, so a
resumed run rebuilds exactly the batches it stopped in, and `skip_batches`
starts that many batches into the stream without building them.
"""

from typing import Callable, Optional

import numpy as np
import tensorflow as tf


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
                shard_seed: Optional[int] = None,
                batch: Optional[Callable[[tf.data.Dataset], tf.data.Dataset]] = None,
                fixed_batches: Optional[tf.data.Dataset] = None,
                caller: str = "row_batches") -> tf.data.Dataset:
    """A dataset of `(rows int64 [b], batch_seed int64 [2])`.

    Arguments are those of `make_dataset` (already checked by the caller,
    named `caller` in errors; `shard_index` as `check_shard` returns it);
    `n` is the number of rows. `batch` turns a
    dataset of row ids into one of row-id batches (default: consecutive
    batches of `batch_size`; `make_dataset` passes its length buckets);
    `fixed_batches`, a dataset of row-id batches already sharded, replaces
    the shuffled and batched rows (the same batches every pass).
    `shard_seed`: None deals rows to shards in turn (shard k keeps rows k,
    k + num_shards, ...); an int deals them in the order of a permutation
    drawn from it (each shard's rows stay in stored order).
    """
    if isinstance(shard_index, (tf.Tensor, tf.Variable)):
        shard_index = tf.cast(shard_index, tf.int64)
    dealt_rows = None
    if shard_seed is not None and num_shards > 1:
        # Deal in the order of a fixed permutation, so that data stored in a
        # pattern (a clicked and a non-clicked row in turn, say) is not dealt
        # by that pattern; each shard keeps its rows in stored order.
        order = tf.constant(np.random.default_rng(shard_seed).permutation(n).astype(np.int64))
        dealt_rows = tf.sort(tf.gather(order, tf.range(shard_index, n, num_shards,
                                                       dtype=tf.int64)))
    if batch is None:
        batch = lambda rows: rows.batch(batch_size, drop_remainder=drop_remainder)  # noqa: E731

    if pass_index is None:
        if fixed_batches is not None:
            ds = fixed_batches
        else:
            if dealt_rows is not None:
                ds = tf.data.Dataset.from_tensor_slices(dealt_rows)
            else:
                ds = tf.data.Dataset.range(n)
                if num_shards > 1:
                    ds = ds.shard(num_shards, shard_index)
            if shuffle:
                ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
            ds = batch(ds)
        if repeat:
            ds = ds.repeat()
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        return tf.data.Dataset.zip(ds, seeds.batch(2))

    shard_rows = (tf.range(shard_index, n, num_shards, dtype=tf.int64)
                  if isinstance(shard_index, tf.Tensor)
                  else tf.constant(np.arange(shard_index, n, num_shards, dtype=np.int64)))
    if dealt_rows is not None:
        shard_rows = dealt_rows

    def one_pass(number):
        # Independent stateless streams for the order and for each batch's
        # draws, all derived from (seed, pass number).
        pass_key = tf.random.experimental.stateless_fold_in(
            tf.constant([seed, 0], tf.int64), number)
        if fixed_batches is not None:
            batches = fixed_batches
        else:
            rows = shard_rows
            if shuffle:
                rows = tf.random.experimental.stateless_shuffle(
                    rows, seed=tf.random.experimental.stateless_fold_in(pass_key, 0))
            batches = batch(tf.data.Dataset.from_tensor_slices(rows))
        draws_key = tf.random.experimental.stateless_fold_in(pass_key, 1)
        seeds = tf.data.Dataset.counter().map(
            lambda b: tf.random.experimental.stateless_fold_in(draws_key, b))
        return tf.data.Dataset.zip(batches, seeds)

    first_pass = int(pass_index)
    skip = int(skip_batches)
    if skip:
        per_pass = count_batches(one_pass(tf.constant(first_pass, tf.int64)))
        if per_pass == 0:
            raise ValueError(f"{caller}: argument 'skip_batches'={skip} but a pass of shard "
                             f"{shard_index} holds no batch ({n} rows in all, batch_size "
                             f"{batch_size}, drop_remainder={drop_remainder})")
        whole_passes, skip = divmod(skip, per_pass)
        if whole_passes and not repeat:
            raise ValueError(f"{caller}: argument 'skip_batches' goes past the single pass "
                             f"({per_pass} batches) of a dataset without repeat=True; received "
                             f"skip_batches={int(skip_batches)}")
        first_pass += whole_passes
    if repeat:
        ds = tf.data.Dataset.counter(first_pass).flat_map(one_pass).apply(
            tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY))
    else:
        # Built directly (not through flat_map) so its length stays known:
        # over the same batches of unknown length, Keras 3.15's evaluate
        # reported a different mean aux_loss than a plain loop.
        ds = one_pass(tf.constant(first_pass, tf.int64))
    if skip:
        ds = ds.skip(skip)  # skipped batches cost only their row ids
    return ds


def check_shard(caller, num_shards, shard_index):
    """Checks `num_shards` (an int >= 1) and `shard_index`: an int in
    [0, num_shards), or a scalar integer tensor (a worker's index, known only
    when the input function runs on it, as under ParameterServerStrategy);
    returns the index as an int, or as an int64 tensor."""
    if isinstance(num_shards, bool) or not isinstance(num_shards, (int, np.integer)) \
            or num_shards < 1:
        raise ValueError(f"{caller}: argument 'num_shards' expected a positive int, got "
                         f"{num_shards!r}")
    if isinstance(shard_index, (tf.Tensor, tf.Variable)):
        if shard_index.shape.rank != 0 or not shard_index.dtype.is_integer:
            raise ValueError(f"{caller}: argument 'shard_index' expected an int or a scalar "
                             f"integer tensor, got {shard_index!r}")
        return tf.cast(shard_index, tf.int64)
    if isinstance(shard_index, bool) or not isinstance(shard_index, (int, np.integer)) \
            or not 0 <= shard_index < num_shards:
        raise ValueError(f"{caller}: argument 'shard_index' expected 0 <= shard_index < "
                         f"num_shards={num_shards}, got {shard_index!r}")
    return int(shard_index)


def count_batches(ds):
    """Batches in one pass of `ds` (the same for every pass: the order
    changes, the sizes of the batches or buckets do not)."""
    known = int(ds.cardinality())
    if known >= 0:
        return known
    return int(ds.reduce(np.int64(0), lambda count, _: count + 1))


__all__ = ["check_shard", "count_batches", "row_batches"]
