"""Duplicate-id merging (sparse == dense), LazyAdam's row-only semantics,
and global-norm clipping as TF1 computed it
(docs/original_code.md#gradient-clipping-as-tf1-computed-it,
docs/original_code.md#adam-on-embedding-rows)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from din_tf.training import (
    LazyAdam,
    clip_by_global_norm_as_coded,
    global_norm_as_coded,
    merge_duplicate_rows,
)
from din_tf.training.gradients import unique_rows
from tests.conftest import load_golden

IDS = tf.constant([1, 3, 1, 1, 4])  # repeated ids, as in every DIN/DIEN batch
VALUES = tf.constant(np.random.default_rng(0).normal(size=(5, 2)).astype("float32"))
SPARSE = tf.IndexedSlices(VALUES, IDS, tf.constant([6, 2]))


def _apply(optimizer, grads, steps=3):
    var = keras.Variable(np.ones((6, 2), "float32"))
    for _ in range(steps):
        optimizer.apply([grads], [var])
    return np.asarray(var)


@pytest.mark.parametrize("static_shapes", [False, True])
@pytest.mark.parametrize("make", [lambda: keras.optimizers.Adagrad(0.1),
                                  lambda: keras.optimizers.SGD(0.1)])
def test_merged_sparse_updates_equal_dense_updates(make, static_shapes):
    dense = _apply(make(), tf.convert_to_tensor(SPARSE))
    merged = _apply(make(), merge_duplicate_rows(SPARSE, static_shapes=static_shapes))
    np.testing.assert_allclose(merged, dense, rtol=1e-6)


def test_unmerged_duplicates_break_keras_sparse_updates():
    """The pitfall the merge exists for (Keras 3 applies each slice alone)."""
    dense = _apply(keras.optimizers.Adagrad(0.1), tf.convert_to_tensor(SPARSE))
    unmerged = _apply(keras.optimizers.Adagrad(0.1), SPARSE)
    assert not np.allclose(unmerged, dense, rtol=1e-4)


def test_merge_duplicate_rows_sums_values():
    merged = merge_duplicate_rows(SPARSE)
    # One slice per distinct id, in first-seen order.
    np.testing.assert_array_equal(merged.indices, [1, 3, 4])
    np.testing.assert_allclose(merged.values[0], VALUES[0] + VALUES[2] + VALUES[3], rtol=1e-6)
    np.testing.assert_allclose(merged.values[1:], tf.gather(VALUES, [1, 4]))


def test_merge_duplicate_rows_static_shape_pads_with_zero_slices():
    merged = tf.function(lambda g: merge_duplicate_rows(g, static_shapes=True),
                         jit_compile=True)(SPARSE)
    # One slice per distinct id, then zero padding slices on the smallest id.
    np.testing.assert_array_equal(merged.indices, [1, 3, 4, 1, 1])
    np.testing.assert_allclose(merged.values[0], VALUES[0] + VALUES[2] + VALUES[3], rtol=1e-6)
    np.testing.assert_array_equal(merged.values[3:], 0.0)
    np.testing.assert_allclose(tf.convert_to_tensor(merged), tf.convert_to_tensor(SPARSE))


@pytest.mark.parametrize("ids", [[5, 5, 5], [2, 9, 4, 7], [0, 3, 0, 3, 0, 1], [8]])
def test_unique_rows_agrees_with_tf_unique_and_compiles(ids):
    ids = tf.constant(ids, tf.int32)
    expected, expected_positions = tf.unique(ids)
    for fn in (unique_rows, tf.function(unique_rows, jit_compile=True)):
        unique, positions, count = fn(ids)
        assert int(count) == len(expected)
        np.testing.assert_array_equal(unique[:int(count)], np.sort(expected))
        np.testing.assert_array_equal(unique[int(count):], np.min(ids))
        np.testing.assert_array_equal(tf.gather(unique, positions), ids)


@pytest.mark.parametrize("premerged", [False, True])
def test_lazy_adam_merges_alike_hashed_sorted_and_under_xla(premerged):
    """The hash merge (default), the static-shape merge, and the latter
    XLA-compiled give one result, with or without merging beforehand."""
    grads = merge_duplicate_rows(SPARSE) if premerged else SPARSE

    def run(static_shapes, compiled):
        var = keras.Variable(np.ones((6, 2), "float32"))
        opt = LazyAdam(0.01, epsilon=1e-8, static_shapes=static_shapes)
        opt.build([var])
        step = lambda: opt.apply([grads], [var])  # noqa: E731
        step = tf.function(step, jit_compile=True) if compiled else step
        for _ in range(3):
            step()
        return np.asarray(var)
    hashed = run(False, False)
    np.testing.assert_allclose(run(True, False), hashed, rtol=1e-6)
    np.testing.assert_allclose(run(True, True), hashed, rtol=1e-6)
    # Not merging at all would update row 1 three times per step.
    unmerged = _apply(keras.optimizers.Adam(0.01, epsilon=1e-8), SPARSE)
    assert not np.allclose(hashed, unmerged, rtol=1e-4)


def test_lazy_adam_config_round_trip_and_bad_option():
    opt = LazyAdam(0.02, static_shapes=True)
    again = LazyAdam.from_config(opt.get_config())
    assert again.static_shapes is True and np.isclose(float(again.learning_rate), 0.02)
    with pytest.raises(ValueError, match="static_shapes='yes'"):
        LazyAdam(static_shapes="yes")


def test_lazy_adam_equals_adam_on_present_rows_and_freezes_absent_rows():
    lazy = _apply(LazyAdam(0.01, epsilon=1e-8), merge_duplicate_rows(SPARSE), steps=1)
    dense = _apply(keras.optimizers.Adam(0.01, epsilon=1e-8), tf.convert_to_tensor(SPARSE),
                   steps=1)
    np.testing.assert_allclose(lazy, dense, rtol=1e-6)  # first step: identical
    # Later steps: dense Adam keeps moving rows absent from the batch (momentum);
    # LazyAdam leaves them exactly where they are.
    var_lazy, var_dense = keras.Variable(np.ones((6, 2), "float32")), \
        keras.Variable(np.ones((6, 2), "float32"))
    lazy_opt, dense_opt = LazyAdam(0.01), keras.optimizers.Adam(0.01)
    only_row_1 = tf.IndexedSlices(VALUES[:1], IDS[:1], tf.constant([6, 2]))
    for grads in (SPARSE, only_row_1):
        lazy_opt.apply([merge_duplicate_rows(grads)], [var_lazy])
        dense_opt.apply([tf.convert_to_tensor(grads)], [var_dense])
    before = _apply(LazyAdam(0.01), merge_duplicate_rows(SPARSE), steps=1)
    np.testing.assert_allclose(np.asarray(var_lazy)[[3, 4]], before[[3, 4]], rtol=1e-6)
    assert not np.allclose(np.asarray(var_dense)[[3, 4]], before[[3, 4]], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(var_lazy)[[0, 2, 5]], 1.0)


def test_global_norm_as_coded_matches_tf1_per_variable_squares():
    """golden gradsq_tf: each variable's contribution as TF1 summed it."""
    z = load_golden("dinrepo_model_din")
    raw = tf.IndexedSlices(tf.constant([[3.0, 4.0], [3.0, 4.0]]), tf.constant([0, 0]),
                           tf.constant([2, 2]))
    # Duplicates squared separately: 25 + 25, not (6^2 + 8^2) = 100.
    np.testing.assert_allclose(global_norm_as_coded([raw]), np.sqrt(50.0))
    total = sum(float(z[k]) for k in z if k.startswith("gradsq_tf/"))
    np.testing.assert_allclose(np.sqrt(total), z["out/grad_global_norm"], rtol=1e-6)


