r"""Training throughput of the *original* TF1 code on this machine, on the
same shapes and synthetic batches as `train_throughput.py`, so the zoo's
speed-ups are ratios measured side by side rather than against figures taken
on another machine.

The originals are read from your own checkouts (nothing is downloaded or
copied into this project) and run under `tf.compat.v1` with TF-Keras 2
(`tf.layers`, TF1 RNN cells). Keep TF-Keras out of the zoo's environment:

  python -m venv /tmp/origenv
  /tmp/origenv/bin/pip install "tensorflow>=2.21,<2.22" "tf_keras>=2.21,<2.22"
  git clone https://github.com/mouna99/dien /tmp/orig/dien
  git clone https://github.com/zhougr1993/DeepInterestNetwork /tmp/orig/din
  python -m benchmarks.original_throughput --python=/tmp/origenv/bin/python \
      --dien_repo_dir=/tmp/orig/dien --din_repo_dir=/tmp/orig/din \
      --models=dien_repo/DIEN,dien_repo/DIN,din_repo/din --lengths=10,30,100 \
      --output=benchmarks/results/original_throughput.json

Every run is a fresh `--python` process (the two repos both define a `Dice`
module, and each graph starts from a clean session). Batch size defaults to
each repo's own: 128 (DIEN repo, Adam 1e-3) and 32 (DIN repo, SGD lr 1 with
global-norm clip 5; its DeepFM: Adam 1e-3). Vocabularies are Books-size, as in `train_throughput.py`.
The DIN repo's Python 2 `print x` statements are skipped when loading; nothing
else in the original code is changed. The DIN repo's wide_deep cannot run on
CPU as coded (it gathers index -1) and is refused with the reason.
"""

import inspect
import json
import os
import re
import statistics
import subprocess
import sys
import time
import types

import numpy as np
from absl import app, flags

from benchmarks import REPO, child_path

FLAGS = flags.FLAGS


def _define_flags():
    # Only when run as a script (see benchmarks/__init__.py).
    flags.DEFINE_list("models", ["dien_repo/DIEN", "dien_repo/DIN", "din_repo/din"],
                      "Zoo names of the original models to time.")
    flags.DEFINE_list("lengths", ["10", "30", "100"], "History lengths T.")
    flags.DEFINE_integer("batch_size", 0,
                         "Rows per step; 0: the original repo's own (128 / 32).")
    flags.DEFINE_integer("steps", 20, "Timed steps per run.")
    flags.DEFINE_integer("warmup", 3, "Untimed steps per run.")
    flags.DEFINE_string("dien_repo_dir", None, "Checkout of github.com/mouna99/dien.")
    flags.DEFINE_string("din_repo_dir", None,
                        "Checkout of github.com/zhougr1993/DeepInterestNetwork.")
    flags.DEFINE_string("python", sys.executable,
                        "Interpreter with tensorflow and tf_keras installed (runs the originals).")
    flags.DEFINE_bool("onednn", True, "TF_ENABLE_ONEDNN_OPTS=1 (TensorFlow's CPU default).")
    flags.DEFINE_string("output", "benchmarks/results/original_throughput.json", "JSON output.")
    flags.DEFINE_string("measure", None, "Internal: 'model:T:batch' to time in this process.")


BOOKS = dict(n_users=543_060, n_items=367_983, n_categories=1_601)

