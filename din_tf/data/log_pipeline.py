"""tf.data input from `LogSamples`: batches of raw values run through a
schema's `FeatureEncoder`, so training reads the same lookups serving does.

Per batch, everything happens in the tf.data graph: the batch's row indices
gather the raw columns (held as constants), each behaviour sequence's kept
window of steps (the `max_length` most recent, right-padded to the batch's
longest), and optionally one negative per step; the encoder then maps the raw
batch to rows. There is no per-row Python work.

Semantics follow `din_tf.data.pipeline.make_dataset`: the same row order,
sharding, `pass_index` / `skip_batches` resume and per-batch stateless seeds
(`din_tf.data.batch_order`).

Negatives (DIEN's auxiliary loss): for every kept step an index is drawn
uniformly from the pool's `draws` (popularity-weighted entries of its items),
redrawn while the drawn item's raw item value equals the step's, and the
negative carries that pool item's side features. Padded steps get padding.

`fit_schema` and `table_frequencies` (the training split's fit and the
embedding rows' frequencies) live in `din_tf.data.log_fit` and are
re-exported here.
"""

from typing import Optional

import numpy as np
import tensorflow as tf

from din_tf.data.batch_order import check_shard, row_batches
from din_tf.data.log_fit import fit_schema, kept_windows, table_frequencies
from din_tf.data.log_samples import LogSamples
from din_tf.schema.encoder import FeatureEncoder

_MAX_REDRAWS = 1000
_NAME = "make_log_dataset"


def _raw_constant(values, padding=None):
    """A constant of raw values (strings as UTF-8 bytes, ids int64, floats
    float32), with one padding row appended when `padding` is given."""
    values = np.asarray(values)
    kind = values.dtype.kind
    if kind == "U":
        values = np.char.encode(values, "utf-8")
    elif kind in "iu":
        values = values.astype(np.int64)
    elif kind == "f":
        values = values.astype(np.float32)
    if padding is not None:
        pad = np.full((1,) + values.shape[1:], padding, values.dtype)
        values = np.concatenate([values, pad])
    return tf.constant(values)


def draw_negatives(positives, real, item_values, draws, seed):
    """int64 pool indices `[B, T]`, one per step, drawn uniformly from `draws`
    and redrawn until the drawn item (`item_values[index]`) differs from
    `positives` on every `real` step.

    `seed` is a stateless seed ([2] int64); redraw `k` uses
    `fold_in(seed, k)`. The pool must hold two distinct items (checked by the
    caller); a hard cap turns a pathological pool into an error.
    """
    shape = tf.shape(positives, out_type=tf.int64)
    size = tf.shape(draws, out_type=tf.int64)[0]

    def draw(step):
        index = tf.random.stateless_uniform(
            shape, seed=tf.random.experimental.stateless_fold_in(seed, step),
            minval=0, maxval=size, dtype=tf.int64)
        return tf.gather(draws, index)

    def clashes(picks):
        return real & tf.equal(tf.gather(item_values, picks), positives)

    def body(step, picks):
        tf.debugging.assert_less(step, tf.constant(_MAX_REDRAWS, tf.int64),
                                 message="negative sampling: too many redraws")
        return step + 1, tf.where(clashes(picks), draw(step), picks)

    _, picks = tf.while_loop(lambda step, picks: tf.reduce_any(clashes(picks)), body,
                             (tf.constant(1, tf.int64), draw(tf.constant(0, tf.int64))))
    return picks


def _check_int(name, value, minimum, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        bound = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{_NAME}: argument {name!r} expected {bound}"
                         f"{' or None' if allow_none else ''}, got {value!r}")