def test_clipping_scales_every_gradient_by_clip_over_norm():
    dense = tf.constant([[1.0, 2.0]])
    sparse = tf.IndexedSlices(tf.constant([[3.0, 4.0], [3.0, 4.0]]), tf.constant([0, 0]),
                              tf.constant([2, 2]))
    clipped, norm = clip_by_global_norm_as_coded([dense, sparse, None], 0.5)
    np.testing.assert_allclose(norm, np.sqrt(55.0), rtol=1e-6)
    scale = 0.5 / np.sqrt(55.0)
    np.testing.assert_allclose(clipped[0], [[scale, 2 * scale]], rtol=1e-6)
    assert isinstance(clipped[1], tf.IndexedSlices) and clipped[2] is None
    np.testing.assert_allclose(clipped[1].values, [[3 * scale, 4 * scale]] * 2, rtol=1e-6)
    unclipped, _ = clip_by_global_norm_as_coded([dense], 10.0)
    np.testing.assert_allclose(unclipped[0], dense)


@pytest.mark.parametrize("optimizer, merged", [
    (lambda: keras.optimizers.SGD(0.1), False),
    (lambda: keras.optimizers.SGD(0.1, momentum=0.9), True),
    (lambda: keras.optimizers.Adagrad(0.1), True),
    (lambda: LazyAdam(0.1), False),
], ids=["sgd", "sgd-momentum", "adagrad", "lazy-adam"])
def test_row_updates_merge_repeated_rows_only_for_optimizers_that_need_it(optimizer, merged):
    """Plain SGD's scatter adds repeated rows itself (as TF1's SGD did, unmerged):
    merging its slices would only add a Unique and a segment sum per step."""
    from din_tf.models import get_model

    model = get_model("din_repo/base", n_items=6, n_categories=2)
    model.compile(optimizer=optimizer(), embedding_update="rows")
    table = model.item_embedding.embeddings
    (processed,), _ = model.process_gradients([SPARSE], [table])
    assert processed.indices.shape[0] == (len(set(IDS.numpy())) if merged else len(IDS))
    if not merged and isinstance(model.optimizer, keras.optimizers.SGD):
        np.testing.assert_allclose(_apply(keras.optimizers.SGD(0.1), processed),
                                   _apply(keras.optimizers.SGD(0.1), tf.convert_to_tensor(SPARSE)),
                                   rtol=1e-6)
