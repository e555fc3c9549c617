r"""How far the training step is from what this machine's matmuls allow.

Measures float32 matmul throughput (TensorFlow, every intra-op thread) for
a 2048^3 product and for every matmul shape of one DIEN and one DIN (DIEN
repo) training step at B=128, T=100, then prints:

* the step's multiply-adds per example, as implemented here and as the
  originals code them (DIN attention's first layer on [q, k, q-k, q*k]; the
  auxiliary net without the shared hidden-state half);
* the *matmul floor*: the sum over the step's matmuls of their measured
  times, i.e. the step time if everything but the matmuls were free;
* the throughput ceilings that follow (examples/s at the floor, and at the
  2048^3 rate).

  python -m benchmarks.roofline --output=benchmarks/results/roofline.json

The shapes follow the implementation (`din_tf.layers`): GRU input
projections over all steps at once, two [B, H] recurrent matmuls per step
forward and two backward, recurrent weight gradients as one matmul over all
steps, the attention's query term once per row and the query folded into
a per-row kernel of the key term, the auxiliary net on
clicked and unclicked behaviours with the hidden-state half shared. The
prediction head (B rows) is left out: under 1 % of the step.
"""

import json
import os
import statistics
import time

import numpy as np
from absl import app, flags

EMBEDDING, UNITS = 36, 36      # item + category embedding (18 + 18); GRU width
ATTENTION, AUXILIARY = (80, 40), (100, 50)


def forward_matmuls(model, b, t):
    """[(m, k, n, count, part)] of one forward pass; `count` repeats."""
    bt, e, h = b * t, EMBEDDING, UNITS
    a1, a2 = ATTENTION
    # Keys are embeddings (DIN) or GRU states (DIEN). The first layer is B
    # products [T, D] x [D, U] with per-row kernels; timed as one [BT, D] x [D, U].
    attention = [(bt, e if model == "DIN" else h, a1, 1, "attention"),
                 (b, e, a1, 1, "attention"), (bt, a1, a2, 1, "attention"),
                 (bt, a2, 1, 1, "attention")]
    if model == "DIN":
        return attention
    x1, x2 = AUXILIARY
    rows = b * (t - 1)
    gru = [(bt, e, 3 * h, 1, "gru"), (b, h, 2 * h, t, "gru-step"), (b, h, h, t, "gru-step")]
    aux = [(rows, h, x1, 1, "auxiliary"), (2 * rows, e, x1, 1, "auxiliary"),
           (2 * rows, x1, x2, 1, "auxiliary"), (2 * rows, x2, 2, 1, "auxiliary")]
    augru = [(bt, h, 3 * h, 1, "augru"), (b, h, 2 * h, t, "augru-step"),
             (b, h, h, t, "augru-step")]
    return gru + aux + attention + augru


def step_matmuls(model, b, t):
    """Forward matmuls plus their backward: dX = dY W^T and dW = X^T dY for
    each; per-step recurrent matmuls carry dX in the loop and get their dW as
    one matmul over all steps."""
    out = []
    for m, k, n, count, part in forward_matmuls(model, b, t):
        out.append((m, k, n, count, part))
        if part.endswith("-step"):
            out.append((m, n, k, count, part))           # d_state through the step
            out.append((k, m * count, n, 1, part))       # dW over all steps
        else:
            out.append((m, n, k, count, part))           # dX
            out.append((k, m, n, count, part))           # dW
    return out


def original_forward_macs(model, t):
    """Multiply-adds per example as the originals code the forward pass."""
    e, h = EMBEDDING, UNITS
    a1, a2 = ATTENTION
    attention = t * (4 * e * a1 + a1 * a2 + a2)
    if model == "DIN":
        return attention
    x1, x2 = AUXILIARY
    gru = t * (e * 3 * h + h * 3 * h)
    aux = 2 * (t - 1) * ((h + e) * x1 + x1 * x2 + x2 * 2)
    return gru + aux + attention + gru


