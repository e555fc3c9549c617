"""tf.data input: batches of the `din_tf.features` spec from `Samples`.

Batching follows the DIEN repo's `train.prepare_data`
(docs/original_code.md#batches-in-the-dien-repo):
histories right-padded with 0 to the longest row of the batch, mask 1.0 on real
steps, and, when `maxlen` is given (training), only the **last** `maxlen`
behaviours kept, together with their negatives; evaluation passes no `maxlen`.

Negatives for the auxiliary loss follow `data_iterator.py`
(docs/original_code.md#negatives-for-the-auxiliary-loss): for every
history step K ids are drawn uniformly from a pool holding one entry per review
line (so popular items are drawn more often; ids outside the vocabulary are 0),
redrawing only a draw equal to that step's clicked item; the category comes from
an item->category table. The original re-draws them each time a batch is built
with unseeded Python `random`; here they are drawn with TF stateless ops from a
per-batch seed produced by `tf.data.Dataset.random(seed)`, so the same `seed`
gives the same negatives (and a new draw each epoch), a different seed
different ones. With `pass_index`, each batch's seed is instead derived from
(seed, pass, batch number), so a pass's negatives do not depend on how many
passes this dataset object produced before (what a resumed run needs).
Padded steps get negative id 0, as in the original. Draws are made for the kept
(truncated) steps only; the original draws for the full history and then
truncates, which gives the same distribution.

The per-example work is a handful of vectorised gathers on a batch of row
indices, so the pipeline is far faster than any model step it feeds.
"""

import dataclasses
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from din_tf import features as F
from din_tf.data.batch_order import check_shard, row_batches
from din_tf.data.samples import Samples

_MAX_REDRAWS = 1000


# --------------------------------------------------------------------------
# NumPy reference of the original batcher.

def prepare_data(source, target, maxlen=None, return_neg=False):
    """NumPy re-implementation of DIEN `train.prepare_data` (same outputs).

    Args:
      source: list of rows `[uid, mid, cat, mid_list, cat_list, noclk_mid_list,
        noclk_cat_list]` (the negatives lists are `[len][K]`).
      target: `[B, 2]` array of `[clk, 1 - clk]`.
      maxlen: keep only the last `maxlen` steps of longer histories.
      return_neg: also return the negative histories.

    Returns:
      `(uids, mids, cats, mid_his, cat_his, mid_mask, target, lengths_x)` and,
      with `return_neg`, `noclk_mid_his, noclk_cat_his` of shape `[B, T, K]`.
      int arrays are int64, the mask float32, as in the original. With
      `maxlen` and an empty batch, `(None, None, None, None)`.
    """
    if maxlen is not None and len(source) == 0:
        return None, None, None, None
    kept = []
    for row in source:
        length = len(row[4])
        cut = max(length - maxlen, 0) if maxlen is not None else 0
        kept.append([list(row[k])[cut:] for k in (3, 4, 5, 6)])
    lengths = np.array([len(k[1]) for k in kept], np.int64)
    n, t = len(kept), int(lengths.max())
    num_neg = len(source[0][5][0])
    mid_his = np.zeros((n, t), np.int64)
    cat_his = np.zeros((n, t), np.int64)
    noclk_mid = np.zeros((n, t, num_neg), np.int64)
    noclk_cat = np.zeros((n, t, num_neg), np.int64)
    mask = np.zeros((n, t), np.float32)
    for i, (mids, cats, nmids, ncats) in enumerate(kept):
        size = lengths[i]
        mask[i, :size] = 1.0
        mid_his[i, :size] = mids
        cat_his[i, :size] = cats
        noclk_mid[i, :size] = nmids
        noclk_cat[i, :size] = ncats
    head = tuple(np.array([row[k] for row in source]) for k in range(3))
    out = head + (mid_his, cat_his, mask, np.array(target), lengths)
    return out + (noclk_mid, noclk_cat) if return_neg else out


# --------------------------------------------------------------------------
# Negative sampling configuration.

