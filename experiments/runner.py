"""Runs one experiment config: data → model → fit with per-epoch evaluation →
final evaluation → SavedModel export, with resumable state in `model_dir`."""

import csv
import json
import os
import sys
import weakref

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from din_tf import models, training
from din_tf.data.frequency import feature_frequencies
from experiments import config as C
from experiments import evaluation, inputs, plot

# Config keys that may change between runs sharing a model_dir.
RESUMABLE_KEYS = ("trainer.epochs", "data.eval_batch_size", "export.dice_statistics",
                  "runtime.strategy", "runtime.jit_compile", "data.reviews", "data.meta",
                  "data.processed_dir", "trainer.steps_per_execution")


class RunnerError(Exception):
    """A run that cannot proceed; the message says why and what to do."""


def run(cfg, model_dir, mode="train_and_eval", export=True):
    # A failed start must leave model_dir as it was, or the corrected command
    # would be refused as "a run with a different config": the config and the
    # model's options are checked first, model_dir only read, and config.json
    # written once the model is built and compiled on the data.
    cfg.validate()
    _check_model_options(cfg.model)
    _prepare_model_dir(model_dir, cfg)
    keras.utils.set_random_seed(cfg.runtime.seed)
    if cfg.runtime.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = _strategy(cfg.runtime.strategy)
    data = inputs.load(cfg.data, os.path.join(model_dir, "prepared_data"))
    logging.info("data: %d train rows, %d test rows, vocabularies users=%d items=%d "
                 "categories=%d", len(data.train), len(data.test), data.n_users, data.n_items,
                 data.n_categories)
    with strategy.scope():
        model = models.get_model(cfg.model.name, n_users=data.n_users, n_items=data.n_items,
                                 n_categories=data.n_categories, **cfg.model.options)
        _compile(model, cfg, data)
    os.makedirs(model_dir, exist_ok=True)
    _write_json(os.path.join(model_dir, "config.json"), cfg.as_dict())
    train_ds, test_ds = inputs.datasets(data, cfg.data, model.uses_aux_loss, cfg.runtime.seed)
    results = {}
    last_epoch = None  # the final epoch's test results, when this process trained it
    if mode in ("train", "train_and_eval"):
        last_epoch = _train(model, cfg, model_dir, train_ds, test_ds, data,
                            evaluate=mode != "train")
    else:
        _restore(model, model_dir)
    if mode in ("eval", "train_and_eval"):
        # The final weights were just scored after the last epoch: not again.
        results = dict(last_epoch) if last_epoch is not None else _evaluate(model, test_ds, data)
        _write_json(os.path.join(model_dir, "eval.json"), results)
        print(_summary(cfg, results))
    if mode == "export" or (mode == "train_and_eval" and export):
        from din_tf.export import export_saved_model
        path = os.path.join(model_dir, "export", "1")
        export_saved_model(model, path, dice_statistics=cfg.export.dice_statistics,
                           overwrite=True)
        results["export_dir"] = path
        print(f"SavedModel written to {path}")
    return results


def _strategy(name):
    from din_tf.distribute import make_strategy
    return make_strategy(name)


def _check_model_options(model_cfg):
    """Builds the model once on two-row vocabularies (a fraction of a second),
    so a bad option value fails before data preparation and model_dir."""
    try:
        models.get_model(model_cfg.name, n_users=2, n_items=2, n_categories=2,
                         **model_cfg.options)
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
    t = cfg.trainer
    optimizer = _optimizer(t.optimizer, t.learning_rate, model)
    kwargs = {}
    if t.embedding_update is not None:
        kwargs["embedding_update"] = t.embedding_update
    if t.gradient_clip_norm is not None:
        kwargs["gradient_clip_norm"] = t.gradient_clip_norm
    if t.mba_strength:
        kwargs["regularizer"] = training.MiniBatchAwareL2(
            t.mba_strength, _frequency_tables(model, data))
    model.compile(optimizer=optimizer, jit_compile=cfg.runtime.jit_compile,
                  steps_per_execution=t.steps_per_execution, **kwargs)


def _optimizer(name, learning_rate, model):
    choices = {
        "adam": lambda lr: keras.optimizers.Adam(lr or 1e-3, epsilon=1e-8),
        "lazy_adam": lambda lr: training.LazyAdam(lr or 1e-3, epsilon=1e-8),
        "sgd": lambda lr: keras.optimizers.SGD(lr or 1.0),
        "adagrad": lambda lr: keras.optimizers.Adagrad(lr or 0.01),
    }
    if name == "original":
        optimizer = model.default_optimizer()
        if learning_rate is not None:
            optimizer.learning_rate = learning_rate
        return optimizer
    if name not in choices:
        raise ValueError(f"Invalid trainer.optimizer={name!r}; expected one of "
                         f"{sorted(choices) + ['original']}.")
    return choices[name](learning_rate)


def _frequency_tables(model, data):
    counts = feature_frequencies(data.train, data.n_users, data.n_items, data.n_categories)
    by_feature = {"user_id": counts["user_id"], "item_id": counts["item_id"],
                  "category_id": counts["category_id"]}
    names = {"uid_embedding": "user_id", "mid_embedding": "item_id",
             "cat_embedding": "category_id", "item_embedding": "item_id",
             "category_embedding": "category_id"}
    return {t.name: by_feature[names[t.name]] for t in model.embedding_tables()
            if t.name in names}


