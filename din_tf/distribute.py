"""`tf.distribute` strategies by name, for `model.fit` on one or many devices.

    strategy = make_strategy("mirrored")          # all local GPUs
    with strategy.scope():                        # weights are created at construction
        model = din_tf.models.DIEN(n_users, n_items, n_categories)
        model.compile(...)
    model.fit(dataset)                            # global batches, split over replicas

| name | strategy | use |
| --- | --- | --- |
| "default" | the default (no-op) strategy | CPU or one GPU |
| "one_device" | `OneDeviceStrategy` (default device: first GPU, else CPU) | one device |
| "mirrored" | `MirroredStrategy(devices)` (default: all local GPUs) | several GPUs, one machine |
| "multi_worker" | `MultiWorkerMirroredStrategy()`, cluster from `TF_CONFIG` | several machines |
| "parameter_server" | `ParameterServerStrategy`, `TF_CONFIG`, row shards | tables beyond one machine |

Under a strategy `CTRModel.train_step` matches one device on the same global
batch: the loss is divided by the replica count, gradient clipping uses the
global norm, and `MiniBatchAwareL2` counts each row once per global batch.
Layers that normalise with batch statistics in training (Dice, BatchNorm with
`frozen_batch_norm=False`) use each replica's part of the batch, as Keras'
BatchNormalization does.

Under "parameter_server" Keras' `fit` does not run: train with
`din_tf.parameter_server.ParameterServerTrainer` (docs/distribute.md).

The same strategy object is returned for the same arguments within a process:
TF numbers its collective operations per strategy object, so a second
MirroredStrategy in one process can collide with the first one's collectives
("Shape mismatch in the collective instance", tensorflow/tensorflow#62790).
"""

import tensorflow as tf

STRATEGY_NAMES = ("default", "one_device", "mirrored", "multi_worker", "parameter_server")

# A variable of more than this many bytes is split in row shards over the
# parameter servers (ceil(bytes / this) shards, at most one per server): the
# dense layers' weights stay whole, tables of 15k+ rows at width 18 are split.
DEFAULT_MIN_SHARD_BYTES = 1 << 20

_strategies = {}


def make_strategy(name, devices=None, min_shard_bytes=None):
    """Returns the `tf.distribute.Strategy` called `name` (see the module table).

    Args:
        name: "default", "one_device", "mirrored", "multi_worker" or
            "parameter_server".
        devices: device names, e.g. ["/gpu:0", "/gpu:1"]: one device for
            "one_device", any number for "mirrored"; not accepted by the
            others (each worker uses all its local devices).
        min_shard_bytes: "parameter_server" only: a variable of more bytes
            than this is split along its rows into ceil(bytes /
            min_shard_bytes) shards, at most one per parameter server
            (`tf.distribute.experimental.partitioners.MinSizePartitioner`);
            default `DEFAULT_MIN_SHARD_BYTES`. Optimizer slots are split like
            their variables.
    """
    if name not in STRATEGY_NAMES:
        raise ValueError(f"Invalid name={name!r}; expected one of {list(STRATEGY_NAMES)}.")
    devices = _check_devices(name, devices)
    if min_shard_bytes is not None:
        if name != "parameter_server":
            raise ValueError(f"Invalid min_shard_bytes={min_shard_bytes!r} for name={name!r}; "
                             "only 'parameter_server' splits variables.")
        if isinstance(min_shard_bytes, bool) or not isinstance(min_shard_bytes, int) \
                or min_shard_bytes <= 0:
            raise ValueError(f"Invalid min_shard_bytes={min_shard_bytes!r}; expected a "
                             "positive integer (bytes).")
    if name == "default":
        return tf.distribute.get_strategy()
    key = (name, devices, min_shard_bytes)
    if key not in _strategies:
        _strategies[key] = _create(name, devices, min_shard_bytes)
    return _strategies[key]


def _check_devices(name, devices):
    if devices is None:
        return None
    if isinstance(devices, str):
        devices = [devices]
    devices = tuple(devices)
    if not devices or not all(isinstance(d, str) and d for d in devices):
        raise ValueError(f"Invalid devices={devices!r}; expected a non-empty list of device "
                         "names such as ['/gpu:0', '/gpu:1'], or None.")
    if name in ("default", "multi_worker", "parameter_server"):
        raise ValueError(f"Invalid devices={list(devices)!r} for name={name!r}; expected None "
                         f"({name!r} takes no device list).")
    if name == "one_device" and len(devices) != 1:
        raise ValueError(f"Invalid devices={list(devices)!r} for name='one_device'; expected "
                         "exactly one device.")
    return devices


def _create(name, devices, min_shard_bytes):
    if name == "one_device":
        if devices is None:
            device = "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
        else:
            device = devices[0]
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _parameter_server_strategy(min_shard_bytes or DEFAULT_MIN_SHARD_BYTES)


def _parameter_server_strategy(min_shard_bytes):
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    cluster = resolver.cluster_spec().as_dict()
    if resolver.task_type != "chief" or not cluster.get("ps") or not cluster.get("worker"):
        raise ValueError(
            "make_strategy('parameter_server') runs on the chief: TF_CONFIG must list "
            "'chief', 'worker' and 'ps' tasks and name this task {'type': 'chief', "
            f"'index': 0}}; found task type {resolver.task_type!r} and cluster jobs "
            f"{sorted(cluster)}. Workers and parameter servers run "
            "`python -m din_tf.cluster_task`.")
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=min_shard_bytes, max_shards=len(cluster["ps"]))
    return tf.distribute.experimental.ParameterServerStrategy(
        resolver, variable_partitioner=partitioner)
