"""SavedModel export: the documented signature, reloaded with plain TF in a
fresh process, equals the Keras model with Dice on moving statistics; rows do
not depend on their request; the docs' REST example runs; writes are atomic.
The export also runs through a TF1 Session (the MetaGraph path TF-Serving's
loader takes), and the XLA export (`jit_compile=True`) equals the default one.

The Keras side of every comparison runs under `row_independent_inference`
(Dice on moving statistics, padded history steps ignored), with non-trivial
Dice moving statistics, alphas (and DIN-repo betas) assigned beforehand. Each
row is also served alone, padded to its own length only, so a score that
depended on the request's padding would differ from the batch's.
"""

import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from din_tf import models
from din_tf.export import (
    dice_inference_statistics,
    export_saved_model,
    padded_history_ignored,
    row_independent_inference,
    serving_feature_names,
    serving_request,
)
from din_tf.layers import Dice
from tests._saved_model_probe import probe as run_probe
from tests.models.conftest import make_batch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs", "serving.md")
STEPS = 6  # make_batch's padded history width
ATOL = 1e-6
XLA_ATOL = 1e-5  # XLA fuses and reorders float ops
DOCUMENTED = {
    "user_id": ["int32", [None]], "item_id": ["int32", [None]],
    "category_id": ["int32", [None]], "history_item_ids": ["int32", [None, None]],
    "history_category_ids": ["int32", [None, None]], "history_length": ["int32", [None]],
}


def _randomize_dice(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, Dice):
            n = layer.alpha.shape[0]
            layer.alpha.assign(rng.uniform(-1, 1, n))
            layer.moving_mean.assign(rng.normal(0, 0.3, n))
            layer.moving_variance.assign(rng.uniform(0.2, 2.0, n))
            if layer.mode == "din_repo":
                layer.beta.assign(rng.uniform(0.5, 2.0, n))


def _serving_inputs(model, features):
    return {k: features[k] for k in serving_feature_names(model)}


def _row(features, index):
    return {k: np.asarray(v)[index] for k, v in features.items()}


def _docs_request():
    with open(DOCS) as f:
        blocks = re.findall(r"```json\n(.*?)```", f.read(), flags=re.S)
    requests = [json.loads(b) for b in blocks if '"instances"' in b]
    assert len(requests) == 1
    return requests[0]


