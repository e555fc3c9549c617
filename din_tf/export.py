"""SavedModel export for TF-Serving: explicit named inputs, click probability out.

`export_saved_model(model, export_dir)` writes a SavedModel whose
`serving_default` signature takes the model's inputs as its feature schema
(`model.schema`) names them, as embedding rows, and returns
`{"probability": float32 [B]}`. The auxiliary-loss branch is not in the graph
(`model(features, training=False)` runs `forward(..., with_aux=False)`).

Integer-id signature (`serving_input_signature`): every schema feature, then
per behaviour sequence its step keys and its length key.

| input | dtype | shape |
| --- | --- | --- |
| categorical feature | int32 | [None] (multi-valued: [None, None], 0-padded) |
| numeric feature | float32 | [None] |
| sequence step key | int32 | [None, None] (multi-valued: [None, None, None]), 0-padded |
| sequence length key | int32 | [None] |

For the original models' schema (`din_tf.schema.original`) that is `user_id`
(absent for `DINRepoModel`, whose schema has no user), `item_id`,
`category_id`, `history_item_ids`, `history_category_ids`, `history_length`.

`export_saved_model(model, export_dir, encoder=encoder)` serves raw ids
instead: the signature takes the raw values of the schema's features
(strings, int64 ids, floats) and the `FeatureEncoder`'s lookups run in the
graph (see `din_tf.export_raw`, whose helpers are re-exported here).

A served row never depends on the other rows of its request nor on how far
its history is padded (`row_independent_inference`): every
`din_tf.layers.Dice` is traced with `inference_statistics="moving"` (the
originals' DIEN Dice normalises with the statistics of the current batch, even
at inference), and the DIEN-repo models' history sum counts the row's own
steps only (as coded it also adds the embedding of every padded step, so a
score depends on the longest history of its batch). `dice_statistics="batch"`
and `padded_history="as_coded"` keep the as-coded behaviour, with a warning.

Implementation: a `tf.Module` that tracks the tf.Variables the serving
function captured (not the model object, so optimizer slots, metric state and
the auxiliary-loss weights stay out of the artifact; not the Keras variables,
whose MetaGraph restore misses the handles the signature reads), the
encoder's lookup tables when there is one, and one `tf.function` with an
explicit `input_signature`, written with `tf.saved_model.save`. We do not use
`keras.export.ExportArchive`: it adds nothing here and its signature naming
follows the function's positional arguments, whereas we want the feature names
as signature keys.
"""

import contextlib
import os
import shutil
import tempfile
import warnings

import numpy as np
import tensorflow as tf

from din_tf._argument_checks import check_choice
from din_tf._serving_rows import (
    OUTPUT_NAME,
    SIGNATURE_NAME,
    as_row_dicts,
    build_instances,
    sequence_widths,
)
from din_tf.export_raw import (
    check_encoder_matches,
    check_raw_request,
    raw_serving_input_signature,
    raw_serving_module,
    raw_serving_request,
)
from din_tf.layers import Dice

DICE_STATISTICS = ("moving", "batch")
PADDED_HISTORY = ("ignored", "as_coded")


def serving_feature_names(model):
    """The integer-id signature's input names for `model`: its schema's
    features, then per sequence its step keys and length key."""
    return tuple(serving_input_signature(model))


def serving_input_signature(model):
    """{name: tf.TensorSpec} of the integer-id `serving_default` inputs, read
    from `model.schema` (see the module docstring)."""
    schema = _model_schema(model)
    specs = {}
    for f in schema.features:
        if f.kind == "numeric":
            specs[f.name] = tf.TensorSpec([None], tf.float32, name=f.name)
        else:
            specs[f.name] = tf.TensorSpec([None] * (2 if f.multi_valued else 1), tf.int32,
                                          name=f.name)
    for seq in schema.sequences:
        for name, key in zip(seq.features, seq.step_keys):
            rank = 3 if schema.feature(name).multi_valued else 2
            specs[key] = tf.TensorSpec([None] * rank, tf.int32, name=key)
        specs[seq.length] = tf.TensorSpec([None], tf.int32, name=seq.length)
    return specs


