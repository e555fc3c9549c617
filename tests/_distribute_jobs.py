"""Training jobs that tests/test_distribute.py runs in fresh processes (device
configuration and the multi-worker runtime must be set before TF starts).

    python -m tests._distribute_jobs trajectories one|mirrored OUT.npz
    TF_CONFIG=... python -m tests._distribute_jobs worker OUT.npz
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

STEPS = 5
GLOBAL_BATCH = 32
CLIP_NORM = 0.05  # far below the gradient norm, so every step is clipped


def _split_cpu(count):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count)


class _StepLosses:
    """Callback factory: per-step (not running-mean) logs."""

    @staticmethod
    def make():
        import keras

        class Recorder(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.steps = []

            def on_train_batch_begin(self, batch, logs=None):
                self.model.reset_metrics()  # logs are then this step's values

            def on_train_batch_end(self, batch, logs=None):
                # Read the synced metric state: step logs hold the mean of the
                # replicas' local results, which for AUC is not the global AUC.
                results = self.model.get_metrics_result()
                self.steps.append({k: float(np.asarray(v).reshape(())) for k, v in results.items()})

        return Recorder()


def _data(seed, n_users=9, n_items=30, n_categories=6):
    from tests.models.conftest import make_batch
    features, labels = make_batch(n=GLOBAL_BATCH * STEPS, n_users=n_users, n_items=n_items,
                                  n_categories=n_categories, seed=seed)
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(GLOBAL_BATCH)


def _frequencies(vocab, seed):
    return np.random.default_rng(seed).integers(1, 20, size=vocab)


def _dien(strategy):
    import keras

    from din_tf import models, training
    keras.utils.set_random_seed(11)
    with strategy.scope():
        # PReLU instead of Dice: Dice normalises with each replica's half batch
        # in training, which no single-device run reproduces.
        model = models.DIEN(9, 30, 6, activation="prelu", embedding_dim=6,
                            hidden_units=(16, 8), hidden_size=6)
        model.compile(regularizer=training.MiniBatchAwareL2(
            1e-2, {"mid_embedding": _frequencies(30, 1), "cat_embedding": _frequencies(6, 2)}))
        _build_optimizer(model)
    return model


def _din_repo_rows(strategy):
    import keras

    from din_tf import models, training
    keras.utils.set_random_seed(12)
    with strategy.scope():
        model = models.DINRepoModel(30, 6, kind="din", item_dim=8, category_dim=8)
        model.compile(optimizer=training.LazyAdam(0.01), embedding_update="rows",
                      metrics=[keras.metrics.AUC(name="auc")],
                      gradient_clip_norm=CLIP_NORM,
                      regularizer=training.MiniBatchAwareL2(
                          1e-2, {"item_embedding": _frequencies(30, 3)}))
        _build_optimizer(model)
    return model


def _schema_data(seed):
    from tests.models.test_schema_models import side_feature_batch, side_feature_schema
    features, labels = side_feature_batch(side_feature_schema(width=6),
                                          n=GLOBAL_BATCH * STEPS, seed=seed)
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(GLOBAL_BATCH)


def _schema_dien_rows(strategy):
    """DIEN built from a schema with side features (a multi-valued feature,
    a context and a numeric feature, two sequences): aux loss with side
    features, per-table MBA, row updates."""
    import keras

    from din_tf import models, training
    from tests.models.test_schema_models import side_feature_schema
    keras.utils.set_random_seed(13)
    schema = side_feature_schema(width=6)
    with strategy.scope():
        model = models.DIEN(schema=schema, activation="prelu", hidden_units=(16, 8),
                            hidden_size=6, mask_history_sum=True)
        model.compile(optimizer=training.LazyAdam(0.01), embedding_update="rows",
                      regularizer=training.MiniBatchAwareL2(1e-2, {
                          "item_embedding": _frequencies(schema.feature("item").rows, 4),
                          "genres_embedding": _frequencies(schema.feature("genres").rows, 5)}))
        _build_optimizer(model)
    return model


def _build_optimizer(model):
    # Slots created before fit: tf.function then traces the train step once
    # instead of twice (a first trace that creates variables is redone).
    model.optimizer.build(model.trainable_variables)


def _first_gradient_norm(model, dataset):
    from din_tf.training import global_norm_as_coded
    features, labels = next(iter(dataset))
    with tf.GradientTape() as tape:
        _, losses = model.compute_losses(features, labels, training=True)
    return float(global_norm_as_coded(tape.gradient(losses["loss"],
                                                    model.trainable_variables)))


def _runner_evaluation(model):
    """The experiment runner's test-set evaluation of `model` on fixed data."""
    from types import SimpleNamespace

    from din_tf.experiments import runner
    features, labels = next(iter(_data(9).unbatch().batch(GLOBAL_BATCH * STEPS)))
    groups = np.asarray(features["user_id"])
    data = SimpleNamespace(test=SimpleNamespace(label=np.asarray(labels)), test_groups=groups)
    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(GLOBAL_BATCH)
    order = np.arange(len(groups))
    return runner._evaluate(model, runner.TestSet(dataset, order, data, "original"))


