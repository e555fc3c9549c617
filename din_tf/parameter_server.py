"""Training with the embedding tables split in row shards over parameter
servers: TensorFlow's `ParameterServerStrategy` and `ClusterCoordinator`,
driven by our own loop.

    strategy = make_strategy("parameter_server")   # cluster from TF_CONFIG, on the chief
    with strategy.scope():
        model = din_tf.models.DIEN(n_users, n_items, n_categories)
        model.compile(optimizer=din_tf.training.LazyAdam(1e-3), embedding_update="rows",
                      regularizer=MiniBatchAwareL2(1e-5, frequencies))
    trainer = ParameterServerTrainer(model, strategy, checkpoint_dir="ckpt")
    trainer.fit(din_tf.data.input_fn(samples, 128, shuffle=True, repeat=True, shard_seed=0),
                steps=10_000)
    served = trainer.local_model()                  # every weight on this process
    din_tf.export.export_saved_model(served, "export/1")

Why not `model.fit`: Keras 3's `fit` does not accept this strategy
(keras-team/keras#18624), and two Keras 3 mechanisms assume one variable
behind each weight, where a sharded table is several: `GradientTape`
differentiates a Keras variable through its `.handle` (a `ShardedVariable` has
none), and the optimizer keeps one slot per Keras variable. So this trainer
differentiates the loss with respect to the TensorFlow variables themselves,
every shard separately, and gives the model's optimizer one Keras variable per
shard ("shard views", created over the existing shard so nothing is copied):
its slots (Adam's moments, Adagrad's accumulators) are then created beside
each shard on the same parameter server, and a row update touches only that
shard. Each shard's gradient is an IndexedSlices of the rows the batch read
from it (see `RowEmbedding.gather`), so `embedding_update="rows"` moves only
those rows, as on one machine; "dense" densifies each shard's gradient.

Everything else is the model's own code, unchanged: `compute_losses` (CTR loss,
DIEN's auxiliary loss, the regularizer, e.g. mini-batch-aware L2) and
`process_gradients` (clipping as coded, merging duplicate rows).

Workers train asynchronously: each runs whole steps (forward, backward,
update) against the parameter servers' current values, as the strategy
provides. With one worker and `sync_every=1` a step sees the result of the
previous one, and the training equals one process's step for step.
"""

import keras
import numpy as np
import tensorflow as tf

from din_tf.models.ctr_model import unpack_batch

_ShardedVariable = tf.__internal__.distribute.ShardedVariable


