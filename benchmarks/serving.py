r"""Served latency, throughput and peak memory of the zoo's models on the
originals' shapes: Books-size vocabularies (543,060 users, 367,983 items, 1,601
categories), synthetic ids, every history of length T. The weights are the
untrained initial ones: no op here branches on values, so trained weights
serve at the same speed. Run from the repository root:

  python -m benchmarks.serving \
      --models=dien_repo/DIEN,dien_repo/DIN,din_repo/din_dice --lengths=10,30,100 \
      --requests=2000 --batch_size=1024 --jit_compile=false,true \
      --loaders=saved_model,session --threads=0,1 --train_modes=faithful,fast \
      --output=benchmarks/results/serving.json

Per model and `--jit_compile` value the model is exported with
`din_tf.export.export_saved_model(..., jit_compile=...)` into `--work_dir` (a
temporary directory by default). Then, per `--loaders` x `--threads`, a fresh
Python process that imports TensorFlow only (never din_tf) loads the export
and measures, per history length T:

- batch-1 latency: p50 / p99 / mean over `--requests` calls after `--warmup`
  calls, cycling over `--pool` distinct requests (input tensors built
  beforehand; the time includes fetching the probabilities to numpy);
- batch-`--batch_size` throughput: examples/s at the median of
  `--batch_calls` timed calls;
- the first call at each shape (with XLA: the compile).

and, per process: RSS after importing TF, after loading (before any call) and
the peak (`ru_maxrss`), and the harness floor: p50 of a trivial model with the
same signature loaded the same way (the Python call overhead that any number
here includes; TF-Serving's C++ request path has its own).

Loaders: "saved_model" = `tf.saved_model.load(...).signatures["serving_default"]`
(eager); "session" = `tf.compat.v1.saved_model.load` into a Session and
`Session.run` on the signature's tensors, the path TF-Serving's C++ loader
takes (MetaGraph, restore op, Session::Run). `--threads=0` is TF's default
thread pools; N > 0 sets inter- and intra-op threads to N.

Training memory: per model and `--train_modes`, a fresh process builds the
model, compiles it as train_throughput.py's modes (`recipes.mode_recipe`:
"faithful": the model family's training recipe; "fast": the "fast" recipe's
`LazyAdam(1e-3, epsilon=1e-8)` with `embedding_update="rows"`),
runs `--train_steps` steps of `tf.function(model.train_step)` at
`--train_batch_size` x `--train_length` and reports its `ru_maxrss`.

Prints one line per measurement and writes JSON (`--output`). The machine's
load average at start and end is in the JSON's "meta"; timings on a shared
machine are only as quiet as it was.
"""

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from benchmarks import REPO

FLAGS = flags.FLAGS

BOOKS = dict(n_users=543_060, n_items=367_983, n_categories=1_601)
DEFAULT_MODELS = ("dien_repo/DIEN", "dien_repo/DIN", "din_repo/din_dice")
LOADERS = ("saved_model", "session")
TRAIN_MODES = ("faithful", "fast")
NEGATIVES = 5  # sampled non-clicks per step in training batches, as the DIEN repo
OUTPUT_NAME = "probability"
SIGNATURE_NAME = "serving_default"
WORKER_TIMEOUT_S = 3600


# --- Parent side: export, launch workers, collect ---------------------------------------

def export_model(name, export_dir, *, vocab=BOOKS, jit_compile=False, seed=0):
    """Builds `name` with `vocab` (initial weights) and exports it for serving.
    Returns {"export_dir", "export_s", "size_mb", "din_tf_source_sha1"}."""
    import keras

    from din_tf import models
    from din_tf.export import export_saved_model

    keras.utils.set_random_seed(seed)
    model = models.get_model(name, **vocab)
    start = time.perf_counter()
    export_saved_model(model, export_dir, jit_compile=jit_compile, overwrite=True)
    seconds = time.perf_counter() - start
    del model
    keras.backend.clear_session()  # the next model starts from an empty graph state
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(export_dir)
               for f in files)
    return {"export_dir": export_dir, "export_s": seconds, "size_mb": size / 2**20,
            "din_tf_source_sha1": _source_digest()}