# The DIEN repo's train.py: embedding 18, GRU hidden 36, attention 36.
DIEN_REPO_CLASSES = {
    "dien_repo/DNN": "Model_DNN",
    "dien_repo/PNN": "Model_PNN",
    "dien_repo/Wide": "Model_WideDeep",
    "dien_repo/DIN": "Model_DIN",
    "dien_repo/DIN-V2-gru-att-gru": "Model_DIN_V2_Gru_att_Gru",
    "dien_repo/DIN-V2-gru-gru-att": "Model_DIN_V2_Gru_Gru_att",
    "dien_repo/DIN-V2-gru-qa-attGru": "Model_DIN_V2_Gru_QA_attGru",
    "dien_repo/DIN-V2-gru-vec-attGru": "Model_DIN_V2_Gru_Vec_attGru",
    "dien_repo/DIEN": "Model_DIN_V2_Gru_Vec_attGru_Neg",
}
# The DIN repo keeps one model per folder, each a `Model` class, trained by
# its train.py from a starting learning rate (SGD 1.0; DeepFM: Adam 1e-3).
DIN_REPO_FILES = {
    "din_repo/base": ("base_model", "model.py", 1.0),
    "din_repo/pnn": ("pnn", "model.py", 1.0),
    "din_repo/deepfm": ("deepFM", "model.py", 1e-3),
    "din_repo/din": ("din", "model.py", 1.0),
    "din_repo/din_dice": ("din", "model_dice.py", 1.0),
}
# Originals that fail on CPU as coded, with the reason
# (docs/original_code.md#where-the-din-repo-code-is-not-followed):
# not runnable here, so not in the tables above.
GPU_ONLY = {"din_repo/wide_deep": "its wide part gathers index -1, which TensorFlow "
                                  "rejects on CPU (the GPU kernel returns zeros)"}
ORIGINAL_BATCH = {"dien_repo": 128, "din_repo": 32}
NEGATIVES = 5  # the DIEN repo's data iterator samples 5 per step
_PY2_PRINT = re.compile(r"^([ \t]*)print(?:[ \t]+(?!\()|$).*$", re.M)


def check_model(name):
    if name in GPU_ONLY:
        raise ValueError(f"The original {name} cannot run on CPU as coded: "
                         f"{GPU_ONLY[name]}; leave it out of --models.")
    if name not in DIEN_REPO_CLASSES and name not in DIN_REPO_FILES:
        raise ValueError(f"Invalid model {name!r}; expected one of "
                         f"{sorted(DIEN_REPO_CLASSES) + sorted(DIN_REPO_FILES)}.")
    return name


def py3_source(source):
    """The DIN repo is Python 2: its `print x` statements become `pass`."""
    return _PY2_PRINT.sub(lambda m: f"{m.group(1)}pass", source)


class _TF1Linear:
    """Stand-in for TF 1.x's private `rnn_cell_impl._Linear` (gone from TF 2),
    which the DIEN repo's GRU cells build on: one `kernel` [sum of input
    widths, output_size] (the scope's default initializer unless given) and
    an optional `bias` (zeros unless given) in the current variable scope;
    calling it concatenates the inputs and applies both."""

    def __init__(self, args, output_size, build_bias, bias_initializer=None,
                 kernel_initializer=None):
        import tensorflow as tf

        v1 = tf.compat.v1
        args = list(args) if isinstance(args, (list, tuple)) else [args]
        width = sum(int(a.shape[-1]) for a in args)
        dtype = args[0].dtype
        self._kernel = v1.get_variable("kernel", [width, output_size], dtype=dtype,
                                       initializer=kernel_initializer)
        self._bias = None
        if build_bias:
            self._bias = v1.get_variable(
                "bias", [output_size], dtype=dtype,
                initializer=bias_initializer or v1.constant_initializer(0.0, dtype=dtype))

    def __call__(self, args):
        import tensorflow as tf

        args = list(args) if isinstance(args, (list, tuple)) else [args]
        joined = args[0] if len(args) == 1 else tf.concat(args, 1)
        out = tf.matmul(joined, self._kernel)
        return out if self._bias is None else tf.nn.bias_add(out, self._bias)


def _quacks_like_rnn_cell(cell):
    return all(hasattr(cell, a) for a in ("output_size", "state_size", "zero_state")) \
        and callable(cell)


