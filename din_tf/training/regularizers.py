"""Embedding regularizers: the DIN paper's mini-batch-aware L2 and plain L2."""

import numpy as np
import tensorflow as tf

from din_tf.training.gradients import unique_rows


class MiniBatchAwareL2:
    """Mini-batch-aware L2 (DIN paper §4.1, eq. 7–8), penalising only the
    embedding rows a batch gathers:

        reg = strength * sum_tables sum_{j in batch} ||w_j||^2 / n_j

    with `n_j` the number of occurrences of id j in the training data (a
    feature-frequency table per embedding table, e.g. from
    `din_tf.data.frequency`). A row counts once per batch however often it
    occurs (alpha_mj in the paper); padded history steps do not count. Tables
    without a frequency table use `n_j = 1`; ids with `n_j = 0` use 1.

    The paper's update rule (eq. 8) adds `strength * w_j / n_j` to the
    gradient, i.e. half the derivative of the penalty above: pass half the
    paper's lambda to reproduce its update exactly.

    Under a multi-replica `tf.distribute` strategy the penalty is that of the
    global batch: a row looked up by several replicas still counts once. The
    replicas exchange their ids (one all-gather per table) and each row is
    charged to the lowest-numbered replica that looks it up, scaled by the
    replica count, so that, like the CTR loss, the mean of the per-replica
    values is the global value (`CTRModel.train_step` divides by the replica
    count and sums the gradients) and every row's gradient slice comes from
    exactly one replica.

    No public original code implements this, so this formula is the
    reference. The rows are gathered from the variables, so the gradient of
    each table stays an IndexedSlices over the batch's rows.

    Args:
        strength: lambda.
        frequencies: optional dict {table name: counts array [vocab]}; table
            names are the `RowEmbedding` layer names (e.g. "item_embedding").
    """

    def __init__(self, strength, frequencies=None):
        if not float(strength) >= 0:
            raise ValueError(f"Invalid strength={strength!r}; expected a number >= 0.")
        self.strength = float(strength)
        self.frequencies = {}
        for name, counts in (frequencies or {}).items():
            counts = np.asarray(counts, dtype=np.float32)
            if counts.ndim != 1:
                raise ValueError(
                    f"Invalid frequencies[{name!r}]: expected a 1-D array of counts, "
                    f"received shape {counts.shape}.")
            self.frequencies[name] = tf.constant(np.maximum(counts, 1.0))

    def __call__(self, lookups):
        """`lookups`: list of (RowEmbedding layer, ids, valid-or-None) triples."""
        total = tf.constant(0.0)
        for layer, ids, valid in _group_by_table(lookups):
            unique, weights = _row_weights(ids, valid)
            rows = layer.gather(unique)
            if layer.name in self.frequencies:
                weights = weights / tf.gather(self.frequencies[layer.name], unique)
            total += tf.reduce_sum(weights * tf.reduce_sum(tf.square(rows), axis=-1))
        return self.strength * total

    def check_tables(self, table_names):
        unknown = sorted(set(self.frequencies) - set(table_names))
        if unknown:
            raise ValueError(
                f"MiniBatchAwareL2 got frequencies for unknown tables {unknown}; the "
                f"model's embedding tables are {sorted(table_names)}.")


class EmbeddingL2:
    """Plain L2 on whole embedding tables: `strength * sum ||W||^2`.

    Every row is penalised every step, so the gradient is dense (the cost
    MBA regularization avoids); kept as the conventional alternative.
    """

    def __init__(self, strength):
        if not float(strength) >= 0:
            raise ValueError(f"Invalid strength={strength!r}; expected a number >= 0.")
        self.strength = float(strength)

    def __call__(self, lookups):
        tables = {id(layer): layer for layer, _, _ in lookups}
        total = tf.add_n([tf.reduce_sum(tf.square(layer.embeddings.value))
                          for layer in tables.values()]) if tables else tf.constant(0.0)
        return self.strength * total

    def check_tables(self, table_names):
        pass


def _row_weights(ids, valid):
    """(unique ids, weight per unique id): 1 for a row present in the batch
    (once, however often it occurs), 0 for a row seen only on padding."""
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    if replicas == 1:
        unique, positions, count = unique_rows(ids)
        n = tf.shape(unique)[0]
        present = tf.math.unsorted_segment_max(tf.cast(valid, tf.float32), positions, n)
        # Padding slots (see unique_rows) weigh nothing.
        return unique, tf.where(tf.range(n) < count, present, 0.0)
    # Global batch: every replica sees all (id, valid, replica) triples and
    # charges itself (times the replica count) the rows it is the first to use.
    me = tf.cast(context.replica_id_in_sync_group, tf.int32)
    local = tf.stack([ids, tf.cast(valid, tf.int32), tf.fill(tf.shape(ids), me)], axis=1)
    everyone = tf.stop_gradient(context.all_gather(local, axis=0))
    all_ids, all_valid, source = everyone[:, 0], everyone[:, 1] > 0, everyone[:, 2]
    unique, positions, count = unique_rows(all_ids)
    n = tf.shape(unique)[0]
    owner = tf.math.unsorted_segment_min(
        tf.where(all_valid, source, replicas), positions, n)
    mine = tf.logical_and(tf.equal(owner, me), tf.range(n) < count)
    return unique, tf.cast(mine, tf.float32) * float(replicas)


def _group_by_table(lookups):
    """Concatenates the flattened ids and validity of each table's lookups."""
    grouped = {}
    for layer, ids, valid in lookups:
        ids = layer.valid_ids(ids)
        if valid is None:
            valid = tf.ones_like(ids, tf.bool)
        else:
            valid = tf.broadcast_to(tf.cast(valid, tf.bool), tf.shape(ids))
        entry = grouped.setdefault(id(layer), (layer, [], []))
        entry[1].append(tf.reshape(ids, [-1]))
        entry[2].append(tf.reshape(valid, [-1]))
    return [(layer, tf.concat(ids, 0), tf.concat(valid, 0))
            for layer, ids, valid in grouped.values()]
