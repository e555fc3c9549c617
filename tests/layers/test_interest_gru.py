"""GRU-family cells and InterestGRU: docs/original_code.md#gru-family (golden
parity through the original dynamic_rnn, hand-computed gates, padding, XLA)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from din_tf.layers import AGRUCell, AIGRUCell, AUGRUCell, GRUCell, InterestGRU
from tests.conftest import GOLDEN_VARIANTS, golden_variant, load_golden
from tests.layer_test_harness import run_layer_test

GOLDEN_TAGS = [("gru_plain", "gru", "w/gru_plain/gru_cell/"),
               ("gru_agru", "agru", "w/gru_agru/"),
               ("gru_augru", "augru", "w/gru_augru/")]

RNG = np.random.default_rng(4)
B, T, D, H = 4, 6, 5, 3
X = RNG.normal(size=(B, T, D)).astype("float32")
ATT = RNG.uniform(size=(B, T)).astype("float32")
LENGTHS = np.array([6, 3, 0, 1], "int32")
MASK = (np.arange(T)[None, :] < LENGTHS[:, None]).astype("float32")


def _load_cell(cell, z, prefix):
    cell.gates_kernel.assign(z[prefix + "gates/kernel"])
    cell.gates_bias.assign(z[prefix + "gates/bias"])
    cell.candidate_kernel.assign(z[prefix + "candidate/kernel"])
    cell.candidate_bias.assign(z[prefix + "candidate/bias"])


def _golden_units(z, prefix):
    return z[prefix + "candidate/bias"].shape[0]


def _golden_layer(z, gru_type, prefix, **kwargs):
    layer = InterestGRU(_golden_units(z, prefix), gru_type=gru_type, return_state=True,
                        **kwargs)
    att = None if gru_type == "gru" else z["in/att_scores"]
    layer(z["in/x"], attention=att, lengths=z["in/seq_len"])
    _load_cell(layer.cell, z, prefix)
    return layer, att


def _golden_mask(z):
    steps = z["in/x"].shape[1]
    return np.arange(steps)[None, :] < z["in/seq_len"][:, None]


def _tf1_dynamic_rnn(z, tag, prefix):
    """TF1 GRUCell / QAAttGRUCell / VecAttGRUCell (gate columns r | u) under
    dynamic_rnn in float64: zero outputs and a frozen state past each length."""
    gk, gb, ck, cb = (z[prefix + k].astype(np.float64) for k in
                      ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"))
    x, att, lengths = z["in/x"].astype(np.float64), z["in/att_scores"], z["in/seq_len"]
    units = cb.shape[0]
    h = np.zeros((x.shape[0], units))
    outputs = np.zeros(x.shape[:2] + (units,))
    for t in range(x.shape[1]):
        a = att[:, t]
        gates = 1 / (1 + np.exp(-(np.concatenate([x[:, t], h], -1) @ gk + gb)))
        r, u = gates[:, :units], gates[:, units:]
        c = np.tanh(np.concatenate([x[:, t], r * h], -1) @ ck + cb)
        if tag == "gru_agru":
            new = (1 - a) * h + a * c
        else:
            u = (1 - a) * u if tag == "gru_augru" else u
            new = u * h + (1 - u) * c
        real = (t < lengths)[:, None]
        outputs[:, t] = np.where(real, new, 0.0)
        h = np.where(real, new, h)
    return outputs, h


def _keras_gru_weights(z, prefix):
    """The SOURCE_README "GRU layout" conversion to Keras' GRU(reset_after=False)."""
    gk, gb, ck, cb = (z[prefix + k] for k in
                      ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"))
    units, inputs = cb.shape[0], gk.shape[0] - cb.shape[0]
    kernel = np.concatenate([gk[:inputs, units:], gk[:inputs, :units], ck[:inputs]], 1)
    recurrent = np.concatenate([gk[inputs:, units:], gk[inputs:, :units], ck[inputs:]], 1)
    return kernel, recurrent, np.concatenate([gb[units:], gb[:units], cb])


def _write_regenerated_gru_file(directory, lengths=(5, 2, 1, 3), inputs=4, units=3, seed=8):
    """A dien_gru_cells file laid out like the stored one with other shapes
    (batch, steps, input and state sizes), outputs from `_tf1_dynamic_rnn`."""
    rng = np.random.default_rng(seed)
    steps = max(lengths) + 1  # a padded step in every row
    z = {"in/x": rng.normal(size=(len(lengths), steps, inputs)).astype("float32"),
         "in/att_scores": rng.uniform(size=(len(lengths), steps, 1)).astype("float32"),
         "in/seq_len": np.array(lengths, "int32")}
    for tag, _, prefix in GOLDEN_TAGS:
        for name, shape in (("gates/kernel", (inputs + units, 2 * units)),
                            ("gates/bias", (2 * units,)),
                            ("candidate/kernel", (inputs + units, units)),
                            ("candidate/bias", (units,))):
            z[prefix + name] = (0.5 * rng.normal(size=shape)).astype("float32")
        for name, value in zip(("kernel", "recurrent_kernel", "bias"),
                               _keras_gru_weights(z, prefix)):
            z[f"keras/{tag}/{name}"] = value
        outputs, state = _tf1_dynamic_rnn(z, tag, prefix)
        z[f"out/{tag}/outputs"] = outputs.astype("float32")
        z[f"out/{tag}/final_state"] = state.astype("float32")
    np.savez(os.path.join(directory, "dien_gru_cells.npz"), **z)


@pytest.fixture(params=GOLDEN_VARIANTS)
def gru_golden(request, tmp_path):
    return golden_variant(request.param, "dien_gru_cells", _write_regenerated_gru_file, tmp_path)


@pytest.mark.parametrize("tag,gru_type,prefix", GOLDEN_TAGS)
def test_golden_cells_through_dynamic_rnn(tag, gru_type, prefix, gru_golden):
    """docs/original_code.md#the-tf1-gru-cell and
    docs/original_code.md#running-a-cell-over-a-padded-sequence: outputs (0 at
    padding) and final states of all cells."""
    z = gru_golden
    layer, att = _golden_layer(z, gru_type, prefix)
    outputs, state = layer(z["in/x"], attention=att, lengths=z["in/seq_len"])
    np.testing.assert_allclose(outputs, z[f"out/{tag}/outputs"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state, z[f"out/{tag}/final_state"], rtol=1e-5, atol=1e-5)
    mask = _golden_mask(z).astype("float32")
    np.testing.assert_allclose(layer(z["in/x"], attention=att, mask=mask)[1],
                               z[f"out/{tag}/final_state"], rtol=1e-5, atol=1e-5)


def test_plain_gru_equals_keras_reset_before_gru_on_real_steps(gru_golden):
    """docs/original_code.md#the-tf1-gru-cell, Keras mapping: the golden file's
    converted weights in Keras' GRU."""
    z = gru_golden
    prefix = "w/gru_plain/gru_cell/"
    ours, _ = _golden_layer(z, "gru", prefix)
    outputs, state = ours(z["in/x"], lengths=z["in/seq_len"])
    reference = keras.layers.GRU(_golden_units(z, prefix), reset_after=False,
                                 return_sequences=True, return_state=True)
    mask = _golden_mask(z)
    reference(z["in/x"], mask=mask)
    reference.set_weights([z["keras/gru_plain/kernel"], z["keras/gru_plain/recurrent_kernel"],
                           z["keras/gru_plain/bias"]])
    ref_out, ref_state = reference(z["in/x"], mask=mask)
    np.testing.assert_allclose(np.asarray(outputs)[mask], np.asarray(ref_out)[mask], atol=1e-6)
    np.testing.assert_allclose(state, ref_state, atol=1e-6)


def test_regenerated_gru_file_has_other_shapes_and_faithful_references(tmp_path):
    _write_regenerated_gru_file(str(tmp_path))
    regenerated = load_golden("dien_gru_cells", directory=str(tmp_path))
    stored = load_golden("dien_gru_cells")
    for key in ("in/x", "in/seq_len", "out/gru_plain/final_state"):
        assert regenerated[key].shape != stored[key].shape, key
    # The references that fill the regenerated file give the stored arrays too.
    for tag, _, prefix in GOLDEN_TAGS:
        outputs, state = _tf1_dynamic_rnn(stored, tag, prefix)
        np.testing.assert_allclose(outputs, stored[f"out/{tag}/outputs"], atol=1e-5)
        np.testing.assert_allclose(state, stored[f"out/{tag}/final_state"], atol=1e-5)
        for name, value in zip(("kernel", "recurrent_kernel", "bias"),
                               _keras_gru_weights(stored, prefix)):
            np.testing.assert_array_equal(value, stored[f"keras/{tag}/{name}"])


def _numpy_step(cell, x, h, a, gate="as_coded", reset_after=False, kind="gru"):
    gk, gb, ck, cb = (np.asarray(w, np.float64) for w in cell.get_weights())
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    if kind == "aigru":
        x = a * x
    g = sig(np.concatenate([x, h], -1) @ gk + gb)
    r, u = g[:, :H], g[:, H:]
    if reset_after:
        c = np.tanh(x @ ck[:D] + r * (h @ ck[D:]) + cb)
    else:
        c = np.tanh(np.concatenate([x, r * h], -1) @ ck + cb)
    if kind == "agru":
        return (1 - a) * h + a * c
    if kind == "augru":
        keep = (1 - a) * u if gate == "as_coded" else 1 - a * (1 - u)
        return keep * h + (1 - keep) * c
    return u * h + (1 - u) * c


@pytest.mark.parametrize(
    "cls,kwargs,kind",
    [(GRUCell, {}, "gru"), (GRUCell, dict(reset_after=True), "gru"),
     (AGRUCell, {}, "agru"), (AIGRUCell, {}, "aigru"),
     (AUGRUCell, dict(gate="as_coded"), "augru"), (AUGRUCell, dict(gate="paper"), "augru")],
)
def test_single_step_matches_hand_computation(cls, kwargs, kind):
    cell = cls(H, **kwargs)
    x, h = X[:, 0], RNG.normal(size=(B, H)).astype("float32")
    a = ATT[:, :1]
    new, states = cell(x, [h], attention=a if cell.uses_attention else None)
    np.testing.assert_allclose(states[0], new)
    expected = _numpy_step(cell, x, h, a, gate=kwargs.get("gate", "as_coded"),
                           reset_after=kwargs.get("reset_after", False), kind=kind)
    np.testing.assert_allclose(new, expected, rtol=1e-5, atol=1e-6)


def test_augru_extremes_code_vs_paper():
    """docs/original_code.md#augru-as-coded-and-as-in-the-paper: coded a=0 is a
    plain GRU, a=1 takes the candidate; the paper's
    a=0 freezes the state, a=1 is a plain GRU."""
    gru = GRUCell(H)
    x, h = X[:, 0], RNG.normal(size=(B, H)).astype("float32")
    plain, _ = gru(x, [h])
    zeros, ones = np.zeros((B, 1), "float32"), np.ones((B, 1), "float32")
    coded, paper = AUGRUCell(H), AUGRUCell(H, gate="paper")
    for cell in (coded, paper):
        cell(x, [h], attention=zeros)
        cell.set_weights(gru.get_weights())
    np.testing.assert_allclose(coded(x, [h], attention=zeros)[0], plain, rtol=1e-6)
    np.testing.assert_allclose(paper(x, [h], attention=zeros)[0], h, rtol=1e-6)
    np.testing.assert_allclose(paper(x, [h], attention=ones)[0], plain, rtol=1e-6)
    candidate = _numpy_step(gru, x, h, ones, kind="agru")  # a=1: pure candidate
    np.testing.assert_allclose(coded(x, [h], attention=ones)[0], candidate, rtol=1e-5, atol=1e-6)


def test_aigru_is_a_gru_on_attention_scaled_inputs():
    aigru = InterestGRU(H, gru_type="aigru")
    out = aigru(X, attention=ATT, lengths=LENGTHS)
    gru = InterestGRU(H, gru_type="gru")
    gru(X, lengths=LENGTHS)
    gru.set_weights(aigru.get_weights())
    np.testing.assert_allclose(out, gru(X * ATT[..., None], lengths=LENGTHS), rtol=1e-6)


@pytest.mark.parametrize("gru_type", ["gru", "aigru", "agru", "augru"])
def test_padding_never_changes_outputs_or_state(gru_type):
    layer = InterestGRU(H, gru_type=gru_type, return_state=True)
    att = None if gru_type == "gru" else ATT
    outputs, state = (np.asarray(t) for t in layer(X, attention=att, lengths=LENGTHS))
    pad = MASK == 0
    noisy_x, noisy_att = X.copy(), ATT.copy()
    noisy_x[pad] = 50.0
    noisy_att[pad] = 0.99
    outputs2, state2 = layer(noisy_x, attention=None if att is None else noisy_att,
                             lengths=LENGTHS)
    np.testing.assert_allclose(outputs2, outputs, rtol=1e-6)
    np.testing.assert_allclose(state2, state, rtol=1e-6)
    np.testing.assert_array_equal(outputs[pad], 0.0)
    np.testing.assert_array_equal(state[2], 0.0)  # no real step
    for b, n in enumerate(LENGTHS):
        if n:
            np.testing.assert_array_equal(state[b], outputs[b, n - 1])


def _reference_sequence(cell, x, att, lengths):
    """dynamic_rnn semantics with one `cell.step` per time step, differentiated
    by TF's own autodiff: the check on the hand-written backward pass."""
    if cell.scales_input:
        x = x * att[..., None]
    projected = cell.project_inputs(x)
    kernels = cell.recurrent_kernels(x.dtype)
    state, outputs = tf.zeros((x.shape[0], cell.units)), []
    for t in range(x.shape[1]):
        a = None if att is None or cell.scales_input else att[:, t:t + 1]
        new = cell.step(projected[:, t], state, a, kernels)
        real = (t < lengths)[:, None]
        outputs.append(tf.where(real, new, tf.zeros_like(new)))
        state = tf.where(real, new, state)
    return tf.stack(outputs, axis=1), state


@pytest.mark.parametrize("gru_type,kwargs", [
    ("gru", {}), ("gru", dict(reset_after=True)), ("aigru", {}), ("agru", {}),
    ("augru", {}), ("augru", dict(augru_gate="paper")),
    ("augru", dict(augru_gate="paper", reset_after=True))])
def test_hand_written_backward_equals_autodiff_of_the_steps(gru_type, kwargs):
    layer = InterestGRU(H, gru_type=gru_type, return_state=True, **kwargs)
    x, lengths = tf.constant(X), tf.constant(LENGTHS)
    att = None if gru_type == "gru" else tf.constant(ATT)
    layer(x, attention=att, lengths=lengths)
    w_out = tf.constant(RNG.normal(size=(B, T, H)).astype("float32"))
    w_state = tf.constant(RNG.normal(size=(B, H)).astype("float32"))

    def grads(run):
        with tf.GradientTape() as tape:
            tape.watch([x] + ([att] if att is not None else []))
            outputs, state = run()
            loss = tf.reduce_sum(outputs * w_out) + tf.reduce_sum(state * w_state)
        sources = [x] + ([att] if att is not None else []) + layer.trainable_weights
        return [outputs, state] + tape.gradient(loss, sources)

    ours = grads(lambda: layer(x, attention=att, lengths=lengths))
    reference = grads(lambda: _reference_sequence(layer.cell, x, att, lengths))
    for a, b in zip(ours, reference):
        assert float(tf.reduce_max(tf.abs(b))) > 0  # every gradient is exercised
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gru_type", ["gru", "augru"])
def test_xla_forward_and_gradients_match_eager(gru_type):
    layer = InterestGRU(H, gru_type=gru_type, return_state=True)
    att = None if gru_type == "gru" else tf.constant(ATT)
    layer(X, attention=att, lengths=LENGTHS)

    def loss_and_grads(x, lengths):
        with tf.GradientTape() as tape:
            outputs, state = layer(x, attention=att, lengths=lengths)
            loss = tf.reduce_sum(outputs ** 2) + tf.reduce_sum(state)
        return loss, tape.gradient(loss, layer.trainable_weights)

    eager = loss_and_grads(tf.constant(X), tf.constant(LENGTHS))
    xla = tf.function(loss_and_grads, jit_compile=True)(tf.constant(X), tf.constant(LENGTHS))
    np.testing.assert_allclose(xla[0], eager[0], rtol=1e-5)
    for g_xla, g_eager in zip(xla[1], eager[1]):
        np.testing.assert_allclose(g_xla, g_eager, rtol=1e-4, atol=1e-6)


def test_dynamic_time_axis_in_a_traced_function():
    layer = InterestGRU(H)
    fn = tf.function(lambda x, n: layer(x, lengths=n),
                     input_signature=[tf.TensorSpec([None, None, D]), tf.TensorSpec([None], tf.int32)])
    for steps in (2, 6):
        np.testing.assert_allclose(fn(X[:, :steps], np.minimum(LENGTHS, steps)),
                                   layer(X[:, :steps], lengths=np.minimum(LENGTHS, steps)),
                                   rtol=1e-6)


def test_keras_mask_from_embedding_is_used():
    ids = np.array([[3, 1, 2, 0, 0], [4, 0, 0, 0, 0]], "int32")
    inputs = keras.Input((None,), dtype="int32")
    emb = keras.layers.Embedding(6, D, mask_zero=True)
    layer = InterestGRU(H)
    model = keras.Model(inputs, layer(emb(inputs)))
    explicit = layer(emb(ids), lengths=np.array([3, 1], "int32"))
    np.testing.assert_allclose(model(ids), explicit, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs,with_att,shapes",
    [(dict(gru_type="gru"), False, [(B, T, H)]),
     (dict(gru_type="gru", return_sequences=False, return_state=True), False, [(B, H)]),
     (dict(gru_type="aigru", return_state=True), True, [(B, T, H), (B, H)]),
     (dict(gru_type="agru"), True, [(B, T, H)]),
     (dict(gru_type="augru", return_state=True), True, [(B, T, H), (B, H)]),
     (dict(gru_type="augru", augru_gate="paper", reset_after=True), True, [(B, T, H)])],
)
def test_layer_harness(kwargs, with_att, shapes, tmp_path):
    call_kwargs = dict(lengths=LENGTHS)
    if with_att:
        call_kwargs["attention"] = ATT
    run_layer_test(InterestGRU, dict(units=H, **kwargs), [X], call_kwargs, shapes, tmp_path)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"gru_type='lstm'.*\['agru', 'aigru', 'augru', 'gru'\]"):
        InterestGRU(H, gru_type="lstm")
    with pytest.raises(ValueError, match=r"augru_gate='both'.*\['as_coded', 'paper'\]"):
        InterestGRU(H, augru_gate="both")
    with pytest.raises(ValueError, match=r"units=0; expected a positive integer"):
        InterestGRU(0)
    with pytest.raises(ValueError, match="would return nothing"):
        InterestGRU(H, return_sequences=False)
    with pytest.raises(ValueError, match=r"inputs of .*rank-3.*\(4, 5\)"):
        InterestGRU(H)(X[:, 0])
    with pytest.raises(ValueError, match=r"gru_type='augru' needs attention .*received None"):
        InterestGRU(H, gru_type="augru")(X, lengths=LENGTHS)
    with pytest.raises(ValueError, match=r"gru_type='gru' takes no attention.*\(4, 6\)"):
        InterestGRU(H)(X, attention=ATT)
    with pytest.raises(ValueError, match=r"attention of .*batch/time size = 6 at axis 1.*\(4, 5, 1\)"):
        InterestGRU(H, gru_type="agru")(X, attention=ATT[:, :5])
    with pytest.raises(ValueError, match=r"mask has shape \(4, 5\), expected \(4, 6\)"):
        InterestGRU(H)(X, mask=MASK[:, :5])
    with pytest.raises(ValueError, match=r"this cell needs an attention weight"):
        AUGRUCell(H)(X[:, 0], [np.zeros((B, H), "float32")])
