"""A shared layer check in the spirit of keras-hub's `run_layer_test`.

For one layer configuration it checks: eager call (and output shapes),
get_config/from_config round trip, registration under `din_tf>`, a call inside
`tf.function`, a symbolic call in a functional model that reproduces the eager
output, a `.keras` save/load with equal outputs, one `fit` step that changes the
trainable weights, and a run under the `mixed_float16` policy that stays finite
and close to float32.
"""

import keras
import numpy as np
import tensorflow as tf


def _first(x):
    return x[0] if isinstance(x, (list, tuple)) else x


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _inputs_for(arrays):
    return [keras.Input(shape=a.shape[1:], dtype=str(a.dtype), batch_size=None) for a in arrays]


def run_layer_test(
    layer_cls,
    init_kwargs,
    inputs,
    call_kwargs=None,
    expected_output_shapes=None,
    tmp_path=None,
    run_fit=True,
    run_mixed_precision=True,
    mixed_precision_atol=5e-2,
    prepare_layer=None,
):
    """Runs the checks; `inputs` are positional arrays, `call_kwargs` named ones.

    `prepare_layer(layer)` may set weights after the first (building) call.
    Returns the eager outputs of the float32 layer.
    """
    call_kwargs = dict(call_kwargs or {})
    tensor_kwargs = {k: v for k, v in call_kwargs.items() if isinstance(v, np.ndarray)}
    static_kwargs = {k: v for k, v in call_kwargs.items() if k not in tensor_kwargs}

    # Eager call and shapes.
    layer = layer_cls(**init_kwargs)
    outputs = layer(*inputs, **call_kwargs)
    if prepare_layer is not None:
        prepare_layer(layer)
        outputs = layer(*inputs, **call_kwargs)
    outputs_np = [np.asarray(o) for o in _as_list(outputs)]
    if expected_output_shapes is not None:
        got = [o.shape for o in outputs_np]
        assert got == [tuple(s) for s in expected_output_shapes], got
    for o in outputs_np:
        assert np.all(np.isfinite(o)), "non-finite eager output"

    # Config round trip and registration.
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == f"din_tf>{layer_cls.__name__}"
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is layer_cls and revived.get_config() == config

    # Graph call matches eager.
    graph_out = tf.function(lambda *a: layer(*a, **call_kwargs))(*inputs)
    for g, e in zip(_as_list(graph_out), outputs_np):
        np.testing.assert_allclose(np.asarray(g), e, rtol=1e-5, atol=1e-6)

    # Symbolic call in a functional model, with this (built) layer.
    pos = _inputs_for(inputs)
    kw = dict(zip(tensor_kwargs, _inputs_for(list(tensor_kwargs.values()))))
    sym_out = layer(*pos, **kw, **static_kwargs)
    model = keras.Model(pos + list(kw.values()), sym_out)
    feed = list(inputs) + list(tensor_kwargs.values())
    model_out = model(feed)
    for m, e in zip(_as_list(model_out), outputs_np):
        np.testing.assert_allclose(np.asarray(m), e, rtol=1e-5, atol=1e-6)

    # .keras round trip.
    if tmp_path is not None:
        path = str(tmp_path / f"{layer_cls.__name__}.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        for m, e in zip(_as_list(loaded(feed)), outputs_np):
            np.testing.assert_allclose(np.asarray(m), e, rtol=1e-6, atol=1e-6)

    # One fit step on the first output.
    if run_fit and model.trainable_weights:
        fit_model = keras.Model(model.inputs, _first(model.outputs))
        fit_model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        before = [np.array(w) for w in fit_model.trainable_weights]
        target = np.ones_like(outputs_np[0])
        history = fit_model.fit(feed, target, epochs=1, batch_size=len(inputs[0]), verbose=0)
        assert np.isfinite(history.history["loss"][0])
        after = [np.array(w) for w in fit_model.trainable_weights]
        assert any(not np.array_equal(b, a) for b, a in zip(before, after)), (
            "one fit step changed no trainable weight")

    # mixed_float16: finite and close to float32 with the same weights.
    if run_mixed_precision:
        half = layer_cls(**{**init_kwargs, "dtype": "mixed_float16"})
        half(*inputs, **call_kwargs)
        half.set_weights(layer.get_weights())
        half_out = half(*inputs, **call_kwargs)
        reference = [np.asarray(o) for o in _as_list(layer(*inputs, **call_kwargs))]
        for h, e in zip(_as_list(half_out), reference):
            h = np.asarray(h, dtype=np.float32)
            assert np.all(np.isfinite(h)), "non-finite mixed_float16 output"
            np.testing.assert_allclose(h, e, rtol=mixed_precision_atol, atol=mixed_precision_atol)
    return outputs_np
