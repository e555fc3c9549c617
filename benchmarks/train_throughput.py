r"""Training throughput (examples/s) of the zoo's models on the originals'
shapes: B=128, Books-size vocabularies (543,060 users, 367,983 items, 1,601
categories), every row of length T, synthetic ids.

  python -m benchmarks.train_throughput --models=dien_repo/DIEN,dien_repo/DIN \
      --lengths=10,30,100 --modes=faithful,fast --steps=20 --warmup=3 \
      --output=benchmarks/results/train_throughput.json

Modes (`din_tf.training.recipes.mode_recipe`): "faithful" = the model
family's training recipe (DIEN repo: TF1 Adam semantics, dense embedding
updates, every row moves every step); "fast" = the "fast" recipe's LazyAdam
with row-only updates (clipping stays the family's). A mode may carry options
joined by "+": "xla" (XLA-compile the forward and backward pass), "bf16" (the
mixed_bfloat16 policy), "fp16" (mixed_float16), e.g. `--modes=faithful,fast+xla,fast+xla+bf16`.
`--jit_compile` and `--mixed_precision` apply to every run. Prints one line
per run (median over the timed steps) and writes JSON.

`--steps_per_execution=N` (N > 1) times Keras' own multi-step train function
(`compile(steps_per_execution=N)`, what `model.fit` runs) over a repeating
tf.data pipeline of the same batches: one call runs N steps, so the per-call
overhead is paid once per N steps; the median call time is divided by N.

`--length_mix=uniform` replaces the fixed lengths by a realistic mix: row
lengths uniform in 1..max(--lengths), rows grouped into length buckets
(`--buckets`, upper bounds; empty = one bucket padded to the maximum), each
batch padded to its bucket's bound. Every bucket's shape is traced (and
compiled) before timing; examples/s = rows / total time of one pass over the
batches.
"""

import json
import os
import statistics
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    """train_throughput's flags, defined only when a script runs (this one,
    attention_fold_ab, fused_adam_ab, step_profile), so that benchmark modules
    import side by side."""
    flags.DEFINE_list("models", ["dien_repo/DIEN", "dien_repo/DIN"], "Original model names.")
    flags.DEFINE_list("lengths", ["10", "30", "100"], "History lengths T.")
    flags.DEFINE_list("modes", ["faithful", "fast"],
                      "faithful and/or fast, each optionally with +xla, +bf16 or +fp16.")
    flags.DEFINE_integer("batch_size", 128, "Rows per step.")
    flags.DEFINE_integer("steps", 20, "Timed steps per run.")
    flags.DEFINE_integer("warmup", 3, "Untimed steps per run (tracing included).")
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the train step.")
    flags.DEFINE_bool("mixed_precision", False, "mixed_float16 policy.")
    flags.DEFINE_integer("steps_per_execution", 1, "Steps per train-function call (>1: "
                         "Keras' multi-step function over tf.data, as model.fit runs it).",
                         lower_bound=1)
    flags.DEFINE_string("output", "benchmarks/results/train_throughput.json", "JSON output.")
    flags.DEFINE_enum("length_mix", "fixed", ["fixed", "uniform"],
                      "fixed: every row has length T; uniform: lengths uniform in 1..max T.")
    flags.DEFINE_list("buckets", ["10", "20", "30", "40", "50", "60", "70", "80", "90", "100"],
                      "Bucket upper bounds for --length_mix=uniform (empty: no bucketing).")
    flags.DEFINE_integer("mix_batches", 40, "Batches per pass for --length_mix=uniform.")


BOOKS = dict(n_users=543_060, n_items=367_983, n_categories=1_601)
MODE_OPTIONS = {"xla": ("jit_compile", True), "bf16": ("policy", "mixed_bfloat16"),
                "fp16": ("policy", "mixed_float16")}


