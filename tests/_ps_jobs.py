"""Chief programs that tests/test_parameter_server.py runs in fresh processes
(the chief connects to the cluster before anything else in TF runs).

    TF_CONFIG=<chief> python -m tests._ps_jobs JOB OUT.npz [ARGS]

JOB: train, sync, every_model, input_shards or checkpoint (functions below).

Workers and parameter servers are `python -m din_tf.cluster_task` processes the
test starts.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# Tables of these sizes (width 18, float32: 216-288 KB) are split over both
# parameter servers at MIN_SHARD_BYTES; the dense layers' weights (at most
# 162 x 200 floats, 129.6 KB) stay whole.
VOCAB = {"n_users": 3000, "n_items": 4000, "n_categories": 3000}
MIN_SHARD_BYTES = 130_000
BATCH = 32
HISTORY = 6
SYNC_STEPS = 4


def make_batch(seed, n_users=VOCAB["n_users"], n_items=VOCAB["n_items"],
               n_categories=VOCAB["n_categories"]):
    """A batch with a learnable signal (tests/models/conftest.make_batch over
    this module's vocabularies); item ids are drawn from a few hundred so rows
    repeat within and across batches."""
    from tests.models.conftest import make_batch as batch
    features, labels = batch(n=BATCH, steps=HISTORY, n_users=n_users, n_items=300,
                             n_categories=min(n_categories, 8), seed=seed)
    return features, labels


def dataset_fn(input_context):
    """Worker `input_pipeline_id`'s batches: seeds id, id + workers, ...: each
    worker reads its own part, forever."""
    batches = [make_batch(seed) for seed in range(64)]
    features = {k: np.stack([b[0][k] for b in batches]) for k in batches[0][0]}
    labels = np.stack([b[1] for b in batches])
    return tf.data.Dataset.from_tensor_slices((features, labels)).shard(
        input_context.num_input_pipelines, input_context.input_pipeline_id).repeat()


def sync_batches():
    """What one worker reads first: batches with seeds 0, 1, 2, ..."""
    return [make_batch(seed) for seed in range(SYNC_STEPS)]


# -- models ---------------------------------------------------------------------

def build(name):
    """(model, compile arguments) for each configuration under test."""
    import keras
    from din_tf import models, training
    frequencies = {"mid_embedding": np.arange(VOCAB["n_items"]) % 7 + 1}
    if name == "din_rows":   # DIEN repo's DIN: LazyAdam row updates, MBA L2
        return (models.DIN(**VOCAB, activation="prelu"),
                dict(optimizer=training.LazyAdam(0.01), embedding_update="rows",
                     regularizer=training.MiniBatchAwareL2(1e-4, frequencies)))
    if name == "dien_dense":  # DIEN: auxiliary loss, dense TF1 Adam, MBA L2
        return (models.DIEN(**VOCAB, activation="prelu"),
                dict(optimizer=training.FusedAdam(0.01), embedding_update="dense",
                     regularizer=training.MiniBatchAwareL2(1e-4, frequencies)))
    if name == "din_repo_sgd":  # DIN repo's DIN: plain SGD rows, clipping as coded
        return (models.DINRepoModel(VOCAB["n_items"], VOCAB["n_categories"], kind="din",
                                    item_dim=18, category_dim=18),
                dict(optimizer=keras.optimizers.SGD(1.0), embedding_update="rows",
                     gradient_clip_norm=0.05))
    if name == "dnn_adagrad":  # DNN: Adagrad slots beside their shards
        return (models.DNN(**VOCAB),
                dict(optimizer=keras.optimizers.Adagrad(0.1), embedding_update="rows"))
    raise ValueError(name)


def _strategy():
    from din_tf.distribute import make_strategy
    return make_strategy("parameter_server", min_shard_bytes=MIN_SHARD_BYTES)


def _sharding(model):
    from din_tf.parameter_server import shard_devices
    return shard_devices(model)


# -- jobs -----------------------------------------------------------------------

def train(out, name, steps):
    """Async training on every worker: losses, sharding, an evaluation of the
    gathered model and an export of it."""
    import keras
    from din_tf.export import export_saved_model
    from din_tf.parameter_server import ParameterServerTrainer
    strategy = _strategy()
    keras.utils.set_random_seed(1)
    with strategy.scope():
        model, compile_args = build(name)
        model.compile(**compile_args)
    trainer = ParameterServerTrainer(model, strategy, steps_per_execution=2)
    history = trainer.fit(dataset_fn, steps=steps, sync_every=2)
    local = trainer.local_model()
    features, labels = make_batch(1000)
    probability = local.predict(features, verbose=0)
    export_dir = os.path.join(os.path.dirname(out), "export")
    export_saved_model(local, export_dir)
    served = tf.saved_model.load(export_dir).signatures["serving_default"]
    signature = served.structured_input_signature[1]
    inputs = {k: tf.constant(v) for k, v in features.items() if k in signature}
    np.savez(out, loss=np.array([h[1]["loss"] for h in history]),
             ctr_loss=np.array([h[1]["ctr_loss"] for h in history]),
             aux_loss=np.array([h[1]["aux_loss"] for h in history]),
             reg_loss=np.array([h[1]["reg_loss"] for h in history]),
             steps=np.array([h[0] for h in history]), trained=trainer.step,
             sharding=json.dumps(_sharding(model)), probability=probability,
             served=next(iter(served(**inputs).values())).numpy(),
             labels=labels, full_history=features["history_length"] == HISTORY)


def sync(out, names):
    """One worker, a wait after every step: the parameter-server trajectory
    and that of one process (`model.fit` on the same batches from the same
    initial weights), per model."""
    import keras
    from din_tf.parameter_server import ParameterServerTrainer, read_whole
    strategy = _strategy()
    batches = sync_batches()
    results = {}
    for name in names.split(","):
        keras.utils.set_random_seed(2)
        local, compile_args = build(name)
        initial = [w.numpy() for w in local.weights]
        local.compile(**compile_args)
        with strategy.scope():
            model, compile_args = build(name)
            model.compile(**compile_args)
        for w, value in zip(model.weights, initial):
            w.assign(value)
        trainer = ParameterServerTrainer(model, strategy)
        history = trainer.fit(dataset_fn, steps=SYNC_STEPS, sync_every=1)
        reference = [local.train_on_batch(*batch, return_dict=True) for batch in batches]
        results[f"{name}/ps_loss"] = np.array([h[1]["loss"] for h in history])
        results[f"{name}/one_loss"] = np.array([r["loss"] for r in reference])
        for i, (a, b) in enumerate(zip(model.weights, local.weights)):
            results[f"{name}/ps_weight/{i}"] = read_whole(a)
            results[f"{name}/one_weight/{i}"] = b.numpy()
            results[f"{name}/initial/{i}"] = initial[i]
        results[f"{name}/sharding"] = json.dumps(_sharding(model))
    np.savez(out, **results)


def checkpoint(out, directory, steps, signal_file):
    """Trains to `steps` with checkpoints every 4 steps, restoring first from
    `directory` if it holds one. Writes `signal_file` once the first half is
    done (the test then kills a worker) and waits for the test's go-ahead."""
    import keras
    from din_tf.parameter_server import ParameterServerTrainer, read_whole
    strategy = _strategy()
    keras.utils.set_random_seed(3)
    with strategy.scope():
        model, compile_args = build("din_rows")
        model.compile(**compile_args)
    trainer = ParameterServerTrainer(model, strategy, checkpoint_dir=directory,
                                     checkpoint_every=4)
    restored = trainer.step
    history = []
    if signal_file:
        history += trainer.fit(dataset_fn, steps=steps // 2, sync_every=4)
        with open(signal_file + ".tmp", "w") as f:
            f.write(str(trainer.step))
        os.replace(signal_file + ".tmp", signal_file)
        while not os.path.exists(signal_file + ".go"):
            time.sleep(0.1)
    history += trainer.fit(dataset_fn, steps=steps, sync_every=4)
    np.savez(out, restored=restored, trained=trainer.step,
             loss=np.array([h[1]["loss"] for h in history]),
             **{f"weight/{i}": read_whole(w) for i, w in enumerate(model.weights)})


def every_model(out, steps):
    """Every model of the zoo (their original configurations: optimizer,
    embedding update, clipping, Dice) and a schema-built DIEN with side
    features: `steps` asynchronous steps, then the gathered model's
    predictions. Small tables and a small shard size (logistic regression's
    width-1 tables split too, and so do the larger dense weights)."""
    import keras
    from din_tf import models
    from din_tf.distribute import make_strategy
    from din_tf.parameter_server import ParameterServerTrainer
    from tests.models.test_schema_models import side_feature_batch, side_feature_schema
    strategy = make_strategy("parameter_server", min_shard_bytes=MIN_SHARD_BYTES // 100)
    vocab = {k: v // 10 for k, v in VOCAB.items()}
    features, labels = make_batch(0, **vocab)
    schema = side_feature_schema()
    schema_features, schema_labels = side_feature_batch(schema, n=BATCH)
    results = {}
    for name in [*models.MODELS, "schema/DIEN"]:
        keras.utils.set_random_seed(4)
        batch = (schema_features, schema_labels) if name.startswith("schema/") \
            else (features, labels)
        with strategy.scope():
            model = (models.get_model("dien_repo/DIEN", schema=schema, activation="prelu")
                     if name.startswith("schema/") else models.get_model(name, **vocab))
            model.compile()  # the original optimizer and embedding update
        trainer = ParameterServerTrainer(model, strategy)
        history = trainer.fit(
            lambda context, batch=batch: tf.data.Dataset.from_tensors(batch).repeat(),
            steps=steps)
        local = trainer.local_model()
        results[f"{name}/loss"] = np.array([h[1]["loss"] for h in history])
        results[f"{name}/trained"] = trainer.step
        results[f"{name}/sharded"] = len(_sharding(model))
        results[f"{name}/probability"] = np.asarray(local.predict(batch[0], verbose=0))
    np.savez(out, **results)


def input_shards(out):
    """What each worker's `dataset_fn` is told: (worker index, workers), read
    back through steps scheduled on the coordinator."""
    from din_tf.parameter_server import ParameterServerTrainer
    strategy = _strategy()
    with strategy.scope():
        model, compile_args = build("dnn_adagrad")
        model.compile(**compile_args)
    trainer = ParameterServerTrainer(model, strategy)

    def dataset_fn(context):
        told = tf.stack([tf.cast(context.input_pipeline_id, tf.int64),
                         tf.constant(context.num_input_pipelines, tf.int64)])
        return tf.data.Dataset.from_tensors(told).repeat()

    iterator = trainer.per_worker_iterator(dataset_fn)
    read = tf.function(lambda iterator: next(iterator))
    values = [trainer.coordinator.schedule(read, args=(iterator,)) for _ in range(40)]
    trainer.coordinator.join()
    np.savez(out, told=np.array([v.fetch() for v in values]))


if __name__ == "__main__":
    job, out, *args = sys.argv[1:]
    if job == "train":
        train(out, args[0], int(args[1]))
    elif job == "sync":
        sync(out, args[0])
    elif job == "input_shards":
        input_shards(out)
    elif job == "every_model":
        every_model(out, int(args[0]))
    elif job == "checkpoint":
        checkpoint(out, args[0], int(args[1]), args[2] if len(args) > 2 else "")
    else:
        raise SystemExit(f"unknown job {job!r}")