@contextlib.contextmanager
def dice_inference_statistics(model, statistics):
    """Temporarily sets `inference_statistics` of every `Dice` in `model`.

    Restores the previous values on exit (also on error). Keras caches the
    traced `predict`/`evaluate` functions, so they are dropped on entry and
    exit to make the switch visible to `model.predict` too.
    """
    check_choice("statistics", statistics, DICE_STATISTICS)
    layers = _dice_layers(model)
    previous = [layer.inference_statistics for layer in layers]
    _drop_inference_functions(model)
    try:
        for layer in layers:
            layer.inference_statistics = statistics
        yield model
    finally:
        for layer, value in zip(layers, previous):
            layer.inference_statistics = value
        _drop_inference_functions(model)


@contextlib.contextmanager
def padded_history_ignored(model):
    """Temporarily makes a model that sums its padded history steps as coded
    (`mask_history_sum=False`) sum the row's own steps only, which is what it
    computes for a batch padded to that row's length (e.g. a batch of one).
    Models without that option are unchanged. Drops cached predict/evaluate
    functions on entry and exit, like `dice_inference_statistics`."""
    options = getattr(model, "options", None)
    as_coded = isinstance(options, dict) and options.get("mask_history_sum") is False
    _drop_inference_functions(model)
    try:
        if as_coded:
            options["mask_history_sum"] = True
        yield model
    finally:
        if as_coded:
            options["mask_history_sum"] = False
        _drop_inference_functions(model)


@contextlib.contextmanager
def row_independent_inference(model):
    """What the export serves by default: within this context a row's score
    depends only on that row (Dice on moving statistics, padded history steps
    ignored), so `model.predict` equals the SavedModel on any batching."""
    with dice_inference_statistics(model, "moving"), padded_history_ignored(model):
        yield model


