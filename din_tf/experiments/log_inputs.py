"""Your own log as an experiment's data: a log spec and a feature schema →
prepared LogSamples → fitted schema and encoder → tf.data batches of raw
values looked up in the pipeline.

`data.log_spec` and `data.schema` (each a JSON file path or an inline object)
switch the runner to this path; `data.data_dir` resolves the spec's relative
paths, so a shipped example runs on the user's copy of the data.
"""

import dataclasses
import functools
import json
import os

import numpy as np

from din_tf.data import log_prepare, log_spec
from din_tf.data.log_pipeline import fit_schema, make_log_dataset, table_frequencies
from din_tf.data.log_samples import LogSamples
from din_tf.schema import FeatureEncoder, FeatureSchema
from din_tf.experiments import atomic_files, inputs

@dataclasses.dataclass
class LogData:
    """A prepared own log: raw train/test samples and what the fit made of
    them (`schema` resolved, `encoder` with its vocabularies)."""

    train: LogSamples
    test: LogSamples
    schema: FeatureSchema
    encoder: FeatureEncoder

    @functools.cached_property
    def test_groups(self):
        """One group per impression: the test rows sharing a user and their
        first behaviour sequence's window (a click and its sampled negative)."""
        test = self.test
        parts = [np.asarray(test.columns[f.name]) for f in test.schema.group("user")]
        if test.schema.sequences:
            window = test.sequences[test.schema.sequences[0].name]
            parts += [window.start, window.length]
        if not parts:
            return np.arange(len(test))
        keys = {}
        groups = np.empty(len(test), np.int64)
        for row in range(len(test)):
            key = tuple(p[row].tobytes() if hasattr(p[row], "tobytes") else p[row]
                        for p in parts)
            groups[row] = keys.setdefault(key, len(keys))
        return groups

    def frequencies(self):
        """{`{table}_embedding`: counts of its rows in the training split}."""
        return table_frequencies(self.train, self.encoder)


def uses_log(data_cfg):
    """Own-log data: a log spec or schema is set, or data.processed_dir holds
    a prepared log (`python -m din_tf.data.prepare --log_spec=...`)."""
    return bool(data_cfg.log_spec or data_cfg.schema) or _is_prepared_log(
        data_cfg.processed_dir)


def _is_prepared_log(directory):
    return bool(directory) and all(
        os.path.isfile(os.path.join(directory, name)) for name in log_prepare.FILES)


def declared_schema(data_cfg):
    """The schema as declared (not yet fitted): the prepared log's, or the
    config's."""
    if _is_prepared_log(data_cfg.processed_dir):
        return FeatureSchema.load(os.path.join(data_cfg.processed_dir, "schema.json"))
    return declared(data_cfg)[1]


