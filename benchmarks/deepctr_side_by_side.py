r"""Training throughput of DeepCTR 0.9.4's DIN and DIEN (github.com/shenweichen/
DeepCTR, `deepctr` on PyPI) side by side with the zoo's `dien_repo/DIN` and
`dien_repo/DIEN` (fast mode + XLA), on histories whose lengths are uniform in
1..100, interleaved over rounds, with the ratio ours / DeepCTR per model.

DeepCTR is not a dependency of this project: it lives in a venv you name and
runs in a child process with that venv's python. `--setup` creates the venv
(`python -m venv`, then about 30 s of pip; network needed) and then
measures; here as a smoke run (tiny step counts, noisy numbers):

  python -m benchmarks.deepctr_side_by_side --venv=/tmp/deepctr_venv --setup \
      --steps=3 --warmup=1 --rounds=1 --mix_batches=10 --buckets=50,100 \
      --output=/tmp/deepctr_smoke.json

The full measurement, once the venv exists:

  python -m benchmarks.deepctr_side_by_side --venv=/tmp/deepctr_venv \
      --models=dien_repo/DIN,dien_repo/DIEN --rounds=3 --steps=20 --warmup=3 \
      --output=benchmarks/results/deepctr_side_by_side.json

Without --setup the venv is only checked; if it is missing the script prints
one line saying what to run and exits with code 2.

What the venv needs (found by trying, 2026-12, Python 3.11):
  deepctr==0.9.4, tensorflow 2.21.0 and tf_keras 2.21.0 (pinned here as
  "tensorflow>=2.21,<2.22" "tf_keras>=2.21,<2.22"), run with
  TF_USE_LEGACY_KERAS=1 (DeepCTR builds on `tf.keras` and needs Keras 2).
  `from deepctr.models import DIN, DIEN` works as is, and DIN trains as is.
  DIEN needs one small shim (in the venv's child only, see
  `restore_removed_tf1_helpers`): its copy of TF 1.x's dynamic_rnn
  (deepctr/contrib/rnn_v2.py) calls `array_ops.stack/unstack`,
  `control_flow_ops.Assert/cond/while_loop` and `nest.is_sequence` on
  private TensorFlow modules, which TF 2.16+ no longer has; the shim binds
  the public equivalents (tf.stack, tf.compat.v1.cond, nest.is_nested, ...)
  there, changing nothing else. DIEN also needs "adam" by name with eager
  execution off (as DeepCTR's example runs it): tf_keras' graph-mode
  train_on_batch then uses its legacy Adam (the current Adam has no
  get_updates); DIN runs eagerly (tf.function) with tf_keras' current Adam.
  Both are Adam 1e-3. DeepCTR's estimator subpackage does not import on
  TF 2.16+ (no tf.estimator), but DIN and DIEN never touch it. On import
  DeepCTR starts a background thread that asks PyPI for its latest version;
  offline it prints "Please check the latest version manually" and carries on.

How each side is measured (B=128, Books-size vocabularies: 543,060 users,
367,983 items, 1,601 categories; embedding dim 18; Adam 1e-3):
  * DeepCTR: features as in its own DIN/DIEN examples (user, item_id,
    cate_id, hist_item_id and hist_cate_id sharing the item/category tables,
    seq_length; DIEN adds neg_hist_item_id / neg_hist_cate_id: one sampled
    negative per position, as DeepCTR's auxiliary loss takes). DeepCTR pads
    every batch to the maximum length (100), as its examples do, with id 0
    past each row's length; the lengths themselves are uniform in 1..100.
    DIEN: gru_type="AUGRU", use_negsampling=True. DNN 200-80 (the DIEN
    paper's; DeepCTR's default is 256-128-64) and attention 80-40 (the DIEN repository's and DeepCTR's DIN
    default; DeepCTR's DIEN default is 64-16), DeepCTR's default activations.
    Embedding L2 is off by default (`--deepctr_l2_embedding=0`) because the
    models we compare with have none; DeepCTR's default 1e-6 regularises the
    whole tables every step (pass 1e-6 to time that). Timing: `train_on_batch`
    on pre-built numpy batches, median of `--steps` timed steps after
    `--warmup` untimed ones.
  * Ours: `python -m benchmarks.train_throughput --length_mix=uniform
    --lengths=100 --modes=fast --jit_compile` in a child with this interpreter: the same
    length distribution, rows grouped into length buckets (`--buckets`,
    default 10, 20, ..., 100), each batch padded to its bucket's bound; every
    bucket's shape is compiled first, then examples/s = rows / time of one
    pass over `--mix_batches` batches.

Each round runs, per model, DeepCTR then ours (ours first on odd rounds), so
slow drifts of the machine hit both sides alike. Every measurement is printed
as it comes; the final table gives medians and ranges over rounds and the
ratio of medians (ours / DeepCTR). JSON goes to `--output` (written
atomically).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

from benchmarks import REPO, child_path

FLAGS = flags.FLAGS

BOOKS = dict(n_users=543_060, n_items=367_983, n_categories=1_601)
EMBEDDING_DIM = 18
# Our model name -> DeepCTR's model function name.
DEEPCTR_MODELS = {"dien_repo/DIN": "DIN", "dien_repo/DIEN": "DIEN"}
# What --setup installs (see the docstring for how these were found).
VENV_REQUIREMENTS = ["deepctr==0.9.4", "tensorflow>=2.21,<2.22", "tf_keras>=2.21,<2.22"]
VENV_MODULES = ["deepctr", "tf_keras", "tensorflow"]


# ---------------------------------------------------------------- venv

def venv_python(venv):
    return os.path.join(venv, "bin", "python")


def _venv_modules_probe():
    # find_spec only locates the packages: importing TensorFlow here would
    # cost seconds of CPU on a machine others are timing on.
    return ("import importlib.util; missing = [m for m in %r "
            "if importlib.util.find_spec(m) is None]; print(','.join(missing))" % VENV_MODULES)


def venv_problem(venv):
    """None if `venv` has a python with the packages DeepCTR needs, else a
    one-line reason."""
    if not venv:
        return "no --venv given"
    python = venv_python(venv)
    if not os.path.isfile(python):
        return f"no venv at {venv} ({python} does not exist)"
    done = subprocess.run([python, "-c", _venv_modules_probe()], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        return f"{python} does not run (exit {done.returncode})"
    missing = done.stdout.strip()
    return f"the venv at {venv} lacks {missing}" if missing else None


def setup_command(venv):
    return (f"python -m benchmarks.deepctr_side_by_side --venv={venv or '/tmp/deepctr_venv'} "
            "--setup")


def setup_venv(venv):
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([venv_python(venv), "-m", "pip", "install", "-q", *VENV_REQUIREMENTS],
                   check=True)


# ---------------------------------------------------------------- DeepCTR side (venv child)

def deepctr_batches(rng, n, batch, max_length, negatives):
    """`n` DeepCTR input dicts: lengths uniform in 1..max_length, every batch
    padded to max_length with id 0 (DeepCTR's DIN masks id 0; its DIEN masks
    by seq_length)."""
    out = []
    for _ in range(n):
        lengths = rng.integers(1, max_length + 1, batch)
        valid = np.arange(max_length)[None, :] < lengths[:, None]

        def history(vocab):
            return np.where(valid, rng.integers(1, vocab, (batch, max_length)), 0).astype(np.int32)

        x = {"user": rng.integers(1, BOOKS["n_users"], batch).astype(np.int32),
             "item_id": rng.integers(1, BOOKS["n_items"], batch).astype(np.int32),
             "cate_id": rng.integers(1, BOOKS["n_categories"], batch).astype(np.int32),
             "hist_item_id": history(BOOKS["n_items"]),
             "hist_cate_id": history(BOOKS["n_categories"]),
             "seq_length": lengths.astype(np.int32).reshape(batch, 1)}
        if negatives:
            x["neg_hist_item_id"] = history(BOOKS["n_items"])
            x["neg_hist_cate_id"] = history(BOOKS["n_categories"])
        out.append((x, rng.integers(0, 2, (batch, 1)).astype(np.float32)))
    return out


def _deepctr_model(kind, max_length):
    import tensorflow as tf
    from deepctr.feature_column import SparseFeat, VarLenSparseFeat, get_feature_names
    from deepctr.models import DIEN, DIN

    def hist(name, vocab, shared):
        return VarLenSparseFeat(SparseFeat(name, vocab, embedding_dim=EMBEDDING_DIM,
                                           embedding_name=shared),
                                maxlen=max_length, length_name="seq_length")

    columns = [SparseFeat("user", BOOKS["n_users"], embedding_dim=EMBEDDING_DIM),
               SparseFeat("item_id", BOOKS["n_items"], embedding_dim=EMBEDDING_DIM),
               SparseFeat("cate_id", BOOKS["n_categories"], embedding_dim=EMBEDDING_DIM),
               hist("hist_item_id", BOOKS["n_items"], "item_id"),
               hist("hist_cate_id", BOOKS["n_categories"], "cate_id")]
    common = dict(dnn_hidden_units=(200, 80), l2_reg_embedding=FLAGS.deepctr_l2_embedding)
    if kind == "DIN":
        model = DIN(columns, ["item_id", "cate_id"], att_hidden_size=(80, 40), **common)
    else:
        columns += [hist("neg_hist_item_id", BOOKS["n_items"], "item_id"),
                    hist("neg_hist_cate_id", BOOKS["n_categories"], "cate_id")]
        model = DIEN(columns, ["item_id", "cate_id"], gru_type="AUGRU", use_negsampling=True,
                     att_hidden_units=(80, 40), **common)
    # "adam" as DeepCTR's examples compile: Adam 1e-3, and with eager off
    # (DIEN) tf_keras picks its legacy Adam, the only one its graph-mode
    # train function can drive (the current one has no get_updates).
    model.compile("adam", "binary_crossentropy")
    return model, get_feature_names(columns)


def restore_removed_tf1_helpers(tf):
    """DeepCTR's DIEN runs its copy of TF 1.x's dynamic_rnn
    (deepctr/contrib/rnn_v2.py), which looks up helpers on private TensorFlow
    modules that TF 2.16+ moved away. Put the public equivalents back where
    it looks, only where missing (its other private look-ups, `_Linear` and
    `_like_rnncell`, have fallbacks in DeepCTR itself). This runs in the
    venv's child only; `tensorflow.python` is where DeepCTR reaches, so the
    shim has to reach there too."""
    from tensorflow.python.ops import array_ops, control_flow_ops
    from tensorflow.python.util import nest

    v1 = tf.compat.v1
    restored = {array_ops: {"stack": tf.stack, "unstack": tf.unstack},
                control_flow_ops: {"Assert": v1.Assert, "cond": v1.cond,
                                   "while_loop": v1.while_loop},
                nest: {"is_sequence": nest.is_nested}}
    added = []
    for module, helpers in restored.items():
        for name, helper in helpers.items():
            if not hasattr(module, name):
                setattr(module, name, helper)
                added.append(f"{module.__name__.rsplit('.', 1)[-1]}.{name}")
    return added


def measure_deepctr_here(kind):
    """Times DeepCTR's `kind` (DIN or DIEN) in this process (the venv's)."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before TensorFlow is imported
    import tensorflow as tf

    if kind == "DIEN":
        # DeepCTR's DIEN runs a TF1 session at build time; its own example
        # turns eager execution off on TF 2.
        tf.compat.v1.disable_eager_execution()
    # Only DIEN runs DeepCTR's TF1 RNN code; DIN needs no shim.
    shimmed = restore_removed_tf1_helpers(tf) if kind == "DIEN" else []
    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    model, names = _deepctr_model(kind, FLAGS.max_length)
    batches = [({k: x[k] for k in names}, y)
               for x, y in deepctr_batches(rng, 4, FLAGS.batch_size, FLAGS.max_length,
                                           negatives=kind == "DIEN")]
    for i in range(FLAGS.warmup):
        model.train_on_batch(*batches[i % 4])
    times = []
    for i in range(FLAGS.steps):
        start = time.perf_counter()
        loss = model.train_on_batch(*batches[i % 4])  # returns numbers: the step is done
        times.append(time.perf_counter() - start)
    loss = float(np.ravel(loss)[0])
    if not np.isfinite(loss):
        raise RuntimeError(f"DeepCTR {kind}: loss is {loss}.")
    seconds = statistics.median(times)
    import deepctr

    return {"side": "deepctr", "deepctr_model": kind, "median_step_s": seconds,
            "examples_per_s": FLAGS.batch_size / seconds, "padded_length": FLAGS.max_length,
            "steps": FLAGS.steps, "warmup": FLAGS.warmup, "loss": loss,
            "eager": tf.executing_eagerly(), "optimizer": type(model.optimizer).__module__
            + "." + type(model.optimizer).__name__, "tf1_helpers_restored": shimmed,
            "versions": {"deepctr": deepctr.__version__, "tensorflow": tf.__version__,
                         "tf_keras": _version("tf_keras")}}


