"""DINAttention: docs/original_code.md#attention (golden parity with all three
original functions),
padding properties, hand-computed pooling and argument errors."""

import numpy as np
import pytest

from din_tf.layers import DINAttention
from tests.conftest import load_golden
from tests.layer_test_harness import run_layer_test

RNG = np.random.default_rng(0)
Q = RNG.normal(size=(4, 6)).astype("float32")
K = RNG.normal(size=(4, 5, 6)).astype("float32")
LENGTHS = np.array([5, 3, 1, 2], "int32")
MASK = (np.arange(5)[None, :] < LENGTHS[:, None]).astype("float32")


def _load_scores(layer, z, prefix, suffix=""):
    for i, dense in enumerate(layer.score_layers, start=1):
        dense.kernel.assign(z[f"w/{prefix}{i}_att{suffix}/kernel"])
        dense.bias.assign(z[f"w/{prefix}{i}_att{suffix}/bias"])


@pytest.mark.parametrize("softmax", [1, 0])
@pytest.mark.parametrize("mode", ["sum", "list"])
def test_golden_dien_din_attention(softmax, mode):
    """docs/original_code.md#din-attention-of-the-dien-repo: DIEN
    utils.din_attention, softmax on/off, SUM and LIST."""
    z = load_golden("dien_din_attention")
    facts = z["in/facts"] if softmax else z["in/facts_zero_pad"]
    layer = DINAttention("dien", use_softmax=bool(softmax), output_mode=mode)
    layer(z["in/query"], facts, mask=z["in/mask"])
    _load_scores(layer, z, "f")
    out = np.asarray(layer(z["in/query"], facts, mask=z["in/mask"]))
    expected = z[f"out/softmax{softmax}_{mode.upper()}"]
    if mode == "sum":
        expected = expected[:, 0]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_golden_dien_no_softmax_nonzero_padding_bug_reproduced_and_fixable():
    """docs/original_code.md#softmax-or-raw-attention-weights: without softmax
    the -2**32+1 weight multiplies padded facts."""
    z = load_golden("dien_din_attention")
    args = (z["in/query"], z["in/facts"])
    coded = DINAttention("dien", use_softmax=False)
    coded(*args, mask=z["in/mask"])
    _load_scores(coded, z, "f")
    out = np.asarray(coded(*args, mask=z["in/mask"]))
    np.testing.assert_allclose(out, z["out/softmax0_SUM_nonzero_pad"][:, 0], rtol=1e-4)
    assert np.abs(out).max() > 1e8

    fixed = DINAttention("dien", use_softmax=False, zero_masked_weights=True)
    fixed(*args, mask=z["in/mask"])
    fixed.set_weights(coded.get_weights())
    out_fixed = np.asarray(fixed(*args, mask=z["in/mask"]))
    # With zero weights on padding the padded values no longer matter.
    np.testing.assert_allclose(out_fixed, z["out/softmax0_SUM"][:, 0], rtol=1e-5, atol=1e-5)