def _source_digest():
    # Which din_tf code was exported: the checkout may hold uncommitted edits.
    digest = hashlib.sha1()
    package = os.path.join(REPO, "din_tf")
    for directory, subdirectories, files in sorted(os.walk(package)):
        subdirectories.sort()
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(directory, name)
            digest.update(os.path.relpath(path, package).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def measure_serving(export_dir, *, lengths, loader="saved_model", threads=0, vocab=BOOKS,
                    requests=2000, warmup=200, pool=64, batch_size=1024, batch_calls=10,
                    seed=0):
    """Runs the serving measurements in a fresh process (see the module doc).

    Returns {"din_tf_imported", "rss_after_import_mb", "rss_after_load_mb",
    "peak_rss_mb", "floor_p50_ms", "lengths": [{"T", "batch1": {...},
    "batch": {...}}], "probes": {T: [probabilities of a fixed batch]}}.
    """
    _check_choice("loader", loader, LOADERS)
    spec = dict(kind="serve", export_dir=os.fspath(export_dir), lengths=list(lengths),
                loader=loader, threads=threads, vocab=dict(vocab), requests=requests,
                warmup=warmup, pool=pool, batch_size=batch_size, batch_calls=batch_calls,
                seed=seed)
    return _run_worker(spec)


def measure_training_memory(name, mode, *, vocab=BOOKS, batch_size=128, length=100, steps=5,
                            seed=0):
    """Peak RSS of a fresh process that builds, compiles (`mode`) and trains
    `name` for `steps` steps. Returns {"rss_after_import_mb",
    "rss_after_build_mb", "peak_rss_mb", "median_step_s", "loss"}."""
    _check_choice("train mode", mode, TRAIN_MODES)
    spec = dict(kind="train", name=name, mode=mode, vocab=dict(vocab), batch_size=batch_size,
                length=length, steps=steps, seed=seed)
    return _run_worker(spec)


def run_benchmark(models=DEFAULT_MODELS, lengths=(10, 30, 100), *, vocab=BOOKS,
                  jit_compile=(False, True), loaders=LOADERS, threads=(0, 1), requests=2000,
                  warmup=200, pool=64, batch_size=1024, batch_calls=10,
                  train_modes=TRAIN_MODES, train_batch_size=128, train_length=100,
                  train_steps=5, work_dir=None, seed=0, log=print):
    """Every measurement of the module doc; returns the JSON-ready results
    {"meta", "serving": [one record per model x export x loader x threads x T],
    "training": [one record per model x mode]}."""
    _check_arguments(models, lengths, jit_compile, loaders, threads, train_modes)
    results = {"meta": _meta(vocab, requests, batch_size), "serving": [], "training": []}
    temporary = work_dir is None
    work_dir = tempfile.mkdtemp(prefix="serving-benchmark-") if temporary else work_dir
    try:
        for name in models:
            references = {}  # T -> probabilities of the first export measured
            for jit in jit_compile:
                export = "xla" if jit else "default"
                export_dir = os.path.join(work_dir, name.replace("/", "__"), export, "1")
                exported = export_model(name, export_dir, vocab=vocab, jit_compile=jit,
                                        seed=seed)
                log(f"{name:20s} {export:7s} exported in {exported['export_s']:.1f} s, "
                    f"{exported['size_mb']:.0f} MB on disk")
                for loader in loaders:
                    for n_threads in threads:
                        served = measure_serving(
                            export_dir, lengths=lengths, loader=loader, threads=n_threads,
                            vocab=vocab, requests=requests, warmup=warmup, pool=pool,
                            batch_size=batch_size, batch_calls=batch_calls, seed=seed)
                        common = dict(model=name, export=export, jit_compile=jit,
                                      loader=loader, threads=n_threads,
                                      din_tf_source_sha1=exported["din_tf_source_sha1"])
                        results["serving"] += _serving_records(common, served, references)
                        for record in results["serving"][-len(lengths):]:
                            log(_serving_line(record))
                        log(_process_line(results["serving"][-1]))
            for mode in train_modes:
                trained = measure_training_memory(name, mode, vocab=vocab,
                                                  batch_size=train_batch_size,
                                                  length=train_length, steps=train_steps,
                                                  seed=seed)
                record = dict(model=name, mode=mode, batch_size=train_batch_size,
                              T=train_length, steps=train_steps, **trained)
                results["training"].append(record)
                log(_training_line(record))
    finally:
        if temporary:
            shutil.rmtree(work_dir, ignore_errors=True)
    results["meta"]["load_average_end"] = list(os.getloadavg())
    return results


def write_results(results, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)


def _serving_records(common, served, references):
    records = []
    process = {k: served[k] for k in ("rss_after_import_mb", "rss_after_load_mb",
                                      "peak_rss_mb", "floor_p50_ms", "din_tf_imported")}
    by_length = {entry["T"]: entry for entry in served["lengths"]}
    ordered = sorted(by_length)
    slope = None
    if len(ordered) > 1:  # per-step cost: how the batch-1 p50 grows with T
        first, last = by_length[ordered[0]], by_length[ordered[-1]]
        slope = ((last["batch1"]["p50_ms"] - first["batch1"]["p50_ms"])
                 / (ordered[-1] - ordered[0]))
    for steps in (entry["T"] for entry in served["lengths"]):
        probe = served["probes"][str(steps)]
        reference = references.setdefault(steps, probe)
        difference = max(abs(a - b) for a, b in zip(probe, reference))
        records.append(dict(common, **by_length[steps],
                            batch1_p50_ms_per_step=slope,
                            max_abs_diff_vs_first_export=difference, **process))
    return records


def _serving_line(r):
    b1, b = r["batch1"], r["batch"]
    return (f"{r['model']:20s} {r['export']:7s} {r['loader']:11s} threads={r['threads']} "
            f"T={r['T']:<4d} batch-1 p50 {b1['p50_ms']:7.3f} ms  p99 {b1['p99_ms']:7.3f} ms  "
            f"mean {b1['mean_ms']:7.3f} ms | batch-{b['batch_size']} {b['examples_per_s']:9.0f} "
            f"ex/s | first call {b1['first_call_ms']:.0f} ms | "
            f"max|diff| {r['max_abs_diff_vs_first_export']:.1e}")


def _process_line(r):
    slope = r["batch1_p50_ms_per_step"]
    per_step = f"{slope * 1000:.1f} us/step" if slope is not None else "n/a"
    return (f"{r['model']:20s} {r['export']:7s} {r['loader']:11s} threads={r['threads']} "
            f"serving RSS: after import {r['rss_after_import_mb']:.0f} MB, after load "
            f"{r['rss_after_load_mb']:.0f} MB, peak {r['peak_rss_mb']:.0f} MB | harness floor "
            f"p50 {r['floor_p50_ms']:.3f} ms | batch-1 p50 slope {per_step}")


def _training_line(r):
    return (f"{r['model']:20s} train {r['mode']:8s} B={r['batch_size']} T={r['T']} "
            f"{r['steps']} steps: peak RSS {r['peak_rss_mb']:.0f} MB (after build "
            f"{r['rss_after_build_mb']:.0f} MB), {r['median_step_s'] * 1000:.0f} ms/step")


def _run_worker(spec):
    with tempfile.TemporaryDirectory(prefix="serving-worker-") as tmp:
        request, result = os.path.join(tmp, "spec.json"), os.path.join(tmp, "result.json")
        with open(request, "w", encoding="utf-8") as f:
            json.dump(dict(spec, result=result), f)
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        done = subprocess.run([sys.executable, "-m", "benchmarks.serving", "--worker", request],
                              cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=WORKER_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"The {spec['kind']} worker failed (exit {done.returncode}) "
                               f"for {json.dumps(spec)}:\n{done.stderr[-4000:]}")
        with open(result, encoding="utf-8") as f:
            return json.load(f)


def _meta(vocab, requests, batch_size):
    import numpy as np
    import tensorflow as tf

    return {"vocab": dict(vocab), "weights": "untrained (initial values)",
            "requests": requests, "batch_size": batch_size, "cpu_count": os.cpu_count(),
            "load_average_start": list(os.getloadavg()), "tensorflow": tf.__version__,
            "numpy": np.__version__, "python": sys.version.split()[0],
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **_git_state()}


def _git_state():
    # Read-only queries (no index refresh), so a concurrent checkout is untouched.
    def git(*args):
        try:
            return subprocess.run(["git", "--no-optional-locks", *args], cwd=REPO,
                                  capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return ""
    status = git("status", "--porcelain", "--", "din_tf")  # lines "XY path"
    return {"git_head": git("rev-parse", "HEAD").strip() or None,
            "din_tf_uncommitted": [line[3:] for line in status.splitlines() if line]}


def _check_choice(what, value, choices):
    if value not in choices:
        raise ValueError(f"Invalid {what}={value!r}; expected one of {list(choices)}.")


def _check_arguments(models, lengths, jit_compile, loaders, threads, train_modes):
    from din_tf.models.registry import ORIGINAL_MODELS

    for name in models:
        if name not in ORIGINAL_MODELS:
            raise ValueError(f"Invalid --models entry {name!r}; expected names from "
                             f"{sorted(ORIGINAL_MODELS)}.")
    for steps in lengths:
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"Invalid --lengths entry {steps!r}; expected ints >= 1.")
    for jit in jit_compile:
        if not isinstance(jit, bool):
            raise ValueError(f"Invalid --jit_compile entry {jit!r}; expected true or false.")
    for loader in loaders:
        _check_choice("--loaders entry", loader, LOADERS)
    for n in threads:
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"Invalid --threads entry {n!r}; expected ints >= 0 "
                             "(0 = TensorFlow's default thread pools).")
    for mode in train_modes:
        _check_choice("--train_modes entry", mode, TRAIN_MODES)


