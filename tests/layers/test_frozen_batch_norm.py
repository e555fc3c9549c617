"""FrozenBatchNorm: docs/original_code.md#batch-normalisation-never-trains
(gamma * x / sqrt(1.001) + beta, never updated)."""

import keras
import numpy as np
import pytest

from din_tf.layers import FrozenBatchNorm
from tests.layer_test_harness import run_layer_test

X = np.random.default_rng(3).normal(size=(16, 4)).astype("float32") * 3 + 1


def test_frozen_is_the_affine_map_in_training_too():
    layer = FrozenBatchNorm()
    layer(X)
    gamma = np.array([0.5, 1.0, 2.0, -1.0], "float32")
    beta = np.array([0.1, 0.0, -0.3, 2.0], "float32")
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    expected = gamma * X / np.sqrt(1.001) + beta
    for training in (None, False, True):
        np.testing.assert_allclose(layer(X, training=training), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(layer.moving_mean, 0.0)
    np.testing.assert_array_equal(layer.moving_variance, 1.0)


def test_fit_never_updates_moving_statistics():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, FrozenBatchNorm()(inputs))
    model.compile("sgd", "mse")
    model.fit(X, np.zeros_like(X), epochs=2, batch_size=8, verbose=0)
    bn = model.layers[-1]
    np.testing.assert_array_equal(bn.moving_mean, 0.0)
    np.testing.assert_array_equal(bn.moving_variance, 1.0)
    assert not np.allclose(bn.gamma, 1.0)  # gamma and beta do train


def test_unfrozen_is_ordinary_batch_norm():
    layer = FrozenBatchNorm(frozen=False)
    out = np.asarray(layer(X, training=True))
    np.testing.assert_allclose(out, (X - X.mean(0)) / np.sqrt(X.var(0) + 1e-3),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean, 0.01 * X.mean(0), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("frozen", [True, False])
def test_layer_harness(frozen, tmp_path):
    run_layer_test(FrozenBatchNorm, dict(frozen=frozen), [X], expected_output_shapes=[(16, 4)],
                   tmp_path=tmp_path)


def test_bad_frozen_value():
    with pytest.raises(ValueError, match=r"frozen='yes'; expected True or False"):
        FrozenBatchNorm(frozen="yes")


@pytest.mark.parametrize("kwargs", [{}, dict(center=False), dict(scale=False)])
def test_inference_affine_is_the_layer_as_scale_and_shift(kwargs):
    rng = np.random.default_rng(4)
    layer = FrozenBatchNorm(**kwargs)
    layer(X)
    for weight in layer.weights:
        weight.assign(rng.uniform(0.5, 2.0, size=4).astype("float32"))
    scale, shift = layer.inference_affine()
    np.testing.assert_allclose(X * np.asarray(scale) + np.asarray(shift), layer(X), rtol=1e-5,
                               atol=1e-6)
    # Hand-computed for the default layer: gamma / sqrt(var + 1e-3), beta - mean * scale.
    if not kwargs:
        gamma, beta, mean, var = (np.asarray(w) for w in layer.weights)
        np.testing.assert_allclose(scale, gamma / np.sqrt(var + 1e-3), rtol=1e-6)
        np.testing.assert_allclose(shift, beta - mean * gamma / np.sqrt(var + 1e-3), rtol=1e-6)


def test_inference_affine_needs_the_last_axis():
    layer = FrozenBatchNorm(axis=1)
    layer(np.zeros((2, 4, 3), "float32"))
    assert layer.inference_affine() is None