def test_golden_dien_fcn_attention():
    """docs/original_code.md#dien-attention-with-a-projected-query: query
    Dense+PReLU projection, LIST output and alphas, SUM."""
    z = load_golden("dien_din_fcn_attention")
    args = (z["in/query"], z["in/facts"])
    for mode in ("list", "sum"):
        layer = DINAttention("dien_fcn", output_mode=mode, return_scores=True)
        layer(*args, mask=z["in/mask"])
        layer.query_dense.kernel.assign(z["w/f11_1/kernel"])
        layer.query_dense.bias.assign(z["w/f11_1/bias"])
        layer.query_prelu.alpha.assign(z["w/prelu_"])
        _load_scores(layer, z, "f", "1_1")
        out, alphas = layer(*args, mask=z["in/mask"])
        if mode == "list":
            np.testing.assert_allclose(out, z["out/LIST_output"], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(alphas, z["out/LIST_alphas"], rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_allclose(out, z["out/SUM_output"][:, 0], rtol=1e-5, atol=1e-5)
    projected = layer.query_prelu(layer.query_dense(z["in/query"]))
    np.testing.assert_allclose(projected, z["out/query_after_prelu"], rtol=1e-5, atol=1e-5)


def test_golden_dinrepo_attention():
    """docs/original_code.md#attention-in-the-din-repo: division by sqrt(128)
    after masking."""
    z = load_golden("dinrepo_attention")
    args = (z["in/queries"], z["in/keys"])
    layer = DINAttention("din_repo")
    layer(*args, lengths=z["in/keys_length"])
    _load_scores(layer, z, "f")
    out = np.asarray(layer(*args, lengths=z["in/keys_length"]))
    np.testing.assert_allclose(out, z["out/attention"][:, 0], rtol=1e-5, atol=1e-5)


def test_constant_scores_pool_the_mean_of_real_keys():
    """Hand-computed: a zero MLP gives equal scores, so softmax averages real keys."""
    layer = DINAttention("dien")
    layer(Q, K, lengths=LENGTHS)
    layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    out = np.asarray(layer(Q, K, lengths=LENGTHS))
    expected = np.stack([K[b, :n].mean(0) for b, n in enumerate(LENGTHS)])
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("variant", ["dien", "dien_fcn", "din_repo"])
@pytest.mark.parametrize("mode", ["sum", "list"])
def test_padded_keys_never_change_softmax_outputs(variant, mode):
    layer = DINAttention(variant, output_mode=mode, return_scores=True)
    out, w = layer(Q, K, lengths=LENGTHS)
    noisy = K.copy()
    noisy[MASK == 0] = RNG.normal(size=(int((MASK == 0).sum()), 6)) * 100
    out2, w2 = layer(Q, noisy, lengths=LENGTHS)
    real = MASK.astype(bool)
    np.testing.assert_array_equal(np.asarray(w)[~real], 0.0)
    np.testing.assert_allclose(np.asarray(w2), np.asarray(w), rtol=1e-6, atol=1e-7)
    if mode == "sum":
        np.testing.assert_allclose(out2, out, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(np.asarray(out2)[real], np.asarray(out)[real], rtol=1e-5)
        np.testing.assert_array_equal(np.asarray(out2)[~real], 0.0)


def test_empty_row_uniform_as_coded_zero_when_fixed():
    lengths = np.array([0, 2, 5, 1], "int32")
    coded = DINAttention("dien", return_scores=True)
    _, w = coded(Q, K, lengths=lengths)
    np.testing.assert_allclose(np.asarray(w)[0], np.full(5, 0.2), rtol=1e-6)
    fixed = DINAttention("dien", zero_masked_weights=True)
    fixed(Q, K, lengths=lengths)
    fixed.set_weights(coded.get_weights())
    np.testing.assert_array_equal(np.asarray(fixed(Q, K, lengths=lengths))[0], 0.0)


def test_mask_and_lengths_agree_and_bool_mask_works():
    layer = DINAttention("din_repo")
    by_len = np.asarray(layer(Q, K, lengths=LENGTHS))
    np.testing.assert_allclose(layer(Q, K, mask=MASK), by_len, rtol=1e-6)
    np.testing.assert_allclose(layer(Q, K, mask=MASK.astype(bool)), by_len, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs,call_kwargs,shapes",
    [
        (dict(variant="dien"), dict(mask=MASK), [(4, 6)]),
        (dict(variant="dien", output_mode="list", return_scores=True),
         dict(lengths=LENGTHS), [(4, 5, 6), (4, 5)]),
        (dict(variant="dien_fcn", output_mode="list"), dict(mask=MASK), [(4, 5, 6)]),
        (dict(variant="din_repo"), dict(lengths=LENGTHS), [(4, 6)]),
        (dict(variant="dien", use_softmax=False, zero_masked_weights=True),
         dict(mask=MASK), [(4, 6)]),
    ],
)
def test_layer_harness(kwargs, call_kwargs, shapes, tmp_path):
    run_layer_test(DINAttention, kwargs, [Q, K], call_kwargs, shapes, tmp_path)


def test_fcn_query_may_have_any_width(tmp_path):
    wide_q = RNG.normal(size=(4, 11)).astype("float32")
    run_layer_test(DINAttention, dict(variant="dien_fcn"), [wide_q, K], dict(mask=MASK),
                   [(4, 6)], tmp_path)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(variant="dein"), r"variant='dein'.*'dien', 'dien_fcn', 'din_repo'"),
        (dict(output_mode="mean"), r"output_mode='mean'.*'list', 'sum'"),
        (dict(fold_min_steps=0), r"fold_min_steps=0; expected a positive integer"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DINAttention(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"query of .* rank-2 .* \(4, 1, 6\)"):
        DINAttention()(Q[:, None, :], K)
    with pytest.raises(ValueError, match=r"query of .*'dien'.*key width = 6.*\(4, 11\)"):
        DINAttention()(RNG.normal(size=(4, 11)).astype("float32"), K)
    with pytest.raises(ValueError, match=r"mask has shape \(4, 3\), expected \(4, 5\)"):
        DINAttention()(Q, K, mask=MASK[:, :3])
    with pytest.raises(ValueError, match=r"lengths has shape \(3,\), expected \(4,\)"):
        DINAttention()(Q, K, lengths=LENGTHS[:3])
    with pytest.raises(ValueError, match="either mask or lengths"):
        DINAttention()(Q, K, mask=MASK, lengths=LENGTHS)


def _scores_and_gradients(layer, query, keys, lengths):
    import tensorflow as tf

    query, keys = tf.constant(query), tf.constant(keys)
    with tf.GradientTape() as tape:
        tape.watch([query, keys])
        out, weights = layer(query, keys, lengths=lengths)
        loss = tf.reduce_sum(out * out) + tf.reduce_sum(weights * weights)
    grads = tape.gradient(loss, [query, keys] + layer.trainable_weights)
    return [np.asarray(t) for t in [out, weights] + grads]


@pytest.mark.parametrize("variant", ["dien", "dien_fcn", "din_repo"])
def test_folded_query_kernel_equals_the_concatenated_form(variant, monkeypatch):
    # Long histories fold the query into a per-row kernel; short ones use the
    # [k, q * k] form the golden tests cover. Both must give the same outputs
    # and gradients (to float rounding) on the same weights.
    from din_tf.layers import din_attention

    rng = np.random.default_rng(3)
    query = rng.normal(size=(3, 6)).astype("float32")
    keys = rng.normal(size=(3, 40, 6)).astype("float32")
    lengths = np.array([40, 17, 1], "int32")
    layer = DINAttention(variant, output_mode="list", return_scores=True)
    layer(query, keys, lengths=lengths)
    layer.set_weights([rng.normal(size=w.shape).astype("float32") * 0.5
                       for w in layer.get_weights()])
    # Only the concatenated form calls ops.concatenate: count calls to tell
    # the forms apart, so the comparison cannot pit a form against itself.
    calls = []
    concatenate = din_attention.ops.concatenate
    monkeypatch.setattr(din_attention.ops, "concatenate",
                        lambda *a, **k: calls.append(1) or concatenate(*a, **k))
    layer.fold_min_steps = 10**9  # longer than any history: never folds
    concatenated = _scores_and_gradients(layer, query, keys, lengths)
    assert calls
    calls.clear()
    layer.fold_min_steps = 1
    folded = _scores_and_gradients(layer, query, keys, lengths)
    assert not calls
    for f, c in zip(folded, concatenated):
        np.testing.assert_allclose(f, c, rtol=1e-5, atol=1e-5)


def test_unknown_history_length_matches_eager_calls():
    import tensorflow as tf

    layer = DINAttention("din_repo")
    rng = np.random.default_rng(4)
    query = rng.normal(size=(2, 6)).astype("float32")

    @tf.function(input_signature=[tf.TensorSpec([None, 6]), tf.TensorSpec([None, None, 6])])
    def pooled(q, k):
        with tf.GradientTape() as tape:
            tape.watch(k)
            out = layer(q, k)
            loss = tf.reduce_sum(out * out)
        return out, tape.gradient(loss, k)

    for steps in (5, 50):  # eager: concatenated, folded; traced with T=None: folded
        keys = rng.normal(size=(2, steps, 6)).astype("float32")
        with tf.GradientTape() as tape:
            k = tf.constant(keys)
            tape.watch(k)
            eager = layer(query, k)
            loss = tf.reduce_sum(eager * eager)
        eager_grad = tape.gradient(loss, k)
        out, grad = pooled(query, keys)
        np.testing.assert_allclose(out, eager, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(grad, eager_grad, rtol=1e-5, atol=1e-6)
