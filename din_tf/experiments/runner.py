"""Runs one experiment config: data → model → fit with per-epoch evaluation →
final evaluation → SavedModel export, with resumable state in `model_dir`.

A run killed at any point (even SIGKILL, even while writing a file) and
started again with the same command resumes after its last finished epoch and
ends with the same weights and metrics, bit for bit, as a run never
interrupted (see `_train`)."""

import contextlib
import json
import os
import re
import sys
import weakref
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from din_tf import models, training
from din_tf.training import recipes
from din_tf._pause_for_kill_test import pause_if_requested
from din_tf._pause_for_kill_test import requested as requested_pause
from din_tf.data.frequency import feature_frequencies
from din_tf.experiments import atomic_files, backup, evaluation, inputs, log_inputs, plot
from din_tf.experiments import config as C

# Config keys that may change between runs sharing a model_dir.
RESUMABLE_KEYS = ("trainer.epochs", "data.eval_batch_size", "export.dice_statistics",
                  "runtime.strategy", "runtime.jit_compile", "data.reviews", "data.meta",
                  "data.processed_dir", "trainer.steps_per_execution", "evaluation.scoring",
                  "data.data_dir")


class RunnerError(Exception):
    """A run that cannot proceed; the message says why and what to do."""


def run(cfg, model_dir, mode="train_and_eval", export=True):
    # A failed start must leave model_dir as it was, or the corrected command
    # would be refused as "a run with a different config": the config and the
    # model's options are checked first, model_dir only read, and config.json
    # written once the model is built and compiled on the data.
    cfg.validate()
    _check_model_options(cfg)
    _prepare_model_dir(model_dir, cfg)
    keras.utils.set_random_seed(cfg.runtime.seed)
    if cfg.runtime.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    training_run = mode in ("train", "train_and_eval")
    on_parameter_servers = cfg.runtime.strategy == "parameter_server"
    # Evaluating or exporting a parameter-server run reads its saved weights
    # on this process: no cluster needed.
    strategy = (_strategy(cfg.runtime) if training_run or not on_parameter_servers
                else tf.distribute.get_strategy())
    source = _data_source(cfg)
    data = source.load(cfg.data, os.path.join(model_dir, "prepared_data"))
    with strategy.scope():
        model = _build_model(cfg, data)
        _compile(model, cfg, data)
    os.makedirs(model_dir, exist_ok=True)
    _write_json(os.path.join(model_dir, "config.json"), cfg.as_dict())
    test_ds, test_order = source.test_set(data, cfg.data, model.uses_aux_loss,
                                          cfg.runtime.seed)
    test = TestSet(test_ds, test_order, data, cfg.evaluation.scoring)
    results = {}
    last_epoch = None  # the final epoch's test results, when this process trained it
    if training_run and on_parameter_servers:
        last_epoch, model = _train_on_parameter_servers(model, cfg, model_dir, test,
                                                        evaluate=mode != "train")
    elif training_run:
        last_epoch = _train(model, cfg, model_dir, test, evaluate=mode != "train")
    else:
        _restore(model, model_dir)
    if mode in ("eval", "train_and_eval"):
        # The final weights were just scored after the last epoch: not again.
        results = dict(last_epoch) if last_epoch is not None else _evaluate(model, test)
        _write_json(os.path.join(model_dir, "eval.json"),
                    {**results, "evaluation": _evaluation_description(cfg)})
        print(_summary(cfg, results))
    if mode == "export" or (mode == "train_and_eval" and export):
        from din_tf.export import export_saved_model
        path = os.path.join(model_dir, "export", "1")
        # Rows scored as evaluation.scoring="served"; an own log's export takes
        # the raw values and applies the fitted lookups itself.
        export_saved_model(model, path, dice_statistics=cfg.export.dice_statistics,
                           overwrite=True, encoder=getattr(data, "encoder", None))
        results["export_dir"] = path
        print(f"SavedModel written to {path}")
    return results


