"""DIN's local activation unit: target-aware weights over a behaviour sequence."""

import math

import keras
from keras import ops

from din_tf._argument_checks import check_choice, check_dim, check_positive_int, check_rank
from din_tf.api_export import din_tf_export
from din_tf.layers._sequence_mask import step_mask
from din_tf.layers.prelu import PReLU

ATTENTION_VARIANTS = ("dien", "dien_fcn", "din_repo")
OUTPUT_MODES = ("sum", "list")
# -2**32 + 1 as the originals write it; in float32 this is -4294967296.
MASKED_SCORE = -4294967296.0
# Default `fold_min_steps`: the static history length from which the query is
# folded into a per-row kernel (see `_first_score_layer`; unknown lengths fold
# too). Below it, building that kernel costs more than it saves (2 CPU cores,
# B=128, XLA training steps: up to 24 % slower at T=10, equal at T=30, 2-27 %
# faster at T=100; benchmarks/attention_fold_ab.py).
FOLD_MIN_STEPS = 32


@din_tf_export("din_tf.layers.DINAttention")
class DINAttention(keras.layers.Layer):
    """Scores every key against a query with a small MLP and pools the keys.

    For each step t the MLP sees `[q, k_t, q - k_t, q * k_t]` (in that order)
    and applies Dense(80, sigmoid) → Dense(40, sigmoid) → Dense(1). Scores of
    padded steps are *replaced* by -2**32+1, then (optionally) softmax over T.
    `variant` selects one of the three original functions
    (docs/original_code.md#attention):

    * `"dien"` — DIEN repo `utils.din_attention`: no scaling. The query width
      must equal the key width.
    * `"dien_fcn"` — DIEN repo `utils.din_fcn_attention`: the query is first
      mapped to the key width by Dense(D) + PReLU (slope 0.1), so any query
      width works. DIEN uses it in "list" mode with `return_scores=True`.
    * `"din_repo"` — DIN repo `din/model.py attention`: masked scores are
      divided by sqrt(D) (D = key width) *after* masking, then softmax.

    Call arguments:
        query: [B, Dq].
        keys: [B, T, D] (a [B, D] key is treated as T = 1, as coded).
        mask: optional [B, T], bool or float (a step is real iff it equals 1).
        lengths: optional [B] int; the first `lengths[b]` steps are real.
            Give at most one of mask/lengths; with neither, all steps count.

    Returns `"sum"` mode: [B, D], the weighted sum of keys; `"list"` mode:
    [B, T, D], each key times its weight. With `return_scores=True` a tuple
    `(output, weights)` with weights [B, T] (softmax weights, or the raw
    masked scores when `use_softmax=False`).

    Masking: padded steps are excluded through `mask`/`lengths`, not through
    Keras' implicit mask; the output carries no Keras mask. As coded, padded
    steps are not fully inert in two cases: with `use_softmax=False` they carry
    the weight -4294967296 (so non-zero padded keys leak into "sum"), and a
    row with no real step gets uniform softmax weights. `zero_masked_weights`
    (default False, as coded) sets the weight of every padded step to 0.

    Args:
        variant: "dien", "dien_fcn" or "din_repo" (see above).
        use_softmax: softmax-normalise the scores (the originals' default,
            `softmax_stag=1`); False uses the masked raw scores as weights.
        output_mode: "sum" or "list".
        return_scores: also return the weights.
        zero_masked_weights: force the weight of padded steps to exactly 0.
        hidden_units: widths of the scoring MLP's hidden layers.
        hidden_activation: their activation (sigmoid in every original).
        query_prelu_initializer: initial PReLU slope of the "dien_fcn" query
            projection.
        fold_min_steps: static history length from which the first scoring
            layer folds the query into a per-row kernel (`FOLD_MIN_STEPS`);
            1 always folds, a larger value than any history never does
            (lengths unknown when tracing always fold). Speed only: same
            weights, same results up to float rounding. Read when the call
            is traced.
    """

    def __init__(
        self,
        variant="dien",
        use_softmax=True,
        output_mode="sum",
        return_scores=False,
        zero_masked_weights=False,
        hidden_units=(80, 40),
        hidden_activation="sigmoid",
        query_prelu_initializer=0.1,
        fold_min_steps=FOLD_MIN_STEPS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.variant = check_choice("variant", variant, ATTENTION_VARIANTS)
        self.output_mode = check_choice("output_mode", output_mode, OUTPUT_MODES)
        self.use_softmax = bool(use_softmax)
        self.return_scores = bool(return_scores)
        self.zero_masked_weights = bool(zero_masked_weights)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.hidden_activation = hidden_activation
        self.query_prelu_initializer = query_prelu_initializer
        self.fold_min_steps = check_positive_int("fold_min_steps", fold_min_steps)
        # Accept an explicit `mask` without Keras warning that it is dropped.
        self.supports_masking = True
        self.score_layers = [
            keras.layers.Dense(u, activation=hidden_activation, name=f"score_hidden_{i}")
            for i, u in enumerate(self.hidden_units)
        ] + [keras.layers.Dense(1, name="score_output")]
        if self.variant == "dien_fcn":
            self.query_dense = None  # width known at build time
            self.query_prelu = PReLU(query_prelu_initializer, name="query_prelu")

    def build(self, query_shape, keys_shape, lengths_shape=None):
        check_rank(f"query of {self.name}", query_shape, 2)
        check_rank(f"keys of {self.name}", keys_shape, (2, 3))
        width = keys_shape[-1]
        if width is None:
            raise ValueError(
                f"Invalid keys of {self.name}: the last axis must be statically "
                f"known, received shape {tuple(keys_shape)}."
            )
        if self.variant == "dien_fcn":
            self.query_dense = keras.layers.Dense(width, name="query_dense")
            self.query_dense.build(query_shape)
            self.query_prelu.build(tuple(query_shape[:-1]) + (width,))
        else:
            check_dim(f"query of {self.name} (variant {self.variant!r})",
                      query_shape, -1, width, "the key width")
        shape = (None, None, 4 * width)
        for layer in self.score_layers:
            layer.build(shape)
            shape = shape[:-1] + (layer.units,)

    def call(self, query, keys, mask=None, lengths=None):
        if len(keys.shape) == 2:
            keys = ops.expand_dims(keys, 1)
        width = keys.shape[-1]
        if self.variant == "dien_fcn":
            query = self.query_prelu(self.query_dense(query))
        query = ops.cast(query, keys.dtype)
        hidden = self._first_score_layer(query, keys, width)
        for layer in self.score_layers[1:]:
            hidden = layer(hidden)
        # Scores in float32: the mask constant overflows float16.
        scores = ops.cast(ops.squeeze(hidden, -1), "float32")  # [B, T]

        valid = step_mask(self.name, keys, ops.shape(keys)[1], mask, lengths)
        if valid is not None:
            scores = ops.where(valid, scores, MASKED_SCORE)
        if self.variant == "din_repo":
            scores = scores / math.sqrt(width)
        weights = ops.softmax(scores, axis=-1) if self.use_softmax else scores
        if self.zero_masked_weights and valid is not None:
            weights = ops.where(valid, weights, 0.0)

        cast_weights = ops.cast(weights, keys.dtype)
        if self.output_mode == "sum":
            output = ops.squeeze(ops.matmul(ops.expand_dims(cast_weights, 1), keys), 1)
        else:
            output = keys * ops.expand_dims(cast_weights, -1)
        if self.return_scores:
            return output, weights
        return output

    def _first_score_layer(self, query, keys, width):
        """The first Dense on `[q, k, q - k, q * k]`, without building that
        [B, T, 4D] tensor. With the kernel's row blocks Wq, Wk, Wd, Wp it
        equals `q @ (Wq + Wd) + [k, q * k] @ [Wk - Wd; Wp] + b`, the query term
        computed once per row. From `fold_min_steps` steps on (and when the
        length is not known when tracing), the query is also folded into a
        per-row kernel, `k @ (Wk - Wd + diag(q) Wp)`: D multiply-adds per
        step and unit instead of 2D, for the price of building a [B, D, U]
        kernel, which only pays off on longer histories. Same weights and
        checkpoints either way; equal up to float rounding."""
        layer = self.score_layers[0]
        kernel = ops.cast(layer.kernel, keys.dtype)
        w_q, w_k, w_d, w_p = (kernel[i * width:(i + 1) * width] for i in range(4))
        per_row = ops.matmul(query, w_q + w_d) + ops.cast(layer.bias, keys.dtype)  # [B, U]

        def folded():
            row_kernel = (ops.expand_dims(w_k - w_d, 0)
                          + ops.expand_dims(query, -1) * ops.expand_dims(w_p, 0))  # [B, D, U]
            return ops.matmul(keys, row_kernel)

        def concatenated():
            return ops.matmul(ops.concatenate([keys, ops.expand_dims(query, 1) * keys], -1),
                              ops.concatenate([w_k - w_d, w_p], 0))

        # Decided at trace time: a tf.cond here would not XLA-compile (its
        # gradient feeds zeros to the untaken branch's transposes). An unknown
        # length (Keras retraces with T=None) takes the fold.
        steps = keys.shape[1]
        per_step = (concatenated() if steps is not None and steps < self.fold_min_steps
                    else folded())
        return layer.activation(per_step + ops.expand_dims(per_row, 1))  # [B, T, U]

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_spec(self, query, keys, mask=None, lengths=None):
        batch, width = keys.shape[0], keys.shape[-1]
        steps = keys.shape[1] if len(keys.shape) == 3 else 1
        shape = (batch, width) if self.output_mode == "sum" else (batch, steps, width)
        output = keras.KerasTensor(shape, dtype=self.compute_dtype)
        if self.return_scores:
            return output, keras.KerasTensor((batch, steps), dtype="float32")
        return output

    def get_config(self):
        config = super().get_config()
        config.update(
            variant=self.variant,
            use_softmax=self.use_softmax,
            output_mode=self.output_mode,
            return_scores=self.return_scores,
            zero_masked_weights=self.zero_masked_weights,
            hidden_units=list(self.hidden_units),
            hidden_activation=self.hidden_activation,
            query_prelu_initializer=self.query_prelu_initializer,
            fold_min_steps=self.fold_min_steps,
        )
        return config
