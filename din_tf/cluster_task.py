"""`python -m din_tf.cluster_task`: serves one worker or parameter-server task
of a `ParameterServerStrategy` cluster until it is stopped.

Under `ParameterServerStrategy` only the chief runs the training program
(e.g. `python -m din_tf.experiments.run --strategy=parameter_server ...`); every
worker and parameter server runs this command, with `TF_CONFIG` naming the
cluster and the task:

    TF_CONFIG='{"cluster": {"chief": ["c:2222"], "worker": ["w0:2222", "w1:2222"],
                            "ps": ["p0:2222", "p1:2222"]},
                "task": {"type": "worker", "index": 0}}' python -m din_tf.cluster_task

The chief sends the functions to run; this process holds variables (a
parameter server) or runs training steps (a worker).
"""

import json
import os
import sys

TASK_TYPES = ("worker", "ps")


def cluster_and_task(environ):
    """(cluster dict, task type, task index) from TF_CONFIG; ValueError naming
    what is wrong."""
    raw = environ.get("TF_CONFIG")
    if not raw:
        raise ValueError("TF_CONFIG is not set; expected the cluster and this task, e.g. "
                         '{"cluster": {"chief": [...], "worker": [...], "ps": [...]}, '
                         '"task": {"type": "worker", "index": 0}}.')
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        task_type, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"Invalid TF_CONFIG={raw!r}: {e!r}; expected JSON with 'cluster' "
                         "and 'task': {'type', 'index'}.") from None
    if task_type not in TASK_TYPES:
        raise ValueError(f"Invalid TF_CONFIG task type {task_type!r}; this command serves "
                         f"{' or '.join(TASK_TYPES)} tasks (the chief runs the training "
                         "program itself).")
    if not isinstance(cluster.get(task_type), list) or not 0 <= index < len(cluster[task_type]):
        raise ValueError(f"Invalid TF_CONFIG task index {index} for type {task_type!r}; the "
                         f"cluster lists {cluster.get(task_type)!r}.")
    return cluster, task_type, index


def main():
    try:
        cluster, task_type, index = cluster_and_task(os.environ)
    except ValueError as e:
        print(f"din_tf.cluster_task: {e}", file=sys.stderr)
        return 2
    import tensorflow as tf

    server = tf.distribute.Server(tf.train.ClusterSpec(cluster), job_name=task_type,
                                  task_index=index, protocol="grpc", start=True)
    print(f"din_tf.cluster_task: {task_type} {index} serving at {server.target}", flush=True)
    server.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
