"""Serving raw ids: a SavedModel signature over the raw values of a feature
schema (strings, int64 ids, floats), with the `FeatureEncoder`'s lookups in
the graph, and the request helpers that go with it.

`din_tf.export.export_saved_model(model, export_dir, encoder=encoder)` uses
this module; the helpers are re-exported from `din_tf.export`.

Signature (`raw_serving_input_signature`), B rows, T steps, V values:

| input | dtype | shape |
| --- | --- | --- |
| each schema feature, string / int64 | tf.string / tf.int64 | [B] (multi-valued: [B, V]) |
| each numeric feature | tf.float32 | [B] |
| each sequence's step keys | the step feature's raw dtype | [B, T] (multi-valued: [B, T, V]) |
| each sequence's length key | tf.int64 | [B] |

Why in the graph: a client then sends the ids its logs hold, the served
rows are exactly the rows training read (one encoder, one set of fitted
vocabularies, saved inside the SavedModel as lookup tables), and an id never
seen in training reads an OOV row (`num_oov` rows per vocabulary table, an id
hashed to one of them) rather than failing or reading another id's row.
Negatives are not inputs: the auxiliary loss is not in the served graph.

A request that TensorFlow would refuse with a message naming only an input
position (a float for a string id, a list where one value is expected) is
better caught before sending: `check_raw_request` checks rows (or a REST
body) against the schema and names the feature at fault.
"""

import tensorflow as tf

from din_tf._serving_rows import (
    OUTPUT_NAME,
    SIGNATURE_NAME,
    as_row_dicts,
    build_instances,
    plain,
    sequence_widths,
)
from din_tf.schema.encoder import FeatureEncoder
from din_tf.schema.features import FeatureSchema

_INT64 = (-2 ** 63, 2 ** 63 - 1)


def raw_serving_input_signature(encoder_or_schema):
    """{name: tf.TensorSpec} of the raw `serving_default` inputs: the schema's
    features, then per sequence its step keys and its length key (see the
    module docstring for dtypes and shapes)."""
    schema = _schema_of(encoder_or_schema)
    specs = {}
    for f in schema.features:
        rank = 2 if f.kind == "categorical" and f.multi_valued else 1
        specs[f.name] = tf.TensorSpec([None] * rank, _raw_dtype(f), name=f.name)
    for seq in schema.sequences:
        for name, key in zip(seq.features, seq.step_keys):
            f = schema.feature(name)
            specs[key] = tf.TensorSpec([None] * (3 if f.multi_valued else 2), _raw_dtype(f),
                                       name=key)
        specs[seq.length] = tf.TensorSpec([None], tf.int64, name=seq.length)
    return specs


def raw_serving_request(encoder_or_schema, rows, *, pad_to=None,
                        signature_name=SIGNATURE_NAME):
    """The TF-Serving REST body (row format) for the raw signature:
    `{"signature_name": ..., "instances": [{name: value}]}`.

    `rows`: a list of per-row dicts of raw values (strings as str or bytes,
    int64 ids as ints, numerics as numbers; a multi-valued feature as a list;
    a sequence's step key as a list of steps, its length key an int), or one
    dict of batched arrays. Rows are checked first (`check_raw_request`).
    Sequences are cut to each row's length and padded to the longest (or to
    `pad_to` steps; at least one step, so that the JSON nesting always gives
    each input its rank) with the step feature's padding value ("" / -1);
    multi-valued values are padded to the request's most values the same
    way. The served score depends on neither padding. Keys the schema does
    not name are dropped. Returns a JSON-serializable dict.
    """
    schema = _schema_of(encoder_or_schema)
    rows, lengths = _checked_rows(schema, as_row_dicts(rows), "rows")
    widths = sequence_widths(schema, lengths, pad_to, min_width=lambda seq: 1)
    instances = build_instances(schema, rows, lengths, widths, lambda f: f.padding_value)
    return {"signature_name": signature_name, "instances": instances}


def check_raw_request(encoder_or_schema, request):
    """Checks a raw request before it is sent; raises ValueError naming the
    row and the feature at fault.

    `request`: per-row dicts (or a dict of batched arrays), as given to
    `raw_serving_request`, or a REST body (`{"instances": [...]}`). Checked:
    every feature, step key and length key present; values of the feature's
    raw dtype (strings for a string feature, integers for an int64 feature or
    a length, numbers for a numeric one; never a float for an id); one value
    per row, a list for multi-valued features and sequences, a list of lists
    for multi-valued steps; at most `max_values` values; a length within
    [0, the number of steps given]. A REST body must also name nothing else
    and give every input one shape across its instances (TF-Serving stacks
    them).
    """
    schema = _schema_of(encoder_or_schema)
    if isinstance(request, dict) and "inputs" in request and "instances" not in request:
        raise ValueError("Invalid request: the columnar format ('inputs') is not checked; "
                         "give the row format ('instances'), as raw_serving_request builds.")
    if isinstance(request, dict) and "instances" in request:
        rows = as_row_dicts(request["instances"], "instances")
        _checked_rows(schema, rows, "instances")
        _check_body(schema, [{k: plain(v) for k, v in row.items()} for row in rows])
    else:
        _checked_rows(schema, as_row_dicts(request), "rows")


