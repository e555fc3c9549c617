"""Batch normalisation as both original code bases actually run it."""

import keras

from din_tf.api_export import din_tf_export


@din_tf_export("din_tf.layers.FrozenBatchNorm")
class FrozenBatchNorm(keras.layers.BatchNormalization):
    """BatchNorm that, by default, never leaves inference mode.

    Every `tf.layers.batch_normalization` call in the DIN and DIEN repos omits
    `training=`, so it always normalises with its moving statistics, which are
    never updated and stay at mean 0 / variance 1. With the TF1 epsilon 1e-3 the
    layer is exactly the affine map `gamma * x / sqrt(1.001) + beta` with
    trainable `gamma`, `beta` (docs/original_code.md#batch-normalisation-never-trains).
    `frozen=True` (the default)
    reproduces that whatever `training` says; `frozen=False` is an ordinary
    `keras.layers.BatchNormalization` (batch statistics in training, moving
    averages updated and used at inference).

    Weights keep Keras' names (`gamma`, `beta`, `moving_mean`,
    `moving_variance`), so an original checkpoint's four BN arrays load as
    they are.

    Masking: as `keras.layers.BatchNormalization` (a mask only matters when
    `frozen=False`, where masked steps are left out of the batch statistics).

    Args:
        frozen: True reproduces the originals; False is standard BatchNorm.
        axis, momentum, epsilon, center, scale, ...: as
            `keras.layers.BatchNormalization`; defaults are TF1's
            (epsilon 1e-3, momentum 0.99).
    """

    def __init__(self, frozen=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(frozen, bool):
            raise ValueError(f"Invalid frozen={frozen!r}; expected True or False.")
        self.frozen = frozen

    def call(self, inputs, training=None, mask=None):
        if self.frozen:
            training = False
        return super().call(inputs, training=training, mask=mask)

    def inference_affine(self):
        """`(scale, shift)` with `call(x) == x * scale + shift` whenever the
        layer normalises with its moving statistics (frozen, or not
        training), computed as Keras computes it; None unless the normalised
        axis is the last one (a per-feature map)."""
        if self.axis not in (-1, self._rank - 1):
            return None
        scale = keras.ops.rsqrt(self.moving_variance + self.epsilon)
        if self.scale:
            scale = scale * self.gamma
        shift = -self.moving_mean * scale
        if self.center:
            shift = shift + self.beta
        return scale, shift

    def build(self, input_shape):
        super().build(input_shape)
        self._rank = len(input_shape)

    def get_config(self):
        config = super().get_config()
        config["frozen"] = self.frozen
        return config
