"""PReLU as the originals define it."""

import keras
from keras import ops

from din_tf.api_export import din_tf_export


@din_tf_export("din_tf.layers.PReLU")
class PReLU(keras.layers.Layer):
    """Parametric ReLU with one learnable slope per channel (last axis).

    `f(x) = max(0, x) + a * min(0, x)`. This is the DIEN repo's
    `utils.prelu` (slope initialised to 0.1, the default here) and, with
    `alpha_initializer=0.0`, the DIN repo's `parametric_relu`
    (`relu(x) + a * (x - |x|) / 2`, the same function).

    Unlike `keras.layers.PReLU` (slope 0 by default, one slope per element
    of the input shape) the slope is per channel of the last axis.

    Masking: element-wise; a Keras mask on the input passes through unchanged.

    Args:
        alpha_initializer: initial slope (a float) or a Keras initializer.
    """

    def __init__(self, alpha_initializer=0.1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(alpha_initializer, (int, float)) and not isinstance(alpha_initializer, bool):
            alpha_initializer = keras.initializers.Constant(float(alpha_initializer))
        self.alpha_initializer = keras.initializers.get(alpha_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(
                f"Invalid input to {self.name}: the last axis (channels) must be "
                f"statically known, received shape {tuple(input_shape)}."
            )
        self.alpha = self.add_weight(
            shape=(input_shape[-1],), initializer=self.alpha_initializer, name="alpha"
        )

    def call(self, inputs):
        alpha = ops.cast(self.alpha, inputs.dtype)
        return ops.maximum(inputs, 0.0) + alpha * ops.minimum(inputs, 0.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["alpha_initializer"] = keras.initializers.serialize(self.alpha_initializer)
        return config