def export_saved_model(model, export_dir, *, encoder=None, dice_statistics="moving",
                       padded_history="ignored", overwrite=False, jit_compile=False):
    """Writes `model` as a SavedModel for TF-Serving; returns `export_dir`.

    Args:
        model: a built `din_tf.models.CTRModel`.
        export_dir: local directory to create. TF-Serving loads numbered
            versions, so pass e.g. `models/dien/1` (see docs/serving.md).
        encoder: None (default): the signature takes embedding rows
            (`serving_input_signature`). A `din_tf.schema.FeatureEncoder` of
            the model's schema: the signature takes raw values
            (`raw_serving_input_signature`), the encoder's lookups run in
            the graph and its vocabularies are saved with the model; ids
            never seen in training read an OOV row.
        dice_statistics: "moving" (default): every Dice uses its moving
            averages, so a row's probability does not depend on the rest of the
            request. "batch": keep each Dice as configured (the DIEN repo's
            Dice then normalises with the request's statistics); warns.
        padded_history: "ignored" (default): a DIEN-repo model built with the
            as-coded history sum (`mask_history_sum=False`) sums the row's own
            steps only, i.e. scores every row as a request of that row alone
            would (padded to its own length), whatever the request's padding.
            "as_coded": keep adding the padded steps' embeddings, so a row's
            score depends on the request's longest history; warns.
        overwrite: replace a non-empty `export_dir`.
        jit_compile: compile the serving function with XLA (default False).
            Batch-1 DIEN latency drops 1.5-8x, more with longer histories
            (the GRU loops' per-step executor overhead disappears; see
            benchmarks/serving.py), and outputs match the default export
            within 1e-5. But every new input shape (batch size, history
            width) compiles once (1-4 s for DIEN on CPU), and TF-Serving runs
            XLA on CPU only with `--xla_cpu_compilation_enabled`
            (experimental); see docs/serving.md. With an encoder only the
            model is compiled, not the lookups.

    The SavedModel is written to a temporary sibling directory and renamed into
    place, so `export_dir` never holds a partial export.
    """
    _model_schema(model)
    if encoder is not None:
        check_encoder_matches(model, encoder)
    check_choice("dice_statistics", dice_statistics, DICE_STATISTICS)
    check_choice("padded_history", padded_history, PADDED_HISTORY)
    if not isinstance(jit_compile, bool):
        raise ValueError(f"Invalid jit_compile={jit_compile!r}; expected True or False.")
    export_dir = os.path.abspath(os.fspath(export_dir))
    if os.path.exists(export_dir):
        if not os.path.isdir(export_dir):
            raise ValueError(f"Invalid export_dir={export_dir!r}: it is a file; expected a "
                             "new or empty directory.")
        if os.listdir(export_dir) and not overwrite:
            raise ValueError(f"Invalid export_dir={export_dir!r}: the directory exists and is "
                             "not empty; expected a new or empty directory, or overwrite=True.")
    if dice_statistics == "batch" and any(
            layer.mode != "din_repo" and layer.inference_statistics == "batch"
            for layer in _dice_layers(model)):
        warnings.warn(
            f"export_saved_model(dice_statistics='batch'): {type(model).__name__} has Dice "
            "layers that normalise with the statistics of the request's batch, so a served "
            "row's probability depends on the other rows sent with it.", UserWarning,
            stacklevel=2)
    if padded_history == "as_coded" and getattr(model, "options", {}).get(
            "mask_history_sum") is False:
        warnings.warn(
            f"export_saved_model(padded_history='as_coded'): {type(model).__name__} adds the "
            "embedding of every padded history step to its history sum, so a served row's "
            "probability depends on how far the request pads it (its longest history).",
            UserWarning, stacklevel=2)

    parent, base = os.path.split(export_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{base}.export-", dir=parent)
    os.chmod(staging, 0o755)  # mkdtemp makes it private; servers often run as another user
    try:
        with contextlib.ExitStack() as behaviour:
            if dice_statistics == "moving":
                behaviour.enter_context(dice_inference_statistics(model, "moving"))
            if padded_history == "ignored":
                behaviour.enter_context(padded_history_ignored(model))
            module = (_serving_module(model, jit_compile) if encoder is None
                      else raw_serving_module(model, encoder, jit_compile))
            tf.saved_model.save(module, staging,
                                signatures={SIGNATURE_NAME: module.serve.get_concrete_function()})
        _move_into_place(staging, export_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return export_dir


def serving_request(model, rows, *, pad_to=None, signature_name=SIGNATURE_NAME):
    """The TF-Serving REST body (row format) that predicts `rows` with `model`'s
    exported integer-id signature: `{"signature_name": ..., "instances": [{name: value}]}`.

    `rows`: a list of per-row dicts, or one dict of batched arrays (e.g. a
    `din_tf.features` batch; keys the signature does not take are dropped).
    TF-Serving stacks the instances, so each sequence's steps are cut to the
    row's length and right-padded with 0 to `pad_to` steps (default: the
    longest in the request), and multi-valued features are padded with 0 to
    the request's most values. The default export ignores padded steps, so
    the padded width does not change a score (see
    `export_saved_model(padded_history=)`). Returns a JSON-serializable dict
    (`json.dumps` it for the request). For the raw signature see
    `raw_serving_request`.
    """
    schema = _model_schema(model)
    names = serving_feature_names(model)
    rows = as_row_dicts(rows)
    for index, row in enumerate(rows):
        missing = [name for name in names if name not in row]
        if missing:
            raise ValueError(f"Invalid rows[{index}]: missing feature(s) {missing}; expected "
                             f"the keys {list(names)}, received {sorted(row)}.")
    plain_rows = [_integer_row(schema, row) for row in rows]
    lengths = {}
    for seq in schema.sequences:
        lengths[seq.name] = []
        for index, row in enumerate(plain_rows):
            length = row[seq.length]
            steps = len(row[seq.step_keys[0]])
            if not 0 <= length <= steps:
                raise ValueError(f"Invalid rows[{index}]: {seq.length}={length}; expected "
                                 f"0 <= {seq.length} <= {steps} (the history's length).")
            lengths[seq.name].append(length)
    widths = sequence_widths(schema, lengths, pad_to, min_width=lambda seq: int(any(
        schema.feature(name).multi_valued for name in seq.features)))
    instances = build_instances(schema, plain_rows, lengths, widths, lambda f: 0)
    return {"signature_name": signature_name, "instances": instances}


# -- helpers ------------------------------------------------------------------

def _model_schema(model):
    """`model.schema`, after checking `model` is a CTRModel that has one."""
    from din_tf.models.ctr_model import CTRModel
    if not isinstance(model, CTRModel):
        raise ValueError(f"Invalid model={type(model).__name__}: expected a "
                         "din_tf.models.CTRModel (e.g. din_tf.models.DIEN).")
    schema = getattr(model, "schema", None)
    if schema is None:
        raise ValueError(f"Invalid model={type(model).__name__}: it has no feature schema "
                         "(model.schema), which the export reads its inputs from.")
    return schema


def _integer_row(schema, row):
    """A row of embedding rows as plain ints (scalars accepted as [1]-arrays,
    as before): single values, lists of values, lists of steps."""
    out = {}
    for f in schema.features:
        value = np.asarray(row[f.name])
        if f.kind == "numeric":
            out[f.name] = float(value.reshape(()))
        elif f.multi_valued:
            out[f.name] = value.astype(np.int64).reshape(-1).tolist()
        else:
            out[f.name] = int(value.astype(np.int64).reshape(()))
    for seq in schema.sequences:
        for name, key in zip(seq.features, seq.step_keys):
            value = np.asarray(row[key]).astype(np.int64)
            if schema.feature(name).multi_valued:
                out[key] = [] if value.size == 0 else value.reshape(
                    -1, value.shape[-1]).tolist()
            else:
                out[key] = value.reshape(-1).tolist()
        out[seq.length] = int(np.asarray(row[seq.length]).reshape(()))
    return out


def _dice_layers(model):
    return [layer for layer in model._flatten_layers() if isinstance(layer, Dice)]


def _drop_inference_functions(model):
    # Keras re-traces these on next use; a stale trace would keep old Dice settings.
    model.predict_function = None
    model.test_function = None


def _serving_module(model, jit_compile=False):
    module = tf.Module()

    @tf.function(input_signature=[serving_input_signature(model)], autograph=False,
                 jit_compile=jit_compile)
    def serve(features):
        probability = model(features, training=False)
        return {OUTPUT_NAME: tf.cast(probability, tf.float32)}

    # Track the tf.Variables the serving graph captured, not `model.variables`:
    # a tf.Module tracking Keras 3 variables writes a MetaGraph whose restore
    # op fills other handles than the ones the signature reads, so TF-Serving
    # (and any Session-based loader) fails with "Could not find variable".
    # This also keeps the optimizer, metrics and the auxiliary-loss branch out.
    module.serving_variables = list(serve.get_concrete_function().variables)
    module.serve = serve
    return module


def _move_into_place(staging, export_dir):
    if not os.path.exists(export_dir):
        os.rename(staging, export_dir)
        return
    # Swap with the existing directory, restoring it if the second rename fails.
    retired = staging + ".previous"
    os.rename(export_dir, retired)
    try:
        os.rename(staging, export_dir)
    except BaseException:
        os.rename(retired, export_dir)
        raise
    shutil.rmtree(retired, ignore_errors=True)


__all__ = ["check_raw_request", "dice_inference_statistics", "export_saved_model",
           "padded_history_ignored", "raw_serving_input_signature", "raw_serving_request",
           "row_independent_inference", "serving_feature_names", "serving_input_signature",
           "serving_request"]