def time_matmul(m, k, n, repeats):
    """Median seconds of one [m, k] x [k, n] float32 matmul. Large products:
    10 distinct operand pairs per call, so nothing is reused. Small ones
    (the recurrent steps) run as an XLA loop of dependent iterations, as in
    the recurrence, so per-call overhead does not swamp them."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    right = tf.constant(rng.standard_normal((k, n), dtype=np.float32))
    if m * k * n >= 4_000_000:
        calls = 10
        lefts = [tf.constant(rng.standard_normal((m, k), dtype=np.float32))
                 for _ in range(calls)]

        @tf.function
        def run(lefts, right):
            return tf.add_n([tf.reduce_sum(tf.matmul(x, right)[:1, :1]) for x in lefts])
    else:
        calls = 200
        lefts = tf.constant(rng.standard_normal((10, m, k), dtype=np.float32))

        @tf.function(jit_compile=True)  # the fastest loop this TF offers
        def run(lefts, right):
            def body(i, total):
                # The operand depends on the iteration: nothing to hoist.
                x = tf.gather(lefts, i % 10) + total
                return i + 1, total + tf.matmul(x, right)[0, 0] * 1e-30
            return tf.while_loop(lambda i, _: i < calls, body, (0, 0.0))[1]

    run(lefts, right).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(lefts, right).numpy()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def measure(batch_size=128, steps=100, repeats=7, log=print):
    """The roofline report (a dict, see the module docstring); prints as it goes."""
    b, t = batch_size, steps
    peak_s = time_matmul(2048, 2048, 2048, 3)
    peak = 2 * 2048 ** 3 / peak_s
    log(f"2048^3 matmul: {peak / 1e9:.1f} GFLOP/s")
    cache, report = {}, {"batch_size": b, "T": t, "peak_2048_gflops": peak / 1e9, "models": {}}
    for model in ("DIEN", "DIN"):
        parts, total_macs, total_s = {}, 0, 0.0
        for m, k, n, count, part in step_matmuls(model, b, t):
            if (m, k, n) not in cache:
                cache[(m, k, n)] = time_matmul(m, k, n, repeats)
            seconds, macs = cache[(m, k, n)] * count, m * k * n * count
            entry = parts.setdefault(part, {"macs": 0, "seconds": 0.0})
            entry["macs"] += macs
            entry["seconds"] += seconds
            total_macs += macs
            total_s += seconds
        per_example = 2 * total_macs / b
        coded = 2 * 3 * original_forward_macs(model, t)
        result = {
            "flop_per_example": per_example,
            "flop_per_example_as_coded": coded,
            "matmul_floor_step_s": total_s,
            "ceiling_at_floor_examples_per_s": b / total_s,
            "ceiling_at_2048_rate_examples_per_s": peak / per_example,
            "parts": {p: {**v, "gflops": 2 * v["macs"] / v["seconds"] / 1e9}
                      for p, v in parts.items()},
        }
        report["models"][model] = result
        log(f"\n{model}: {per_example / 1e6:.1f} MFLOP/example as implemented "
            f"({coded / 1e6:.1f} as coded by the originals)")
        log(f"  matmul floor {total_s * 1e3:.1f} ms/step -> ceiling "
            f"{b / total_s:,.0f} ex/s; at the 2048^3 rate {peak / per_example:,.0f} ex/s")
        for part, v in result["parts"].items():
            log(f"  {part:12s} {v['seconds'] * 1e3:7.2f} ms  {v['gflops']:6.1f} GFLOP/s")
    return report


def write(report, path):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=1)


def main(argv):
    del argv
    write(measure(FLAGS.batch_size, FLAGS.steps, FLAGS.repeats), FLAGS.output)
    print(f"\nwrote {FLAGS.output}")


if __name__ == "__main__":
    FLAGS = flags.FLAGS
    flags.DEFINE_integer("batch_size", 128, "Rows per step.")
    flags.DEFINE_integer("steps", 100, "History length T.")
    flags.DEFINE_integer("repeats", 7, "Timed repeats per shape (median).")
    flags.DEFINE_string("output", "benchmarks/results/roofline.json", "JSON output.")
    app.run(main)