def _columns(instances):
    return {k: np.array([row[k] for row in instances], "int32") for k in instances[0]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """DIEN (as coded: Dice "dien" mode, padded steps in the history sum) and
    the DIN repo's DIN+Dice, exported and probed in one fresh process: the full
    batch of 64 padded to STEPS, each row alone at its own length, the docs'
    example."""
    keras.utils.set_random_seed(3)
    tmp = tmp_path_factory.mktemp("export")
    features, _ = make_batch(n=64, seed=3)
    built = {"dien": models.DIEN(9, 30, 6),
             "din_repo": models.DINRepoModel(30, 6, kind="din_dice", item_dim=8,
                                             category_dim=8)}
    dirs, calls, expected = {}, [], {}
    for seed, (key, model) in enumerate(built.items()):
        _randomize_dice(model, seed)
        dirs[key] = export_saved_model(model, tmp / key / "1")
        instances = serving_request(model, features, pad_to=STEPS)["instances"]
        calls.append({"model": key, "instances": instances})
        for index in range(len(instances)):  # alone, padded to its own length
            alone = serving_request(model, [_row(features, index)])["instances"]
            calls.append({"model": key, "instances": alone})
        inputs = _serving_inputs(model, features)
        with row_independent_inference(model):
            expected[key] = np.asarray(model(inputs, training=False))
        with dice_inference_statistics(model, "moving"):
            expected[key + "/padded_history"] = np.asarray(model(inputs, training=False))
        expected[key + "/batch_statistics"] = np.asarray(model(inputs, training=False))
    docs = _docs_request()
    calls.append({"model": "dien", "instances": docs["instances"]})
    with row_independent_inference(built["dien"]):
        expected["docs"] = np.asarray(built["dien"](_columns(docs["instances"])))
    probe = run_probe(tmp, {k: str(v) for k, v in dirs.items()}, calls)
    results = iter(probe["results"])
    outputs = {}
    for key in built:
        outputs[key] = np.array(next(results))
        outputs[key + "/rows"] = np.array([next(results)[0] for _ in range(64)])
    outputs["docs"] = np.array(next(results))
    return {"models": built, "dirs": dirs, "probe": probe, "outputs": outputs,
            "expected": expected, "features": features}


def test_signature_is_exactly_the_documented_one(exported):
    signatures = exported["probe"]["signatures"]
    assert exported["probe"]["din_tf_imported"] is False  # plain TF loaded it
    assert signatures["dien"]["inputs"] == DOCUMENTED
    assert signatures["din_repo"]["inputs"] == {k: v for k, v in DOCUMENTED.items()
                                                if k != "user_id"}
    for key in ("dien", "din_repo"):
        assert signatures[key]["outputs"] == {"probability": ["float32", [None]]}


@pytest.mark.parametrize("key", ["dien", "din_repo"])
def test_reloaded_model_matches_keras_with_moving_dice(exported, key):
    served, expected = exported["outputs"][key], exported["expected"][key]
    assert served.shape == (64,)
    np.testing.assert_allclose(served, expected, atol=ATOL)
    if key == "dien":  # both switches mattered: as coded, the scores differ
        for as_coded in ("dien/batch_statistics", "dien/padded_history"):
            assert np.max(np.abs(exported["expected"][as_coded] - expected)) > 1e-3, as_coded


@pytest.mark.parametrize("key", ["dien", "din_repo"])
def test_one_row_equals_the_same_row_in_a_batch_of_64(exported, key):
    np.testing.assert_allclose(exported["outputs"][key + "/rows"], exported["outputs"][key],
                               atol=ATOL)


def test_docs_rest_example_runs_through_the_signature(exported):
    request = _docs_request()
    assert request["signature_name"] == "serving_default"
    for row in request["instances"]:
        assert sorted(row) == sorted(exported["probe"]["signatures"]["dien"]["inputs"])
    served = exported["outputs"]["docs"]
    assert served.shape == (len(request["instances"]),)
    np.testing.assert_allclose(served, exported["expected"]["docs"], atol=ATOL)


def _session_predict(export_dir, inputs):
    """Predicts through `tf.compat.v1.saved_model.load` + `Session.run`: the
    MetaGraph, restore-op path of TF-Serving's C++ loader (not the object graph
    that `tf.saved_model.load` uses)."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.load(session, ["serve"], str(export_dir))
        signature = meta_graph.signature_def["serving_default"]
        assert sorted(signature.inputs) == sorted(inputs)
        feed = {signature.inputs[k].name: v for k, v in inputs.items()}
        return session.run(signature.outputs["probability"].name, feed)


@pytest.mark.parametrize("key", ["dien", "din_repo"])
def test_session_loader_restores_every_variable(exported, key):
    # Tracking the Keras variables (not the captured tf.Variables) used to give
    # "Could not find variable ..." here, and in TF-Serving.
    model = exported["models"][key]
    served = _session_predict(exported["dirs"][key],
                              _serving_inputs(model, exported["features"]))
    np.testing.assert_allclose(served, exported["expected"][key], atol=ATOL)


def _xla_flags(export_dir):
    """The `_XlaMustCompile` values of the export's functions that set it."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    return {f.attr["_XlaMustCompile"].b
            for f in saved_model.meta_graphs[0].graph_def.library.function
            if "_XlaMustCompile" in f.attr}


