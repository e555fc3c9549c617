"""A log prepared once for training: `prepare_log` reads a log, runs a
protocol and writes the result as one directory; `load_prepared_log` reads it
back.

Directory (written all or nothing):

* `schema.json`: the feature schema the samples follow;
* `log_spec.json`: the log spec they were read with (paths as resolved);
* `train.npz`, `test.npz`: `LogSamples.save`;
* `summary.json`: protocol, seed, log rows, users, items, train/test rows and
  the seconds it took.
"""

import json
import os
import time

from absl import logging

from din_tf.data import log_protocol
from din_tf.data._io import atomic_output_dir
from din_tf.data.log_samples import LogSamples
from din_tf.data.log_spec import LogSpec
from din_tf.data.logs import read_log
from din_tf.schema.features import FeatureSchema

FILES = ("schema.json", "log_spec.json", "train.npz", "test.npz", "summary.json")


def prepare_log(spec, schema, protocol, output_dir, seed=None, engine="auto"):
    """Reads the log of `spec` (a LogSpec or dict) for `schema` (a
    FeatureSchema or config), runs `protocol` ("din" | "dien") and writes
    `output_dir`. Returns the summary dict."""
    if protocol not in log_protocol.PROTOCOLS:
        raise ValueError(f"prepare_log: protocol must be one of "
                         f"{sorted(log_protocol.PROTOCOLS)}, received {protocol!r}")
    spec = LogSpec.from_dict(spec)
    schema = FeatureSchema.from_config(schema)
    seed = log_protocol.DEFAULT_SEEDS[protocol] if seed is None else seed
    began = time.perf_counter()
    log = read_log(spec, schema, engine=engine)
    read_seconds = time.perf_counter() - began
    logging.info("read %s in %.1f s; building the %s protocol's samples", spec.path,
                 read_seconds, protocol)
    train, test = log_protocol.PROTOCOLS[protocol](log, schema, seed)
    summary = {"protocol": protocol, "seed": seed, "rows": len(log), "users": log.n_users,
               "items": log.n_items, "train_rows": len(train), "test_rows": len(test),
               "read_seconds": round(read_seconds, 3)}
    logging.info("writing %s", output_dir)
    with atomic_output_dir(output_dir) as tmp:
        with open(os.path.join(tmp, "schema.json"), "w", encoding="utf-8") as f:
            f.write(schema.to_json())
        with open(os.path.join(tmp, "log_spec.json"), "w", encoding="utf-8") as f:
            f.write(spec.to_json())
        train.save(os.path.join(tmp, "train.npz"))
        test.save(os.path.join(tmp, "test.npz"))
        summary["seconds"] = round(time.perf_counter() - began, 3)
        with open(os.path.join(tmp, "summary.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
    logging.info("%s protocol: wrote %s (%s)", protocol, output_dir, summary)
    return summary


def load_prepared_log(directory):
    """`(schema, train, test)` of a directory written by `prepare_log`."""
    directory = os.fspath(directory)
    lacking = [n for n in FILES if not os.path.exists(os.path.join(directory, n))]
    if lacking:
        raise FileNotFoundError(f"{directory}: not a prepared log directory (no {lacking})")
    schema = FeatureSchema.load(os.path.join(directory, "schema.json"))
    train = LogSamples.load(os.path.join(directory, "train.npz"))
    test = LogSamples.load(os.path.join(directory, "test.npz"))
    return schema, train, test


__all__ = ["prepare_log", "load_prepared_log"]