def _train(build, strategy, seed):
    model = build(strategy)
    recorder = _StepLosses.make()
    dataset = _schema_data(seed) if build is _schema_dien_rows else _data(seed)
    model.fit(dataset, epochs=1, verbose=0, callbacks=[recorder])
    return model, recorder.steps


def trajectories(mode, out):
    """Trains both models for STEPS steps on one device ("one") or two mirrored
    CPU replicas ("mirrored"); saves per-step losses and final weights."""
    _split_cpu(2)
    from din_tf.distribute import make_strategy
    strategy = (make_strategy("default") if mode == "one"
                else make_strategy("mirrored", ["/cpu:0", "/cpu:1"]))
    arrays = {"replicas": np.array(strategy.num_replicas_in_sync)}
    for name, build, seed in (("dien_dense", _dien, 5), ("din_repo_rows", _din_repo_rows, 6),
                              ("schema_dien_rows", _schema_dien_rows, 7)):
        model, steps = _train(build, strategy, seed)
        if build is not _schema_dien_rows:
            for key, value in _runner_evaluation(model).items():
                arrays[f"{name}/eval/{key}"] = np.array(value)
        for key in steps[0]:
            arrays[f"{name}/loss/{key}"] = np.array([step[key] for step in steps])
        for i, weight in enumerate(model.weights):
            arrays[f"{name}/weight/{i}"] = weight.numpy()
        if mode == "one":
            initial = build(strategy)
            for i, weight in enumerate(initial.weights):
                arrays[f"{name}/initial/{i}"] = weight.numpy()
            if name == "din_repo_rows":
                arrays[f"{name}/first_gradient_norm"] = np.array(
                    _first_gradient_norm(initial, _data(seed)))
    np.savez(out, **arrays)


def worker(out):
    # The multi-worker runtime must start before any other TF op.
    from din_tf.distribute import make_strategy
    strategy = make_strategy("multi_worker")
    model = _din_repo_rows(strategy)
    initial = [w.numpy() for w in model.weights]
    recorder = _StepLosses.make()
    model.fit(_data(7).repeat(), epochs=1, steps_per_epoch=3, verbose=0, callbacks=[recorder])
    arrays = {f"final_{i}": w.numpy() for i, w in enumerate(model.weights)}
    arrays.update({f"initial_{i}": w for i, w in enumerate(initial)})
    arrays["loss"] = np.array([step["loss"] for step in recorder.steps])
    arrays["auc"] = np.array([step["auc"] for step in recorder.steps])
    arrays["replicas"] = np.array(strategy.num_replicas_in_sync)
    np.savez(out, **arrays)


if __name__ == "__main__":
    {"trajectories": trajectories, "worker": worker}[sys.argv[1]](*sys.argv[2:])
