"""DIEN's auxiliary classifier: does hidden state h_t predict behaviour t+1?"""

import keras
from keras import ops

from din_tf.api_export import din_tf_export
from din_tf.layers.frozen_batch_norm import FrozenBatchNorm


@din_tf_export("din_tf.layers.AuxiliaryNetwork")
class AuxiliaryNetwork(keras.layers.Layer):
    """`[h_t, e] -> [p_click, 1 - p_click]` as the DIEN repo's `auxiliary_net`.

    BatchNorm (frozen: docs/original_code.md#batch-normalisation-never-trains)
    → Dense(100) → sigmoid → Dense(50) → sigmoid → Dense(2) → softmax →
    **+ 1e-8** (docs/original_code.md#the-auxiliary-classifier). The softmax
    and the 1e-8 are computed in float32 whatever the compute dtype.

    Call arguments:
        hidden_states: [..., H] interest-extractor states.
        behaviours: [..., E] item embeddings, same leading shape.

    Returns [..., 2] float32; column 0 is the click probability.

    Masking: position-wise; no Keras mask is used or produced (the loss takes
    an explicit mask).

    Args:
        hidden_units: widths of the hidden layers.
        activation: hidden activation (sigmoid as coded).
        use_batch_norm: True as in the DIEN repo; False as in the XDL port.
        frozen_batch_norm: True as coded; False for ordinary BatchNorm.
        probability_offset: added after the softmax (1e-8 as coded).
    """

    def __init__(
        self,
        hidden_units=(100, 50),
        activation="sigmoid",
        use_batch_norm=True,
        frozen_batch_norm=True,
        probability_offset=1e-8,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.use_batch_norm = bool(use_batch_norm)
        self.frozen_batch_norm = bool(frozen_batch_norm)
        self.probability_offset = float(probability_offset)
        self.batch_norm = (
            FrozenBatchNorm(frozen=self.frozen_batch_norm, name="batch_norm")
            if self.use_batch_norm else None
        )
        self.dense_layers = [
            keras.layers.Dense(u, activation=activation, name=f"hidden_{i}")
            for i, u in enumerate(self.hidden_units)
        ] + [keras.layers.Dense(2, name="logits")]

    def build(self, hidden_states_shape, behaviours_shape):
        width = hidden_states_shape[-1] + behaviours_shape[-1]
        shape = tuple(hidden_states_shape[:-1]) + (width,)
        if self.batch_norm is not None:
            self.batch_norm.build(shape)
        for layer in self.dense_layers:
            layer.build(shape)
            shape = shape[:-1] + (layer.units,)

    def call(self, hidden_states, behaviours, training=None):
        behaviours = ops.cast(behaviours, hidden_states.dtype)
        x = ops.concatenate([hidden_states, behaviours], axis=-1)
        if self.batch_norm is not None:
            x = self.batch_norm(x, training=training)
        for layer in self.dense_layers:
            x = layer(x)
        return ops.softmax(ops.cast(x, "float32"), axis=-1) + self.probability_offset

    def click_probabilities(self, hidden_states, clicked, unclicked, training=None):
        """Column 0 of `call` for the clicked and the unclicked behaviours.

        When the batch norm is a fixed per-feature affine map (frozen, absent
        or not training) it is folded into the first Dense's kernel and bias,
        and the hidden-state half of that Dense, the same for both behaviour
        sets, is computed once: no [.., H + E] concatenations, one matmul per
        half; equal to two `call`s up to float rounding. Otherwise (batch
        statistics) the network runs twice, as coded.
        """
        affine = None
        if self.batch_norm is not None and (self.frozen_batch_norm or not training):
            affine = self.batch_norm.inference_affine()
        if self.batch_norm is not None and affine is None:
            return (self(hidden_states, clicked, training=training)[..., 0],
                    self(hidden_states, unclicked, training=training)[..., 0])
        dtype = self.compute_dtype
        first = self.dense_layers[0]
        kernel, bias = first.kernel, first.bias
        if affine is not None:
            scale, shift = affine
            bias = bias + ops.matmul(shift[None, :], kernel)[0]
            kernel = kernel * scale[:, None]
        kernel, bias = ops.cast(kernel, dtype), ops.cast(bias, dtype)
        width = hidden_states.shape[-1]
        shared = ops.matmul(ops.cast(hidden_states, dtype), kernel[:width]) + bias
        behaviours = ops.cast(ops.stack([clicked, unclicked]), dtype)
        x = first.activation(ops.matmul(behaviours, kernel[width:]) + shared)
        for layer in self.dense_layers[1:]:
            x = layer(x)
        p = ops.softmax(ops.cast(x, "float32"), axis=-1) + self.probability_offset
        return p[0, ..., 0], p[1, ..., 0]

    def compute_output_spec(self, hidden_states, behaviours, training=None):
        return keras.KerasTensor(tuple(hidden_states.shape[:-1]) + (2,), dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_units=list(self.hidden_units),
            activation=self.activation,
            use_batch_norm=self.use_batch_norm,
            frozen_batch_norm=self.frozen_batch_norm,
            probability_offset=self.probability_offset,
        )
        return config