def check_encoder_matches(model, encoder):
    """Raises ValueError unless `encoder` encodes `model`'s schema: the same
    features (sizes, lookups, widths) and sequences, so the rows it produces
    are rows of the model's tables."""
    if not isinstance(encoder, FeatureEncoder):
        raise ValueError(f"Invalid encoder={type(encoder).__name__}: expected a "
                         "din_tf.schema.FeatureEncoder (or None for the integer-id "
                         "signature).")
    ours, theirs = model.schema, encoder.schema
    names = ([f.name for f in ours.features], [s.name for s in ours.sequences])
    given = ([f.name for f in theirs.features], [s.name for s in theirs.sequences])
    if names != given:
        raise ValueError(f"Invalid encoder: it encodes features {given[0]} and sequences "
                         f"{given[1]}; {type(model).__name__} reads features {names[0]} and "
                         f"sequences {names[1]}.")
    for mine, other in zip(ours.features + ours.sequences, theirs.features + theirs.sequences):
        if mine != other:
            raise ValueError(f"Invalid encoder: its {other.name!r} is {other.to_dict()}; "
                             f"{type(model).__name__} was built with {mine.to_dict()}. Build "
                             "the model from the encoder's schema.")


def raw_serving_module(model, encoder, jit_compile=False):
    """A tf.Module whose `serve` maps the raw signature through `encoder`
    and `model`; it tracks the captured tf.Variables and the encoder's lookup
    tables (so the vocabularies are saved with the SavedModel). With
    `jit_compile`, only the model part is XLA-compiled: string lookups have
    no XLA kernels."""
    module = tf.Module()

    def score(features):
        return model(features, training=False)

    if jit_compile:
        score = tf.function(score, autograph=False, jit_compile=True)

    @tf.function(input_signature=[raw_serving_input_signature(encoder)], autograph=False)
    def serve(raw):
        probability = score(encoder(raw))
        return {OUTPUT_NAME: tf.cast(probability, tf.float32)}

    # See din_tf.export._serving_module for why the captured variables are
    # tracked rather than the Keras objects.
    module.serving_variables = list(serve.get_concrete_function().variables)
    module.lookup_tables = encoder.lookup_tables()
    module.serve = serve
    return module


# -- helpers ------------------------------------------------------------------

def _schema_of(encoder_or_schema):
    if isinstance(encoder_or_schema, FeatureEncoder):
        return encoder_or_schema.schema
    if isinstance(encoder_or_schema, (FeatureSchema, dict)):
        return FeatureSchema.from_config(encoder_or_schema)
    raise ValueError(f"Invalid encoder_or_schema={type(encoder_or_schema).__name__}: expected "
                     "a din_tf.schema.FeatureEncoder or FeatureSchema.")


def _raw_dtype(feature):
    if feature.kind == "numeric":
        return tf.float32
    return tf.string if feature.dtype == "string" else tf.int64


def _expected_keys(schema):
    """[(key, feature, rank per row, kind)]: kind is the feature's raw dtype
    ("string", "int64"), "number" or "length"."""
    keys = []
    for f in schema.features:
        if f.kind == "numeric":
            keys.append((f.name, f, 0, "number"))
        else:
            keys.append((f.name, f, 1 if f.multi_valued else 0, f.dtype))
    for seq in schema.sequences:
        for name, key in zip(seq.features, seq.step_keys):
            f = schema.feature(name)
            keys.append((key, f, 2 if f.multi_valued else 1, f.dtype))
        keys.append((seq.length, None, 0, "length"))
    return keys


