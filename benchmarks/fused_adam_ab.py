r"""Interleaved A/B of Keras' Adam against `FusedAdam` (one fused kernel per
dense update) on whole training steps, both models built in one process and
timed alternately, round by round.

  python -m benchmarks.fused_adam_ab --models=dien_repo/DNN,dien_repo/DIEN \
      --lengths=10,100 --modes=faithful,fast --rounds=6 --round_steps=5 \
      --output=benchmarks/results/fused_adam_ab.json

Modes as in train_throughput.py (`recipes.mode_recipe`). faithful: the
original Adam over dense embedding gradients (A: Keras' Adam; B: FusedAdam,
the default). fast: LazyAdam with row updates (A: its dense variables through
Keras' Adam; B: through the fused kernel, the default).
Batch size: the model family's recipe's unless --batch_size is set.
"""

import statistics
import time

import numpy as np
from absl import app, flags

from benchmarks import train_throughput as tt
from din_tf.experiments import atomic_files

FLAGS = flags.FLAGS


def _define_flags():
    # With train_throughput's, when run as a script (see benchmarks/__init__.py).
    tt.define_flags()
    flags.DEFINE_integer("rounds", 6, "Alternating rounds.")
    flags.DEFINE_integer("round_steps", 5, "Timed steps per arm per round.")


def _arms(name, mode):
    import keras
    import tensorflow as tf
    from din_tf import models, training
    from din_tf.training import recipes

    class UnfusedLazyAdam(training.LazyAdam):
        def update_step(self, gradient, variable, learning_rate):
            if isinstance(gradient, tf.IndexedSlices):
                return super().update_step(gradient, variable, learning_rate)
            return keras.optimizers.Adam.update_step(self, gradient, variable, learning_rate)

    # The same optimizer with Keras' unfused dense update (arm A).
    unfused = {training.LazyAdam: UnfusedLazyAdam, training.FusedAdam: keras.optimizers.Adam}
    arms = []
    for fused in (False, True):
        keras.utils.set_random_seed(0)
        model = models.get_model(name, **tt.BOOKS)
        recipe = recipes.mode_recipe(model.training_recipe, mode)
        optimizer = recipe.make_optimizer()
        if not fused and type(optimizer) in unfused:
            optimizer = unfused[type(optimizer)].from_config(optimizer.get_config())
        model.compile(optimizer=optimizer, recipe=recipe, jit_compile=FLAGS.jit_compile)
        arms.append((model, tf.function(model.train_step, reduce_retracing=True)))
    return arms


def compare(name, steps_t, mode):
    from din_tf.training.recipes import recipe_for

    tt.fresh_session()
    batch = (FLAGS.batch_size if FLAGS["batch_size"].present
             else recipe_for(name).train_batch_size)
    rng = np.random.default_rng(0)
    batches = [tt.random_batch(rng, batch, steps_t) for _ in range(4)]
    arms = _arms(name, mode)
    for _, step in arms:
        for i in range(FLAGS.warmup):
            float(step(batches[i % 4])["loss"])
    times = [[], []]
    for r in range(FLAGS.rounds):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for a in order:
            step = arms[a][1]
            for i in range(FLAGS.round_steps):
                start = time.perf_counter()
                float(step(batches[i % 4])["loss"])
                times[a].append(time.perf_counter() - start)
    a_ms, b_ms = (statistics.median(t) * 1000 for t in times)
    return {"model": name, "T": steps_t, "mode": mode, "batch_size": batch,
            "jit_compile": FLAGS.jit_compile, "keras_adam_ms": a_ms, "fused_adam_ms": b_ms,
            "speedup": a_ms / b_ms}


def main(argv):
    del argv
    results = []
    for name in FLAGS.models:
        for steps_t in (int(t) for t in FLAGS.lengths):
            for mode in FLAGS.modes:
                r = compare(name, steps_t, mode)
                results.append(r)
                print(f"{name:30s} T={steps_t:<4d} {mode:9s} B={r['batch_size']:<4d} Keras Adam "
                      f"{r['keras_adam_ms']:7.1f} ms  FusedAdam {r['fused_adam_ms']:7.1f} ms  "
                      f"x{r['speedup']:.2f}", flush=True)
    atomic_files.write_json(FLAGS.output, results)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
