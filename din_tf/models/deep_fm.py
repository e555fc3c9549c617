"""DeepFM over a feature schema (the DIN paper's DeepFM baseline)."""

import keras
from keras import ops

from din_tf.api_export import din_tf_export
from din_tf.layers import RowEmbedding
from din_tf.models.dien_repo_base import DIENRepoModel


@din_tf_export("din_tf.models.DeepFM")
class DeepFM(DIENRepoModel):
    """DeepFM (Guo et al. 2017; a baseline of the DIN paper's Table 3): the
    Embedding&MLP network (`DNN`) plus a factorization machine on the same
    embeddings.

    Fields of the FM: every categorical feature's vector (user, candidate,
    context; multi-valued ones pooled) and, per behaviour sequence and step
    feature, the mean of its real steps' vectors. First order: a width-1
    table per embedding table (`{table}_linear`, rows looked up like the
    main table; a sequence contributes the mean of its steps' weights) and a
    weight per numeric feature. Second order: `0.5 * sum((sum_f v_f)^2 -
    sum_f v_f^2)`, so every field must have the same width.
    Logits `[deep_0 + fm, deep_1]` → softmax: the click probability is
    `sigmoid(deep_0 - deep_1 + fm)`. PReLU activations, the family's loss and
    optimizer; see `DIENRepoModel` for all arguments.
    """

    def __init__(self, n_users=None, n_items=None, n_categories=None, **kwargs):
        super().__init__(n_users, n_items, n_categories, **kwargs)
        widths = {f.name: f.embedding_dim for f in self.schema.categorical_features}
        if len(set(widths.values())) > 1:
            raise ValueError(f"DeepFM: the factorization machine multiplies every pair of "
                             f"fields, so every categorical feature needs the same "
                             f"embedding_dim; received {widths}.")
        self.linear_tables = {table: RowEmbedding(members[0].rows, 1, name=f"{table}_linear")
                              for table, members in self.schema.tables().items()}
        self.numeric_weights = (keras.layers.Dense(1, use_bias=False, name="numeric_linear")
                                if self.schema.numeric_features else None)
        self._build_weights()

    def head(self, mlp_input, outputs, training):
        deep = super().head(mlp_input, outputs, training)
        fm = ops.cast(outputs["fm_logit"], deep.dtype)
        return deep + ops.stack([fm, ops.zeros_like(fm)], axis=-1)

    def add_outputs(self, inputs, outputs, lookups):
        outputs["fm_logit"] = self.fm_logit(inputs, lookups)

    def sequence_features(self, index, seq, inputs, outputs, lookups, training, with_aux):
        return []

    def fm_logit(self, inputs, lookups):
        """(first order + second order) [B] from the read inputs."""
        fields, first = [], []
        for f in self.schema.categorical_features:
            ids = inputs.ids[f.name]
            fields.append(self.embed(f, ids, lookups))
            first.append(self._linear(f, ids, lookups))
        for seq in self.schema.sequences:
            part = inputs.sequences[seq.name]
            mask = ops.cast(part.mask, "float32")[..., None]
            count = ops.maximum(ops.sum(mask, axis=1), 1.0)
            for name in seq.features:
                f = self.schema.feature(name)
                steps = self.embed(f, part.steps[name], [], part.mask)
                fields.append(ops.sum(steps * ops.cast(mask, steps.dtype), axis=1)
                              / ops.cast(count, steps.dtype))
                weights = self._linear(f, part.steps[name], lookups, part.mask, steps=True)
                first.append(ops.sum(weights * mask[..., 0], axis=1) / count[:, 0])
        if self.numeric_weights is not None:
            numbers = ops.stack([inputs.numerics[f.name] for f in self.schema.numeric_features],
                                axis=-1)
            first.append(ops.squeeze(self.numeric_weights(numbers), -1))
        stacked = ops.cast(ops.stack(fields, axis=1), "float32")  # [B, fields, d]
        second = 0.5 * ops.sum(ops.square(ops.sum(stacked, axis=1))
                               - ops.sum(ops.square(stacked), axis=1), axis=-1)
        return ops.sum(ops.stack([ops.cast(x, "float32") for x in first], axis=-1),
                       axis=-1) + second

    def _linear(self, feature, ids, lookups, valid=None, steps=False):
        table = self.linear_tables[feature.table_name]
        weights = table(ids)[..., 0]
        if feature.multi_valued:
            present = ops.not_equal(ids, 0)
            if steps:
                present = ops.logical_and(present, ops.cast(valid, "bool")[..., None])
            lookups.append((table, ids, present))
            weights = ops.sum(weights * ops.cast(present, weights.dtype), axis=-1)
        else:
            lookups.append((table, ids, valid if steps else None))
        return ops.cast(weights, "float32")
