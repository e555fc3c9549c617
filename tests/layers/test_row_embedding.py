"""RowEmbedding: sparse gradients, row-0 policy for unknown ids, no autocast."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from din_tf.layers import RowEmbedding
from tests.layer_test_harness import run_layer_test

IDS = np.array([[1, 2, 2], [0, 11, -1]], "int32")


def test_gradient_is_indexed_slices_over_the_looked_up_rows():
    layer = RowEmbedding(10, 3)
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(layer(IDS) * np.arange(3, dtype="float32"))
    grad = tape.gradient(out, layer.embeddings)
    assert isinstance(grad, tf.IndexedSlices)
    np.testing.assert_array_equal(grad.indices, [1, 2, 2, 0, 0, 0])  # 11, -1 -> row 0
    dense = np.zeros((10, 3), "float32")
    for row in (1, 2, 2, 0, 0, 0):
        dense[row] += np.arange(3)
    np.testing.assert_allclose(tf.convert_to_tensor(grad), dense)


def test_out_of_range_ids_read_row_zero_or_raise():
    layer = RowEmbedding(10, 3)
    layer(IDS)
    table = np.asarray(layer.embeddings)
    out = np.asarray(layer(IDS))
    np.testing.assert_allclose(out[1, 1], table[0])
    np.testing.assert_allclose(out[1, 2], table[0])
    np.testing.assert_allclose(out[0, 0], table[1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="id >= vocab_size=10"):
        RowEmbedding(10, 3, out_of_range="error")(np.array([10]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="negative id"):
        RowEmbedding(10, 3, out_of_range="error")(np.array([-1]))


def test_table_is_glorot_uniform_over_the_whole_matrix():
    layer = RowEmbedding(5000, 18)
    layer.build()
    limit = np.sqrt(6.0 / (5000 + 18))  # TF1's default on [vocab, dim]
    table = np.asarray(layer.embeddings)
    assert table.max() <= limit and table.min() >= -limit and table.max() > 0.9 * limit


def test_mixed_precision_keeps_the_table_float32():
    layer = RowEmbedding(10, 3, dtype="mixed_float16")
    out = layer(IDS)
    assert out.dtype == "float16" and layer.embeddings.dtype == "float32"


def test_layer_harness(tmp_path):
    run_layer_test(RowEmbedding, dict(vocab_size=12, dim=4), [IDS],
                   expected_output_shapes=[(2, 3, 4)], tmp_path=tmp_path)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"vocab_size=0; expected a positive integer"):
        RowEmbedding(0, 3)
    with pytest.raises(ValueError, match=r"out_of_range='clip'.*\['error', 'map_to_zero'\]"):
        RowEmbedding(3, 3, out_of_range="clip")
    assert keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(RowEmbedding(3, 2, out_of_range="error"))
    ).out_of_range == "error"
