"""Runs a GRU-family cell over a padded behaviour sequence, as DIEN's
modified `dynamic_rnn` does."""

import keras
import tensorflow as tf
from keras import ops

from din_tf._argument_checks import check_choice, check_dim, check_rank
from din_tf.api_export import din_tf_export
from din_tf.layers._recurrence import gru_states
from din_tf.layers._sequence_mask import step_mask
from din_tf.layers.agru_cell import AGRUCell
from din_tf.layers.aigru_cell import AIGRUCell
from din_tf.layers.augru_cell import AUGRU_GATES, AUGRUCell
from din_tf.layers.gru_cell import GRUCell

GRU_TYPES = {"gru": GRUCell, "aigru": AIGRUCell, "agru": AGRUCell, "augru": AUGRUCell}


@din_tf_export("din_tf.layers.InterestGRU")
class InterestGRU(keras.layers.Layer):
    """A GRU, AIGRU, AGRU or AUGRU over [B, T, D] with per-step attention.

    Reproduces the DIEN repo's `rnn.dynamic_rnn` with `sequence_length`
    (docs/original_code.md#running-a-cell-over-a-padded-sequence): zero initial
    state; at padded steps the output is **zero** and
    the state is **carried through unchanged**, whatever the attention says;
    the final state is the state after each row's last real step (zeros for a
    row with no real step). Keras' own RNN instead repeats the last output at
    padded steps.

    The cell (`self.cell`) is chosen by `gru_type`:
    "gru" (`GRUCell`, the interest extractor), "aigru" (`AIGRUCell`), "agru"
    (`AGRUCell`), "augru" (`AUGRUCell`, with `augru_gate` "as_coded" or
    "paper"). All inputs are projected in one matmul before the loop; the loop
    is a `tf.while_loop` over fixed-size TensorArrays with a hand-written
    backward pass (`_recurrence.gru_states`), so the layer runs eagerly,
    inside `tf.function` and under `jit_compile=True`.

    Call arguments:
        inputs: [B, T, D].
        attention: [B, T] or [B, T, 1]; required by "aigru", "agru", "augru",
            refused by "gru".
        mask: optional [B, T] bool or float (a step is real iff it equals 1).
            If not given, Keras fills it from the implicit mask of `inputs`
            (e.g. an `Embedding(mask_zero=True)`).
        lengths: optional [B] int, the number of real (leading) steps.

    Returns: outputs [B, T, H] if `return_sequences`, the final state [B, H]
    if `return_state` (a list `[outputs, state]` when both).

    Masking: supports Keras masks; the sequence output keeps the input's mask,
    the final state carries none.

    Args:
        units: H.
        gru_type: "gru", "aigru", "agru" or "augru".
        augru_gate: "as_coded" (default) or "paper"; used by "augru" only.
        reset_after: False as coded; True as in the DIEN paper.
        return_sequences, return_state: as in Keras RNN layers.
        kernel_initializer, gate_bias_initializer, candidate_bias_initializer:
            see `GRUCell`.
    """

    def __init__(
        self,
        units,
        gru_type="gru",
        augru_gate="as_coded",
        reset_after=False,
        return_sequences=True,
        return_state=False,
        kernel_initializer="glorot_uniform",
        gate_bias_initializer=1.0,
        candidate_bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.gru_type = check_choice("gru_type", gru_type, GRU_TYPES)
        self.augru_gate = check_choice("augru_gate", augru_gate, AUGRU_GATES)
        if not (return_sequences or return_state):
            raise ValueError(
                "InterestGRU: return_sequences=False and return_state=False would "
                "return nothing; set at least one to True."
            )
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        cell_kwargs = dict(
            reset_after=reset_after,
            kernel_initializer=kernel_initializer,
            gate_bias_initializer=gate_bias_initializer,
            candidate_bias_initializer=candidate_bias_initializer,
            dtype=self.dtype_policy,
            name="cell",
        )
        if gru_type == "augru":
            cell_kwargs["gate"] = augru_gate
        self.cell = GRU_TYPES[gru_type](units, **cell_kwargs)
        self.units = self.cell.units
        self.supports_masking = True

    def build(self, inputs_shape, attention_shape=None, lengths_shape=None):
        check_rank(f"inputs of {self.name}", inputs_shape, 3)
        self.cell.build(tuple(inputs_shape[:1]) + tuple(inputs_shape[2:]))

    def call(self, inputs, attention=None, mask=None, lengths=None):
        check_rank(f"inputs of {self.name}", inputs.shape, 3)
        cell = self.cell
        dtype = inputs.dtype
        steps = inputs.shape[1] if inputs.shape[1] is not None else ops.shape(inputs)[1]
        valid = step_mask(self.name, inputs, steps, mask, lengths)
        attention = self._attention(attention, inputs)

        x = inputs * attention if cell.scales_input else inputs
        # Time-major before projecting: transposing D columns, not 3H.
        projected = cell.project_inputs(ops.transpose(x, (1, 0, 2)))  # [T, B, 3H]
        step_attention = None
        if attention is not None and not cell.scales_input:
            step_attention = ops.transpose(attention, (1, 0, 2))  # [T, B, 1]
        real = None
        if valid is not None:
            real = ops.transpose(valid, (1, 0))[..., None]  # [T, B, 1]
        states = gru_states(cell, projected, step_attention, real,
                            cell.recurrent_kernels(dtype))  # [T, B, H]
        # States carry through padded steps; outputs are zero there.
        outputs = states if real is None else ops.where(real, states, ops.zeros_like(states))
        sequence = ops.transpose(outputs, (1, 0, 2))
        final_state = self._last(states, steps, ops.shape(inputs)[0])
        if self.return_sequences and self.return_state:
            return [sequence, final_state]
        return sequence if self.return_sequences else final_state

    def _last(self, states, steps, batch):
        if isinstance(steps, int):
            return states[-1] if steps else ops.zeros((batch, self.units), states.dtype)
        return tf.cond(steps > 0, lambda: states[-1],
                       lambda: tf.zeros((batch, self.units), states.dtype))

    def _attention(self, attention, inputs):
        if not self.cell.uses_attention:
            if attention is not None:
                raise ValueError(
                    f"{self.name}: gru_type='gru' takes no attention, received "
                    f"attention of shape {tuple(attention.shape)}."
                )
            return None
        if attention is None:
            raise ValueError(
                f"{self.name}: gru_type={self.gru_type!r} needs attention of shape "
                f"[B, T] or [B, T, 1]; received None."
            )
        check_rank(f"attention of {self.name}", attention.shape, (2, 3))
        if len(attention.shape) == 3:
            check_dim(f"attention of {self.name}", attention.shape, 2, 1, "width")
        else:
            attention = ops.expand_dims(attention, -1)
        for axis in (0, 1):
            check_dim(f"attention of {self.name}", attention.shape, axis,
                      inputs.shape[axis], "the inputs' batch/time size")
        return ops.cast(attention, inputs.dtype)

    def compute_mask(self, inputs, mask=None):
        if not self.return_sequences:
            return None
        return [mask, None] if self.return_state else mask

    def compute_output_spec(self, inputs, attention=None, mask=None, lengths=None):
        batch, steps = inputs.shape[0], inputs.shape[1]
        sequence = keras.KerasTensor((batch, steps, self.units), dtype=self.compute_dtype)
        state = keras.KerasTensor((batch, self.units), dtype=self.compute_dtype)
        if self.return_sequences and self.return_state:
            return [sequence, state]
        return sequence if self.return_sequences else state

    def get_config(self):
        config = super().get_config()
        cell_config = self.cell.get_config()
        config.update(
            units=self.units,
            gru_type=self.gru_type,
            augru_gate=self.augru_gate,
            reset_after=self.cell.reset_after,
            return_sequences=self.return_sequences,
            return_state=self.return_state,
            kernel_initializer=cell_config["kernel_initializer"],
            gate_bias_initializer=cell_config["gate_bias_initializer"],
            candidate_bias_initializer=cell_config["candidate_bias_initializer"],
        )
        return config