# --- Worker side (a fresh process per measurement) --------------------------------------

def _worker(path):
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    result = _serve_worker(spec) if spec["kind"] == "serve" else _train_worker(spec)
    with open(spec["result"], "w", encoding="utf-8") as f:
        json.dump(result, f)


def _serve_worker(spec):
    import numpy as np
    import tensorflow as tf

    threads = spec["threads"]
    if threads:
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    rss_after_import = _rss_mb()
    model = _load(spec["loader"], spec["export_dir"], threads)
    rss_after_load = _rss_mb()
    lengths = []
    probes = {}
    for steps in spec["lengths"]:
        # The same seed per T in every process, so exports can be compared.
        rng = np.random.default_rng([spec["seed"], steps])
        pool = [model.prepare(_requests(rng, model.names, spec["vocab"], 1, steps))
                for _ in range(spec["pool"])]
        first = _seconds(model.run, pool[0])
        for i in range(spec["warmup"]):
            model.run(pool[i % len(pool)])
        times = np.array([_seconds(model.run, pool[i % len(pool)])
                          for i in range(spec["requests"])]) * 1000
        batch1 = {"p50_ms": float(np.percentile(times, 50)),
                  "p99_ms": float(np.percentile(times, 99)), "mean_ms": float(times.mean()),
                  "requests": len(times), "first_call_ms": first * 1000}

        batches = [model.prepare(_requests(rng, model.names, spec["vocab"], spec["batch_size"],
                                           steps)) for _ in range(2)]
        batch_first = _seconds(model.run, batches[0])
        model.run(batches[1])
        calls = sorted(_seconds(model.run, batches[i % 2]) for i in range(spec["batch_calls"]))
        median = float(np.median(calls))
        batch = {"batch_size": spec["batch_size"], "calls": len(calls),
                 "median_call_ms": median * 1000,
                 "examples_per_s": spec["batch_size"] / median,
                 "first_call_ms": batch_first * 1000}
        probes[str(steps)] = [float(p) for p in model.run(batches[0])]
        lengths.append({"T": steps, "batch1": batch1, "batch": batch})
    peak = _peak_rss_mb()  # before the floor model below adds its own memory
    floor = _harness_floor(spec, model, threads)
    return {"din_tf_imported": "din_tf" in sys.modules,
            "rss_after_import_mb": rss_after_import, "rss_after_load_mb": rss_after_load,
            "peak_rss_mb": peak, "floor_p50_ms": floor, "lengths": lengths, "probes": probes}


