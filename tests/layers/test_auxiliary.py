"""AuxiliaryNetwork and AuxiliaryLoss: docs/original_code.md#auxiliary-loss
(golden parity, reductions)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from din_tf.layers import AuxiliaryLoss, AuxiliaryNetwork
from tests.conftest import load_golden
from tests.layer_test_harness import run_layer_test


def _golden_loss(**kwargs):
    z = load_golden("dien_aux_loss")
    args = (z["in/h_states"], z["in/click_seq"], z["in/noclick_seq"])
    layer = AuxiliaryLoss(**kwargs)
    layer(*args, mask=z["in/mask"])
    net = layer.network
    for name in ("gamma", "beta", "moving_mean", "moving_variance"):
        getattr(net.batch_norm, name).assign(z[f"w/bn1gru/{name}"])
    for i, dense in enumerate(net.dense_layers, start=1):
        dense.kernel.assign(z[f"w/f{i}gru/kernel"])
        dense.bias.assign(z[f"w/f{i}gru/bias"])
    return z, args, layer


def test_golden_aux_loss_and_probabilities():
    z, args, layer = _golden_loss()
    np.testing.assert_allclose(layer(*args, mask=z["in/mask"]), z["out/aux_loss"], rtol=1e-5)
    np.testing.assert_allclose(layer.network(args[0], args[1]), z["out/click_y_hat"],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.network(args[0], args[2]), z["out/noclick_y_hat"],
                               rtol=1e-5, atol=1e-6)


def test_reductions_all_cells_vs_valid_cells():
    z, args, coded = _golden_loss()
    _, _, masked = _golden_loss(reduction="valid_cells")
    mask = z["in/mask"]
    all_cells = float(coded(*args, mask=mask))
    valid = float(masked(*args, mask=mask))
    # Same sum; the coded mean divides by B*T', the masked one by the real cells.
    np.testing.assert_allclose(valid, all_cells * mask.size / mask.sum(), rtol=1e-5)
    # Padded cells contribute nothing in either reduction.
    noisy = [a.copy() for a in args]
    for a in noisy:
        a[mask == 0] = 7.0
    np.testing.assert_allclose(coded(*noisy, mask=mask), all_cells, rtol=1e-6)
    np.testing.assert_allclose(masked(*noisy, mask=mask), valid, rtol=1e-6)


def test_loss_is_the_cross_entropy_of_the_network_by_hand():
    z, args, layer = _golden_loss()
    p = np.asarray(layer.network(args[0], args[1]), np.float64)[..., 0]
    q = np.asarray(layer.network(args[0], args[2]), np.float64)[..., 0]
    m = z["in/mask"]
    np.testing.assert_allclose(layer(*args, mask=m),
                               np.mean(-np.log(p) * m - np.log(1 - q) * m), rtol=1e-5)


def test_training_lowers_the_loss():
    z, args, layer = _golden_loss()

    opt = keras.optimizers.SGD(0.05)
    losses = []
    for _ in range(5):
        with tf.GradientTape() as tape:
            loss = layer(*args, mask=z["in/mask"])
        grads = tape.gradient(loss, layer.trainable_weights)
        opt.apply_gradients(zip(grads, layer.trainable_weights))
        losses.append(float(loss))
    assert losses[-1] < losses[0]


RNG = np.random.default_rng(5)
HS = RNG.normal(size=(3, 4, 6)).astype("float32")
EMB = RNG.normal(size=(3, 4, 5)).astype("float32")
NEG = RNG.normal(size=(3, 4, 5)).astype("float32")
MASK = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], "float32")


@pytest.mark.parametrize("kwargs", [{}, dict(use_batch_norm=False), dict(frozen_batch_norm=False)])
def test_network_harness(kwargs, tmp_path):
    run_layer_test(AuxiliaryNetwork, kwargs, [HS, EMB], expected_output_shapes=[(3, 4, 2)],
                   tmp_path=tmp_path)


@pytest.mark.parametrize("reduction", ["all_cells", "valid_cells"])
def test_loss_harness(reduction, tmp_path):
    run_layer_test(AuxiliaryLoss, dict(reduction=reduction), [HS, EMB, NEG], dict(mask=MASK),
                   expected_output_shapes=[()], tmp_path=tmp_path, run_fit=False)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"reduction='mean'.*\['all_cells', 'valid_cells'\]"):
        AuxiliaryLoss("mean")
    with pytest.raises(ValueError, match=r"mask \[B, T'\] is required"):
        AuxiliaryLoss()(HS, EMB, NEG)
    with pytest.raises(ValueError, match=r"mask has shape \(3, 3\), expected \(3, 4\)"):
        AuxiliaryLoss()(HS, EMB, NEG, mask=MASK[:, :3])
    with pytest.raises(ValueError, match=r"clicked has shape \(3, 4, 5\) but unclicked .*\(3, 4, 4\)"):
        AuxiliaryLoss()(HS, EMB, NEG[..., :4], mask=MASK)
    with pytest.raises(ValueError, match=r"hidden_states of .*rank-3.*\(3, 6\)"):
        AuxiliaryLoss()(HS[:, 0], EMB, NEG, mask=MASK)


@pytest.mark.parametrize("frozen,training", [(True, True), (False, False)])
def test_click_probabilities_equal_two_network_calls(frozen, training):
    """The shared-first-layer path (batch norm a fixed affine map)."""
    rng = np.random.default_rng(7)
    h, clicked, unclicked = (rng.normal(size=(3, 4, w)).astype("float32") for w in (6, 5, 5))
    net = AuxiliaryNetwork(frozen_batch_norm=frozen)
    net(h, clicked)
    bn = net.batch_norm  # every statistic and weight away from identity
    for weight in (bn.moving_mean, bn.gamma, bn.beta):
        weight.assign(rng.normal(size=11).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, size=11).astype("float32"))
    p_click, p_unclick = net.click_probabilities(h, clicked, unclicked, training=training)
    np.testing.assert_allclose(p_click, net(h, clicked, training=training)[..., 0], rtol=1e-6)
    np.testing.assert_allclose(p_unclick, net(h, unclicked, training=training)[..., 0],
                               rtol=1e-6)


def test_click_probabilities_with_batch_statistics_run_the_network_twice_as_coded():
    """Unfrozen batch norm in training normalises each pass with its own batch
    and updates the moving statistics once per pass, as the two original calls."""
    rng = np.random.default_rng(8)
    h, clicked, unclicked = (rng.normal(size=(3, 4, w)).astype("float32") for w in (6, 5, 5))
    shared, reference = (AuxiliaryNetwork(frozen_batch_norm=False) for _ in range(2))
    shared(h, clicked)
    reference(h, clicked)
    reference.set_weights(shared.get_weights())
    p_click, p_unclick = shared.click_probabilities(h, clicked, unclicked, training=True)
    expected_click = reference(h, clicked, training=True)[..., 0]
    expected_unclick = reference(h, unclicked, training=True)[..., 0]
    np.testing.assert_allclose(p_click, expected_click, rtol=1e-6)
    np.testing.assert_allclose(p_unclick, expected_unclick, rtol=1e-6)
    np.testing.assert_allclose(shared.batch_norm.moving_mean, reference.batch_norm.moving_mean,
                               rtol=1e-6)
    assert not np.allclose(shared.batch_norm.moving_mean, 0.0)  # both passes updated it


def test_click_probabilities_without_batch_norm_equal_two_network_calls():
    rng = np.random.default_rng(9)
    h, clicked, unclicked = (rng.normal(size=(3, 4, w)).astype("float32") for w in (6, 5, 5))
    net = AuxiliaryNetwork(use_batch_norm=False)
    net(h, clicked)
    p_click, p_unclick = net.click_probabilities(h, clicked, unclicked, training=True)
    np.testing.assert_allclose(p_click, net(h, clicked)[..., 0], rtol=1e-6)
    np.testing.assert_allclose(p_unclick, net(h, unclicked)[..., 0], rtol=1e-6)