def _checked_rows(schema, rows, where):
    """(rows as plain Python values, strings decoded, {sequence: lengths});
    raises on the first fault, naming the row and the feature."""
    keys = _expected_keys(schema)
    names = [k[0] for k in keys]
    checked = []
    for index, row in enumerate(rows):
        at = f"{where}[{index}]"
        missing = [name for name in names if name not in row]
        if missing:
            raise ValueError(f"Invalid {at}: missing feature(s) {missing}; expected the keys "
                             f"{names}, received {sorted(row)}.")
        out = {}
        for key, feature, rank, kind in keys:
            value = plain(row[key])
            if not _has_rank(value, rank):
                raise ValueError(
                    f"Invalid {at}: feature {key!r} expects {_shape_text(feature, rank)} per "
                    f"row, received {_short(value)}.")
            out[key] = _checked_values(value, at, key, kind)
            if feature is not None and feature.kind == "categorical" and feature.multi_valued:
                lists = [out[key]] if rank == 1 else out[key]
                for values in lists:
                    count = sum(v != feature.padding_value for v in values)
                    if count > feature.max_values:
                        raise ValueError(
                            f"Invalid {at}: feature {key!r} holds {count} values in one "
                            f"{'row' if rank == 1 else 'step'}; the schema allows at most "
                            f"max_values={feature.max_values}.")
        checked.append(out)
    lengths = {}
    for seq in schema.sequences:
        lengths[seq.name] = []
        for index, row in enumerate(checked):
            length = row[seq.length]
            for key in seq.step_keys:
                if length > len(row[key]):
                    raise ValueError(
                        f"Invalid {where}[{index}]: feature {seq.length!r}={length} is beyond "
                        f"the width of {key!r} ({len(row[key])} steps); expected 0 <= "
                        f"{seq.length} <= {len(row[key])}.")
            lengths[seq.name].append(length)
    return checked, lengths


def _has_rank(value, rank):
    if rank == 0:
        return not isinstance(value, list)
    return isinstance(value, list) and all(_has_rank(v, rank - 1) for v in value)


def _shape_text(feature, rank):
    if feature is None:
        return "one int (the number of real steps)"
    if rank == 0:
        return "one value"
    if rank == 1 and feature.multi_valued:  # a feature's values
        return f"a list of values (multi-valued, up to {feature.max_values})"
    if rank == 1:
        return "a list of steps, one value each"
    return f"a list of steps, each a list of values (up to {feature.max_values})"


def _short(value, limit=60):
    text = repr(value)
    kind = type(value).__name__
    return f"{text[:limit]}{'...' if len(text) > limit else ''} ({kind})"


def _flat(value):
    if isinstance(value, list):
        return [leaf for v in value for leaf in _flat(v)]
    return [value]


def _checked_values(value, at, key, kind):
    """`value` with every leaf checked against `kind` (bytes decoded)."""
    for leaf in _flat(value):
        if isinstance(leaf, bool):
            ok = False
        elif kind == "string":
            ok = isinstance(leaf, (str, bytes))
        elif kind in ("int64", "length"):
            ok = isinstance(leaf, int) and _INT64[0] <= leaf <= _INT64[1]
            if ok and kind == "length":
                ok = leaf >= 0
        else:
            ok = isinstance(leaf, (int, float))
        if not ok:
            expected = {"string": "strings (a string feature)",
                        "int64": "integer ids (an int64 feature; floats are refused rather "
                                 "than truncated)",
                        "number": "numbers (a numeric feature)",
                        "length": "a non-negative int (the number of real steps)"}[kind]
            raise ValueError(f"Invalid {at}: feature {key!r} expects {expected}, received "
                             f"{_short(leaf)}.")
    if kind == "string":
        return _decoded(value, at, key)
    if kind == "number":
        return _mapped(value, float)
    return value


def _mapped(value, fn):
    return [_mapped(v, fn) for v in value] if isinstance(value, list) else fn(value)


def _decoded(value, at, key):
    def decode(leaf):
        if isinstance(leaf, str):
            return leaf
        try:
            return leaf.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"Invalid {at}: feature {key!r} holds bytes that are not UTF-8 "
                             f"text: {_short(leaf)}.") from None
    return _mapped(value, decode)


def _check_body(schema, rows):
    """A REST body: no unknown keys, and one shape per input across instances."""
    known = list(raw_serving_input_signature(schema))
    for index, row in enumerate(rows):
        unknown = sorted(set(row) - set(known))
        if unknown:
            raise ValueError(f"Invalid instances[{index}]: unknown feature(s) {unknown}; the "
                             f"signature takes {known}.")
    for key in known:
        shapes = [_shape(row[key]) for row in rows]
        for index, shape in enumerate(shapes):
            if shape != shapes[0]:
                raise ValueError(
                    f"Invalid instances[{index}]: feature {key!r} has shape {list(shape)} but "
                    f"instances[0] has {list(shapes[0])}; TF-Serving stacks the instances, so "
                    "pad every row to one shape (raw_serving_request does).")


def _shape(value):
    if not isinstance(value, list):
        return ()
    inner = {_shape(v) for v in value}
    if len(inner) > 1:
        return (len(value), "ragged")
    return (len(value),) + (inner.pop() if inner else ())


__all__ = ["check_encoder_matches", "check_raw_request", "raw_serving_input_signature",
           "raw_serving_module", "raw_serving_request"]
