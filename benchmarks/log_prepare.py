r"""How fast a large interaction log prepares, and in how much memory.

Writes a synthetic log of `--rows` rows (`user,item,timestamp` CSV with a
header; users and items drawn from Zipf-like popularity) into a temporary
folder, then prepares it with the DIN and the DIEN protocol, each in its own
process so that each peak RSS (`ru_maxrss`) is its own. Prints and writes
JSON: rows/s for reading + protocol + writing, and peak RSS in MiB (also the
RSS right after the import: importing din_tf loads TensorFlow, ~600 MiB).

  python -m benchmarks.log_prepare --rows=10000000 --output=/tmp/log_prepare.json
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

from benchmarks import REPO

FLAGS = flags.FLAGS

SCHEMA = {"features": [{"name": "user_id", "group": "user"},
                       {"name": "item_id", "group": "candidate"}],
          "sequences": [{"name": "history", "features": ["item_id"], "max_length": 100,
                         "negatives": True}]}
SPEC = {"path": "log.csv", "user": "user_id", "item": "item_id", "timestamp": "timestamp"}


def write_log(path, rows, rows_per_user, rows_per_item, seed=0):
    """A CSV log; ids are skewed (a few users / items take most rows)."""
    rng = np.random.default_rng(seed)
    users = max(1, rows // rows_per_user)
    items = max(2, rows // rows_per_item)
    chunk = 1_000_000
    with open(path, "w", encoding="utf-8") as f:
        f.write("user_id,item_id,timestamp\n")
        for lo in range(0, rows, chunk):
            n = min(chunk, rows - lo)
            u = (rng.pareto(1.2, n) * users / 20).astype(np.int64) % users
            i = (rng.pareto(1.0, n) * items / 50).astype(np.int64) % items
            t = rng.integers(1_500_000_000, 1_600_000_000, n)
            block = np.stack([u, i, t], 1)
            np.savetxt(f, block, fmt="%d", delimiter=",")


def child(protocol, workdir):
    from din_tf.data.log_prepare import prepare_log  # imports din_tf, so TensorFlow
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    began = time.perf_counter()
    summary = prepare_log(SPEC | {"path": os.path.join(workdir, "log.csv")}, SCHEMA, protocol,
                          os.path.join(workdir, f"out_{protocol}"), engine=FLAGS.engine)
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    out_bytes = sum(os.path.getsize(os.path.join(workdir, f"out_{protocol}", n))
                    for n in os.listdir(os.path.join(workdir, f"out_{protocol}")))
    print(json.dumps({"protocol": protocol, "rows": summary["rows"], "users": summary["users"],
                      "items": summary["items"], "train_rows": summary["train_rows"],
                      "test_rows": summary["test_rows"], "seconds": round(seconds, 2),
                      "read_seconds": summary["read_seconds"],
                      "rows_per_second": round(summary["rows"] / seconds),
                      "peak_rss_mib": round(peak),
                      "rss_after_import_mib": round(baseline),
                      "output_mib": round(out_bytes / 2**20)}))


def _define_flags():
    # Only when run as a script (see benchmarks/__init__.py).
    flags.DEFINE_integer("rows", 10_000_000, "Rows of the synthetic log.")
    flags.DEFINE_integer("rows_per_user", 50, "Mean rows per user.")
    flags.DEFINE_integer("rows_per_item", 100, "Mean rows per item.")
    flags.DEFINE_list("protocols", ["din", "dien"], "Protocols to time.")
    flags.DEFINE_string("engine", "auto", "read_log engine: auto, pyarrow or python.")
    flags.DEFINE_string("output", None, "Also write the JSON result here.")
    flags.DEFINE_string("child", None, "Internal: prepare this protocol in this process.")
    flags.DEFINE_string("workdir", None, "Internal: the child's folder.")


def main(argv):
    del argv
    if FLAGS.child:
        child(FLAGS.child, FLAGS.workdir)
        return
    results = {"rows": FLAGS.rows, "engine": FLAGS.engine, "protocols": {}}
    with tempfile.TemporaryDirectory(prefix="log_prepare_") as workdir:
        began = time.perf_counter()
        write_log(os.path.join(workdir, "log.csv"), FLAGS.rows, FLAGS.rows_per_user,
                  FLAGS.rows_per_item)
        results["write_seconds"] = round(time.perf_counter() - began, 2)
        results["log_mib"] = round(os.path.getsize(os.path.join(workdir, "log.csv")) / 2**20)
        print(f"wrote {FLAGS.rows} rows ({results['log_mib']} MiB) in "
              f"{results['write_seconds']} s", flush=True)
        for protocol in FLAGS.protocols:
            out = subprocess.run([sys.executable, "-m", "benchmarks.log_prepare",
                                  f"--child={protocol}", f"--workdir={workdir}",
                                  f"--engine={FLAGS.engine}"],
                                 cwd=REPO, check=True, stdout=subprocess.PIPE, text=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results["protocols"][protocol] = result
            print(json.dumps(result), flush=True)
    text = json.dumps(results, indent=1)
    if FLAGS.output:
        with open(FLAGS.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