def restore_removed_tf1_helpers(tf_v1):
    """The DIEN repo's copy of TF 1.x's `rnn.py` and its cells reach into
    private TF modules for helpers that TF 2 removed or moved; put the public
    equivalents back where it looks. (`tensorflow.python` imports are
    unavoidable here: that is where the original code reaches.)"""
    from tensorflow.python.ops import array_ops, control_flow_ops, rnn_cell_impl
    from tensorflow.python.util import nest

    restored = {
        rnn_cell_impl: {"_like_rnncell": _quacks_like_rnn_cell, "_Linear": _TF1Linear},
        array_ops: {"stack": tf_v1.stack, "unstack": tf_v1.unstack},
        control_flow_ops: {"Assert": tf_v1.Assert, "cond": tf_v1.cond,
                           "while_loop": tf_v1.while_loop},
        nest: {"is_sequence": nest.is_nested},
    }
    for module, helpers in restored.items():
        for name, helper in helpers.items():
            if not hasattr(module, name):
                setattr(module, name, helper)


def load_original(path, module_name, tf_v1):
    """Imports an original source file with `import tensorflow` bound to
    `tf.compat.v1` (also for the sibling modules it imports)."""
    folder = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as f:
        source = py3_source(f.read())
    module = types.ModuleType(module_name)
    module.__file__ = path
    # utils.py imports `keras.backend` (unused): import it under the real
    # TensorFlow first, it cannot initialise on top of compat.v1.
    import keras.backend  # noqa: F401

    real_tf = sys.modules["tensorflow"]
    sys.modules["tensorflow"] = tf_v1
    sys.path.insert(0, folder)
    try:
        exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102 - the user's checkout
    finally:
        sys.path.remove(folder)
        sys.modules["tensorflow"] = real_tf
    return module


def synthetic_batch(rng, batch, steps):
    """Ids as `train_throughput.random_batch` draws them (every row of length T)."""
    shape = (batch, steps)
    return dict(
        user=rng.integers(1, BOOKS["n_users"], batch, dtype=np.int32),
        item=rng.integers(1, BOOKS["n_items"], batch, dtype=np.int32),
        category=rng.integers(1, BOOKS["n_categories"], batch, dtype=np.int32),
        history_items=rng.integers(1, BOOKS["n_items"], shape, dtype=np.int32),
        history_categories=rng.integers(1, BOOKS["n_categories"], shape, dtype=np.int32),
        negative_items=rng.integers(1, BOOKS["n_items"], shape + (NEGATIVES,), dtype=np.int32),
        negative_categories=rng.integers(1, BOOKS["n_categories"], shape + (NEGATIVES,),
                                         dtype=np.int32),
        label=rng.integers(0, 2, batch).astype(np.float32),
    )


def _dien_repo_step(tf_v1, name, rng, batch, steps):
    module = load_original(os.path.join(FLAGS.dien_repo_dir, "script", "model.py"),
                           "dien_repo_model", tf_v1)
    model = getattr(module, DIEN_REPO_CLASSES[name])(
        BOOKS["n_users"], BOOKS["n_items"], BOOKS["n_categories"], 18, 36, 36)
    session = tf_v1.Session()
    session.run(tf_v1.global_variables_initializer())
    session.run(tf_v1.local_variables_initializer())

    def inputs(b):
        target = np.stack([b["label"], 1 - b["label"]], -1)
        return [b["user"], b["item"], b["category"], b["history_items"],
                b["history_categories"], np.ones((batch, steps), np.float32), target,
                np.full(batch, steps, np.int32), 1e-3, b["negative_items"],
                b["negative_categories"]]

    batches = [inputs(synthetic_batch(rng, batch, steps)) for _ in range(4)]
    return lambda i: model.train(session, batches[i % 4])[0]