class _Loaded:
    """A loaded export: `ranks` ({input name: rank}), `prepare(arrays)` (builds
    the call's inputs once, outside the timing) and `run(prepared)` -> numpy."""

    def __init__(self, ranks, prepare, run, keep):
        self.ranks, self.prepare, self.run = ranks, prepare, run
        self.names = sorted(ranks)
        self._keep = keep  # the loaded object owns the variables: keep it alive


def _load(loader, export_dir, threads):
    import tensorflow as tf

    if loader == "saved_model":
        loaded = tf.saved_model.load(export_dir)
        signature = loaded.signatures[SIGNATURE_NAME]
        ranks = {k: v.shape.rank for k, v in signature.structured_input_signature[1].items()}

        def prepare(arrays):
            return {k: tf.constant(arrays[k]) for k in ranks}

        def run(inputs):
            return signature(**inputs)[OUTPUT_NAME].numpy()

        return _Loaded(ranks, prepare, run, loaded)

    graph = tf.Graph()
    config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=threads,
                                      intra_op_parallelism_threads=threads)
    with graph.as_default():
        session = tf.compat.v1.Session(graph=graph, config=config)
        meta_graph = tf.compat.v1.saved_model.load(session, ["serve"], export_dir)
    signature = meta_graph.signature_def[SIGNATURE_NAME]
    ranks = {k: len(v.tensor_shape.dim) for k, v in signature.inputs.items()}
    feeds = {k: v.name for k, v in signature.inputs.items()}
    fetch = signature.outputs[OUTPUT_NAME].name

    def prepare(arrays):
        return {feeds[k]: arrays[k] for k in ranks}

    def run(feed):
        return session.run(fetch, feed)

    return _Loaded(ranks, prepare, run, session)