def _data_source(cfg):
    """The module that loads the data and forms its batches: the papers'
    protocols on Amazon files (`inputs`), or your own log (`log_inputs`)."""
    return log_inputs if log_inputs.uses_log(cfg.data) else inputs


def _build_model(cfg, data):
    if isinstance(data, log_inputs.LogData):
        logging.info("data: %d train rows, %d test rows, tables %s", len(data.train),
                     len(data.test), {t: m[0].rows for t, m in data.schema.tables().items()})
        return models.get_model(cfg.model.name, schema=data.schema, **cfg.model.options)
    logging.info("data: %d train rows, %d test rows, vocabularies users=%d items=%d "
                 "categories=%d", len(data.train), len(data.test), data.n_users, data.n_items,
                 data.n_categories)
    return models.get_model(cfg.model.name, n_users=data.n_users, n_items=data.n_items,
                            n_categories=data.n_categories, **cfg.model.options)


def _strategy(runtime):
    from din_tf.distribute import make_strategy
    if runtime.strategy == "parameter_server":
        return make_strategy(runtime.strategy, min_shard_bytes=runtime.min_shard_bytes)
    return make_strategy(runtime.strategy)


def _check_model_options(cfg):
    """Builds the model once on two-row vocabularies (a fraction of a second),
    so a bad option value (or schema) fails before data preparation and
    model_dir."""
    model_cfg = cfg.model
    sizes = dict(n_users=2, n_items=2, n_categories=2)
    if log_inputs.uses_log(cfg.data):
        schema = log_inputs.declared_schema(cfg.data)
        sizes = {"schema": schema.replace_features(**{
            f.name: {"size": f.size or 2} for f in schema.categorical_features})}
    try:
        models.get_model(model_cfg.name, **sizes, **model_cfg.options)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Invalid model.options={model_cfg.options!r} for "
                         f"{model_cfg.name}: {e}") from None


def _prepare_model_dir(model_dir, cfg):
    """Checks, without writing anything, that model_dir can be written and that
    a run already in it has a config this one may resume."""
    _check_writable(model_dir)
    path = os.path.join(model_dir, "config.json")
    current = cfg.as_dict()
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            previous = json.load(f)
        changed = [k for k in C.differences(previous, current) if k not in RESUMABLE_KEYS]
        if changed:
            raise RunnerError(
                f"--model_dir {model_dir!r} holds a run with a different config "
                f"(changed: {', '.join(changed)}); resuming it with this config would mix "
                "two experiments. Use a new --model_dir, or restore those values.")