def parse_mode(token):
    """"fast+xla+bf16" -> ("fast", {"jit_compile": True, "policy": "mixed_bfloat16"}),
    with the command line's --jit_compile / --mixed_precision as defaults."""
    mode, *options = token.split("+")
    if mode not in ("faithful", "fast"):
        raise ValueError(f"Invalid mode {token!r}: expected faithful or fast, optionally "
                         f"followed by +{'/+'.join(MODE_OPTIONS)}.")
    settings = {"jit_compile": FLAGS.jit_compile,
                "policy": "mixed_float16" if FLAGS.mixed_precision else "float32"}
    for option in options:
        if option not in MODE_OPTIONS:
            raise ValueError(f"Invalid option {option!r} in mode {token!r}; expected one of "
                             f"{sorted(MODE_OPTIONS)}.")
        key, value = MODE_OPTIONS[option]
        settings[key] = value
    return mode, settings


def random_batch(rng, batch, steps, negatives=5, lengths=None):
    shape = (batch, steps)
    lengths = np.full(batch, steps, np.int32) if lengths is None else lengths
    return {
        "user_id": rng.integers(1, BOOKS["n_users"], batch, dtype=np.int32),
        "item_id": rng.integers(1, BOOKS["n_items"], batch, dtype=np.int32),
        "category_id": rng.integers(1, BOOKS["n_categories"], batch, dtype=np.int32),
        "history_item_ids": rng.integers(1, BOOKS["n_items"], shape, dtype=np.int32),
        "history_category_ids": rng.integers(1, BOOKS["n_categories"], shape, dtype=np.int32),
        "history_length": lengths.astype(np.int32),
        "negative_item_ids": rng.integers(1, BOOKS["n_items"], shape + (negatives,),
                                          dtype=np.int32),
        "negative_category_ids": rng.integers(1, BOOKS["n_categories"], shape + (negatives,),
                                              dtype=np.int32),
    }, rng.integers(0, 2, batch).astype(np.float32)


def fresh_session(policy=None):
    """Frees the previous run's model, optimizer and compiled steps, so each
    run starts from the same process state (without it every model measured
    stayed alive: a 15-model invocation grew past 3 GB)."""
    import gc

    import keras

    keras.backend.clear_session()  # also resets the global dtype policy
    gc.collect()
    policy = policy or ("mixed_float16" if FLAGS.mixed_precision else "float32")
    if policy != "float32":
        keras.mixed_precision.set_global_policy(policy)


def compiled_model(name, mode, vocabulary=BOOKS, **compile_kwargs):
    """`name` freshly built (seed 0) and compiled as `mode` trains it
    (`recipes.mode_recipe` of the model's training recipe)."""
    import keras
    from din_tf import models
    from din_tf.training import recipes

    keras.utils.set_random_seed(0)
    model = models.get_model(name, **vocabulary)
    model.compile(recipe=recipes.mode_recipe(model.training_recipe, mode), **compile_kwargs)
    return model


def model_and_step(name, mode, jit_compile=None):
    """A freshly built, compiled model and its traced train step."""
    import tensorflow as tf

    model = compiled_model(name, mode,
                           jit_compile=FLAGS.jit_compile if jit_compile is None else jit_compile,
                           steps_per_execution=FLAGS.steps_per_execution)
    # model.jit_compile makes train_step XLA-compile its forward and backward pass.
    return model, tf.function(model.train_step, reduce_retracing=True)


def _record(model, name, steps_t, token, seconds_per_step, **extra):
    mode, settings = parse_mode(token)
    return {"model": name, "T": steps_t, "mode": mode, "arm": token,
            "batch_size": FLAGS.batch_size,
            "compute_dtype": model.dtype_policy.compute_dtype,
            "jit_compile": settings["jit_compile"],
            "mixed_precision": settings["policy"] != "float32", "policy": settings["policy"],
            "steps_per_execution": FLAGS.steps_per_execution,
            "median_step_s": seconds_per_step,
            "examples_per_s": FLAGS.batch_size / seconds_per_step, **extra}


