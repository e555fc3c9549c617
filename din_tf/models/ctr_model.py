"""The CTR model base: one forward pass, the originals' losses, and a custom
training step with auxiliary loss, embedding regularization and the
originals' gradient handling."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from din_tf import features as F
from din_tf._argument_checks import check_choice
from din_tf.models._legacy_config import rename_legacy_arguments
from din_tf.training.gradients import (
    clip_by_global_norm_as_coded,
    densify,
    merge_duplicate_rows,
)
from din_tf.training.recipes import EMBEDDING_UPDATES, TrainingRecipe, recipe_for


class CTRModel(keras.Model):
    """Base of every model in the zoo.

    Subclasses implement `forward(features, training, with_aux)` returning a
    dict with at least `"probability"` ([B] float32 click probability) and
    `"lookups"` (list of `(RowEmbedding, ids, valid)` for regularization),
    and `ctr_loss(labels, outputs)`. `call(features)` returns the click
    probability [B], which is what `predict`, metrics and serving see.

    Training (`fit`): total loss = `ctr_loss` + `aux_loss_weight` * `aux_loss`
    (DIEN only) + `reg_loss` (from `compile(regularizer=...)`); all four are
    reported in the logs. Under a distribution strategy the loss is divided by
    the replica count before differentiating and reported unscaled, and
    `gradient_clip_norm` clips by the norm of the global (all-replica)
    gradient, so training matches one device on the same global batch (for
    models whose rows are independent: Dice and unfrozen BatchNorm use
    per-replica batch statistics in training).

    `compile` takes four extra arguments; what is left None comes from
    `recipe` (default: the model family's `training_recipe`, see
    `din_tf.training.recipes`), as do the optimizer and its learning-rate
    schedule:
        regularizer: e.g. `din_tf.training.MiniBatchAwareL2`, or None.
        embedding_update: "dense" densifies embedding gradients, so dense Adam
            moves every row each step exactly as TF1's Adam did in the DIEN
            repo; "rows" keeps them sparse with duplicate ids merged (the fast
            option; pair with `din_tf.training.LazyAdam` or SGD).
        gradient_clip_norm: clip by global norm computed as TF1 computed it on
            un-merged embedding slices (DIN repo: 5.0). To train without the
            recipe's clipping, give a recipe without it
            (`recipe=model.training_recipe.replace(gradient_clip_norm=None)`).
        recipe: a `din_tf.training.TrainingRecipe`.
    `jit_compile=True` XLA-compiles the forward and backward pass; the
    gradient processing and the optimizer update run outside XLA (see
    `make_train_function`).
    """

    # The model family whose recipe `training_recipe` is (recipes.recipe_for).
    training_family = None

    def __init__(self, aux_loss_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.aux_loss_weight = float(aux_loss_weight)
        self.regularizer = None
        self.embedding_update = None  # set by compile
        self.gradient_clip_norm = None
        self._trackers = {name: keras.metrics.Mean(name=name)
                          for name in ("loss", "ctr_loss", "aux_loss", "reg_loss")}

    # -- to implement -------------------------------------------------------
    def forward(self, features, training=False, with_aux=False):
        raise NotImplementedError

    def ctr_loss(self, labels, outputs):
        raise NotImplementedError

    @property
    def training_recipe(self):
        """How this model's family trains (`din_tf.training.recipes`): what
        `compile` is not given comes from here."""
        if self.training_family is None:
            raise ValueError(f"{type(self).__name__} names no `training_family`; set one, or "
                             "give compile a recipe (din_tf.training.RECIPES).")
        return recipe_for(self.training_family)

    def default_optimizer(self):
        """A fresh optimizer of `training_recipe`, with its learning-rate schedule."""
        return self.training_recipe.make_optimizer()

    def dummy_features(self):
        """A tiny batch used to create every weight at construction time."""
        batch, steps = 2, 3
        ids = np.ones((batch,), "int32")
        history = np.ones((batch, steps), "int32")
        return {
            F.USER_ID: ids, F.ITEM_ID: ids, F.CATEGORY_ID: ids,
            F.HISTORY_ITEM_IDS: history, F.HISTORY_CATEGORY_IDS: history,
            F.HISTORY_LENGTH: np.array([steps, 1], "int32"),
            F.NEGATIVE_ITEM_IDS: np.ones((batch, steps, 1), "int32"),
            F.NEGATIVE_CATEGORY_IDS: np.ones((batch, steps, 1), "int32"),
        }

    def _build_weights(self):
        # Every weight shape follows from the constructor arguments, so build
        # eagerly now: checkpoints, `.keras` files and optimizers then see the
        # full variable set before the first batch.
        self.forward(self.dummy_features(), training=False, with_aux=True)
        self.built = True

    def build(self, input_shape=None):
        if not self.built:
            self._build_weights()

    # -- Keras API -----------------------------------------------------------
    def call(self, features, training=False):
        return self.forward(features, training=training, with_aux=False)["probability"]

    def compile(self, optimizer=None, metrics=None, regularizer=None,
                embedding_update=None, gradient_clip_norm=None, jit_compile=False,
                recipe=None, **kwargs):
        if kwargs.get("loss") is not None:
            raise ValueError(
                f"{type(self).__name__}.compile: loss={kwargs['loss']!r} is not used; the "
                "model's loss is its original CTR loss (plus aux and regularization).")
        kwargs.pop("loss", None)
        if recipe is None:
            recipe = self.training_recipe
        elif not isinstance(recipe, TrainingRecipe):
            raise ValueError(f"{type(self).__name__}.compile: recipe={recipe!r}; expected a "
                             "din_tf.training.TrainingRecipe or None.")
        if embedding_update is None:
            embedding_update = recipe.embedding_update
        if gradient_clip_norm is None:
            gradient_clip_norm = recipe.gradient_clip_norm
        self.embedding_update = check_choice("embedding_update", embedding_update,
                                             EMBEDDING_UPDATES)
        if gradient_clip_norm is not None and not gradient_clip_norm > 0:
            raise ValueError(
                f"Invalid gradient_clip_norm={gradient_clip_norm!r}; expected a "
                "positive number or None.")
        self.gradient_clip_norm = gradient_clip_norm
        if regularizer is not None:
            regularizer.check_tables([layer.name for layer in self.embedding_tables()])
        self.regularizer = regularizer
        self._xla_gradients = None  # traced with the previous optimizer
        super().compile(optimizer=optimizer or recipe.make_optimizer(), metrics=metrics,
                        jit_compile=jit_compile, **kwargs)

    def get_compile_config(self):
        # compile() takes training-only objects (regularizer with frequency
        # tables); a loaded model is compiled again by its user.
        return None

    def embedding_tables(self):
        from din_tf.layers.row_embedding import RowEmbedding
        return [layer for layer in self._flatten_layers() if isinstance(layer, RowEmbedding)]

    @property
    def metrics(self):
        # Our loss trackers first, then what Keras tracks (compiled metrics,
        # sublayers' metrics) less its own "loss" tracker: our steps compute
        # the loss, so Keras' tracker would only report a stale duplicate.
        trackers = list(self._trackers.values())
        return trackers + [m for m in super().metrics if m.name not in self._trackers]

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras-private (no public hook; tests/models/test_keras_private_api.py
        # fails loudly if it changes, setup.py bounds Keras to the verified
        # versions). Under a strategy Keras builds compiled metrics from the
        # first batch, reduced across replicas; for dict inputs that reduction
        # fails under MultiWorkerMirroredStrategy (keras-team/keras#20329, still
        # in Keras 3.15.1). Only shapes are needed and ours are known, so build
        # from the dummy batch instead.
        del iterator, data_batch
        super()._maybe_symbolic_build(
            data_batch=(self.dummy_features(), np.zeros((2,), "float32")))

    # -- losses and steps ----------------------------------------------------
    def compute_losses(self, features, labels, training):
        """Returns (outputs, {"loss", "ctr_loss", "aux_loss", "reg_loss"})."""
        labels = _labels_1d(labels)
        # Evaluation batches without negatives simply skip the auxiliary loss.
        with_aux = (self.aux_loss_weight != 0 and self.uses_aux_loss
                    and (training or self.has_negatives(features)))
        outputs = self.forward(features, training=training, with_aux=with_aux)
        losses = {"ctr_loss": self.ctr_loss(labels, outputs)}
        losses["aux_loss"] = outputs.get("aux_loss", tf.constant(0.0))
        losses["reg_loss"] = (self.regularizer(outputs["lookups"])
                              if self.regularizer is not None else tf.constant(0.0))
        losses["loss"] = (losses["ctr_loss"] + self.aux_loss_weight * losses["aux_loss"]
                          + losses["reg_loss"])
        return outputs, losses

    uses_aux_loss = False

    def has_negatives(self, features):
        """Whether `features` carry the auxiliary loss's negatives."""
        schema = getattr(self, "schema", None)
        if schema is None:
            return F.NEGATIVE_ITEM_IDS in features
        return any(seq.negatives and all(k in features for k in seq.negative_step_keys)
                   for seq in schema.sequences)

    def train_step(self, data):
        x, y = unpack_batch(data)
        gradients = self._losses_and_gradients
        if self.jit_compile:
            if getattr(self, "_xla_gradients", None) is None:
                self._xla_gradients = tf.function(self._losses_and_gradients,
                                                  jit_compile=True, reduce_retracing=True)
            gradients = self._xla_gradients
        losses, probability, grads = gradients(x, y)
        grads, variables = self.process_gradients(grads, self.trainable_variables)
        self.optimizer.apply(grads, variables)
        return _reducible_logs(self._update_metrics(x, y, losses, probability))

    def _losses_and_gradients(self, x, y):
        return self.losses_and_gradients(x, y, self.trainable_variables)

    def losses_and_gradients(self, x, y, sources):
        """(losses, probability, gradients of the optimizer's scaled loss with
        respect to `sources`): the training step before gradient processing.
        `sources` are the model's trainable variables, or the TensorFlow
        variables behind them (one per shard of a sharded table, as
        `din_tf.parameter_server` differentiates)."""
        with tf.GradientTape() as tape:
            outputs, losses = self.compute_losses(x, y, training=True)
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(losses["loss"] / replicas)
        grads = tape.gradient(scaled, sources)
        return losses, outputs["probability"], grads

    def make_train_function(self, force=False):
        # Under jit_compile, XLA compiles the forward and backward pass
        # (`train_step`) but not the optimizer update around it: XLA rewrites
        # whole embedding tables to scatter a batch's rows into them (DIEN,
        # B=128, T=100, Books vocabularies: the LazyAdam update took ~140 ms
        # inside XLA, ~25 ms outside).
        jit_compile, self.jit_compile = self.jit_compile, False
        try:
            return super().make_train_function(force)
        finally:
            self.jit_compile = jit_compile

    def test_step(self, data):
        x, y = unpack_batch(data)
        outputs, losses = self.compute_losses(x, y, training=False)
        return _reducible_logs(self._update_metrics(x, y, losses, outputs["probability"]))

    def process_gradients(self, grads, variables):
        """Drops variables without a gradient, clips as coded, then densifies or
        merges sparse embedding gradients according to `embedding_update`."""
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        grads, variables = [g for g, _ in pairs], [v for _, v in pairs]
        if self.gradient_clip_norm is not None:
            grads = self._clip(grads)
        if self.embedding_update is None:
            raise ValueError(f"{type(self).__name__}: compile the model before processing "
                             "gradients (compile sets the embedding update).")
        if self.embedding_update == "dense":
            process = densify
        elif _adds_repeated_rows_itself(self.optimizer):
            process = _unchanged
        else:
            process = merge_duplicate_rows
        return [process(g) for g in grads], variables

    def _clip(self, grads):
        # The gradients are of the optimizer's scaled loss (a loss-scale
        # optimizer under mixed precision, or `loss_scale_factor`): clip at
        # the scaled threshold, i.e. the true gradient at gradient_clip_norm.
        clip_norm = self.gradient_clip_norm * tf.cast(
            self.optimizer.scale_loss(tf.constant(1.0)), tf.float32)
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return clip_by_global_norm_as_coded(grads, clip_norm)[0]
        # Each replica holds a share of the global gradient: clip all shares by
        # one scale from the global norm, so the optimizer's sum is clipped as
        # the one-device gradient would be.
        norm = _global_norm_across_replicas(grads, context)
        return tf.clip_by_global_norm(grads, clip_norm, use_norm=norm)[0]

    def _update_metrics(self, x, y, losses, probability):
        for name, tracker in self._trackers.items():
            tracker.update_state(losses[name])
        # Keras updates the compiled metrics and returns every metric's result.
        return self.compute_metrics(x, _labels_1d(y), probability)

    def load_original_weights(self, arrays):
        """Assigns arrays keyed by original TF1 variable names (e.g. read from an
        original checkpoint with `tf.train.load_checkpoint`), using
        `original_variable_map()`. Extra keys (optimizer slots, unused
        variables) are ignored; returns the sorted list of names not found."""
        missing = []
        for name, variable in self.original_variable_map().items():
            if name not in arrays:
                missing.append(name)
                continue
            value = np.asarray(arrays[name])
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"{type(self).__name__}.load_original_weights: {name!r} has shape "
                    f"{value.shape}, expected {tuple(variable.shape)}.")
            variable.assign(value)
        return sorted(missing)

    def original_variable_map(self):
        raise NotImplementedError

    def get_config(self):
        return {"aux_loss_weight": self.aux_loss_weight, "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # Configs written before the vocabulary sizes were renamed still load.
        return super().from_config(rename_legacy_arguments(config),
                                   custom_objects=custom_objects)


def _global_norm_across_replicas(grads, context):
    """`global_norm_as_coded` of the global batch's gradient: dense gradients
    are summed over replicas before squaring; un-merged sparse slices of
    different replicas are different slices, so only their squares are summed."""
    dense = [g for g in grads if not isinstance(g, tf.IndexedSlices)]
    sparse = [g for g in grads if isinstance(g, tf.IndexedSlices)]
    sparse_squares = tf.add_n([tf.reduce_sum(tf.square(tf.cast(g.values, tf.float32)))
                               for g in sparse] + [tf.constant(0.0)])
    summed = context.all_reduce(tf.distribute.ReduceOp.SUM, dense + [sparse_squares])
    dense_squares = [tf.reduce_sum(tf.square(tf.cast(g, tf.float32))) for g in summed[:-1]]
    return tf.sqrt(tf.add_n(dense_squares + [summed[-1]]))


def _unchanged(grad):
    return grad


def _adds_repeated_rows_itself(optimizer):
    """Whether `optimizer` updates correctly from slices that repeat a row.

    LazyAdam and FusedAdam merge them themselves (merging first would cost a
    second pass). Plain SGD subtracts each slice with a scatter, which adds
    repeated rows up: merging would only add work, and TF1's
    GradientDescentOptimizer did not merge either (the DIN repo's optimizer).
    """
    if getattr(optimizer, "merges_duplicate_rows", False):
        return True
    return (type(optimizer) is keras.optimizers.SGD and not optimizer.momentum
            and not optimizer.nesterov)


def _reducible_logs(logs):
    # Across workers Keras reduces step logs with strategy.reduce("MEAN", v,
    # axis=0), which rejects scalars (keras-team/keras#20585): give them a
    # length-1 axis there; the reduction returns scalars again.
    strategy = tf.distribute.get_strategy()
    if (not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            or strategy.num_replicas_in_sync <= len(strategy.extended.worker_devices)):
        return logs  # one machine
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


def _labels_1d(labels):
    labels = ops.cast(labels, "float32")
    if len(labels.shape) == 2 and labels.shape[-1] == 1:
        labels = ops.squeeze(labels, -1)
    if len(labels.shape) != 1:
        raise ValueError(
            f"Invalid labels: expected shape [B] or [B, 1] with 1.0 for a click, "
            f"received shape {tuple(labels.shape)}.")
    return labels


def unpack_batch(data):
    """`(features, labels)` of a batch; sample weights are refused (the
    originals' losses are unweighted means)."""
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if sample_weight is not None:
        raise ValueError(
            "sample_weight is not supported: the originals' losses are unweighted means.")
    return x, y
