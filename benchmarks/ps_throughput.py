r"""Training throughput under ParameterServerStrategy on this machine: workers
and parameter servers as `python -m din_tf.cluster_task` processes on
127.0.0.1, a chief that trains with `din_tf.parameter_server.ParameterServerTrainer`,
and the bytes the cluster moves per step, measured and estimated.

  python -m benchmarks.ps_throughput --configs=1x1,2x1,1x2,2x2 \
      --models=dien_repo/DIN,dien_repo/DIEN --batch=128 --length=100 \
      --steps=64 --warmup=8 --steps_per_execution=4 \
      --output=benchmarks/results/ps_throughput.json

| item | what it is |
| --- | --- |
| config | WORKERSxPS: workers x parameter servers, plus one chief |
| model | `dien_repo/DIN` or `dien_repo/DIEN`, Books vocabularies, width 18 |
| training | fast mode (`recipes.mode_recipe`): `LazyAdam(1e-3)`, `embedding_update="rows"` |
| sharding | tables above `--min_shard_bytes` in row shards over the PS |
| data | made on each worker: ids uniform in the vocabularies, length T, 16 batches repeated |
| warm-up | `--warmup` steps per worker, at least two calls per worker, untimed |
| timed | `fit(..., sync_every=steps)`: `--steps` steps over all workers, its datasets made |
| examples/s | steps x batch / seconds of the timed `fit` |
| measured | `lo` received bytes (/proc/net/dev) over the timed `fit` / steps |
| estimated | `estimate_bytes_per_step` over the distinct rows of a batch |
| with repeated rows | the same over every id looked up (each gather and gradient slice is per id) |
| not counted | optimizer slots: the update runs beside its variable, on its PS |
| caveat | loopback is shared: other traffic on this machine counts too |
| MB | 10^6 bytes |
| timeout | `--timeout` seconds per run, then every process of the run is killed |
"""

import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from benchmarks import REPO
from din_tf.experiments import atomic_files

FLAGS = flags.FLAGS

BOOKS = dict(n_users=543_060, n_items=367_983, n_categories=1_601)
MODELS = ("dien_repo/DIN", "dien_repo/DIEN")
NEGATIVES = 5
DISTINCT_BATCHES = 16
FLOAT_BYTES = 4
INDEX_BYTES = 8


# ---------------------------------------------------------------- pure parts

def parse_config(token):
    """"2x1" -> (2 workers, 1 parameter server); ValueError naming the token."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(token))
    if not match:
        raise ValueError(f"Invalid config {token!r}; expected WORKERSxPS, e.g. 2x1 "
                         "(two workers, one parameter server).")
    workers, ps = int(match.group(1)), int(match.group(2))
    if workers < 1 or ps < 1:
        raise ValueError(f"Invalid config {token!r}; a cluster needs at least one worker "
                         "and one parameter server.")
    return workers, ps


def parse_configs(tokens):
    """[(workers, ps), ...] for --configs; ValueError on a bad or repeated one."""
    configs = [parse_config(t) for t in tokens]
    if not configs:
        raise ValueError("no configuration given; expected e.g. 1x1,2x1.")
    seen = set()
    for token, config in zip(tokens, configs):
        if config in seen:
            raise ValueError(f"config {token!r} is given twice.")
        seen.add(config)
    return configs


def config_name(workers, ps):
    return f"{workers}x{ps}"


def estimate_bytes_per_step(tables, dense_elements):
    """Bytes one training step moves between a worker and the parameter servers.

    Args:
        tables: {name: (distinct rows read in a batch, row width)}.
        dense_elements: elements of the trainable weights other than tables.

    Each table's distinct rows are read (4 bytes per float) and their gradient
    written back as slices (4 bytes per float, 8 per int64 row index); each
    dense weight is read and its gradient sent (4 bytes per element each way).
    Pass distinct rows for a lower bound, or every id looked up
    (repeats included) for what the gathers and gradient slices carry. The
    optimizer's slots move nothing: its update runs on the parameter server.

    Returns {"tables": {name: bytes}, "dense": bytes, "total": bytes}.
    """
    per_table = {}
    for name, (rows, width) in tables.items():
        if rows < 0 or width < 1:
            raise ValueError(f"Invalid table {name!r}: rows={rows!r}, width={width!r}.")
        per_table[name] = rows * (2 * FLOAT_BYTES * width + INDEX_BYTES)
    if dense_elements < 0:
        raise ValueError(f"Invalid dense_elements={dense_elements!r}.")
    dense = 2 * FLOAT_BYTES * dense_elements
    return {"tables": per_table, "dense": dense, "total": sum(per_table.values()) + dense}


def loopback_bytes(text):
    """(received, transmitted) bytes of `lo` in /proc/net/dev's text."""
    for line in text.splitlines():
        name, sep, counters = line.partition(":")
        if sep and name.strip() == "lo":
            fields = counters.split()
            return int(fields[0]), int(fields[8])
    raise ValueError("/proc/net/dev has no 'lo' interface.")