def read_json_or_object(key, value):
    """`value` as given (an object) or read from the JSON file it names."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value:
        raise ValueError(f"Invalid {key}={value!r}; expected a JSON file path or an object.")
    if not os.path.isfile(value):
        raise ValueError(f"{key}={value!r} does not exist; expected a JSON file.")
    with open(value, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{key}={value!r} is not valid JSON: {error}") from None


def _config_schema(data_cfg):
    try:
        return FeatureSchema.from_config(read_json_or_object("data.schema", data_cfg.schema))
    except ValueError as error:
        raise ValueError(f"data.schema: {error}") from None


def declared(data_cfg):
    """(LogSpec, declared FeatureSchema) from the config, errors naming the key."""
    if not data_cfg.log_spec or not data_cfg.schema:
        missing = "data.schema" if data_cfg.log_spec else "data.log_spec"
        raise ValueError(f"{missing} is not set; training on your own log needs both "
                         "data.log_spec (the log's columns) and data.schema (the features).")
    schema = _config_schema(data_cfg)
    spec_values = read_json_or_object("data.log_spec", data_cfg.log_spec)
    base = (data_cfg.data_dir or (os.path.dirname(os.path.abspath(data_cfg.log_spec))
                                  if isinstance(data_cfg.log_spec, str) else os.getcwd()))
    try:
        spec = log_spec.LogSpec.from_dict(spec_values).resolve(base)
    except ValueError as error:
        raise ValueError(f"data.log_spec: {error}") from None
    return spec, schema


def load(data_cfg, cache_dir):
    """Prepares the log once into `cache_dir` (reused while the log, the spec,
    the schema, the protocol and the seed are unchanged), then fits the schema
    on the training split."""
    if data_cfg.processed_dir:
        _check_protocol(data_cfg)
        schema, train, test = log_prepare.load_prepared_log(data_cfg.processed_dir)
        if data_cfg.schema and _config_schema(data_cfg) != schema:
            raise ValueError(f"data.schema differs from the schema data.processed_dir="
                             f"{data_cfg.processed_dir!r} was prepared with; prepare the log "
                             "again with this schema, or leave data.schema unset.")
    else:
        spec, schema = declared(data_cfg)
        directory = _prepared(spec, schema, data_cfg, cache_dir)
        _, train, test = log_prepare.load_prepared_log(directory)
    resolved, vocabularies = fit_schema(train)
    encoder = FeatureEncoder(resolved, vocabularies, name="feature_encoder")
    return LogData(train, test, resolved, encoder)


def _prepared(spec, schema, data_cfg, cache_dir):
    stamp = {"protocol": data_cfg.protocol, "seed": data_cfg.prepare_seed,
             "schema": schema.get_config(), "log_spec": json.loads(spec.to_json()),
             "files": [_file_id(path) for path in _paths(spec)]}

    def fill(directory):  # prepare_log flushes its files (`atomic_output_dir`)
        output = os.path.join(directory, "files")
        log_prepare.prepare_log(spec, schema, data_cfg.protocol, output,
                                seed=data_cfg.prepare_seed)
        for file_name in os.listdir(output):
            os.replace(os.path.join(output, file_name), os.path.join(directory, file_name))
        os.rmdir(output)

    return atomic_files.prepared_directory(
        cache_dir, f"log_{data_cfg.protocol}", stamp, fill,
        f"the {data_cfg.protocol} protocol from {spec.path}")


def _check_protocol(data_cfg):
    with open(os.path.join(data_cfg.processed_dir, "summary.json"), encoding="utf-8") as f:
        protocol = json.load(f).get("protocol")
    if protocol != data_cfg.protocol:
        raise ValueError(f"data.processed_dir={data_cfg.processed_dir!r} holds the {protocol} "
                         f"protocol's samples but data.protocol={data_cfg.protocol!r}; set "
                         f"data.protocol={protocol}.")


def _paths(spec):
    tables = [spec, spec.user_features, spec.item_features]
    return [table.path for table in tables if table is not None]


def _file_id(path):
    if not os.path.exists(path):
        raise ValueError(f"data.log_spec: {path!r} does not exist (relative paths are read "
                         "from data.data_dir / --data_dir, else next to the spec file).")
    return atomic_files.file_identity(path)


def test_set(data, data_cfg, with_negatives, seed):
    """(test dataset, test order): file order, the same negatives every pass."""
    dataset = make_log_dataset(data.test, data.encoder, data_cfg.eval_batch_size,
                               with_negatives=with_negatives, seed=seed + 1, pass_index=0)
    return dataset, np.arange(len(data.test))


def training_epoch(data, data_cfg, with_negatives, seed, epoch, steps_per_epoch):
    """Epoch `epoch`'s batches, a pure function of the data, config, seed and
    epoch (see `din_tf.experiments.inputs.training_epoch`)."""
    common = dict(with_negatives=with_negatives, shuffle=data_cfg.shuffle, seed=seed)
    if steps_per_epoch is None:
        return make_log_dataset(data.train, data.encoder, data_cfg.train_batch_size,
                                pass_index=epoch, **common)
    return make_log_dataset(data.train, data.encoder, data_cfg.train_batch_size,
                            pass_index=0, repeat=True,
                            skip_batches=epoch * steps_per_epoch, **common)


def worker_stream(data, data_cfg, with_negatives, seed, rows_dir):
    """`dataset_fn(input_context)` for parameter servers: worker i of n reads
    the endless stream of passes over its share of the rows, dealt by a fixed
    permutation (`inputs.SHARD_SEED`). The rows travel to every worker inside
    the function (fine for logs of a few hundred MB; the graph limit is
    2 GB); `rows_dir` is unused (see `din_tf.experiments.inputs.worker_stream`)."""
    del rows_dir

    def dataset_fn(input_context):
        return make_log_dataset(data.train, data.encoder, data_cfg.train_batch_size,
                                pass_index=0, repeat=True, with_negatives=with_negatives,
                                shuffle=data_cfg.shuffle, seed=seed,
                                num_shards=input_context.num_input_pipelines,
                                shard_index=input_context.input_pipeline_id,
                                shard_seed=inputs.SHARD_SEED)

    return dataset_fn