def measure(name, steps_t, token):
    mode, settings = parse_mode(token)
    fresh_session(settings["policy"])
    model, step = model_and_step(name, mode, settings["jit_compile"])
    rng = np.random.default_rng(0)
    batches = [random_batch(rng, FLAGS.batch_size, steps_t) for _ in range(4)]
    if FLAGS.steps_per_execution > 1:
        return _record(model, name, steps_t, token, _seconds_per_step_in_calls(model, batches))
    for i in range(FLAGS.warmup):
        step(batches[i % 4])
    times = []
    for i in range(FLAGS.steps):
        start = time.perf_counter()
        logs = step(batches[i % 4])
        float(logs["loss"])  # wait for the step
        times.append(time.perf_counter() - start)
    return _record(model, name, steps_t, token, statistics.median(times))


def _seconds_per_step_in_calls(model, batches):
    """Median time of one call of Keras' multi-step train function, per step."""
    import tensorflow as tf

    # The same batches, in the same order, as the per-step loop cycles through.
    features = {k: np.concatenate([x[k] for x, _ in batches]) for k in batches[0][0]}
    labels = np.concatenate([y for _, y in batches])
    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(FLAGS.batch_size)
    iterator = iter(dataset.repeat())
    model.make_train_function()  # sets model.train_function (Keras returns None)
    train_function = model.train_function
    per_call = FLAGS.steps_per_execution
    calls = max(3, -(-FLAGS.steps // per_call))
    for _ in range(max(1, -(-FLAGS.warmup // per_call))):
        float(train_function(iterator)["loss"])
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        float(train_function(iterator)["loss"])  # wait for the call's last step
        times.append(time.perf_counter() - start)
    return statistics.median(times) / per_call


def mixed_batches(rng, max_steps, bounds, n_batches, batch):
    """Rows with lengths uniform in 1..max_steps, grouped by bucket (bounds:
    ascending upper bounds) into full batches padded to their bucket bound."""
    bounds = sorted(bounds) if bounds else [max_steps]
    lengths = rng.integers(1, max_steps + 1, n_batches * batch)
    bucket = np.searchsorted(bounds, lengths)
    batches = []
    for b, bound in enumerate(bounds):
        rows = lengths[bucket == b]
        for start in range(0, len(rows) - batch + 1, batch):  # full batches only
            batches.append(random_batch(rng, batch, bound, lengths=rows[start:start + batch]))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def measure_mix(name, max_steps, token):
    mode, settings = parse_mode(token)
    fresh_session(settings["policy"])
    model, step = model_and_step(name, mode, settings["jit_compile"])
    rng = np.random.default_rng(0)
    bounds = [int(b) for b in FLAGS.buckets if b]
    batches = mixed_batches(rng, max_steps, bounds, FLAGS.mix_batches, FLAGS.batch_size)
    seen = set()
    for b in batches:  # trace/compile every bucket's shape first
        steps_t = b[0]["history_item_ids"].shape[1]
        if steps_t not in seen:
            seen.add(steps_t)
            for _ in range(max(FLAGS.warmup, 1)):
                float(step(b)["loss"])
    start = time.perf_counter()
    for b in batches:
        logs = step(b)
    float(logs["loss"])
    seconds = time.perf_counter() - start
    mean_padded = float(np.mean([b[0]["history_item_ids"].shape[1] for b in batches]))
    return _record(model, name, f"uniform 1-{max_steps}", token, seconds / len(batches),
                   buckets=bounds, batches=len(batches), mean_padded_length=mean_padded)


def main(argv):
    del argv
    for token in FLAGS.modes:  # a bad mode fails before any model is built
        try:
            parse_mode(token)
        except ValueError as error:
            raise app.UsageError(f"--modes: {error}") from None
    results = []
    for name in FLAGS.models:
        lengths = [int(t) for t in FLAGS.lengths]
        runs = ([(t, measure) for t in lengths] if FLAGS.length_mix == "fixed"
                else [(max(lengths), measure_mix)])
        for steps_t, fn in runs:
            for token in FLAGS.modes:
                r = fn(name, steps_t, token)
                results.append(r)
                print(f"{name:32s} T={str(r['T']):<13s} {token:15s} xla={r['jit_compile']:d} "
                      f"{r['examples_per_s']:8.0f} ex/s ({r['median_step_s'] * 1000:.1f} ms/step)",
                      flush=True)
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    define_flags()
    app.run(main)