@pytest.fixture(scope="module")
def exported_xla(exported, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export_xla")
    return {key: export_saved_model(exported["models"][key], tmp / key / "1", jit_compile=True)
            for key in ("dien", "din_repo")}


@pytest.mark.parametrize("key", ["dien", "din_repo"])
def test_xla_export_equals_the_default_export_and_keeps_rows_independent(
        exported, exported_xla, key):
    inputs = _serving_inputs(exported["models"][key], exported["features"])
    assert _xla_flags(exported_xla[key]) == {True}
    assert _xla_flags(exported["dirs"][key]) <= {False}
    serve = tf.saved_model.load(str(exported_xla[key])).signatures["serving_default"]
    batch = serve(**inputs)["probability"].numpy()
    np.testing.assert_allclose(batch, exported["outputs"][key], atol=XLA_ATOL)
    rows = np.array([serve(**{k: v[i:i + 1] for k, v in inputs.items()})["probability"][0]
                     for i in range(len(batch))])
    np.testing.assert_allclose(rows, batch, atol=XLA_ATOL)


def test_xla_export_runs_through_a_session(exported, exported_xla):
    model = exported["models"]["dien"]
    served = _session_predict(exported_xla["dien"], _serving_inputs(model, exported["features"]))
    np.testing.assert_allclose(served, exported["outputs"]["dien"], atol=XLA_ATOL)


def test_keras_file_round_trip_predicts_the_same(exported, tmp_path):
    model = exported["models"]["dien"]
    path = str(tmp_path / "dien.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    inputs = _serving_inputs(model, exported["features"])
    np.testing.assert_allclose(loaded(inputs), model(inputs), atol=ATOL)
    with row_independent_inference(loaded):
        np.testing.assert_allclose(loaded(inputs), exported["expected"]["dien"], atol=ATOL)


def test_serving_request_pads_cuts_and_drops_unused_keys():
    features, _ = make_batch(n=3, seed=1)
    features["history_length"] = np.array([2, 1, 4], "int32")
    body = serving_request(models.DINRepoModel(30, 6, kind="din", item_dim=4, category_dim=4),
                           features)
    assert body["signature_name"] == "serving_default"
    rows = body["instances"]
    assert [sorted(r) for r in rows] == [sorted(DOCUMENTED.keys() - {"user_id"})] * 3
    assert [len(r["history_item_ids"]) for r in rows] == [4, 4, 4]
    assert rows[1]["history_item_ids"] == [int(features["history_item_ids"][1, 0]), 0, 0, 0]
    assert rows[0]["history_category_ids"][2:] == [0, 0]
    assert rows[2]["item_id"] == int(features["item_id"][2])
    json.dumps(body)  # plain Python ints and lists
    padded = serving_request(models.DNN(9, 30, 6), [dict((k, v[0]) for k, v in
                                                         features.items())], pad_to=6)
    assert padded["instances"][0]["user_id"] == int(features["user_id"][0])
    assert padded["instances"][0]["history_item_ids"][2:] == [0, 0, 0, 0]


def _small_dice_dnn():
    model = models.DNN(9, 30, 6, activation="dice", embedding_dim=4, hidden_units=(8, 4))
    _randomize_dice(model, 7)
    return model


def _export_warned(model, target, warning, **as_coded):
    """Exports with an as-coded option, checks its warning, returns the signature."""
    with pytest.warns(UserWarning, match=warning):
        export_saved_model(model, target, **as_coded)
    return tf.saved_model.load(str(target)).signatures["serving_default"]


def test_batch_statistics_warn_and_make_rows_depend_on_the_request(tmp_path):
    model = _small_dice_dnn()
    features, _ = make_batch(n=16, seed=4)
    inputs = _serving_inputs(model, features)
    target = tmp_path / "dnn" / "1"
    serve = _export_warned(model, target, "depends on the other rows", dice_statistics="batch")
    batch = serve(**inputs)["probability"].numpy()
    with padded_history_ignored(model):  # Dice as coded
        np.testing.assert_allclose(batch, model(inputs), atol=ATOL)
    alone = serve(**{k: v[:1] for k, v in inputs.items()})["probability"].numpy()
    assert abs(alone[0] - batch[0]) > 1e-3

    with pytest.raises(ValueError, match=re.escape(str(target)) + ".*not empty.*overwrite"):
        export_saved_model(model, target)
    export_saved_model(model, target, overwrite=True)
    serve = tf.saved_model.load(str(target)).signatures["serving_default"]
    batch = serve(**inputs)["probability"].numpy()
    alone = serve(**{k: v[:1] for k, v in inputs.items()})["probability"].numpy()
    np.testing.assert_allclose(alone[0], batch[0], atol=ATOL)
    assert sorted(os.listdir(tmp_path / "dnn")) == ["1"]  # no staging leftovers


def test_dice_switch_reaches_cached_predict_functions():
    model = _small_dice_dnn()
    features, _ = make_batch(n=16, seed=5)
    inputs = _serving_inputs(model, features)
    as_coded = model.predict(inputs, batch_size=16, verbose=0)
    with dice_inference_statistics(model, "moving"):
        moving = model.predict(inputs, batch_size=16, verbose=0)
        assert {layer.inference_statistics for layer in model._flatten_layers()
                if isinstance(layer, Dice)} == {"moving"}
    after = model.predict(inputs, batch_size=16, verbose=0)
    assert np.max(np.abs(moving - as_coded)) > 1e-3
    np.testing.assert_allclose(after, as_coded, atol=ATOL)
    with dice_inference_statistics(model, "moving"):
        np.testing.assert_allclose(model(inputs), moving, atol=ATOL)


def test_failed_export_leaves_nothing_and_restores_dice(tmp_path, monkeypatch):
    model = _small_dice_dnn()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(model, tmp_path / "new" / "1")
    assert os.listdir(tmp_path / "new") == []
    existing = tmp_path / "old" / "1"
    existing.mkdir(parents=True)
    (existing / "saved_model.pb").write_text("previous export")
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(model, existing, overwrite=True)
    assert os.listdir(tmp_path / "old") == ["1"]
    assert (existing / "saved_model.pb").read_text() == "previous export"
    assert {layer.inference_statistics for layer in model._flatten_layers()
            if isinstance(layer, Dice)} == {"batch"}
    assert model.options["mask_history_sum"] is False


def _padded(features, steps):
    """The same rows with their histories padded to `steps` columns."""
    out = dict(features)
    for key in ("history_item_ids", "history_category_ids"):
        history = np.asarray(features[key])
        out[key] = np.pad(history, [(0, 0), (0, steps - history.shape[1])])
    return out


@pytest.mark.parametrize("name", sorted(models.ORIGINAL_MODELS))
def test_every_model_scores_a_row_alone_as_in_any_padded_batch(name):
    """Row independence, property form, for every original model as coded:
    under `row_independent_inference` (what the export serves) a row scored
    alone at its own length equals the same row in a batch padded 5 steps
    wider. As coded, the DIEN repo's models depend on the padding."""
    keras.utils.set_random_seed(11)
    model = models.get_model(name, n_users=9, n_items=30, n_categories=6)
    _randomize_dice(model, 5)
    features, _ = make_batch(n=12, seed=8)
    inputs = _serving_inputs(model, features)
    wide = _padded(inputs, STEPS + 5)
    with row_independent_inference(model):
        batch = np.asarray(model(wide, training=False))
        alone = np.array([model({k: v[i:i + 1, :inputs["history_length"][i]]
                                 if np.ndim(v) == 2 else v[i:i + 1]
                                 for k, v in inputs.items()}, training=False)[0]
                          for i in range(len(batch))])
    np.testing.assert_allclose(alone, batch, atol=ATOL)
    padding_matters = name.startswith("dien_repo/")
    with dice_inference_statistics(model, "moving"):
        narrow = np.asarray(model(inputs, training=False))
        wider = np.asarray(model(wide, training=False))
    assert (np.max(np.abs(narrow - wider)) > 1e-4) == padding_matters


def test_as_coded_padding_warns_and_makes_scores_depend_on_the_request(tmp_path):
    model = _small_dice_dnn()
    features, _ = make_batch(n=8, seed=6)
    inputs = _serving_inputs(model, features)
    serve = _export_warned(model, tmp_path / "dnn" / "1", "how far the request pads it",
                           padded_history="as_coded")
    narrow = serve(**inputs)["probability"].numpy()
    wide = serve(**_padded(inputs, STEPS + 5))["probability"].numpy()
    assert np.max(np.abs(narrow - wide)) > 1e-3
    with pytest.raises(ValueError, match=r"padded_history='none'.*\['as_coded', 'ignored'\]"):
        export_saved_model(model, tmp_path / "x", padded_history="none")


def test_bad_arguments_are_named(tmp_path):
    model = models.DINRepoModel(30, 6, kind="din", item_dim=4, category_dim=4)
    with pytest.raises(ValueError, match=r"dice_statistics='median'.*\['batch', 'moving'\]"):
        export_saved_model(model, tmp_path / "a", dice_statistics="median")
    with pytest.raises(ValueError, match=r"jit_compile='yes'.*True or False"):
        export_saved_model(model, tmp_path / "a", jit_compile="yes")
    with pytest.raises(ValueError, match=r"model=Sequential.*CTRModel"):
        export_saved_model(keras.Sequential(), tmp_path / "b")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"export_dir=.*file.*is a file"):
        export_saved_model(model, tmp_path / "file")
    with pytest.raises(ValueError, match=r"rows\[0\].*missing.*'history_length'"):
        serving_request(model, [{"item_id": 1, "category_id": 1, "history_item_ids": [1],
                                 "history_category_ids": [1]}])
    row = {"item_id": 1, "category_id": 1, "history_item_ids": [1, 2],
           "history_category_ids": [1, 1], "history_length": 3}
    with pytest.raises(ValueError, match=r"rows\[0\].*history_length=3.*<= 2"):
        serving_request(model, [row])
    with pytest.raises(ValueError, match=r"pad_to=1.*>= the longest history_length \(2\)"):
        serving_request(model, [dict(row, history_length=2)], pad_to=1)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
