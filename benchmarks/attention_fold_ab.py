r"""Interleaved A/B of DINAttention's two first-layer forms on whole training
steps: the [k, q * k] concatenation against the query folded into a per-row
kernel (`DINAttention(fold_min_steps=...)`, default `FOLD_MIN_STEPS`).

Both forms are built in one process as two copies of the model and timed
alternately, step by step, so a drift in the machine's speed hits both
alike (on the shared VM it drifted by up to 1.7x within hours).

  python -m benchmarks.attention_fold_ab --models=dien_repo/DIN,din_repo/din \
      --lengths=10,30,100 --steps=12 --warmup=3 --jit_compile \
      --output=benchmarks/results/attention_fold_ab.json

Takes train_throughput's flags (fast mode: LazyAdam, row updates).
"""

import json
import os
import statistics
import time

import numpy as np
from absl import app

from benchmarks import train_throughput as tt

FLAGS = tt.FLAGS
FORMS = {"concatenated": 10**9, "folded": 1}  # the fold_min_steps forcing each form


def _traced_step(name, form, batch):
    """Builds the model (train_throughput's fast mode) and traces its step
    with the attention forced into `form`; returns the step and its first loss."""
    from din_tf.layers import DINAttention

    model, step = tt.model_and_step(name, "fast")
    attention = [layer for layer in model.layers if isinstance(layer, DINAttention)]
    if not attention:
        raise app.UsageError(f"--models: {name} has no DINAttention layer.")
    for layer in attention:
        layer.fold_min_steps = FORMS[form]  # read when the step is traced
    first_loss = float(step(batch)["loss"])
    for _ in range(FLAGS.warmup - 1):
        float(step(batch)["loss"])
    return step, first_loss


def compare(name, steps_t):
    rng = np.random.default_rng(0)
    batches = [tt.random_batch(rng, FLAGS.batch_size, steps_t) for _ in range(4)]
    traced = {form: _traced_step(name, form, batches[0]) for form in FORMS}
    steps = {form: step for form, (step, _) in traced.items()}
    times = {form: [] for form in FORMS}
    for i in range(FLAGS.steps):
        for form, step in steps.items():
            start = time.perf_counter()
            float(step(batches[i % 4])["loss"])
            times[form].append(time.perf_counter() - start)
    medians = {form: statistics.median(t) for form, t in times.items()}
    return {"model": name, "T": steps_t, "batch_size": FLAGS.batch_size,
            "jit_compile": FLAGS.jit_compile,
            "median_step_s": medians,
            # Same seed, same weights: the forms must agree on the first step.
            "first_loss": {form: loss for form, (_, loss) in traced.items()},
            "folded_over_concatenated": medians["folded"] / medians["concatenated"]}


def main(argv):
    del argv
    results = []
    for name in FLAGS.models:
        for steps_t in (int(t) for t in FLAGS.lengths):
            r = compare(name, steps_t)
            results.append(r)
            m = r["median_step_s"]
            print(f"{name:24s} T={steps_t:<4d} xla={FLAGS.jit_compile:d} concatenated "
                  f"{m['concatenated'] * 1e3:7.1f} ms  folded {m['folded'] * 1e3:7.1f} ms  "
                  f"ratio {r['folded_over_concatenated']:.2f}", flush=True)
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    tt.define_flags()
    app.run(main)