def _check_writable(model_dir):
    # The nearest existing ancestor decides whether model_dir can be created.
    existing = os.path.abspath(model_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        reason = f"{existing!r} is a file, not a directory"
    elif not os.access(existing, os.W_OK | os.X_OK):
        reason = f"no write permission on {existing!r}"
    else:
        return
    raise RunnerError(f"--model_dir {model_dir!r} is not writable: {reason}.")


def _compile(model, cfg, data):
    """Compiles `model` as `cfg.trainer` says; what it leaves to the model's
    default (optimizer "original", None) is the model's training recipe's
    (`din_tf.training.recipes`)."""
    t = cfg.trainer
    recipe = model.training_recipe
    optimizer = _optimizer(t.optimizer, t.learning_rate, recipe)
    regularizer = (training.MiniBatchAwareL2(t.mba_strength, _frequency_tables(model, data))
                   if t.mba_strength else None)
    model.compile(optimizer=optimizer, embedding_update=t.embedding_update,
                  gradient_clip_norm=t.gradient_clip_norm, regularizer=regularizer,
                  recipe=recipe, jit_compile=cfg.runtime.jit_compile,
                  steps_per_execution=t.steps_per_execution)


def _optimizer(name, learning_rate, recipe):
    """trainer.optimizer `name` at `learning_rate`: "original" is `recipe`'s
    optimizer (a given rate replaces its schedule), any other a key of
    `recipes.OPTIMIZERS` (None: that optimizer's rate there)."""
    if name == "original":
        return recipe.make_optimizer(learning_rate)
    if name not in recipes.OPTIMIZERS:
        raise ValueError(f"Invalid trainer.optimizer={name!r}; expected one of "
                         f"{sorted(recipes.OPTIMIZERS) + ['original']}.")
    return recipes.make_optimizer(name, learning_rate)


def _frequency_tables(model, data):
    """{embedding layer name: training counts of its rows} for mini-batch-aware
    L2; a DeepFM's `{table}_linear` tables count like `{table}_embedding`."""
    if isinstance(data, log_inputs.LogData):
        by_table = data.frequencies()
    else:
        counts = feature_frequencies(data.train, data.n_users, data.n_items, data.n_categories)
        # Each feature's counts go to the table its model's schema reads it from.
        by_table = {f"{f.table_name}_embedding": counts[f.name]
                    for f in model.schema.categorical_features if f.name in counts}
    by_table.update({name.replace("_embedding", "_linear"): value
                     for name, value in by_table.items()})
    layers = {t.name for t in model.embedding_tables()}
    return {name: value for name, value in by_table.items() if name in layers}


class EpochEvaluation(keras.callbacks.Callback):
    """Evaluates on the test set after every epoch, adds `test_*` entries to the
    logs (so TensorBoard sees them) and rewrites metrics.json/.csv and
    curves.png in `model_dir`."""

    def __init__(self, test, model_dir):
        super().__init__()
        self.test, self.model_dir = test, model_dir
        self.history = _read_history(model_dir)
        self.last_results = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        self.last_results = _evaluate(self.model, self.test)
        for key, value in self.last_results.items():
            logs[f"test_{key}"] = value
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
        self.history = [h for h in self.history if h["epoch"] < row["epoch"]] + [row]
        _write_json(os.path.join(self.model_dir, "metrics.json"), self.history)
        _write_csv(os.path.join(self.model_dir, "metrics.csv"), self.history)
        plot.write_curves(os.path.join(self.model_dir, "curves.png"), self.history)
        print(("\n" if sys.stdout.isatty() else "") + f"epoch {epoch + 1}: " + ", ".join(
            f"{k}={logs[k]:.4f}" for k in ("loss", "test_auc", "test_gauc") if k in logs))


def _train(model, cfg, model_dir, test, evaluate):
    """Trains to cfg.trainer.epochs one epoch at a time, resuming after the last
    finished epoch saved in `model_dir/backup`; returns the final epoch's test
    results when `evaluate` and this call trained that epoch, else None.

    A resumed run ends bit-identical to an uninterrupted one: the backup holds
    the weights and optimizer state of the finished epoch, and everything
    else an epoch depends on is a function of its number (its batches and
    negatives, `inputs.training_epoch`; its learning rate,
    `HalveLearningRateEachEpoch`). Each epoch's files are written after its
    evaluation row (metrics.json), so a run killed in between re-trains the
    epoch and rewrites the same row. Every file is written atomically
    (`atomic_files`, `backup`)."""
    data = test.data
    state_path = os.path.join(model_dir, "state.json")
    epochs = cfg.trainer.epochs
    if _training_finished(model_dir, epochs):
        _restore(model, model_dir)
        return None
    callbacks = [keras.callbacks.TensorBoard(os.path.join(model_dir, "tensorboard"))]
    if cfg.trainer.halve_lr_each_epoch:
        # Read before the restore below (which loads a later epoch's rate).
        initial_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        callbacks.append(training.HalveLearningRateEachEpoch(initial_learning_rate=initial_rate))
    epoch_evaluation = EpochEvaluation(test, model_dir) if evaluate else None
    if epoch_evaluation is not None:
        callbacks.append(epoch_evaluation)
    if requested_pause(PAUSE_MID_SECOND_EPOCH):
        callbacks.append(_PauseMidSecondEpoch())
    backup_dir = os.path.join(model_dir, "backup")
    first_epoch = backup.restore(model, backup_dir)
    if first_epoch > epochs:
        raise RunnerError(f"--model_dir {model_dir!r} holds a backup after {first_epoch} epochs, "
                          f"more than trainer.epochs={epochs}; raise trainer.epochs or use a "
                          "new --model_dir.")
    if first_epoch:
        logging.info("resuming after epoch %d from %s", first_epoch, backup_dir)
    checkpoint_dir = os.path.join(model_dir, "checkpoints")
    atomic_files.remove_partials(checkpoint_dir)
    atomic_files.remove_partials(model_dir)
    for epoch in range(first_epoch, epochs):
        epoch_data = _data_source(cfg).training_epoch(
            data, cfg.data, model.uses_aux_loss, cfg.runtime.seed, epoch,
            cfg.trainer.steps_per_epoch)
        model.fit(epoch_data, initial_epoch=epoch, epochs=epoch + 1,
                  steps_per_epoch=cfg.trainer.steps_per_epoch, callbacks=callbacks,
                  verbose=1 if sys.stdout.isatty() else 2, shuffle=False)
        atomic_files.write_weights(
            model, os.path.join(checkpoint_dir, f"epoch_{epoch + 1:03d}.weights.h5"))
        backup.save(model, backup_dir, epoch + 1)
    atomic_files.write_weights(model, os.path.join(model_dir, "final.weights.h5"))
    _write_json(state_path, {"completed_epochs": epochs})
    return epoch_evaluation.last_results if epoch_evaluation is not None else None


def _train_on_parameter_servers(model, cfg, model_dir, test, evaluate):
    """`_train` on a parameter-server cluster (this process is the chief):
    returns (the final epoch's test results or None, the trained model as a
    local copy with every weight on this process, for evaluation and export).

    Workers train asynchronously, each reading its own shard of the training
    rows (`worker_stream`); an epoch is `steps_per_epoch` steps of all workers
    together (default: the training rows / train_batch_size). After each
    epoch the chief gathers the weights, evaluates and writes the same files
    as `_train` (metrics, per-epoch weights). A restarted chief resumes from
    the cluster checkpoint of the last finished epoch (`ps_checkpoints/`:
    weights, optimizer slots, step); asynchronous training is not
    bit-reproducible, so unlike `_train` the resumed run is not identical to
    an uninterrupted one."""
    from din_tf.parameter_server import ParameterServerTrainer
    data = test.data
    state_path = os.path.join(model_dir, "state.json")
    epochs = cfg.trainer.epochs
    if _training_finished(model_dir, epochs):
        local = _local_model(model, cfg, data)
        _restore(local, model_dir)
        return None, local
    per_execution = cfg.trainer.steps_per_execution
    steps_per_epoch = cfg.trainer.steps_per_epoch or -(-len(data.train) //
                                                       cfg.data.train_batch_size)
    steps_per_epoch = -(-steps_per_epoch // per_execution) * per_execution
    # Read before the trainer restores a checkpoint (which holds a later
    # epoch's rate).
    initial_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    trainer = ParameterServerTrainer(
        model, model.distribute_strategy, checkpoint_dir=os.path.join(model_dir, "ps_checkpoints"),
        checkpoint_every=steps_per_epoch, steps_per_execution=per_execution)
    # Progress (and a wait for the workers) about ten times an epoch.
    progress_every = max(1, steps_per_epoch // 10 // per_execution) * per_execution
    first_epoch = trainer.step // steps_per_epoch
    if first_epoch:
        logging.info("resuming after epoch %d (step %d) from the cluster checkpoint",
                     first_epoch, trainer.step)
    halving = (training.HalveLearningRateEachEpoch(initial_learning_rate=initial_rate)
               if cfg.trainer.halve_lr_each_epoch else None)
    epoch_evaluation = EpochEvaluation(test, model_dir) if evaluate else None
    dataset_fn = _data_source(cfg).worker_stream(
        data, cfg.data, model.uses_aux_loss, cfg.runtime.seed,
        os.path.join(model_dir, "prepared_data", "train_rows"))
    checkpoint_dir = os.path.join(model_dir, "checkpoints")
    atomic_files.remove_partials(checkpoint_dir)
    atomic_files.remove_partials(model_dir)
    local = None
    for epoch in range(first_epoch, epochs):
        if halving is not None:
            model.optimizer.learning_rate = halving.learning_rate(epoch)

        def report(step, losses, epoch=epoch):
            print(f"epoch {epoch + 1}: step {step - epoch * steps_per_epoch}/"
                  f"{steps_per_epoch}: " + ", ".join(f"{k}={v:.4f}" for k, v in losses.items()),
                  flush=True)

        history = trainer.fit(dataset_fn, steps=(epoch + 1) * steps_per_epoch,
                              sync_every=progress_every, on_sync=report)
        local = _local_model(model, cfg, data, trainer)
        if epoch_evaluation is not None:
            epoch_evaluation.set_model(local)
            epoch_evaluation.on_epoch_end(epoch, _epoch_logs(history, epoch * steps_per_epoch))
        atomic_files.write_weights(
            local, os.path.join(checkpoint_dir, f"epoch_{epoch + 1:03d}.weights.h5"))
    if local is None:
        local = _local_model(model, cfg, data, trainer)
    atomic_files.write_weights(local, os.path.join(model_dir, "final.weights.h5"))
    _write_json(state_path, {"completed_epochs": epochs})
    return (epoch_evaluation.last_results if epoch_evaluation is not None else None), local


def _local_model(model, cfg, data, trainer=None):
    """The model on this process, compiled as configured (for its losses in
    evaluation): the trainer's gathered copy, or an untrained one to restore
    saved weights into."""
    if trainer is not None:
        local = trainer.local_model()
    else:
        local = type(model).from_config(model.get_config())
        local.build()
    _compile(local, cfg, data)
    return local


def _epoch_logs(history, first_step):
    """The step-weighted mean of each loss term over an epoch's `fit` history
    (entries `(step reached, mean losses since the previous entry)`)."""
    if not history:
        return {}
    steps = np.diff([first_step] + [step for step, _ in history])
    return {k: float(np.average([h[k] for _, h in history], weights=steps))
            for k in history[0][1]}


def _training_finished(model_dir, epochs):
    """Whether model_dir's state.json records `epochs` or more finished epochs."""
    state_path = os.path.join(model_dir, "state.json")
    if not os.path.exists(state_path):
        return False
    with open(state_path, encoding="utf-8") as f:
        done = json.load(f)["completed_epochs"]
    if done >= epochs:
        logging.info("model_dir already holds %d trained epochs; skipping training", done)
    return done >= epochs


PAUSE_MID_SECOND_EPOCH = "mid_second_epoch"


class _PauseMidSecondEpoch(keras.callbacks.Callback):
    """Test-only (added when `din_tf._pause_for_kill_test` asks for it): stops
    after the second batch of the second epoch, so a test can SIGKILL a run in
    the middle of an epoch that follows a finished one."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 1:
            pause_if_requested(PAUSE_MID_SECOND_EPOCH, f"epoch 2, batch {batch + 1}")


_CHECKPOINT_NAME = re.compile(r"epoch_(\d+)\.weights\.h5$")


def _restore(model, model_dir):
    """Loads final.weights.h5, else the newest per-epoch checkpoint; the
    temporary files of an interrupted write are never read."""
    path = os.path.join(model_dir, "final.weights.h5")
    if not os.path.exists(path):
        checkpoint_dir = os.path.join(model_dir, "checkpoints")
        numbered = sorted(
            (int(match.group(1)), name) for name in
            (os.listdir(checkpoint_dir) if os.path.isdir(checkpoint_dir) else [])
            if (match := _CHECKPOINT_NAME.match(name)))
        if not numbered:
            raise RunnerError(f"--model_dir {model_dir!r} has no trained weights; run "
                              "--mode=train (or train_and_eval) first.")
        path = os.path.join(checkpoint_dir, numbered[-1][1])
    logging.info("restoring weights from %s", path)
    if model.optimizer is not None and not model.optimizer.built:
        # The files hold the optimizer's state too; an unbuilt optimizer makes
        # Keras skip it with a warning that suggests something went wrong.
        model.optimizer.build(model.trainable_variables)
    model.load_weights(path)


class TestSet(NamedTuple):
    """What an evaluation needs: the test batches, the file row of each
    emitted prediction, the data (labels, groups) and how rows are scored."""
    dataset: tf.data.Dataset
    order: np.ndarray
    data: object  # inputs.ExperimentData or log_inputs.LogData
    scoring: str


def _evaluation_description(cfg):
    if cfg.evaluation.scoring == "served":
        return ("served: each test row scored as the export serves it (Dice moving "
                "statistics, padded history steps ignored), independent of its batch")
    batches = ("the DIEN repo's length-sorted batches" if cfg.data.batching == "dien_iterator"
               else "buckets of the training boundaries" if cfg.data.bucket_boundaries
               else "file order")
    return (f"original: test rows scored in batches of {cfg.data.eval_batch_size} formed as "
            f"{batches}, as the original code scores them")


_TEST_STEPS = weakref.WeakKeyDictionary()  # model -> its traced evaluation step


def _evaluate(model, test):
    """One pass over the test set: the model's losses (averaged over batches,
    as `model.evaluate` reports them) and the offline metrics of its
    probabilities (`evaluation.score`), put back in file order. Under a
    multi-replica strategy, Keras' distributed `evaluate` and `predict` (two
    passes) instead. `test.scoring="served"` scores within
    `row_independent_inference`, i.e. exactly what the export serves."""
    from din_tf.export import row_independent_inference
    if test.scoring not in evaluation.SCORINGS:
        raise ValueError(f"Invalid evaluation.scoring={test.scoring!r}; expected one of "
                         f"{list(evaluation.SCORINGS)}.")
    behaviour = (row_independent_inference(model) if test.scoring == "served"
                 else contextlib.nullcontext())
    with behaviour:
        if model.distribute_strategy.num_replicas_in_sync > 1:
            losses = model.evaluate(test.dataset, verbose=0, return_dict=True)
            emitted = np.asarray(model.predict(test.dataset, verbose=0)).reshape(-1)
            losses = {k: float(v) for k, v in losses.items()}
        else:
            losses, emitted = _one_pass(model, test)
    probabilities = np.empty(len(test.order), np.float64)
    probabilities[test.order] = emitted
    scores = evaluation.score(test.data.test.label, probabilities, test.data.test_groups)
    return {**losses, **scores}


def _one_pass(model, test):
    steps = _TEST_STEPS.setdefault(model, {})
    step = steps.get(test.scoring)  # the scoring is fixed when the step is traced
    if step is None:
        def test_step(x, y):
            outputs, losses = model.compute_losses(x, y, training=False)
            return losses, outputs["probability"]
        step = tf.function(test_step, jit_compile=bool(model.jit_compile),
                           reduce_retracing=True)
        steps[test.scoring] = step
    totals, batches, probabilities = {}, 0, []
    for batch in test.dataset:
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        losses, probability = step(x, y)
        for key, value in losses.items():
            totals[key] = totals.get(key, 0.0) + float(value)
        batches += 1
        probabilities.append(np.asarray(probability).reshape(-1))
    if not batches:
        raise RunnerError("the test set is empty; nothing to evaluate.")
    return {k: v / batches for k, v in totals.items()}, np.concatenate(probabilities)


def _summary(cfg, results):
    keys = ("auc", "gauc", "dinrepo_gauc", "dien_calc_auc", "loss")
    return (f"{cfg.model.name} ({cfg.data.protocol} protocol) test, "
            f"{cfg.evaluation.scoring} scoring: ") + ", ".join(
        f"{k}={results[k]:.4f}" for k in keys if k in results)


def _read_history(model_dir):
    path = os.path.join(model_dir, "metrics.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    return []


def _write_json(path, value):
    atomic_files.write_json(path, value)


def _write_csv(path, rows):
    atomic_files.write_csv(path, rows)
