"""Dice, the data-adaptive activation of the DIN paper, in its three forms."""

import keras
from keras import ops

from din_tf._argument_checks import check_choice, check_min_rank
from din_tf.api_export import din_tf_export

DICE_MODES = ("dien", "din_repo", "paper")


@din_tf_export("din_tf.layers.Dice")
class Dice(keras.layers.Layer):
    """Dice activation: `f(x) = p * x + (1 - p) * alpha * x`, `p = sigmoid(x_hat)`.

    `alpha` is one learnable value per channel (last axis), initialised to 0.
    How `x_hat` is computed depends on `mode` (docs/original_code.md#activations):

    * `"dien"` (default) — the DIEN repo's `Dice.dice`, used by every DIEN-repo
      model: statistics of the current batch over every axis but the last,
      `x_hat = (x - mean) / (sqrt(mean((x - mean)^2 + eps)) + eps)` with
      `eps = 1e-9`, **in training and at inference alike**. An output row
      therefore depends on the other rows of its batch (a one-row batch gives
      `x_hat = 0`, `p = 0.5`). No moving averages exist in this mode.
    * `"din_repo"` — the DIN repo's `Dice.dice` as coded: the batch statistics
      are dead code; `x_hat = beta * (x - moving_mean) / sqrt(moving_variance +
      1e-3)` with a learnable per-channel `beta` (init 0) and BatchNorm moving
      statistics that the original never updates (0 and 1), so `x_hat =
      beta * x / sqrt(1.001)`. Rows are independent.
    * `"paper"` — DIN paper eq. 9–10: `x_hat = (x - E[x]) / sqrt(Var[x] + eps)`
      with `eps = 1e-8`; batch statistics in training (updating moving
      averages with `momentum`), moving averages at inference, so a served row
      never depends on its batch.

    Every mode keeps moving averages of the batch mean and variance (updated
    with `momentum` whenever `training=True`). `inference_statistics` says what
    inference uses: `"batch"` (the default of mode "dien", as coded) or
    `"moving"` (the default of "paper"; in mode "din_repo" the frozen
    statistics are always used). SavedModel export switches every Dice to
    `"moving"` so a served row never depends on its request (issue: Dice
    batch statistics at inference, docs/original_code.md#dice-as-the-dien-repo-codes-it).

    Statistics are computed in float32 whatever the compute dtype, since the
    coded epsilons underflow in float16.

    Masking: statistics are taken over all positions (as coded); a Keras mask
    on the input is passed through unchanged and not used.

    Args:
        mode: one of "dien", "din_repo", "paper".
        epsilon: overrides the mode's epsilon (1e-9, 1e-3 and 1e-8).
        momentum: moving-average momentum.
        alpha_initializer: initial `alpha` (0 in every original).
        inference_statistics: "batch" or "moving" (default: by mode, above).
    """

    _DEFAULT_EPSILON = {"dien": 1e-9, "din_repo": 1e-3, "paper": 1e-8}

    def __init__(
        self,
        mode="dien",
        epsilon=None,
        momentum=0.99,
        alpha_initializer="zeros",
        inference_statistics=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.mode = check_choice("mode", mode, DICE_MODES)
        if inference_statistics is None:
            inference_statistics = "batch" if mode == "dien" else "moving"
        self.inference_statistics = check_choice(
            "inference_statistics", inference_statistics, ("batch", "moving"))
        self.epsilon = self._DEFAULT_EPSILON[mode] if epsilon is None else float(epsilon)
        self.momentum = float(momentum)
        self.alpha_initializer = keras.initializers.get(alpha_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        check_min_rank(f"input to {self.name}", input_shape, 2)
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                f"Invalid input to {self.name}: the last axis (channels) must be "
                f"statically known, received shape {tuple(input_shape)}."
            )
        self.alpha = self.add_weight(
            shape=(channels,), initializer=self.alpha_initializer, name="alpha"
        )
        if self.mode == "din_repo":
            self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")
        # Every mode keeps moving statistics (see the class docstring).
        self.moving_mean = self.add_weight(
            shape=(channels,), initializer="zeros", trainable=False,
            autocast=False, aggregation="mean", name="moving_mean",
        )
        self.moving_variance = self.add_weight(
            shape=(channels,), initializer="ones", trainable=False,
            autocast=False, aggregation="mean", name="moving_variance",
        )

    def _normalized(self, x, training):
        eps = self.epsilon
        if self.mode == "din_repo":
            x_bn = (x - self.moving_mean) / ops.sqrt(self.moving_variance + eps)
            return ops.cast(self.beta, "float32") * x_bn
        if training or self.inference_statistics == "batch":
            axes = tuple(range(len(x.shape) - 1))
            mean = ops.mean(x, axis=axes)
            centered = x - mean
            squares = ops.square(centered)
            variance = ops.mean(squares, axis=axes)
            if training:
                m = self.momentum
                self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
                self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
            if self.mode == "dien":
                # As coded: eps inside the root and again on the std.
                std = ops.sqrt(ops.mean(squares + eps, axis=axes))
                return centered / (std + eps)
            return centered / ops.sqrt(variance + eps)
        std = ops.sqrt(self.moving_variance + eps)
        if self.mode == "dien":
            std = std + eps
        return (x - self.moving_mean) / std

    def call(self, inputs, training=None):
        x = ops.cast(inputs, "float32")
        p = ops.sigmoid(self._normalized(x, training))
        alpha = ops.cast(self.alpha, "float32")
        # Same association as the originals: alpha*(1-p)*x + p*x.
        out = alpha * (1.0 - p) * x + p * x
        return ops.cast(out, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            mode=self.mode,
            epsilon=self.epsilon,
            momentum=self.momentum,
            alpha_initializer=keras.initializers.serialize(self.alpha_initializer),
            inference_statistics=self.inference_statistics,
        )
        return config