@dataclasses.dataclass
class NegativeSampler:
    """Where auxiliary-loss negatives come from.

    Attributes:
      pool: int [P] item ids drawn uniformly (one entry per review line in the
        original, i.e. popularity-weighted; may contain 0).
      item_category: int [n_items] category id of each item id (0 if unknown).
      num_negatives: K per history step (5 in the original; the DIEN model
        uses slot 0 only).
    """

    pool: np.ndarray
    item_category: np.ndarray
    num_negatives: int = 5

    def __post_init__(self):
        self.pool = np.asarray(self.pool, np.int32).reshape(-1)
        self.item_category = np.asarray(self.item_category, np.int32).reshape(-1)
        if self.pool.size == 0 or np.unique(self.pool).size < 2:
            raise ValueError(f"NegativeSampler.pool: expected at least 2 distinct item ids "
                             f"(so a negative can differ from the click), got "
                             f"{np.unique(self.pool).size}")
        if self.pool.min() < 0 or self.pool.max() >= self.item_category.size:
            raise ValueError(f"NegativeSampler.pool: ids must be in [0, {self.item_category.size}) "
                             f"(the item_category table size), got range "
                             f"[{self.pool.min()}, {self.pool.max()}]")
        if not isinstance(self.num_negatives, (int, np.integer)) or self.num_negatives < 1:
            raise ValueError(f"NegativeSampler.num_negatives: expected a positive int, got "
                             f"{self.num_negatives!r}")


def sample_negatives(history_items, pool, item_category, num_negatives, seed):
    """Draws `[B, T, K]` negatives from `pool` never equal to `history_items[b, t]`.

    `seed` is a stateless seed (shape [2] int). Rejected draws are redrawn with a
    derived seed until none is left (the pool holds >= 2 distinct ids, so this
    terminates; a hard cap turns a pathological pool into an error).
    """
    shape = tf.concat([tf.shape(history_items), [num_negatives]], axis=0)
    pool = tf.convert_to_tensor(pool)
    pool_size = tf.shape(pool, out_type=tf.int64)[0]
    positives = history_items[..., tf.newaxis]

    def draw(step):
        idx = tf.random.stateless_uniform(shape, seed=seed + tf.stack([tf.constant(0, tf.int64), step]),
                                          minval=0, maxval=pool_size, dtype=tf.int64)
        return tf.gather(pool, idx)

    def cond(step, negatives):
        return tf.reduce_any(tf.equal(negatives, positives))

    def body(step, negatives):
        tf.debugging.assert_less(step, tf.constant(_MAX_REDRAWS, tf.int64),
                                 message="negative sampling: too many redraws")
        fresh = draw(step)
        negatives = tf.where(tf.equal(negatives, positives), fresh, negatives)
        return step + 1, negatives

    _, negatives = tf.while_loop(cond, body, (tf.constant(1, tf.int64), draw(0)))
    categories = tf.gather(tf.convert_to_tensor(item_category), negatives)
    return negatives, categories


# --------------------------------------------------------------------------
# Batch order of the original DIEN iterator (optional, for faithful evaluation).

def dien_iterator_batches(history_lengths, batch_size=128, max_batch_size=20):
    """Row indices per batch in the order DIEN's `DataIterator` emits them.

    The original reads `batch_size * max_batch_size` lines at a time, argsorts
    them by history length and pops from the end, so each chunk yields batches
    of similar length, longest first (the chunk's last batch may be short).
    Ties follow NumPy's default argsort, which is not guaranteed to match the
    original machine's. Matters for evaluation because DIEN's Dice uses batch
    statistics at inference.
    """
    lengths = np.asarray(history_lengths)
    chunk = batch_size * max_batch_size
    batches = []
    for begin in range(0, lengths.size, chunk):
        order = begin + np.argsort(lengths[begin:begin + chunk])[::-1]
        batches.extend(order[i:i + batch_size] for i in range(0, order.size, batch_size))
    return batches


