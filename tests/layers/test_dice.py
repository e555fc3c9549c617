"""Dice: docs/original_code.md#activations (golden parity for both repos, paper
mode by hand)."""

import keras
import numpy as np
import pytest

from din_tf.layers import Dice
from tests.conftest import load_golden
from tests.layer_test_harness import run_layer_test

X = np.random.default_rng(1).normal(size=(6, 5)).astype("float32") * 2 + 0.5


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_golden_dien_dice():
    """docs/original_code.md#dice-as-the-dien-repo-codes-it: batch statistics,
    eps 1e-9 inside the root and on the std."""
    z = load_golden("activations")
    layer = Dice("dien")
    layer(z["in/x"])
    layer.alpha.assign(z["w/dice_a/alphadice_a"])
    np.testing.assert_allclose(layer(z["in/x"]), z["out/dien_dice"], rtol=1e-5, atol=1e-5)
    # Same statistics at inference: training= changes nothing in this mode.
    np.testing.assert_allclose(layer(z["in/x"], training=True), z["out/dien_dice"],
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer(z["in/x_batch1"]), z["out/dien_dice_batch1"],
                               rtol=1e-5, atol=1e-5)


def test_golden_dinrepo_dice():
    """docs/original_code.md#dice-as-the-din-repo-codes-it:
    p = sigmoid(beta * BN_inference(x)), moving stats 0/1."""
    z = load_golden("activations")
    layer = Dice("din_repo")
    layer(z["in/x"])
    layer.alpha.assign(z["w/alphadice_b"])
    layer.beta.assign(z["w/betadice_b"])
    layer.moving_mean.assign(z["w/dice_b/moving_mean"])
    layer.moving_variance.assign(z["w/dice_b/moving_variance"])
    np.testing.assert_allclose(layer(z["in/x"]), z["out/dinrepo_dice"], rtol=1e-5, atol=1e-5)


def test_initial_dice_is_half_identity_in_din_repo_mode():
    """alpha = beta = 0 at init: p = 1/2, f(x) = x / 2
    (docs/original_code.md#dice-as-the-din-repo-codes-it)."""
    np.testing.assert_allclose(Dice("din_repo")(X), 0.5 * X, rtol=1e-6)


def test_dien_dice_depends_on_the_batch_as_coded():
    layer = Dice("dien")
    full = np.asarray(layer(X))
    alone = np.asarray(layer(X[:1]))
    # A single row normalises to 0, so p = 1/2 and alpha = 0 gives x / 2.
    np.testing.assert_allclose(alone, 0.5 * X[:1], rtol=1e-6)
    assert not np.allclose(full[:1], alone)


def test_paper_dice_training_uses_batch_statistics_and_updates_moving_averages():
    """docs/original_code.md#dice-as-the-paper-defines-it by hand: eps 1e-8,
    population variance, momentum 0.99."""
    layer = Dice("paper")
    layer(X)
    layer.alpha.assign(np.linspace(-0.5, 0.5, 5).astype("float32"))
    out = np.asarray(layer(X, training=True))
    x = X.astype(np.float64)
    mean, var = x.mean(0), x.var(0)
    p = _sigmoid((x - mean) / np.sqrt(var + 1e-8))
    alpha = np.linspace(-0.5, 0.5, 5)
    np.testing.assert_allclose(out, p * x + (1 - p) * alpha * x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.moving_mean, 0.01 * mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(layer.moving_variance, 0.99 + 0.01 * var, rtol=1e-5)


def test_paper_dice_inference_row_never_depends_on_its_batch():
    layer = Dice("paper")
    for _ in range(3):
        layer(X, training=True)
    batch = np.asarray(layer(X, training=False))
    for i in range(len(X)):
        np.testing.assert_allclose(layer(X[i:i + 1], training=False), batch[i:i + 1],
                                   rtol=1e-6, atol=1e-7)
    p = _sigmoid((X - np.asarray(layer.moving_mean)) /
                 np.sqrt(np.asarray(layer.moving_variance) + 1e-8))
    np.testing.assert_allclose(batch, p * X, rtol=1e-5, atol=1e-6)  # alpha still 0


def test_rank3_reduces_over_all_but_last_axis():
    x3 = X.reshape(2, 3, 5)
    np.testing.assert_allclose(Dice("dien")(x3), np.asarray(Dice("dien")(X)).reshape(2, 3, 5),
                               rtol=1e-6)


@pytest.mark.parametrize("mode", ["dien", "din_repo", "paper"])
def test_layer_harness(mode, tmp_path):
    def nonzero_alpha(layer):
        layer.alpha.assign(np.full(5, 0.25, "float32"))

    run_layer_test(Dice, dict(mode=mode), [X], expected_output_shapes=[(6, 5)],
                   tmp_path=tmp_path, prepare_layer=nonzero_alpha)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"mode='batch'.*\['dien', 'din_repo', 'paper'\]"):
        Dice("batch")
    with pytest.raises(ValueError, match=r"input to dice: expected a tensor of rank 2 or more, received shape \(5,\)"):
        Dice(name="dice")(X[0])
    layer = Dice()
    with pytest.raises(ValueError, match=r"last axis.*statically known"):
        layer.build((None, None))
    assert keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(Dice("paper", epsilon=1e-3))).epsilon == 1e-3


def test_dien_dice_tracks_moving_statistics_for_serving():
    """Training updates moving averages in every mode; inference_statistics=
    "moving" makes dien-mode Dice row-independent (used by export)."""
    layer = Dice("dien")
    layer(X)
    layer.alpha.assign(np.full(5, 0.3, "float32"))
    coded = np.asarray(layer(X, training=True))
    np.testing.assert_allclose(coded, layer(X), rtol=1e-6)  # batch stats either way
    x = X.astype(np.float64)
    np.testing.assert_allclose(layer.moving_mean, 0.01 * x.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(layer.moving_variance, 0.99 + 0.01 * x.var(0), rtol=1e-5)
    layer.inference_statistics = "moving"
    served = np.asarray(layer(X))
    mean, var = np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)
    p = _sigmoid((X - mean) / (np.sqrt(var + 1e-9) + 1e-9))
    np.testing.assert_allclose(served, p * X + (1 - p) * 0.3 * X, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer(X[2:3]), served[2:3], rtol=1e-6)
    assert Dice("dien", inference_statistics="moving").get_config()[
        "inference_statistics"] == "moving"
    with pytest.raises(ValueError, match=r"inference_statistics='ema'"):
        Dice(inference_statistics="ema")
