"""SavedModel export for TF-Serving: explicit named inputs, click probability out.

`export_saved_model(model, export_dir)` writes a SavedModel whose
`serving_default` signature takes the named features of `din_tf.features`
(below) and returns `{"probability": float32 [B]}`. The auxiliary-loss branch is
not in the graph (`model(features, training=False)` runs
`forward(..., with_aux=False)`).

| input | dtype | shape |
| --- | --- | --- |
| `user_id` | int32 | [None] (every DIEN-repo model; `DINRepoModel` has no user input) |
| `item_id`, `category_id` | int32 | [None] |
| `history_item_ids`, `history_category_ids` | int32 | [None, None] (0-padded) |
| `history_length` | int32 | [None] |

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
whose MetaGraph restore misses the handles the signature reads) and one
`tf.function` with an explicit `input_signature` (XLA-compiled with
`jit_compile=True`), written with `tf.saved_model.save`. We do not use
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

from din_tf import features as F
from din_tf.layers import Dice
from din_tf.layers._checks import check_choice

DICE_STATISTICS = ("moving", "batch")
PADDED_HISTORY = ("ignored", "as_coded")
SIGNATURE_NAME = "serving_default"
OUTPUT_NAME = "probability"
_ITEM_KEYS = (F.ITEM_ID, F.CATEGORY_ID, F.HISTORY_ITEM_IDS, F.HISTORY_CATEGORY_IDS,
              F.HISTORY_LENGTH)


def serving_feature_names(model):
    """The signature's input names for `model`, in `din_tf.features` order."""
    _check_model(model)
    from din_tf.models.din_repo import DINRepoModel
    # The DIN repo's models never read a user id (see DINRepoModel).
    uses_user = not isinstance(model, DINRepoModel)
    return ((F.USER_ID,) if uses_user else ()) + _ITEM_KEYS


def serving_input_signature(model):
    """{name: tf.TensorSpec} of the `serving_default` inputs."""
    specs = {}
    for name in serving_feature_names(model):
        feature = F.FEATURES_BY_NAME[name]
        specs[name] = tf.TensorSpec([None] * feature.rank, feature.dtype, name=name)
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


def export_saved_model(model, export_dir, *, dice_statistics="moving",
                       padded_history="ignored", overwrite=False, jit_compile=False):
    """Writes `model` as a SavedModel for TF-Serving; returns `export_dir`.

    Args:
        model: a built `din_tf.models.CTRModel`.
        export_dir: local directory to create. TF-Serving loads numbered
            versions, so pass e.g. `models/dien/1` (see docs/serving.md).
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
            (experimental); see docs/serving.md.

    The SavedModel is written to a temporary sibling directory and renamed into
    place, so `export_dir` never holds a partial export.
    """
    _check_model(model)
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
            module = _serving_module(model, jit_compile)
            tf.saved_model.save(module, staging,
                                signatures={SIGNATURE_NAME: module.serve.get_concrete_function()})
        _move_into_place(staging, export_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return export_dir


def serving_request(model, rows, *, pad_to=None, signature_name=SIGNATURE_NAME):
    """The TF-Serving REST body (row format) that predicts `rows` with `model`'s
    exported signature: `{"signature_name": ..., "instances": [{name: value}]}`.

    `rows`: a list of per-row dicts, or one dict of batched arrays (e.g. a
    `din_tf.features` batch; keys the signature does not take are dropped).
    TF-Serving stacks the instances, so histories are cut to each row's
    `history_length` and right-padded with 0 to `pad_to` steps (default: the
    longest history). The default export ignores padded steps, so the padded
    width does not change a score (see `export_saved_model(padded_history=)`).
    Returns a JSON-serializable dict (`json.dumps` it for the request).
    """
    names = serving_feature_names(model)
    rows = _as_row_dicts(rows)
    for index, row in enumerate(rows):
        missing = [name for name in names if name not in row]
        if missing:
            raise ValueError(f"Invalid rows[{index}]: missing feature(s) {missing}; expected "
                             f"the keys {list(names)}, received {sorted(row)}.")
    lengths = [int(np.asarray(row[F.HISTORY_LENGTH]).reshape(())) for row in rows]
    for index, (row, length) in enumerate(zip(rows, lengths)):
        steps = np.asarray(row[F.HISTORY_ITEM_IDS]).reshape(-1).size
        if not 0 <= length <= steps:
            raise ValueError(f"Invalid rows[{index}]: history_length={length}; expected "
                             f"0 <= history_length <= {steps} (the history's length).")
    width = max(lengths, default=0)
    if pad_to is not None:
        if not isinstance(pad_to, int) or isinstance(pad_to, bool) or pad_to < width:
            raise ValueError(f"Invalid pad_to={pad_to!r}; expected an int >= the longest "
                             f"history_length ({width}), or None.")
        width = pad_to
    instances = []
    for row, length in zip(rows, lengths):
        instance = {}
        for name in names:
            value = np.asarray(row[name]).astype(np.int64)
            if F.FEATURES_BY_NAME[name].rank == 2:
                padded = np.zeros(width, np.int64)
                padded[:length] = value.reshape(-1)[:length]
                instance[name] = padded.tolist()
            else:
                instance[name] = int(value.reshape(()))
        instances.append(instance)
    return {"signature_name": signature_name, "instances": instances}


# -- helpers ------------------------------------------------------------------

def _check_model(model):
    from din_tf.models.ctr_model import CTRModel
    if not isinstance(model, CTRModel):
        raise ValueError(f"Invalid model={type(model).__name__}: expected a "
                         "din_tf.models.CTRModel (e.g. din_tf.models.DIEN).")


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


def _as_row_dicts(rows):
    if isinstance(rows, dict):
        sizes = {np.asarray(v).shape[0] for v in rows.values() if np.ndim(v) > 0}
        if len(sizes) != 1:
            raise ValueError("Invalid rows: a dict of batched arrays needs one batch size, "
                             f"received sizes {sorted(sizes)}.")
        count = sizes.pop()
        return [{k: np.asarray(v)[i] for k, v in rows.items()} for i in range(count)]
    rows = list(rows)
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"Invalid rows[{index}]: expected a dict of features, received "
                             f"{type(row).__name__}.")
    return rows