def bucketed_batches(history_lengths, boundaries, batch_size):
    """Row indices per batch when rows are grouped by history length: bucket
    `i` holds lengths in `[boundaries[i-1], boundaries[i])`; a bucket emits a
    batch when it is full, and the partial buckets are emitted at the end in
    bucket order (the behaviour of `tf.data`'s `bucket_by_sequence_length`).
    Used to evaluate in batches shaped like bucketed training batches."""
    lengths = np.asarray(history_lengths)
    bucket_of = np.searchsorted(np.asarray(boundaries), lengths, side="right")
    pending = [[] for _ in range(len(boundaries) + 1)]
    batches = []
    for row, bucket in enumerate(bucket_of):
        pending[bucket].append(row)
        if len(pending[bucket]) == batch_size:
            batches.append(np.array(pending[bucket], np.int64))
            pending[bucket] = []
    batches.extend(np.array(rows, np.int64) for rows in pending if rows)
    return batches


# --------------------------------------------------------------------------
# The dataset.

def _check_positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"make_dataset: argument {name!r} expected a positive int"
                         f"{' or None' if allow_none else ''}, got {value!r}")


def make_dataset(samples: Samples,
                 batch_size: int,
                 *,
                 maxlen: Optional[int] = None,
                 negatives: Optional[NegativeSampler] = None,
                 shuffle: bool = False,
                 seed: int = 0,
                 drop_remainder: bool = False,
                 with_mask: bool = False,
                 pad_to_maxlen: bool = False,
                 bucket_boundaries: Optional[Sequence[int]] = None,
                 batches: Optional[Sequence[Sequence[int]]] = None,
                 num_shards: int = 1,
                 shard_index: int = 0,
                 shard_seed: Optional[int] = None,
                 repeat: bool = False,
                 pass_index: Optional[int] = None,
                 skip_batches: int = 0,
                 prefetch: bool = True) -> tf.data.Dataset:
    """A `tf.data.Dataset` of `(features, label)` batches.

    Args:
      samples: the examples.
      batch_size: rows per batch (per replica when used with `input_fn`).
      maxlen: training truncation: keep the last `maxlen` behaviours (DIEN trains
        with 100). None = full histories (DIEN evaluation).
      negatives: sample `negative_item_ids`/`negative_category_ids` [B, T, K] with
        this sampler. If None and `samples` holds fixed negatives, those are used;
        otherwise no negative keys are produced.
      shuffle: shuffle rows (full-size buffer, reshuffled each epoch) with `seed`.
      seed: seeds the shuffle and the negatives.
      drop_remainder: drop the last short batch (e.g. for static TPU shapes).
      with_mask: also emit `history_mask` (float32, 1.0 on real steps).
      pad_to_maxlen: pad T to `maxlen` instead of to the batch's longest row.
      bucket_boundaries: optional history-length boundaries: rows are grouped
        into buckets of similar (truncated) length before batching.
      batches: explicit row indices per batch (e.g. `dien_iterator_batches`);
        excludes `shuffle` and `bucket_boundaries`.
      num_shards, shard_index: keep every `num_shards`-th row starting at
        `shard_index` (input sharding for `tf.distribute`); `shard_index` may
        be a scalar integer tensor (a parameter-server worker's index).
      shard_seed: None deals rows to shards in turn (above); an int deals them
        in the order of a fixed permutation drawn from it, so a shard does not
        inherit a pattern of the stored order (the protocols store a clicked
        and a non-clicked row in turn: dealt in turn to two asynchronous
        workers, each would see one label). Explicit `batches` are dealt whole.
      repeat: repeat forever (each pass reshuffles and redraws negatives).
      pass_index: number the passes over the data: the row order and negatives
        of pass `p` become a pure function of `(seed, p)`, the same in every
        process and on every iteration of the dataset, which starts at pass
        `pass_index` (with `repeat`, continues with the next ones). A run
        restarted at epoch `e` can so rebuild exactly the batches of epoch `e`.
        None (default): tf.data reshuffles and redraws on every iteration, so
        a later iteration depends on how many came before it.
      skip_batches: with `pass_index`, start this many batches into the stream
        (whole passes are skipped without being built).
      prefetch: add `prefetch(AUTOTUNE)`.
    """
    if not isinstance(samples, Samples):
        raise ValueError(f"make_dataset: argument 'samples' expected a Samples, got "
                         f"{type(samples).__name__}")
    _check_positive_int("batch_size", batch_size)
    _check_positive_int("maxlen", maxlen, allow_none=True)
    shard_index = check_shard("make_dataset", num_shards, shard_index)
    if shard_seed is not None and (isinstance(shard_seed, bool)
                                   or not isinstance(shard_seed, (int, np.integer))):
        raise ValueError(f"make_dataset: argument 'shard_seed' expected an int or None, got "
                         f"{shard_seed!r}")
    if pad_to_maxlen and maxlen is None:
        raise ValueError("make_dataset: argument 'pad_to_maxlen' needs 'maxlen', got maxlen=None")
    if batches is not None and (shuffle or bucket_boundaries):
        raise ValueError("make_dataset: argument 'batches' fixes the batch order; it cannot "
                         "be combined with shuffle=True or bucket_boundaries")
    if len(samples) == 0:
        raise ValueError("make_dataset: argument 'samples' is empty (0 rows)")
    if pass_index is not None and (isinstance(pass_index, bool) or
                                   not isinstance(pass_index, (int, np.integer)) or
                                   pass_index < 0):
        raise ValueError(f"make_dataset: argument 'pass_index' expected None or an int >= 0, "
                         f"got {pass_index!r}")
    if isinstance(skip_batches, bool) or not isinstance(skip_batches, (int, np.integer)) or \
            skip_batches < 0 or (skip_batches and pass_index is None):
        raise ValueError(f"make_dataset: argument 'skip_batches' expected an int >= 0 (> 0 "
                         f"only with pass_index), got {skip_batches!r} with "
                         f"pass_index={pass_index!r}")

    n = len(samples)
    start = tf.constant(samples.history_start)
    full_length = samples.history_length.astype(np.int64)
    length = tf.constant(full_length)
    # One trailing zero step keeps every gather valid even when all histories are empty.
    steps_item = tf.constant(np.append(samples.steps_item_id, 0).astype(np.int32))
    steps_cat = tf.constant(np.append(samples.steps_category_id, 0).astype(np.int32))
    columns = {key: tf.constant(getattr(samples, attr)) for key, attr in (
        (F.USER_ID, "user_id"), (F.ITEM_ID, "item_id"), (F.CATEGORY_ID, "category_id"))}
    label = tf.constant(samples.label)
    fixed_neg = negatives is None and samples.steps_negative_item_id is not None
    if fixed_neg:
        pad_row = lambda a: np.concatenate([a, np.zeros((1, a.shape[1]), a.dtype)])
        steps_neg_item = tf.constant(pad_row(samples.steps_negative_item_id))
        steps_neg_cat = tf.constant(pad_row(samples.steps_negative_category_id))
    if negatives is not None:
        pool = tf.constant(negatives.pool)
        item_category = tf.constant(negatives.item_category)
        if samples.steps_item_id.size and samples.steps_item_id.max() >= negatives.item_category.size:
            raise ValueError(f"make_dataset: history item id {samples.steps_item_id.max()} is "
                             f"outside negatives.item_category (size "
                             f"{negatives.item_category.size})")

    def build(rows, batch_seed):
        if fixed_neg:
            draw = lambda history, where: (tf.gather(steps_neg_item, where),  # noqa: E731
                                           tf.gather(steps_neg_cat, where))
        elif negatives is not None:
            draw = lambda history, where: sample_negatives(  # noqa: E731
                history, pool, item_category, negatives.num_negatives, batch_seed)
        else:
            draw = None
        feats = {key: tf.gather(col, rows) for key, col in columns.items()}
        feats.update(history_features(
            tf.gather(start, rows), tf.gather(length, rows), steps_item, steps_cat, maxlen,
            pad_to_maxlen=pad_to_maxlen, with_mask=with_mask, negatives=draw))
        return feats, tf.gather(label, rows)

    def batched(rows):
        """A dataset of row ids -> a dataset of row-id batches."""
        if bucket_boundaries:
            truncated = np.minimum(full_length, maxlen) if maxlen else full_length
            truncated = tf.constant(truncated)
            boundaries = [int(b) for b in bucket_boundaries]
            return rows.bucket_by_sequence_length(
                lambda i: tf.cast(tf.gather(truncated, i), tf.int32), boundaries,
                [batch_size] * (len(boundaries) + 1), drop_remainder=drop_remainder)
        return rows.batch(batch_size, drop_remainder=drop_remainder)

    fixed_batches = None
    if batches is not None:
        batch_rows = [np.asarray(b, np.int64) for b in batches]
        if not batch_rows or any(b.size == 0 or b.min() < 0 or b.max() >= n for b in batch_rows):
            raise ValueError(f"make_dataset: argument 'batches' expected non-empty index lists "
                             f"in [0, {n})")
        table = np.full((len(batch_rows), max(b.size for b in batch_rows)), -1, np.int64)
        for i, b in enumerate(batch_rows):
            table[i, :b.size] = b
        fixed_batches = tf.data.Dataset.from_tensor_slices(table).map(
            lambda r: tf.boolean_mask(r, r >= 0))
        if num_shards > 1:
            fixed_batches = fixed_batches.shard(num_shards, shard_index)

    ds = row_batches(n, batch_size, shuffle=shuffle, seed=seed,
                     drop_remainder=drop_remainder, repeat=repeat, pass_index=pass_index,
                     skip_batches=skip_batches, num_shards=num_shards,
                     shard_index=shard_index, shard_seed=shard_seed, batch=batched,
                     fixed_batches=fixed_batches,
                     caller="make_dataset")
    ds = ds.map(build, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds


def history_features(start, length, steps_item, steps_cat, maxlen=None, *,
                     pad_to_maxlen=False, with_mask=False, negatives=None):
    """A batch's history keys from (start, length) windows into per-step ids.

    `start`, `length`: int64 [B]; `steps_item`, `steps_cat`: int32 [M + 1]
    (a trailing zero step keeps every gather valid). `maxlen` keeps the last
    `maxlen` steps of longer histories; the batch is padded with 0 to its
    longest (truncated) history, or to `maxlen` with `pad_to_maxlen`.
    `negatives(history_items [B, T], step_index [B, T])` returns the
    negatives' item and category ids [B, T, K] (fixed ones gathered at the
    steps, or drawn); they are zeroed on padded steps. Returns
    history_item_ids, history_category_ids, history_length (int32), and
    history_mask / negative_* when asked for.
    """
    s, l = start, length
    if maxlen is not None:
        cut = tf.maximum(l - maxlen, 0)
        s, l = s + cut, l - cut
    t = tf.constant(maxlen, tf.int64) if pad_to_maxlen else tf.reduce_max(l)
    steps = tf.range(t, dtype=tf.int64)
    mask = steps[tf.newaxis, :] < l[:, tf.newaxis]
    where = tf.where(mask, s[:, tf.newaxis] + steps[tf.newaxis, :], 0)
    zeros = tf.zeros_like(where, tf.int32)
    feats = {F.HISTORY_ITEM_IDS: tf.where(mask, tf.gather(steps_item, where), zeros),
             F.HISTORY_CATEGORY_IDS: tf.where(mask, tf.gather(steps_cat, where), zeros),
             F.HISTORY_LENGTH: tf.cast(l, tf.int32)}
    if with_mask:
        feats[F.HISTORY_MASK] = tf.cast(mask, tf.float32)
    if negatives is not None:
        neg_i, neg_c = negatives(feats[F.HISTORY_ITEM_IDS], where)
        mask3 = mask[:, :, tf.newaxis]
        feats[F.NEGATIVE_ITEM_IDS] = tf.where(mask3, neg_i, tf.zeros_like(neg_i))
        feats[F.NEGATIVE_CATEGORY_IDS] = tf.where(mask3, neg_c, tf.zeros_like(neg_c))
    return feats


def input_fn(samples, global_batch_size, **kwargs):
    """A `dataset_fn(input_context)` for `strategy.distribute_datasets_from_function`:
    each input pipeline reads its own shard with the per-replica batch size."""

    def dataset_fn(input_context):
        return make_dataset(
            samples, input_context.get_per_replica_batch_size(global_batch_size),
            num_shards=input_context.num_input_pipelines,
            shard_index=input_context.input_pipeline_id, **kwargs)

    return dataset_fn