def _din_repo_step(tf_v1, name, rng, batch, steps):
    folder, filename, learning_rate = DIN_REPO_FILES[name]
    module = load_original(os.path.join(FLAGS.din_repo_dir, folder, filename),
                           "din_repo_model", tf_v1)
    category_of_item = rng.integers(0, BOOKS["n_categories"], BOOKS["n_items"])
    args = [BOOKS["n_users"], BOOKS["n_items"], BOOKS["n_categories"], category_of_item]
    # Only din/ takes predict_batch_size / predict_ads_num; they shape its
    # unused evaluation graph.
    if "predict_ads_num" in inspect.signature(module.Model.__init__).parameters:
        args += [32, 100]
    model = module.Model(*args)
    session = tf_v1.Session()
    session.run(tf_v1.global_variables_initializer())
    session.run(tf_v1.local_variables_initializer())

    def inputs(b):
        return (b["user"], b["item"], b["label"], b["history_items"],
                np.full(batch, steps, np.int32))

    batches = [inputs(synthetic_batch(rng, batch, steps)) for _ in range(4)]
    return lambda i: model.train(session, batches[i % 4], learning_rate)


def measure_here(name, steps, batch):
    """Times one original model in this process (which must have tf_keras)."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf

    tf_v1 = tf.compat.v1
    tf_v1.disable_v2_behavior()
    restore_removed_tf1_helpers(tf_v1)
    tf_v1.set_random_seed(0)
    rng = np.random.default_rng(0)
    build = _dien_repo_step if name.startswith("dien_repo/") else _din_repo_step
    step = build(tf_v1, name, rng, batch, steps)
    for i in range(FLAGS.warmup):
        step(i)
    times = []
    for i in range(FLAGS.steps):
        start = time.perf_counter()
        loss = step(i)
        times.append(time.perf_counter() - start)
    if not np.isfinite(loss):
        raise RuntimeError(f"{name} T={steps}: the original's loss is {loss}.")
    seconds = statistics.median(times)
    return {"model": name, "T": steps, "batch_size": batch, "code": "original",
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "") != "0",
            "tensorflow": tf.__version__, "median_step_s": seconds,
            "examples_per_s": batch / seconds}


def _child_args(name, steps, batch):
    return [FLAGS.python, "-m", "benchmarks.original_throughput",
            f"--measure={name}:{steps}:{batch}", f"--steps={FLAGS.steps}",
            f"--warmup={FLAGS.warmup}",
            f"--dien_repo_dir={child_path(FLAGS.dien_repo_dir)}",
            f"--din_repo_dir={child_path(FLAGS.din_repo_dir)}"]


def measure_in_child(name, steps, batch):
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3",
               TF_ENABLE_ONEDNN_OPTS="1" if FLAGS.onednn else "0")
    done = subprocess.run(_child_args(name, steps, batch), cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"Timing the original {name} (T={steps}) failed "
                           f"(exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def _check_dirs(models):
    for prefix, flag, probe in (("dien_repo/", "dien_repo_dir", "script/model.py"),
                                ("din_repo/", "din_repo_dir", "din/model.py")):
        if not any(m.startswith(prefix) for m in models):
            continue
        folder = getattr(FLAGS, flag)
        if not folder or not os.path.isfile(os.path.join(folder, probe)):
            raise app.UsageError(f"--{flag}={folder!r} is not a checkout of the original "
                                 f"repository (no {probe} in it).")


def main(argv):
    del argv
    if FLAGS.measure:
        name, steps, batch = FLAGS.measure.split(":")
        print(json.dumps(measure_here(check_model(name), int(steps), int(batch))), flush=True)
        return
    models = [check_model(m) for m in FLAGS.models]
    _check_dirs(models)
    results = []
    for name in models:
        batch = FLAGS.batch_size or ORIGINAL_BATCH[name.split("/")[0]]
        for steps in (int(t) for t in FLAGS.lengths):
            r = measure_in_child(name, steps, batch)
            results.append(r)
            print(f"original {name:30s} T={steps:<4d} B={batch:<4d} "
                  f"{r['examples_per_s']:8.0f} ex/s ({r['median_step_s'] * 1000:.1f} ms/step)",
                  flush=True)
    os.makedirs(os.path.dirname(FLAGS.output) or ".", exist_ok=True)
    with open(FLAGS.output, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