def read_loopback_bytes():
    with open("/proc/net/dev", encoding="utf-8") as f:
        return loopback_bytes(f.read())


def free_ports(count):
    """`count` ports of 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def cluster_spec(workers, ps, ports):
    address = [f"127.0.0.1:{port}" for port in ports]
    return {"chief": address[:1], "worker": address[1:1 + workers],
            "ps": address[1 + workers:1 + workers + ps]}


def run_line(record):
    """The line printed per run."""
    head = f"{record['config']:5s} {record['model']:16s}"
    if "error" in record:
        return f"{head} FAILED: {record['error'].splitlines()[0]}"
    return (f"{head} {record['examples_per_s']:8.0f} ex/s  "
            f"measured {record['measured_bytes_per_step'] / 1e6:8.2f} MB/step  "
            f"estimated {record['estimate']['total'] / 1e6:6.2f} MB/step "
            f"({record['estimate_with_repeated_rows']['total'] / 1e6:.2f} with repeated rows)")


# ---------------------------------------------------------------- chief (a child)

def synthetic_batch(seed, batch, length):
    """A batch of uniformly random ids (train_throughput.py's shapes) from a
    stateless seed [2] int64: features, labels."""
    import tensorflow as tf

    def ids(index, shape, high):
        key = tf.random.experimental.stateless_fold_in(seed, index)
        return tf.random.stateless_uniform(shape, key, minval=1, maxval=high, dtype=tf.int32)

    steps, negatives = (batch, length), (batch, length, NEGATIVES)
    features = {
        "user_id": ids(0, (batch,), BOOKS["n_users"]),
        "item_id": ids(1, (batch,), BOOKS["n_items"]),
        "category_id": ids(2, (batch,), BOOKS["n_categories"]),
        "history_item_ids": ids(3, steps, BOOKS["n_items"]),
        "history_category_ids": ids(4, steps, BOOKS["n_categories"]),
        "history_length": tf.fill((batch,), tf.constant(length, tf.int32)),
        "negative_item_ids": ids(5, negatives, BOOKS["n_items"]),
        "negative_category_ids": ids(6, negatives, BOOKS["n_categories"]),
    }
    labels = tf.cast(ids(7, (batch,), 3) - 1, tf.float32)  # 0 or 1
    return features, labels


def make_dataset_fn(batch, length):
    def dataset_fn(input_context):
        import tensorflow as tf
        worker = tf.cast(input_context.input_pipeline_id, tf.int64)
        return (tf.data.Dataset.range(DISTINCT_BATCHES)
                .map(lambda i: synthetic_batch(tf.stack([worker, i]), batch, length))
                .cache().repeat().prefetch(2))
    return dataset_fn


def lookup_counts(model, features):
    """{table name: (distinct rows, ids looked up, width)} of one training
    forward pass (auxiliary part included) over `features`."""
    import numpy as np
    outputs = model.forward(features, training=True, with_aux=True)
    ids = {}
    for table, table_ids, _ in outputs["lookups"]:
        ids.setdefault(table.name, (table.dim, []))[1].append(np.asarray(table_ids).ravel())
    counts = {}
    for name, (width, arrays) in ids.items():
        values = np.concatenate(arrays)
        counts[name] = (int(np.unique(values).size), int(values.size), int(width))
    return counts


def dense_elements(model):
    tables = {id(t.embeddings) for t in model.tables.values()}
    return int(sum(int(w.numpy().size) for w in model.trainable_weights if id(w) not in tables))


def chief(result_path):
    """Runs one measurement as the chief (TF_CONFIG names the cluster) and
    writes its record to `result_path`."""
    import keras
    import tensorflow as tf

    from din_tf import models
    from din_tf.distribute import make_strategy
    from din_tf.training import recipes
    from din_tf.parameter_server import ParameterServerTrainer, shard_devices

    cluster = json.loads(os.environ["TF_CONFIG"])["cluster"]
    workers, ps = len(cluster["worker"]), len(cluster["ps"])
    name, batch, length = FLAGS.models[0], FLAGS.batch, FLAGS.length
    spe = FLAGS.steps_per_execution
    strategy = make_strategy("parameter_server", min_shard_bytes=FLAGS.min_shard_bytes)

    # What a batch reads, from a model on this process (the same ids as
    # worker 0's first batch).
    keras.utils.set_random_seed(0)
    local = models.get_model(name, **BOOKS)
    features, _ = synthetic_batch(tf.constant([0, 0], tf.int64), batch, length)
    counts = lookup_counts(local, features)
    dense = dense_elements(local)
    del local
    estimate = estimate_bytes_per_step({k: (c[0], c[2]) for k, c in counts.items()}, dense)
    with_repeats = estimate_bytes_per_step({k: (c[1], c[2]) for k, c in counts.items()}, dense)

    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = models.get_model(name, **BOOKS)
        model.compile(recipe=recipes.mode_recipe(model.training_recipe, "fast"))
    trainer = ParameterServerTrainer(model, strategy, steps_per_execution=spe)
    shards = {path: len(devices) for path, devices in shard_devices(model).items()}
    dataset_fn = make_dataset_fn(batch, length)

    # At least two calls per worker: every worker has run the function once.
    warmup = max(FLAGS.warmup, 2 * spe) * workers
    started = time.perf_counter()
    trainer.fit(dataset_fn, steps=warmup)
    warmup_s = time.perf_counter() - started
    traces = trainer._execute.experimental_get_tracing_count()

    received, sent = read_loopback_bytes()
    started = time.perf_counter()
    history = trainer.fit(dataset_fn, steps=warmup + FLAGS.steps, sync_every=FLAGS.steps)
    seconds = time.perf_counter() - started
    received_after, sent_after = read_loopback_bytes()

    moved = received_after - received
    record = {
        "config": config_name(workers, ps), "workers": workers, "ps": ps, "model": name,
        "batch": batch, "T": length, "steps": FLAGS.steps, "warmup_steps": warmup,
        "steps_per_execution": spe, "min_shard_bytes": FLAGS.min_shard_bytes,
        "optimizer": type(model.optimizer).__name__, "embedding_update": model.embedding_update,
        "seconds": seconds, "warmup_seconds": warmup_s,
        "examples_per_s": FLAGS.steps * batch / seconds,
        "steps_per_s": FLAGS.steps / seconds,
        "trained_steps": trainer.step, "final_loss": history[-1][1]["loss"],
        "retraced_in_timed_fit": trainer._execute.experimental_get_tracing_count() - traces,
        "lo_received_bytes": moved, "lo_sent_bytes": sent_after - sent,
        "measured_bytes_per_step": moved / FLAGS.steps,
        "estimate": estimate, "estimate_with_repeated_rows": with_repeats,
        "lookups": {k: {"distinct_rows": c[0], "ids": c[1], "width": c[2]}
                    for k, c in counts.items()},
        "dense_elements": dense, "shards": shards,
    }
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(record, f)


# ---------------------------------------------------------------- launcher

class RunFailed(Exception):
    pass


def _tail(path, chars=3000):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()[-chars:]
    except OSError:
        return ""


def _environment(spec, task_type, index):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_CONFIG": json.dumps({"cluster": spec,
                                     "task": {"type": task_type, "index": index}})}


def _chief_args(name, result_path):
    return [sys.executable, "-m", "benchmarks.ps_throughput", f"--_chief={result_path}",
            f"--models={name}", f"--batch={FLAGS.batch}", f"--length={FLAGS.length}",
            f"--steps={FLAGS.steps}", f"--warmup={FLAGS.warmup}",
            f"--steps_per_execution={FLAGS.steps_per_execution}",
            f"--min_shard_bytes={FLAGS.min_shard_bytes}"]


def run(workers, ps, name):
    """One cluster, one model: the chief's record. Every process started here
    is killed before returning; RunFailed on a timeout or a failed chief."""
    folder = tempfile.mkdtemp(prefix="ps_throughput_")
    spec = cluster_spec(workers, ps, free_ports(1 + workers + ps))
    processes, logs = [], []
    try:
        for task_type in ("ps", "worker"):
            for index in range(len(spec[task_type])):
                log = os.path.join(folder, f"{task_type}{index}.log")
                with open(log, "w") as out:
                    processes.append(subprocess.Popen(
                        [sys.executable, "-m", "din_tf.cluster_task"], cwd=REPO,
                        env=_environment(spec, task_type, index), stdout=out,
                        stderr=subprocess.STDOUT))
                logs.append(log)
        result, log = os.path.join(folder, "chief.json"), os.path.join(folder, "chief.log")
        with open(log, "w") as out:
            chief_process = subprocess.Popen(_chief_args(name, result), cwd=REPO,
                                             env=_environment(spec, "chief", 0), stdout=out,
                                             stderr=subprocess.STDOUT)
        processes.append(chief_process)
        deadline = time.monotonic() + FLAGS.timeout
        while chief_process.poll() is None:
            if time.monotonic() > deadline:
                raise RunFailed(f"timed out after {FLAGS.timeout:g} s (--timeout)\n{_tail(log)}")
            for task in processes[:-1]:
                if task.poll() is not None:
                    raise RunFailed(f"a cluster task exited with code {task.returncode}\n"
                                    + "\n".join(_tail(p, 1000) for p in logs))
            time.sleep(0.5)
        if chief_process.returncode != 0 or not os.path.exists(result):
            raise RunFailed(f"the chief exited with code {chief_process.returncode}\n"
                            f"{_tail(log)}")
        with open(result, encoding="utf-8") as f:
            return json.load(f)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        for process in processes:
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _define_flags():
    # Only when run as a script (see benchmarks/__init__.py).
    flags.DEFINE_list("configs", ["1x1", "2x1", "1x2", "2x2"],
                      "Clusters as WORKERSxPS (workers x parameter servers).")
    flags.DEFINE_list("models", ["dien_repo/DIN"], f"Models, some of {list(MODELS)}.")
    flags.DEFINE_integer("batch", 128, "Rows per step (per worker).", lower_bound=1)
    flags.DEFINE_integer("length", 100, "History length T of every row.", lower_bound=1)
    flags.DEFINE_integer("steps", 64, "Timed steps (all workers together); a multiple of "
                         "--steps_per_execution.", lower_bound=1)
    flags.DEFINE_integer("warmup", 8, "Untimed steps per worker (raised to two calls per "
                         "worker); a multiple of --steps_per_execution.", lower_bound=0)
    flags.DEFINE_integer("steps_per_execution", 4, "Steps a worker runs per scheduled call.",
                         lower_bound=1)
    flags.DEFINE_integer("min_shard_bytes", 1 << 20, "Tables above this many bytes are split "
                         "in row shards over the parameter servers.", lower_bound=1)
    flags.DEFINE_float("timeout", 900, "Seconds per run before it is killed.", lower_bound=1)
    flags.DEFINE_string("output", "benchmarks/results/ps_throughput.json", "JSON output.")
    flags.DEFINE_string("_chief", None, "Internal: run as the chief of one run (TF_CONFIG) "
                        "and write its record to this path.")


def _check_flags():
    """The configurations; app.UsageError naming the flag at fault."""
    try:
        configs = parse_configs(FLAGS.configs)
    except ValueError as error:
        raise app.UsageError(f"--configs: {error}") from None
    unknown = [m for m in FLAGS.models if m not in MODELS]
    if unknown or not FLAGS.models:
        raise app.UsageError(f"--models: {unknown or 'none given'}; expected some of "
                             f"{list(MODELS)}.")
    spe = FLAGS.steps_per_execution
    for name in ("steps", "warmup"):
        if getattr(FLAGS, name) % spe:
            raise app.UsageError(f"--{name}={getattr(FLAGS, name)} is not a multiple of "
                                 f"--steps_per_execution={spe}.")
    return configs


def main(argv):
    del argv
    configs = _check_flags()
    if FLAGS._chief:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        chief(FLAGS._chief)
        return
    started = datetime.datetime.now(datetime.timezone.utc)
    records = []
    for workers, ps in configs:
        for name in FLAGS.models:
            try:
                record = run(workers, ps, name)
            except RunFailed as error:
                record = {"config": config_name(workers, ps), "workers": workers, "ps": ps,
                          "model": name, "error": str(error)}
            records.append(record)
            print(run_line(record), flush=True)
            if "error" in record:
                print(record["error"], file=sys.stderr, flush=True)
    atomic_files.write_json(FLAGS.output, {
        "started_utc": started.isoformat(), "cores": os.cpu_count(),
        "vocabularies": BOOKS, "runs": records})
    if any("error" in r for r in records):
        sys.exit(1)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
