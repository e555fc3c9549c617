"""The TF1 GRU cell exactly as the DIEN repo runs it, and the base of the
attention-gated variants."""

import keras
from keras import ops

from din_tf._argument_checks import check_positive_int
from din_tf.api_export import din_tf_export


@din_tf_export("din_tf.layers.GRUCell")
class GRUCell(keras.layers.Layer):
    """One step of TF1's `GRUCell`, with TF1's weight layout and initialisers.

    Weights (docs/original_code.md#the-tf1-gru-cell), stacked over `[x_t, h]` as in TF1:
    `gates_kernel [D+H, 2H]` (columns: reset r | update u), `gates_bias [2H]`
    (init 1.0), `candidate_kernel [D+H, H]`, `candidate_bias [H]` (init 0);
    kernels Glorot-uniform over the whole stacked matrix. An original
    checkpoint's `gates/kernel`, `gates/bias`, `candidate/kernel`,
    `candidate/bias` load as they are.

        [r | u] = sigmoid([x, h] @ Gk + Gb)
        c       = tanh([x, r * h] @ Ck + Cb)    # reset before the matmul
        h'      = u * h + (1 - u) * c           # u weighs the OLD state

    With `reset_after=True` the candidate is the DIEN paper's
    `tanh(x @ Ck_x + r * (h @ Ck_h) + Cb)` (docs/original_code.md#reset-gate-placement)
    instead.

    Every cell of the family mixes as `h' = k * h + (1 - k) * c`; subclasses
    change only the keep weight `k` (`keep`, possibly from a per-step
    attention weight `a` [B, 1]) and its derivative (`keep_gradients`), or
    scale the input (`scales_input`). The sequence runner is
    `din_tf.layers.InterestGRU`, which projects all inputs in one matmul
    (`project_inputs`) and runs the recurrence with a hand-written backward
    pass built on `keep` / `keep_gradients`.

    Masking: a single step has no time axis; masking is done by InterestGRU.

    Args:
        units: H, the state width.
        reset_after: False as coded (default); True as in the DIEN paper.
        kernel_initializer: for both stacked kernels.
        gate_bias_initializer: for `gates_bias` (1.0 in TF1).
        candidate_bias_initializer: for `candidate_bias` (0 in TF1).
    """

    uses_attention = False
    scales_input = False

    def __init__(
        self,
        units,
        reset_after=False,
        kernel_initializer="glorot_uniform",
        gate_bias_initializer=1.0,
        candidate_bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        if not isinstance(reset_after, bool):
            raise ValueError(f"Invalid reset_after={reset_after!r}; expected True or False.")
        self.reset_after = reset_after
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.gate_bias_initializer = _initializer(gate_bias_initializer)
        self.candidate_bias_initializer = _initializer(candidate_bias_initializer)

    @property
    def state_size(self):
        return self.units

    def build(self, input_shape):
        width = input_shape[-1]
        if width is None:
            raise ValueError(
                f"Invalid input to {self.name}: the feature axis must be statically "
                f"known, received shape {tuple(input_shape)}."
            )
        self.input_width = int(width)
        stacked, h = self.input_width + self.units, self.units
        self.gates_kernel = self.add_weight(
            shape=(stacked, 2 * h), initializer=self.kernel_initializer, name="gates_kernel")
        self.gates_bias = self.add_weight(
            shape=(2 * h,), initializer=self.gate_bias_initializer, name="gates_bias")
        self.candidate_kernel = self.add_weight(
            shape=(stacked, h), initializer=self.kernel_initializer, name="candidate_kernel")
        self.candidate_bias = self.add_weight(
            shape=(h,), initializer=self.candidate_bias_initializer, name="candidate_bias")

    def project_inputs(self, inputs):
        """`[..., D] -> [..., 3H]`: the input part of both matmuls, plus biases."""
        d = self.input_width
        kernel = ops.concatenate([self.gates_kernel[:d], self.candidate_kernel[:d]], axis=1)
        bias = ops.concatenate([self.gates_bias, self.candidate_bias], axis=0)
        return ops.matmul(inputs, ops.cast(kernel, inputs.dtype)) + ops.cast(bias, inputs.dtype)

    def recurrent_kernels(self, dtype):
        """The state rows of both kernels, sliced once per sequence."""
        d = self.input_width
        return (ops.cast(self.gates_kernel[d:], dtype), ops.cast(self.candidate_kernel[d:], dtype))

    def step(self, projected, state, attention, kernels):
        """One step from a projected input [B, 3H]; returns the new state [B, H]."""
        return self.step_with_cache(projected, state, attention, kernels)[0]

    def step_with_cache(self, projected, state, attention, kernels):
        """`step`, also returning what its backward pass needs: the gates
        [B, 2H] and the candidate [B, H] (followed by `state @ candidate_h`
        [B, H] when `reset_after`)."""
        h = self.units
        gates_h, candidate_h = kernels
        gates = ops.sigmoid(projected[:, : 2 * h] + ops.matmul(state, gates_h))
        reset, update = gates[:, :h], gates[:, h:]
        if self.reset_after:
            recurrent = ops.matmul(state, candidate_h)
            candidate = ops.tanh(projected[:, 2 * h:] + reset * recurrent)
            cache = ops.concatenate([candidate, recurrent], axis=1)
        else:
            candidate = ops.tanh(projected[:, 2 * h:] + ops.matmul(reset * state, candidate_h))
            cache = candidate
        return self.update(state, candidate, update, attention), gates, cache

    def update(self, state, candidate, update, attention):
        keep = self.keep(update, attention)
        return keep * state + (1.0 - keep) * candidate

    def keep(self, update, attention):
        """The weight of the old state in the new one ([B, H] or [B, 1])."""
        del attention
        return update

    def keep_gradients(self, d_keep, update, attention):
        """Backward of `keep`: `(d_update or None, d_attention [B, 1] or None)`."""
        del update, attention
        return d_keep, None

    def call(self, inputs, states, attention=None):
        """Keras-cell style single step: returns `(h', [h'])`."""
        state = states[0] if isinstance(states, (list, tuple)) else states
        if self.uses_attention and attention is None:
            raise ValueError(f"{self.name}: this cell needs an attention weight per step.")
        if attention is not None:
            attention = ops.reshape(ops.cast(attention, inputs.dtype), (-1, 1))
            if self.scales_input:
                inputs = inputs * attention
        new_state = self.step(
            self.project_inputs(inputs), state, attention, self.recurrent_kernels(inputs.dtype))
        return new_state, [new_state]

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            reset_after=self.reset_after,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            gate_bias_initializer=keras.initializers.serialize(self.gate_bias_initializer),
            candidate_bias_initializer=keras.initializers.serialize(
                self.candidate_bias_initializer),
        )
        return config


def _initializer(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return keras.initializers.Constant(float(value))
    return keras.initializers.get(value)