def _version(module):
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return None


def _json_line(stdout):
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def measure_deepctr(name):
    kind = DEEPCTR_MODELS[name]
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    args = [venv_python(child_path(FLAGS.venv)), "-m", "benchmarks.deepctr_side_by_side",
            f"--measure_deepctr={kind}",
            f"--steps={FLAGS.steps}", f"--warmup={FLAGS.warmup}",
            f"--batch_size={FLAGS.batch_size}", f"--max_length={FLAGS.max_length}",
            f"--deepctr_l2_embedding={FLAGS.deepctr_l2_embedding}"]
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    record = _json_line(done.stdout)
    if done.returncode != 0 or record is None:
        raise RuntimeError(f"Timing DeepCTR {kind} failed (exit {done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    return {"model": name, **record}


# ---------------------------------------------------------------- our side (child)

def measure_ours(name):
    """train_throughput's uniform-length measurement, fast mode + XLA, in a
    fresh child (its absl flags share names with ours, and a fresh process
    keeps rounds independent)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "ours.json")
        args = [sys.executable, "-m", "benchmarks.train_throughput", f"--models={name}",
                "--length_mix=uniform", f"--lengths={FLAGS.max_length}", "--modes=fast",
                "--jit_compile", f"--batch_size={FLAGS.batch_size}",
                f"--warmup={FLAGS.warmup}", f"--mix_batches={FLAGS.mix_batches}",
                f"--buckets={','.join(FLAGS.buckets)}", f"--output={out}"]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0 or not os.path.isfile(out):
            raise RuntimeError(f"Timing our {name} failed (exit {done.returncode}):\n"
                               f"{done.stderr[-3000:]}")
        with open(out, encoding="utf-8") as f:
            (record,) = json.load(f)
    return {**record, "model": name, "side": "ours"}


# ---------------------------------------------------------------- summary (pure)

def summarize(records):
    """Per model (in first-seen order): median and range of each side's
    examples/s over rounds, and the ratio of medians ours / DeepCTR (None if
    a side has no measurement)."""
    rows = []
    for model in dict.fromkeys(r["model"] for r in records):
        row = {"model": model}
        for side in ("deepctr", "ours"):
            values = [r["examples_per_s"] for r in records
                      if r["model"] == model and r["side"] == side]
            row[side] = ({"median": statistics.median(values), "min": min(values),
                          "max": max(values), "n": len(values)} if values else None)
        row["ratio"] = (row["ours"]["median"] / row["deepctr"]["median"]
                        if row["ours"] and row["deepctr"] else None)
        rows.append(row)
    return rows


def _cell(stats):
    if not stats:
        return "-"
    return f"{stats['median']:.0f} ({stats['min']:.0f}-{stats['max']:.0f})"


def format_table(rows):
    header = ("| model | DeepCTR ex/s median (range) | ours ex/s median (range) | "
              "ours / DeepCTR |")
    lines = [header, "|---|---|---|---|"]
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        lines.append(f"| {row['model']} | {_cell(row['deepctr'])} | {_cell(row['ours'])} | "
                     f"{ratio} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def _fail(message):
    # One line, no traceback: this is a usage problem, not a bug.
    print(f"deepctr_side_by_side: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def _define_flags():
    # Only when run as a script (see benchmarks/__init__.py).
    flags.DEFINE_string("venv", None, "Directory of the venv with deepctr (made by --setup).")
    flags.DEFINE_bool("setup", False,
                      "Create --venv and pip-install DeepCTR and its TensorFlow into it.")
    flags.DEFINE_list("models", ["dien_repo/DIN", "dien_repo/DIEN"], "Zoo models to compare.")
    flags.DEFINE_integer("rounds", 3, "Interleaved rounds.", lower_bound=1)
    flags.DEFINE_integer("batch_size", 128, "Rows per step.")
    flags.DEFINE_integer("max_length", 100,
                         "Longest history; lengths are uniform in 1..max_length.")
    flags.DEFINE_integer("steps", 20, "DeepCTR: timed steps per measurement.")
    flags.DEFINE_integer("warmup", 3, "Untimed steps per measurement (ours: per bucket shape).")
    flags.DEFINE_integer("mix_batches", 40, "Ours: batches per timed pass (train_throughput's).")
    flags.DEFINE_list("buckets", ["10", "20", "30", "40", "50", "60", "70", "80", "90", "100"],
                      "Ours: length bucket upper bounds.")
    flags.DEFINE_float("deepctr_l2_embedding", 0.0,
                       "DeepCTR's l2_reg_embedding (its default: 1e-6).")
    flags.DEFINE_string("output", "benchmarks/results/deepctr_side_by_side.json",
                        "JSON output.")
    flags.DEFINE_string("measure_deepctr", None, "Internal: 'DIN' or 'DIEN' to time in this "
                        "process (which must be the venv's python).")


def main(argv):
    del argv
    if FLAGS.measure_deepctr:
        print(json.dumps(measure_deepctr_here(FLAGS.measure_deepctr)), flush=True)
        return
    unknown = [m for m in FLAGS.models if m not in DEEPCTR_MODELS]
    if unknown:
        _fail(f"--models: {unknown} have no DeepCTR counterpart; expected some of "
              f"{sorted(DEEPCTR_MODELS)}")
    if FLAGS.setup:
        if not FLAGS.venv:
            _fail("--setup needs --venv=PATH (the directory to create)")
        setup_venv(FLAGS.venv)
    problem = venv_problem(FLAGS.venv)
    if problem:
        _fail(f"{problem}; create it with: {setup_command(FLAGS.venv)}")
    records = []
    for r in range(FLAGS.rounds):
        sides = [("deepctr", measure_deepctr), ("ours", measure_ours)]
        if r % 2:  # alternate which side goes first
            sides.reverse()
        for name in FLAGS.models:
            for side, measure in sides:
                record = {**measure(name), "round": r}
                records.append(record)
                print(f"round {r} {side:7s} {name:16s} {record['examples_per_s']:8.0f} ex/s "
                      f"({record['median_step_s'] * 1000:.1f} ms/step)", flush=True)
    rows = summarize(records)
    print(format_table(rows), flush=True)
    from din_tf.experiments import atomic_files  # not at the top: the venv's child has no project

    atomic_files.write_json(FLAGS.output, {"records": records, "summary": rows})


if __name__ == "__main__":
    _define_flags()
    app.run(main)
