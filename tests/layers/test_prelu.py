"""PReLU: docs/original_code.md#prelu (both repos' functions, golden parity)."""

import numpy as np
import pytest

from din_tf.layers import PReLU
from tests.conftest import load_golden
from tests.layer_test_harness import run_layer_test


@pytest.mark.parametrize("key,weight", [("dien_prelu", "w/p/prelu_p"),
                                        ("dinrepo_parametric_relu", "w/alpha")])
def test_golden(key, weight):
    z = load_golden("activations")
    layer = PReLU()
    layer(z["in/x"])
    layer.alpha.assign(z[weight])
    np.testing.assert_allclose(layer(z["in/x"]), z[f"out/{key}"], rtol=1e-6, atol=1e-6)


def test_initial_slope_is_the_dien_repo_value():
    x = np.array([[-2.0, -1.0, 0.0, 3.0]], "float32")
    np.testing.assert_allclose(PReLU()(x), [[-0.2, -0.1, 0.0, 3.0]], rtol=1e-6)
    np.testing.assert_allclose(PReLU(0.0)(x), [[0.0, 0.0, 0.0, 3.0]])


def test_layer_harness(tmp_path):
    x = np.random.default_rng(2).normal(size=(4, 3, 7)).astype("float32")
    run_layer_test(PReLU, dict(alpha_initializer=0.25), [x], expected_output_shapes=[(4, 3, 7)],
                   tmp_path=tmp_path)


def test_unknown_channels_is_an_error():
    with pytest.raises(ValueError, match=r"last axis.*statically known.*\(None, None\)"):
        PReLU().build((None, None))
