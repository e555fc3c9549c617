"""Mini-batch-aware L2 (DIN paper eq. 7–8): equals a dense reference, keeps
embedding gradients sparse, and is reported by fit."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from din_tf import models
from din_tf.layers import RowEmbedding
from din_tf.training import EmbeddingL2, MiniBatchAwareL2
from tests.models.conftest import make_batch


def _table(vocab=7, dim=3, name="items"):
    table = RowEmbedding(vocab, dim, embeddings_initializer="random_normal", name=name)
    table.build()
    return table


def test_mba_penalty_equals_the_dense_reference():
    table = _table()
    ids = np.array([[1, 2, 2, 0], [5, 1, 0, 0]], "int32")
    valid = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)  # padded 0s are not features
    counts = np.array([4, 2, 8, 1, 1, 5, 3], "float32")
    reg = MiniBatchAwareL2(0.3, {"items": counts})
    penalty = float(reg([(table, ids, valid)]))
    w = np.asarray(table.embeddings, np.float64)
    present = np.zeros(7)
    present[[1, 2, 5]] = 1  # each present row once, however often it occurs
    expected = 0.3 * np.sum(present / counts * np.sum(w ** 2, axis=1))
    np.testing.assert_allclose(penalty, expected, rtol=1e-6)
    # A padded id that also occurs as a real feature counts once.
    both = np.array([[0, 3]], "int32")
    expected_zero = 0.3 * (np.sum(w[0] ** 2) / counts[0] + np.sum(w[3] ** 2) / counts[3])
    np.testing.assert_allclose(reg([(table, both, None)]), expected_zero, rtol=1e-6)


def test_mba_gradient_is_sparse_and_equals_the_dense_gradient():
    table = _table()
    ids = np.array([1, 2, 2, 5], "int32")
    counts = np.array([4, 2, 8, 1, 1, 5, 3], "float32")
    reg = MiniBatchAwareL2(0.5, {"items": counts})
    with tf.GradientTape() as tape:
        penalty = reg([(table, ids, None), (table, np.array([6]), None)])
    grad = tape.gradient(penalty, table.embeddings)
    assert isinstance(grad, tf.IndexedSlices)
    w = np.asarray(table.embeddings)
    dense = np.zeros_like(w)
    for j in (1, 2, 5, 6):
        dense[j] = 2 * 0.5 * w[j] / counts[j]
    np.testing.assert_allclose(tf.convert_to_tensor(grad), dense, rtol=1e-6)


def test_tables_without_counts_use_one_and_full_l2_is_dense():
    table = _table()
    w = np.asarray(table.embeddings, np.float64)
    reg = MiniBatchAwareL2(1.0)
    np.testing.assert_allclose(reg([(table, np.array([3, 3, 4]), None)]),
                               np.sum(w[[3, 4]] ** 2), rtol=1e-6)
    with tf.GradientTape() as tape:
        penalty = EmbeddingL2(0.1)([(table, np.array([3]), None)])
    np.testing.assert_allclose(penalty, 0.1 * np.sum(w ** 2), rtol=1e-6)
    assert not isinstance(tape.gradient(penalty, table.embeddings), tf.IndexedSlices)


def test_fit_reports_reg_loss_in_the_logs():
    features, labels = make_batch()
    model = models.DIN(9, 30, 6)
    counts = np.arange(30, dtype="float32")
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  regularizer=MiniBatchAwareL2(1e-2, {"mid_embedding": counts}),
                  embedding_update="rows")
    logs = model.fit(features, labels, batch_size=32, epochs=1, verbose=0).history
    assert logs["reg_loss"][0] > 0
    np.testing.assert_allclose(logs["loss"][0], logs["ctr_loss"][0] + logs["reg_loss"][0],
                               rtol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"strength=-1.*>= 0"):
        MiniBatchAwareL2(-1)
    with pytest.raises(ValueError, match=r"frequencies\['items'\].*1-D.*\(2, 2\)"):
        MiniBatchAwareL2(1.0, {"items": np.ones((2, 2))})
    model = models.DNN(9, 30, 6)
    with pytest.raises(ValueError, match=r"unknown tables \['items'\].*'cat_embedding'"):
        model.compile(regularizer=MiniBatchAwareL2(1.0, {"items": np.ones(30)}))
