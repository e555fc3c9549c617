"""What every DIEN-repo model shares: the three embedding tables, the
pooled history, the BN → 200 → 80 → 2 head and the 2-way softmax loss."""

import keras
import numpy as np
from keras import ops

from din_tf._argument_checks import check_choice, check_positive_int
from din_tf.layers import Dice, FrozenBatchNorm, PReLU, RowEmbedding
from din_tf.models import presets
from din_tf.models._inputs import read_schema_inputs
from din_tf.models._original_variables import batch_norm_map, dense_map
from din_tf.models.ctr_model import CTRModel
from din_tf.schema import FeatureSchema, original_schema
from din_tf.schema.original import CATEGORY_TABLE, ITEM_TABLE, USER_TABLE

ACTIVATIONS = ("prelu", "dice")
CTR_LOSS_REDUCTIONS = ("mean_over_classes", "per_example")


class DIENRepoModel(CTRModel):
    """Base of the DIEN repo's models (`script/model.py`;
    docs/original_code.md#models-of-the-dien-repo), built from the originals'
    inputs or from any feature schema.

    Originals' inputs (`n_users, n_items, n_categories` given): embeddings
    `uid`, `mid`, `cat` of width `embedding_dim` (18), Glorot-uniform over
    each whole table. `item_eb = [mid(item), cat(category)]`, `history_eb = [mid(h),
    cat(h)]` per step, `history_sum = sum_t history_eb_t` (padded steps
    included as coded, `mask_history_sum=True` excludes them). The head is
    `build_fcn_net`: BatchNorm (frozen as coded) → Dense(200) → PReLU or Dice
    → Dense(80) → PReLU or Dice → Dense(2) → softmax + 1e-8; column 0 is the
    click probability. CTR loss as coded is `-mean(log(y_hat) * [y, 1 - y])`
    over all 2B entries (`ctr_loss_reduction="mean_over_classes"`, half the
    usual cross-entropy); `"per_example"` is the usual per-example mean.

    A feature schema (`schema=`, see `din_tf.schema`) generalises every part:
    one table per schema table (`{table}_embedding`); `item_eb` is the
    candidate features' vectors concatenated (multi-valued ones pooled);
    each behaviour sequence embeds its steps with the candidate features'
    tables and is matched against the same candidate features; the MLP input
    is `[user vectors, item_eb, context vectors, numeric features,
    history_sum per sequence]` followed by each model's sequence features per
    sequence. The originals' inputs are exactly `original_schema(n_users,
    n_items, n_categories)`, so both paths are one code.

    Subclasses add `sequence_features` (what follows the pooled histories in
    the MLP input).

    Args:
        n_users, n_items, n_categories: vocabulary sizes of the originals'
            inputs (ids outside them read row 0); or None with `schema`.
        schema: a resolved `din_tf.schema.FeatureSchema` (or its config)
            instead of the three sizes.
        embedding_dim: width of each id embedding (originals' inputs only;
            a schema gives each feature's width).
        hidden_units: MLP widths (200, 80).
        activation: "prelu" or "dice" (each model's original by default).
        preset: "dien_repo" (default) or "paper"; fills the options left None.
        frozen_batch_norm, mask_history_sum, ctr_loss_reduction, dice_mode:
            see `din_tf.models.presets.DIEN_REPO_FAMILY`.
        probability_offset: added to the softmax (1e-8 as coded).
        aux_loss_weight: weight of DIEN's auxiliary loss (1 as coded).
    """

    default_activation = "prelu"
    training_family = "dien_repo"

    def __init__(self, n_users=None, n_items=None, n_categories=None, embedding_dim=18,
                 hidden_units=(200, 80), activation=None, preset="dien_repo",
                 frozen_batch_norm=None, mask_history_sum=None, ctr_loss_reduction=None,
                 dice_mode=None, probability_offset=1e-8, aux_loss_weight=1.0, schema=None,
                 name=None, **kwargs):
        super().__init__(aux_loss_weight=aux_loss_weight, name=name)
        model = type(self).__name__
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        if schema is None:
            self.n_users = check_positive_int("n_users", n_users)
            self.n_items = check_positive_int("n_items", n_items)
            self.n_categories = check_positive_int("n_categories", n_categories)
            self.schema = original_schema(self.n_users, self.n_items, self.n_categories,
                                          embedding_dim)
            self.from_schema = False
        else:
            given = [k for k, v in (("n_users", n_users), ("n_items", n_items),
                                    ("n_categories", n_categories)) if v is not None]
            if given:
                raise ValueError(f"{model}: give either schema or the vocabulary sizes "
                                 f"(n_users, n_items, n_categories), not both; received "
                                 f"schema and {given}.")
            self.n_users = self.n_items = self.n_categories = None
            self.schema = FeatureSchema.from_config(schema)
            self.schema.check_resolved(model)
            self.from_schema = True
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

        self.tables = {table: RowEmbedding(members[0].rows, self.table_width(members[0]),
                                           name=f"{table}_embedding")
                       for table, members in self.schema.tables().items()}
        self.mlp_batch_norm = FrozenBatchNorm(frozen=self.options["frozen_batch_norm"],
                                              name="bn1")
        self.mlp_dense = [keras.layers.Dense(u, name=f"f{i}")
                          for i, u in enumerate(self.hidden_units, start=1)]
        self.mlp_activations = [self._make_activation(i)
                                for i in range(1, len(self.hidden_units) + 1)]
        self.logits_dense = keras.layers.Dense(2, name=f"f{len(self.hidden_units) + 1}")

    # The originals' three tables under the names the golden tests and
    # original checkpoints use.
    @property
    def user_embedding(self):
        return self.tables[USER_TABLE]

    @property
    def item_embedding(self):
        return self.tables[ITEM_TABLE]

    @property
    def category_embedding(self):
        return self.tables[CATEGORY_TABLE]

    def table_width(self, feature):
        """Width of the table `feature` reads (its `embedding_dim`)."""
        return feature.embedding_dim

    def _make_activation(self, index):
        if self.activation == "dice":
            return Dice(self.options["dice_mode"], name=f"dice_{index}")
        return PReLU(0.1, name=f"prelu{index}")

    def dummy_features(self):
        if not self.from_schema:
            return super().dummy_features()
        return schema_dummy_features(self.schema)

    # -- forward -------------------------------------------------------------
    def embed(self, feature, ids, lookups, valid=None):
        """Rows of `feature` for `ids` ([...] or [..., V] multi-valued, pooled
        over V without padding), recording the lookup for regularization."""
        table = self.tables[feature.table_name]
        rows = table(ids)
        if not feature.multi_valued:
            lookups.append((table, ids, valid))
            return rows
        present = ops.not_equal(ids, 0)
        lookups.append((table, ids, present if valid is None
                        else ops.logical_and(present, ops.cast(valid, "bool")[..., None])))
        weights = ops.cast(present, rows.dtype)[..., None]
        pooled = ops.sum(rows * weights, axis=-2)
        if feature.pooling == "mean":
            pooled = pooled / ops.maximum(ops.sum(weights, axis=-2), 1.0)
        return pooled

    def embed_steps(self, seq, steps, mask, lookups):
        """[B, T, width] step vectors of sequence `seq`."""
        return ops.concatenate(
            [self.embed(self.schema.feature(n), steps[n], lookups, mask) for n in seq.features],
            axis=-1)

    def forward(self, features, training=False, with_aux=False):
        schema = self.schema
        inputs = read_schema_inputs(type(self).__name__, schema, features,
                                    need_negatives=with_aux and self.uses_aux_loss)
        lookups = []
        vectors = {f.name: self.embed(f, inputs.ids[f.name], lookups)
                   for f in schema.categorical_features}
        candidates = [f.name for f in schema.candidate_features]
        outputs = {"item_eb": _concat([vectors[n] for n in candidates])}
        user = [vectors[f.name] for f in schema.group("user", "categorical")]
        if len(user) == 1:
            outputs["uid_embedding"] = user[0]
        dense = (user + [outputs["item_eb"]]
                 + [vectors[f.name] for f in schema.group("context", "categorical")]
                 + [ops.cast(inputs.numerics[f.name], "float32")[:, None]
                    for f in schema.numeric_features])
        sums, extras = [], []
        for index, seq in enumerate(schema.sequences):
            part = inputs.sequences[seq.name]
            seq_outputs = outputs if index == 0 else {}
            seq_outputs["item_eb"] = (outputs["item_eb"] if list(seq.features) == candidates
                                      else _concat([vectors[n] for n in seq.features]))
            seq_outputs["history_eb"] = self.embed_steps(seq, part.steps, part.mask, lookups)
            steps = seq_outputs["history_eb"]
            if self.options["mask_history_sum"]:
                steps = steps * ops.cast(part.mask, steps.dtype)[..., None]
            seq_outputs["history_sum"] = ops.sum(steps, axis=1)
            sums.append(seq_outputs["history_sum"])
            extras += self.sequence_features(index, seq, part, seq_outputs, lookups, training,
                                             with_aux)
            if index:
                outputs[f"sequence/{seq.name}"] = seq_outputs
            if "aux_loss" in seq_outputs and index:
                outputs["aux_loss"] = outputs.get("aux_loss", 0.0) + seq_outputs["aux_loss"]
        mlp_input = ops.concatenate(dense + sums + extras, axis=-1)
        self.add_outputs(inputs, outputs, lookups)
        logits = ops.cast(self.head(mlp_input, outputs, training), "float32")
        y_hat = ops.softmax(logits, axis=-1) + self.probability_offset
        outputs.update(logits=logits, y_hat=y_hat, probability=y_hat[:, 0])
        outputs["lookups"] = lookups
        return outputs

    def sequence_features(self, index, seq, inputs, outputs, lookups, training, with_aux):
        """The model's vectors for sequence number `index` (`inputs` its
        `SequenceInputs`, `outputs` its dict with `item_eb` (the query),
        `history_eb`, `history_sum`)."""
        return []

    def add_outputs(self, inputs, outputs, lookups):
        """Hook: more outputs from the read inputs before the head runs."""
        # A statement, not only the docstring: AutoGraph cannot convert an
        # empty body and warned on every trace of the models without one.
        del inputs, outputs, lookups

    def head(self, mlp_input, outputs, training):
        x = self.mlp_batch_norm(mlp_input, training=training)
        for dense, activation in zip(self.mlp_dense, self.mlp_activations):
            x = activation(dense(x), training=training)
        return self.logits_dense(x)

    def ctr_loss(self, labels, outputs):
        target = ops.stack([labels, 1.0 - labels], axis=-1)
        cells = -ops.log(outputs["y_hat"]) * target
        if self.options["ctr_loss_reduction"] == "mean_over_classes":
            return ops.mean(cells)
        return ops.mean(ops.sum(cells, axis=-1))

    # -- original checkpoints -------------------------------------------------
    def original_variable_map(self):
        """{original TF1 variable name: our variable}, for loading checkpoints."""
        if self.from_schema:
            raise ValueError(f"{type(self).__name__}: original checkpoints hold the originals' "
                             "three tables; this model was built from a feature schema.")
        mapping = {
            "uid_embedding_var": self.user_embedding.embeddings,
            "mid_embedding_var": self.item_embedding.embeddings,
            "cat_embedding_var": self.category_embedding.embeddings,
        }
        mapping.update(batch_norm_map("bn1", self.mlp_batch_norm))
        for i, dense in enumerate(self.mlp_dense + [self.logits_dense], start=1):
            mapping.update(dense_map(f"f{i}", dense))
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
            n_users=self.n_users, n_items=self.n_items, n_categories=self.n_categories,
            embedding_dim=self.embedding_dim, hidden_units=list(self.hidden_units),
            activation=self.activation, preset=self.preset,
            probability_offset=self.probability_offset,
            **{k: v for k, v in self.options.items()
               if k in ("frozen_batch_norm", "mask_history_sum", "ctr_loss_reduction",
                        "dice_mode")},
        )
        if self.from_schema:
            config["schema"] = self.schema.get_config()
        return config


def _concat(vectors):
    return vectors[0] if len(vectors) == 1 else ops.concatenate(vectors, axis=-1)


def schema_dummy_features(schema, batch=2, steps=3):
    """A tiny batch of every key `schema` declares (ids 1, full histories
    but for row 1), used to create the weights at construction time."""
    features = {}
    for f in schema.features:
        if f.kind == "numeric":
            features[f.name] = np.zeros((batch,), "float32")
        else:
            features[f.name] = np.ones((batch, f.max_values) if f.multi_valued else (batch,),
                                       "int32")
    for seq in schema.sequences:
        for n, key, neg in zip(seq.features, seq.step_keys,
                               seq.negative_step_keys or (None,) * len(seq.features)):
            f = schema.feature(n)
            shape = (batch, steps, f.max_values) if f.multi_valued else (batch, steps)
            features[key] = np.ones(shape, "int32")
            if neg is not None:
                features[neg] = np.ones(shape, "int32")
        features[seq.length] = np.array([steps] + [1] * (batch - 1), "int32")
    return features
