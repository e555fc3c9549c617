"""`tf.distribute` strategies by name, for `model.fit` on one or many devices.

    strategy = make_strategy("mirrored")          # all local GPUs
    with strategy.scope():                        # weights are created at construction
        model = din_tf.models.DIEN(n_uid, n_mid, n_cat)
        model.compile(...)
    model.fit(dataset)                            # global batches, split over replicas

| name | strategy | use |
| --- | --- | --- |
| "default" | the default (no-op) strategy | CPU or one GPU |
| "one_device" | `OneDeviceStrategy` (default device: first GPU, else CPU) | one device |
| "mirrored" | `MirroredStrategy(devices)` (default: all local GPUs) | several GPUs, one machine |
| "multi_worker" | `MultiWorkerMirroredStrategy()`, cluster from `TF_CONFIG` | several machines |

Under a strategy `CTRModel.train_step` matches one device on the same global
batch: the loss is divided by the replica count, gradient clipping uses the
global norm, and `MiniBatchAwareL2` counts each row once per global batch.
Layers that normalise with batch statistics in training (Dice, BatchNorm with
`frozen_batch_norm=False`) use each replica's part of the batch, as Keras'
BatchNormalization does.

The same strategy object is returned for the same arguments within a process:
TF numbers its collective operations per strategy object, so a second
MirroredStrategy in one process can collide with the first one's collectives
("Shape mismatch in the collective instance", tensorflow/tensorflow#62790).
"""

import tensorflow as tf

STRATEGY_NAMES = ("default", "one_device", "mirrored", "multi_worker")

_strategies = {}


def make_strategy(name, devices=None):
    """Returns the `tf.distribute.Strategy` called `name` (see the module table).

    Args:
        name: "default", "one_device", "mirrored" or "multi_worker".
        devices: device names, e.g. ["/gpu:0", "/gpu:1"]: one device for
            "one_device", any number for "mirrored"; not accepted by "default"
            and "multi_worker" (each worker uses all its local GPUs).
    """
    if name not in STRATEGY_NAMES:
        raise ValueError(f"Invalid name={name!r}; expected one of {list(STRATEGY_NAMES)}.")
    devices = _check_devices(name, devices)
    if name == "default":
        return tf.distribute.get_strategy()
    key = (name, devices)
    if key not in _strategies:
        _strategies[key] = _create(name, devices)
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
    if name in ("default", "multi_worker"):
        raise ValueError(f"Invalid devices={list(devices)!r} for name={name!r}; expected None "
                         f"({name!r} takes no device list).")
    if name == "one_device" and len(devices) != 1:
        raise ValueError(f"Invalid devices={list(devices)!r} for name='one_device'; expected "
                         "exactly one device.")
    return devices


def _create(name, devices):
    if name == "one_device":
        if devices is None:
            device = "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
        else:
            device = devices[0]
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)
    return tf.distribute.MultiWorkerMirroredStrategy()