class EpochEvaluation(keras.callbacks.Callback):
    """Evaluates on the test set after every epoch, adds `test_*` entries to the
    logs (so TensorBoard sees them) and rewrites metrics.json/.csv and
    curves.png in `model_dir`."""

    def __init__(self, test_ds, data, model_dir):
        super().__init__()
        self.test_ds, self.data, self.model_dir = test_ds, data, model_dir
        self.history = _read_history(model_dir)
        self.last_results = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        self.last_results = _evaluate(self.model, self.test_ds, self.data)
        for key, value in self.last_results.items():
            logs[f"test_{key}"] = value
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
        self.history = [h for h in self.history if h["epoch"] < row["epoch"]] + [row]
        _write_json(os.path.join(self.model_dir, "metrics.json"), self.history)
        _write_csv(os.path.join(self.model_dir, "metrics.csv"), self.history)
        plot.write_curves(os.path.join(self.model_dir, "curves.png"), self.history)
        print(("\n" if sys.stdout.isatty() else "") + f"epoch {epoch + 1}: " + ", ".join(
            f"{k}={logs[k]:.4f}" for k in ("loss", "test_auc", "test_gauc") if k in logs))


def _train(model, cfg, model_dir, train_ds, test_ds, data, evaluate):
    """Trains (resuming) to cfg.trainer.epochs; returns the final epoch's test
    results when `evaluate` and this call trained that epoch, else None."""
    state_path = os.path.join(model_dir, "state.json")
    epochs = cfg.trainer.epochs
    if os.path.exists(state_path):
        with open(state_path, encoding="utf-8") as f:
            done = json.load(f)["completed_epochs"]
        if done >= epochs:
            logging.info("model_dir already holds %d trained epochs; skipping training", done)
            _restore(model, model_dir)
            return None
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(model_dir, "backup")),
        keras.callbacks.ModelCheckpoint(
            os.path.join(model_dir, "checkpoints", "epoch_{epoch:03d}.weights.h5"),
            save_weights_only=True),
        keras.callbacks.TensorBoard(os.path.join(model_dir, "tensorboard")),
    ]
    if cfg.trainer.halve_lr_each_epoch:
        callbacks.append(training.HalveLearningRateEachEpoch())
    epoch_evaluation = EpochEvaluation(test_ds, data, model_dir) if evaluate else None
    if epoch_evaluation is not None:
        callbacks.append(epoch_evaluation)
    os.makedirs(os.path.join(model_dir, "checkpoints"), exist_ok=True)
    model.fit(train_ds, epochs=epochs, steps_per_epoch=cfg.trainer.steps_per_epoch,
              callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2,
              shuffle=False)  # the dataset shuffles itself (data.shuffle)
    model.save_weights(os.path.join(model_dir, "final.weights.h5"))
    _write_json(state_path, {"completed_epochs": epochs})
    return epoch_evaluation.last_results if epoch_evaluation is not None else None


def _restore(model, model_dir):
    path = os.path.join(model_dir, "final.weights.h5")
    if not os.path.exists(path):
        checkpoints = sorted(os.listdir(os.path.join(model_dir, "checkpoints"))) \
            if os.path.isdir(os.path.join(model_dir, "checkpoints")) else []
        if not checkpoints:
            raise RunnerError(f"--model_dir {model_dir!r} has no trained weights; run "
                              "--mode=train (or train_and_eval) first.")
        path = os.path.join(model_dir, "checkpoints", checkpoints[-1])
    logging.info("restoring weights from %s", path)
    model.load_weights(path)


_TEST_STEPS = weakref.WeakKeyDictionary()  # model -> its traced evaluation step


def _evaluate(model, test_ds, data):
    """One pass over the test set: the model's losses (averaged over batches,
    as `model.evaluate` reports them) and the offline metrics of its
    probabilities (`evaluation.score`). Under a multi-replica strategy,
    Keras' distributed `evaluate` and `predict` (two passes) instead."""
    if model.distribute_strategy.num_replicas_in_sync > 1:
        losses = model.evaluate(test_ds, verbose=0, return_dict=True)
        probabilities = model.predict(test_ds, verbose=0)
        scores = evaluation.score(data.test.label, probabilities, data.test_groups)
        return {**{k: float(v) for k, v in losses.items()}, **scores}
    step = _TEST_STEPS.get(model)
    if step is None:
        def test_step(x, y):
            outputs, losses = model.compute_losses(x, y, training=False)
            return losses, outputs["probability"]
        step = tf.function(test_step, jit_compile=bool(model.jit_compile),
                           reduce_retracing=True)
        _TEST_STEPS[model] = step
    totals, batches, probabilities = {}, 0, []
    for batch in test_ds:
        x, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        losses, probability = step(x, y)
        for key, value in losses.items():
            totals[key] = totals.get(key, 0.0) + float(value)
        batches += 1
        probabilities.append(np.asarray(probability).reshape(-1))
    if not batches:
        raise RunnerError("the test set is empty; nothing to evaluate.")
    scores = evaluation.score(data.test.label, np.concatenate(probabilities), data.test_groups)
    return {**{k: v / batches for k, v in totals.items()}, **scores}


def _summary(cfg, results):
    keys = ("auc", "gauc", "dinrepo_gauc", "dien_calc_auc", "loss")
    return f"{cfg.model.name} ({cfg.data.protocol} protocol) test: " + ", ".join(
        f"{k}={results[k]:.4f}" for k in keys if k in results)


def _read_history(model_dir):
    path = os.path.join(model_dir, "metrics.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    return []


def _write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _write_csv(path, rows):
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "epoch", k))
    tmp = path + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