def _check_arguments(samples, encoder, batch_size, seed, with_negatives, pass_index,
                     skip_batches, num_shards, shard_index, shard_seed):
    if not isinstance(samples, LogSamples):
        raise ValueError(f"{_NAME}: argument 'samples' expected a LogSamples, got "
                         f"{type(samples).__name__}")
    if len(samples) == 0:
        raise ValueError(f"{_NAME}: argument 'samples' is empty (0 rows)")
    if not isinstance(encoder, FeatureEncoder):
        raise ValueError(f"{_NAME}: argument 'encoder' expected a FeatureEncoder, got "
                         f"{type(encoder).__name__}")
    declared = ([f.name for f in samples.schema.features],
                [s.name for s in samples.schema.sequences])
    encoded = ([f.name for f in encoder.schema.features],
               [s.name for s in encoder.schema.sequences])
    if declared != encoded:
        raise ValueError(f"{_NAME}: argument 'encoder' encodes features {encoded[0]} and "
                         f"sequences {encoded[1]}, the samples hold features {declared[0]} "
                         f"and sequences {declared[1]}")
    _check_int("batch_size", batch_size, 1)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"{_NAME}: argument 'seed' expected an int, got {seed!r}")
    check_shard(_NAME, num_shards, shard_index)
    _check_int("shard_seed", shard_seed, 0, allow_none=True)
    _check_int("pass_index", pass_index, 0, allow_none=True)
    _check_int("skip_batches", skip_batches, 0)
    if skip_batches and pass_index is None:
        raise ValueError(f"{_NAME}: argument 'skip_batches'={skip_batches} needs pass_index "
                         "(resuming mid-stream needs a reproducible stream), got "
                         "pass_index=None")
    if with_negatives:
        sampled = [s for s in samples.schema.sequences if s.negatives]
        if not sampled:
            raise ValueError(f"{_NAME}: argument 'with_negatives'=True but no sequence of the "
                             "schema declares negatives=True")
        for seq in sampled:
            _check_pool(samples, seq)


def _check_pool(samples, seq):
    pool = samples.negatives.get(seq.name)
    if pool is None:
        raise ValueError(f"{_NAME}: argument 'with_negatives'=True but the samples hold no "
                         f"NegativePool for sequence {seq.name!r}")
    if samples.schema.feature(seq.item_feature).multi_valued:
        raise ValueError(f"{_NAME}: argument 'with_negatives'=True needs the item feature "
                         f"{seq.item_feature!r} of sequence {seq.name!r} to be single-valued")
    drawn = np.asarray(pool.items[seq.item_feature])[np.asarray(pool.draws)]
    if np.unique(drawn).size < 2:
        raise ValueError(f"{_NAME}: argument 'with_negatives'=True but the negative pool of "
                         f"sequence {seq.name!r} draws {np.unique(drawn).size} distinct "
                         f"item(s); a negative must differ from the step's item, so it needs "
                         "at least 2")


