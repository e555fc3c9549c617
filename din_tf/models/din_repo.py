"""The DIN repo's models (zhougr1993/DeepInterestNetwork;
docs/original_code.md#models-of-the-din-repo)."""

import keras
import tensorflow as tf
from keras import ops

from din_tf._argument_checks import check_choice, check_positive_int
from din_tf.api_export import din_tf_export
from din_tf.layers import Dice, DINAttention, FrozenBatchNorm, RowEmbedding
from din_tf.models import presets
from din_tf.models._inputs import read_inputs
from din_tf.models._original_variables import batch_norm_map, dense_map
from din_tf.models.ctr_model import CTRModel
from din_tf.schema.original import din_repo_schema
from din_tf.training.recipes import recipe_for

DIN_REPO_KINDS = ("base", "pnn", "deepfm", "wide_deep", "din", "din_dice")


@din_tf_export("din_tf.models.DINRepoModel")
class DINRepoModel(CTRModel):
    """One of the DIN repo's six models, selected by `kind`.

    Item vector `i = [item_emb(item) (64), cate_emb(category) (64)]` (128);
    the history is the same per step. The user vector `u`:

    * "base", "pnn", "deepfm", "wide_deep": masked **mean** of the history
      vectors → BatchNorm → Dense(128) (`base_model/model.py` etc.);
    * "din", "din_dice": `DINAttention("din_repo")` (÷√128 after masking,
      softmax) with `i` as query → BatchNorm → Dense(128) `hist_fcn`
      (`din/model.py`, `din/model_dice.py`; DIN paper eq. 3).

    MLP input: `[u, i]` (base, deepfm, wide_deep) or `[u, i, u * i]` (pnn,
    din, din_dice; the 2020 version of the code). Head: BatchNorm `b1` →
    Dense(80) → sigmoid (Dice for din_dice) → Dense(40) → sigmoid (Dice) →
    Dense(1), plus the per-item bias `item_b`; deepfm adds Dense(1) `f_fm` on
    `[sum(u * i), u_0 + i_0]`; wide_deep adds Dense(1) `f_wide` on
    `[u_0 i_0, u_127 i_127, u_64 i_64]`. Loss: mean sigmoid cross-entropy.

    Known differences from the code, by design:
    * wide_deep: the original gathers index `[-1]`, which TF rejects on CPU and
      reads as 0 on GPU, so its results cannot be reproduced; we implement the
      intended last element (127).
    * The user id embedding the original creates is never used there and is
      not created here (inputs need no `user_id`).
    * The `test()`/`logits_sub` path (an untrained separate BN) is not ported.

    Training as coded (`compile` defaults, the "din_repo" recipe of
    `din_tf.training.recipes`): SGD, lr 1.0 then 0.1 from step 336k, clipping
    by a global norm of 5 computed on un-merged embedding slices, row
    updates; deepfm: Adam(1e-3) (the "din_repo/deepfm" recipe). Batch 32;
    wide_deep trains 30 epochs, the others 50.

    Args:
        n_items, n_categories: vocabulary sizes.
        kind: one of "base", "pnn", "deepfm", "wide_deep", "din", "din_dice".
        item_dim, category_dim: 64 each.
        hidden_units: (80, 40).
        preset: "din_repo" (default) or "paper"; fills options left None.
        frozen_batch_norm: BN never trains (True as coded).
        dice_mode: "din_repo" as coded / "paper" (din_dice only).
        attention_softmax: softmax-normalised attention (True as coded; the
            paper drops it). din/din_dice only.
    """

    training_family = "din_repo"

    def __init__(self, n_items, n_categories, kind="din", item_dim=64, category_dim=64,
                 hidden_units=(80, 40), preset="din_repo", frozen_batch_norm=None,
                 dice_mode=None, attention_softmax=None, name=None, **kwargs):
        super().__init__(name=name or f"din_repo_{kind}", **kwargs)
        self.kind = check_choice("kind", kind, DIN_REPO_KINDS)
        self.n_items = check_positive_int("n_items", n_items)
        self.n_categories = check_positive_int("n_categories", n_categories)
        self.item_dim = check_positive_int("item_dim", item_dim)
        self.category_dim = check_positive_int("category_dim", category_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.preset = preset
        self.options = presets.resolve(type(self).__name__, preset, "din_repo",
                                       dict(frozen_batch_norm=frozen_batch_norm,
                                            dice_mode=dice_mode,
                                            attention_softmax=attention_softmax))
        width = item_dim + category_dim
        frozen = self.options["frozen_batch_norm"]
        # What the model reads, for the pipeline and the export.
        self.schema = din_repo_schema(n_items, n_categories, item_dim, category_dim)
        self.item_embedding = RowEmbedding(n_items, item_dim, name="item_embedding")
        self.category_embedding = RowEmbedding(n_categories, category_dim,
                                               name="category_embedding")
        self.uses_attention = kind in ("din", "din_dice")
        if self.uses_attention:
            softmax = self.options["attention_softmax"]
            self.attention = DINAttention("din_repo", use_softmax=softmax,
                                          zero_masked_weights=not softmax, name="attention")
        self.user_batch_norm = FrozenBatchNorm(frozen=frozen, name="batch_normalization")
        self.user_dense = keras.layers.Dense(width, name="hist_fcn" if self.uses_attention
                                             else "dense")
        self.mlp_batch_norm = FrozenBatchNorm(frozen=frozen, name="b1")
        dice = kind == "din_dice"
        self.mlp_dense = [keras.layers.Dense(u, activation=None if dice else "sigmoid",
                                             name=f"f{i}")
                          for i, u in enumerate(self.hidden_units, start=1)]
        self.mlp_dice = ([Dice(self.options["dice_mode"], name=f"dice_{i}")
                          for i in range(1, len(self.hidden_units) + 1)] if dice else [])
        self.logit_dense = keras.layers.Dense(1, name=f"f{len(self.hidden_units) + 1}")
        self.extra_dense = (keras.layers.Dense(1, name="f_fm") if kind == "deepfm" else
                            keras.layers.Dense(1, name="f_wide") if kind == "wide_deep"
                            else None)
        self.item_bias = self.add_weight(shape=(n_items,), initializer="zeros",
                                         autocast=False, name="item_b")
        self._build_weights()

    @property
    def training_recipe(self):
        # Per kind: the DIN repo trains its DeepFM with Adam, its Wide&Deep 30 epochs.
        return recipe_for(f"din_repo/{self.kind}")

    def forward(self, features, training=False, with_aux=False):
        inputs = read_inputs(type(self).__name__, features, need_user=False)
        item = self._item_vectors(inputs.item, inputs.category)
        history = self._item_vectors(inputs.history_items, inputs.history_categories)
        if self.uses_attention:
            pooled = self.attention(item, history, lengths=inputs.lengths)
        else:
            mask = ops.cast(inputs.mask, history.dtype)[..., None]
            # The mean over real steps; an empty history pools to zeros (the
            # original divides by 0 and scores NaN: a user without history is
            # valid input, not an error).
            lengths = ops.cast(ops.maximum(inputs.lengths, 1), history.dtype)[:, None]
            pooled = ops.sum(history * mask, axis=1) / lengths
        user = self.user_dense(self.user_batch_norm(pooled, training=training))
        parts = [user, item]
        if self.kind in ("pnn", "din", "din_dice"):
            parts.append(user * item)
        x = self.mlp_batch_norm(ops.concatenate(parts, axis=-1), training=training)
        for i, dense in enumerate(self.mlp_dense):
            x = dense(x)
            if self.mlp_dice:
                x = self.mlp_dice[i](x, training=training)
        deep = ops.cast(ops.squeeze(self.logit_dense(x), -1), "float32")
        bias = tf.gather(self.item_bias.value, self.item_embedding.valid_ids(inputs.item))
        logits = bias + deep
        if self.extra_dense is not None:
            logits += ops.cast(ops.squeeze(self.extra_dense(self._extra_features(user, item)),
                                           -1), "float32")
        return {
            "item_vector": item, "user_vector": user, "attention_output": pooled,
            "deep_logit": deep, "item_bias": bias, "logits": logits,
            "probability": ops.sigmoid(logits),
            "lookups": [(self.item_embedding, inputs.item, None),
                        (self.category_embedding, inputs.category, None),
                        (self.item_embedding, inputs.history_items, inputs.mask),
                        (self.category_embedding, inputs.history_categories, inputs.mask)],
        }

    def _item_vectors(self, items, categories):
        return ops.concatenate([self.item_embedding(items), self.category_embedding(categories)],
                               axis=-1)

    def _extra_features(self, user, item):
        if self.kind == "deepfm":
            return ops.stack([ops.sum(user * item, axis=-1), user[:, 0] + item[:, 0]], axis=-1)
        middle = self.item_dim
        return ops.stack([user[:, 0] * item[:, 0], user[:, -1] * item[:, -1],
                          user[:, middle] * item[:, middle]], axis=-1)

    def ctr_loss(self, labels, outputs):
        logits = outputs["logits"]
        # TF's numerically stable sigmoid cross-entropy with logits.
        return ops.mean(ops.maximum(logits, 0.0) - logits * labels
                        + ops.log1p(ops.exp(-ops.abs(logits))))

    def original_variable_map(self):
        mapping = {
            "item_emb_w": self.item_embedding.embeddings,
            "cate_emb_w": self.category_embedding.embeddings,
            "item_b": self.item_bias,
        }
        if self.uses_attention:
            for i, dense in enumerate(self.attention.score_layers, start=1):
                mapping.update(dense_map(f"f{i}_att", dense))
        mapping.update(batch_norm_map("batch_normalization", self.user_batch_norm))
        mapping.update(dense_map(self.user_dense.name, self.user_dense))
        mapping.update(batch_norm_map("b1", self.mlp_batch_norm))
        for i, dense in enumerate(self.mlp_dense + [self.logit_dense], start=1):
            mapping.update(dense_map(f"f{i}", dense))
        for i, dice in enumerate(self.mlp_dice, start=1):
            mapping[f"alphadice_{i}"] = dice.alpha
            if dice.mode == "din_repo":
                mapping[f"betadice_{i}"] = dice.beta
                mapping[f"dice_{i}/moving_mean"] = dice.moving_mean
                mapping[f"dice_{i}/moving_variance"] = dice.moving_variance
        if self.extra_dense is not None:
            mapping.update(dense_map(self.extra_dense.name, self.extra_dense))
        return mapping

    def get_config(self):
        config = super().get_config()
        config.update(n_items=self.n_items, n_categories=self.n_categories, kind=self.kind,
                      item_dim=self.item_dim, category_dim=self.category_dim,
                      hidden_units=list(self.hidden_units), preset=self.preset,
                      **self.options)
        return config
