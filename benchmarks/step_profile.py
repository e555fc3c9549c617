r"""Where a training step's time goes: traces a few steps of one model with
TensorFlow's profiler and sums the kernel time per op type, beside the step's
wall time, so a speed claim can say which operation stands in the way.

  python -m benchmarks.step_profile --model=dien_repo/DNN --length=10 --mode=faithful
  python -m benchmarks.step_profile --model=dien_repo/DIEN --length=100 --mode=fast \
      --jit_compile --profile_output=benchmarks/results/profile_dien_fast.json

Models, modes, batches and vocabularies are `train_throughput.py`'s. Kernel
times are summed over every thread (both cores), so their total may exceed
the wall time when ops overlap. Under XLA the compiled forward and backward
pass is one op, "XLA cluster" (its kernels are not split out: compare it
with `roofline.py`'s matmul floor for the same shapes).
"""

import collections
import glob
import json
import os
import statistics
import tempfile
import time

import numpy as np
from absl import app, flags

from benchmarks import train_throughput as tt

FLAGS = flags.FLAGS


def _define_flags():
    # With train_throughput's, when run as a script (see benchmarks/__init__.py).
    tt.define_flags()
    flags.DEFINE_string("model", "dien_repo/DIEN", "Original model name.")
    flags.DEFINE_integer("length", 100, "History length T.")
    flags.DEFINE_enum("mode", "fast", ["faithful", "fast"], "Training mode.")
    flags.DEFINE_integer("profile_steps", 5, "Traced steps.")
    flags.DEFINE_integer("top", 25, "Op types printed.")
    flags.DEFINE_string("profile_output", None, "JSON output (none: print only).")


# Op types that are matrix products (oneDNN renames them).
MATMUL_TYPES = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "_MklMatMul",
                "_FusedMatMul", "_MklFusedMatMul", "_MklBatchMatMulV2", "_MklNativeFusedMatMul",
                "_MklNativeMatMul", "_MklNativeBatchMatMulV2")

# Executor events that span other ops' kernels (counting them twice); the
# XLA launch is traced at three nested levels, kept once as "XLA cluster".
NOT_KERNELS = ("Process", "Start", "Execute", "Done")
XLA_CLUSTER = "ExecuteAsyncOnStream"


def kernel_times(logdir):
    """{op type: total microseconds} from the host plane of an xplane trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    (path,) = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    totals = collections.Counter()
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        names = {k: m.name for k, m in plane.event_metadata.items()}
        for line in plane.lines:
            if line.name != "tf_Compute" and not line.name.startswith("tf_"):
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" not in name:
                    continue
                op_type = name.rsplit(":", 1)[1]
                if op_type in NOT_KERNELS:
                    continue
                totals["XLA cluster" if op_type == XLA_CLUSTER else op_type] += \
                    event.duration_ps / 1e6
    return totals


def main(argv):
    del argv
    if FLAGS["output"].present:  # train_throughput's flag: the parser takes it, unused here
        raise app.UsageError(f"--output={FLAGS.output!r} is not step_profile's JSON "
                             "output; use --profile_output.")
    import tensorflow as tf

    tt.fresh_session()
    model, step = tt.model_and_step(FLAGS.model, FLAGS.mode)
    rng = np.random.default_rng(0)
    batches = [tt.random_batch(rng, FLAGS.batch_size, FLAGS.length) for _ in range(4)]
    for i in range(max(FLAGS.warmup, 2)):
        float(step(batches[i % 4])["loss"])
    walls = []
    for i in range(FLAGS.steps):
        start = time.perf_counter()
        float(step(batches[i % 4])["loss"])
        walls.append(time.perf_counter() - start)
    wall_ms = statistics.median(walls) * 1000
    logdir = tempfile.mkdtemp(prefix="step_profile_")
    tf.profiler.experimental.start(logdir)
    for i in range(FLAGS.profile_steps):
        float(step(batches[i % 4])["loss"])
    tf.profiler.experimental.stop()
    totals = kernel_times(logdir)
    per_step = {k: v / 1000 / FLAGS.profile_steps for k, v in totals.items()}
    kernel_ms = sum(per_step.values())
    matmul_ms = sum(v for k, v in per_step.items() if k in MATMUL_TYPES)
    print(f"{FLAGS.model} T={FLAGS.length} {FLAGS.mode} xla={FLAGS.jit_compile:d} "
          f"B={FLAGS.batch_size}: wall {wall_ms:.1f} ms/step (median of {FLAGS.steps}); "
          f"kernels {kernel_ms:.1f} ms/step summed over threads, matmuls {matmul_ms:.1f}")
    for op_type, ms in sorted(per_step.items(), key=lambda kv: -kv[1])[:FLAGS.top]:
        print(f"  {op_type:40s} {ms:8.2f} ms/step  {100 * ms / kernel_ms:5.1f} %")

    if FLAGS.profile_output:
        with open(FLAGS.profile_output, "w", encoding="utf-8") as f:
            json.dump({"model": FLAGS.model, "T": FLAGS.length, "mode": FLAGS.mode,
                       "jit_compile": FLAGS.jit_compile, "batch_size": FLAGS.batch_size,
                       "wall_ms": wall_ms, "kernel_ms": kernel_ms, "matmul_ms": matmul_ms,
                       "op_ms": per_step}, f, indent=1)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