def make_log_dataset(samples: LogSamples,
                     encoder: FeatureEncoder,
                     batch_size: int,
                     *,
                     shuffle: bool = False,
                     seed: int = 0,
                     with_negatives: bool = False,
                     drop_remainder: bool = False,
                     repeat: bool = False,
                     pass_index: Optional[int] = None,
                     skip_batches: int = 0,
                     num_shards: int = 1,
                     shard_index: int = 0,
                     shard_seed: Optional[int] = None,
                     prefetch: bool = True) -> tf.data.Dataset:
    """A `tf.data.Dataset` of `(features, label)`, `features = encoder(raw)`.

    The raw batch (B rows) holds every schema feature by name ([B] or
    [B, V]); per sequence its step keys ([B, T] or [B, T, V], T the batch's
    longest kept history, histories cut to the `max_length` most recent
    steps, padding past a row's length), its length key (int32 [B]) and, with
    `with_negatives` for sequences declaring negatives, its negative keys (one
    negative per step, shaped like the step keys). The label is float32 [B].

    Args:
      samples: the examples, in raw values.
      encoder: the `FeatureEncoder` of the samples' (fitted) schema.
      batch_size: rows per batch.
      shuffle: shuffle rows with `seed` (a new order each pass).
      seed: seeds the order and the negatives.
      with_negatives: draw the auxiliary loss's negatives from the samples'
        negative pools.
      drop_remainder: drop the last short batch.
      repeat: repeat forever (each pass reshuffles and redraws negatives).
      pass_index: number the passes: the row order and negatives of pass `p`
        are a pure function of `(seed, p)`; the dataset starts at pass
        `pass_index` (with `repeat`, continues with the next ones). None:
        tf.data reshuffles and redraws on every iteration.
      skip_batches: with `pass_index`, start this many batches into the
        stream (whole passes are skipped without being built).
      num_shards, shard_index: keep every `num_shards`-th row starting at
        `shard_index` (an int, or a scalar integer tensor: a
        parameter-server worker's index).
      shard_seed: None deals rows to shards in turn; an int deals them in the
        order of a fixed permutation drawn from it (see `make_dataset`).
      prefetch: add `prefetch(AUTOTUNE)`.
    """
    _check_arguments(samples, encoder, batch_size, seed, with_negatives, pass_index,
                     skip_batches, num_shards, shard_index, shard_seed)
    schema = samples.schema
    columns = {f.name: _raw_constant(samples.columns[f.name]) for f in schema.features}
    label = tf.constant(samples.label)
    sequences = []
    for number, seq in enumerate(schema.sequences):
        part = samples.sequences[seq.name]
        start, length = kept_windows(part, seq.max_length)
        # One trailing padding step: padded positions gather it.
        padding = {name: schema.feature(name).padding_value for name in seq.features}
        steps = {name: _raw_constant(part.steps[name], padding[name]) for name in seq.features}
        pool = None
        if with_negatives and seq.negatives:
            source = samples.negatives[seq.name]
            items = {name: _raw_constant(source.items[name], padding[name])
                     for name in seq.features}
            pool = (items, tf.constant(np.asarray(source.draws, np.int64)))
        sequences.append((number, seq, tf.constant(start), tf.constant(length), steps, pool))

    def gather_raw(rows, batch_seed):
        raw = {name: tf.gather(column, rows) for name, column in columns.items()}
        for number, seq, start, length, steps, pool in sequences:
            s, l = tf.gather(start, rows), tf.gather(length, rows)
            position = tf.range(tf.reduce_max(l), dtype=tf.int64)
            real = position[tf.newaxis, :] < l[:, tf.newaxis]
            pad_step = tf.shape(steps[seq.item_feature], out_type=tf.int64)[0] - 1
            where = tf.where(real, s[:, tf.newaxis] + position[tf.newaxis, :], pad_step)
            for name, key in zip(seq.features, seq.step_keys):
                raw[key] = tf.gather(steps[name], where)
            raw[seq.length] = tf.cast(l, tf.int32)
            if pool is not None:
                items, draws = pool
                item_values = items[seq.item_feature]
                picks = draw_negatives(
                    raw[seq.step_keys[0]], real, item_values, draws,
                    tf.random.experimental.stateless_fold_in(batch_seed, number))
                pad_item = tf.shape(item_values, out_type=tf.int64)[0] - 1
                picks = tf.where(real, picks, pad_item)
                for name, key in zip(seq.features, seq.negative_step_keys):
                    raw[key] = tf.gather(items[name], picks)
        return raw, tf.gather(label, rows)

    def encode(raw, labels):
        return encoder(raw), labels

    ds = row_batches(len(samples), batch_size, shuffle=shuffle, seed=seed,
                     drop_remainder=drop_remainder, repeat=repeat, pass_index=pass_index,
                     skip_batches=skip_batches, num_shards=num_shards,
                     shard_index=shard_index, shard_seed=shard_seed, caller=_NAME)
    ds = ds.map(gather_raw, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.map(encode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds


__all__ = ["draw_negatives", "fit_schema", "make_log_dataset", "table_frequencies"]