class ParameterServerTrainer:
    """Trains a compiled `CTRModel` under `ParameterServerStrategy`.

    Args:
        model: a `CTRModel` constructed and compiled inside `strategy.scope()`
            (so its variables, and those of its optimizer, live on the
            parameter servers). Its compiled metrics are not updated: evaluate
            `local_model()` instead.
        strategy: the `tf.distribute.ParameterServerStrategy`.
        checkpoint_dir: where `fit` saves the model, its optimizer and the step
            (`tf.train.CheckpointManager`; each parameter server writes its
            own variables, so on a real cluster this is storage every task
            can write), and what the trainer restores from when the directory
            already holds one. None: no checkpoints.
        checkpoint_every: steps between checkpoints (and one at the end of
            `fit`); None: only at the end.
        steps_per_execution: steps a worker runs per scheduled function (fewer
            round trips to this process).
        max_to_keep: checkpoints kept.
    """

    def __init__(self, model, strategy, checkpoint_dir=None, checkpoint_every=None,
                 steps_per_execution=1, max_to_keep=2):
        if not isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
            raise ValueError(f"Invalid strategy={strategy!r}; expected a "
                             "tf.distribute.experimental.ParameterServerStrategy.")
        if model.optimizer is None:
            raise ValueError("ParameterServerTrainer: compile the model (inside "
                             "strategy.scope()) before training it.")
        for name, value in (("steps_per_execution", steps_per_execution),
                            ("checkpoint_every", checkpoint_every)):
            if value is not None and not (isinstance(value, int) and value > 0):
                raise ValueError(f"Invalid {name}={value!r}; expected a positive integer"
                                 + (" or None." if name == "checkpoint_every" else "."))
        self.model = model
        self.strategy = strategy
        self.steps_per_execution = steps_per_execution
        self.checkpoint_every = checkpoint_every
        self.coordinator = tf.distribute.experimental.coordinator.ClusterCoordinator(strategy)
        self._variables, self._views = shard_views(model.trainable_variables, strategy)
        with strategy.scope():
            model.optimizer.build(self._views)
            # Keras counts the optimizer's iterations with a read and an
            # assign, so two workers' concurrent steps can count once; this
            # counter adds atomically on its parameter server.
            self._step = tf.Variable(0, dtype=tf.int64, trainable=False, name="trained_steps")
        self._execute = tf.function(self._worker_steps)
        self._dataset_fn = self._iterator = None
        self.checkpoint_manager = None
        if checkpoint_dir is not None:
            # The TensorFlow variables, not the Keras ones: a Keras variable
            # saves the variable behind it as one tensor, which a
            # ShardedVariable is not ("'ShardedVariable' object has no
            # attribute 'device'"); a ShardedVariable saves itself as slices of
            # one full variable.
            weights = {weight.path.replace("/", "."): weight.value for weight in model.weights}
            checkpoint = tf.train.Checkpoint(weights=weights, optimizer=model.optimizer,
                                             step=self._step)
            self.checkpoint_manager = tf.train.CheckpointManager(
                checkpoint, checkpoint_dir, max_to_keep=max_to_keep)
            latest = self.checkpoint_manager.latest_checkpoint
            if latest:
                checkpoint.restore(latest).assert_existing_objects_matched()

    @property
    def step(self):
        """Steps trained so far (restored with a checkpoint)."""
        return int(self._step.numpy())

    def _replica_step(self, batch):
        model = self.model
        losses, _, grads = model.losses_and_gradients(*unpack_batch(batch), self._variables)
        grads, views = model.process_gradients(grads, self._views)
        model.optimizer.apply(grads, views)
        self._step.assign_add(1)
        return losses

    def _worker_steps(self, iterator):
        totals = self.strategy.run(self._replica_step, args=(next(iterator),))
        for _ in tf.range(self.steps_per_execution - 1):
            losses = self.strategy.run(self._replica_step, args=(next(iterator),))
            totals = {k: totals[k] + v for k, v in losses.items()}
        return {k: v / self.steps_per_execution for k, v in totals.items()}

    def fit(self, dataset_fn, steps, sync_every=None, on_sync=None):
        """Trains until `step` reaches `steps` (a restored run continues).

        Args:
            dataset_fn: `dataset_fn(input_context) -> tf.data.Dataset` of
                `(features, labels)` batches, run on every worker; read the
                worker's own part of the data with
                `input_context.input_pipeline_id` of
                `input_context.num_input_pipelines` (`din_tf.data.input_fn`
                does), and repeat it: a worker must not run out. Build the
                dataset inside the function (a dataset made on this process
                cannot be sent to a worker). Each worker
                builds it once; a later `fit` with the same `dataset_fn`
                continues where the previous one stopped.
            steps: the step count to reach (a multiple of steps_per_execution).
            sync_every: steps between waits for every scheduled step to finish
                (losses are then reported, checkpoints saved); None: at
                checkpoints and at the end only. 1 with one worker makes
                training synchronous.
            on_sync: optional `on_sync(step, mean_losses)` called after each wait.

        Returns:
            a list of `(step, {"loss", "ctr_loss", "aux_loss", "reg_loss"})`,
            the mean of each term over the steps since the previous entry.
        """
        if not isinstance(steps, int) or steps < 0 or steps % self.steps_per_execution:
            raise ValueError(f"Invalid steps={steps!r}; expected a non-negative multiple "
                             f"of steps_per_execution={self.steps_per_execution}.")
        if sync_every is not None and not (isinstance(sync_every, int) and sync_every > 0):
            raise ValueError(f"Invalid sync_every={sync_every!r}; expected a positive integer "
                             "or None.")
        iterator = self.per_worker_iterator(dataset_fn)
        interval = min([x for x in (sync_every, self.checkpoint_every, steps) if x] or [1])
        interval = max(interval, self.steps_per_execution)
        history, pending = [], []
        step = self.step
        while step < steps:
            pending.append(self.coordinator.schedule(self._execute, args=(iterator,)))
            step += self.steps_per_execution
            if step % interval == 0 or step >= steps:
                self.coordinator.join()
                # Steps that ran concurrently may have counted once in the
                # optimizer (Adam's bias correction, learning-rate schedules).
                self.model.optimizer.iterations.assign(self._step)
                fetched = [p.fetch() for p in pending]
                means = {k: float(np.mean([f[k] for f in fetched])) for k in fetched[0]}
                pending = []
                history.append((step, means))
                if on_sync is not None:
                    on_sync(step, means)
                if self.checkpoint_manager is not None and (
                        step >= steps or (self.checkpoint_every
                                          and step % self.checkpoint_every == 0)):
                    self.checkpoint_manager.save(checkpoint_number=step)
        return history

    def per_worker_iterator(self, dataset_fn):
        """The iterator over `dataset_fn`'s dataset on every worker (made once
        per `dataset_fn`), for functions scheduled on the coordinator.

        `dataset_fn` receives a `tf.distribute.InputContext` naming the worker:
        `num_input_pipelines` is the number of workers and `input_pipeline_id`
        this worker's index, a scalar int32 tensor. (The strategy's own
        context says 0 of 1 on every worker, for it has no synchronous
        replicas across workers; the index is only known when the function
        runs on its worker.)
        """
        if dataset_fn is not self._dataset_fn:
            workers = _worker_count(self.strategy)

            def worker_dataset_fn(strategy_context):
                context = tf.distribute.InputContext(
                    num_input_pipelines=workers,
                    input_pipeline_id=tf.distribute.coordinator
                    .experimental_get_current_worker_index(),
                    num_replicas_in_sync=strategy_context.num_replicas_in_sync)
                return dataset_fn(context)

            def per_worker_dataset():
                return self.strategy.distribute_datasets_from_function(worker_dataset_fn)

            per_worker = self.coordinator.create_per_worker_dataset(per_worker_dataset)
            self._dataset_fn, self._iterator = dataset_fn, iter(per_worker)
        return self._iterator

    def local_model(self):
        """A copy of the model with every weight on this process (sharded
        tables concatenated), outside any strategy: evaluate it, export it
        (`din_tf.export.export_saved_model`), or save it like any model."""
        if tf.distribute.has_strategy():
            raise RuntimeError("ParameterServerTrainer.local_model: call it outside "
                               "strategy.scope(), or its weights would be created on the "
                               "parameter servers again.")
        copy = type(self.model).from_config(self.model.get_config())
        copy.build()
        shapes = [tuple(w.shape) for w in self.model.weights]
        if [tuple(w.shape) for w in copy.weights] != shapes:
            raise RuntimeError(f"{type(self.model).__name__}: the copy's weights differ in number "
                               f"or shape from the trained model's ({len(copy.weights)} vs "
                               f"{len(shapes)}).")
        for target, source in zip(copy.weights, self.model.weights):
            target.assign(read_whole(source))
        return copy


