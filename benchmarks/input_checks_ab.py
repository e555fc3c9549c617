r"""Interleaved A/B of the training step with and without the input checks of
`din_tf/models/_inputs.py` (dtype/rank/size checks at trace time, the
history_length range and dynamic-size asserts in the graph).

  python -m benchmarks.input_checks_ab --models=dien_repo/DIEN,dien_repo/DIN \
      --baseline_rev=8667d54 --rounds=7 --steps=30

B ("unchecked") reads inputs with `_inputs.py` as of `--baseline_rev` (taken
from git); A ("checked") with the working tree's. Both train steps are traced
with a fully dynamic input signature ([None] batch and time axes, as
`model.fit` on a tf.data pipeline traces them), so every graph assert is in
A's step. Rounds alternate A and B in one process (the order flips each
round), each timing `--steps` steps; prints the median step time of each arm
and the median of the per-round ratios A/B. The first line times the reader
alone (its absolute cost per call, the checks' whole overhead).
"""

import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

from benchmarks import REPO

FLAGS = flags.FLAGS


def _define_flags():
    # Only when run as a script (see benchmarks/__init__.py).
    flags.DEFINE_list("models", ["dien_repo/DIEN", "dien_repo/DIN"], "Original model names.")
    flags.DEFINE_string("baseline_rev", "8667d54", "Git revision whose _inputs.py is arm B.")
    flags.DEFINE_integer("batch_size", 128, "Rows per step.")
    flags.DEFINE_integer("length", 30, "History length T.")
    flags.DEFINE_integer("vocabulary", 10_000, "Users, items (categories: vocabulary // 100).")
    flags.DEFINE_integer("rounds", 7, "A/B rounds.")
    flags.DEFINE_integer("steps", 30, "Timed steps per arm per round.")


def _baseline_reader(revision):
    source = subprocess.run(["git", "-C", REPO, "show", f"{revision}:din_tf/models/_inputs.py"],
                            check=True, capture_output=True, text=True).stdout
    path = os.path.join(tempfile.mkdtemp(), "baseline_inputs.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("baseline_inputs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.read_inputs


def _batch(rng, batch, steps, n):
    ids = lambda *shape: rng.integers(1, n, shape, dtype=np.int32)
    features = {
        "user_id": ids(batch), "item_id": ids(batch),
        "category_id": rng.integers(1, max(n // 100, 2), batch, dtype=np.int32),
        "history_item_ids": ids(batch, steps),
        "history_category_ids": rng.integers(1, max(n // 100, 2), (batch, steps),
                                             dtype=np.int32),
        "history_length": rng.integers(1, steps + 1, batch, dtype=np.int32),
        "negative_item_ids": ids(batch, steps, 5),
        "negative_category_ids": rng.integers(1, max(n // 100, 2), (batch, steps, 5),
                                              dtype=np.int32),
    }
    return features, rng.integers(0, 2, batch).astype(np.float32)


def _traced_step(name, reader):
    import keras
    import tensorflow as tf

    from din_tf import models
    from din_tf.models import din_repo, dien_repo_base
    keras.utils.set_random_seed(0)
    n = FLAGS.vocabulary
    model = models.get_model(name, n_users=n, n_items=n, n_categories=max(n // 100, 2))
    model.compile()
    features, labels = _batch(np.random.default_rng(0), FLAGS.batch_size, FLAGS.length, n)
    signature = ({k: tf.TensorSpec([None] * v.ndim, v.dtype) for k, v in features.items()},
                 tf.TensorSpec([None], tf.float32))
    step = tf.function(model.train_step, input_signature=[signature])
    saved = dien_repo_base.read_schema_inputs, din_repo.read_inputs
    dien_repo_base.read_schema_inputs = _as_schema_reader(reader)
    din_repo.read_inputs = reader
    try:
        data = ({k: tf.constant(v) for k, v in features.items()}, tf.constant(labels))
        step(data)  # traces with `reader`
    finally:
        dien_repo_base.read_schema_inputs, din_repo.read_inputs = saved
    return lambda: step(data)


def _as_schema_reader(reader):
    """`reader` (features → ModelInputs, the originals' keys) in the form the
    schema-built models call (`read_schema_inputs`), for the originals' schema."""
    from din_tf.models._inputs import SchemaInputs, SequenceInputs

    def read(model_name, schema, features, need_user=True, need_negatives=False):
        x = reader(model_name, features, need_user, need_negatives)
        negatives = (None if x.negative_items is None else
                     {"item_id": x.negative_items, "category_id": x.negative_categories})
        history = SequenceInputs({"item_id": x.history_items,
                                  "category_id": x.history_categories}, x.mask, x.lengths,
                                 negatives)
        ids = {"item_id": x.item, "category_id": x.category}
        if x.user is not None:
            ids["user_id"] = x.user
        return SchemaInputs(ids, {}, {"history": history})
    return read


def _reader_alone(reader):
    """The reader alone in a dynamic-shape tf.function: its own cost per call,
    without a training step's noise around it."""
    import tensorflow as tf
    features, _ = _batch(np.random.default_rng(0), FLAGS.batch_size, FLAGS.length,
                         FLAGS.vocabulary)
    signature = {k: tf.TensorSpec([None] * v.ndim, v.dtype) for k, v in features.items()}

    @tf.function(input_signature=[signature])
    def read(x):
        inputs = reader("DIEN", x, need_negatives=True)
        return sum(tf.reduce_sum(tf.cast(t, tf.float32)) for t in inputs if t is not None)

    data = {k: tf.constant(v) for k, v in features.items()}
    read(data)
    return lambda: {"loss": read(data)}


def _time(step, steps):
    start = time.perf_counter()
    for _ in range(steps):
        logs = step()
    float(logs["loss"])  # wait for the last step
    return (time.perf_counter() - start) / steps


def main(argv):
    del argv
    from din_tf.models import _inputs
    baseline = _baseline_reader(FLAGS.baseline_rev)
    for name in ["read_inputs alone"] + FLAGS.models:
        if name == "read_inputs alone":
            arms = {"checked": _reader_alone(_inputs.read_inputs),
                    "unchecked": _reader_alone(baseline)}
        else:
            arms = {"checked": _traced_step(name, _inputs.read_inputs),
                    "unchecked": _traced_step(name, baseline)}
        for step in arms.values():
            _time(step, 3)  # warm-up
        times = {arm: [] for arm in arms}
        for round_ in range(FLAGS.rounds):
            order = list(arms) if round_ % 2 == 0 else list(arms)[::-1]
            for arm in order:
                times[arm].append(_time(arms[arm], FLAGS.steps))
        a, b = (statistics.median(times[arm]) for arm in ("checked", "unchecked"))
        # Each round's two arms ran back to back, so their ratio cancels most of
        # the load other processes put on the machine; its median is the figure.
        paired = statistics.median(x / y for x, y in zip(times["checked"], times["unchecked"]))
        print(f"{name} B={FLAGS.batch_size} T={FLAGS.length}: checked {a * 1e3:.3f} ms/step, "
              f"unchecked {b * 1e3:.3f} ms/step, median paired A/B = {paired:.3f} "
              f"(rounds: checked {[round(t * 1e3, 2) for t in times['checked']]}, "
              f"unchecked {[round(t * 1e3, 2) for t in times['unchecked']]})")
        sys.stdout.flush()


if __name__ == "__main__":
    _define_flags()
    app.run(main)
