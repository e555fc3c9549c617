"""Gradient post-processing: sparse-row merging, densifying, and the global-norm
clipping exactly as TF1 computed it for the DIN repo."""

import tensorflow as tf


def unique_rows(ids):
    """`tf.unique` with static shapes, so it compiles under XLA.

    Returns `(unique, positions, count)` for 1-D `ids` of length n: `unique`
    [n] holds the `count` distinct ids in ascending order followed by
    `n - count` copies of the smallest id (a row the batch really uses, so
    padding never names a new row), and `unique[positions[i]] == ids[i]`.
    """
    n = ids.shape[0] if ids.shape[0] is not None else tf.shape(ids)[0]
    order = tf.argsort(ids, stable=True)
    ordered = tf.gather(ids, order)
    starts = tf.concat([tf.ones([1], tf.bool), tf.not_equal(ordered[1:], ordered[:-1])], 0)
    ordered_positions = tf.cumsum(tf.cast(starts, tf.int32)) - 1
    count = ordered_positions[-1] + 1
    positions = tf.scatter_nd(order[:, None], ordered_positions, tf.shape(ids))
    unique = tf.math.unsorted_segment_max(ordered, ordered_positions, n)
    unique = tf.where(tf.range(n) < count, unique, ordered[0])
    return unique, positions, count


def merge_duplicate_rows(grad, static_shapes=False):
    """Sums the rows of an IndexedSlices that share an index.

    Keras 3 optimizers apply each slice separately, so repeated ids (every
    DIN/DIEN batch repeats ids) would otherwise update Adam-like moments once
    per occurrence instead of once with the summed gradient.

    By default the result has one slice per distinct id, in first-seen order
    (`tf.unique`: a hash, linear in the rows; its length depends on the data,
    so XLA cannot compile it). `static_shapes=True` keeps the static length n
    of the input instead (see `unique_rows`: a sort, compiles under XLA): one
    slice per distinct id in ascending order, then zero slices on the smallest
    id, which optimizers that add slices (SGD, Adagrad) ignore.
    """
    if not isinstance(grad, tf.IndexedSlices):
        return grad
    if grad.indices.shape[0] == 0:
        return grad
    if static_shapes:
        unique, positions, _ = unique_rows(grad.indices)
    else:
        unique, positions = tf.unique(grad.indices)
    values = tf.math.unsorted_segment_sum(grad.values, positions, tf.shape(unique)[0])
    return tf.IndexedSlices(values, unique, grad.dense_shape)


def densify(grad):
    """IndexedSlices -> dense tensor (duplicate rows summed); others unchanged."""
    if isinstance(grad, tf.IndexedSlices):
        return tf.convert_to_tensor(grad)
    return grad


def global_norm_as_coded(grads):
    """TF1's `global_norm` on the gradients exactly as the DIN repo passed them.

    Embedding gradients arrive as IndexedSlices whose duplicate rows are not
    summed, and TF squares each slice separately, so the norm is
    `sqrt(sum over slices of ||row||^2)`, not the norm of the dense gradient
    (docs/original_code.md#gradient-clipping-as-tf1-computed-it; golden `gradsq_tf`).
    """
    squares = []
    for g in grads:
        if g is None:
            continue
        values = g.values if isinstance(g, tf.IndexedSlices) else g
        squares.append(tf.reduce_sum(tf.square(tf.cast(values, tf.float32))))
    return tf.sqrt(tf.add_n(squares)) if squares else tf.constant(0.0)


def clip_by_global_norm_as_coded(grads, clip_norm):
    """`tf.clip_by_global_norm(grads, clip_norm)` with the norm of
    `global_norm_as_coded`; IndexedSlices stay sparse. Returns (grads, norm)."""
    norm = global_norm_as_coded(grads)
    # TF1's formula: scale = clip_norm * min(1 / norm, 1 / clip_norm).
    scale = clip_norm * tf.minimum(1.0 / norm, 1.0 / clip_norm)
    clipped = []
    for g in grads:
        if g is None:
            clipped.append(None)
        elif isinstance(g, tf.IndexedSlices):
            clipped.append(tf.IndexedSlices(g.values * tf.cast(scale, g.values.dtype),
                                            g.indices, g.dense_shape))
        else:
            clipped.append(g * tf.cast(scale, g.dtype))
    return clipped, norm
