"""What every DIEN-repo model shares: the three embedding tables, the
pooled history, the BN → 200 → 80 → 2 head and the 2-way softmax loss."""

import keras
from keras import ops

from din_tf.layers import Dice, FrozenBatchNorm, PReLU, RowEmbedding
from din_tf.layers._checks import check_choice, check_positive_int
from din_tf.models import presets
from din_tf.models._inputs import read_inputs
from din_tf.models.ctr_model import CTRModel
from din_tf.training.optimizers import original_optimizer

ACTIVATIONS = ("prelu", "dice")
CTR_LOSS_REDUCTIONS = ("mean_over_classes", "per_example")


class DIENRepoModel(CTRModel):
    """Base of the DIEN repo's models (`script/model.py`, spec §5.1).

    Embeddings `uid`, `mid`, `cat` of width `embedding_dim` (18), Glorot-uniform
    over each whole table. `item_eb = [mid(item), cat(category)]`,
    `history = [mid(h), cat(h)]` per step, `history_sum = sum_t history_t`
    (padded steps included as coded, `mask_history_sum=True` excludes them).
    The head is `build_fcn_net`: BatchNorm (frozen as coded) → Dense(200) →
    PReLU or Dice → Dense(80) → PReLU or Dice → Dense(2) → softmax + 1e-8;
    column 0 is the click probability. CTR loss as coded is
    `-mean(log(y_hat) * [y, 1 - y])` over all 2B entries
    (`ctr_loss_reduction="mean_over_classes"`, half the usual cross-entropy);
    `"per_example"` is the usual per-example mean.

    Subclasses add `sequence_features` (what follows uid, item_eb, history_sum
    in the MLP input).

    Args:
        n_uid, n_mid, n_cat: vocabulary sizes (ids outside them read row 0).
        embedding_dim: width of each id embedding.
        hidden_units: MLP widths (200, 80).
        activation: "prelu" or "dice" (each model's original by default).
        preset: "dien_repo" (default) or "paper"; fills the options left None.
        frozen_batch_norm, mask_history_sum, ctr_loss_reduction, dice_mode:
            see `din_tf.models.presets.DIEN_REPO_FAMILY`.
        probability_offset: added to the softmax (1e-8 as coded).
        aux_loss_weight: weight of DIEN's auxiliary loss (1 as coded).
    """

    default_activation = "prelu"

    def __init__(self, n_uid, n_mid, n_cat, embedding_dim=18, hidden_units=(200, 80),
                 activation=None, preset="dien_repo", frozen_batch_norm=None,
                 mask_history_sum=None, ctr_loss_reduction=None, dice_mode=None,
                 probability_offset=1e-8, aux_loss_weight=1.0, name=None, **kwargs):
        super().__init__(aux_loss_weight=aux_loss_weight, name=name)
        model = type(self).__name__
        self.n_uid = check_positive_int("n_uid", n_uid)
        self.n_mid = check_positive_int("n_mid", n_mid)
        self.n_cat = check_positive_int("n_cat", n_cat)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.hidden_units = tuple(check_positive_int("hidden_units", int(u)) for u in hidden_units)
        self.activation = check_choice("activation", activation or self.default_activation,
                                       ACTIVATIONS)
        self.preset = preset
        self.options = presets.resolve(model, preset, "dien_repo", dict(
            frozen_batch_norm=frozen_batch_norm, mask_history_sum=mask_history_sum,
            ctr_loss_reduction=ctr_loss_reduction, dice_mode=dice_mode, **kwargs.pop(
                "_sequence_options", {})))
        if kwargs:
            raise ValueError(f"{model}: unknown argument(s) {sorted(kwargs)}.")
        check_choice("ctr_loss_reduction", self.options["ctr_loss_reduction"],
                     CTR_LOSS_REDUCTIONS)
        self.probability_offset = float(probability_offset)

        self.user_embedding = RowEmbedding(n_uid, embedding_dim, name="uid_embedding")
        self.item_embedding = RowEmbedding(n_mid, embedding_dim, name="mid_embedding")
        self.category_embedding = RowEmbedding(n_cat, embedding_dim, name="cat_embedding")
        self.mlp_batch_norm = FrozenBatchNorm(frozen=self.options["frozen_batch_norm"],
                                              name="bn1")
        self.mlp_dense = [keras.layers.Dense(u, name=f"f{i}")
                          for i, u in enumerate(self.hidden_units, start=1)]
        self.mlp_activations = [self._make_activation(i)
                                for i in range(1, len(self.hidden_units) + 1)]
        self.logits_dense = keras.layers.Dense(2, name=f"f{len(self.hidden_units) + 1}")

    def _make_activation(self, index):
        if self.activation == "dice":
            return Dice(self.options["dice_mode"], name=f"dice_{index}")
        return PReLU(0.1, name=f"prelu{index}")

    def default_optimizer(self):
        return original_optimizer("dien_repo")

    # -- forward -------------------------------------------------------------
    def embed_pair(self, items, categories):
        return ops.concatenate([self.item_embedding(items), self.category_embedding(categories)],
                               axis=-1)

    def forward(self, features, training=False, with_aux=False):
        inputs = read_inputs(type(self).__name__, features,
                             need_negatives=with_aux and self.uses_aux_loss)
        outputs = {
            "uid_embedding": self.user_embedding(inputs.user),
            "item_eb": self.embed_pair(inputs.item, inputs.category),
            "history_eb": self.embed_pair(inputs.history_items, inputs.history_categories),
        }
        steps = outputs["history_eb"]
        if self.options["mask_history_sum"]:
            steps = steps * ops.cast(inputs.mask, steps.dtype)[..., None]
        outputs["history_sum"] = ops.sum(steps, axis=1)
        extra = self.sequence_features(inputs, outputs, training, with_aux)
        mlp_input = ops.concatenate(
            [outputs["uid_embedding"], outputs["item_eb"], outputs["history_sum"]] + extra,
            axis=-1)
        logits = ops.cast(self.head(mlp_input, outputs, training), "float32")
        y_hat = ops.softmax(logits, axis=-1) + self.probability_offset
        outputs.update(logits=logits, y_hat=y_hat, probability=y_hat[:, 0])
        outputs["lookups"] = self._lookups(inputs, outputs)
        return outputs

    def sequence_features(self, inputs, outputs, training, with_aux):
        return []

    def head(self, mlp_input, outputs, training):
        x = self.mlp_batch_norm(mlp_input, training=training)
        for dense, activation in zip(self.mlp_dense, self.mlp_activations):
            x = activation(dense(x), training=training)
        return self.logits_dense(x)

    def _lookups(self, inputs, outputs):
        mask = inputs.mask
        lookups = [
            (self.user_embedding, inputs.user, None),
            (self.item_embedding, inputs.item, None),
            (self.category_embedding, inputs.category, None),
            (self.item_embedding, inputs.history_items, mask),
            (self.category_embedding, inputs.history_categories, mask),
        ]
        if "negative_eb" in outputs:
            lookups += [(self.item_embedding, inputs.negative_items, mask),
                        (self.category_embedding, inputs.negative_categories, mask)]
        return lookups

    def ctr_loss(self, labels, outputs):
        target = ops.stack([labels, 1.0 - labels], axis=-1)
        cells = -ops.log(outputs["y_hat"]) * target
        if self.options["ctr_loss_reduction"] == "mean_over_classes":
            return ops.mean(cells)
        return ops.mean(ops.sum(cells, axis=-1))

    # -- original checkpoints -------------------------------------------------
    def original_variable_map(self):
        """{original TF1 variable name: our variable}, for loading checkpoints."""
        mapping = {
            "uid_embedding_var": self.user_embedding.embeddings,
            "mid_embedding_var": self.item_embedding.embeddings,
            "cat_embedding_var": self.category_embedding.embeddings,
        }
        mapping.update(_batch_norm_map("bn1", self.mlp_batch_norm))
        for i, dense in enumerate(self.mlp_dense + [self.logits_dense], start=1):
            mapping.update(_dense_map(f"f{i}", dense))
        for i, act in enumerate(self.mlp_activations, start=1):
            mapping.update(self._activation_map(i, act))
        return mapping

    def _activation_map(self, index, layer):
        if isinstance(layer, Dice):
            return {f"dice_{index}/alphadice_{index}": layer.alpha}
        return {f"prelu{index}/prelu_prelu{index}": layer.alpha}

    def get_config(self):
        config = super().get_config()
        config.update(
            n_uid=self.n_uid, n_mid=self.n_mid, n_cat=self.n_cat,
            embedding_dim=self.embedding_dim, hidden_units=list(self.hidden_units),
            activation=self.activation, preset=self.preset,
            probability_offset=self.probability_offset,
            **{k: v for k, v in self.options.items()
               if k in ("frozen_batch_norm", "mask_history_sum", "ctr_loss_reduction",
                        "dice_mode")},
        )
        return config


def _dense_map(prefix, dense):
    return {f"{prefix}/kernel": dense.kernel, f"{prefix}/bias": dense.bias}


def _batch_norm_map(prefix, bn):
    return {f"{prefix}/{k}": getattr(bn, k)
            for k in ("gamma", "beta", "moving_mean", "moving_variance")}
