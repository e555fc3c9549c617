"""Logistic regression over a feature schema (the DIN paper's LR baseline)."""

import keras
from keras import ops

from din_tf.api_export import din_tf_export
from din_tf.models._inputs import read_schema_inputs
from din_tf.models.dien_repo_base import DIENRepoModel


@din_tf_export("din_tf.models.LogisticRegression")
class LogisticRegression(DIENRepoModel):
    """Logistic regression (the DIN paper's Table 3 "LR" row): one weight per
    id of every categorical feature, per behaviour as a bag of ids (each
    sequence step feature adds the mean weight of its real steps), one per
    numeric feature, and a bias: `p = sigmoid(b + sum of weights)`.

    Its tables are the schema's tables with width 1 (`{table}_embedding`, so
    mini-batch-aware L2 and row updates apply as to any model); the logits
    are `[z, 0]` so the family's 2-way softmax gives `sigmoid(z)`. There is no
    MLP: `hidden_units` and `activation` are not used. See `DIENRepoModel`
    for the other arguments.
    """

    def __init__(self, n_users=None, n_items=None, n_categories=None, **kwargs):
        super().__init__(n_users, n_items, n_categories, **kwargs)
        self.numeric_weights = (keras.layers.Dense(1, use_bias=False, name="numeric_linear")
                                if self.schema.numeric_features else None)
        self.bias = self.add_weight(shape=(), initializer="zeros", name="bias")
        self._build_weights()

    def table_width(self, feature):
        return 1

    def forward(self, features, training=False, with_aux=False):
        inputs = read_schema_inputs(type(self).__name__, self.schema, features)
        lookups, terms = [], []
        for f in self.schema.categorical_features:
            terms.append(self.embed(f, inputs.ids[f.name], lookups)[:, 0])
        for seq in self.schema.sequences:
            part = inputs.sequences[seq.name]
            mask = ops.cast(part.mask, "float32")
            count = ops.maximum(ops.sum(mask, axis=1), 1.0)
            for name in seq.features:
                weights = self.embed(self.schema.feature(name), part.steps[name], lookups,
                                     part.mask)[..., 0]
                terms.append(ops.sum(ops.cast(weights, "float32") * mask, axis=1) / count)
        if self.numeric_weights is not None:
            numbers = ops.stack([inputs.numerics[f.name] for f in self.schema.numeric_features],
                                axis=-1)
            terms.append(ops.squeeze(self.numeric_weights(numbers), -1))
        z = self.bias + ops.sum(ops.stack([ops.cast(t, "float32") for t in terms], axis=-1),
                                axis=-1)
        logits = ops.stack([z, ops.zeros_like(z)], axis=-1)
        y_hat = ops.softmax(logits, axis=-1) + self.probability_offset
        return {"logits": logits, "y_hat": y_hat, "probability": y_hat[:, 0],
                "lookups": lookups}
