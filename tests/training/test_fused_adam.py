"""FusedAdam: Keras' Adam arithmetic (and TF1's AdamOptimizer semantics on
embedding gradients) in one fused kernel per variable."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from din_tf.models import get_model
from din_tf.training import FusedAdam, LazyAdam, original_optimizer

RNG = np.random.default_rng(3)
INIT = RNG.normal(size=(6, 2)).astype("float32")
DENSE_GRADS = [RNG.normal(size=(6, 2)).astype("float32") for _ in range(4)]
# Embedding-style gradients: row 1 repeated, row 3 only in the first step,
# rows 0, 2 and 5 never.
IDS = [np.array([1, 3, 1, 4])] + [np.array([1, 4, 1, 4])] * 3
SLICES = [RNG.normal(size=(4, 2)).astype("float32") for _ in range(4)]


def _run(optimizer, grads):
    var = keras.Variable(INIT)
    for g in grads:
        optimizer.apply([g], [var])
    return np.asarray(var)


def _tf1_adam(grads, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
    """TF1 AdamOptimizer's update written out in NumPy (float64)."""
    var, m, v = INIT.astype("float64"), np.zeros(INIT.shape), np.zeros(INIT.shape)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        var = var - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
    return var


def _dense(ids, values):
    grad = np.zeros(INIT.shape, "float32")
    np.add.at(grad, ids, values)
    return grad


def _sparse(ids, values):
    return tf.IndexedSlices(tf.constant(values), tf.constant(ids), tf.constant(INIT.shape))


def test_dense_updates_equal_keras_adam_and_tf1_formula():
    fused = _run(FusedAdam(0.01, epsilon=1e-8), [tf.constant(g) for g in DENSE_GRADS])
    keras_adam = _run(keras.optimizers.Adam(0.01, epsilon=1e-8),
                      [tf.constant(g) for g in DENSE_GRADS])
    np.testing.assert_allclose(fused, keras_adam, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fused, _tf1_adam(DENSE_GRADS), rtol=1e-5, atol=1e-6)


def test_sparse_gradients_with_repeated_rows_are_summed_and_every_row_moves():
    sparse = [_sparse(i, s) for i, s in zip(IDS, SLICES)]
    fused = _run(FusedAdam(0.01, epsilon=1e-8), sparse)
    expected = _tf1_adam([_dense(i, s) for i, s in zip(IDS, SLICES)])
    np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-6)
    # Row 0 is never in a batch: its moments stay 0 and it stays put. Row 3
    # is only in step 1 and, as under TF1's Adam, keeps moving on its momentum.
    np.testing.assert_array_equal(fused[0], INIT[0])
    after_one_step = _run(FusedAdam(0.01, epsilon=1e-8), sparse[:1])
    assert not np.allclose(fused[3], after_one_step[3])


def _update_op_types(optimizer, gradient):
    var = keras.Variable(INIT)
    optimizer.build([var])
    graph = tf.function(lambda: optimizer.apply([gradient], [var])).get_concrete_function().graph
    return [op.type for op in graph.get_operations()]


@pytest.mark.parametrize("gradient", [tf.constant(DENSE_GRADS[0]),
                                      _sparse(IDS[0], SLICES[0])],
                         ids=["dense", "sparse"])
def test_one_fused_kernel_updates_var_and_both_moments(gradient):
    types = _update_op_types(FusedAdam(0.01), gradient)
    assert types.count("ResourceApplyAdam") == 1
    # Keras' Adam writes var, m and v with separate element-wise passes.
    assert not {"AssignAddVariableOp", "AssignSubVariableOp", "Sqrt"} & set(types)


def test_the_originals_adam_and_lazy_adams_dense_weights_are_fused():
    assert isinstance(original_optimizer("dien_repo"), FusedAdam)
    assert isinstance(get_model("din_repo/deepfm", n_items=30, n_categories=6)
                      .default_optimizer(), FusedAdam)
    assert "ResourceApplyAdam" in _update_op_types(LazyAdam(0.01), tf.constant(DENSE_GRADS[0]))


def test_config_round_trip_and_keras_serialization():
    opt = FusedAdam(0.02, beta_1=0.8, epsilon=1e-8)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(again) is FusedAdam
    assert again.get_config() == opt.get_config()
