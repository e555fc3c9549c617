r"""Training throughput (examples/s) of the zoo's models on the originals'
shapes: B=128, Books-size vocabularies (543,060 users, 367,983 items, 1,601
categories), every row of length T, synthetic ids.

  python benchmarks/train_throughput.py --models=dien_repo/DIEN,dien_repo/DIN \
      --lengths=10,30,100 --modes=faithful,fast --steps=20 --warmup=3 \
      --output=benchmarks/results/train_throughput.json

Modes: "faithful" = the original optimizer and dense embedding updates (TF1
Adam semantics: every row moves every step); "fast" = LazyAdam with row-only
updates. `--jit_compile` and `--mixed_precision` apply to every run. Prints
one line per run (median over the timed steps) and writes JSON.
"""

import json
import os
import statistics
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["dien_repo/DIEN", "dien_repo/DIN"], "Original model names.")
flags.DEFINE_list("lengths", ["10", "30", "100"], "History lengths T.")
flags.DEFINE_list("modes", ["faithful", "fast"], "faithful and/or fast.")
flags.DEFINE_integer("batch_size", 128, "Rows per step.")
flags.DEFINE_integer("steps", 20, "Timed steps per run.")
flags.DEFINE_integer("warmup", 3, "Untimed steps per run (tracing included).")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the train step.")
flags.DEFINE_bool("mixed_precision", False, "mixed_float16 policy.")
flags.DEFINE_string("output", "benchmarks/results/train_throughput.json", "JSON output.")

BOOKS = dict(n_users=543_060, n_items=367_983, n_categories=1_601)


def _batch(rng, batch, steps, negatives=5):
    shape = (batch, steps)
    return {
        "user_id": rng.integers(1, BOOKS["n_users"], batch, dtype=np.int32),
        "item_id": rng.integers(1, BOOKS["n_items"], batch, dtype=np.int32),
        "category_id": rng.integers(1, BOOKS["n_categories"], batch, dtype=np.int32),
        "history_item_ids": rng.integers(1, BOOKS["n_items"], shape, dtype=np.int32),
        "history_category_ids": rng.integers(1, BOOKS["n_categories"], shape, dtype=np.int32),
        "history_length": np.full(batch, steps, np.int32),
        "negative_item_ids": rng.integers(1, BOOKS["n_items"], shape + (negatives,),
                                          dtype=np.int32),
        "negative_category_ids": rng.integers(1, BOOKS["n_categories"], shape + (negatives,),
                                              dtype=np.int32),
    }, rng.integers(0, 2, batch).astype(np.float32)


def measure(name, steps_t, mode):
    import keras
    import tensorflow as tf
    from din_tf import models, training

    keras.utils.set_random_seed(0)
    model = models.get_model(name, **BOOKS)
    kwargs = {}
    if mode == "fast":
        kwargs = dict(optimizer=training.LazyAdam(1e-3, epsilon=1e-8), embedding_update="rows")
    model.compile(jit_compile=FLAGS.jit_compile, **kwargs)
    rng = np.random.default_rng(0)
    batches = [_batch(rng, FLAGS.batch_size, steps_t) for _ in range(4)]
    step = tf.function(model.train_step, jit_compile=FLAGS.jit_compile, reduce_retracing=True)
    for i in range(FLAGS.warmup):
        step(batches[i % 4])
    times = []
    for i in range(FLAGS.steps):
        start = time.perf_counter()
        logs = step(batches[i % 4])
        float(logs["loss"])  # wait for the step
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"model": name, "T": steps_t, "mode": mode, "batch_size": FLAGS.batch_size,
            "jit_compile": FLAGS.jit_compile, "mixed_precision": FLAGS.mixed_precision,
            "median_step_s": median, "examples_per_s": FLAGS.batch_size / median}


def main(argv):
    del argv
    if FLAGS.mixed_precision:
        import keras
        keras.mixed_precision.set_global_policy("mixed_float16")
    results = []
    for name in FLAGS.models:
        for steps_t in (int(t) for t in FLAGS.lengths):
            for mode in FLAGS.modes:
                r = measure(name, steps_t, mode)
                results.append(r)
                print(f"{name:32s} T={steps_t:<4d} {mode:9s} {r['examples_per_s']:8.0f} ex/s "
                      f"({r['median_step_s'] * 1000:.1f} ms/step)", flush=True)
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    app.run(main)