def _harness_floor(spec, model, threads):
    """p50 ms of a trivial export with the same inputs, loaded the same way."""
    import numpy as np
    import tensorflow as tf

    specs = {k: tf.TensorSpec([None] * rank, tf.int32, name=k) for k, rank in model.ranks.items()}
    module = tf.Module()

    @tf.function(input_signature=[specs], autograph=False)
    def serve(features):
        return {OUTPUT_NAME: tf.cast(features["item_id"], tf.float32)}

    module.serve = serve
    with tempfile.TemporaryDirectory(prefix="serving-floor-") as tmp:
        tf.saved_model.save(module, tmp, signatures={SIGNATURE_NAME:
                                                     serve.get_concrete_function()})
        trivial = _load(spec["loader"], tmp, threads)
        rng = np.random.default_rng(spec["seed"])
        inputs = trivial.prepare(_requests(rng, trivial.names, spec["vocab"], 1,
                                           spec["lengths"][0]))
        for _ in range(min(spec["warmup"], 50)):
            trivial.run(inputs)
        times = [_seconds(trivial.run, inputs) for _ in range(min(spec["requests"], 500))]
    return float(np.median(times) * 1000)


def _train_worker(spec):
    import keras
    import numpy as np
    import tensorflow as tf

    from din_tf import models
    from din_tf.training import recipes

    rss_after_import = _rss_mb()
    keras.utils.set_random_seed(spec["seed"])
    model = models.get_model(spec["name"], **spec["vocab"])
    model.compile(recipe=recipes.mode_recipe(model.training_recipe, spec["mode"]))
    rng = np.random.default_rng(spec["seed"])
    batches = [_training_batch(rng, spec["vocab"], spec["batch_size"], spec["length"])
               for _ in range(2)]
    step = tf.function(model.train_step, reduce_retracing=True)
    rss_after_build = _rss_mb()
    times, loss = [], None
    for i in range(spec["steps"]):
        start = time.perf_counter()
        loss = float(step(batches[i % 2])["loss"])  # float() waits for the step
        times.append(time.perf_counter() - start)
    if not math.isfinite(loss):
        raise RuntimeError(f"{spec['name']} ({spec['mode']}): loss {loss} after "
                           f"{spec['steps']} steps.")
    # The first step traces and builds the optimizer; the median skips it when it can.
    timed = sorted(times[1:] or times)
    return {"rss_after_import_mb": rss_after_import, "rss_after_build_mb": rss_after_build,
            "peak_rss_mb": _peak_rss_mb(), "median_step_s": timed[len(timed) // 2],
            "loss": loss}


def _requests(rng, names, vocab, batch, steps):
    """Synthetic int32 inputs: ids drawn from 1..n-1 (0 is padding), full histories."""
    import numpy as np

    high = {"user_id": vocab["n_users"], "item_id": vocab["n_items"],
            "category_id": vocab["n_categories"], "history_item_ids": vocab["n_items"],
            "history_category_ids": vocab["n_categories"]}
    arrays = {}
    for name in names:
        if name == "history_length":
            arrays[name] = np.full(batch, steps, np.int32)
        elif name in high:
            shape = (batch, steps) if name.startswith("history_") else (batch,)
            arrays[name] = rng.integers(1, high[name], shape, dtype=np.int32)
        else:
            raise ValueError(f"Unexpected serving input {name!r}; expected the inputs of "
                             f"din_tf.export ({sorted(high)} and 'history_length').")
    return arrays


def _training_batch(rng, vocab, batch, steps):
    import numpy as np

    names = ("user_id", "item_id", "category_id", "history_item_ids", "history_category_ids",
             "history_length")
    features = _requests(rng, names, vocab, batch, steps)
    shape = (batch, steps, NEGATIVES)
    features["negative_item_ids"] = rng.integers(1, vocab["n_items"], shape, dtype=np.int32)
    features["negative_category_ids"] = rng.integers(1, vocab["n_categories"], shape,
                                                     dtype=np.int32)
    return features, rng.integers(0, 2, batch).astype(np.float32)


def _seconds(fn, arg):
    start = time.perf_counter()
    fn(arg)
    return time.perf_counter() - start


def _rss_mb():
    # Current resident set (Linux /proc); ru_maxrss only gives the peak.
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None


def _peak_rss_mb():
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


# --- Command line ----------------------------------------------------------------------

def _define_flags():
    # Only when run as a script (see benchmarks/__init__.py).
    flags.DEFINE_list("models", list(DEFAULT_MODELS), "Original model names.")
    flags.DEFINE_list("lengths", ["10", "30", "100"], "Request history lengths T.")
    flags.DEFINE_integer("requests", 2000, "Timed batch-1 calls per length.")
    flags.DEFINE_integer("warmup", 200, "Untimed batch-1 calls per length first.")
    flags.DEFINE_integer("pool", 64, "Distinct batch-1 requests cycled through.")
    flags.DEFINE_integer("batch_size", 1024, "Rows per throughput call.")
    flags.DEFINE_integer("batch_calls", 10, "Timed throughput calls per length.")
    flags.DEFINE_list("jit_compile", ["false", "true"],
                      "export_saved_model(jit_compile=...) values to export and measure.")
    flags.DEFINE_list("loaders", list(LOADERS), "saved_model and/or session.")
    flags.DEFINE_list("threads", ["0", "1"],
                      "Inter/intra-op threads of the serving process; 0 = TF's default.")
    flags.DEFINE_list("train_modes", list(TRAIN_MODES),
                      "Training-memory runs: faithful and/or fast (empty: none).")
    flags.DEFINE_integer("train_batch_size", 128, "Training-memory batch size.")
    flags.DEFINE_integer("train_length", 100, "Training-memory history length.")
    flags.DEFINE_integer("train_steps", 5, "Training-memory steps.")
    flags.DEFINE_string("work_dir", None, "Where exports go (default: a temporary directory).")
    flags.DEFINE_string("output", "benchmarks/results/serving.json", "JSON output.")
    flags.DEFINE_integer("seed", 0, "Model initialisation and request ids.")
    flags.DEFINE_string("worker", None, "Internal: run one measurement from a spec file.")


def _int_list(flag, values, minimum):
    try:
        parsed = [int(v) for v in values]
    except ValueError:
        parsed = None
    if parsed is None or any(v < minimum for v in parsed):
        raise app.UsageError(f"Invalid --{flag}={','.join(values)}; expected integers >= "
                             f"{minimum}.")
    return parsed


def _bool_list(flag, values):
    table = {"true": True, "false": False}
    if any(v.lower() not in table for v in values):
        raise app.UsageError(f"Invalid --{flag}={','.join(values)}; expected true and/or "
                             "false.")
    return [table[v.lower()] for v in values]


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.worker:
        _worker(FLAGS.worker)
        return 0
    for flag in ("requests", "pool", "batch_size", "batch_calls", "train_batch_size",
                 "train_length", "train_steps"):
        if getattr(FLAGS, flag) < 1:
            raise app.UsageError(f"Invalid --{flag}={getattr(FLAGS, flag)}; expected >= 1.")
    if FLAGS.warmup < 0:
        raise app.UsageError(f"Invalid --warmup={FLAGS.warmup}; expected >= 0.")
    try:
        results = run_benchmark(
            FLAGS.models, _int_list("lengths", FLAGS.lengths, 1),
            jit_compile=_bool_list("jit_compile", FLAGS.jit_compile), loaders=FLAGS.loaders,
            threads=_int_list("threads", FLAGS.threads, 0), requests=FLAGS.requests,
            warmup=FLAGS.warmup, pool=FLAGS.pool, batch_size=FLAGS.batch_size,
            batch_calls=FLAGS.batch_calls, train_modes=FLAGS.train_modes,
            train_batch_size=FLAGS.train_batch_size, train_length=FLAGS.train_length,
            train_steps=FLAGS.train_steps, work_dir=FLAGS.work_dir, seed=FLAGS.seed,
            log=lambda line: print(line, flush=True))
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    results["meta"]["command"] = " ".join(["python", "-m", "benchmarks.serving"] + sys.argv[1:])
    write_results(results, os.path.join(REPO, FLAGS.output))
    print(f"wrote {FLAGS.output}")
    return 0


if __name__ == "__main__":
    _define_flags()
    app.run(main)