def _worker_count(strategy):
    # The strategy keeps its cluster resolver privately (its public
    # `cluster_resolver` is None); TF_CONFIG, as make_strategy reads it, else.
    resolver = (getattr(strategy, "_cluster_resolver", None)
                or tf.distribute.cluster_resolver.TFConfigClusterResolver())
    workers = resolver.cluster_spec().as_dict().get("worker", [])
    if not workers:
        raise ValueError("ParameterServerTrainer: the strategy's cluster lists no workers.")
    return len(workers)


def shard_devices(model):
    """{weight path: [device of each shard]} of the model's weights that are
    split in row shards (the partitioner's decision, for logs and tests)."""
    return {weight.path: [shard.device for shard in weight.value.variables]
            for weight in model.weights if isinstance(weight.value, _ShardedVariable)}


def read_whole(variable):
    """The value of a (Keras) variable as one NumPy array, shards concatenated."""
    value = variable.value if isinstance(variable, keras.Variable) else variable
    if isinstance(value, _ShardedVariable):
        return np.concatenate([shard.numpy() for shard in value.variables], axis=0)
    return value.numpy()


def shard_views(variables, strategy):
    """(TensorFlow variables, Keras views): one entry per shard of each sharded
    variable, and each other variable as itself.

    A view is a Keras variable over the existing TensorFlow variable (a
    variable creator hands it the shard instead of creating one), for the
    optimizer to keep one slot per shard, beside it.
    """
    tf_variables, views = [], []
    with strategy.scope():
        for variable in variables:
            value = variable.value
            if not isinstance(value, _ShardedVariable):
                tf_variables.append(value)
                views.append(variable)
                continue
            for index, shard in enumerate(value.variables):
                tf_variables.append(shard)
                views.append(_view(shard, f"{variable.path.replace('/', '.')}.part_{index}",
                                   variable.trainable))
    return tf_variables, views


def _view(variable, name, trainable):
    def hand_over(next_creator, **kwargs):
        del next_creator, kwargs
        return variable

    with tf.variable_creator_scope(hand_over):
        return keras.Variable(initializer="zeros", shape=variable.shape, dtype=variable.dtype,
                              trainable=trainable, name=name)
